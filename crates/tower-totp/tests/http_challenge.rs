//! The second step over HTTP: the challenge, replay, throttling, store
//! failure, session fixation and pending-step expiry.
//!
//! In process, over the test kit's reference app (`SessionManagerLayer`,
//! `TotpLayer`, the `/2fa` endpoints) with a manual clock and the memory
//! stores.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use http::{StatusCode, header};
use serde_json::json;
use tower_totp::http::{Next, Refusal, RefusalReason};
use tower_totp::{RejectReason, UserKind};
use tower_totp_testkit::app::App;
use tower_totp_testkit::app::{assert_problem, assert_redirect};

#[tokio::test]
async fn challenge_for_json_clients_and_browsers() {
    let app = App::new();
    let carl = app.user("carl", UserKind::Internal, false);
    let phone = app.enroll_directly(&carl).await;
    app.next_step();

    let mut c = app.client();
    assert_eq!(c.login(&carl).await, "totp");
    let r = c.get("/hello").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "second_step_required",
        Some("totp"),
    );
    let problem = r.json();
    assert_eq!(problem["title"], "Unauthorized");
    assert!(problem["detail"].as_str().unwrap().contains("code"));
    assert_eq!(app.hits(), 0);

    // The second screen as JSON.
    let r = c.get("/2fa").await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = r.json();
    assert_eq!(v["next"], "totp");
    assert_eq!(v["digits"], 6);

    // A browser is sent to the second screen and types the code with a space.
    let mut b = app.browser();
    assert_eq!(b.login(&carl).await, "totp");
    let r = b.get("/hello").await;
    assert_redirect(&r, "/2fa");
    assert_eq!(
        r.refusal(),
        Some(Refusal::new(
            RefusalReason::SecondStepRequired,
            Some(Next::Totp)
        ))
    );
    let page = b.get("/2fa").await;
    assert_eq!(page.status(), StatusCode::OK);
    let form = format!("method=totp&code={}", phone.code_spaced().replace(' ', "+"));
    let r = b.post_form("/2fa", &form).await;
    assert_redirect(&r, "/");
    let r = b.get("/hello").await;
    assert_eq!(r.hello_factor(), "verified");
    let v = r.json();
    assert_eq!(v["second_factor"]["method"], "Totp");
    assert_eq!(v["second_factor"]["verified_at"], app.now_secs());
    assert_eq!(app.hits(), 1);

    // The JSON client, with the next code typed with a space.
    app.next_step();
    let r = c.submit(&phone.code_spaced()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), json!({ "next": "done" }));
    assert_eq!(c.get("/hello").await.hello_factor(), "verified");
}

#[tokio::test]
async fn a_used_code_is_refused_after_logout_and_login() {
    let app = App::new();
    let dan = app.user("dan", UserKind::Internal, true);
    let phone = app.enroll_directly(&dan).await;
    app.next_step();
    let mut c = app.client();
    c.login_verified(&dan, &phone).await;
    let used = phone.code();
    c.logout().await;
    assert_eq!(c.get("/hello").await.hello_factor(), "none");
    assert_eq!(c.login(&dan).await, "totp");
    let r = c.submit(&used).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "replayed", Some("totp"));
    assert_eq!(
        r.refusal().unwrap().reason,
        RefusalReason::CodeRejected(RejectReason::Replayed)
    );
    // Another session cannot use it either.
    let mut other = app.client();
    other.login(&dan).await;
    let r = other.submit(&used).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "replayed", Some("totp"));
    // The next code works.
    app.next_step();
    let r = c.submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn throttling_answers_429_with_the_exact_retry_after() {
    let app = App::new();
    let fay = app.user("fay", UserKind::Internal, true);
    let phone = app.enroll_directly(&fay).await;
    app.next_step();
    let mut c = app.client();
    c.login(&fay).await;
    // Malformed input is not charged.
    for _ in 0..5 {
        let r = c.submit("12ab").await;
        assert_problem(&r, StatusCode::UNAUTHORIZED, "malformed", Some("totp"));
    }
    // Three free attempts and a fourth that starts a 1 s lockout.
    for _ in 0..4 {
        let r = c.submit(&phone.wrong_code()).await;
        assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid", Some("totp"));
        assert_eq!(r.header(header::RETRY_AFTER), None);
    }
    let r = c.submit(&phone.code()).await;
    assert_problem(&r, StatusCode::TOO_MANY_REQUESTS, "throttled", Some("totp"));
    assert_eq!(r.header(header::RETRY_AFTER), Some("1"));
    assert_eq!(r.json()["retry_after"], 1);
    assert_eq!(
        r.refusal().unwrap().reason.retry_after(),
        Some(Duration::from_secs(1))
    );
    // After the lockout, a fifth failure locks for 2 s.
    app.advance(Duration::from_secs(1));
    let r = c.submit(&phone.wrong_code()).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid", Some("totp"));
    let r = c.submit(&phone.wrong_code()).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header(header::RETRY_AFTER), Some("2"));
    // Half a second left is rounded up to one.
    app.advance(Duration::from_millis(1500));
    let r = c.submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header(header::RETRY_AFTER), Some("1"));
    // A browser sees the second screen again with the message and the header.
    let mut b = app.browser();
    b.session = c.session.clone();
    let r = b.post_form("/2fa", &format!("code={}", phone.code())).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header(header::RETRY_AFTER), Some("1"));
    assert!(r.text().contains("Too many attempts"));
    assert!(r.text().contains("Two Factor Authorization Code"));
    // Once it has passed, the right code works and clears the count.
    app.advance(Duration::from_millis(500));
    let r = c.submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn a_failing_store_gives_503_and_the_application_never_sees_the_request() {
    let app = App::new();
    let gus = app.user("gus", UserKind::Internal, true);
    let phone = app.enroll_directly(&gus).await;
    app.next_step();
    let mut verified = app.client();
    verified.login_verified(&gus, &phone).await;
    let mut pending = app.client();
    pending.login(&gus).await;
    let mut browser = app.browser();
    browser.session = verified.session.clone();
    assert_eq!(verified.get("/hello").await.hello_factor(), "verified");
    let hits = app.hits();

    app.store.set_down(true);
    for c in [&mut verified, &mut pending] {
        for path in ["/hello", "/sensitive"] {
            let r = c.get(path).await;
            assert_problem(
                &r,
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                None,
            );
        }
        for path in ["/2fa", "/2fa/enroll", "/2fa/authenticators"] {
            let r = c.get(path).await;
            assert_problem(
                &r,
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                None,
            );
        }
        let r = c.submit(&phone.code()).await;
        assert_problem(
            &r,
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            None,
        );
    }
    // Browsers get a page, not a redirect.
    let r = browser.get("/hello").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.content_type().starts_with("text/html"));
    assert_eq!(r.refusal().unwrap().reason, RefusalReason::StoreUnavailable);
    assert_eq!(app.hits(), hits, "fail closed: hello was never called");
    // The login fails too (the application decides how to answer).
    let r = app
        .client()
        .post_json("/login", json!({ "username": "gus" }))
        .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);

    app.store.set_down(false);
    assert_eq!(verified.get("/hello").await.hello_factor(), "verified");
    app.next_step();
    let r = pending.submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn the_session_id_is_cycled_after_each_step() {
    let app = App::new();
    let hal = app.user("hal", UserKind::Internal, true);
    let phone = app.enroll_directly(&hal).await;
    app.next_step();
    let mut c = app.client();
    // A session that existed before the login (an attacker may know its id).
    c.get("/hello").await;
    c.post_json("/logout", json!({})).await;
    let mut planted = app.client();
    planted
        .login(&app.user("mallory", UserKind::External, false))
        .await;
    let planted_id = planted.session.clone().unwrap();
    c.session = Some(planted_id.clone());
    assert_eq!(c.login(&hal).await, "totp");
    let after_password = c.session.clone().unwrap();
    assert_ne!(after_password, planted_id, "login cycles the id");
    assert_eq!(planted.get("/hello").await.hello_factor(), "none");

    let r = c.submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let after_code = c.session.clone().unwrap();
    assert_ne!(after_code, after_password, "the second step cycles the id");
    assert_eq!(c.get("/hello").await.hello_factor(), "verified");

    // The old id is no longer logged in.
    let mut old = app.client();
    old.session = Some(after_password);
    assert_eq!(old.get("/hello").await.hello_factor(), "none");
    let r = old.get("/2fa").await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "not_logged_in", Some("login"));
}

#[tokio::test]
async fn a_pending_second_step_expires_after_five_minutes() {
    let app = App::new();
    let ida = app.user("ida", UserKind::Internal, true);
    let phone = app.enroll_directly(&ida).await;
    let mut c = app.client();
    let mut poster = app.client();
    c.login(&ida).await;
    poster.login(&ida).await;
    app.advance(Duration::from_secs(5 * 60 - 1));
    let r = c.get("/hello").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "second_step_required",
        Some("totp"),
    );
    app.advance(Duration::from_secs(1));
    let r = c.get("/hello").await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "step_expired", Some("login"));
    // The login is forgotten.
    assert_eq!(c.get("/hello").await.hello_factor(), "none");
    let r = c.submit(&phone.code()).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "not_logged_in", Some("login"));
    // Posting a code after the time is refused the same way.
    let r = poster.submit(&phone.code()).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "step_expired", Some("login"));
    // A browser goes back to the login page.
    let mut b = app.browser();
    b.login(&ida).await;
    app.advance(Duration::from_secs(5 * 60));
    assert_redirect(&b.get("/hello").await, "/login");
    // A fresh login works.
    c.login_verified(&ida, &phone).await;
}

#[tokio::test]
async fn the_pending_time_is_configurable() {
    let app = App::setup()
        .auth(|b| b.pending_step_ttl(Duration::from_secs(60)))
        .build();
    let jo = app.user("jo", UserKind::Internal, true);
    app.enroll_directly(&jo).await;
    let mut c = app.client();
    c.login(&jo).await;
    app.advance(Duration::from_secs(60));
    let r = c.get("/hello").await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "step_expired", Some("login"));
}
