//! Key rotation without loss: fifty users enrolled under key 1; the keyring
//! rotates to key 2; some users log in (re-sealed on use), a background
//! pass re-seals the rest ([`TwoFactor::reseal_user`]); then key 1 leaves
//! the keyring and every user still logs in.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tower_totp::ConfirmAs;
use tower_totp::clock::{Clock, ManualClock, UnixTime};
use tower_totp::code::Hotp;
use tower_totp::seal::{Keyring, SealError, SealingKey};
use tower_totp::store::{EnrollmentStore, MemoryStore};
use tower_totp::{Error, RejectReason, TotpConfig, TwoFactor, UserId, Verdict};

const USERS: usize = 50;
/// 2023-11-14T22:13:30Z plus 10 s, inside a step.
const T0: u64 = 1_700_000_010;

struct Setup {
    clock: ManualClock,
    store: MemoryStore,
}

impl Setup {
    fn engine(&self, keys: Keyring) -> TwoFactor {
        TwoFactor::builder(TotpConfig::new("Acme").unwrap())
            .clock(self.clock.clone())
            .store(self.store.clone())
            .keyring(keys)
            .build()
            .unwrap()
    }

    /// The key ids of the user's sealed secrets.
    async fn key_ids(&self, user: &UserId) -> Vec<u32> {
        self.store
            .authenticators(user)
            .await
            .unwrap()
            .iter()
            .map(|a| a.secret.key_id())
            .collect()
    }

    fn next_step(&self) {
        self.clock.advance(Duration::from_secs(30));
    }
}

/// The code `phone` shows now.
fn code(phone: &Hotp, clock: &ManualClock) -> String {
    phone.code_string(phone.params().step_at(clock.now()))
}

async fn enroll(tfa: &TwoFactor, user: &UserId, clock: &ManualClock) -> Hotp {
    let e = tfa
        .start_enrollment(user, user.as_str(), "Phone", None)
        .await
        .unwrap()
        .unwrap();
    let phone = Hotp::new(e.secret(), e.params());
    let confirmed = tfa
        .confirm_enrollment(
            user,
            e.id(),
            &code(&phone, clock),
            ConfirmAs::AnotherAuthenticator,
        )
        .await
        .unwrap();
    assert!(confirmed.is_confirmed(), "{confirmed:?}");
    phone
}

#[tokio::test]
async fn no_enrollment_is_lost_through_a_rotation() {
    let s = Setup {
        clock: ManualClock::new(UnixTime::from_secs(T0)),
        store: MemoryStore::new(),
    };
    let key1 = SealingKey::generate().unwrap();
    let key2 = SealingKey::generate().unwrap();
    let users: Vec<UserId> = (0..USERS)
        .map(|i| UserId::new(format!("user{i:02}")))
        .collect();

    // Everyone enrolls under key 1.
    let before = s.engine(Keyring::new(1, key1.clone()));
    let mut phones = Vec::new();
    for user in &users {
        phones.push(enroll(&before, user, &s.clock).await);
        assert_eq!(s.key_ids(user).await, [1]);
    }
    // One more starts an enrollment under key 1 and confirms it only after
    // the rotation: the pending record moves into the store still sealed
    // under key 1, and the background pass picks it up too.
    let late = UserId::new("late");
    let pending = before
        .start_enrollment(&late, "late", "Phone", None)
        .await
        .unwrap()
        .unwrap();
    let late_phone = Hotp::new(pending.secret(), pending.params());

    // Rotate: key 2 seals, key 1 still opens.
    let rotated = s.engine(Keyring::new(1, key1.clone()).rotated_to(2, key2.clone()));
    s.next_step();
    assert!(
        rotated
            .confirm_enrollment(
                &late,
                pending.id(),
                &code(&late_phone, &s.clock),
                ConfirmAs::AnotherAuthenticator
            )
            .await
            .unwrap()
            .is_confirmed()
    );
    assert_eq!(s.key_ids(&late).await, [1], "activated as it was sealed");

    // Every third user logs in: re-sealed on use, under key 2.
    s.next_step();
    let mut used_steps = Vec::new();
    for (i, (user, phone)) in users.iter().zip(&phones).enumerate() {
        if i % 3 != 0 {
            continue;
        }
        let verdict = rotated.verify(user, &code(phone, &s.clock)).await.unwrap();
        let Verdict::Accepted { step, .. } = verdict else {
            panic!("{user}: {verdict:?}");
        };
        used_steps.push((i, step));
        assert_eq!(s.key_ids(user).await, [2], "{user} re-sealed on use");
    }
    let logged_in = used_steps.len();
    for (i, user) in users.iter().enumerate() {
        if i % 3 != 0 {
            assert_eq!(s.key_ids(user).await, [1], "{user} untouched until used");
        }
    }

    // An engine without key 1 cannot re-seal yet: the old key is needed
    // until the background pass is done.
    let retired = s.engine(
        Keyring::new(1, key1.clone())
            .rotated_to(2, key2.clone())
            .without(1),
    );
    assert!(matches!(
        retired.reseal_user(&users[1]).await,
        Err(Error::Seal(SealError::UnknownKey(1)))
    ));

    // The background pass over the user list.
    let mut resealed = 0;
    for user in users.iter().chain([&late]) {
        resealed += rotated.reseal_user(user).await.unwrap();
    }
    assert_eq!(resealed, USERS - logged_in + 1);
    for user in users.iter().chain([&late]) {
        assert_eq!(s.key_ids(user).await, [2], "{user}");
        assert_eq!(rotated.reseal_user(user).await.unwrap(), 0, "idempotent");
    }
    // Nobody without state had a record made for them.
    assert_eq!(
        rotated.reseal_user(&UserId::new("nobody")).await.unwrap(),
        0
    );

    // Key 1 retired: every user still logs in, with the same authenticator
    // and its replay state intact.
    for (i, step) in &used_steps {
        let phone = &phones[*i];
        assert_eq!(
            retired
                .verify(&users[*i], &phone.code_string(*step))
                .await
                .unwrap(),
            Verdict::Rejected(RejectReason::Replayed),
            "a used step stays used through the re-seal"
        );
    }
    s.next_step();
    for (user, phone) in users.iter().zip(&phones).chain([(&late, &late_phone)]) {
        let verdict = retired.verify(user, &code(phone, &s.clock)).await.unwrap();
        assert!(verdict.is_accepted(), "{user}: {verdict:?}");
        assert_eq!(retired.authenticators(user).await.unwrap().len(), 1);
    }
}
