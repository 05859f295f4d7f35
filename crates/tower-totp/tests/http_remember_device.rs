//! Remember-device over HTTP: the cookie skips the code until revoked, and
//! is off by default.
//!
//! In process, over the test kit's reference app (`SessionManagerLayer`,
//! `TotpLayer`, the `/2fa` endpoints) with a manual clock and the memory
//! stores.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use http::{StatusCode, header};
use serde_json::json;
use tower_totp::UserKind;
use tower_totp_testkit::app::{App, remember_device};
use tower_totp_testkit::app::{assert_problem, assert_redirect};
use tower_totp_testkit::phone::Phone;

#[tokio::test]
async fn remember_device_skips_the_code_until_revoked() {
    let app = App::setup()
        .auth(|b| b.remember_device(remember_device(Duration::from_secs(7 * 86400))))
        .build();
    let ned = app.user("ned", UserKind::Internal, true);
    let phone = app.enroll_directly(&ned).await;
    app.next_step();

    // Without `remember`, no cookie.
    let mut c = app.client();
    c.login_verified(&ned, &phone).await;
    assert_eq!(c.remember, None);
    c.logout().await;

    // With it, the cookie.
    app.next_step();
    c.login(&ned).await;
    let r = c
        .post_json("/2fa", json!({ "code": phone.code(), "remember": true }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let cookie = r
        .parts
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("tower_totp_device="))
        .expect("remember cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("Max-Age=604800"), "{cookie}");
    assert!(c.remember.is_some());
    c.logout().await;

    // A new login skips the code, on a guarded route...
    assert_eq!(c.login(&ned).await, "totp");
    let before = c.session.clone();
    let r = c.get("/hello").await;
    assert_eq!(r.hello_factor(), "verified");
    assert_eq!(r.json()["second_factor"]["method"], "RememberedDevice");
    assert_ne!(c.session, before, "the id is cycled when the device counts");
    // It proves the browser, not the phone: no step-up, no managing
    // authenticators with it.
    let r = c.get("/sensitive").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "step_up_required",
        Some("totp"),
    );
    for r in [
        c.get("/2fa/authenticators").await,
        c.post_json("/2fa/recovery-codes", json!({})).await,
        c.get("/2fa/enroll?name=Attacker").await,
    ] {
        assert_problem(
            &r,
            StatusCode::UNAUTHORIZED,
            "step_up_required",
            Some("totp"),
        );
    }
    // The second screen asks for a code then, and takes it.
    assert_eq!(c.get("/2fa").await.next(), "totp");
    app.next_step();
    let r = c.submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(c.get("/sensitive").await.hello_factor(), "verified");
    assert_eq!(c.get("/2fa/authenticators").await.status(), StatusCode::OK);
    c.logout().await;
    // ...and on the second screen it was sent to.
    c.login(&ned).await;
    let r = c.get("/2fa").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), json!({ "next": "done" }));
    assert_eq!(c.get("/hello").await.hello_factor(), "verified");
    c.logout().await;
    // A browser on the second screen goes on to the application.
    let mut b = app.browser();
    b.remember = c.remember.clone();
    b.login(&ned).await;
    assert_redirect(&b.get("/2fa").await, "/");

    // Another user cannot use it.
    let ola = app.user("ola", UserKind::Internal, true);
    app.enroll_directly(&ola).await;
    let mut o = app.client();
    o.remember = c.remember.clone();
    o.login(&ola).await;
    let r = o.get("/hello").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "second_step_required",
        Some("totp"),
    );

    // Revoking an authenticator revokes the cookie.
    app.next_step();
    let mut c2 = app.client();
    c2.login_verified(&ned, &phone).await;
    // A second authenticator, so that revoking one leaves ned enrolled.
    let r = c2.get("/2fa/enroll?name=Tablet").await;
    let tablet = Phone::from_enroll_json(&r.json(), &app.clock);
    let r = c2
        .post_json("/2fa/enroll", json!({ "code": tablet.code() }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    // Adding one changed the epoch: the old cookie no longer counts.
    c.login(&ned).await;
    let r = c.get("/hello").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "second_step_required",
        Some("totp"),
    );
    app.next_step();
    let r = c
        .post_json("/2fa", json!({ "code": phone.code(), "remember": "on" }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    c.logout().await;
    c.login(&ned).await;
    assert_eq!(c.get("/hello").await.hello_factor(), "verified");
    c.logout().await;
    let list = c2.get("/2fa/authenticators").await.json();
    let tablet_id = list["authenticators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Tablet")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = c2
        .post_json(
            &format!("/2fa/authenticators/{tablet_id}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    c.login(&ned).await;
    let r = c.get("/hello").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "second_step_required",
        Some("totp"),
    );

    // A reset revokes it too.
    app.next_step();
    let r = c
        .post_json("/2fa", json!({ "code": phone.code(), "remember": true }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    c.logout().await;
    c.login(&ned).await;
    assert_eq!(c.get("/hello").await.hello_factor(), "verified");
    c.logout().await;
    app.auth.engine().reset(&ned).await.unwrap();
    // A reset ends every login at or before it: log in after it.
    app.advance(Duration::from_millis(1));
    let phone = app.enroll_directly(&ned).await;
    assert_eq!(c.login(&ned).await, "totp");
    let r = c.get("/hello").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "second_step_required",
        Some("totp"),
    );
    // And it expires.
    app.next_step();
    c.submit_remembered(&phone).await;
    c.logout().await;
    app.advance(Duration::from_secs(7 * 86400));
    c.login(&ned).await;
    let r = c.get("/hello").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn remember_device_is_off_by_default() {
    let app = App::new();
    let pia = app.user("pia", UserKind::Internal, true);
    let phone = app.enroll_directly(&pia).await;
    app.next_step();
    let mut b = app.browser();
    b.login(&pia).await;
    assert!(!b.get("/2fa").await.text().contains("Remember this device"));
    let mut c = app.client();
    c.login(&pia).await;
    let r = c
        .post_json("/2fa", json!({ "code": phone.code(), "remember": true }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(c.remember, None);
}
