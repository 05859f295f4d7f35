//! The clock hint over HTTP: an accepted code a step fast (or, by the
//! default rule, two slow) answers `clock_hint_s` (the second step and the
//! enrollment's first code); an on-time code, or one a step behind (the
//! typing time, by the default rule), does not; no refusal ever carries
//! one, and a code just outside the window is refused exactly as a random
//! wrong code is, so a guesser learns nothing from a near miss.
//!
//! In process, over the test kit's reference app with a manual clock. The
//! landing page that shows a browser the hint is the application's: the
//! demo's tests (`crates/totp-demo/tests/clock_hint.rs`) cover it.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use tower_totp::UserKind;
use tower_totp::code::{Algorithm, CodeParams};
use tower_totp::http::ClockHintRule;
use tower_totp_testkit::app::{App, Reply, assert_problem};
use tower_totp_testkit::phone::Phone;

/// The answer to `code` for a fresh login of a new enrolled user whose
/// phone is `phone_offset` steps from the server.
async fn second_step(app: &App, name: &str, phone_offset: i64) -> Reply {
    let user = app.user(name, UserKind::Internal, true);
    let phone = app.enroll_directly(&user).await;
    // Past the enrollment's step, also for a slow phone's code.
    app.advance(Duration::from_secs(2 * u64::from(phone.params().period())));
    let mut c = app.client();
    assert_eq!(c.login(&user).await, "totp");
    c.submit(&phone.code_at_offset(phone_offset)).await
}

/// Each case a new user: `(name, phone offset in steps, hint)`.
async fn assert_hints(app: &App, cases: &[(&str, i64, Option<i64>)]) {
    for &(name, offset, hint) in cases {
        let r = second_step(app, name, offset).await;
        assert_eq!(r.status(), StatusCode::OK, "{name}: {}", r.text());
        let v = r.json();
        assert_eq!(v["next"], "done", "{name}");
        assert_eq!(
            v.get("clock_hint_s").and_then(|s| s.as_i64()),
            hint,
            "{name}: {v}"
        );
    }
}

#[tokio::test]
async fn a_code_a_step_ahead_answers_how_far_the_clock_is() {
    let app = App::new();
    assert_hints(
        &app,
        &[
            ("fast", 1, Some(30)),
            ("on-time", 0, None),
            ("behind", -1, None),
        ],
    )
    .await;
}

/// Two steps behind is outside a new device's window: the first login a
/// step behind teaches the server the offset, the next is two behind.
#[tokio::test]
async fn a_phone_two_steps_slow_is_told_once_the_server_learned_it() {
    let app = App::new();
    let user = app.user("slow", UserKind::Internal, true);
    let phone = app.enroll_directly(&user).await;
    app.advance(Duration::from_secs(3 * 30));
    let mut c = app.client();
    c.login(&user).await;
    let first = c.submit(&phone.code_at_offset(-1)).await;
    assert_eq!(first.status(), StatusCode::OK, "{}", first.text());
    assert!(
        first.json().get("clock_hint_s").is_none(),
        "{}",
        first.text()
    );
    app.advance(Duration::from_secs(3 * 30));
    let mut c = app.client();
    c.login(&user).await;
    let second = c.submit(&phone.code_at_offset(-2)).await;
    assert_eq!(second.status(), StatusCode::OK, "{}", second.text());
    assert_eq!(second.json()["clock_hint_s"], -60, "{}", second.text());
}

#[tokio::test]
async fn the_rule_is_the_applications_to_choose() {
    let every = App::setup()
        .auth(|b| b.clock_hint(ClockHintRule::every_step()))
        .build();
    assert_hints(&every, &[("fast", 1, Some(30)), ("slow", -1, Some(-30))]).await;
    let never = App::setup()
        .auth(|b| b.clock_hint(ClockHintRule::never()))
        .build();
    assert_hints(&never, &[("fast", 1, None), ("slow", -1, None)]).await;
}

#[tokio::test]
async fn the_hint_is_in_seconds_of_the_configured_step() {
    let app = App::setup()
        .config(|c| c.with_params(CodeParams::new(Algorithm::Sha1, 6, 60).unwrap()))
        .build();
    let r = second_step(&app, "minute", 1).await;
    assert_eq!(r.json()["clock_hint_s"], 60, "{}", r.text());
}

#[tokio::test]
async fn the_first_code_of_an_enrollment_answers_it_too() {
    let app = App::new();
    let user = app.user("new", UserKind::Internal, true);
    let mut c = app.client();
    assert_eq!(c.login(&user).await, "enroll");
    let page = c.get("/2fa/enroll").await;
    let phone = Phone::from_enroll_json(&page.json(), &app.clock);
    let r = c
        .post_json("/2fa/enroll", json!({ "code": phone.code_at_offset(1) }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["clock_hint_s"], 30, "{v}");
    assert!(
        v["recovery_codes"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );
}

/// A near miss (the code two steps ahead, just outside the default
/// window), a random wrong code and a replay, each from a session of its
/// own user in the same state: no hint, and the near miss and the random
/// code answer the same bytes.
#[tokio::test]
async fn refusals_never_carry_a_hint() {
    let app = App::new();
    let near = second_step(&app, "near", 2).await;
    let wrong = {
        let user = app.user("wrong", UserKind::Internal, true);
        let phone = app.enroll_directly(&user).await;
        let mut c = app.client();
        assert_eq!(c.login(&user).await, "totp");
        c.submit(&phone.wrong_code()).await
    };
    assert_problem(&near, StatusCode::UNAUTHORIZED, "invalid", Some("totp"));
    assert_eq!(near.status(), wrong.status());
    assert_eq!(near.text(), wrong.text());
    for name in ["content-type", "cache-control", "retry-after"] {
        assert_eq!(
            near.header(name.parse().unwrap()),
            wrong.header(name.parse().unwrap()),
            "{name}"
        );
    }
    // A replay of a fast phone's accepted code, from a second session.
    let user = app.user("replayed", UserKind::Internal, true);
    let phone = app.enroll_directly(&user).await;
    app.next_step();
    let code = phone.code_at_offset(1);
    let mut first = app.client();
    first.login(&user).await;
    assert_eq!(first.submit(&code).await.json()["clock_hint_s"], 30);
    let mut second = app.client();
    second.login(&user).await;
    let replay = second.submit(&code).await;
    assert_problem(&replay, StatusCode::UNAUTHORIZED, "replayed", Some("totp"));
    for r in [&near, &wrong, &replay] {
        assert!(!r.text().contains("clock"), "{}", r.text());
    }
}

/// A browser is redirected to the application: the hint is not in the
/// redirect (the landing page shows it), and the refusal page has none.
#[tokio::test]
async fn browsers_get_the_redirect_without_it() {
    let app = App::new();
    let user = app.user("kim", UserKind::Internal, true);
    let phone = app.enroll_directly(&user).await;
    app.next_step();
    let mut b = app.browser();
    b.login(&user).await;
    let refused = b
        .post_form(
            "/2fa",
            &format!("method=totp&code={}", phone.code_at_offset(2)),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(!refused.text().contains("clock"), "{}", refused.text());
    let r = b
        .post_form(
            "/2fa",
            &format!("method=totp&code={}", phone.code_at_offset(1)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text());
    assert!(!r.text().contains("clock"));
}
