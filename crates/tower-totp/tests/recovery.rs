//! Recovery codes through `TwoFactor`: single use, forgiving about how they
//! are typed, bound to their user, gone after a reset or a new set.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, config};
use tower_totp::{RecoveryVerdict, RejectReason, UserId};

const INVALID: RecoveryVerdict = RecoveryVerdict::Rejected(RejectReason::Invalid);

async fn enrolled(h: &Harness, user: &UserId) -> Vec<String> {
    let phone = h.enroll(user, "phone").await;
    phone
        .recovery
        .unwrap()
        .as_strings()
        .map(str::to_owned)
        .collect()
}

/// Use a recovery code, waiting out any lockout first.
async fn use_waiting(h: &Harness, user: &UserId, code: &str) -> RecoveryVerdict {
    loop {
        match h.tfa.use_recovery_code(user, code).await.unwrap() {
            RecoveryVerdict::Rejected(RejectReason::Throttled { retry_after }) => {
                h.clock.advance(retry_after);
            }
            verdict => return verdict,
        }
    }
}

#[tokio::test]
async fn each_code_works_once() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let codes = enrolled(&h, &alice).await;
    for (i, code) in codes.iter().enumerate() {
        assert_eq!(
            h.tfa.use_recovery_code(&alice, code).await.unwrap(),
            RecoveryVerdict::Accepted {
                remaining: codes.len() - i - 1
            }
        );
        assert_eq!(
            h.tfa.use_recovery_code(&alice, code).await.unwrap(),
            INVALID
        );
    }
    assert_eq!(h.tfa.recovery_codes_left(&alice).await.unwrap(), 0);
}

#[tokio::test]
async fn dashes_spaces_and_case_do_not_matter() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let codes = enrolled(&h, &alice).await;
    let typed = [
        codes[0].to_uppercase(),
        codes[1].replace('-', ""),
        codes[2].replace('-', " "),
        format!("  {}\t", codes[3].to_uppercase().replace('-', " - ")),
        // Full-width letters, as an IME may produce them.
        codes[4]
            .chars()
            .map(|c| match c {
                'a'..='z' => char::from_u32(c as u32 - 'a' as u32 + 0xFF41).unwrap(),
                '2'..='7' => char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap(),
                other => other,
            })
            .collect(),
    ];
    for (i, t) in typed.iter().enumerate() {
        assert!(
            matches!(
                h.tfa.use_recovery_code(&alice, t).await.unwrap(),
                RecoveryVerdict::Accepted { .. }
            ),
            "variant {i}: {t:?}"
        );
    }
    assert_eq!(h.tfa.recovery_codes_left(&alice).await.unwrap(), 5);
}

#[tokio::test]
async fn wrong_and_malformed_codes_are_refused() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let codes = enrolled(&h, &alice).await;
    assert_eq!(
        h.tfa
            .use_recovery_code(&alice, "aaaa-aaaa-aaaa")
            .await
            .unwrap(),
        INVALID
    );
    for bad in [
        "",
        "short",
        "aaaa-aaaa-aaa1",
        "aaaa-aaaa-aaaaa",
        &codes[0][..13],
    ] {
        assert_eq!(
            h.tfa.use_recovery_code(&alice, bad).await.unwrap(),
            RecoveryVerdict::Rejected(RejectReason::Malformed),
            "{bad:?}"
        );
    }
    assert_eq!(h.tfa.recovery_codes_left(&alice).await.unwrap(), 10);
}

#[tokio::test]
async fn codes_are_bound_to_their_user() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let bob = UserId::new("bob");
    let alices = enrolled(&h, &alice).await;
    enrolled(&h, &bob).await;
    assert_eq!(
        h.tfa.use_recovery_code(&bob, &alices[0]).await.unwrap(),
        INVALID
    );
    assert_eq!(h.tfa.recovery_codes_left(&bob).await.unwrap(), 10);
}

#[tokio::test]
async fn after_a_reset_no_code_works() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let codes = enrolled(&h, &alice).await;
    h.tfa.reset(&alice).await.unwrap();
    for code in &codes {
        assert_eq!(
            h.tfa.use_recovery_code(&alice, code).await.unwrap(),
            RecoveryVerdict::Rejected(RejectReason::NotEnrolled)
        );
    }
    // Enrolled again, the user gets a new set, and the old one stays dead.
    let new = enrolled(&h, &alice).await;
    assert_eq!(new.len(), 10);
    for code in &codes {
        assert_eq!(use_waiting(&h, &alice, code).await, INVALID);
    }
    assert_eq!(
        use_waiting(&h, &alice, &new[0]).await,
        RecoveryVerdict::Accepted { remaining: 9 }
    );
}

#[tokio::test]
async fn a_new_set_replaces_the_old_one() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let old = enrolled(&h, &alice).await;
    let new = h.tfa.issue_recovery_codes(&alice).await.unwrap();
    assert_eq!(
        h.tfa.use_recovery_code(&alice, &old[0]).await.unwrap(),
        INVALID
    );
    let first = new.as_strings().next().unwrap();
    assert_eq!(
        h.tfa.use_recovery_code(&alice, first).await.unwrap(),
        RecoveryVerdict::Accepted { remaining: 9 }
    );
}

#[tokio::test]
async fn an_unenrolled_user_has_no_recovery() {
    let h = Harness::new(config());
    assert_eq!(
        h.tfa
            .use_recovery_code(&UserId::new("nobody"), "aaaa-bbbb-cccc")
            .await
            .unwrap(),
        RecoveryVerdict::Rejected(RejectReason::NotEnrolled)
    );
}

/// The last recovery code is as good as the first, and concurrent uses of
/// one code have one winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uses_of_one_code_have_one_winner() {
    let h = Harness::new(config());
    let alice = UserId::new("alice");
    let codes = enrolled(&h, &alice).await;
    let code = std::sync::Arc::new(codes[0].clone());
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (tfa, alice, code) = (h.tfa.clone(), alice.clone(), code.clone());
            tokio::spawn(async move { tfa.use_recovery_code(&alice, &code).await.unwrap() })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        match t.await.unwrap() {
            RecoveryVerdict::Accepted { remaining } => {
                assert_eq!(remaining, 9);
                accepted += 1;
            }
            RecoveryVerdict::Rejected(RejectReason::Invalid | RejectReason::Throttled { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(accepted, 1);
}
