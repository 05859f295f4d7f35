//! The clock hint in the demo, as a browser meets it: after a code from a
//! phone a step fast (or slow), the home page it lands on says so once, in
//! a status message; an on-time code, a refused code, or another session
//! of the same user never shows it. Scripts read `clock_hint_s` in the
//! answer of `POST /2fa`.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, TestDemo};
use http::StatusCode;
use serde_json::json;
use tower_totp::clock::ManualClock;
use tower_totp_testkit::phone::Phone;

/// What the home page says about a phone one step fast.
const FAST: &str = "Your phone&#39;s clock seems about 30 s fast.";

/// Move the demo's clock on by `steps` steps of 30 s.
fn wait_steps(clock: &ManualClock, steps: u64) {
    clock.advance(Duration::from_secs(30 * steps));
}

/// jsmith syncs an app (as a script): the phone.
async fn synced_phone(demo: &TestDemo) -> Phone {
    let mut script = demo.client();
    let secret = script.login_and_sync("jsmith", &demo.clock).await;
    Phone::from_base32(&secret, &demo.clock)
}

/// A browser that logged jsmith in with the password: on the second screen.
async fn browser_at_second_step(demo: &TestDemo) -> Client {
    let mut b = demo.client();
    let a = b
        .submit("/login", &[("username", "jsmith"), ("password", "demo")])
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text());
    assert_eq!(a.location(), "/2fa");
    b
}

async fn send(b: &mut Client, code: &str) -> common::Answer {
    b.submit("/2fa", &[("method", "totp"), ("code", code)])
        .await
}

#[tokio::test]
async fn a_fast_phone_is_told_once_on_the_page_it_lands_on() {
    let demo = TestDemo::start();
    let phone = synced_phone(&demo).await;
    wait_steps(&demo.clock, 2);
    let mut b = browser_at_second_step(&demo).await;
    let a = send(&mut b, &phone.code_at_offset(1)).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text());
    assert_eq!(a.location(), "/");
    let home = b.browse("/").await.text();
    assert!(home.contains("id=\"clock-hint\""), "{home}");
    assert!(home.contains("role=\"status\""));
    assert!(home.contains(FAST), "{home}");
    assert!(home.contains("set the phone to automatic time"));
    // Once: the next page load has no hint.
    let again = b.browse("/").await.text();
    assert!(!again.contains("clock-hint"), "{again}");
}

#[tokio::test]
async fn on_time_and_refused_codes_show_no_hint() {
    let demo = TestDemo::start();
    let phone = synced_phone(&demo).await;
    wait_steps(&demo.clock, 2);
    let mut b = browser_at_second_step(&demo).await;
    // Refused: a near miss (two steps ahead, outside the window), a
    // random wrong code. Neither page speaks of the clock.
    for code in [phone.code_at_offset(2), phone.wrong_code()] {
        let a = send(&mut b, &code).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text());
        assert!(!a.text().contains("clock"), "{}", a.text());
    }
    // Then an on-time code: no hint on the home page either.
    let a = send(&mut b, &phone.code()).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text());
    let home = b.browse("/").await.text();
    assert!(home.contains("id=\"welcome\""), "{home}");
    assert!(!home.contains("clock-hint"), "{home}");
}

/// Two browsers of one user: a hint left in one (its home page not loaded
/// yet) never shows in the other, and still shows, once, in its own.
#[tokio::test]
async fn a_hint_left_in_one_session_never_shows_in_another() {
    let demo = TestDemo::start();
    let phone = synced_phone(&demo).await;
    wait_steps(&demo.clock, 2);
    let mut fast = browser_at_second_step(&demo).await;
    let mut other = browser_at_second_step(&demo).await;
    let a = send(&mut fast, &phone.code_at_offset(1)).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text());
    // The fast code used the next step: the other browser's on-time code
    // must be a later one.
    wait_steps(&demo.clock, 2);
    let a = send(&mut other, &phone.code()).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text());
    let home = other.browse("/").await.text();
    assert!(home.contains("id=\"welcome\""), "{home}");
    assert!(!home.contains("clock-hint"), "{home}");
    let home = fast.browse("/").await.text();
    assert!(home.contains(FAST), "{home}");
}

/// A script gets the hint in the answer, never on a refusal, and a
/// browser session it made is not left one.
#[tokio::test]
async fn scripts_read_clock_hint_s() {
    let demo = TestDemo::start();
    let phone = synced_phone(&demo).await;
    wait_steps(&demo.clock, 2);
    let mut script = demo.client();
    assert_eq!(script.login("jsmith", "demo").await, "totp");
    let near = script
        .post_json("/2fa", json!({ "code": phone.code_at_offset(2) }))
        .await;
    assert_eq!(near.status, StatusCode::UNAUTHORIZED);
    assert!(near.json().get("clock_hint_s").is_none(), "{}", near.text());
    let a = script
        .post_json("/2fa", json!({ "code": phone.code_at_offset(1) }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.json()["clock_hint_s"], 30, "{}", a.text());
    // The same session's home page as a browser: the script had its hint.
    let home = script.browse("/").await.text();
    assert!(home.contains("id=\"welcome\""), "{home}");
    assert!(!home.contains("clock-hint"), "{home}");
}
