//! No secret in the logs: a whole flow through the HTTP stack (login,
//! forced enrollment, a wrong code, the right code, a recovery code, new
//! recovery codes, revoke, reset) with every `tracing` event and span
//! captured at TRACE, and every secret, typed code, recovery code, session
//! id and remember-device cookie collected on the way. None may appear in
//! the captured output, nor in the `Debug` output of the types involved.
//!
//! The capture is checked to work first: an audit event with the user id
//! is in it, and a planted value is found by the same search.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};
use tower_totp::code::{Hotp, Secret, parse_code};
use tower_totp::seal::{Keyring, SealingKey};
use tower_totp::store::{EnrollmentStore, RecoveryStore, StepStore, ThrottleStore};
use tower_totp::{Confirmation, UserKind};
use tower_totp_testkit::app::{App, Client, remember_device};
use tower_totp_testkit::phone::Phone;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

// ------------------------------------------------------------ capture

/// Everything the subscriber writes, in one buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock()).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Install the global subscriber: every level, every span event with its
/// fields, every target (ours and the dependencies'), `log` records too.
fn capture_everything() -> Capture {
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::FULL)
        .with_ansi(false)
        .with_target(true)
        .with_writer(capture.clone())
        .try_init()
        .unwrap();
    capture
}

// ------------------------------------------------------------ secrets

/// Every form of a secret value a careless log line could print.
#[derive(Default)]
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn add(&mut self, what: &str, value: impl Into<String>) {
        let value = value.into();
        assert!(
            value.len() >= 6,
            "{what}: too short to search for: {value:?}"
        );
        self.0.push((what.to_owned(), value));
    }

    /// A shared TOTP secret: base32 (upper, lower, grouped as on the page),
    /// hex and the byte array.
    fn secret(&mut self, what: &str, secret: &Secret) {
        let b32 = secret.to_base32().to_string();
        let grouped: Vec<&str> = (0..b32.len())
            .step_by(4)
            .map(|i| &b32[i..(i + 4).min(b32.len())])
            .collect();
        self.add(what, b32.clone());
        self.add(what, b32[..16].to_owned());
        self.add(what, b32.to_lowercase()[..16].to_owned());
        self.add(what, grouped[..4].join(" "));
        self.key_bytes(what, secret.as_bytes());
    }

    fn key_bytes(&mut self, what: &str, bytes: &[u8]) {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.add(what, hex.to_uppercase());
        self.add(what, hex);
        self.add(what, format!("{:?}", &bytes[..8]).trim_end_matches(']'));
    }

    fn recovery_code(&mut self, code: &str) {
        self.add("recovery code", code);
        self.add("recovery code", code.replace('-', ""));
        self.add("recovery code", code.to_uppercase());
    }

    /// A session id or remember-device cookie value.
    fn cookie(&mut self, what: &str, client: &Client) {
        let (session, remember) = (client.session.clone(), client.remember.clone());
        if let Some(id) = session {
            self.add(what, id);
        }
        if let Some(value) = remember {
            self.add("remember-device cookie", value);
        }
    }

    /// Which of the values `text` shows.
    fn shown_in(&self, text: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, v)| shows(text, v))
            .map(|(what, v)| format!("{what}: {v}"))
            .collect()
    }
}

/// Whether `text` contains `needle`; an all-digit needle (a code) counts
/// only as a whole number, so that a timestamp or step containing the same
/// six digits is not taken for it.
fn shows(text: &str, needle: &str) -> bool {
    if !needle.bytes().all(|b| b.is_ascii_digit()) {
        return text.contains(needle);
    }
    text.split(|c: char| !c.is_ascii_digit())
        .any(|number| number == needle)
}

/// The secret of a `GET /2fa/enroll` answer, recorded in every form, with
/// its otpauth URI.
fn enrollment_secret(v: &Value, secrets: &mut Secrets) {
    let secret = Secret::from_base32(v["secret"].as_str().unwrap()).unwrap();
    secrets.secret("enrollment secret", &secret);
    secrets.add("otpauth URI", v["otpauth_uri"].as_str().unwrap());
}

fn recovery_codes(v: &Value, secrets: &mut Secrets) -> Vec<String> {
    let codes: Vec<String> = v["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    for c in &codes {
        secrets.recovery_code(c);
    }
    codes
}

// ------------------------------------------------------------ the test

#[tokio::test]
async fn no_secret_code_or_session_id_reaches_the_logs_or_debug_output() {
    let capture = capture_everything();
    let remember_key = [42u8; 32];
    let app = App::setup()
        .auth(|b| b.remember_device(remember_device(Duration::from_secs(86_400))))
        .build();
    let zed = app.user("zed", UserKind::Internal, true);
    let mut s = Secrets::default();
    s.key_bytes("remember-device key", &remember_key);
    let mut c = app.client();

    // Login, forced enrollment: a wrong first code, then the right one.
    assert_eq!(c.login(&zed).await, "enroll");
    s.cookie("session id after login", &c);
    let r = c.get("/2fa/enroll").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let v = r.json();
    enrollment_secret(&v, &mut s);
    let phone = Phone::from_enroll_json(&v, &app.clock);
    let wrong = phone.wrong_code();
    s.add("wrong code", wrong.clone());
    let r = c.post_json("/2fa/enroll", json!({ "code": wrong })).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{}", r.text());
    let first = phone.code();
    s.add("confirming code", first.clone());
    let r = c.post_json("/2fa/enroll", json!({ "code": first })).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let recovery = recovery_codes(&r.json(), &mut s);
    s.cookie("session id after enrollment", &c);
    assert_eq!(c.get("/hello").await.hello_factor(), "verified");
    c.logout().await;

    // A new login: a wrong code, then the right one, remembering the device.
    app.next_step();
    assert_eq!(c.login(&zed).await, "totp");
    s.cookie("session id after second login", &c);
    let wrong = phone.wrong_code();
    s.add("wrong code", wrong.clone());
    let r = c.submit(&wrong).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{}", r.text());
    let right = phone.code_spaced();
    s.add("code", phone.code());
    s.add("code as typed", right.clone());
    let r = c
        .post_json("/2fa", json!({ "code": right, "remember": true }))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    s.cookie("session id after the code", &c);
    assert!(c.remember.is_some());
    c.logout().await;

    // A recovery code, typed by a browser in a form, then new codes.
    let mut b = app.browser();
    assert_eq!(b.login(&zed).await, "totp");
    s.cookie("browser session id", &b);
    let r = b
        .post_form("/2fa", &format!("method=recovery&code={}", recovery[3]))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text());
    s.cookie("browser session id after the recovery code", &b);
    let mut j = app.client();
    j.session = b.session.clone();
    let r = j.post_json("/2fa/recovery-codes", json!({})).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let fresh = recovery_codes(&r.json(), &mut s);
    assert_eq!(fresh.len(), 10);

    // A second authenticator through the endpoints, then revoke the first.
    let r = j.get("/2fa/enroll?name=Tablet").await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    let v = r.json();
    enrollment_secret(&v, &mut s);
    let tablet = Phone::from_enroll_json(&v, &app.clock);
    let code = tablet.code();
    s.add("tablet confirming code", code.clone());
    let r = j.post_json("/2fa/enroll", json!({ "code": code })).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
    s.cookie("session id after the second enrollment", &j);
    let list = j.get("/2fa/authenticators").await.json();
    let phone_id = list["authenticators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] != "Tablet")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = j
        .post_json(&format!("/2fa/authenticators/{phone_id}/revoke"), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text());

    // The administrator resets the user; the next login enrolls again.
    let engine = app.auth.engine().clone();
    engine.reset(&zed).await.unwrap();
    // A reset ends every login at or before it: log in after it.
    app.clock.advance(std::time::Duration::from_millis(1));
    let mut again = app.client();
    assert_eq!(again.login(&zed).await, "enroll");
    s.cookie("session id after the reset", &again);
    let r = again.get("/2fa/enroll").await;
    enrollment_secret(&r.json(), &mut s);

    // Engine-level values for the Debug checks, also recorded: a pending
    // enrollment of its own beside the one this session started.
    let enrollment = engine
        .start_enrollment(&zed, "zed", "Phone", None)
        .await
        .unwrap()
        .unwrap();
    s.secret("pending secret", enrollment.secret());
    let hotp = Hotp::new(enrollment.secret(), enrollment.params());
    let typed = hotp.code_string(enrollment.params().step_at(engine.now()));
    s.add("pending confirming code", typed.clone());
    let parsed = parse_code(&typed, 6).unwrap();
    let confirmation = engine
        .confirm_enrollment(
            &zed,
            enrollment.id(),
            &typed,
            tower_totp::ConfirmAs::FirstAuthenticator,
        )
        .await
        .unwrap();
    let Confirmation::Confirmed {
        recovery_codes: Some(codes),
        ..
    } = &confirmation
    else {
        panic!("{confirmation:?}");
    };
    for c in codes.as_strings() {
        s.recovery_code(c);
    }
    let issued = engine.issue_recovery_codes(&zed).await.unwrap();
    for c in issued.as_strings() {
        s.recovery_code(c);
    }
    let sealing_key = SealingKey::from_bytes([0x5a; 32]);
    s.key_bytes("sealing key", &[0x5a; 32]);
    let keyring = Keyring::new(9, sealing_key.clone());
    let sealed = keyring.seal(&zed, enrollment.secret()).unwrap();
    let store = &app.store;
    let authenticators = store.authenticators(&zed).await.unwrap();
    assert_eq!(authenticators.len(), 1);
    let verdict = engine.verify(&zed, &phone.code()).await.unwrap();
    let remember = remember_device(Duration::from_secs(60));

    // The capture works: the audit trail of this flow is in it, with the
    // user id, and the search finds a value planted in it.
    let canary = "canary-7f3a9c1e";
    tracing::trace!(planted = canary, "self-check");
    let logs = capture.text();
    for event in [
        "enrolled",
        "failed",
        "verified",
        "recovery_code_used",
        "recovery_codes_issued",
        "revoked",
        "reset",
    ] {
        let wanted = format!("event=\"{event}\" user.id=zed");
        assert!(
            logs.lines()
                .any(|l| l.contains("tower_totp::audit") && l.contains(&wanted)),
            "no {event} audit event captured: the capture does not work\n{logs}"
        );
    }
    let mut planted = Secrets::default();
    planted.add("canary", canary);
    assert_eq!(
        planted.shown_in(&logs).len(),
        1,
        "the search finds what is there"
    );
    assert!(logs.len() > 10_000, "only {} bytes captured", logs.len());

    // No secret in the logs.
    let leaked = s.shown_in(&logs);
    assert!(leaked.is_empty(), "in the logs: {leaked:#?}");

    // None in the Debug output of anything involved.
    let pending = store.pending(&zed, enrollment.id()).await.unwrap();
    let recovery_left = store.recovery_codes_left(&zed).await.unwrap();
    let throttle = store.throttle_state(&zed).await.unwrap();
    let _ = store
        .consume_step(&zed, &authenticators[0].id, 0, 0)
        .await
        .unwrap();
    let debug = [
        ("TwoFactor", format!("{engine:?} {engine:#?}")),
        ("TotpAuth", format!("{:?} {:#?}", app.auth, app.auth)),
        ("TotpLayer", format!("{:?}", app.auth.layer())),
        ("Endpoints", format!("{:?}", app.auth.endpoints())),
        (
            "StepUpLayer",
            format!("{:?}", app.auth.step_up(Duration::from_secs(1))),
        ),
        ("Enrollment", format!("{enrollment:?} {enrollment:#?}")),
        ("Confirmation", format!("{confirmation:?}")),
        ("RecoveryCodes", format!("{codes:?} {issued:?}")),
        (
            "Secret",
            format!("{:?} {}", enrollment.secret(), enrollment.secret()),
        ),
        ("Code", format!("{parsed:?}")),
        ("Hotp", format!("{hotp:?}")),
        ("SealingKey", format!("{sealing_key:?}")),
        ("Keyring", format!("{keyring:?}")),
        ("SealedSecret", format!("{sealed:?}")),
        (
            "Authenticator",
            format!("{authenticators:?} {authenticators:#?}"),
        ),
        ("PendingEnrollment", format!("{pending:?}")),
        ("RememberDevice", format!("{remember:?}")),
        ("Verdict", format!("{verdict:?}")),
        ("store", format!("{store:?} {store:#?}")),
        ("store values", format!("{recovery_left:?} {throttle:?}")),
    ];
    for (what, text) in &debug {
        let leaked = s.shown_in(text);
        assert!(leaked.is_empty(), "{what} Debug shows {leaked:#?}\n{text}");
    }
    // The Debug output is not empty of meaning: it names the user.
    assert!(debug[0].1.contains("zed") && debug[18].1.contains("zed"));
}
