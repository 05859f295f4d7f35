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
