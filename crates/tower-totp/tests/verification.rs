//! Verification through `TwoFactor`: the window, drift and resynchronisation
//! (RFC 6238 section 6), replay refusal, the input rule, and times near the
//! epoch and far in the future.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Harness, accepted_offset, config, config_with_window};
use tower_totp::ConfirmAs;
use tower_totp::clock::{Clock, UnixTime};
use tower_totp::throttle::ThrottlePolicy;
use tower_totp::{RejectReason, UserId, Verdict};

const INVALID: Verdict = Verdict::Rejected(RejectReason::Invalid);
const REPLAYED: Verdict = Verdict::Rejected(RejectReason::Replayed);
const MALFORMED: Verdict = Verdict::Rejected(RejectReason::Malformed);

/// Steps in a week. A resynchronisation must be plausible for the time
/// since the device's last accepted code (at most 1% of it by default, one
/// step per 100): tests of drift let a week pass after the enrollment, as
/// a real phone does before it drifts out of the window.
const A_WEEK: u64 = 7 * 24 * 120;

// ---------------------------------------------------------------- window

/// For each configuration, every offset in `-behind..=ahead` is accepted
/// (one fresh user per offset, so neither replay nor drift interferes) and
/// the offsets just outside are refused.
#[tokio::test]
async fn window_accepts_exactly_behind_to_ahead() {
    for (behind, ahead) in [(0, 0), (1, 1), (2, 2), (2, 0), (0, 3), (1, 2)] {
        let h = Harness::new(config_with_window(behind, ahead, 10));
        let behind = i64::from(behind);
        let ahead = i64::from(ahead);
        for offset in -behind..=ahead {
            let user = UserId::new(format!("in-{behind}-{ahead}-{offset}"));
            let phone = h.enroll(&user, "phone").await;
            let verdict = h.verify(&user, &phone.code(offset)).await;
            assert_eq!(
                accepted_offset(&verdict),
                offset,
                "window -{behind}/+{ahead}"
            );
        }
        for offset in [-behind - 1, ahead + 1] {
            let user = UserId::new(format!("out-{behind}-{ahead}-{offset}"));
            let phone = h.enroll(&user, "phone").await;
            assert_eq!(
                h.verify(&user, &phone.code(offset)).await,
                INVALID,
                "window -{behind}/+{ahead}, offset {offset}"
            );
        }
    }
}

/// The accepted step is the one the code belongs to, not the server's.
#[tokio::test]
async fn the_verdict_names_the_matched_step() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;
    let now = h.step();
    match h.verify(&alice, &phone.code(1)).await {
        Verdict::Accepted {
            authenticator,
            step,
            offset,
            resynchronised,
        } => {
            assert_eq!(authenticator, phone.id);
            assert_eq!(step, now + 1);
            assert_eq!(offset, 1);
            assert!(!resynchronised);
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- drift

/// After a code at offset +1 the window is centred on +1: offset +2 is
/// accepted next, and after that the server's own step is outside.
#[tokio::test]
async fn window_is_centred_on_the_learned_offset() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;

    assert_eq!(accepted_offset(&h.verify(&alice, &phone.code(1)).await), 1);
    h.advance_steps(1);
    // +2 is outside the default window around 0, inside the one around +1.
    assert_eq!(accepted_offset(&h.verify(&alice, &phone.code(2)).await), 2);
    assert_eq!(h.tfa.authenticators(&alice).await.unwrap()[0].offset, 2);
    h.advance_steps(2);
    // Centred on +2, the window is +1..=+3: offset 0 is no longer in it.
    assert_eq!(h.verify(&alice, &phone.code(0)).await, INVALID);
    assert_eq!(accepted_offset(&h.verify(&alice, &phone.code(1)).await), 1);
    // And the learned offset follows the device back.
    assert_eq!(h.tfa.authenticators(&alice).await.unwrap()[0].offset, 1);
}

#[tokio::test]
async fn a_drifted_code_alone_is_not_accepted() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;
    h.advance_steps(A_WEEK);
    for offset in [2, 5, 10, -2, -5, -10] {
        assert_eq!(
            h.verify(&alice, &phone.code(offset)).await,
            INVALID,
            "offset {offset}"
        );
        h.advance_steps(3);
    }
    assert_eq!(h.tfa.authenticators(&alice).await.unwrap()[0].offset, 0);
}

/// Two codes for consecutive steps at the same offset, one period apart,
/// resynchronise: the second is accepted and the window moves there.
#[tokio::test]
async fn two_consecutive_codes_at_one_offset_resynchronise() {
    for offset in [5i64, -4, 10, -10, 2, -2] {
        let h = Harness::new(config());
        let alice = UserId::new("alice");
        let phone = h.enroll(&alice, "phone").await;
        h.advance_steps(A_WEEK);

        assert_eq!(h.verify(&alice, &phone.code(offset)).await, INVALID);
        h.advance_steps(1);
        let step = h.step().checked_add_signed(offset).unwrap();
        assert_eq!(
            h.verify(&alice, &phone.code(offset)).await,
            Verdict::Accepted {
                authenticator: phone.id.clone(),
                step,
                offset,
                resynchronised: true,
            },
            "offset {offset}"
        );
        assert_eq!(
            h.tfa.authenticators(&alice).await.unwrap()[0].offset,
            offset
        );

        // From now on the device's codes are accepted alone.
        h.advance_steps(1);
        let verdict = h.verify(&alice, &phone.code(offset)).await;
        assert!(
            matches!(verdict, Verdict::Accepted { resynchronised: false, offset: o, .. } if o == offset),
            "{verdict:?}"
        );
    }
}

#[tokio::test]
async fn a_non_consecutive_pair_does_not_resynchronise() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;
    h.advance_steps(A_WEEK);

    // Same offset, but two steps apart.
    assert_eq!(h.verify(&alice, &phone.code(5)).await, INVALID);
    h.advance_steps(2);
    assert_eq!(h.verify(&alice, &phone.code(5)).await, INVALID);

    // Consecutive steps, but at different offsets (submitted within one period).
    h.advance_steps(3);
    let now = h.step();
    assert_eq!(
        h.verify(&alice, &phone.code_for_step(now + 5)).await,
        INVALID
    );
    assert_eq!(
        h.verify(&alice, &phone.code_for_step(now + 6)).await,
        INVALID
    );

    // Going backwards does not count either.
    h.advance_steps(3);
    assert_eq!(h.verify(&alice, &phone.code(6)).await, INVALID);
    h.advance_steps(1);
    assert_eq!(h.verify(&alice, &phone.code(4)).await, INVALID);

    assert_eq!(h.tfa.authenticators(&alice).await.unwrap()[0].offset, 0);
}

#[tokio::test]
async fn beyond_max_drift_never_resynchronises() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;
    h.advance_steps(A_WEEK);
    for offset in [11i64, -11, 50] {
        for _ in 0..3 {
            assert_eq!(
                h.verify(&alice, &phone.code(offset)).await,
                INVALID,
                "offset {offset}"
            );
            h.advance_steps(1);
        }
        h.clock.advance(Duration::from_secs(3600)); // out of any lockout
    }
    assert_eq!(h.tfa.authenticators(&alice).await.unwrap()[0].offset, 0);
}

/// A smaller maximum drift bounds the resynchronisation too.
#[tokio::test]
async fn max_drift_is_configurable() {
    let h = Harness::new(config_with_window(1, 1, 3));
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;
    h.advance_steps(A_WEEK);
    assert_eq!(h.verify(&alice, &phone.code(4)).await, INVALID);
    h.advance_steps(1);
    assert_eq!(h.verify(&alice, &phone.code(4)).await, INVALID);

    h.advance_steps(1);
    assert_eq!(h.verify(&alice, &phone.code(3)).await, INVALID);
    h.advance_steps(1);
    assert!(
        matches!(
            h.verify(&alice, &phone.code(3)).await,
            Verdict::Accepted {
                resynchronised: true,
                offset: 3,
                ..
            }
        ),
        "3 is within the maximum drift"
    );
}

/// A device at the edge of the maximum drift that drifts one step further
/// is still accepted (it is inside the window around the learned offset),
/// but the learned offset stays at the maximum.
#[tokio::test]
async fn learned_offset_is_clamped_to_max_drift() {
    for sign in [1i64, -1] {
        let h = Harness::new(config());
        let alice = UserId::new("alice");
        let phone = h.enroll(&alice, "phone").await;
        h.advance_steps(A_WEEK);
        let edge = 10 * sign;
        assert_eq!(h.verify(&alice, &phone.code(edge)).await, INVALID);
        h.advance_steps(1);
        assert!(h.verify(&alice, &phone.code(edge)).await.is_accepted());
        assert_eq!(h.tfa.authenticators(&alice).await.unwrap()[0].offset, edge);

        // Two steps on, so that a device losing a step still shows a new one.
        h.advance_steps(2);
        let verdict = h.verify(&alice, &phone.code(edge + sign)).await;
        assert_eq!(accepted_offset(&verdict), edge, "clamped in the verdict");
        assert_eq!(
            h.tfa.authenticators(&alice).await.unwrap()[0].offset,
            edge,
            "clamped in the store"
        );
    }
}

/// An accepted code in between drops the resync candidate: a pair must be
/// "in a row".
#[tokio::test]
async fn an_accepted_code_in_between_breaks_the_pair() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;
    h.advance_steps(A_WEEK);
    assert_eq!(h.verify(&alice, &phone.code(5)).await, INVALID);
    h.advance_steps(1);
    assert!(h.verify(&alice, &phone.code(0)).await.is_accepted());
    assert_eq!(h.verify(&alice, &phone.code(5)).await, INVALID);
}

// ---------------------------------------------------------------- replay

#[tokio::test]
async fn a_code_is_accepted_once() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;
    let code = phone.code(0);
    assert!(h.verify(&alice, &code).await.is_accepted());
    assert_eq!(h.verify(&alice, &code).await, REPLAYED);
    // Still refused later, while the step is in the window.
    h.clock.advance(Duration::from_secs(29));
    assert_eq!(h.verify(&alice, &code).await, REPLAYED);
}

#[tokio::test]
async fn only_steps_newer_than_the_last_accepted_one_pass() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;
    // The code of the next step is accepted early...
    assert_eq!(accepted_offset(&h.verify(&alice, &phone.code(1)).await), 1);
    // ...after which the current and previous steps are refused as replays.
    assert_eq!(h.verify(&alice, &phone.code(0)).await, REPLAYED);
    h.advance_steps(1);
    assert_eq!(h.verify(&alice, &phone.code(0)).await, REPLAYED);
    assert!(h.verify(&alice, &phone.code(1)).await.is_accepted());
}

#[tokio::test]
async fn the_enrollment_code_cannot_be_replayed_at_login() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let enrollment = h
        .tfa
        .start_enrollment(&alice, "alice@example.com", "phone", None)
        .await
        .unwrap()
        .unwrap();
    let phone = tower_totp::code::Hotp::new(enrollment.secret(), enrollment.params());
    let code = phone.code_string(h.step());
    assert!(
        h.tfa
            .confirm_enrollment(
                &alice,
                enrollment.id(),
                &code,
                ConfirmAs::AnotherAuthenticator
            )
            .await
            .unwrap()
            .is_confirmed()
    );
    assert_eq!(h.verify(&alice, &code).await, REPLAYED);
    h.clock.advance(Duration::from_secs(30));
    assert_eq!(h.verify(&alice, &code).await, REPLAYED);
}

/// Many concurrent submissions of one valid code: exactly one wins. The
/// throttle is opened wide so that every loser reaches the replay guard.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_submissions_of_one_code_have_one_winner() {
    const TASKS: usize = 64;
    let wide_open =
        ThrottlePolicy::new(10_000, Duration::from_secs(1), Duration::from_secs(1)).unwrap();
    for round in 0..5 {
        let h = Harness::new(config().with_throttle(wide_open));
        let alice = UserId::new("alice");
        let phone = h.enroll(&alice, "phone").await;
        let code = Arc::new(phone.code(0));
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (tfa, alice, code, barrier) =
                    (h.tfa.clone(), alice.clone(), code.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    tfa.verify(&alice, &code).await.unwrap()
                })
            })
            .collect();
        let mut accepted = 0;
        for task in tasks {
            match task.await.unwrap() {
                v if v.is_accepted() => accepted += 1,
                v => assert_eq!(v, REPLAYED, "round {round}"),
            }
        }
        assert_eq!(accepted, 1, "round {round}");
    }
}

/// With the default throttle, the losers are refused as replays or by the
/// throttle, and still only one submission wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_submissions_under_the_default_throttle_have_one_winner() {
    const TASKS: usize = 64;
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;
    let code = Arc::new(phone.code(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (tfa, alice, code) = (h.tfa.clone(), alice.clone(), code.clone());
            tokio::spawn(async move { tfa.verify(&alice, &code).await.unwrap() })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            v if v.is_accepted() => accepted += 1,
            Verdict::Rejected(RejectReason::Replayed | RejectReason::Throttled { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(accepted, 1);
}

// ---------------------------------------------------------------- input

#[tokio::test]
async fn typed_variants_of_a_code_are_accepted() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;
    let variants: [fn(&str) -> String; 7] = [
        |c| format!("{} {}", &c[..3], &c[3..]),
        |c| format!("{}-{}", &c[..3], &c[3..]),
        |c| format!("  {c}\t"),
        |c| c.chars().flat_map(|d| [d, ' ']).collect(),
        |c| {
            c.chars()
                .map(|d| char::from_u32(d as u32 - '0' as u32 + 0xFF10).unwrap())
                .collect()
        },
        |c| format!("{}\u{3000}{}", &c[..3], &c[3..]),
        |c| format!("{}\u{FF0D}{}", &c[..3], &c[3..]),
    ];
    for (i, variant) in variants.iter().enumerate() {
        let typed = variant(&phone.code(0));
        assert!(
            h.verify(&alice, &typed).await.is_accepted(),
            "variant {i}: {typed:?}"
        );
        h.advance_steps(1);
    }
}

#[tokio::test]
async fn malformed_input_is_malformed_and_not_charged() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;
    let code = phone.code(0);
    let too_long = format!("{code}1");
    let letters = format!("{}a", &code[..5]);
    // Other scripts' digits are digits, but five of them are not a code.
    let arabic_indic = "١٢٣٤٥".to_owned();
    let huge = "1".repeat(10_000);
    for bad in [
        "",
        "12345",
        &too_long,
        &letters,
        "12_345",
        "+123456",
        &arabic_indic,
        &huge,
        "\u{0}\u{1}",
    ] {
        assert_eq!(h.verify(&alice, bad).await, MALFORMED, "{bad:?}");
    }
    let state = h.tfa.store().throttle_state(&alice).await.unwrap();
    assert_eq!(state.attempts, 0);
    // The right code still works afterwards, at once, typed in
    // Arabic-Indic digits.
    let in_arabic_indic: String = code
        .chars()
        .map(|c| char::from_u32(0x0660 + c.to_digit(10).unwrap()).unwrap())
        .collect();
    assert!(h.verify(&alice, &in_arabic_indic).await.is_accepted());
}

#[tokio::test]
async fn an_unenrolled_user_is_told_so() {
    let h = Harness::new(config());
    assert_eq!(
        h.verify(&UserId::new("nobody"), "123456").await,
        Verdict::Rejected(RejectReason::NotEnrolled)
    );
}

// ---------------------------------------------------------------- extreme times

/// The first minute after the epoch: steps 0 and 1, where the window would
/// reach below step 0.
#[tokio::test]
async fn times_near_the_epoch_work() {
    let h = Harness::at(config(), UnixTime::EPOCH);
    let alice = UserId::new("alice");
    let enrollment = h
        .tfa
        .start_enrollment(&alice, "a", "phone", None)
        .await
        .unwrap()
        .unwrap();
    let phone = tower_totp::code::Hotp::new(enrollment.secret(), enrollment.params());
    assert!(
        h.tfa
            .confirm_enrollment(
                &alice,
                enrollment.id(),
                &phone.code_string(0),
                ConfirmAs::AnotherAuthenticator
            )
            .await
            .unwrap()
            .is_confirmed()
    );
    assert_eq!(h.verify(&alice, &phone.code_string(0)).await, REPLAYED);
    assert_eq!(
        accepted_offset(&h.verify(&alice, &phone.code_string(1)).await),
        1
    );
    h.clock.set(UnixTime::from_secs(31));
    assert_eq!(h.verify(&alice, &phone.code_string(1)).await, REPLAYED);
    h.clock.set(UnixTime::from_secs(59));
    assert_eq!(
        accepted_offset(&h.verify(&alice, &phone.code_string(2)).await),
        1
    );

    // Drift and resynchronisation at the start of time.
    let bob = UserId::new("bob");
    h.clock.set(UnixTime::EPOCH);
    let e = h
        .tfa
        .start_enrollment(&bob, "b", "phone", None)
        .await
        .unwrap()
        .unwrap();
    let bobs = tower_totp::code::Hotp::new(e.secret(), e.params());
    assert!(
        h.tfa
            .confirm_enrollment(
                &bob,
                e.id(),
                &bobs.code_string(0),
                ConfirmAs::AnotherAuthenticator
            )
            .await
            .unwrap()
            .is_confirmed()
    );
    // Four steps fast is three beyond the window: plausible 300 steps (2.5
    // hours) after the enrollment's code, at the default 1%.
    h.clock.set(UnixTime::from_secs(300 * 30));
    assert_eq!(h.verify(&bob, &bobs.code_string(304)).await, INVALID);
    h.clock.set(UnixTime::from_secs(301 * 30));
    assert!(matches!(
        h.verify(&bob, &bobs.code_string(305)).await,
        Verdict::Accepted {
            resynchronised: true,
            offset: 4,
            ..
        }
    ));

    // The throttle at the start of time.
    let carol = UserId::new("carol");
    h.clock.set(UnixTime::from_secs(1));
    let e = h
        .tfa
        .start_enrollment(&carol, "c", "phone", None)
        .await
        .unwrap()
        .unwrap();
    let carols = tower_totp::code::Hotp::new(e.secret(), e.params());
    assert!(
        h.tfa
            .confirm_enrollment(
                &carol,
                e.id(),
                &carols.code_string(0),
                ConfirmAs::AnotherAuthenticator
            )
            .await
            .unwrap()
            .is_confirmed()
    );
    let wrong = common::wrong_code(&carols, 0);
    for _ in 0..4 {
        assert_eq!(h.verify(&carol, &wrong).await, INVALID);
    }
    assert_eq!(
        h.verify(&carol, &wrong).await,
        Verdict::Rejected(RejectReason::Throttled {
            retry_after: Duration::from_secs(1)
        })
    );
}

/// The whole life cycle at one moment: enrol, log in, replay, resync.
async fn life_cycle_at(start: UnixTime) {
    let h = Harness::at(config(), start);
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;
    let code = phone.code(0);
    assert!(h.verify(&alice, &code).await.is_accepted(), "at {start:?}");
    assert_eq!(h.verify(&alice, &code).await, REPLAYED);
    assert!(h.verify(&alice, &phone.code(1)).await.is_accepted());
    // From offset 1 to 6 is four steps beyond the window: plausible 400
    // steps (3 hours 20 minutes) on, at the default 1%; still well inside
    // the day left before the clock saturates.
    h.advance_steps(401);
    assert_eq!(h.verify(&alice, &phone.code(6)).await, INVALID);
    h.advance_steps(1);
    assert!(matches!(
        h.verify(&alice, &phone.code(6)).await,
        Verdict::Accepted {
            resynchronised: true,
            offset: 6,
            ..
        }
    ));
    let rc = phone
        .recovery
        .as_ref()
        .unwrap()
        .as_strings()
        .next()
        .unwrap();
    assert_eq!(
        h.tfa.use_recovery_code(&alice, rc).await.unwrap(),
        tower_totp::RecoveryVerdict::Accepted { remaining: 9 }
    );
}

#[tokio::test]
async fn the_year_2200_works() {
    // 2200-01-01T00:00:00Z.
    life_cycle_at(UnixTime::from_secs(7_258_118_400)).await;
}

#[tokio::test]
async fn the_end_of_u64_millis_works() {
    // A day before the clock saturates.
    life_cycle_at(UnixTime::from_millis(u64::MAX - 86_400_000)).await;

    // The throttle there too, with exact delays.
    let h = Harness::at(config(), UnixTime::from_millis(u64::MAX - 86_400_000));
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;
    let wrong = phone.wrong_code();
    for _ in 0..4 {
        assert_eq!(h.verify(&alice, &wrong).await, INVALID);
    }
    assert_eq!(
        h.verify(&alice, &wrong).await,
        Verdict::Rejected(RejectReason::Throttled {
            retry_after: Duration::from_secs(1)
        })
    );
}

/// At the very last millisecond nothing panics and codes still verify.
#[tokio::test]
async fn the_last_millisecond_does_not_panic() {
    let h = Harness::at(config(), UnixTime::from_millis(u64::MAX));
    let alice = UserId::new("alice");
    let e = h
        .tfa
        .start_enrollment(&alice, "a", "phone", None)
        .await
        .unwrap()
        .unwrap();
    let phone = tower_totp::code::Hotp::new(e.secret(), e.params());
    let now = h.step();
    assert!(
        h.tfa
            .confirm_enrollment(
                &alice,
                e.id(),
                &phone.code_string(now),
                ConfirmAs::AnotherAuthenticator
            )
            .await
            .unwrap()
            .is_confirmed()
    );
    assert_eq!(h.verify(&alice, &phone.code_string(now)).await, REPLAYED);
    assert!(
        h.verify(&alice, &phone.code_string(now + 1))
            .await
            .is_accepted()
    );
    h.clock.advance(Duration::MAX);
    assert_eq!(h.clock.now(), UnixTime::from_millis(u64::MAX));
    assert_eq!(h.verify(&alice, "000000x").await, MALFORMED);
    let _ = h.verify(&alice, &phone.code_string(now + 5)).await;
    let _ = h
        .tfa
        .use_recovery_code(&alice, "aaaa-bbbb-cccc")
        .await
        .unwrap();
}
