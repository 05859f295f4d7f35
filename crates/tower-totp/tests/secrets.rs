//! Secrets at rest and in logs: sealed records bound to their user, key
//! rotation with re-sealing on use, and `Debug` output that never shows a
//! secret or a code.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, T0, config};
use tower_totp::ConfirmAs;
use tower_totp::clock::{ManualClock, UnixTime};
use tower_totp::code::{Hotp, parse_code};
use tower_totp::seal::{Keyring, SealError, SealingKey};
use tower_totp::store::{
    Activated, Activation, EnrollmentStore, MemoryStore, PendingEnrollment, PendingLimits,
    StepStore, ThrottleStore,
};
use tower_totp::{Confirmation, Error, TwoFactor, UserId, Verdict};

/// No pruning, room for many.
const ROOMY: PendingLimits = PendingLimits {
    expired_before: UnixTime::from_secs(0),
    max: 100,
};

fn engine(store: &MemoryStore, clock: &ManualClock, keys: Keyring) -> TwoFactor {
    TwoFactor::builder(config())
        .clock(clock.clone())
        .store(store.clone())
        .keyring(keys)
        .build()
        .unwrap()
}

/// A record copied from one user to another does not open: the user id is
/// the AEAD's associated data. The engine fails closed with `Error::Seal`.
#[tokio::test]
async fn a_record_copied_to_another_user_does_not_open() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let mallory = UserId::new("mallory");
    let phone = h.enroll(&alice, "phone").await;
    let record = h.store.authenticators(&alice).await.unwrap().remove(0);

    // Mallory gets Alice's sealed secret, as if a row had been copied.
    let copied = PendingEnrollment {
        id: record.id.clone(),
        name: record.name.clone(),
        secret: record.secret.clone(),
        params: record.params,
        created_at: h.clock_now(),
        replaces: None,
    };
    h.store.put_pending(&mallory, copied, ROOMY).await.unwrap();
    let activation = Activation {
        pending_id: record.id.clone(),
        step: 0,
        offset: 0,
        now: h.clock_now(),
        first_only: false,
        max_authenticators: 5,
        recovery: Vec::new(),
    };
    assert!(matches!(
        h.store
            .activate_pending(&mallory, &activation)
            .await
            .unwrap(),
        Activated::Done { .. }
    ));

    let err = h.tfa.verify(&mallory, &phone.code(0)).await.unwrap_err();
    assert!(matches!(err, Error::Seal(SealError::Damaged)), "{err:?}");
    // Alice is unaffected.
    assert!(h.verify(&alice, &phone.code(0)).await.is_accepted());
}

/// A pending enrollment copied to another user does not open either.
#[tokio::test]
async fn a_pending_enrollment_copied_to_another_user_does_not_open() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let mallory = UserId::new("mallory");
    let e = h
        .tfa
        .start_enrollment(&alice, "a", "phone", None)
        .await
        .unwrap()
        .unwrap();
    let pending = h.store.pending(&alice, e.id()).await.unwrap().unwrap();
    h.store.put_pending(&mallory, pending, ROOMY).await.unwrap();
    let phone = Hotp::new(e.secret(), e.params());
    let err = h
        .tfa
        .confirm_enrollment(
            &mallory,
            e.id(),
            &phone.code_string(h.step()),
            ConfirmAs::AnotherAuthenticator,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Seal(SealError::Damaged)), "{err:?}");
    assert!(matches!(
        h.tfa.pending_enrollment(&mallory, e.id(), "m").await,
        Err(Error::Seal(SealError::Damaged))
    ));
}

/// Rotation: an engine whose keyring has moved to key 2 still opens records
/// sealed under key 1, seals them again under key 2 when they are used, and
/// afterwards key 1 can be dropped.
#[tokio::test]
async fn key_rotation_reseals_on_use() {
    let clock = ManualClock::new(UnixTime::from_secs(T0));
    let store = MemoryStore::new();
    let key1 = SealingKey::generate().unwrap();
    let key2 = SealingKey::generate().unwrap();
    let alice = UserId::new("alice");
    let bob = UserId::new("bob");

    // Both enrol under key 1.
    let before = engine(&store, &clock, Keyring::new(1, key1.clone()));
    let mut phones = Vec::new();
    for user in [&alice, &bob] {
        let e = before
            .start_enrollment(user, "u", "phone", None)
            .await
            .unwrap()
            .unwrap();
        let hotp = Hotp::new(e.secret(), e.params());
        let step = e.params().step_at(clock_now(&clock));
        assert!(
            before
                .confirm_enrollment(
                    user,
                    e.id(),
                    &hotp.code_string(step),
                    ConfirmAs::AnotherAuthenticator
                )
                .await
                .unwrap()
                .is_confirmed()
        );
        phones.push(hotp);
    }
    let key_id = |user: &UserId| {
        let store = store.clone();
        let user = user.clone();
        async move {
            store.authenticators(&user).await.unwrap()[0]
                .secret
                .key_id()
        }
    };
    assert_eq!(key_id(&alice).await, 1);

    // Rotate. Alice logs in; Bob does not.
    let rotated = engine(
        &store,
        &clock,
        Keyring::new(1, key1.clone()).rotated_to(2, key2.clone()),
    );
    clock.advance(std::time::Duration::from_secs(30));
    let step = phones[0].params().step_at(clock_now(&clock));
    assert!(
        rotated
            .verify(&alice, &phones[0].code_string(step))
            .await
            .unwrap()
            .is_accepted()
    );
    assert_eq!(key_id(&alice).await, 2, "resealed under the new key");
    assert_eq!(key_id(&bob).await, 1, "untouched until used");
    // Re-sealing kept the sync state: the used step is still used.
    assert_eq!(
        rotated
            .verify(&alice, &phones[0].code_string(step))
            .await
            .unwrap(),
        Verdict::Rejected(tower_totp::RejectReason::Replayed)
    );

    // Without key 1, Alice still logs in; Bob's record, never used since
    // the rotation, cannot be opened (and the engine says so).
    let retired = engine(&store, &clock, Keyring::new(2, key2.clone()));
    clock.advance(std::time::Duration::from_secs(30));
    let step = step + 1;
    assert!(
        retired
            .verify(&alice, &phones[0].code_string(step))
            .await
            .unwrap()
            .is_accepted()
    );
    assert!(matches!(
        retired.verify(&bob, &phones[1].code_string(step)).await,
        Err(Error::Seal(SealError::UnknownKey(1)))
    ));
    // The rotated engine (which still holds key 1) lets Bob in and reseals.
    assert!(
        rotated
            .verify(&bob, &phones[1].code_string(step))
            .await
            .unwrap()
            .is_accepted()
    );
    assert_eq!(key_id(&bob).await, 2);
}

fn clock_now(clock: &ManualClock) -> UnixTime {
    tower_totp::clock::Clock::now(clock)
}

trait HarnessExt {
    fn clock_now(&self) -> UnixTime;
}

impl HarnessExt for Harness {
    fn clock_now(&self) -> UnixTime {
        clock_now(&self.clock)
    }
}

/// Every representation of `bytes` that a careless `Debug` could print.
fn forbidden_forms(bytes: &[u8]) -> Vec<String> {
    let b32 = data_encoding_base32(bytes);
    vec![
        b32.clone(),
        b32[..16].to_owned(),
        b32.to_lowercase()[..16].to_owned(),
        hex(bytes),
        hex(bytes).to_uppercase(),
        format!("{bytes:?}"),
        format!("{:?}", &bytes[..8])
            .trim_end_matches(']')
            .to_owned(),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn data_encoding_base32(bytes: &[u8]) -> String {
    // RFC 4648 base32 without padding, written out to avoid a dev-dependency.
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

fn assert_hides(what: &str, debug: &str, forbidden: &[String]) {
    for f in forbidden {
        assert!(!shows(debug, f), "{what} Debug shows {f:?}: {debug}");
    }
}

/// Whether `text` contains `needle`; an all-digit needle (a code) counts
/// only as a whole number, so that a step or a timestamp that happens to
/// contain the same six digits is not taken for it.
fn shows(text: &str, needle: &str) -> bool {
    if !needle.bytes().all(|b| b.is_ascii_digit()) {
        return text.contains(needle);
    }
    text.split(|c: char| !c.is_ascii_digit())
        .any(|number| number == needle)
}

/// `Debug` of the engine (with its store full of state), enrollments,
/// recovery codes, secrets, codes, keys and keyrings shows none of the
/// secret material.
#[tokio::test]
async fn debug_output_never_shows_secrets_or_codes() {
    let key_bytes = [0x5au8; 32];
    let keys = Keyring::new(7, SealingKey::from_bytes(key_bytes));
    let clock = ManualClock::new(UnixTime::from_secs(T0));
    let store = MemoryStore::new();
    let tfa = engine(&store, &clock, keys.clone());
    let alice = UserId::new("alice");

    let e = tfa
        .start_enrollment(&alice, "alice@example.com", "phone", None)
        .await
        .unwrap()
        .unwrap();
    let secret_bytes = e.secret().as_bytes().to_vec();
    let mut forbidden = forbidden_forms(&secret_bytes);
    assert!(
        forbidden[0] == *e.secret().to_base32(),
        "base32 helper agrees"
    );
    forbidden.push(e.otpauth_uri().to_owned());

    let hotp = Hotp::new(e.secret(), e.params());
    let step = e.params().step_at(clock_now(&clock));
    let code = hotp.code_string(step);
    let confirmation = tfa
        .confirm_enrollment(&alice, e.id(), &code, ConfirmAs::AnotherAuthenticator)
        .await
        .unwrap();
    let Confirmation::Confirmed {
        recovery_codes: Some(recovery),
        ..
    } = &confirmation
    else {
        panic!("{confirmation:?}");
    };
    let mut codes_forbidden: Vec<String> = recovery
        .as_strings()
        .flat_map(|c| [c.to_owned(), c.replace('-', "")])
        .collect();
    codes_forbidden.push(code.clone());
    codes_forbidden.push(hotp.code_string(step + 1));
    let key_forbidden = forbidden_forms(&key_bytes);

    // A pending enrollment and a failed attempt, so the store holds more state.
    tfa.start_enrollment(&alice, "a", "tablet", None)
        .await
        .unwrap()
        .unwrap();
    let _ = tfa
        .verify(&alice, &hotp.code_string(step + 5))
        .await
        .unwrap();
    let _ = store.throttle_state(&alice).await.unwrap();
    let _ = store.consume_step(&alice, e.id(), step, 0).await.unwrap();

    let all: Vec<String> = forbidden
        .iter()
        .chain(&codes_forbidden)
        .chain(&key_forbidden)
        .cloned()
        .collect();
    let parsed = parse_code(&code, 6).unwrap();
    let key = SealingKey::from_bytes(key_bytes);
    for (what, debug) in [
        ("TwoFactor", format!("{tfa:?}")),
        ("TwoFactor (pretty)", format!("{tfa:#?}")),
        ("Enrollment", format!("{e:?}")),
        ("Enrollment (pretty)", format!("{e:#?}")),
        ("Confirmation", format!("{confirmation:?}")),
        ("RecoveryCodes", format!("{recovery:?}")),
        ("Secret", format!("{:?}", e.secret())),
        ("Secret (Display)", format!("{}", e.secret())),
        ("Code", format!("{parsed:?}")),
        ("Hotp", format!("{hotp:?}")),
        ("SealingKey", format!("{key:?}")),
        ("Keyring", format!("{keys:?}")),
        ("MemoryStore", format!("{store:?}")),
    ] {
        assert_hides(what, &debug, &all);
    }
    // And the engine's Debug is not trivially empty: it does show the user.
    assert!(format!("{tfa:?}").contains("alice"));
}
