//! The throttle through `TwoFactor`: per-account failures, exact delays
//! under the manual clock, the cap, reset on success, temporary lockouts,
//! recovery codes on the same count, malformed input free of charge.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Harness, config};
use tower_totp::ConfirmAs;
use tower_totp::throttle::ThrottlePolicy;
use tower_totp::{RecoveryVerdict, RejectReason, UserId, Verdict};

const INVALID: Verdict = Verdict::Rejected(RejectReason::Invalid);

fn throttled(secs: u64) -> Verdict {
    throttled_ms(secs * 1000)
}

fn throttled_ms(millis: u64) -> Verdict {
    Verdict::Rejected(RejectReason::Throttled {
        retry_after: Duration::from_millis(millis),
    })
}

/// The default policy: 3 free failures, then 1 s doubling to 15 minutes.
/// Each failure's lockout is exactly the documented delay, counted to the
/// millisecond, and an attempt during a lockout is refused without being
/// charged.
#[tokio::test]
async fn delays_double_after_three_free_attempts_up_to_the_cap() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;

    // The fourth failure is the first one followed by a delay.
    for _ in 0..3 {
        assert_eq!(h.verify(&alice, &phone.wrong_code()).await, INVALID);
        // Malformed input in between is free.
        assert_eq!(
            h.verify(&alice, "12345").await,
            Verdict::Rejected(RejectReason::Malformed)
        );
    }
    let delays = [1u64, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900];
    for (i, delay) in delays.into_iter().enumerate() {
        assert_eq!(
            h.verify(&alice, &phone.wrong_code()).await,
            INVALID,
            "failure {}",
            i + 4
        );
        assert_eq!(
            h.verify(&alice, &phone.wrong_code()).await,
            throttled(delay)
        );
        h.clock.advance(Duration::from_millis(delay * 1000 - 1));
        assert_eq!(h.verify(&alice, &phone.wrong_code()).await, throttled_ms(1));
        h.clock.advance(Duration::from_millis(1));
    }
    let state = h.tfa.store().throttle_state(&alice).await.unwrap();
    assert_eq!(state.attempts, 3 + 13, "refused attempts are not charged");
}

/// While locked out even the right code is refused; once the lockout ends,
/// the right code is accepted and the count starts again from zero.
#[tokio::test]
async fn success_resets_and_lockouts_end_by_themselves() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;
    let policy = ThrottlePolicy::default();

    // Reach the cap: 14 failures, each as soon as the previous lockout ends.
    for n in 1..=14 {
        assert_eq!(h.verify(&alice, &phone.wrong_code()).await, INVALID);
        if n < 14 {
            h.clock.advance(policy.delay_after(n));
        }
    }
    assert_eq!(h.verify(&alice, &phone.code(0)).await, throttled(900));

    // Nobody does anything; the lockout ends on its own.
    h.clock.advance(Duration::from_secs(900));
    assert!(h.verify(&alice, &phone.code(0)).await.is_accepted());
    assert_eq!(
        h.tfa.store().throttle_state(&alice).await.unwrap(),
        Default::default()
    );

    // The count starts again: three free failures, then 1 s.
    for _ in 0..4 {
        assert_eq!(h.verify(&alice, &phone.wrong_code()).await, INVALID);
    }
    assert_eq!(h.verify(&alice, &phone.wrong_code()).await, throttled(1));
}

#[tokio::test]
async fn the_longest_lockout_is_the_cap() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;
    for _ in 0..100 {
        match h.verify(&alice, &phone.wrong_code()).await {
            Verdict::Rejected(RejectReason::Throttled { retry_after }) => {
                assert!(retry_after <= Duration::from_secs(900));
                h.clock.advance(retry_after);
            }
            other => assert_eq!(other, INVALID),
        }
    }
    assert_eq!(h.verify(&alice, &phone.wrong_code()).await, throttled(900));
}

/// Failures count per account, not per session: one user's lockout leaves
/// another user alone, and every "session" of the locked user is refused.
#[tokio::test]
async fn failures_count_per_account() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let bob = UserId::new("bob");
    let alices = h.enroll(&alice, "phone").await;
    let bobs = h.enroll(&bob, "phone").await;
    for _ in 0..4 {
        assert_eq!(h.verify(&alice, &alices.wrong_code()).await, INVALID);
    }
    assert_eq!(h.verify(&alice, &alices.code(0)).await, throttled(1));
    // A second engine over the same store (another server, another session).
    let other = tower_totp::TwoFactor::builder(config())
        .clock(h.clock.clone())
        .shared_store(h.tfa.store().clone())
        .build()
        .unwrap();
    assert_eq!(
        other.verify(&alice, &alices.code(0)).await.unwrap(),
        throttled(1)
    );
    assert!(h.verify(&bob, &bobs.code(0)).await.is_accepted());
}

/// A custom policy without free attempts locks from the first failure.
#[tokio::test]
async fn a_custom_policy_is_followed_exactly() {
    let policy =
        ThrottlePolicy::new(0, Duration::from_millis(250), Duration::from_secs(1)).unwrap();
    let h = Harness::new(config().with_throttle(policy));
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;
    for delay in [250, 500, 1000, 1000] {
        assert_eq!(h.verify(&alice, &phone.wrong_code()).await, INVALID);
        assert_eq!(h.verify(&alice, &phone.code(0)).await, throttled_ms(delay));
        h.clock.advance(Duration::from_millis(delay));
    }
    assert!(h.verify(&alice, &phone.code(0)).await.is_accepted());
}

/// Recovery codes and codes draw on one count, both ways.
#[tokio::test]
async fn recovery_codes_are_counted_by_the_same_throttle() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;
    let codes: Vec<String> = phone
        .recovery
        .as_ref()
        .unwrap()
        .as_strings()
        .map(str::to_owned)
        .collect();

    // Wrong recovery codes lock out codes.
    for _ in 0..4 {
        assert_eq!(
            h.tfa
                .use_recovery_code(&alice, "aaaa-bbbb-cccc")
                .await
                .unwrap(),
            RecoveryVerdict::Rejected(RejectReason::Invalid)
        );
    }
    assert_eq!(h.verify(&alice, &phone.code(0)).await, throttled(1));
    // ...and a right recovery code too.
    assert_eq!(
        h.tfa.use_recovery_code(&alice, &codes[0]).await.unwrap(),
        RecoveryVerdict::Rejected(RejectReason::Throttled {
            retry_after: Duration::from_secs(1)
        })
    );
    h.clock.advance(Duration::from_secs(1));
    assert_eq!(
        h.tfa.use_recovery_code(&alice, &codes[0]).await.unwrap(),
        RecoveryVerdict::Accepted { remaining: 9 }
    );
    assert_eq!(
        h.tfa.store().throttle_state(&alice).await.unwrap().attempts,
        0,
        "a recovery code resets the count"
    );

    // Wrong codes lock out recovery codes.
    for _ in 0..4 {
        assert_eq!(h.verify(&alice, &phone.wrong_code()).await, INVALID);
    }
    assert_eq!(
        h.tfa.use_recovery_code(&alice, &codes[1]).await.unwrap(),
        RecoveryVerdict::Rejected(RejectReason::Throttled {
            retry_after: Duration::from_secs(1)
        })
    );
}

/// Malformed input costs nothing: neither codes nor recovery codes.
#[tokio::test]
async fn malformed_input_is_not_charged() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;
    for i in 0..50 {
        // Letters are never a code; `1` is outside the recovery alphabet.
        assert_eq!(
            h.verify(&alice, &"x".repeat(i)).await,
            Verdict::Rejected(RejectReason::Malformed)
        );
        assert_eq!(
            h.tfa
                .use_recovery_code(&alice, &"1".repeat(i))
                .await
                .unwrap(),
            RecoveryVerdict::Rejected(RejectReason::Malformed)
        );
    }
    assert_eq!(
        h.tfa.store().throttle_state(&alice).await.unwrap().attempts,
        0
    );
    assert!(h.verify(&alice, &phone.code(0)).await.is_accepted());
}

/// Wrong first codes at enrollment are charged as well.
#[tokio::test]
async fn enrollment_confirmation_is_throttled() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let e = h
        .tfa
        .start_enrollment(&alice, "alice", "phone", None)
        .await
        .unwrap()
        .unwrap();
    let hotp = tower_totp::code::Hotp::new(e.secret(), e.params());
    let wrong = common::wrong_code(&hotp, h.step());
    for _ in 0..4 {
        assert!(
            !h.tfa
                .confirm_enrollment(&alice, e.id(), &wrong, ConfirmAs::AnotherAuthenticator)
                .await
                .unwrap()
                .is_confirmed()
        );
    }
    match h
        .tfa
        .confirm_enrollment(
            &alice,
            e.id(),
            &hotp.code_string(h.step()),
            ConfirmAs::AnotherAuthenticator,
        )
        .await
        .unwrap()
    {
        tower_totp::Confirmation::Rejected(RejectReason::Throttled { retry_after }) => {
            assert_eq!(retry_after, Duration::from_secs(1));
        }
        other => panic!("{other:?}"),
    }
}
