//! Store operations per code on the memory store, counted by the test
//! kit's wrapper: a correct code 2, a wrong one 2, a malformed one 1 and no
//! charge, a locked-out one 1, a confirmed enrollment 2; over HTTP, the
//! whole `POST /2fa` of a correct code 2. The SQLite and Redis crates run
//! the same checks on their stores.

use tower_totp::store::MemoryStore;
use tower_totp_testkit::round_trips;
use tower_totp_testkit::store::TestStore;

#[tokio::test]
async fn through_the_engine() {
    round_trips::through_the_engine(TestStore::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn over_http() {
    round_trips::over_http(TestStore::new(MemoryStore::new())).await;
}

/// A failing `begin_verification` or `begin_confirmation` fails closed:
/// 503, and the login stays where it was.
#[tokio::test]
async fn the_combined_operations_fail_closed() {
    use http::StatusCode;
    use serde_json::json;
    use tower_totp::UserKind;
    use tower_totp_testkit::app::App;
    use tower_totp_testkit::phone::Phone;
    use tower_totp_testkit::store::Op;

    let app = App::new();
    let alice = app.user("alice", UserKind::Internal, true);
    let phone = app.enroll_directly(&alice).await;
    app.next_step();
    let mut browser = app.client();
    assert_eq!(browser.login(&alice).await, "totp");
    app.store.fail(Op::BeginVerification);
    let r = browser.submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    app.store.restore(Op::BeginVerification);
    assert_eq!(browser.hello().await.status(), StatusCode::UNAUTHORIZED);
    browser.login_verified(&alice, &phone).await;

    let bob = app.user("bob", UserKind::Internal, true);
    let mut bobs = app.client();
    assert_eq!(bobs.login(&bob).await, "enroll");
    let r = bobs.get("/2fa/enroll").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let bobs_phone = Phone::from_enroll_json(&r.json(), &app.clock);
    app.store.fail(Op::BeginConfirmation);
    let r = bobs
        .post_json("/2fa/enroll", json!({ "code": bobs_phone.code() }))
        .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    app.store.restore(Op::BeginConfirmation);
    assert!(!app.auth.engine().status(&bob).await.unwrap().enrolled);
}

/// A login whose pending step has expired reads the status first: its
/// code is refused (`step_expired`) and never charged, at one store
/// operation. One a step short of the time takes the two-operation path.
#[tokio::test]
async fn an_expired_logins_code_is_never_charged() {
    use std::time::Duration;

    use http::StatusCode;
    use tower_totp::UserKind;
    use tower_totp::store::ThrottleStore;
    use tower_totp_testkit::app::{App, assert_problem};
    use tower_totp_testkit::store::Op;

    let app = App::new();
    let ida = app.user("ida", UserKind::Internal, true);
    let phone = app.enroll_directly(&ida).await;
    let mut late = app.client();
    let mut in_time = app.client();
    late.login(&ida).await;
    in_time.login(&ida).await;
    // The default pending time is five minutes.
    app.advance(Duration::from_secs(5 * 60 - 1));
    app.store.clear_call_log();
    let r = in_time.submit(&phone.wrong_code()).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(app.store.log(), [Op::BeginVerification, Op::RecordMiss]);
    app.advance(Duration::from_secs(1));
    let before = app.store.inner().throttle_state(&ida).await.unwrap();
    app.store.clear_call_log();
    let r = late.submit(&phone.code()).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "step_expired", Some("login"));
    assert_eq!(app.store.log(), [Op::Status], "status first, nothing else");
    assert_eq!(
        app.store.inner().throttle_state(&ida).await.unwrap(),
        before,
        "charged"
    );
}

/// A login that a reset ended is refused with the status read with the
/// code: `not_logged_in`, the session cleared, the code not decided.
#[tokio::test]
async fn a_login_a_reset_ended_is_refused_before_the_decision() {
    use http::StatusCode;
    use tower_totp::UserKind;
    use tower_totp_testkit::app::{App, assert_problem};
    use tower_totp_testkit::store::Op;

    let app = App::new();
    let kim = app.user("kim", UserKind::Internal, true);
    app.enroll_directly(&kim).await;
    app.next_step();
    let mut old = app.client();
    assert_eq!(old.login(&kim).await, "totp");
    app.auth.engine().reset(&kim).await.unwrap();
    // Enrolled again at once, so the code would be a good one.
    let phone2 = app.enroll_directly(&kim).await;
    app.next_step();
    app.store.clear_call_log();
    let r = old.submit(&phone2.code()).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "not_logged_in", Some("login"));
    assert_eq!(app.store.log(), [Op::BeginVerification], "no decision");
    // The code was not consumed: a fresh login uses it.
    let mut fresh = app.client();
    assert_eq!(fresh.login(&kim).await, "totp");
    let r = fresh.submit(&phone2.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    // The ended session is cleared.
    assert_eq!(old.hello().await.hello_factor(), "none");
}
