//! How many store operations a code costs, counted by [`TestStore`]: the
//! checks every store's tests run (memory in `tower-totp`, SQLite and Redis
//! in their crates), so that no later change adds one silently.
//!
//! ```
//! use tower_totp::store::MemoryStore;
//! use tower_totp_testkit::round_trips;
//! use tower_totp_testkit::store::TestStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! round_trips::through_the_engine(TestStore::new(MemoryStore::new())).await;
//! round_trips::over_http(TestStore::new(MemoryStore::new())).await;
//! # });
//! ```

use std::time::Duration;

use http::StatusCode;
use tower_totp::store::TotpStore;
use tower_totp::throttle::ThrottleState;
use tower_totp::{ConfirmAs, RejectReason, UserKind, Verdict};

use crate::app::App;
use crate::phone::Phone;
use crate::store::{Op, TestStore};

/// The operations `f` calls on `store`, and its output.
async fn ops_of<S, T>(store: &TestStore<S>, f: impl AsyncFnOnce() -> T) -> (Vec<Op>, T) {
    store.clear_call_log();
    let out = f().await;
    (store.log(), out)
}

/// Through [`TwoFactor`](tower_totp::TwoFactor) on `store`: a confirmed
/// enrollment costs 2 operations, a correct code 2, a wrong one 2, a
/// malformed one 1 and no charge, a locked-out one 1.
///
/// # Panics
///
/// When a count differs, naming the path and the operations called.
pub async fn through_the_engine<S: TotpStore + Clone>(store: TestStore<S>) {
    let app = App::setup().store(store.clone()).build();
    let engine = app.auth.engine();
    let alice = app.user("alice", UserKind::Internal, true);

    let e = engine
        .start_enrollment(&alice, "alice", "Phone", None)
        .await
        .expect("start")
        .expect("under the caps");
    let phone = Phone::new(e.secret(), e.params(), app.clock.clone());
    let (ops, confirmed) = ops_of(&store, async || {
        engine
            .confirm_enrollment(&alice, e.id(), &phone.code(), ConfirmAs::FirstAuthenticator)
            .await
            .expect("confirm")
    })
    .await;
    assert!(confirmed.is_confirmed(), "confirm: {confirmed:?}");
    assert_eq!(ops, [Op::BeginConfirmation, Op::ActivatePending], "confirm");

    app.next_step();
    let (ops, verdict) = ops_of(&store, async || {
        engine.verify(&alice, &phone.code()).await.expect("verify")
    })
    .await;
    assert!(verdict.is_accepted(), "correct: {verdict:?}");
    assert_eq!(ops, [Op::BeginVerification, Op::ConsumeStep], "correct");

    let (ops, verdict) = ops_of(&store, async || {
        engine
            .verify(&alice, &phone.wrong_code())
            .await
            .expect("verify")
    })
    .await;
    assert_eq!(verdict, Verdict::Rejected(RejectReason::Invalid), "wrong");
    assert_eq!(ops, [Op::BeginVerification, Op::RecordMiss], "wrong");

    let before = store.inner().throttle_state(&alice).await.expect("state");
    for malformed in ["12345", "12345a", "", "123456789", "1234567"] {
        let (ops, verdict) = ops_of(&store, async || {
            engine.verify(&alice, malformed).await.expect("verify")
        })
        .await;
        assert_eq!(
            verdict,
            Verdict::Rejected(RejectReason::Malformed),
            "malformed {malformed:?}"
        );
        assert_eq!(ops, [Op::BeginVerification], "malformed {malformed:?}");
    }
    assert_eq!(
        store.inner().throttle_state(&alice).await.expect("state"),
        before,
        "malformed codes were charged"
    );

    // Wrong codes until locked out, then one operation per refused code.
    let mut locked = false;
    for _ in 0..20 {
        let verdict = engine
            .verify(&alice, &phone.wrong_code())
            .await
            .expect("verify");
        if matches!(verdict, Verdict::Rejected(RejectReason::Throttled { .. })) {
            locked = true;
            break;
        }
    }
    assert!(locked, "never locked out");
    let (ops, verdict) = ops_of(&store, async || {
        engine.verify(&alice, &phone.code()).await.expect("verify")
    })
    .await;
    assert!(
        matches!(verdict, Verdict::Rejected(RejectReason::Throttled { .. })),
        "locked: {verdict:?}"
    );
    assert_eq!(ops, [Op::BeginVerification], "locked");

    let nobody = app.user("nobody", UserKind::Internal, false);
    let (ops, verdict) = ops_of(&store, async || {
        engine.verify(&nobody, "123456").await.expect("verify")
    })
    .await;
    assert_eq!(verdict, Verdict::Rejected(RejectReason::NotEnrolled));
    assert_eq!(ops, [Op::BeginVerification], "not enrolled");
    assert_eq!(
        store.inner().throttle_state(&nobody).await.expect("state"),
        ThrottleState::default(),
        "not enrolled: charged"
    );
}

/// `POST /2fa` of the reference app on `store`, after the password: a
/// correct code costs 2 store operations for the whole request, a wrong
/// one 2, a malformed one 1 and no charge.
///
/// # Panics
///
/// When a count differs, naming the path and the operations called.
pub async fn over_http<S: TotpStore + Clone>(store: TestStore<S>) {
    let app = App::setup().store(store.clone()).build();
    let alice = app.user("alice", UserKind::Internal, true);
    let phone = app.enroll_directly(&alice).await;
    app.next_step();
    let mut browser = app.client();
    assert_eq!(browser.login(&alice).await, "totp");

    let (ops, r) = ops_of(&store, async || browser.submit(&phone.wrong_code()).await).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(ops, [Op::BeginVerification, Op::RecordMiss], "wrong");

    let before = store.inner().throttle_state(&alice).await.expect("state");
    let (ops, r) = ops_of(&store, async || browser.submit("12 34").await).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(ops, [Op::BeginVerification], "malformed");
    assert_eq!(
        store.inner().throttle_state(&alice).await.expect("state"),
        before,
        "malformed: charged"
    );

    // Past the lockout of the failures so far.
    app.advance(Duration::from_secs(1));
    let (ops, r) = ops_of(&store, async || browser.submit(&phone.code()).await).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(r.next(), "done");
    assert_eq!(ops, [Op::BeginVerification, Op::ConsumeStep], "correct");
}
