//! Verification does the same work whichever step of the window matches.
//!
//! The HMACs are counted where they are computed: the unit test
//! `find_step_computes_every_candidate_whatever_matches` in
//! `src/verify/matching.rs` shows `find_step` computes a code for every step
//! of the window, whether the match is at the first, middle or last step, or
//! nowhere. The engine has no hook to count codes (and gets none: a counter
//! in `Hotp` would be a shared atomic on the hot path for a test);
//! `verify::decision::decide` runs `find_step` over the whole window of
//! every authenticator before it decides anything. What this test adds at the engine level: the store
//! round trips, and the shape of the answer, do not depend on the matching
//! step either.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tower_totp::ConfirmAs;
use tower_totp::clock::{Clock, ManualClock, UnixTime};
use tower_totp::code::Hotp;
use tower_totp::{TotpConfig, TwoFactor, UserId, Verdict};
use tower_totp_testkit::store::TestStore;

/// A fresh engine with one enrolled user, the clock a step past the
/// confirming code.
async fn enrolled() -> (TwoFactor, TestStore, ManualClock, Hotp) {
    let clock = ManualClock::new(UnixTime::from_secs(tower_totp_testkit::START));
    let store = TestStore::default();
    let tfa = TwoFactor::builder(TotpConfig::new("Acme").unwrap())
        .clock(clock.clone())
        .store(store.clone())
        .build()
        .unwrap();
    let user = UserId::new("u");
    let e = tfa
        .start_enrollment(&user, "u", "Phone", None)
        .await
        .unwrap()
        .unwrap();
    let phone = Hotp::new(e.secret(), e.params());
    let step = e.params().step_at(clock.now());
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
    clock.advance(Duration::from_secs(5 * 30));
    (tfa, store, clock, phone)
}

#[tokio::test]
async fn the_matching_step_changes_neither_store_work_nor_answer_shape() {
    let user = UserId::new("u");
    let window = TotpConfig::new("Acme").unwrap().window();
    let offsets: Vec<i64> = window.offsets().collect();
    assert_eq!(
        offsets.len(),
        3,
        "first, middle and last step of the default window"
    );
    let mut calls = Vec::new();
    for &offset in &offsets {
        let (tfa, store, clock, phone) = enrolled().await;
        let now = phone.params().step_at(clock.now());
        let step = now.checked_add_signed(offset).unwrap();
        let before = store.calls();
        let verdict = tfa.verify(&user, &phone.code_string(step)).await.unwrap();
        calls.push(store.calls() - before);
        assert_eq!(
            verdict,
            Verdict::Accepted {
                authenticator: tfa.authenticators(&user).await.unwrap()[0].id.clone(),
                step,
                offset,
                resynchronised: false,
            }
        );
    }
    assert!(
        calls.windows(2).all(|w| w[0] == w[1]),
        "store calls by matching step {offsets:?}: {calls:?}"
    );
    // `begin_verification` (the authenticators and the charge together),
    // `consume_step`: the consumed step clears the throttle in the same
    // call, so no `clear_throttle` follows.
    assert_eq!(calls[0], 2, "store calls for a correct code");
}
