//! Recovery codes and authenticators have one lifecycle, and an
//! administrator's reset ends it: through HTTP with several sessions.
//! - Revoking the last authenticator deletes the recovery codes; the next
//!   first sync shows a fresh set, once.
//! - `TotpAuth::reset_user` removes everything and ends every session of
//!   the user (at or before the reset), with an audit event naming the
//!   administrator and the user.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{StatusCode, header};
use serde_json::json;
use tower_totp::{UserId, UserKind};
use tower_totp_testkit::app::{App, Client};
use tower_totp_testkit::phone::Phone;

fn codes_of(r: &tower_totp_testkit::app::Reply) -> Vec<String> {
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    r.json()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

fn only_id(list: &serde_json::Value) -> String {
    let all = list["authenticators"].as_array().unwrap();
    assert_eq!(all.len(), 1, "{list}");
    all[0]["id"].as_str().unwrap().to_owned()
}

/// Add an authenticator from a session with a recent second step; the
/// recovery codes its confirmation shows.
async fn add_app(app: &App, c: &mut Client, name: &str) -> (Phone, Vec<String>) {
    let r = c.get(&format!("/2fa/enroll?name={name}")).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let phone = Phone::from_enroll_json(&r.json(), &app.clock);
    let r = c
        .post_json("/2fa/enroll", json!({ "code": phone.code() }))
        .await;
    (phone, codes_of(&r))
}

/// Log in a new session with a recovery code; its status.
async fn recovery_login(app: &App, user: &UserId, code: &str) -> StatusCode {
    let mut c = app.client();
    c.login(user).await;
    c.post_json("/2fa", json!({ "recovery_code": code }))
        .await
        .status()
}

#[tokio::test]
async fn revoking_the_last_authenticator_deletes_the_recovery_codes() {
    let app = App::new();
    let ann = app.user("ann", UserKind::Internal, true);
    let mut c = app.client();
    assert_eq!(c.login(&ann).await, "enroll");
    let (_, first_codes) = c.enroll(&app.clock).await;
    assert_eq!(first_codes.len(), 10);
    let id = only_id(&c.get("/2fa/authenticators").await.json());
    let r = c
        .post_json(&format!("/2fa/authenticators/{id}/revoke"), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(
        app.auth.engine().recovery_codes_left(&ann).await.unwrap(),
        0
    );

    // The next first sync shows a fresh set; the old codes are dead.
    app.next_step();
    let (_, fresh) = add_app(&app, &mut c, "New").await;
    assert_eq!(fresh.len(), 10, "a first sync always shows a set");
    assert!(fresh.iter().all(|f| !first_codes.contains(f)));
    app.next_step();
    assert_eq!(
        recovery_login(&app, &ann, &first_codes[0]).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(recovery_login(&app, &ann, &fresh[0]).await, StatusCode::OK);
}

#[tokio::test]
async fn revoking_one_of_two_keeps_the_recovery_codes() {
    let app = App::new();
    let ann = app.user("ann", UserKind::Internal, true);
    let mut c = app.client();
    c.login(&ann).await;
    let (_, codes) = c.enroll(&app.clock).await;
    let (_, none) = add_app(&app, &mut c, "Tablet").await;
    assert!(
        none.is_empty(),
        "a second authenticator keeps the user's codes"
    );
    let list = c.get("/2fa/authenticators").await.json();
    let tablet = list["authenticators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Tablet")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = c.delete(&format!("/2fa/authenticators/{tablet}")).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    assert_eq!(
        app.auth.engine().recovery_codes_left(&ann).await.unwrap(),
        10
    );
    app.next_step();
    assert_eq!(recovery_login(&app, &ann, &codes[1]).await, StatusCode::OK);
}

/// Codes used up while enrolled: the next activation issues a new set
/// (the store's rule "no codes left"), and shows it.
#[tokio::test]
async fn an_activation_with_no_codes_left_shows_a_new_set() {
    let app = App::setup()
        .config(|c| c.with_recovery_codes(1).unwrap())
        .build();
    let ann = app.user("ann", UserKind::Internal, true);
    let mut c = app.client();
    c.login(&ann).await;
    let (_, codes) = c.enroll(&app.clock).await;
    app.next_step();
    let mut r = app.client();
    r.login(&ann).await;
    let reply = r
        .post_json("/2fa", json!({ "recovery_code": codes[0] }))
        .await;
    assert_eq!(reply.json()["recovery_codes_left"], 0);
    let (_, fresh) = add_app(&app, &mut r, "Replacement").await;
    assert_eq!(fresh.len(), 1);
    assert_ne!(fresh, codes);
}

// ------------------------------------------------------------ admin reset

/// Everything the thread's subscriber writes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The audit lines with `event`.
    fn events(&self, event: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| {
                l.contains("tower_totp::audit") && l.contains(&format!("event=\"{event}\""))
            })
            .map(str::to_owned)
            .collect()
    }
}

/// Capture this thread's events (the tests run on one thread each).
fn capture() -> (Capture, tracing::subscriber::DefaultGuard) {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    (capture, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn an_admin_reset_ends_every_session_of_the_user() {
    let (logs, _guard) = capture();
    let app = App::new();
    let ann = app.user("ann", UserKind::Internal, true);
    let bob = app.user("bob", UserKind::Internal, true);
    let root = UserId::new("root");
    let mut verified = app.client();
    verified.login(&ann).await;
    let (phone, _) = verified.enroll(&app.clock).await;
    // Another session with a pending enrollment of its own (after a step).
    add_app(&app, &mut verified, "Tablet").await;
    let r = verified.get("/2fa/enroll?name=Third").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    app.next_step();
    let mut pending = app.client();
    assert_eq!(pending.login(&ann).await, "totp");
    let mut browser = app.browser();
    browser.login(&ann).await;
    let mut bobs = app.client();
    bobs.login(&bob).await;
    let (bob_phone, _) = bobs.enroll(&app.clock).await;
    assert_eq!(verified.get("/hello").await.hello_factor(), "verified");

    app.auth.reset_user(&root, &ann).await.unwrap();

    // Every session of ann: logged out, the usual login-required refusal.
    let r = verified.get("/hello").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(r.problem_reason(), "not_logged_in");
    assert_eq!(r.next(), "login");
    // Our state is gone: the next request is not logged in at all.
    assert_eq!(verified.get("/hello").await.hello_factor(), "none");
    let r = pending
        .post_json("/2fa", json!({ "code": phone.code() }))
        .await;
    assert_eq!(r.problem_reason(), "not_logged_in");
    let r = pending.get("/2fa/enroll").await;
    assert_eq!(r.problem_reason(), "not_logged_in");
    let r = browser.get("/hello").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.header(header::LOCATION), Some("/login"));
    // Bob is untouched.
    assert_eq!(bobs.get("/hello").await.hello_factor(), "verified");
    let engine = app.auth.engine();
    assert!(engine.authenticators(&ann).await.unwrap().is_empty());
    assert_eq!(engine.recovery_codes_left(&ann).await.unwrap(), 0);
    assert_eq!(engine.authenticators(&bob).await.unwrap().len(), 1);
    app.next_step();
    assert!(
        engine
            .verify(&bob, &bob_phone.code())
            .await
            .unwrap()
            .is_accepted()
    );

    // The audit event names both, and holds no secret.
    let events = logs.events("admin_reset");
    assert_eq!(events.len(), 1, "{}", logs.text());
    assert!(events[0].contains("admin.id=root"), "{}", events[0]);
    assert!(events[0].contains("user.id=ann"), "{}", events[0]);

    // A login after the reset enrols again, with a fresh set of codes.
    app.advance(Duration::from_millis(1));
    let mut again = app.client();
    assert_eq!(again.login(&ann).await, "enroll");
    let (_, codes) = again.enroll(&app.clock).await;
    assert_eq!(codes.len(), 10);
    assert_eq!(again.get("/hello").await.hello_factor(), "verified");
}

/// "At or before": a login in the same millisecond as the reset is ended
/// too. Users to whom 2FA does not apply lose their sessions as well.
#[tokio::test]
async fn a_reset_ends_logins_at_its_instant_and_of_users_without_2fa() {
    let app = App::new();
    let ext = app.user("ext", UserKind::External, false);
    let mut c = app.client();
    assert_eq!(c.login(&ext).await, "done");
    assert_eq!(c.get("/hello").await.hello_factor(), "not_required");
    app.auth
        .reset_user(&UserId::new("root"), &ext)
        .await
        .unwrap();
    let r = c.get("/hello").await;
    assert_eq!(r.problem_reason(), "not_logged_in");
    // Same instant as the reset: ended as well.
    let mut same = app.client();
    same.login(&ext).await;
    assert_eq!(same.get("/hello").await.problem_reason(), "not_logged_in");
    app.advance(Duration::from_millis(1));
    let mut later = app.client();
    later.login(&ext).await;
    assert_eq!(later.get("/hello").await.hello_factor(), "not_required");
}

/// A failing store: the reset is an error, and nothing is ended.
#[tokio::test]
async fn a_reset_with_a_failing_store_is_an_error() {
    let app = App::new();
    let ann = app.user("ann", UserKind::Internal, true);
    let phone = app.enroll_directly(&ann).await;
    app.next_step();
    let mut c = app.client();
    c.login_verified(&ann, &phone).await;
    app.store.set_down(true);
    assert!(
        app.auth
            .reset_user(&UserId::new("root"), &ann)
            .await
            .is_err()
    );
    app.store.set_down(false);
    assert_eq!(c.get("/hello").await.hello_factor(), "verified");
}

// ------------------------------------------------------------ audit

/// Each start and each refusal of an enrollment is an audit event, with
/// the user and never the secret.
#[tokio::test]
async fn enrollment_starts_and_refusals_are_audited() {
    let (logs, _guard) = capture();
    let app = App::new();
    let ann = app.user("ann", UserKind::Internal, true);
    let (mut a, mut b) = (app.client(), app.client());
    a.login(&ann).await;
    b.login(&ann).await;
    let r = a.get("/2fa/enroll").await;
    let secret = r.json()["secret"].as_str().unwrap().to_owned();
    let phone = Phone::from_enroll_json(&r.json(), &app.clock);
    b.get("/2fa/enroll").await;
    // B has no pending enrollment of its own after a logout and login.
    b.logout().await;
    b.login(&ann).await;
    b.post_json("/2fa/enroll", json!({ "code": phone.code() }))
        .await;
    a.post_json("/2fa/enroll", json!({ "code": phone.code() }))
        .await;
    b.get("/2fa/enroll").await;
    let started = logs.events("enrollment_started");
    let refused = logs.events("enrollment_refused");
    assert_eq!(started.len(), 2, "{}", logs.text());
    assert_eq!(refused.len(), 2, "{}", logs.text());
    assert!(refused[0].contains("no pending enrollment in this session"));
    assert!(refused[1].contains("second step"));
    for line in started.iter().chain(&refused) {
        assert!(line.contains("user.id=ann"), "{line}");
    }
    let text = logs.text();
    assert!(!text.contains(&secret), "the secret is in the logs");
    assert!(!text.contains(&secret.to_lowercase()));
}
