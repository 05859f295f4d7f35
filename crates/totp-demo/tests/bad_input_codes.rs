//! Malformed, late and wrong codes against the demo: malformed ones are
//! refused and not charged; a wrong but well-formed code (or recovery
//! code) is a guess, charged to the account's throttle by design, and
//! [`well_formed_guesses_are_charged_exactly`] asserts the exact charge.
//!
//! In process, with a manual clock and a temporary SQLite file; the
//! harness is `tests/common/bad_input.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::bad_input::{
    Probe, Snapshot, World, assert_refusal, code_at, full_width, in_script, login, reason, send,
    world, wrong_code,
};
use http::{Method, StatusCode, header};
use serde_json::{Value, json};
use tower_totp::clock::Clock as _;
use tower_totp::throttle::ThrottleState;

/// Codes that are not codes: wrong length (in any script), letters,
/// signs, invisible characters. Refused as malformed before the
/// throttle is asked, so nothing is charged.
fn malformed_codes() -> Vec<String> {
    let mut codes: Vec<String> = [
        "",
        " ",
        "-",
        "1",
        "12345",
        "1234567",
        "12345678901",
        "1234567890123456789012345678901234567890",
        // Digits of other scripts are digits, but five of them, or with a
        // thousands separator, are not a code
        "٣٣٣٣٣",
        "१२३४५",
        "١٢٣٬٤٥٦",
        "١٢٣٤٥a",
        // Full-width, but five of them (full width is fine, the length not)
        "１２３４５",
        // Six digits, one of them a fraction
        "12345½",
        "abcdef",
        "12345a",
        "+123456",
        "-123456-x",
        "123.456",
        "1e5",
        "0x1E240",
        "123\u{200b}456",
        "123456\n",
        "123\u{0}456",
        "123456\u{301}",
        "١٢٣ ٤٥",
        "true",
        "null",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    codes.push("1".repeat(300));
    codes.push(" ".repeat(300) + "123456");
    codes.push("１".repeat(100));
    codes
}

/// Recovery codes that are not recovery codes.
fn malformed_recovery_codes() -> Vec<String> {
    let mut codes: Vec<String> = [
        "",
        "-",
        "abcd-efgh-ijk",
        "abcd-efgh-ijklm",
        "abcd-efgh-ij1!",
        "٣٣٣٣-٣٣٣٣-٣٣٣٣",
        "123456",
        "abcd\u{0}efgh-ijkl",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    codes.push("a".repeat(5000));
    codes
}

#[tokio::test]
async fn malformed_codes_are_refused_and_not_charged() {
    let w = world().await;
    let sessions = w.sessions().await;
    // The second step (pending and verified sessions), and the first code
    // of an enrollment (portal's pending one; jsmith has none).
    let targets = [
        ("/2fa", w.jsmith_pending.as_str(), "malformed"),
        ("/2fa", w.jsmith_verified.as_str(), "malformed"),
        ("/2fa/enroll", w.portal_enrolling.as_str(), "malformed"),
        (
            "/2fa/enroll",
            w.jsmith_verified.as_str(),
            "no_pending_enrollment",
        ),
    ];
    for (path, session, why) in targets {
        for code in malformed_codes() {
            let p = Probe::post(path)
                .session(session)
                .json_value(&json!({ "code": code }));
            w.refused_as(&p, StatusCode::UNAUTHORIZED, why).await;
            let form = serde_urlencoded::to_string([("code", code.as_str())]).unwrap();
            let p = Probe::post(path).session(session).form(form).browser();
            w.refused_as(&p, StatusCode::UNAUTHORIZED, why).await;
        }
        // Members of the wrong type or shape, missing, or one too many of
        // the wrong type.
        for body in [
            json!({ "code": 123_456 }),
            json!({ "code": 123_456.0 }),
            json!({ "code": ["123456"] }),
            json!({ "code": { "value": "123456" } }),
            json!({ "code": "٣٣٣٣٣٣", "extra": {} }),
            json!({ "code": "٣٣٣٣٣٣", "remember": 1 }),
            json!({}),
            json!({ "code": null }),
            json!({ "codes": "123456" }),
            json!({ "method": "recovery" }),
        ] {
            let p = Probe::post(path).session(session).json_value(&body);
            let a = w.refused_unchanged(&p).await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.text());
        }
    }
    // Recovery codes, as JSON and as the second screen's form.
    for session in [&w.jsmith_pending, &w.jsmith_verified] {
        for code in malformed_recovery_codes() {
            let p = Probe::post("/2fa")
                .session(session)
                .json_value(&json!({ "recovery_code": code }));
            w.refused_as(&p, StatusCode::UNAUTHORIZED, "malformed")
                .await;
            let form =
                serde_urlencoded::to_string([("method", "recovery"), ("code", code.as_str())])
                    .unwrap();
            let p = Probe::post("/2fa").session(session).form(form).browser();
            w.refused_as(&p, StatusCode::UNAUTHORIZED, "malformed")
                .await;
        }
        let p = Probe::post("/2fa")
            .session(session)
            .json_value(&json!({ "recovery_code": 123 }));
        w.refused_as(&p, StatusCode::BAD_REQUEST, "bad_request")
            .await;
    }
    assert_eq!(w.sessions().await, sessions, "a session moved");
}

/// A code typed in the digits of a phone set to Arabic, Persian, Hindi,
/// Bengali or Thai is the code (every Unicode decimal digit is read as its
/// value), and logs in; the same code again is a replay whatever script it
/// comes in.
#[tokio::test]
async fn codes_in_other_scripts_log_in() {
    let w = world().await;
    let t = &w.t;
    // The zero of Arabic-Indic, Extended Arabic-Indic (Persian),
    // Devanagari, Bengali and Thai digits.
    for zero in [0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50] {
        t.clock.advance(Duration::from_secs(30));
        let code = code_at(&w.secret, &t.clock, 0);
        let typed = in_script(&code, zero);
        let mut c = login(t, "jsmith", "totp").await;
        let ok = c.post_json("/2fa", json!({ "code": typed })).await;
        assert_eq!(ok.status, StatusCode::OK, "U+{zero:04X}: {}", ok.text());

        let mut again = login(t, "jsmith", "totp").await;
        let replay = again
            .post_json("/2fa", json!({ "code": full_width(&code) }))
            .await;
        assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.text());
        assert_eq!(reason(&replay), "replayed");
    }
    // Mixed scripts, with a no-break space, through the second screen's form.
    t.clock.advance(Duration::from_secs(30));
    let code = code_at(&w.secret, &t.clock, 0);
    let (arabic, devanagari) = code.split_at(3);
    let typed = format!(
        "{}\u{a0}{}",
        in_script(arabic, 0x0660),
        in_script(devanagari, 0x0966)
    );
    let mut c = login(t, "jsmith", "totp").await;
    let a = c.submit("/2fa", &[("code", typed.as_str())]).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text());
    assert!(!a.location().starts_with("/2fa"), "{}", a.location());
    let me = c.get("/api/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
}

/// One code, one login, however it is spelled: two sessions of the same
/// user wait at the second step at once, and the code of the step goes to
/// both in two spellings (ASCII, full-width, Arabic-Indic, Devanagari), in
/// every order of every pair. The first is accepted, the second is a
/// replay, and the second session stays at the second step.
#[tokio::test]
async fn one_code_in_two_scripts_logs_in_one_session() {
    let w = world().await;
    let t = &w.t;
    let spellings: [fn(&str) -> String; 4] = [
        |code| code.to_owned(),
        full_width,
        |code| in_script(code, 0x0660),
        |code| in_script(code, 0x0966),
    ];
    for (first, second) in (0..4).flat_map(|a| (0..4).filter(move |&b| b != a).map(move |b| (a, b)))
    {
        t.clock.advance(Duration::from_secs(30));
        let code = code_at(&w.secret, &t.clock, 0);
        let mut a = login(t, "jsmith", "totp").await;
        let mut b = login(t, "jsmith", "totp").await;
        let ok = a
            .post_json("/2fa", json!({ "code": spellings[first](&code) }))
            .await;
        assert_eq!(
            ok.status,
            StatusCode::OK,
            "{first} then {second}: {}",
            ok.text()
        );
        let replay = b
            .post_json("/2fa", json!({ "code": spellings[second](&code) }))
            .await;
        assert_eq!(
            (replay.status, reason(&replay)),
            (StatusCode::UNAUTHORIZED, "replayed".to_owned()),
            "{first} then {second}: {}",
            replay.text()
        );
        assert_eq!(a.get("/api/me").await.status, StatusCode::OK);
        assert_eq!(b.get("/api/me").await.status, StatusCode::UNAUTHORIZED);
    }
}

/// Time limits: the pending second step (5 minutes), the pending
/// enrollment (15 minutes) and the recent step (5 minutes).
#[tokio::test]
async fn late_steps_are_refused() {
    let w = world().await;
    let t = &w.t;
    // A pending enrollment that expired, confirmed from a fresh login.
    t.clock.advance(Duration::from_secs(10 * 60));
    let portal = login(t, "portal", "enroll").await.cookie.unwrap();
    t.clock.advance(Duration::from_secs(5 * 60 + 1));
    let p = Probe::post("/2fa/enroll")
        .session(&portal)
        .json_value(&json!({ "code": "123456" }));
    w.refused_as(&p, StatusCode::UNAUTHORIZED, "no_pending_enrollment")
        .await;

    // A pending second step over 5 minutes old: log in again. The code is
    // not looked at (nothing charged, nothing used).
    let pending = login(t, "jsmith", "totp").await.cookie.unwrap();
    let verified = {
        let mut c = login(t, "jsmith", "totp").await;
        let ok = c
            .post_json("/2fa", json!({ "code": code_at(&w.secret, &t.clock, 0) }))
            .await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
        c.cookie.unwrap()
    };
    t.clock.advance(Duration::from_secs(5 * 60 + 1));
    let code = code_at(&w.secret, &t.clock, 0);
    let p = Probe::post("/2fa")
        .session(&pending)
        .json_value(&json!({ "code": code }));
    w.refused_as(&p, StatusCode::UNAUTHORIZED, "step_expired")
        .await;
    // The pending login is forgotten.
    let p = Probe::get("/2fa").session(&pending);
    w.refused_as(&p, StatusCode::UNAUTHORIZED, "not_logged_in")
        .await;

    // Verified over 5 minutes ago: still logged in, but account changes
    // want a fresh code.
    let me = send(&w.router, &Probe::get("/api/me").session(&verified)).await;
    assert_eq!(me.status, StatusCode::OK);
    let revoke = format!("/2fa/authenticators/{}/revoke", w.authenticator);
    for (method, path) in [
        (Method::GET, "/2fa/authenticators"),
        (Method::POST, revoke.as_str()),
        (Method::POST, "/2fa/recovery-codes"),
        (Method::GET, "/2fa/enroll"),
    ] {
        let p = Probe::new(method, path).session(&verified);
        w.refused_as(&p, StatusCode::UNAUTHORIZED, "step_up_required")
            .await;
    }
    // The code nobody used logs in.
    let mut c = login(t, "jsmith", "totp").await;
    let ok = c.post_json("/2fa", json!({ "code": code })).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
}

/// The exception: a wrong but well-formed code is a guess, and each guess
/// is charged to the account's throttle, exactly once. Nothing else moves.
#[tokio::test]
async fn well_formed_guesses_are_charged_exactly() {
    let w = world().await;
    let t = &w.t;
    // A step nobody used yet: the previous one logged the verified session in.
    t.clock.advance(Duration::from_secs(30));
    let pending = w.jsmith_pending.as_str();
    let wrong = wrong_code(&w.secret, &t.clock);
    let guess = |body: Value| Probe::post("/2fa").session(pending).json_value(&body);

    async fn charged(w: &World, p: &Probe, user: &str, why: &str) {
        let expected = Snapshot::take(&w.t).await.charged(user, &w.t);
        let a = send(&w.router, p).await;
        assert_refusal(p, &a);
        assert_eq!(
            a.status,
            StatusCode::UNAUTHORIZED,
            "{}: {}",
            p.describe(),
            a.text()
        );
        if !p.wants_html() {
            assert_eq!(reason(&a), why, "{}", p.describe());
        }
        assert_eq!(Snapshot::take(&w.t).await, expected, "{}", p.describe());
    }

    // Free attempts: a wrong code, the same in full-width digits (accepted
    // as digits by design), and the code that confirmed the app (a replay).
    charged(&w, &guess(json!({ "code": wrong })), "jsmith", "invalid").await;
    let p = Probe::post("/2fa")
        .session(pending)
        .form(serde_urlencoded::to_string([("code", full_width(&wrong))]).unwrap())
        .browser();
    charged(&w, &p, "jsmith", "invalid").await;
    let replay = code_at(&w.secret, &t.clock, -1);
    charged(&w, &guess(json!({ "code": replay })), "jsmith", "replayed").await;
    // The fourth guess, a wrong recovery code, locks for 1 s.
    charged(
        &w,
        &guess(json!({ "recovery_code": "aaaa-bbbb-cccc" })),
        "jsmith",
        "invalid",
    )
    .await;
    assert_eq!(
        Snapshot::take(t).await.user("jsmith").throttle.locked_until,
        t.clock.now().saturating_add(Duration::from_secs(1))
    );
    // Locked: every guess, even the right code, is refused uncharged and
    // the right code stays unused; a malformed one is still malformed.
    let right = code_at(&w.secret, &t.clock, 0);
    for (body, status, why) in [
        (json!({ "code": wrong }), 429, "throttled"),
        (json!({ "code": right }), 429, "throttled"),
        (
            json!({ "recovery_code": w.recovery_codes[0] }),
            429,
            "throttled",
        ),
        (json!({ "code": "٣٣٣٣٣" }), 401, "malformed"),
    ] {
        let a = w
            .refused_as(&guess(body), StatusCode::from_u16(status).unwrap(), why)
            .await;
        if status == 429 {
            assert_eq!(a.headers[header::RETRY_AFTER], "1");
            assert_eq!(a.json()["retry_after"], 1);
        }
    }
    // A code far outside the window (5 steps ahead, within the maximum
    // drift) a minute after the phone's last code is charged like any
    // miss and leaves no resync candidate: no real clock moves 4 steps past
    // the window in a minute (the drift-rate rule, docs/verification.md).
    t.clock.advance(Duration::from_secs(1));
    let ahead = code_at(&w.secret, &t.clock, 5);
    let expected = Snapshot::take(t).await.charged("jsmith", t);
    let a = send(&w.router, &guess(json!({ "code": ahead }))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text());
    assert_eq!(Snapshot::take(t).await, expected);

    // The right code once the lockout ends: accepted, and the count is
    // gone (the legitimate user's login resets it).
    t.clock.advance(Duration::from_secs(2));
    let ok = send(&w.router, &guess(json!({ "code": right }))).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let after = Snapshot::take(t).await;
    assert_eq!(after.totp["jsmith"].throttle, ThrottleState::default());

    // A recovery code used twice: the first use is accepted, the second is
    // a wrong guess like any other.
    let first = login(t, "jsmith", "totp").await.cookie.unwrap();
    let a = send(
        &w.router,
        &Probe::post("/2fa")
            .session(&first)
            .json_value(&json!({ "recovery_code": w.recovery_codes[1] })),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.json()["recovery_codes_left"], 9);
    let second = login(t, "jsmith", "totp").await.cookie.unwrap();
    for (i, form) in [false, true].into_iter().enumerate() {
        let p = if form {
            Probe::post("/2fa")
                .session(&second)
                .form(
                    serde_urlencoded::to_string([
                        ("method", "recovery"),
                        ("code", w.recovery_codes[1].to_uppercase().as_str()),
                    ])
                    .unwrap(),
                )
                .browser()
        } else {
            Probe::post("/2fa")
                .session(&second)
                .json_value(&json!({ "recovery_code": w.recovery_codes[1] }))
        };
        charged(&w, &p, "jsmith", "invalid").await;
        assert_eq!(
            Snapshot::take(t).await.totp["jsmith"].recovery_codes_left,
            9
        );
        assert_eq!(
            Snapshot::take(t).await.totp["jsmith"].throttle.attempts,
            i as u32 + 1
        );
    }

    // A wrong first code of an enrollment is charged to portal; the
    // enrollment waits on.
    let portal_wrong = wrong_code(&w.portal_secret, &t.clock);
    let p = Probe::post("/2fa/enroll")
        .session(&w.portal_enrolling)
        .json_value(&json!({ "code": portal_wrong }));
    charged(&w, &p, "portal", "invalid").await;
}
