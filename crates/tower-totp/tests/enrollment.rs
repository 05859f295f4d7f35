//! Enrollment through `TwoFactor`: confirmation by the first code, expiry,
//! re-enrollment on a new phone, several named authenticators, recovery
//! codes issued once, and the epoch.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;
use tower_totp::store::RevokeOutcome;

use common::{Harness, config};
use tower_totp::ConfirmAs;
use tower_totp::{Confirmation, RejectReason, UserId, Verdict};
use tower_totp_testkit::phone::Phone;

const INVALID: Verdict = Verdict::Rejected(RejectReason::Invalid);

async fn epoch(h: &Harness, user: &UserId) -> u64 {
    h.tfa.status(user).await.unwrap().epoch
}

#[tokio::test]
async fn only_a_correct_first_code_activates() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let e = h
        .tfa
        .start_enrollment(&alice, "alice@example.com", "phone", None)
        .await
        .unwrap()
        .unwrap();
    let phone = Phone::new(e.secret(), e.params(), h.clock.clone());

    // Not enrolled yet: the pending secret does not log in.
    assert_eq!(
        h.verify(&alice, &phone.code()).await,
        Verdict::Rejected(RejectReason::NotEnrolled)
    );

    // A wrong code and a malformed one leave it pending.
    let wrong = phone.wrong_code_within(20);
    for (typed, reason) in [
        (wrong.as_str(), RejectReason::Invalid),
        ("12 34", RejectReason::Malformed),
    ] {
        match h
            .tfa
            .confirm_enrollment(&alice, e.id(), typed, ConfirmAs::AnotherAuthenticator)
            .await
            .unwrap()
        {
            Confirmation::Rejected(r) => assert_eq!(r, reason),
            other => panic!("{other:?}"),
        }
    }
    assert!(!h.tfa.status(&alice).await.unwrap().enrolled);
    assert_eq!(epoch(&h, &alice).await, 0);
    let still = h
        .tfa
        .pending_enrollment(&alice, e.id(), "alice@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.id(), e.id());
    assert_eq!(still.otpauth_uri(), e.otpauth_uri());

    // The right one, typed loosely, activates it.
    let code = phone.code();
    let typed = format!("{} {}", &code[..3], &code[3..]);
    match h
        .tfa
        .confirm_enrollment(&alice, e.id(), &typed, ConfirmAs::AnotherAuthenticator)
        .await
        .unwrap()
    {
        Confirmation::Confirmed {
            authenticator,
            epoch,
            recovery_codes,
            ..
        } => {
            assert_eq!(&authenticator, e.id());
            assert_eq!(epoch, 1);
            assert_eq!(recovery_codes.unwrap().len(), 10);
        }
        other => panic!("{other:?}"),
    }
    assert!(h.tfa.status(&alice).await.unwrap().enrolled);
    // The pending enrollment is used up.
    assert!(
        h.tfa
            .pending_enrollment(&alice, e.id(), "a")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !h.tfa
            .confirm_enrollment(
                &alice,
                e.id(),
                &phone.code_at_offset(1),
                ConfirmAs::AnotherAuthenticator
            )
            .await
            .unwrap()
            .is_confirmed()
    );
}

#[tokio::test]
async fn a_first_code_one_step_off_confirms_and_sets_the_offset() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let e = h
        .tfa
        .start_enrollment(&alice, "a", "phone", None)
        .await
        .unwrap()
        .unwrap();
    let phone = Phone::new(e.secret(), e.params(), h.clock.clone());
    assert!(
        h.tfa
            .confirm_enrollment(
                &alice,
                e.id(),
                &phone.code_at_offset(1),
                ConfirmAs::AnotherAuthenticator
            )
            .await
            .unwrap()
            .is_confirmed()
    );
    assert_eq!(h.tfa.authenticators(&alice).await.unwrap()[0].offset, 1);
    // Two steps off is outside the window: no resynchronisation at enrollment.
    let bob = UserId::new("bob");
    let e = h
        .tfa
        .start_enrollment(&bob, "b", "phone", None)
        .await
        .unwrap()
        .unwrap();
    let phone = Phone::new(e.secret(), e.params(), h.clock.clone());
    assert!(
        !h.tfa
            .confirm_enrollment(
                &bob,
                e.id(),
                &phone.code_at_offset(2),
                ConfirmAs::AnotherAuthenticator
            )
            .await
            .unwrap()
            .is_confirmed()
    );
}

#[tokio::test]
async fn an_expired_enrollment_is_refused() {
    let ttl = Duration::from_secs(300);
    let h = Harness::new(config().with_pending_ttl(ttl));
    let alice = UserId::new("alice");
    let start = h.clock.clone();
    let e = h
        .tfa
        .start_enrollment(&alice, "a", "phone", None)
        .await
        .unwrap()
        .unwrap();
    let phone = Phone::new(e.secret(), e.params(), h.clock.clone());

    start.advance(ttl - Duration::from_millis(1));
    assert!(
        h.tfa
            .pending_enrollment(&alice, e.id(), "a")
            .await
            .unwrap()
            .is_some()
    );
    start.advance(Duration::from_millis(1));
    assert!(
        h.tfa
            .pending_enrollment(&alice, e.id(), "a")
            .await
            .unwrap()
            .is_none()
    );
    match h
        .tfa
        .confirm_enrollment(
            &alice,
            e.id(),
            &phone.code(),
            ConfirmAs::AnotherAuthenticator,
        )
        .await
        .unwrap()
    {
        Confirmation::Rejected(RejectReason::NoPendingEnrollment) => {}
        other => panic!("{other:?}"),
    }
    assert!(!h.tfa.status(&alice).await.unwrap().enrolled);

    // Nothing pending at all reads the same.
    match h
        .tfa
        .confirm_enrollment(
            &UserId::new("nobody"),
            e.id(),
            "123456",
            ConfirmAs::AnotherAuthenticator,
        )
        .await
        .unwrap()
    {
        Confirmation::Rejected(RejectReason::NoPendingEnrollment) => {}
        other => panic!("{other:?}"),
    }
}

/// A new phone: the old secret keeps working while the new enrollment is
/// pending, and stops when the new one is confirmed.
#[tokio::test]
async fn re_enrolling_replaces_the_old_secret_only_on_confirmation() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let old = h.enroll(&alice, "old phone").await;

    let e = h
        .tfa
        .start_enrollment(&alice, "a", "new phone", Some(old.id.clone()))
        .await
        .unwrap()
        .unwrap();
    let new = Phone::new(e.secret(), e.params(), h.clock.clone());
    assert!(h.verify(&alice, &old.code(0)).await.is_accepted());
    h.advance_steps(1);
    assert_eq!(
        h.verify(&alice, &new.code()).await,
        INVALID,
        "the new phone is not active yet"
    );

    // A wrong first code changes nothing.
    let wrong = new.wrong_code_within(20);
    assert!(
        !h.tfa
            .confirm_enrollment(&alice, e.id(), &wrong, ConfirmAs::AnotherAuthenticator)
            .await
            .unwrap()
            .is_confirmed()
    );
    assert!(h.verify(&alice, &old.code(0)).await.is_accepted());
    h.advance_steps(1);

    let before = epoch(&h, &alice).await;
    match h
        .tfa
        .confirm_enrollment(&alice, e.id(), &new.code(), ConfirmAs::AnotherAuthenticator)
        .await
        .unwrap()
    {
        Confirmation::Confirmed {
            authenticator,
            epoch,
            recovery_codes,
            ..
        } => {
            assert_eq!(&authenticator, e.id());
            assert_eq!(epoch, before + 1);
            assert!(recovery_codes.is_none(), "the user still has codes");
        }
        other => panic!("{other:?}"),
    }
    h.advance_steps(1);
    assert_eq!(h.verify(&alice, &old.code(0)).await, INVALID);
    assert!(h.verify(&alice, &new.code()).await.is_accepted());
    let listed = h.tfa.authenticators(&alice).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "new phone");
}

#[tokio::test]
async fn several_named_authenticators_each_work_and_each_can_be_revoked() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "Pixel 8").await;
    let tablet = h.enroll(&alice, "Authy on iPad").await;
    let key = h.enroll(&alice, "YubiKey").await;
    assert_eq!(epoch(&h, &alice).await, 3);

    let mut names: Vec<String> = h
        .tfa
        .authenticators(&alice)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    names.sort();
    assert_eq!(names, ["Authy on iPad", "Pixel 8", "YubiKey"]);

    for device in [&phone, &tablet, &key] {
        match h.verify(&alice, &device.code(0)).await {
            Verdict::Accepted { authenticator, .. } => assert_eq!(authenticator, device.id),
            other => panic!("{other:?}"),
        }
        h.advance_steps(1);
    }

    // Each device keeps its own replay state: the same step on two devices.
    let step = h.step();
    assert!(
        h.verify(&alice, &phone.code_for_step(step))
            .await
            .is_accepted()
    );
    assert!(
        h.verify(&alice, &tablet.code_for_step(step))
            .await
            .is_accepted()
    );
    h.advance_steps(1);

    assert_eq!(
        h.tfa.revoke(&alice, &tablet.id).await.unwrap(),
        RevokeOutcome::Revoked
    );
    assert_eq!(epoch(&h, &alice).await, 4);
    assert_eq!(
        h.tfa.revoke(&alice, &tablet.id).await.unwrap(),
        RevokeOutcome::NotFound
    );
    assert_eq!(
        epoch(&h, &alice).await,
        4,
        "revoking nothing changes nothing"
    );
    assert_eq!(h.verify(&alice, &tablet.code(0)).await, INVALID);
    assert!(h.verify(&alice, &phone.code(0)).await.is_accepted());
    h.advance_steps(1);
    assert!(h.verify(&alice, &key.code(0)).await.is_accepted());

    assert_eq!(
        h.tfa.revoke(&alice, &phone.id).await.unwrap(),
        RevokeOutcome::Revoked
    );
    assert_eq!(
        h.tfa.revoke(&alice, &key.id).await.unwrap(),
        RevokeOutcome::Revoked
    );
    assert_eq!(epoch(&h, &alice).await, 6);
    h.advance_steps(1);
    assert_eq!(
        h.verify(&alice, &phone.code(0)).await,
        Verdict::Rejected(RejectReason::NotEnrolled)
    );
}

#[tokio::test]
async fn recovery_codes_come_with_the_first_authenticator_only() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;
    let codes = phone.recovery.as_ref().unwrap();
    assert_eq!(codes.len(), 10);
    let distinct: std::collections::HashSet<&str> = codes.as_strings().collect();
    assert_eq!(distinct.len(), 10);
    assert_eq!(h.tfa.recovery_codes_left(&alice).await.unwrap(), 10);

    let tablet = h.enroll(&alice, "tablet").await;
    assert!(tablet.recovery.is_none());
    assert_eq!(h.tfa.recovery_codes_left(&alice).await.unwrap(), 10);

    // A configured count is honoured.
    let h = Harness::new(config().with_recovery_codes(4).unwrap());
    let bob = UserId::new("bob");
    assert_eq!(h.enroll(&bob, "phone").await.recovery.unwrap().len(), 4);
}

#[tokio::test]
async fn the_epoch_increases_on_confirm_revoke_and_reset_only() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    assert_eq!(epoch(&h, &alice).await, 0);
    let phone = h.enroll(&alice, "phone").await;
    assert_eq!(epoch(&h, &alice).await, 1);

    // Logging in, failing, starting an enrollment or using a recovery code
    // does not move it.
    assert!(h.verify(&alice, &phone.code(0)).await.is_accepted());
    assert_eq!(h.verify(&alice, &phone.wrong_code()).await, INVALID);
    h.tfa
        .start_enrollment(&alice, "a", "tablet", None)
        .await
        .unwrap()
        .unwrap();
    let rc = phone
        .recovery
        .as_ref()
        .unwrap()
        .as_strings()
        .next()
        .unwrap();
    assert!(matches!(
        h.tfa.use_recovery_code(&alice, rc).await.unwrap(),
        tower_totp::RecoveryVerdict::Accepted { .. }
    ));
    assert_eq!(epoch(&h, &alice).await, 1);

    let tablet = h.enroll(&alice, "tablet").await;
    assert_eq!(epoch(&h, &alice).await, 2);
    assert_eq!(
        h.tfa.revoke(&alice, &tablet.id).await.unwrap(),
        RevokeOutcome::Revoked
    );
    assert_eq!(epoch(&h, &alice).await, 3);
    h.tfa.reset(&alice).await.unwrap();
    let status = h.tfa.status(&alice).await.unwrap();
    assert_eq!((status.epoch, status.enrolled), (4, false));

    // After a reset the epoch goes on from where it was.
    h.enroll(&alice, "phone").await;
    assert_eq!(epoch(&h, &alice).await, 5);
}

#[tokio::test]
async fn reset_removes_authenticators_and_the_pending_enrollment() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let phone = h.enroll(&alice, "phone").await;
    let e = h
        .tfa
        .start_enrollment(&alice, "a", "tablet", None)
        .await
        .unwrap()
        .unwrap();
    h.tfa.reset(&alice).await.unwrap();
    assert!(h.tfa.authenticators(&alice).await.unwrap().is_empty());
    assert!(
        h.tfa
            .pending_enrollment(&alice, e.id(), "a")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        h.verify(&alice, &phone.code(0)).await,
        Verdict::Rejected(RejectReason::NotEnrolled)
    );
}
