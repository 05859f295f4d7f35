//! Refusals over HTTP: content negotiation (pages for browsers, JSON for
//! everyone else), typed reasons and replaced bodies, a missing session
//! layer, requests without a login, bad input and unknown users.
//!
//! In process, over the test kit's reference app (`SessionManagerLayer`,
//! `TotpLayer`, the `/2fa` endpoints) with a manual clock and the memory
//! stores.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use serde_json::json;
use tower_totp::http::{Next, Refusal, RefusalReason};
use tower_totp::{RejectReason, UserKind};
use tower_totp_testkit::app::{App, Reply, remember_device};
use tower_totp_testkit::app::{assert_problem, assert_redirect};

#[tokio::test]
async fn browsers_get_pages_and_everyone_else_json() {
    let app = App::setup()
        .auth(|b| b.remember_device(remember_device(Duration::from_secs(86400))))
        .build();
    let kim = app.user("kim", UserKind::Internal, true);
    let phone = app.enroll_directly(&kim).await;
    app.next_step();
    let mut b = app.browser();
    b.login(&kim).await;
    let page = b.get("/2fa").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.content_type(), "text/html; charset=utf-8");
    let html = page.text();
    for label in [
        "Two Factor Authorization Code",
        "User Authenticator app",
        "Recovery code",
        "Submit",
        "Remember this device",
        "kim (display)",
        "<form method=\"post\" action=\"/2fa\">",
    ] {
        assert!(html.contains(label), "{label} missing in {html}");
    }
    // A wrong code: the page again, with the message, status 401.
    let r = b
        .post_form("/2fa", &format!("method=totp&code={}", phone.wrong_code()))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.content_type().starts_with("text/html"));
    assert!(r.text().contains("role=\"alert\""));
    assert!(r.text().contains("That code is not valid"));
    assert!(r.refusal().is_some());
    // `Accept: text/html` with a JSON body answers JSON.
    let r = b
        .post_json("/2fa", json!({ "code": phone.wrong_code() }))
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid", Some("totp"));
    // Accept lists with text/html among others are browsers too.
    let mut c = app.client();
    c.session = b.session.clone();
    let req = http::Request::get("/hello")
        .header(
            header::ACCEPT,
            "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
        )
        .body(Full::default())
        .unwrap();
    assert_redirect(&c.send(req).await, "/2fa");
    // Any other Accept gets JSON.
    let req = http::Request::get("/hello")
        .header(header::ACCEPT, "application/json")
        .body(Full::default())
        .unwrap();
    let r = c.send(req).await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "second_step_required",
        Some("totp"),
    );
}

#[tokio::test]
async fn refusals_carry_their_reason_and_can_be_replaced() {
    let app = App::setup()
        .auth(|b| {
            b.refusal_response(|refusal, format| {
                let body = format!(
                    "custom {} {} html={}",
                    refusal.reason.slug(),
                    refusal.next.map_or("-", Next::as_str),
                    format.is_html()
                );
                let mut res = Response::new(Full::new(Bytes::from(body)));
                *res.status_mut() = StatusCode::IM_A_TEAPOT;
                res
            })
        })
        .build();
    let tom = app.user("tom", UserKind::Internal, true);
    let phone = app.enroll_directly(&tom).await;
    app.next_step();
    let mut c = app.client();
    c.login(&tom).await;
    let r = c.get("/hello").await;
    assert_eq!(r.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(r.text(), "custom second_step_required totp html=false");
    assert_eq!(
        r.refusal(),
        Some(Refusal::new(
            RefusalReason::SecondStepRequired,
            Some(Next::Totp)
        ))
    );
    let mut b = app.browser();
    b.session = c.session.clone();
    let r = b.get("/hello").await;
    assert_eq!(r.text(), "custom second_step_required totp html=true");
    // The endpoints use it too.
    let r = c.submit(&phone.wrong_code()).await;
    assert_eq!(r.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(r.text(), "custom invalid totp html=false");
    assert_eq!(
        r.refusal().unwrap().reason,
        RefusalReason::CodeRejected(RejectReason::Invalid)
    );
    app.store.set_down(true);
    let r = c.get("/hello").await;
    assert_eq!(r.text(), "custom store_unavailable - html=false");
    assert_eq!(app.hits(), 0);
}

#[tokio::test]
async fn a_missing_session_layer_is_a_500_that_names_it() {
    let app = App::setup().without_sessions().build();
    app.user("uma", UserKind::Internal, true);
    for path in ["/hello", "/sensitive", "/2fa", "/2fa/enroll"] {
        let r = app.client().get(path).await;
        assert_problem(
            &r,
            StatusCode::INTERNAL_SERVER_ERROR,
            "missing_session_layer",
            None,
        );
        assert!(r.text().contains("SessionManagerLayer"), "{}", r.text());
        let r = app.browser().get(path).await;
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(r.text().contains("SessionManagerLayer"), "{}", r.text());
    }
    assert_eq!(app.hits(), 0);
}

#[tokio::test]
async fn the_endpoints_refuse_requests_without_a_login() {
    let app = App::new();
    let mut c = app.client();
    for path in [
        "/2fa",
        "/2fa/enroll",
        "/2fa/enroll/qr.png",
        "/2fa/authenticators",
    ] {
        let r = c.get(path).await;
        assert_problem(&r, StatusCode::UNAUTHORIZED, "not_logged_in", Some("login"));
    }
    let r = c.submit("123456").await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "not_logged_in", Some("login"));
    assert_redirect(&app.browser().get("/2fa").await, "/login");
    // Without a login the layer lets the application decide.
    assert_eq!(c.get("/hello").await.hello_factor(), "none");
}

#[tokio::test]
async fn bad_input_is_a_4xx_problem_never_a_500() {
    let app = App::new();
    let val = app.user("val", UserKind::Internal, true);
    let phone = app.enroll_directly(&val).await;
    app.next_step();
    let mut c = app.client();
    c.login(&val).await;

    let cases: Vec<(Reply, StatusCode, &str)> = vec![
        (
            c.post_raw("/2fa", None, b"code=123456".to_vec()).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            c.post_raw("/2fa", Some("text/plain"), b"123456".to_vec())
                .await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            c.post_raw("/2fa", Some("application/json"), b"{".to_vec())
                .await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            c.post_raw("/2fa", Some("application/json"), b"[\"123456\"]".to_vec())
                .await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            c.post_json("/2fa", json!({ "code": 123456 })).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            c.post_json("/2fa", json!({ "code": { "nested": "1" } }))
                .await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            c.post_json("/2fa", json!({})).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            c.post_raw(
                "/2fa",
                Some("application/x-www-form-urlencoded"),
                vec![b'c', b'o', b'd', b'e', b'=', 0xff, 0xfe],
            )
            .await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            c.post_raw("/2fa", Some("application/json"), vec![b' '; 16 * 1024 + 1])
                .await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            c.post_form("/2fa", &format!("code={}", "9".repeat(10_000)))
                .await,
            StatusCode::UNAUTHORIZED,
            "malformed",
        ),
        (
            c.post_json("/2fa", json!({ "code": "𝟙𝟚𝟛<script>" })).await,
            StatusCode::UNAUTHORIZED,
            "malformed",
        ),
        (
            c.post_json("/2fa", json!({ "recovery_code": "" })).await,
            StatusCode::UNAUTHORIZED,
            "malformed",
        ),
        (c.get("/2fa/nope").await, StatusCode::NOT_FOUND, "not_found"),
        (
            c.get("/2fa/enroll/qr.gif").await,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            c.send(http::Request::put("/2fa").body(Full::default()).unwrap())
                .await,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            c.get("/2fa/authenticators/x").await,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (i, (r, status, reason)) in cases.iter().enumerate() {
        assert_eq!(r.status(), *status, "case {i}: {}", r.text());
        assert_eq!(r.problem_reason(), *reason, "case {i}");
    }
    // None of it was charged to the throttle, nor broke the session.
    for _ in 0..3 {
        let r = c.submit(&phone.wrong_code()).await;
        assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid", Some("totp"));
    }
    let r = c.submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());

    // The enrollment endpoint, for a user enrolling.
    let wes = app.user("wes", UserKind::Internal, true);
    let mut e = app.client();
    e.login(&wes).await;
    let r = e.post_json("/2fa/enroll", json!({})).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "bad_request", Some("enroll"));
    let r = e.post_json("/2fa/enroll", json!({ "code": "12" })).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = e.get("/2fa/enroll?name=%ZZ").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let r = e.get("/2fa/enroll?replace").await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found", None);
    // Query junk is ignored; a long or control-laden name is cut and cleaned.
    let long = format!("/2fa/enroll?name={}%0A", "x".repeat(500));
    let r = e.get(&long).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = e
        .post_raw("/login", Some("application/json"), b"{}".to_vec())
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// `password_verified` refuses users the directory does not know.
#[tokio::test]
async fn unknown_users_cannot_log_in() {
    let app = App::new();
    let mut c = app.client();
    let r = c.post_json("/login", json!({ "username": "ghost" })).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(c.session, None);
}
