//! Step-up and the recent-step endpoints: a recent second step for
//! sensitive routes and for managing authenticators.
//!
//! In process, over the test kit's reference app (`SessionManagerLayer`,
//! `TotpLayer`, the `/2fa` endpoints) with a manual clock and the memory
//! stores.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use tower_totp::UserKind;
use tower_totp_testkit::app::App;
use tower_totp_testkit::app::{assert_problem, assert_redirect};

#[tokio::test]
async fn step_up_demands_a_recent_second_step() {
    let app = App::new();
    let lea = app.user("lea", UserKind::Internal, true);
    let phone = app.enroll_directly(&lea).await;
    app.next_step();
    let mut c = app.client();
    c.login_verified(&lea, &phone).await;
    assert_eq!(c.get("/sensitive").await.hello_factor(), "verified");
    app.advance(Duration::from_secs(120));
    assert_eq!(c.get("/sensitive").await.hello_factor(), "verified");
    app.advance(Duration::from_secs(1));
    let hits = app.hits();
    let r = c.get("/sensitive").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "step_up_required",
        Some("totp"),
    );
    assert_eq!(app.hits(), hits);
    // Ordinary routes are still open.
    assert_eq!(c.get("/hello").await.hello_factor(), "verified");
    // A browser goes to the second screen, which takes a fresh code.
    let mut b = app.browser();
    b.session = c.session.clone();
    assert_redirect(&b.get("/sensitive").await, "/2fa");
    assert_eq!(b.get("/2fa").await.status(), StatusCode::OK);
    app.next_step();
    let r = c.submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(c.get("/sensitive").await.hello_factor(), "verified");

    // Users without a second factor, and requests without a login, pass.
    let mo = app.user("mo", UserKind::External, false);
    let mut m = app.client();
    m.login(&mo).await;
    app.advance(Duration::from_secs(3600));
    assert_eq!(m.get("/sensitive").await.hello_factor(), "not_required");
    assert_eq!(app.client().get("/sensitive").await.hello_factor(), "none");
}

/// A step-up outside `TotpLayer` cannot know whether the second step was
/// done: it fails closed, and says what is wrong.
#[tokio::test]
async fn a_step_up_without_the_totp_layer_fails_closed() {
    let app = App::new();
    let mo = app.user("mo", UserKind::Internal, true);
    let phone = app.enroll_directly(&mo).await;
    app.next_step();
    let mut c = app.client();
    for _ in 0..2 {
        let r = c.get("/misplaced").await;
        assert_problem(
            &r,
            StatusCode::INTERNAL_SERVER_ERROR,
            "missing_totp_layer",
            None,
        );
        assert!(r.text().contains("TotpLayer"));
        c.login_verified(&mo, &phone).await;
        app.next_step();
    }
    assert_eq!(app.hits(), 0);
}

#[tokio::test]
async fn managing_authenticators_needs_a_recent_second_step() {
    let app = App::new();
    let quinn = app.user("quinn", UserKind::Internal, true);
    let mut c = app.client();
    assert_eq!(c.login(&quinn).await, "enroll");
    let (phone, recovery) = c.enroll(&app.clock).await;

    // Within 5 minutes of the enrollment.
    let r = c.get("/2fa/authenticators").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["recovery_codes_left"], 10);
    let list = v["authenticators"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "Authenticator app");
    let r = c.post_json("/2fa/recovery-codes", json!({})).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let fresh: Vec<String> = r.json()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !recovery.contains(c)));

    // Later: refused, though the session is still verified.
    app.advance(Duration::from_secs(5 * 60 + 1));
    assert_eq!(c.get("/hello").await.hello_factor(), "verified");
    let id = list[0]["id"].as_str().unwrap().to_owned();
    for r in [
        c.get("/2fa/authenticators").await,
        c.post_json("/2fa/recovery-codes", json!({})).await,
        c.post_json(&format!("/2fa/authenticators/{id}/revoke"), json!({}))
            .await,
        c.delete(&format!("/2fa/authenticators/{id}")).await,
        c.get(&format!("/2fa/enroll?replace={id}")).await,
        c.get("/2fa/enroll").await,
    ] {
        assert_problem(
            &r,
            StatusCode::UNAUTHORIZED,
            "step_up_required",
            Some("totp"),
        );
    }
    // An old recovery code no longer works; a new one counts as a step.
    let r = c
        .post_json("/2fa", json!({ "recovery_code": recovery[0] }))
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid", Some("totp"));
    let r = c
        .post_json("/2fa", json!({ "recovery_code": fresh[0] }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["recovery_codes_left"], 9);
    let r = c.get("/2fa/authenticators").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json()["recovery_codes_left"], 9);
    // A used recovery code is refused the second time (by form too).
    let r = c
        .post_form("/2fa", &format!("method=recovery&code={}", fresh[0]))
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid", Some("totp"));
    // The session moved on with the recovery code.
    let hello = c.get("/hello").await;
    assert_eq!(hello.json()["second_factor"]["method"], "RecoveryCode");

    // Revoke the only authenticator: back to forced enrollment.
    let r = c.delete(&format!("/2fa/authenticators/{id}")).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), json!({ "revoked": true }));
    let r = c.delete(&format!("/2fa/authenticators/{id}")).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found", None);
    let r = c.get("/hello").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "enrollment_required",
        Some("enroll"),
    );
    let _ = phone;
}

/// A browser revoking from the list page follows the redirects back to it.
#[tokio::test]
async fn the_authenticators_page_for_browsers() {
    let app = App::new();
    let rae = app.user("rae", UserKind::Internal, true);
    let phone = app.enroll_directly(&rae).await;
    app.next_step();
    let mut b = app.browser();
    b.login(&rae).await;
    let r = b
        .post_form("/2fa", &format!("method=totp&code={}", phone.code()))
        .await;
    assert_redirect(&r, "/");
    let page = b.get("/2fa/authenticators").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text();
    assert!(html.contains("Phone"));
    assert!(html.contains("10 unused recovery codes"));
    let r = b.post_form("/2fa/recovery-codes", "").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().contains("id=\"recovery-codes\""));
}
