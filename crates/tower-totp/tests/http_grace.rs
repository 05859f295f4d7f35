//! The enrollment grace period through HTTP: a user who must enrol but has
//! not may log in with the password alone for `grace_days`, counted from
//! the first login at which the requirement applied; the session has no
//! second factor (marked `grace`), step-up routes refuse it, and once the
//! period is over enrolling is forced.
//!
//! In process, over the test kit's reference app with a manual clock.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use http::StatusCode;
use tower_totp::UserKind;
use tower_totp::clock::UnixTime;
use tower_totp::policy::PolicySettings;
use tower_totp_testkit::app::{App, assert_problem, assert_redirect};

const DAY: u64 = 86_400;

fn with_grace(app: &App, days: u32) {
    app.auth.policy().set(PolicySettings {
        grace_days: days,
        ..app.auth.policy().get()
    });
}

fn rfc3339(secs: u64) -> String {
    UnixTime::from_secs(secs).to_rfc3339()
}

#[tokio::test]
async fn inside_the_grace_period_the_password_alone_logs_in_until_its_last_second() {
    let app = App::new();
    with_grace(&app, 3);
    let ann = app.user("ann", UserKind::Internal, true);
    let first = app.now_secs();
    let until = first + 3 * DAY;

    let mut c = app.client();
    let r = c.try_login(&ann).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json()["next"], "done");
    assert_eq!(r.json()["grace_until"], rfc3339(until));
    let hello = c.hello().await.json();
    assert_eq!(hello["second_factor"]["factor"], "grace");
    assert_eq!(hello["second_factor"]["until"], until);
    assert_eq!(hello["totp_verified"], serde_json::Value::Null);
    // The grace page, for scripts and for browsers.
    let r = c.get("/2fa/grace").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json()["grace_until"], rfc3339(until));
    let mut b = app.browser();
    b.session = c.session.clone();
    let page = b.get("/2fa/grace").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text();
    assert!(html.contains("3 days"), "{html}");
    assert!(html.contains("href=\"/2fa/enroll\"") && html.contains("Sync now"));
    assert!(html.contains("href=\"/\"") && html.contains("Later"));

    // A second session, a day later: the period counts from the first
    // login, not from this one.
    app.advance(Duration::from_secs(DAY));
    let mut second = app.client();
    let r = second.try_login(&ann).await;
    assert_eq!(r.json()["next"], "done");
    assert_eq!(r.json()["grace_until"], rfc3339(until));
    assert_eq!(second.hello().await.hello_factor(), "grace");

    // The last second of the period, in both sessions and at a new login.
    app.advance(Duration::from_secs(until - app.now_secs() - 1));
    assert_eq!(c.hello().await.hello_factor(), "grace");
    assert_eq!(second.hello().await.hello_factor(), "grace");
    let mut third = app.client();
    assert_eq!(third.login(&ann).await, "done");

    // Over: both open sessions must enrol, a new login is sent to enrol.
    app.advance(Duration::from_secs(1));
    for s in [&mut c, &mut second, &mut third] {
        let r = s.hello().await;
        assert_problem(
            &r,
            StatusCode::UNAUTHORIZED,
            "enrollment_required",
            Some("enroll"),
        );
    }
    let mut late = app.client();
    let r = late.try_login(&ann).await;
    assert_eq!(r.json()["next"], "enroll");
    assert_eq!(r.json().get("grace_until"), None);
    assert_problem(
        &late.get("/2fa/grace").await,
        StatusCode::UNAUTHORIZED,
        "enrollment_required",
        Some("enroll"),
    );
    // A session open when the period ended may still enrol at once.
    let (_phone, codes) = c.enroll(&app.clock).await;
    assert!(!codes.is_empty());
    assert_eq!(c.hello().await.hello_factor(), "verified");
}

#[tokio::test]
async fn sync_now_works_long_after_the_grace_login_and_then_a_code_is_asked() {
    let app = App::new();
    with_grace(&app, 7);
    let bo = app.user("bo", UserKind::Internal, true);
    let mut c = app.client();
    assert_eq!(c.login(&bo).await, "done");
    // Hours later, well past the pending time of a login that must enrol.
    app.advance(Duration::from_secs(5 * 3600));
    assert_eq!(c.hello().await.hello_factor(), "grace");
    let (phone, _) = c.enroll(&app.clock).await;
    assert_eq!(c.hello().await.hello_factor(), "verified");
    // Enrolled: the next login asks for a code, grace or not.
    app.next_step();
    let mut next = app.client();
    next.login_verified(&bo, &phone).await;
}

#[tokio::test]
async fn a_grace_session_has_no_second_factor_for_step_up_routes() {
    let app = App::new();
    with_grace(&app, 1);
    let cy = app.user("cy", UserKind::Internal, true);
    let mut c = app.client();
    assert_eq!(c.login(&cy).await, "done");
    let hits = app.hits();
    let r = c.get("/sensitive").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "enrollment_required",
        Some("enroll"),
    );
    assert_eq!(app.hits(), hits, "the step-up route was reached");
    let mut b = app.browser();
    b.session = c.session.clone();
    assert_redirect(&b.get("/sensitive").await, "/2fa/enroll");
    // Ordinary routes are open.
    assert_eq!(c.hello().await.hello_factor(), "grace");
}

#[tokio::test]
async fn zero_days_keeps_enrolling_forced_and_a_later_grace_counts_from_the_first_login() {
    let app = App::new();
    let dee = app.user("dee", UserKind::Internal, true);
    let mut c = app.client();
    let r = c.try_login(&dee).await;
    assert_eq!(r.json()["next"], "enroll");
    assert_eq!(r.json().get("grace_until"), None);
    assert_problem(
        &c.hello().await,
        StatusCode::UNAUTHORIZED,
        "enrollment_required",
        Some("enroll"),
    );
    let first = app.now_secs();
    app.advance(Duration::from_secs(DAY));
    // Switched on a day later: two days from the first login, one left.
    with_grace(&app, 2);
    let mut later = app.client();
    let r = later.try_login(&dee).await;
    assert_eq!(r.json()["next"], "done");
    assert_eq!(r.json()["grace_until"], rfc3339(first + 2 * DAY));
    // Shortened by the administrator: open grace sessions end at once.
    with_grace(&app, 1);
    assert_problem(
        &later.hello().await,
        StatusCode::UNAUTHORIZED,
        "enrollment_required",
        Some("enroll"),
    );
}

#[tokio::test]
async fn users_who_need_not_enrol_see_no_grace() {
    let app = App::new();
    with_grace(&app, 5);
    let eve = app.user("eve", UserKind::Internal, false);
    let mut c = app.client();
    let r = c.try_login(&eve).await;
    assert_eq!(r.json()["next"], "done");
    assert_eq!(r.json().get("grace_until"), None);
    assert_eq!(c.hello().await.hello_factor(), "not_required");
    // The grace page of a user to whom 2FA does not apply: nothing to do.
    assert_eq!(c.get("/2fa/grace").await.json()["next"], "done");
    // Enrolled users are asked for a code.
    let fay = app.user("fay", UserKind::Internal, true);
    let _phone = app.enroll_directly(&fay).await;
    let mut f = app.client();
    assert_eq!(f.login(&fay).await, "totp");
    assert_problem(
        &f.get("/2fa/grace").await,
        StatusCode::UNAUTHORIZED,
        "second_step_required",
        Some("totp"),
    );
}
