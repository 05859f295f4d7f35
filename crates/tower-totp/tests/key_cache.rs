//! The key cache (`TwoFactorBuilder::key_cache`): a hit unseals nothing, a
//! record changed by another instance is noticed by its version, this
//! engine's revocations and resets evict, entries expire by the engine's
//! clock, the capacity bounds it, disabled keeps nothing, and verification
//! answers exactly as without it (totp-rs as the oracle of the codes).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use proptest::prelude::*;
use tower_totp::clock::{Clock, ManualClock, UnixTime};
use tower_totp::code::{CodeParams, Hotp, Secret};
use tower_totp::seal::{Keyring, SealingKey};
use tower_totp::store::{
    AuthenticatorId, EnrollmentStore, MemoryStore, ResealOutcome, RevokeOutcome,
};
use tower_totp::{ConfirmAs, KeyCacheConfig, RejectReason, TotpConfig, TwoFactor, UserId, Verdict};

const T0: u64 = 1_700_000_010;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// An engine over `store`, `clock` and `keys` with the key cache `cache`.
fn engine(
    store: &MemoryStore,
    clock: &ManualClock,
    keys: &Keyring,
    cache: KeyCacheConfig,
) -> TwoFactor {
    TwoFactor::builder(TotpConfig::new("Acme").unwrap())
        .store(store.clone())
        .clock(clock.clone())
        .keyring(keys.clone())
        .key_cache(cache)
        .build()
        .unwrap()
}

/// A user enrolled on `tfa`, and the phone's generator.
struct Enrolled {
    user: UserId,
    id: AuthenticatorId,
    phone: Hotp,
    /// The secret's bytes, for the totp-rs oracle.
    secret: Vec<u8>,
}

fn enroll(tfa: &TwoFactor, name: &str) -> Enrolled {
    block_on(async {
        let user = UserId::new(name);
        let e = tfa
            .start_enrollment(&user, name, "phone", None)
            .await
            .unwrap()
            .unwrap();
        let phone = Hotp::new(e.secret(), e.params());
        let step = e.params().step_at(tfa.now());
        let confirmed = tfa
            .confirm_enrollment(
                &user,
                e.id(),
                &phone.code_string(step),
                ConfirmAs::AnotherAuthenticator,
            )
            .await
            .unwrap();
        assert!(confirmed.is_confirmed());
        Enrolled {
            user,
            id: e.id().clone(),
            phone,
            secret: e.secret().as_bytes().to_vec(),
        }
    })
}

/// Move `clock` one period on and verify the phone's code for then.
fn next_code(tfa: &TwoFactor, clock: &ManualClock, who: &Enrolled) -> Verdict {
    clock.advance(Duration::from_secs(30));
    let step = who.phone.params().step_at(clock.now());
    block_on(tfa.verify(&who.user, &who.phone.code_string(step))).unwrap()
}

fn setup(cache: KeyCacheConfig) -> (MemoryStore, ManualClock, Keyring, TwoFactor) {
    let store = MemoryStore::new();
    let clock = ManualClock::new(UnixTime::from_secs(T0));
    let keys = Keyring::ephemeral().unwrap();
    let tfa = engine(&store, &clock, &keys, cache);
    (store, clock, keys, tfa)
}

#[test]
fn a_hit_does_not_unseal_again() {
    let (_, clock, _, tfa) = setup(KeyCacheConfig::default());
    let alice = enroll(&tfa, "alice");
    // Confirming the enrollment opened the pending secret outside the cache.
    assert_eq!(tfa.key_cache_stats().opens, 0);
    for _ in 0..3 {
        assert!(next_code(&tfa, &clock, &alice).is_accepted());
    }
    let stats = tfa.key_cache_stats();
    assert_eq!((stats.entries, stats.opens), (1, 1));
}

#[test]
fn another_instances_reseal_is_noticed() {
    // Sealed under key 1; then two instances rotated to key 2.
    let store = MemoryStore::new();
    let clock = ManualClock::new(UnixTime::from_secs(T0));
    let old = Keyring::new(1, SealingKey::generate().unwrap());
    let alice = enroll(
        &engine(&store, &clock, &old, KeyCacheConfig::disabled()),
        "alice",
    );
    let keys = old.rotated_to(2, SealingKey::generate().unwrap());
    let a = engine(&store, &clock, &keys, KeyCacheConfig::default());
    // `a` re-seals on use (and evicts its own entry): the record under key 2
    // is cached on the next code.
    assert!(next_code(&a, &clock, &alice).is_accepted());
    assert!(next_code(&a, &clock, &alice).is_accepted());
    assert_eq!(a.key_cache_stats().opens, 2);
    assert!(next_code(&a, &clock, &alice).is_accepted());
    assert_eq!(a.key_cache_stats().opens, 2, "a hit");

    // `b` rotates on to key 3 and re-seals in the background. `a`'s
    // cached state is of the key-2 record: the version differs, so `a`
    // opens the new record, which its keyring (keys 1 and 2) cannot: it
    // fails closed rather than answer from the stale state, and wipes it.
    let b = engine(
        &store,
        &clock,
        &keys.clone().rotated_to(3, SealingKey::generate().unwrap()),
        KeyCacheConfig::default(),
    );
    assert_eq!(block_on(b.reseal_user(&alice.user)).unwrap(), 1);
    clock.advance(Duration::from_secs(30));
    let step = alice.phone.params().step_at(clock.now());
    let stale = block_on(a.verify(&alice.user, &alice.phone.code_string(step)));
    assert!(
        matches!(stale, Err(tower_totp::Error::Seal(_))),
        "{stale:?}"
    );
    assert_eq!(a.key_cache_stats().entries, 0, "the stale entry is wiped");
    assert_eq!(a.key_cache_stats().opens, 3);
}

/// Another instance writes a different secret under the same authenticator
/// id (a re-enrollment that kept the id, or a store restored from a
/// backup): the new secret's codes pass, the old one's no longer do.
#[test]
fn another_instances_new_secret_is_noticed() {
    let (store, clock, keys, tfa) = setup(KeyCacheConfig::default());
    let alice = enroll(&tfa, "alice");
    assert!(next_code(&tfa, &clock, &alice).is_accepted());
    assert_eq!(tfa.key_cache_stats().entries, 1);

    let secret = Secret::generate();
    let sealed = keys.seal(&alice.user, &secret).unwrap();
    let resealed = block_on(store.reseal(&alice.user, &alice.id, sealed)).unwrap();
    assert_eq!(resealed, ResealOutcome::Resealed);
    let new_phone = Enrolled {
        user: alice.user.clone(),
        id: alice.id.clone(),
        phone: Hotp::new(&secret, CodeParams::default()),
        secret: secret.as_bytes().to_vec(),
    };
    assert_eq!(
        next_code(&tfa, &clock, &alice),
        Verdict::Rejected(RejectReason::Invalid),
        "the old secret's code"
    );
    assert!(next_code(&tfa, &clock, &new_phone).is_accepted());
    assert_eq!(tfa.key_cache_stats().opens, 2);
}

#[test]
fn revoke_and_reset_evict() {
    let (_, clock, _, tfa) = setup(KeyCacheConfig::default());
    let alice = enroll(&tfa, "alice");
    let bob = enroll(&tfa, "bob");
    assert!(next_code(&tfa, &clock, &alice).is_accepted());
    assert!(next_code(&tfa, &clock, &bob).is_accepted());
    assert_eq!(tfa.key_cache_stats().entries, 2);
    let revoked = block_on(tfa.revoke(&alice.user, &alice.id)).unwrap();
    assert_eq!(revoked, RevokeOutcome::Revoked);
    assert_eq!(tfa.key_cache_stats().entries, 1);
    block_on(tfa.reset(&bob.user)).unwrap();
    assert_eq!(tfa.key_cache_stats().entries, 0);

    let carol = enroll(&tfa, "carol");
    assert!(next_code(&tfa, &clock, &carol).is_accepted());
    block_on(tfa.reset_by(&UserId::new("admin"), &carol.user)).unwrap();
    assert_eq!(tfa.key_cache_stats().entries, 0);
}

#[test]
fn a_replaced_phone_is_evicted() {
    let (_, clock, _, tfa) = setup(KeyCacheConfig::default());
    let alice = enroll(&tfa, "alice");
    assert!(next_code(&tfa, &clock, &alice).is_accepted());
    assert_eq!(tfa.key_cache_stats().entries, 1);
    block_on(async {
        let e = tfa
            .start_enrollment(&alice.user, "alice", "new phone", Some(alice.id.clone()))
            .await
            .unwrap()
            .unwrap();
        let phone = Hotp::new(e.secret(), e.params());
        let step = e.params().step_at(tfa.now());
        let confirmed = tfa
            .confirm_enrollment(
                &alice.user,
                e.id(),
                &phone.code_string(step),
                ConfirmAs::AnotherAuthenticator,
            )
            .await
            .unwrap();
        assert!(confirmed.is_confirmed());
    });
    assert_eq!(tfa.key_cache_stats().entries, 0);
}

#[test]
fn entries_expire_by_the_engines_clock() {
    let (_, clock, _, tfa) = setup(KeyCacheConfig::new(100, Duration::from_secs(60)));
    let alice = enroll(&tfa, "alice");
    let bob = enroll(&tfa, "bob");
    assert!(next_code(&tfa, &clock, &alice).is_accepted()); // opened at +30 s
    assert!(next_code(&tfa, &clock, &bob).is_accepted()); // opened at +60 s
    assert!(next_code(&tfa, &clock, &alice).is_accepted()); // +90 s: expired
    assert_eq!(tfa.key_cache_stats().opens, 3);
    clock.advance(Duration::from_secs(600));
    // Bob's entry, not asked for since, is swept by the next verification.
    assert!(next_code(&tfa, &clock, &alice).is_accepted());
    let stats = tfa.key_cache_stats();
    assert_eq!((stats.entries, stats.opens), (1, 4));
}

#[test]
fn the_capacity_holds() {
    let (_, clock, _, tfa) = setup(KeyCacheConfig::new(4, Duration::from_secs(3600)));
    let users: Vec<Enrolled> = (0..12).map(|i| enroll(&tfa, &format!("user{i}"))).collect();
    for who in &users {
        assert!(next_code(&tfa, &clock, who).is_accepted());
        assert!(tfa.key_cache_stats().entries <= 4);
    }
    assert!(tfa.key_cache_stats().entries > 0);
}

#[test]
fn disabled_keeps_nothing() {
    let (_, clock, _, tfa) = setup(KeyCacheConfig::disabled());
    let alice = enroll(&tfa, "alice");
    for _ in 0..3 {
        assert!(next_code(&tfa, &clock, &alice).is_accepted());
    }
    let stats = tfa.key_cache_stats();
    assert_eq!((stats.entries, stats.opens), (0, 3));
}

#[test]
fn debug_output_shows_no_secret() {
    let (_, clock, _, tfa) = setup(KeyCacheConfig::default());
    let alice = enroll(&tfa, "alice");
    assert!(next_code(&tfa, &clock, &alice).is_accepted());
    let text = format!("{tfa:?}");
    // The memory store prints its records (sealed); the cache's part is last.
    let cache = &text[text.find("key_cache").expect("the cache is shown")..];
    assert!(cache.contains("entries: 1"), "{cache}");
    let step = alice.phone.params().step_at(clock.now());
    for code in (step - 2..=step + 2).map(|s| alice.phone.code_string(s)) {
        assert!(!text.contains(&code), "{text}");
    }
    assert!(!cache.contains("alice"), "no user ids either: {cache}");
}

/// What a verdict says, without the authenticator's random id.
fn outcome(v: &Verdict) -> String {
    match v {
        Verdict::Accepted {
            step,
            offset,
            resynchronised,
            ..
        } => format!("accepted {step} {offset} {resynchronised}"),
        other => format!("{other:?}"),
    }
}

fn oracle(secret: &[u8]) -> totp_rs::Totp {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(secret.to_vec())
        .build()
        .unwrap()
}

/// One thing a user does: wait `wait` periods (and `jitter` seconds), then
/// type the code of the step `delta` away from now, or a wrong code.
#[derive(Debug, Clone)]
struct Typed {
    wait: u64,
    jitter: u64,
    delta: Option<i64>,
}

fn typed() -> impl Strategy<Value = Typed> {
    (
        0u64..4,
        0u64..30,
        prop_oneof![3 => (-12i64..=12).prop_map(Some), 1 => Just(None)],
    )
        .prop_map(|(wait, jitter, delta)| Typed {
            wait,
            jitter,
            delta,
        })
}

/// A code of the phone `totp` for the step `delta` from `now`, or one that
/// matches no step within 50 of it.
fn input(totp: &totp_rs::Totp, hotp: &Hotp, now: u64, delta: Option<i64>) -> String {
    let step = now / 30;
    match delta {
        Some(d) => totp
            .generate(step.saturating_add_signed(d) * 30)
            .to_string(),
        None => {
            let near: Vec<u32> = (step - 50..=step + 50).map(|s| hotp.code(s)).collect();
            format!("{:06}", (0..).find(|v| !near.contains(v)).unwrap())
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The same sequence of codes, typed at the same times, gets the same
    /// answers from an engine with the key cache (small and short-lived,
    /// so that hits, expiries and refills all happen) and one without.
    #[test]
    fn the_cache_changes_no_verdict(steps in proptest::collection::vec(typed(), 1..40)) {
        let clock = ManualClock::new(UnixTime::from_secs(T0));
        let cached = engine(&MemoryStore::new(), &clock, &Keyring::ephemeral().unwrap(),
            KeyCacheConfig::new(1, Duration::from_secs(75)));
        let plain = engine(&MemoryStore::new(), &clock, &Keyring::ephemeral().unwrap(),
            KeyCacheConfig::disabled());
        // Each engine draws its own secret: each gets its own phone's code
        // (by totp-rs) for the same step at the same time.
        let phones = [enroll(&cached, "alice"), enroll(&plain, "alice")];
        let oracles: Vec<totp_rs::Totp> = phones.iter().map(|p| oracle(&p.secret)).collect();
        for t in &steps {
            clock.advance(Duration::from_secs(t.wait * 30 + t.jitter));
            let now = clock.now().as_secs();
            let mut verdicts = Vec::new();
            for ((tfa, p), totp) in [&cached, &plain].into_iter().zip(&phones).zip(&oracles) {
                let code = input(totp, &p.phone, now, t.delta);
                verdicts.push(outcome(&block_on(tfa.verify(&p.user, &code)).unwrap()));
            }
            prop_assert_eq!(&verdicts[0], &verdicts[1], "{:?}", t);
        }
        prop_assert_eq!(plain.key_cache_stats().entries, 0);
    }
}
