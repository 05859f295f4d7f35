//! Password guesses are throttled per account, through HTTP with many
//! cookie jars and the demo's manual clock: 40 wrong passwords in a row are
//! no longer answered at full speed, the 429 has the library's throttled
//! shape and `Retry-After` (a page for browsers), unknown names are
//! counted the same way, a right password after the lockout works and
//! clears the counter, and password and code failures never share a
//! counter.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Answer, TestDemo, app_code};
use http::{StatusCode, header};
use serde_json::{Value, json};
use tower_totp::UserId;
use tower_totp::clock::ManualClock;

/// A wrong code for `secret` now.
fn wrong_code(secret: &str, clock: &ManualClock) -> String {
    let right: u32 = app_code(secret, clock).parse().unwrap();
    format!("{:06}", (right + 500_000) % 1_000_000)
}

fn retry_after(a: &Answer) -> Option<u64> {
    a.headers
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().parse().unwrap())
}

/// A 429 with the library's throttled problem: `Retry-After` equal to the
/// problem's `retry_after`, and the members of the library's refusal.
fn assert_throttled(a: &Answer, next: &str) -> u64 {
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.text());
    assert_eq!(a.problem(), ("throttled".into(), Some(next.into())));
    let body = a.json();
    let secs = retry_after(a).expect("a Retry-After header");
    assert!(secs >= 1);
    assert_eq!(body["retry_after"], json!(secs));
    assert_eq!(body["status"], 429);
    assert_eq!(body["type"], "urn:tower-totp:problem:throttled");
    secs
}

#[tokio::test]
async fn forty_wrong_passwords_from_many_sessions_are_not_answered_at_full_speed() {
    let demo = TestDemo::start();
    // A fresh cookie jar for every guess, as a guessing script would use.
    let (mut refused, mut throttled) = (0, 0);
    for i in 0..40 {
        let mut jar = demo.client();
        let a = jar.try_login("jsmith", &format!("guess-{i}")).await;
        match a.status {
            StatusCode::UNAUTHORIZED => {
                assert_eq!(a.problem().0, "bad_credentials");
                assert!(retry_after(&a).is_none());
                refused += 1;
            }
            StatusCode::TOO_MANY_REQUESTS => {
                assert_throttled(&a, "login");
                throttled += 1;
            }
            other => panic!("guess {i}: {other} {}", a.text()),
        }
        assert!(jar.cookie.is_none(), "no session for a refused login");
    }
    // Three free attempts and the fourth (which starts the first lockout)
    // are checked; with the clock standing still, nothing else is.
    assert_eq!((refused, throttled), (4, 36));

    // Guessing at the pace the lockouts allow: delays double.
    let mut waits = Vec::new();
    for i in 0..6 {
        let mut jar = demo.client();
        let locked = jar.try_login("jsmith", "still-wrong").await;
        let secs = assert_throttled(&locked, "login");
        waits.push(secs);
        demo.clock.advance(Duration::from_secs(secs));
        let a = jar.try_login("jsmith", &format!("paced-{i}")).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text());
    }
    assert_eq!(waits, [1, 2, 4, 8, 16, 32]);
}

#[tokio::test]
async fn the_password_429_has_the_shape_of_the_code_steps_429() {
    let demo = TestDemo::start();
    let mut c = demo.client();
    let secret = c.login_and_sync("jsmith", &demo.clock).await;
    // Wrong codes until the code step throttles.
    let mut code_429 = None;
    let mut second = demo.client();
    assert_eq!(second.login("jsmith", "demo").await, "totp");
    for _ in 0..10 {
        let a = second
            .post_json("/2fa", json!({ "code": wrong_code(&secret, &demo.clock) }))
            .await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            code_429 = Some(a);
            break;
        }
    }
    let code_429 = code_429.expect("the code step throttles");
    assert_throttled(&code_429, "totp");
    // Wrong passwords until the password throttles (its own counter).
    let mut password_429 = None;
    for _ in 0..10 {
        let a = demo.client().try_login("jsmith", "wrong").await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            password_429 = Some(a);
            break;
        }
    }
    let password_429 = password_429.expect("the password throttles");
    assert_throttled(&password_429, "login");
    let members = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    let (code, password) = (code_429.json(), password_429.json());
    assert_eq!(members(&code), members(&password));
    for member in ["type", "title", "status", "detail", "reason"] {
        assert_eq!(code[member], password[member], "{member}");
    }
    assert_eq!(
        code_429.headers.get(header::CACHE_CONTROL),
        password_429.headers.get(header::CACHE_CONTROL)
    );
}

/// What a guesser sees of an answer: status, `Retry-After`, body.
type Seen = (StatusCode, Option<u64>, Vec<u8>);

#[tokio::test]
async fn unknown_names_are_throttled_exactly_like_known_ones() {
    let demo = TestDemo::start();
    // The same guesses, interleaved, for a user who exists and two who do
    // not: the same answers, byte for byte, at every step.
    let mut answers: Vec<Vec<Seen>> = vec![Vec::new(); 3];
    for round in 0..12 {
        for (i, name) in ["jsmith", "nobody", "jsmith2"].iter().enumerate() {
            let a = demo.client().try_login(name, "wrong").await;
            answers[i].push((a.status, retry_after(&a), a.body.clone()));
        }
        if round == 8 {
            demo.clock.advance(Duration::from_secs(1));
        }
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
    assert!(
        answers[0]
            .iter()
            .any(|(s, _, _)| *s == StatusCode::TOO_MANY_REQUESTS)
    );
    // A browser gets the same for both: a 429 login page with Retry-After.
    for name in ["jsmith", "nobody"] {
        let page = demo
            .client()
            .submit("/login", &[("username", name), ("password", "wrong")])
            .await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{name}");
        assert!(page.content_type().starts_with("text/html"));
        assert!(retry_after(&page).is_some());
        assert!(page.text().contains("Too many attempts"), "{}", page.text());
        assert!(
            page.text().contains("id=\"password\""),
            "the login form again"
        );
    }
}

#[tokio::test]
async fn a_right_password_after_the_lockout_works_and_clears_the_counter() {
    let demo = TestDemo::start();
    let mut c = demo.client();
    for _ in 0..4 {
        assert_eq!(
            c.try_login("jsmith", "wrong").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // During the lockout even the right password is not checked.
    let locked = c.try_login("jsmith", "demo").await;
    let secs = assert_throttled(&locked, "login");
    assert!(c.cookie.is_none());
    demo.clock.advance(Duration::from_secs(secs));
    assert_eq!(c.login("jsmith", "demo").await, "enroll");
    // The counter is cleared: three free failures again, then a lockout.
    let mut other = demo.client();
    for _ in 0..4 {
        assert_eq!(
            other.try_login("jsmith", "wrong").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_throttled(&other.try_login("jsmith", "wrong").await, "login");
}

#[tokio::test]
async fn password_and_code_failures_never_share_a_counter() {
    let demo = TestDemo::start();
    let store = demo.demo.auth().engine().store().clone();
    let jsmith = UserId::new("jsmith");
    let mut c = demo.client();
    let secret = c.login_and_sync("jsmith", &demo.clock).await;

    // Password failures up to a lockout leave the code counter at zero...
    for _ in 0..5 {
        demo.client().try_login("jsmith", "wrong").await;
    }
    assert_eq!(store.throttle_state(&jsmith).await.unwrap().attempts, 0);
    demo.clock.advance(Duration::from_secs(31));
    let mut s = demo.client();
    assert_eq!(s.login("jsmith", "demo").await, "totp");
    // ...and the code step takes a right code at once.
    let ok = s
        .post_json("/2fa", json!({ "code": app_code(&secret, &demo.clock) }))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());

    // Code failures up to a lockout do not lock the password out.
    let mut t = demo.client();
    assert_eq!(t.login("jsmith", "demo").await, "totp");
    for _ in 0..5 {
        t.post_json("/2fa", json!({ "code": wrong_code(&secret, &demo.clock) }))
            .await;
    }
    assert!(store.throttle_state(&jsmith).await.unwrap().attempts >= 4);
    let mut u = demo.client();
    assert_eq!(u.login("jsmith", "demo").await, "totp");
}

/// The rows of the TOTP store's `users` table that are password counters
/// (the demo's ` password:` key space).
fn password_counter_rows(demo: &TestDemo) -> i64 {
    let conn = rusqlite::Connection::open_with_flags(
        demo.db_path(),
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

/// The headers of an answer, but for those that differ between any two
/// answers (none today, but a `Date` would).
fn stable_headers(a: &Answer) -> Vec<(String, Vec<u8>)> {
    let mut h: Vec<_> = a
        .headers
        .iter()
        .filter(|(k, _)| *k != header::DATE)
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    h.sort();
    h
}

/// A browser's login with a wrong password for `name`, from a new jar.
async fn wrong_password_page(demo: &TestDemo, name: &str) -> Answer {
    demo.client()
        .submit("/login", &[("username", name), ("password", "wrong")])
        .await
}

/// No user's name is longer than 64 bytes (the login's limit), so a
/// longer name gets no counter: it is refused as a wrong password, the
/// same answer as an unknown name's (byte for byte; the page echoes the
/// typed name, the only difference), however often it is tried, and it
/// leaves nothing in the store.
#[tokio::test]
async fn names_longer_than_any_user_leave_nothing_and_are_refused_like_unknown_ones() {
    let demo = TestDemo::start();
    let before = password_counter_rows(&demo);
    let long = "x".repeat(65);
    let unknown = demo.client().try_login("nobody", "wrong").await;
    for i in 0..12 {
        let a = demo.client().try_login(&long, "wrong").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{i}: {}", a.text());
        assert_eq!(a.body, unknown.body, "{i}");
        assert_eq!(stable_headers(&a), stable_headers(&unknown), "{i}");
    }
    // A browser: the same page but for the typed name it shows again.
    let long_page = wrong_password_page(&demo, &long).await;
    let unknown_page = wrong_password_page(&demo, "nobody2").await;
    assert_eq!(long_page.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        long_page.text().replace(&long, "NAME"),
        unknown_page.text().replace("nobody2", "NAME")
    );
    // Its length follows the name's; every other header is the same.
    let without_length = |a: &Answer| {
        let mut h = stable_headers(a);
        h.retain(|(k, _)| k != "content-length");
        h
    };
    assert_eq!(without_length(&long_page), without_length(&unknown_page));
    // Only the two unknown names (`nobody`, `nobody2`) have counters.
    assert_eq!(password_counter_rows(&demo) - before, 2);
}

/// Hundreds of names that match no user, each from its own cookie jar,
/// then a day later (long past every lockout and the retention) one more
/// login: the store holds O(1) password counters again, and a name locked
/// out at that moment stays locked.
#[tokio::test]
async fn a_day_after_hundreds_of_unknown_names_their_counters_are_gone() {
    let demo = TestDemo::start();
    let before = password_counter_rows(&demo);
    for i in 0..200 {
        let a = demo
            .client()
            .try_login(&format!("ghost-{i:03}"), "guess")
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text());
    }
    assert_eq!(password_counter_rows(&demo) - before, 200);

    demo.clock.advance(Duration::from_secs(24 * 3600));
    // Locked out now, from several sessions.
    for _ in 0..4 {
        let a = demo.client().try_login("portal", "wrong").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text());
    }
    let a = demo.client().try_login("ghost-new", "guess").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text());
    let left = password_counter_rows(&demo) - before;
    assert!(left <= 2, "{left} password counters left a day later");
    assert_throttled(&demo.client().try_login("portal", "demo").await, "login");
    // And the old names start afresh, exactly like any unknown name.
    let again = demo.client().try_login("ghost-000", "guess").await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
}
