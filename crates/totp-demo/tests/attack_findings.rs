//! Attacks on the demo's second factor found by an attacker's review of
//! the first round of issue 11's fixes, each first run over real HTTP
//! against `totp-demo` (two and more cookie jars, the browser's headers)
//! and replayed here in process with the manual clock. Each failed before
//! its fix: B1 the resync drift-rate rule, B2 the pruned password
//! counters, B3 a GET that never replaces a pending enrollment, B4 names
//! without line separators or invisible fillers (`docs/security.md`).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::TestDemo;
use http::StatusCode;
use serde_json::json;
use tower_totp_testkit::phone::Phone;

const STEP: Duration = Duration::from_secs(30);

/// Issue 11, section 3 and `[shoulder_surfer]`: a shoulder surfer who
/// watched the victim's phone for a minute after the victim logged in has
/// seen the codes of the next two steps, which the victim never typed.
/// Minutes later, outside the window, the first leaves a resync candidate
/// and the second, one step later, "resynchronises" the phone to a drift
/// it never had, and opens a verified session (with a recent step: enough
/// to add the surfer's own authenticator). A phone that was on time at its
/// last use a minute ago cannot have drifted three steps: codes seen
/// around a login must count for nothing after it, pairs included.
#[tokio::test]
async fn codes_seen_after_the_victims_login_do_not_resynchronise_later() {
    let t = TestDemo::start();
    let mut setup = t.client();
    let secret = setup.login_and_sync("jsmith", &t.clock).await;

    // The victim logs in at step T with the code of T.
    t.clock.advance(STEP);
    let mut victim = t.client();
    assert_eq!(victim.login("jsmith", "demo").await, "totp");
    let phone = Phone::from_base32(&secret, &t.clock);
    let login = phone.step();
    let typed = victim.send_code(&secret, &t.clock).await;
    assert_eq!(typed.status, StatusCode::OK, "{}", typed.text());

    // Over the shoulder: the phone's next two codes, never typed.
    let seen = [
        phone.code_for_step(login + 1),
        phone.code_for_step(login + 2),
    ];

    // Three steps later (90 s), from another session with the password.
    t.clock.advance(3 * STEP);
    let mut surfer = t.client();
    assert_eq!(surfer.login("jsmith", "demo").await, "totp");
    let first = surfer.post_json("/2fa", json!({ "code": seen[0] })).await;
    assert_eq!(first.status, StatusCode::UNAUTHORIZED, "{}", first.text());
    t.clock.advance(STEP);
    let second = surfer.post_json("/2fa", json!({ "code": seen[1] })).await;
    assert_eq!(
        second.status,
        StatusCode::UNAUTHORIZED,
        "two codes seen after the victim's login opened a session: {}",
        second.text()
    );
    let me = surfer.get("/api/me").await;
    assert_ne!(me.status, StatusCode::OK, "{}", me.text());

    // And the victim's phone still works as before (not pushed out of
    // the window by a forged resync).
    let mut later = t.client();
    assert_eq!(later.login("jsmith", "demo").await, "totp");
    let own = later.send_code(&secret, &t.clock).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text());
}

/// The rows of the TOTP store's `users` table whose id is a password
/// counter (the demo's ` password:` key space).
fn password_counter_rows(t: &TestDemo) -> i64 {
    let conn = rusqlite::Connection::open_with_flags(
        t.db_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.query_row(
        "SELECT COUNT(*) FROM users WHERE user_id LIKE ' password:%'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// Issue 11, section 6 (the password throttle): every typed user name
/// gets a counter, known or not, and the SQLite store never deletes a
/// `users` row. So anyone, without an account, makes the store grow by one
/// permanent row per request, each holding the typed name (up to the 16 KiB
/// body): 100 requests of 1,000-character names leave 100 rows, for good.
/// Counters of names that match no user must not outlive their lockout (or
/// must share a bounded space); an unauthenticated client must not be
/// able to grow the store without bound.
#[tokio::test]
async fn unknown_user_names_do_not_grow_the_store_without_bound() {
    let t = TestDemo::start();
    let before = password_counter_rows(&t);
    for i in 0..100 {
        let name = format!("{i:04}{}", "x".repeat(996));
        let a = t
            .client()
            .post_json("/login", json!({ "username": name, "password": "guess" }))
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text());
    }
    // A day later, long after every lockout ended, and one more request.
    t.clock.advance(Duration::from_secs(24 * 3600));
    let _ = t
        .client()
        .post_json(
            "/login",
            json!({ "username": "nobody", "password": "guess" }),
        )
        .await;
    let grown = password_counter_rows(&t) - before;
    assert!(
        grown < 100,
        "{grown} permanent rows left behind by 101 requests for names that match no user"
    );
}

/// Issue 11, section 6 (names): `clean_name` strips control (`Cc`) and
/// format (`Cf`) characters, so `\n` and U+202E go, but the Unicode line
/// and paragraph separators U+2028 and U+2029 (`Zl`, `Zp`: line breaks
/// by another name, which break a log line or a list entry exactly like
/// `\n`) reach the stored name and the list. A name is one line.
#[tokio::test]
async fn authenticator_names_hold_no_line_or_paragraph_separators() {
    let t = TestDemo::start();
    let mut user = t.client();
    assert_eq!(user.login("jsmith", "demo").await, "enroll");
    for (i, raw) in ["A%E2%80%A8B", "A%E2%80%A9B"].into_iter().enumerate() {
        let page = user.get(&format!("/2fa/enroll?name={raw}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let secret = page.json()["secret"].as_str().unwrap().to_owned();
        let code = common::app_code(&secret, &t.clock);
        let done = user.post_json("/2fa/enroll", json!({ "code": code })).await;
        assert_eq!(done.status, StatusCode::OK, "{i}: {}", done.text());
    }
    let list = user.get("/2fa/authenticators").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    for a in list.json()["authenticators"].as_array().unwrap() {
        let name = a["name"].as_str().unwrap();
        assert!(
            !name.contains(['\u{2028}', '\u{2029}']),
            "stored name {name:?} holds a line or paragraph separator"
        );
    }
}

/// `GET path` sent by the victim's browser because another site's link
/// or redirect navigated it there (top-level, so `SameSite=Lax` lets the
/// session cookie through).
async fn cross_site_navigation(t: &TestDemo, cookie: &str, path: &str) -> StatusCode {
    use tower::ServiceExt as _;
    let req = http::Request::get(path)
        .header(http::header::HOST, "127.0.0.1:3000")
        .header(http::header::ACCEPT, "text/html")
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "document")
        .header(
            http::header::COOKIE,
            format!("{}={cookie}", totp_demo::SESSION_COOKIE),
        )
        .body(axum::body::Body::empty())
        .unwrap();
    t.demo.router().oneshot(req).await.unwrap().status()
}

/// Issue 11, sections 1 and 2: `GET /2fa/enroll` starts a pending
/// enrollment "when the session has none", but `?name=` makes it cancel
/// the session's own pending enrollment and start another, on a GET. A
/// link on any site (a top-level navigation carries the `SameSite=Lax`
/// cookie) so kills the secret the victim has just scanned: the victim's
/// first code is then refused, and the authenticator the victim ends up
/// with carries the attacker's name. A cross-site GET must change nothing.
#[tokio::test]
async fn a_cross_site_link_does_not_replace_the_pending_enrollment() {
    let t = TestDemo::start();
    let mut victim = t.client();
    assert_eq!(victim.login("jsmith", "demo").await, "enroll");
    let page = victim.get("/2fa/enroll").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let scanned = page.json()["secret"].as_str().unwrap().to_owned();

    let cookie = victim.cookie.clone().unwrap();
    let opened = cross_site_navigation(&t, &cookie, "/2fa/enroll?name=Call%20support").await;
    assert_eq!(opened, StatusCode::OK);

    let code = common::app_code(&scanned, &t.clock);
    let done = victim
        .post_json("/2fa/enroll", json!({ "code": code }))
        .await;
    assert_eq!(
        done.status,
        StatusCode::OK,
        "a cross-site link replaced the secret the victim scanned: {}",
        done.text()
    );
}
