//! Forged and stale cookies, and requests in the wrong order, against the
//! demo: strangers get nothing, and nothing stored changes.
//!
//! In process, with a manual clock and a temporary SQLite file; the
//! harness is `tests/common/bad_input.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::bad_input::{Probe, code_at, login, reason, send, world};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use totp_demo::SESSION_COOKIE;

/// Forged, stale and fixed cookies are strangers: on every route, with
/// bodies that would be accepted from the right session.
#[tokio::test]
async fn forged_and_stale_cookies_are_strangers() {
    let w = world().await;
    let t = &w.t;
    // A session that logged out: its id is gone.
    // (The admin synced an app in `world`: its login asks for a code.)
    let mut gone = login(t, "admin", "totp").await;
    let admin_gone = gone.cookie.clone().unwrap();
    assert_eq!(
        gone.post_json("/logout", json!({})).await.status,
        StatusCode::OK
    );
    // Session fixation: an id planted before the login is not the one the
    // login gets, and the pending id is not the verified one.
    let planted = "q7ZLd3Yf0Y2b9x1uXq1KZw";
    let mut fixed = t.client();
    fixed.cookie = Some(planted.into());
    assert_eq!(fixed.login("jsmith", "demo").await, "totp");
    let pending_id = fixed.cookie.clone().unwrap();
    assert_ne!(pending_id, planted);
    t.clock.advance(Duration::from_secs(30));
    let ok = fixed
        .post_json("/2fa", json!({ "code": code_at(&w.secret, &t.clock, 0) }))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_ne!(fixed.cookie.as_deref(), Some(pending_id.as_str()));

    let cookies: Vec<Vec<u8>> = vec![
        // No cookie at all.
        Vec::new(),
        format!("{SESSION_COOKIE}={planted}").into_bytes(),
        format!("{SESSION_COOKIE}={pending_id}").into_bytes(),
        format!("{SESSION_COOKIE}={admin_gone}").into_bytes(),
        format!("{SESSION_COOKIE}=AAAAAAAAAAAAAAAAAAAAAA").into_bytes(),
        format!("{SESSION_COOKIE}=not-a-session-id").into_bytes(),
        format!("{SESSION_COOKIE}=").into_bytes(),
        format!("{SESSION_COOKIE}={}", "A".repeat(4000)).into_bytes(),
        format!("{SESSION_COOKIE}=%00%FF").into_bytes(),
        format!("{SESSION_COOKIE}=\"quoted\"").into_bytes(),
        [format!("{SESSION_COOKIE}=").as_bytes(), b"\xff\xfe"].concat(),
        format!("{SESSION_COOKIE}=x; {SESSION_COOKIE}=y").into_bytes(),
        format!("other={}", w.admin).into_bytes(),
        b"\xff\xfe".to_vec(),
        b";;;=;".to_vec(),
    ];
    let code = code_at(&w.secret, &t.clock, 1);
    let revoke = format!("/2fa/authenticators/{}/revoke", w.authenticator);
    let delete = format!("/2fa/authenticators/{}", w.authenticator);
    let routes: Vec<(Method, &str, Value)> = vec![
        (Method::GET, "/", Value::Null),
        (Method::GET, "/api/me", Value::Null),
        (Method::GET, "/admin", Value::Null),
        (Method::GET, "/admin/settings", Value::Null),
        (Method::PUT, "/admin/settings", json!({ "enabled": false })),
        (Method::GET, "/admin/users", Value::Null),
        (Method::GET, "/admin/users/jsmith", Value::Null),
        (
            Method::PUT,
            "/admin/users/jsmith",
            json!({ "require_2fa": false }),
        ),
        (Method::GET, "/2fa", Value::Null),
        (Method::POST, "/2fa", json!({ "code": code })),
        (
            Method::POST,
            "/2fa",
            json!({ "recovery_code": w.recovery_codes[0] }),
        ),
        (Method::GET, "/2fa/enroll", Value::Null),
        (Method::GET, "/2fa/enroll/qr.png", Value::Null),
        (Method::GET, "/2fa/enroll/qr.svg", Value::Null),
        (Method::POST, "/2fa/enroll", json!({ "code": code })),
        (Method::GET, "/2fa/authenticators", Value::Null),
        (Method::POST, &revoke, Value::Null),
        (Method::DELETE, &delete, Value::Null),
        (Method::POST, "/2fa/recovery-codes", Value::Null),
    ];
    for cookie in &cookies {
        for (method, path, body) in &routes {
            let mut p = Probe::new(method.clone(), *path);
            if !cookie.is_empty() {
                p = p.raw_cookie(cookie);
            }
            if !body.is_null() {
                p = p.json_value(body);
            }
            let a = w.refused_unchanged(&p).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", p.describe());
            assert_eq!(reason(&a), "not_logged_in", "{}", p.describe());
            assert_eq!(a.json()["next"], "login");
            // A browser is sent to the login page.
            let mut p = Probe::new(method.clone(), *path).browser();
            if !cookie.is_empty() {
                p = p.raw_cookie(cookie);
            }
            if method != Method::GET {
                p = p.form("");
            }
            let a = w.refused_unchanged(&p).await;
            assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", p.describe());
            assert_eq!(a.location(), "/login", "{}", p.describe());
        }
    }
    // The stranger's code and recovery code were not used up.
    let mut c = login(t, "jsmith", "totp").await;
    let ok = c.post_json("/2fa", json!({ "code": code })).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
}

/// Steps out of order: a code before the login, after the logout, a
/// confirmation without an enrollment, account changes without a recent
/// second step.
#[tokio::test]
async fn requests_in_the_wrong_order_are_refused() {
    let w = world().await;
    let t = &w.t;
    t.clock.advance(Duration::from_secs(30));
    let code = code_at(&w.secret, &t.clock, 0);

    // A code (or a recovery code) before any login.
    for body in [
        json!({ "code": code }),
        json!({ "recovery_code": w.recovery_codes[0] }),
    ] {
        for path in ["/2fa", "/2fa/enroll"] {
            let p = Probe::post(path).json_value(&body);
            w.refused_as(&p, StatusCode::UNAUTHORIZED, "not_logged_in")
                .await;
        }
    }
    // A second step after the logout.
    let mut c = login(t, "jsmith", "totp").await;
    let stale = c.cookie.clone().unwrap();
    assert_eq!(
        c.post_json("/logout", json!({})).await.status,
        StatusCode::OK
    );
    let p = Probe::post("/2fa")
        .session(&stale)
        .json_value(&json!({ "code": code }));
    w.refused_as(&p, StatusCode::UNAUTHORIZED, "not_logged_in")
        .await;
    // The same client after the logout (no cookie at all).
    let a = c.post_json("/2fa", json!({ "code": code })).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    // Confirming an enrollment that was never started: not charged.
    let p = Probe::post("/2fa/enroll")
        .session(&w.admin)
        .json_value(&json!({ "code": "123456" }));
    w.refused_as(&p, StatusCode::UNAUTHORIZED, "no_pending_enrollment")
        .await;
    // The second step for portal, who must enrol first.
    let p = Probe::post("/2fa")
        .session(&w.portal_enrolling)
        .json_value(&json!({ "code": "123456" }));
    w.refused_as(&p, StatusCode::UNAUTHORIZED, "enrollment_required")
        .await;
    let p = Probe::get("/2fa").session(&w.portal_enrolling);
    w.refused_as(&p, StatusCode::UNAUTHORIZED, "enrollment_required")
        .await;
    let p = Probe::post("/2fa/recovery-codes").session(&w.portal_enrolling);
    w.refused_as(&p, StatusCode::UNAUTHORIZED, "step_up_required")
        .await;

    // The password alone (a password thief) cannot touch the account's
    // second factor: no new phone, no list, no revoke, no recovery codes,
    // nothing behind the layer.
    let pending = w.jsmith_pending.as_str();
    let revoke = format!("/2fa/authenticators/{}/revoke", w.authenticator);
    let delete = format!("/2fa/authenticators/{}", w.authenticator);
    for (method, path, why) in [
        (Method::GET, "/2fa/enroll", "step_up_required"),
        (Method::GET, "/2fa/enroll?name=Thief", "step_up_required"),
        (Method::GET, "/2fa/enroll/qr.png", "step_up_required"),
        (Method::GET, "/2fa/enroll/qr.svg", "step_up_required"),
        (Method::POST, "/2fa/enroll", "step_up_required"),
        (Method::GET, "/2fa/authenticators", "step_up_required"),
        (Method::POST, revoke.as_str(), "step_up_required"),
        (Method::DELETE, delete.as_str(), "step_up_required"),
        (Method::POST, "/2fa/recovery-codes", "step_up_required"),
        (Method::GET, "/api/me", "second_step_required"),
        (Method::GET, "/", "second_step_required"),
        (Method::PUT, "/admin/settings", "second_step_required"),
    ] {
        let p = Probe::new(method, path)
            .session(pending)
            .json_value(&json!({ "code": code, "enabled": false }));
        w.refused_as(&p, StatusCode::UNAUTHORIZED, why).await;
    }
    // The code no stranger could use still logs jsmith in.
    let ok = send(
        &w.router,
        &Probe::post("/2fa")
            .session(pending)
            .json_value(&json!({ "code": code })),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
}
