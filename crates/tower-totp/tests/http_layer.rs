//! The HTTP side in process: `SessionManagerLayer`, then `TotpLayer` and
//! the `/2fa` endpoints, driven with `oneshot`/`ready().call()`, a manual
//! clock and the memory stores. Every path of the layer: the policy
//! changed live, forced enrollment, the challenge, replay, throttling,
//! store failure, session fixation, pending-step expiry, content
//! negotiation, step-up, remember-device, the recent-step endpoints,
//! re-sync, refusals and bad input.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use serde_json::json;
use tower_totp::http::{Next, Refusal, RefusalReason};
use tower_totp::policy::{PolicySettings, Requirement};
use tower_totp::{RejectReason, UserKind};
use tower_totp_testkit::app::{App, Client, Reply, remember_device};
use tower_totp_testkit::phone::Phone;

/// A problem+json refusal with this status, `reason` and `next`; the same
/// reason in the response extensions.
#[track_caller]
fn assert_problem(r: &Reply, status: StatusCode, reason: &str, next: Option<&str>) {
    assert_eq!(r.status(), status, "{}", r.text());
    assert_eq!(r.problem_reason(), reason, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], status.as_u16());
    assert_eq!(v["type"], format!("urn:tower-totp:problem:{reason}"));
    assert_eq!(v["next"].as_str(), next, "{}", r.text());
    let refusal = r.refusal().expect("a Refusal in the response extensions");
    assert_eq!(refusal.reason.slug(), reason);
    assert_eq!(refusal.next.map(Next::as_str), next);
    assert_eq!(r.header(header::CACHE_CONTROL), Some("no-store"));
}

#[track_caller]
fn assert_redirect(r: &Reply, to: &str) {
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.header(header::LOCATION), Some(to));
}

// ------------------------------------------------------------ policy

const KINDS: [UserKind; 2] = [UserKind::Internal, UserKind::External];

fn settings(bits: u8) -> PolicySettings {
    PolicySettings {
        enabled: bits & 1 != 0,
        internal_users: bits & 2 != 0,
        external_users: bits & 4 != 0,
    }
}

/// The precedence table of `src/policy.rs`, written out again.
fn expected(s: PolicySettings, kind: UserKind, require: bool, enrolled: bool) -> Requirement {
    let kind_on = match kind {
        UserKind::Internal => s.internal_users,
        UserKind::External => s.external_users,
    };
    match (s.enabled && kind_on, enrolled, require) {
        (false, _, _) => Requirement::NotRequired,
        (true, true, _) => Requirement::Challenge,
        (true, false, true) => Requirement::Enroll,
        (true, false, false) => Requirement::NotRequired,
    }
}

/// Every combination of the 8 switch settings, the user's kind, the require
/// flag and enrollment, with the policy changed between requests on
/// sessions that are already logged in: pending ones, and verified ones for
/// enrolled users.
#[tokio::test]
async fn every_policy_combination_changed_live() {
    let app = App::new();
    let policy = app.auth.policy();
    policy.set(settings(0b111));
    struct Case {
        kind: UserKind,
        require: bool,
        enrolled: bool,
        pending: Client,
        verified: Option<Client>,
    }
    let mut cases = Vec::new();
    for kind in KINDS {
        for require in [false, true] {
            for enrolled in [false, true] {
                let user = app.user(&format!("{kind:?}-{require}-{enrolled}"), kind, require);
                let mut pending = app.client();
                let mut verified = None;
                if enrolled {
                    let phone = app.enroll_directly(&user).await;
                    app.next_step();
                    let mut c = app.client();
                    c.login_verified(&user, &phone).await;
                    verified = Some(c);
                }
                pending.login(&user).await;
                cases.push(Case {
                    kind,
                    require,
                    enrolled,
                    pending,
                    verified,
                });
            }
        }
    }
    let mut checked = 0;
    // Twice round, so that every setting follows a different one.
    for bits in (0u8..8).chain((0u8..8).rev()) {
        let s = settings(bits);
        policy.set(s);
        for case in &mut cases {
            let want = expected(s, case.kind, case.require, case.enrolled);
            let what = format!(
                "{s:?} {:?} require={} enrolled={}",
                case.kind, case.require, case.enrolled
            );
            let before = app.hits();
            let r = case.pending.get("/hello").await;
            match want {
                Requirement::NotRequired => {
                    assert_eq!(r.hello_factor(), "not_required", "{what}");
                    assert_eq!(app.hits(), before + 1);
                }
                Requirement::Challenge => {
                    assert_problem(
                        &r,
                        StatusCode::UNAUTHORIZED,
                        "second_step_required",
                        Some("totp"),
                    );
                    assert_eq!(app.hits(), before, "{what}");
                }
                Requirement::Enroll => {
                    assert_problem(
                        &r,
                        StatusCode::UNAUTHORIZED,
                        "enrollment_required",
                        Some("enroll"),
                    );
                    assert_eq!(app.hits(), before, "{what}");
                }
            }
            if let Some(c) = &mut case.verified {
                let r = c.get("/hello").await;
                let factor = match want {
                    Requirement::Challenge => "verified",
                    _ => "not_required",
                };
                assert_eq!(r.hello_factor(), factor, "verified session, {what}");
            }
            // A new login under this setting answers the same `next`.
            let user = format!("{:?}-{}-{}", case.kind, case.require, case.enrolled);
            let next = app.client().login(&user.as_str().into()).await;
            let want_next = match want {
                Requirement::NotRequired => "done",
                Requirement::Challenge => "totp",
                Requirement::Enroll => "enroll",
            };
            assert_eq!(next, want_next, "login, {what}");
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * 64);
}

/// The require flag and the user's existence are read on every request.
#[tokio::test]
async fn directory_changes_are_live() {
    let app = App::new();
    let ann = app.user("ann", UserKind::Internal, false);
    let mut c = app.client();
    assert_eq!(c.login(&ann).await, "done");
    assert_eq!(c.get("/hello").await.hello_factor(), "not_required");
    app.users.set_require_2fa(&ann, true);
    let r = c.get("/hello").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "enrollment_required",
        Some("enroll"),
    );
    app.users.remove(&ann);
    let r = c.get("/hello").await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "not_logged_in", Some("login"));
    // The login is forgotten: the application's own auth decides again.
    assert_eq!(c.get("/hello").await.hello_factor(), "none");

    // Forced enrollment needs a password from the last 15 minutes: an
    // older session logs in again first.
    let ben = app.user("ben", UserKind::Internal, false);
    let mut c = app.client();
    assert_eq!(c.login(&ben).await, "done");
    app.advance(Duration::from_secs(15 * 60));
    assert_eq!(c.get("/hello").await.hello_factor(), "not_required");
    app.users.set_require_2fa(&ben, true);
    let r = c.get("/hello").await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "step_expired", Some("login"));
    assert_eq!(c.login(&ben).await, "enroll");
    let r = c.get("/hello").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "enrollment_required",
        Some("enroll"),
    );
}

// ------------------------------------------------------------ enrollment

fn decode_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1);
    grids[0].decode().unwrap().1
}

#[tokio::test]
async fn forced_enrollment_leaves_only_the_endpoints() {
    let app = App::new();
    let bob = app.user("bob", UserKind::Internal, true);
    let mut c = app.client();
    assert_eq!(c.login(&bob).await, "enroll");

    // The application is out of reach.
    for path in ["/hello", "/sensitive", "/anything/else"] {
        let r = c.get(path).await;
        assert_problem(
            &r,
            StatusCode::UNAUTHORIZED,
            "enrollment_required",
            Some("enroll"),
        );
    }
    assert_eq!(app.hits(), 0);
    let r = c.get("/2fa").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "enrollment_required",
        Some("enroll"),
    );
    // Nothing to manage yet: the recent-step endpoints stay closed.
    let r = c.get("/2fa/authenticators").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "step_up_required",
        Some("totp"),
    );

    // A browser is sent to the enrollment page.
    let mut browser = app.browser();
    browser.session = c.session.clone();
    assert_redirect(&browser.get("/hello").await, "/2fa/enroll");
    assert_redirect(&browser.get("/2fa").await, "/2fa/enroll");

    // The enrollment, as JSON.
    let r = c.get("/2fa/enroll").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.content_type(), "application/json");
    let v = r.json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 4, "{v}");
    for key in ["otpauth_uri", "secret", "qr_png", "qr_svg"] {
        assert!(v[key].is_string(), "{key} in {v}");
    }
    assert_eq!(v["qr_png"], "/2fa/enroll/qr.png");
    assert_eq!(v["qr_svg"], "/2fa/enroll/qr.svg");
    let uri = v["otpauth_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("otpauth://totp/Acme:bob?secret="), "{uri}");
    assert!(uri.contains(v["secret"].as_str().unwrap()));
    // Asking again shows the same pending enrollment.
    assert_eq!(c.get("/2fa/enroll").await.json()["secret"], v["secret"]);

    // The QR codes.
    let png = c.get("/2fa/enroll/qr.png").await;
    assert_eq!(png.status(), StatusCode::OK);
    assert_eq!(png.content_type(), "image/png");
    assert_eq!(decode_qr(&png.body), uri);
    let svg = c.get("/2fa/enroll/qr.svg").await;
    assert_eq!(svg.content_type(), "image/svg+xml");
    assert!(svg.text().contains("<svg"));

    // The page, for a browser.
    let page = browser.get("/2fa/enroll").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.content_type().starts_with("text/html"));
    let html = page.text();
    for label in [
        "Sync Authenticator App",
        "Two Factor Authorization Code",
        "Submit",
        "/2fa/enroll/qr.png",
    ] {
        assert!(html.contains(label), "{label}");
    }

    // A wrong first code, then the right one.
    let phone = Phone::from_enroll_json(&v, &app.clock);
    let r = c
        .post_json("/2fa/enroll", json!({ "code": phone.wrong_code() }))
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid", Some("enroll"));
    let r = browser
        .post_form("/2fa/enroll", &format!("code={}", phone.wrong_code()))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().contains("That code is not valid"));
    assert!(r.text().contains("Sync Authenticator App"));
    assert_eq!(r.refusal().unwrap().next, Some(Next::Enroll));
    let r = c
        .post_json("/2fa/enroll", json!({ "code": phone.code() }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let done = r.json();
    assert_eq!(done["next"], "done");
    let codes = done["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    assert!(
        codes
            .iter()
            .all(|c| c.as_str().is_some_and(|s| s.len() >= 8))
    );

    // In, verified by the enrollment.
    let r = c.get("/hello").await;
    assert_eq!(r.hello_factor(), "verified");
    assert_eq!(r.json()["second_factor"]["method"], "Enrollment");
    assert_eq!(r.json()["totp_verified"], "bob");
    // The enrollment is used up.
    let r = c
        .post_json("/2fa/enroll", json!({ "code": phone.code() }))
        .await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "no_pending_enrollment",
        Some("enroll"),
    );

    // The next login asks for a code.
    app.next_step();
    let mut again = app.client();
    assert_eq!(again.login(&bob).await, "totp");
}

/// A user to whom 2FA does not apply may enroll of their own will: within
/// 15 minutes of their password (an old session cannot add an
/// authenticator), without being logged out when it is later; and they may
/// manage the authenticator afterwards.
#[tokio::test]
async fn voluntary_enrollment() {
    let app = App::new();
    let eve = app.user("eve", UserKind::External, false);
    let mut c = app.client();
    assert_eq!(c.login(&eve).await, "done");
    app.advance(Duration::from_secs(3600));
    assert_eq!(c.get("/hello").await.hello_factor(), "not_required");
    let r = c.get("/2fa/enroll").await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "step_expired", Some("login"));
    assert_eq!(
        c.get("/hello").await.hello_factor(),
        "not_required",
        "still logged in"
    );
    assert_eq!(c.login(&eve).await, "done");
    let (phone, codes) = c.enroll(&app.clock).await;
    assert_eq!(codes.len(), 10);
    // Still in; 2FA still does not apply to external users by default.
    assert_eq!(c.get("/hello").await.hello_factor(), "not_required");
    app.advance(Duration::from_secs(3600));
    // Managing the authenticator needs a recent code, which the second
    // screen takes even though the policy does not ask for one.
    let r = c.get("/2fa/authenticators").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "step_up_required",
        Some("totp"),
    );
    let r = c.get("/2fa").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(r.next(), "totp");
    let r = c.submit(&phone.wrong_code()).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid", Some("totp"));
    let r = c.submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let r = c.get("/2fa/authenticators").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["authenticators"].as_array().unwrap().len(), 1);
}

// ------------------------------------------------------------ challenge

#[tokio::test]
async fn challenge_for_json_clients_and_browsers() {
    let app = App::new();
    let carl = app.user("carl", UserKind::Internal, false);
    let phone = app.enroll_directly(&carl).await;
    app.next_step();

    let mut c = app.client();
    assert_eq!(c.login(&carl).await, "totp");
    let r = c.get("/hello").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "second_step_required",
        Some("totp"),
    );
    let problem = r.json();
    assert_eq!(problem["title"], "Unauthorized");
    assert!(problem["detail"].as_str().unwrap().contains("code"));
    assert_eq!(app.hits(), 0);

    // The second screen as JSON.
    let r = c.get("/2fa").await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = r.json();
    assert_eq!(v["next"], "totp");
    assert_eq!(v["digits"], 6);

    // A browser is sent to the second screen and types the code with a space.
    let mut b = app.browser();
    assert_eq!(b.login(&carl).await, "totp");
    let r = b.get("/hello").await;
    assert_redirect(&r, "/2fa");
    assert_eq!(
        r.refusal(),
        Some(Refusal::new(
            RefusalReason::SecondStepRequired,
            Some(Next::Totp)
        ))
    );
    let page = b.get("/2fa").await;
    assert_eq!(page.status(), StatusCode::OK);
    let form = format!("method=totp&code={}", phone.code_spaced().replace(' ', "+"));
    let r = b.post_form("/2fa", &form).await;
    assert_redirect(&r, "/");
    let r = b.get("/hello").await;
    assert_eq!(r.hello_factor(), "verified");
    let v = r.json();
    assert_eq!(v["second_factor"]["method"], "Totp");
    assert_eq!(v["second_factor"]["verified_at"], app.now_secs());
    assert_eq!(app.hits(), 1);

    // The JSON client, with the next code typed with a space.
    app.next_step();
    let r = c.submit(&phone.code_spaced()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), json!({ "next": "done" }));
    assert_eq!(c.get("/hello").await.hello_factor(), "verified");
}

#[tokio::test]
async fn a_used_code_is_refused_after_logout_and_login() {
    let app = App::new();
    let dan = app.user("dan", UserKind::Internal, true);
    let phone = app.enroll_directly(&dan).await;
    app.next_step();
    let mut c = app.client();
    c.login_verified(&dan, &phone).await;
    let used = phone.code();
    c.logout().await;
    assert_eq!(c.get("/hello").await.hello_factor(), "none");
    assert_eq!(c.login(&dan).await, "totp");
    let r = c.submit(&used).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "replayed", Some("totp"));
    assert_eq!(
        r.refusal().unwrap().reason,
        RefusalReason::CodeRejected(RejectReason::Replayed)
    );
    // Another session cannot use it either.
    let mut other = app.client();
    other.login(&dan).await;
    let r = other.submit(&used).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "replayed", Some("totp"));
    // The next code works.
    app.next_step();
    let r = c.submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn throttling_answers_429_with_the_exact_retry_after() {
    let app = App::new();
    let fay = app.user("fay", UserKind::Internal, true);
    let phone = app.enroll_directly(&fay).await;
    app.next_step();
    let mut c = app.client();
    c.login(&fay).await;
    // Malformed input is not charged.
    for _ in 0..5 {
        let r = c.submit("12ab").await;
        assert_problem(&r, StatusCode::UNAUTHORIZED, "malformed", Some("totp"));
    }
    // Three free attempts and a fourth that starts a 1 s lockout.
    for _ in 0..4 {
        let r = c.submit(&phone.wrong_code()).await;
        assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid", Some("totp"));
        assert_eq!(r.header(header::RETRY_AFTER), None);
    }
    let r = c.submit(&phone.code()).await;
    assert_problem(&r, StatusCode::TOO_MANY_REQUESTS, "throttled", Some("totp"));
    assert_eq!(r.header(header::RETRY_AFTER), Some("1"));
    assert_eq!(r.json()["retry_after"], 1);
    assert_eq!(
        r.refusal().unwrap().reason.retry_after(),
        Some(Duration::from_secs(1))
    );
    // After the lockout, a fifth failure locks for 2 s.
    app.advance(Duration::from_secs(1));
    let r = c.submit(&phone.wrong_code()).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid", Some("totp"));
    let r = c.submit(&phone.wrong_code()).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header(header::RETRY_AFTER), Some("2"));
    // Half a second left is rounded up to one.
    app.advance(Duration::from_millis(1500));
    let r = c.submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header(header::RETRY_AFTER), Some("1"));
    // A browser sees the second screen again with the message and the header.
    let mut b = app.browser();
    b.session = c.session.clone();
    let r = b.post_form("/2fa", &format!("code={}", phone.code())).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header(header::RETRY_AFTER), Some("1"));
    assert!(r.text().contains("Too many attempts"));
    assert!(r.text().contains("Two Factor Authorization Code"));
    // Once it has passed, the right code works and clears the count.
    app.advance(Duration::from_millis(500));
    let r = c.submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn a_failing_store_gives_503_and_the_application_never_sees_the_request() {
    let app = App::new();
    let gus = app.user("gus", UserKind::Internal, true);
    let phone = app.enroll_directly(&gus).await;
    app.next_step();
    let mut verified = app.client();
    verified.login_verified(&gus, &phone).await;
    let mut pending = app.client();
    pending.login(&gus).await;
    let mut browser = app.browser();
    browser.session = verified.session.clone();
    assert_eq!(verified.get("/hello").await.hello_factor(), "verified");
    let hits = app.hits();

    app.store.set_down(true);
    for c in [&mut verified, &mut pending] {
        for path in ["/hello", "/sensitive"] {
            let r = c.get(path).await;
            assert_problem(
                &r,
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                None,
            );
        }
        for path in ["/2fa", "/2fa/enroll", "/2fa/authenticators"] {
            let r = c.get(path).await;
            assert_problem(
                &r,
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                None,
            );
        }
        let r = c.submit(&phone.code()).await;
        assert_problem(
            &r,
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            None,
        );
    }
    // Browsers get a page, not a redirect.
    let r = browser.get("/hello").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.content_type().starts_with("text/html"));
    assert_eq!(r.refusal().unwrap().reason, RefusalReason::StoreUnavailable);
    assert_eq!(app.hits(), hits, "fail closed: hello was never called");
    // The login fails too (the application decides how to answer).
    let r = app
        .client()
        .post_json("/login", json!({ "username": "gus" }))
        .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);

    app.store.set_down(false);
    assert_eq!(verified.get("/hello").await.hello_factor(), "verified");
    app.next_step();
    let r = pending.submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn the_session_id_is_cycled_after_each_step() {
    let app = App::new();
    let hal = app.user("hal", UserKind::Internal, true);
    let phone = app.enroll_directly(&hal).await;
    app.next_step();
    let mut c = app.client();
    // A session that existed before the login (an attacker may know its id).
    c.get("/hello").await;
    c.post_json("/logout", json!({})).await;
    let mut planted = app.client();
    planted
        .login(&app.user("mallory", UserKind::External, false))
        .await;
    let planted_id = planted.session.clone().unwrap();
    c.session = Some(planted_id.clone());
    assert_eq!(c.login(&hal).await, "totp");
    let after_password = c.session.clone().unwrap();
    assert_ne!(after_password, planted_id, "login cycles the id");
    assert_eq!(planted.get("/hello").await.hello_factor(), "none");

    let r = c.submit(&phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let after_code = c.session.clone().unwrap();
    assert_ne!(after_code, after_password, "the second step cycles the id");
    assert_eq!(c.get("/hello").await.hello_factor(), "verified");

    // The old id is no longer logged in.
    let mut old = app.client();
    old.session = Some(after_password);
    assert_eq!(old.get("/hello").await.hello_factor(), "none");
    let r = old.get("/2fa").await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "not_logged_in", Some("login"));
}

#[tokio::test]
async fn a_pending_second_step_expires_after_five_minutes() {
    let app = App::new();
    let ida = app.user("ida", UserKind::Internal, true);
    let phone = app.enroll_directly(&ida).await;
    let mut c = app.client();
    let mut poster = app.client();
    c.login(&ida).await;
    poster.login(&ida).await;
    app.advance(Duration::from_secs(5 * 60 - 1));
    let r = c.get("/hello").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "second_step_required",
        Some("totp"),
    );
    app.advance(Duration::from_secs(1));
    let r = c.get("/hello").await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "step_expired", Some("login"));
    // The login is forgotten.
    assert_eq!(c.get("/hello").await.hello_factor(), "none");
    let r = c.submit(&phone.code()).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "not_logged_in", Some("login"));
    // Posting a code after the time is refused the same way.
    let r = poster.submit(&phone.code()).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "step_expired", Some("login"));
    // A browser goes back to the login page.
    let mut b = app.browser();
    b.login(&ida).await;
    app.advance(Duration::from_secs(5 * 60));
    assert_redirect(&b.get("/hello").await, "/login");
    // A fresh login works.
    c.login_verified(&ida, &phone).await;
}

#[tokio::test]
async fn the_pending_time_is_configurable() {
    let app = App::setup()
        .auth(|b| b.pending_step_ttl(Duration::from_secs(60)))
        .build();
    let jo = app.user("jo", UserKind::Internal, true);
    app.enroll_directly(&jo).await;
    let mut c = app.client();
    c.login(&jo).await;
    app.advance(Duration::from_secs(60));
    let r = c.get("/hello").await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "step_expired", Some("login"));
}

// ------------------------------------------------------------ negotiation

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

// ------------------------------------------------------------ step-up

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

/// An administrator who switches 2FA off (for everyone, or for their own
/// kind of user) still has a phone: the step-up keeps asking it for a code,
/// so that a stolen or left-open session cannot first switch 2FA off and
/// then change the rest without one. Logged in before and after the switch.
#[tokio::test]
async fn step_up_still_asks_an_enrolled_user_after_2fa_is_switched_off() {
    let app = App::new();
    let policy = app.auth.policy();
    let ada = app.user("ada", UserKind::Internal, true);
    let phone = app.enroll_directly(&ada).await;
    app.next_step();
    let mut before = app.client();
    before.login_verified(&ada, &phone).await;
    for off in [settings(0b000), settings(0b101)] {
        policy.set(off);
        // A fresh code still counts.
        assert_eq!(
            before.get("/sensitive").await.hello_factor(),
            "not_required"
        );
        app.advance(Duration::from_secs(121));
        let hits = app.hits();
        let r = before.get("/sensitive").await;
        assert_problem(
            &r,
            StatusCode::UNAUTHORIZED,
            "step_up_required",
            Some("totp"),
        );
        // A password-only login made while 2FA is off is asked too.
        let mut after = app.client();
        assert_eq!(after.login(&ada).await, "done");
        assert_eq!(after.get("/hello").await.hello_factor(), "not_required");
        let r = after.get("/sensitive").await;
        assert_problem(
            &r,
            StatusCode::UNAUTHORIZED,
            "step_up_required",
            Some("totp"),
        );
        assert_eq!(app.hits(), hits + 1, "only /hello got through");
        // The second screen takes the code, and the step-up lets it pass.
        app.next_step();
        for c in [&mut before, &mut after] {
            let r = c.submit(&phone.code()).await;
            assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
            assert_eq!(c.get("/sensitive").await.hello_factor(), "not_required");
            app.next_step();
        }
        policy.set(settings(0b111));
    }
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

// ------------------------------------------------------------ remember

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

// ------------------------------------------------------------ recent step

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

// ------------------------------------------------------------ re-sync

#[tokio::test]
async fn resync_to_a_new_phone() {
    let app = App::new();
    let sam = app.user("sam", UserKind::Internal, true);
    let old_phone = app.enroll_directly(&sam).await;
    app.next_step();
    let mut c = app.client();
    c.login_verified(&sam, &old_phone).await;
    let list = c.get("/2fa/authenticators").await.json();
    let old_id = list["authenticators"][0]["id"].as_str().unwrap().to_owned();

    let r = c.get("/2fa/enroll?replace=nonexistent").await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found", None);
    let r = c
        .get(&format!("/2fa/enroll?replace={old_id}&name=New%20phone"))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let new_phone = Phone::from_enroll_json(&r.json(), &app.clock);

    // Until the new phone is confirmed, the old one still logs in.
    app.next_step();
    let mut other = app.client();
    other.login_verified(&sam, &old_phone).await;

    app.next_step();
    let r = c
        .post_json("/2fa/enroll", json!({ "code": new_phone.code() }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["next"], "done");
    assert_eq!(
        v["recovery_codes"].as_array().map(Vec::len),
        Some(0),
        "the user still has recovery codes: no new set"
    );
    // This session is still in; the other one must log in again.
    assert_eq!(c.get("/hello").await.hello_factor(), "verified");
    let r = other.get("/hello").await;
    assert_problem(
        &r,
        StatusCode::UNAUTHORIZED,
        "second_step_required",
        Some("totp"),
    );
    let list = c.get("/2fa/authenticators").await.json();
    let names: Vec<&str> = list["authenticators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["New phone"]);

    // The old phone's next code is refused, the new phone's accepted.
    app.next_step();
    let mut d = app.client();
    d.login(&sam).await;
    let r = d.submit(&old_phone.code()).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid", Some("totp"));
    let r = d.submit(&new_phone.code()).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
}

// ------------------------------------------------------------ refusals

#[tokio::test]
async fn refusals_carry_their_reason_and_can_be_replaced() {
    let app = App::setup()
        .auth(|b| {
            b.refusal_response(|refusal, html| {
                let body = format!(
                    "custom {} {} html={html}",
                    refusal.reason.slug(),
                    refusal.next.map_or("-", Next::as_str)
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

// ------------------------------------------------------------ bad input

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

/// `TotpLayer` right inside `SessionManagerLayer`, with no body boxing in
/// between: the stack a plain tower user writes first.
#[tokio::test]
async fn the_layer_sits_directly_inside_the_session_layer() {
    use tower::{ServiceBuilder, ServiceExt, service_fn};
    use tower_sessions::{MemoryStore, SessionManagerLayer};

    let app = App::new();
    let service = ServiceBuilder::new()
        .layer(SessionManagerLayer::new(MemoryStore::default()))
        .layer(app.auth.layer())
        .service(service_fn(|_req: http::Request<Full<Bytes>>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("hello"))))
        }));
    let res = service
        .oneshot(http::Request::new(Full::default()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// `TotpLayer` around the whole router, endpoints included (one service in
/// plain hyper): requests under the prefix reach the endpoints, a forced
/// enrollment completes in a browser, and the rest stays guarded.
#[tokio::test]
async fn the_layer_may_wrap_the_endpoints_too() {
    use http_body_util::BodyExt;
    use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
    use tower_sessions::{MemoryStore, SessionManagerLayer};

    let app = App::new();
    let zoe = app.user("zoe", UserKind::Internal, true);
    let endpoints = app.auth.endpoints();
    let auth = app.auth.clone();
    let router = service_fn(move |req: http::Request<Full<Bytes>>| {
        let (auth, endpoints) = (auth.clone(), endpoints.clone());
        async move {
            let path = req.uri().path().to_owned();
            if path == "/login" {
                let session = req
                    .extensions()
                    .get::<tower_sessions::Session>()
                    .unwrap()
                    .clone();
                let next = auth
                    .password_verified(&session, &"zoe".into())
                    .await
                    .unwrap();
                return Ok(Response::new(Full::new(Bytes::from(
                    next.as_next().as_str(),
                ))));
            }
            if path.starts_with("/2fa") {
                return endpoints.oneshot(req).await;
            }
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("hello"))))
        }
    });
    let mut service = ServiceBuilder::new()
        .layer(SessionManagerLayer::new(MemoryStore::default()).with_secure(false))
        .layer(app.auth.layer())
        .service(router);
    let mut cookie = String::new();
    let mut send = async |method: &str, path: &str, form: Option<String>| {
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(header::ACCEPT, "text/html")
            .header(header::COOKIE, cookie.clone());
        if form.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let req = req
            .body(Full::new(Bytes::from(form.unwrap_or_default())))
            .unwrap();
        let res = service.ready().await.unwrap().call(req).await.unwrap();
        if let Some(set) = res.headers().get(header::SET_COOKIE) {
            cookie = set.to_str().unwrap().split(';').next().unwrap().to_owned();
        }
        let status = res.status();
        let location = res
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            location,
            String::from_utf8_lossy(&body).into_owned(),
        )
    };
    let (_, _, next) = send("POST", "/login", None).await;
    assert_eq!(next, "enroll");
    let (status, location, _) = send("GET", "/hello", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/2fa/enroll"));
    let (status, _, page) = send("GET", "/2fa/enroll", None).await;
    assert_eq!(status, StatusCode::OK);
    // The manual key from the page, as a person would type it.
    let key = page
        .split("id=\"manual-key\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .replace(' ', "");
    let phone = Phone::from_base32(&key, &app.clock);
    let (status, _, page) = send(
        "POST",
        "/2fa/enroll",
        Some(format!("code={}", phone.code())),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page.matches("<li>").count(), 10, "{page}");
    let (status, _, body) = send("GET", "/hello", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hello"));
    let _ = zoe;
}
