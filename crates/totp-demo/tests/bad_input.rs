//! Bad input against every route of the demo, in process with a manual
//! clock and a temporary SQLite file.
//!
//! Every bad request must be refused with a 4xx and a problem+json body (a
//! readable page, or a redirect to the step the browser should take, for
//! browser requests): never a 500, never a panic, never a new session. And
//! the stored state afterwards must be exactly what it was: each user's
//! authenticators with their sync state, pending enrollment, epoch,
//! throttle state and recovery codes left (read through the TOTP store),
//! and the demo's user and settings rows (read from the SQLite file).
//!
//! The one exception is by design: a wrong but well-formed code (or
//! recovery code) is a guess, and guesses are charged to the account's
//! throttle. Those are in [`well_formed_guesses_are_charged_exactly`],
//! which asserts the exact charge.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use common::{Answer, Client, TestDemo};
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use totp_demo::{BODY_LIMIT, SESSION_COOKIE};
use tower::ServiceExt as _;
use tower_totp::UserId;
use tower_totp::clock::{Clock as _, ManualClock};
use tower_totp::store::{Authenticator, PendingEnrollment, UserStatus};
use tower_totp::throttle::{ThrottlePolicy, ThrottleState};
use tower_totp_testkit::phone::Phone;

const USERS: [&str; 3] = ["admin", "jsmith", "portal"];
const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

// ---------------------------------------------------------------------------
// Stored state

/// One user's TOTP state, as the store holds it.
#[derive(Debug, Clone, PartialEq)]
struct TotpState {
    status: UserStatus,
    authenticators: Vec<Authenticator>,
    /// Every pending enrollment of the user (one per session that started
    /// one), by id.
    pending: Vec<PendingEnrollment>,
    throttle: ThrottleState,
    recovery_codes_left: usize,
}

/// Everything a request could change.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    /// `demo_users` rows: name, display name, kind, admin, require 2FA,
    /// password hash.
    users: Vec<(String, String, String, i64, i64, String)>,
    /// The `demo_settings` row.
    settings: (i64, i64, i64),
    totp: BTreeMap<&'static str, TotpState>,
}

impl Snapshot {
    async fn take(t: &TestDemo) -> Self {
        let conn = rusqlite::Connection::open_with_flags(
            t.db_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT username, display_name, kind, is_admin, require_2fa, password_hash \
                 FROM demo_users ORDER BY username",
            )
            .unwrap();
        let users = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let settings = conn
            .query_row(
                "SELECT enabled, internal_users, external_users FROM demo_settings",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        let store = t.demo.auth().engine().store();
        let mut totp = BTreeMap::new();
        for name in USERS {
            let user = UserId::new(name);
            // The store finds pending enrollments by id (each session knows
            // its own); the ids are read off the file.
            let ids: Vec<String> = conn
                .prepare("SELECT id FROM pending_enrollments WHERE user_id = ?1 ORDER BY id")
                .unwrap()
                .query_map([name], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let mut pending = Vec::new();
            for id in ids {
                let id = tower_totp::store::AuthenticatorId::new(id);
                pending.extend(store.pending(&user, &id).await.unwrap());
            }
            totp.insert(
                name,
                TotpState {
                    status: store.status(&user).await.unwrap(),
                    authenticators: store.authenticators(&user).await.unwrap(),
                    pending,
                    throttle: store.throttle_state(&user).await.unwrap(),
                    recovery_codes_left: store.recovery_codes_left(&user).await.unwrap(),
                },
            );
        }
        Self {
            users,
            settings,
            totp,
        }
    }

    fn user(&mut self, name: &str) -> &mut TotpState {
        self.totp.get_mut(name).unwrap()
    }

    /// This snapshot with one guess charged to `name` at `t`'s time.
    fn charged(mut self, name: &str, t: &TestDemo) -> Self {
        let policy = ThrottlePolicy::default();
        let throttle = &mut self.user(name).throttle;
        throttle.attempts += 1;
        throttle.locked_until = t
            .clock
            .now()
            .saturating_add(policy.delay_after(throttle.attempts));
        self
    }
}

// ---------------------------------------------------------------------------
// Requests

/// One request, with full control over headers and bytes.
#[derive(Clone, Debug)]
struct Probe {
    method: Method,
    path: String,
    content_type: Option<HeaderValue>,
    browser: bool,
    body: Vec<u8>,
    cookie: Option<HeaderValue>,
    content_length: bool,
}

impl Probe {
    fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            content_type: None,
            browser: false,
            body: Vec::new(),
            cookie: None,
            content_length: false,
        }
    }

    fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    fn post(path: impl Into<String>) -> Self {
        Self::new(Method::POST, path)
    }

    fn typed(mut self, content_type: &[u8], body: impl Into<Vec<u8>>) -> Self {
        self.content_type = Some(HeaderValue::from_bytes(content_type).unwrap());
        self.body = body.into();
        self
    }

    fn json(self, body: impl Into<Vec<u8>>) -> Self {
        self.typed(JSON.as_bytes(), body)
    }

    fn json_value(self, value: &Value) -> Self {
        self.json(value.to_string())
    }

    fn form(self, body: impl Into<Vec<u8>>) -> Self {
        self.typed(FORM.as_bytes(), body)
    }

    fn browser(mut self) -> Self {
        self.browser = true;
        self
    }

    fn session(self, id: &str) -> Self {
        self.raw_cookie(format!("{SESSION_COOKIE}={id}").as_bytes())
    }

    fn raw_cookie(mut self, value: &[u8]) -> Self {
        self.cookie = Some(HeaderValue::from_bytes(value).unwrap());
        self
    }

    fn with_content_length(mut self) -> Self {
        self.content_length = true;
        self
    }

    /// Whether the demo should answer with pages (the rule of the layer
    /// and the demo: accepts HTML and did not send JSON).
    fn wants_html(&self) -> bool {
        let json = self
            .content_type
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .is_some_and(|t| t == JSON || t.ends_with("+json"));
        self.browser && !json
    }

    fn describe(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let body: String = body.chars().take(60).collect();
        format!(
            "{} {} [{}{}] ct={:?} cookie={:?} body({} bytes)={body:?}",
            self.method,
            self.path,
            if self.browser { "browser" } else { "script" },
            if self.content_length {
                ", content-length"
            } else {
                ""
            },
            self.content_type,
            self.cookie
                .as_ref()
                .map(|c| String::from_utf8_lossy(c.as_bytes())
                    .chars()
                    .take(40)
                    .collect::<String>()),
            self.body.len(),
        )
    }
}

async fn send(router: &Router, p: &Probe) -> Answer {
    let accept = if p.browser {
        "text/html,application/xhtml+xml"
    } else {
        "application/json"
    };
    let mut req = Request::builder()
        .method(p.method.clone())
        .uri(&p.path)
        .header(header::ACCEPT, accept);
    if let Some(ct) = &p.content_type {
        req = req.header(header::CONTENT_TYPE, ct.clone());
    }
    if let Some(cookie) = &p.cookie {
        req = req.header(header::COOKIE, cookie.clone());
    }
    if p.content_length {
        req = req.header(header::CONTENT_LENGTH, p.body.len());
    }
    let res = router
        .clone()
        .oneshot(req.body(Body::from(p.body.clone())).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

/// The session cookie values an answer sets (an empty value removes it).
fn set_session_cookies(a: &Answer) -> Vec<String> {
    a.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix(&format!("{SESSION_COOKIE}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .collect()
}

/// The session id a probe carries, if its cookie header holds one.
fn sent_session(p: &Probe) -> Option<String> {
    let cookie = p.cookie.as_ref()?.to_str().ok()?;
    cookie
        .split(';')
        .filter_map(|c| c.trim().strip_prefix(&format!("{SESSION_COOKIE}=")))
        .map(str::to_owned)
        .next()
}

/// The checks every refusal passes: a 4xx with a problem+json body, or for
/// browsers a readable page or a redirect to the login, the second screen
/// or the enrollment page; and no session set up or moved to a new id (the
/// session sent may be saved again under its own id, or removed).
fn assert_refusal(p: &Probe, a: &Answer) {
    let what = p.describe();
    assert!(
        !a.status.is_server_error(),
        "{what}: server error {}: {}",
        a.status,
        a.text()
    );
    for value in set_session_cookies(a) {
        assert!(
            value.is_empty() || Some(&value) == sent_session(p).as_ref(),
            "{what}: sets a session cookie: {:?}",
            a.headers
        );
    }
    if p.wants_html() && a.status == StatusCode::SEE_OTHER {
        assert!(
            ["/login", "/2fa", "/2fa/enroll"].contains(&a.location()),
            "{what}: redirect to {:?}",
            a.location()
        );
        return;
    }
    assert!(
        a.status.is_client_error(),
        "{what}: {} is not a 4xx: {}",
        a.status,
        a.text()
    );
    if p.wants_html() {
        assert!(
            a.content_type().starts_with("text/html"),
            "{what}: a page, not {:?}: {}",
            a.content_type(),
            a.text()
        );
        assert!(
            a.text().contains("<h1>"),
            "{what}: not readable: {}",
            a.text()
        );
        return;
    }
    assert_eq!(
        a.content_type(),
        "application/problem+json",
        "{what}: {}",
        a.text()
    );
    let problem = a.json();
    assert_eq!(problem["status"], a.status.as_u16(), "{what}: {problem}");
    for member in ["type", "title", "detail", "reason"] {
        assert!(
            problem[member].as_str().is_some_and(|s| !s.is_empty()),
            "{what}: no {member}: {problem}"
        );
    }
}

/// The `reason` of a problem+json answer.
fn reason(a: &Answer) -> String {
    a.json()["reason"].as_str().unwrap_or_default().to_owned()
}

// ---------------------------------------------------------------------------
// The world the bad requests are sent into

/// The code an app shows for `secret`, `steps` steps from now.
fn code_at(secret: &str, clock: &ManualClock, steps: i64) -> String {
    Phone::from_base32(secret, clock).code_at_offset(steps)
}

/// A six-digit code that no step within the maximum drift (±10) of now
/// shows: wrong, well-formed, and not a resync candidate.
fn wrong_code(secret: &str, clock: &ManualClock) -> String {
    let near: Vec<String> = (-12..=12).map(|s| code_at(secret, clock, s)).collect();
    (0..)
        .map(|n: u32| format!("{:06}", (123_456 + n * 7_919) % 1_000_000))
        .find(|c| !near.contains(c))
        .unwrap()
}

fn full_width(code: &str) -> String {
    code.chars()
        .map(|c| char::from_u32(0xFF10 + c.to_digit(10).unwrap()).unwrap())
        .collect()
}

struct World {
    t: TestDemo,
    router: Router,
    /// jsmith's app.
    secret: String,
    recovery_codes: Vec<String>,
    authenticator: String,
    /// portal's pending enrollment.
    portal_secret: String,
    /// Session ids.
    admin: String,
    jsmith_pending: String,
    jsmith_verified: String,
    portal_enrolling: String,
}

async fn login(t: &TestDemo, user: &str, next: &str) -> Client {
    let mut c = t.client();
    assert_eq!(c.login(user, "demo").await, next, "{user}");
    c
}

/// jsmith has synced an app (30 s ago) and has recovery codes; TFA for
/// external users is on, so portal (required) must sync one and has
/// started to; sessions: admin logged in, jsmith waiting for the second
/// step, jsmith verified a moment ago, portal enrolling.
async fn world() -> World {
    let t = TestDemo::start();
    // The admin syncs an app at the first login, like jsmith.
    let mut admin = t.client();
    admin.login_and_sync("admin", &t.clock).await;
    let a = admin
        .put_json("/admin/settings", json!({ "external_users": true }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());

    let mut enrolling = login(&t, "jsmith", "enroll").await;
    let page = enrolling.get("/2fa/enroll").await;
    let secret = page.json()["secret"].as_str().unwrap().to_owned();
    let done = enrolling
        .post_json(
            "/2fa/enroll",
            json!({ "code": code_at(&secret, &t.clock, 0) }),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    let recovery_codes: Vec<String> = done.json()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let list = enrolling.get("/2fa/authenticators").await;
    let authenticator = list.json()["authenticators"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    t.clock.advance(Duration::from_secs(30));
    let mut verified = login(&t, "jsmith", "totp").await;
    let ok = verified
        .post_json("/2fa", json!({ "code": code_at(&secret, &t.clock, 0) }))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let pending = login(&t, "jsmith", "totp").await;

    let mut portal = login(&t, "portal", "enroll").await;
    let page = portal.get("/2fa/enroll").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let portal_secret = page.json()["secret"].as_str().unwrap().to_owned();

    World {
        router: t.demo.router(),
        secret,
        recovery_codes,
        authenticator,
        portal_secret,
        admin: admin.cookie.unwrap(),
        jsmith_pending: pending.cookie.unwrap(),
        jsmith_verified: verified.cookie.unwrap(),
        portal_enrolling: portal.cookie.unwrap(),
        t,
    }
}

impl World {
    /// Send `p`, which must be refused and change nothing; the answer.
    async fn refused_unchanged(&self, p: &Probe) -> Answer {
        let before = Snapshot::take(&self.t).await;
        let a = send(&self.router, p).await;
        assert_refusal(p, &a);
        assert_eq!(
            Snapshot::take(&self.t).await,
            before,
            "{}: the stored state changed",
            p.describe()
        );
        a
    }

    /// Like [`World::refused_unchanged`], with the exact status and, for
    /// scripts, the problem's `reason` (browsers may be redirected
    /// instead, [`assert_refusal`] checks where to).
    async fn refused_as(&self, p: &Probe, status: StatusCode, why: &str) -> Answer {
        let a = self.refused_unchanged(p).await;
        if p.wants_html() && a.status == StatusCode::SEE_OTHER {
            return a;
        }
        assert_eq!(a.status, status, "{}: {}", p.describe(), a.text());
        if !p.wants_html() {
            assert_eq!(reason(&a), why, "{}", p.describe());
        }
        a
    }

    /// What each session sees at `/api/me` (status and body): bad requests
    /// must leave every session where it was.
    async fn sessions(&self) -> Vec<(StatusCode, Vec<u8>)> {
        let mut out = Vec::new();
        for id in [
            &self.admin,
            &self.jsmith_pending,
            &self.jsmith_verified,
            &self.portal_enrolling,
        ] {
            let a = send(&self.router, &Probe::get("/api/me").session(id)).await;
            assert!(set_session_cookies(&a).is_empty());
            out.push((a.status, a.body));
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Bodies

/// A bad body: its name, content type, bytes, and the status it must get.
type BadBody = (
    &'static str,
    Option<&'static [u8]>,
    Vec<u8>,
    Option<StatusCode>,
);

/// Bodies that are bad for every route that reads one, with the status
/// they must get (`None`: some 4xx; the demo's own routes and the
/// library's endpoints word some of these differently).
fn bad_bodies() -> Vec<BadBody> {
    let over = BODY_LIMIT + 1;
    let mut huge_json = vec![b' '; over];
    huge_json.extend_from_slice(b"{}");
    let mut huge_form = b"code=".to_vec();
    huge_form.resize(over + 5, b'1');
    let deep = format!("{}{}", "[".repeat(4000), "]".repeat(4000));
    let deep_object = format!("{}1{}", "{\"a\":".repeat(2000), "}".repeat(2000));
    vec![
        ("empty, no type", None, Vec::new(), None),
        ("text, no type", None, b"code=123456".to_vec(), None),
        (
            "text/plain",
            Some(b"text/plain"),
            b"123456".to_vec(),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ),
        (
            "xml",
            Some(b"application/xml"),
            b"<code>123456</code>".to_vec(),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ),
        (
            "multipart",
            Some(b"multipart/form-data; boundary=x"),
            b"--x\r\nContent-Disposition: form-data; name=\"code\"\r\n\r\n123456\r\n--x--\r\n"
                .to_vec(),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ),
        (
            "content type not UTF-8",
            Some(b"application/json\xff"),
            b"{}".to_vec(),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ),
        (
            "empty JSON",
            Some(JSON.as_bytes()),
            Vec::new(),
            Some(StatusCode::BAD_REQUEST),
        ),
        (
            "truncated JSON",
            Some(JSON.as_bytes()),
            b"{\"code".to_vec(),
            Some(StatusCode::BAD_REQUEST),
        ),
        (
            "JSON not UTF-8",
            Some(JSON.as_bytes()),
            b"{\"code\":\"\xff\xfe\"}".to_vec(),
            Some(StatusCode::BAD_REQUEST),
        ),
        (
            "JSON with a NUL outside strings",
            Some(JSON.as_bytes()),
            b"{\0}".to_vec(),
            Some(StatusCode::BAD_REQUEST),
        ),
        (
            "JSON array",
            Some(JSON.as_bytes()),
            b"[\"123456\"]".to_vec(),
            None,
        ),
        (
            "JSON number",
            Some(JSON.as_bytes()),
            b"123456".to_vec(),
            None,
        ),
        (
            "JSON string",
            Some(JSON.as_bytes()),
            b"\"123456\"".to_vec(),
            None,
        ),
        ("JSON null", Some(JSON.as_bytes()), b"null".to_vec(), None),
        ("JSON true", Some(JSON.as_bytes()), b"true".to_vec(), None),
        (
            "JSON nested 4000 deep",
            Some(JSON.as_bytes()),
            deep.into_bytes(),
            None,
        ),
        (
            "JSON objects nested 2000 deep",
            Some(JSON.as_bytes()),
            deep_object.into_bytes(),
            None,
        ),
        (
            "form not UTF-8",
            Some(FORM.as_bytes()),
            b"code=\xff\xfe".to_vec(),
            None,
        ),
        (
            "huge JSON",
            Some(JSON.as_bytes()),
            huge_json,
            Some(StatusCode::PAYLOAD_TOO_LARGE),
        ),
        (
            "huge form",
            Some(FORM.as_bytes()),
            huge_form,
            Some(StatusCode::PAYLOAD_TOO_LARGE),
        ),
    ]
}

/// The routes that read a body, each from a session that reaches the code
/// reading it.
fn body_routes(w: &World) -> Vec<(Method, String, &str)> {
    vec![
        (Method::POST, "/login".into(), ""),
        (Method::POST, "/login".into(), w.jsmith_pending.as_str()),
        (Method::POST, "/2fa".into(), w.jsmith_pending.as_str()),
        (Method::POST, "/2fa".into(), w.jsmith_verified.as_str()),
        (
            Method::POST,
            "/2fa/enroll".into(),
            w.portal_enrolling.as_str(),
        ),
        (
            Method::POST,
            "/2fa/enroll".into(),
            w.jsmith_verified.as_str(),
        ),
        (Method::PUT, "/admin/settings".into(), w.admin.as_str()),
        (Method::POST, "/admin/settings".into(), w.admin.as_str()),
        (Method::PUT, "/admin/users/jsmith".into(), w.admin.as_str()),
        (Method::POST, "/admin/users/jsmith".into(), w.admin.as_str()),
    ]
}

fn probe(method: &Method, path: &str, session: &str) -> Probe {
    let p = Probe::new(method.clone(), path);
    if session.is_empty() {
        p
    } else {
        p.session(session)
    }
}

#[tokio::test]
async fn bad_bodies_on_every_route_change_nothing() {
    let w = world().await;
    let sessions = w.sessions().await;
    for (method, path, session) in body_routes(&w) {
        for (name, content_type, body, status) in bad_bodies() {
            for browser in [false, true] {
                let mut p = probe(&method, &path, session);
                p.body = body.clone();
                p.content_type = content_type.map(|ct| HeaderValue::from_bytes(ct).unwrap());
                if browser {
                    p = p.browser();
                }
                let a = w.refused_unchanged(&p).await;
                if let Some(status) = status {
                    assert_eq!(a.status, status, "{name}: {}: {}", p.describe(), a.text());
                }
            }
        }
        // Over the limit by its Content-Length: refused before any handler.
        let mut p = probe(&method, &path, session).json(vec![b' '; BODY_LIMIT + 1]);
        p = p.with_content_length();
        w.refused_as(&p, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            .await;
        let a = w.refused_unchanged(&p.clone().browser()).await;
        assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    }
    assert_eq!(w.sessions().await, sessions, "a session moved");
}

#[tokio::test]
async fn the_login_refuses_bodies_of_the_wrong_shape() {
    let w = world().await;
    let json_cases = [
        (json!({ "username": 1, "password": 2 }), 422, "invalid_body"),
        (
            json!({ "username": "jsmith", "password": 123 }),
            422,
            "invalid_body",
        ),
        (
            json!({ "username": ["jsmith"], "password": "demo" }),
            422,
            "invalid_body",
        ),
        (
            json!({ "username": { "name": "jsmith" }, "password": "demo" }),
            422,
            "invalid_body",
        ),
        (
            json!({ "username": "jsmith", "password": null }),
            422,
            "invalid_body",
        ),
        (json!({ "username": "jsmith" }), 422, "invalid_body"),
        (json!({ "password": "demo" }), 422, "invalid_body"),
        (json!({}), 422, "invalid_body"),
        // The right password with a member too many: still refused, no login.
        (
            json!({ "username": "jsmith", "password": "demo", "admin": true }),
            422,
            "invalid_body",
        ),
        (
            json!({ "username": "jsmith", "password": "demo", "code": "123456" }),
            422,
            "invalid_body",
        ),
        (
            json!({ "username": "jsmith\u{0}", "password": "demo" }),
            401,
            "bad_credentials",
        ),
        (
            json!({ "username": "ｊｓｍｉｔｈ", "password": "demo" }),
            401,
            "bad_credentials",
        ),
        (
            json!({ "username": "jsmith", "password": "demo\u{0}" }),
            401,
            "bad_credentials",
        ),
        (
            json!({ "username": "j".repeat(5000), "password": "demo" }),
            401,
            "bad_credentials",
        ),
        (
            json!({ "username": "jsmith", "password": "p".repeat(5000) }),
            401,
            "bad_credentials",
        ),
        (
            json!({ "username": "", "password": "" }),
            401,
            "bad_credentials",
        ),
    ];
    for (body, status, why) in json_cases {
        let p = Probe::post("/login").json_value(&body);
        w.refused_as(&p, StatusCode::from_u16(status).unwrap(), why)
            .await;
    }
    // The same text twice: the JSON parser refuses duplicate members.
    let p =
        Probe::post("/login").json(r#"{"username":"admin","password":"demo","username":"jsmith"}"#);
    w.refused_as(&p, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
        .await;
    for form in [
        &b"username=jsmith"[..],
        b"password=demo",
        b"username=jsmith&password=demo&username=admin",
        b"username=%FF&password=demo",
        b"username=jsmith&password=%FF",
        b"username=jsmith&password=wrong",
    ] {
        let p = Probe::post("/login").form(form);
        w.refused_unchanged(&p).await;
        w.refused_unchanged(&p.clone().browser()).await;
    }
}

/// Codes that are not codes: wrong length, digits of other scripts,
/// letters, signs, invisible characters. Refused as malformed before the
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
        // Arabic-Indic, Extended Arabic-Indic, Devanagari, Bengali, Thai
        "٣٣٣٣٣٣",
        "١٢٣٤٥٦",
        "۱۲۳۴۵۶",
        "१२३४५६",
        "১২৩৪৫৬",
        "๑๒๓๔๕๖",
        // Full-width, but five of them (full width is fine, the length not)
        "１２３４５",
        // One foreign digit among ASCII ones
        "12345٦",
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
        "١٢٣ ٤٥٦",
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

#[tokio::test]
async fn admin_routes_refuse_bad_json_forms_paths_and_queries() {
    let w = world().await;
    let admin = w.admin.as_str();
    for body in [
        json!({ "enable": true }),
        json!({ "enabled": true, "extra": 1 }),
        json!({ "enabled": "yes" }),
        json!({ "enabled": "true" }),
        json!({ "enabled": 0 }),
        json!({ "enabled": [false] }),
        json!({ "enabled": { "value": false } }),
        json!({ "internal_users": false, "external_users": "off" }),
        json!([{ "enabled": false }]),
        json!(false),
    ] {
        let p = Probe::new(Method::PUT, "/admin/settings")
            .session(admin)
            .json_value(&body);
        w.refused_as(&p, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
            .await;
    }
    let p = Probe::new(Method::PUT, "/admin/settings")
        .session(admin)
        .json(r#"{"enabled":true,"enabled":false}"#);
    w.refused_as(&p, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
        .await;
    for body in [
        json!({}),
        json!({ "require_2fa": null }),
        json!({ "require_2fa": 0 }),
        json!({ "require_2fa": "false" }),
        json!({ "require_2fa": [false] }),
        json!({ "require_2fa": false, "is_admin": true }),
        json!({ "require": false }),
    ] {
        let p = Probe::new(Method::PUT, "/admin/users/jsmith")
            .session(admin)
            .json_value(&body);
        w.refused_as(&p, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
            .await;
    }
    // The forms: the page always sends both radio groups and the checkbox
    // only when checked. Anything else is not from the page.
    // Values the page never sends: 422; forms that do not parse (a field
    // twice, bytes that are not UTF-8): 400.
    for (form, status) in [
        (&b""[..], 422),
        (b"enabled=on", 422),
        (b"enabled=on&internal_users=on", 422),
        (b"enabled=on&internal_users=maybe&external_users=off", 422),
        (b"enabled=banana&internal_users=on&external_users=off", 422),
        (b"enabled=&internal_users=on&external_users=off", 422),
        (b"enabled=on&internal_users=on&external_users=%FF", 422),
        (
            b"enabled=on&internal_users=on&external_users=off&internal_users=off",
            400,
        ),
        (b"enabled=on&internal_users=on&external_users=\xff", 400),
    ] {
        let p = Probe::post("/admin/settings").session(admin).form(form);
        let a = w.refused_unchanged(&p).await;
        assert_eq!(a.status.as_u16(), status, "{}: {}", p.describe(), a.text());
        let a = w.refused_unchanged(&p.clone().browser()).await;
        assert_eq!(a.status.as_u16(), status, "{}: {}", p.describe(), a.text());
    }
    for (form, status) in [
        (&b"require_2fa=maybe"[..], 422),
        (b"require_2fa=%FF", 422),
        (b"require_2fa=on&require_2fa=off", 400),
        (b"require_2fa=\xff", 400),
    ] {
        let p = Probe::post("/admin/users/jsmith").session(admin).form(form);
        let a = w.refused_unchanged(&p).await;
        assert_eq!(a.status.as_u16(), status, "{}: {}", p.describe(), a.text());
        let a = w.refused_unchanged(&p.clone().browser()).await;
        assert_eq!(a.status.as_u16(), status, "{}: {}", p.describe(), a.text());
    }
    // Paths and queries.
    for path in [
        "/admin/users/nobody",
        "/admin/users/%FF",
        "/admin/users/%C3%28",
        "/admin/users/jsmith%00",
        "/admin/users/%2E%2E",
        "/admin/users/jsmith/extra",
        "/admin/users/",
    ] {
        for method in [Method::GET, Method::PUT, Method::POST] {
            let p = Probe::new(method.clone(), path)
                .session(admin)
                .json_value(&json!({ "require_2fa": false }));
            w.refused_unchanged(&p).await;
            let p = Probe::new(method, path)
                .session(admin)
                .form("require_2fa=on")
                .browser();
            w.refused_unchanged(&p).await;
        }
    }
    for path in [
        "/admin/settings?saved=1&saved=2",
        "/admin/users/jsmith?saved=1&saved=2",
        "/admin/settings?saved=%FF",
    ] {
        // Not refused: a query is only a notice on the page.
        let a = send(&w.router, &Probe::get(path).session(admin).browser()).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text());
        assert!(a.content_type().starts_with("text/html"));
    }
}

/// Every route, with the methods it does not take.
#[tokio::test]
async fn wrong_methods_are_405_problems() {
    let w = world().await;
    let cases = [
        (Method::DELETE, "/login", ""),
        (Method::PUT, "/login", ""),
        (Method::GET, "/logout", ""),
        (Method::POST, "/health", ""),
        (Method::PATCH, "/api/me", w.jsmith_verified.as_str()),
        (Method::POST, "/api/me", w.admin.as_str()),
        (Method::DELETE, "/admin/settings", w.admin.as_str()),
        (Method::PATCH, "/admin/users/jsmith", w.admin.as_str()),
        (Method::POST, "/admin/users", w.admin.as_str()),
        (Method::PUT, "/2fa", w.jsmith_pending.as_str()),
        (Method::DELETE, "/2fa/enroll", w.portal_enrolling.as_str()),
        (
            Method::POST,
            "/2fa/enroll/qr.png",
            w.portal_enrolling.as_str(),
        ),
        (
            Method::PUT,
            "/2fa/enroll/qr.svg",
            w.portal_enrolling.as_str(),
        ),
        (
            Method::PUT,
            "/2fa/authenticators",
            w.jsmith_verified.as_str(),
        ),
        (
            Method::GET,
            "/2fa/recovery-codes",
            w.jsmith_verified.as_str(),
        ),
    ];
    for (method, path, session) in cases {
        for browser in [false, true] {
            let mut p = probe(&method, path, session);
            if browser {
                p = p.browser();
            }
            let a = w.refused_unchanged(&p).await;
            assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{}", p.describe());
        }
    }
    let revoke = format!("/2fa/authenticators/{}/revoke", w.authenticator);
    let p = Probe::new(Method::GET, revoke).session(&w.jsmith_verified);
    w.refused_as(&p, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
        .await;
}

/// The library's endpoints with paths and queries that name nothing.
#[tokio::test]
async fn endpoints_refuse_unknown_ids_and_paths() {
    let w = world().await;
    let v = w.jsmith_verified.as_str();
    for (method, path) in [
        (Method::POST, "/2fa/authenticators/nope/revoke"),
        (Method::DELETE, "/2fa/authenticators/nope"),
        (Method::POST, "/2fa/authenticators/%FF/revoke"),
        (Method::POST, "/2fa/authenticators/%00/revoke"),
        (Method::DELETE, "/2fa/authenticators/..%2F..%2Fadmin"),
        (Method::GET, "/2fa/enroll?replace=nope"),
        (Method::GET, "/2fa/enroll?replace=%FF&name=x"),
        (Method::GET, "/2fa/authenticators/x/y/z"),
        (Method::GET, "/2fa/enroll/qr.gif"),
        (Method::GET, "/2fa/%FF"),
    ] {
        for browser in [false, true] {
            let mut p = Probe::new(method.clone(), path).session(v);
            if browser {
                p = p.browser();
            }
            let a = w.refused_unchanged(&p).await;
            assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", p.describe());
        }
    }
    // Another user's authenticator id is not found for portal.
    let p = Probe::post(format!("/2fa/authenticators/{}/revoke", w.authenticator))
        .session(&w.portal_enrolling);
    w.refused_unchanged(&p).await;
}

/// Forged, stale and fixed cookies are strangers: on every route, with
/// bodies that would be accepted from the right session.
#[tokio::test]
async fn forged_and_stale_cookies_are_strangers() {
    let w = world().await;
    let t = &w.t;
    // A session that logged out: its id is gone.
    // (The admin synced an app in `world`: its login asks for a code.)
    let mut gone = login(t, "admin", "totp").await;
    let admin_gone = gone.cookie.clone().unwrap();
    assert_eq!(
        gone.post_json("/logout", json!({})).await.status,
        StatusCode::OK
    );
    // Session fixation: an id planted before the login is not the one the
    // login gets, and the pending id is not the verified one.
    let planted = "q7ZLd3Yf0Y2b9x1uXq1KZw";
    let mut fixed = t.client();
    fixed.cookie = Some(planted.into());
    assert_eq!(fixed.login("jsmith", "demo").await, "totp");
    let pending_id = fixed.cookie.clone().unwrap();
    assert_ne!(pending_id, planted);
    t.clock.advance(Duration::from_secs(30));
    let ok = fixed
        .post_json("/2fa", json!({ "code": code_at(&w.secret, &t.clock, 0) }))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_ne!(fixed.cookie.as_deref(), Some(pending_id.as_str()));

    let cookies: Vec<Vec<u8>> = vec![
        // No cookie at all.
        Vec::new(),
        format!("{SESSION_COOKIE}={planted}").into_bytes(),
        format!("{SESSION_COOKIE}={pending_id}").into_bytes(),
        format!("{SESSION_COOKIE}={admin_gone}").into_bytes(),
        format!("{SESSION_COOKIE}=AAAAAAAAAAAAAAAAAAAAAA").into_bytes(),
        format!("{SESSION_COOKIE}=not-a-session-id").into_bytes(),
        format!("{SESSION_COOKIE}=").into_bytes(),
        format!("{SESSION_COOKIE}={}", "A".repeat(4000)).into_bytes(),
        format!("{SESSION_COOKIE}=%00%FF").into_bytes(),
        format!("{SESSION_COOKIE}=\"quoted\"").into_bytes(),
        [format!("{SESSION_COOKIE}=").as_bytes(), b"\xff\xfe"].concat(),
        format!("{SESSION_COOKIE}=x; {SESSION_COOKIE}=y").into_bytes(),
        format!("other={}", w.admin).into_bytes(),
        b"\xff\xfe".to_vec(),
        b";;;=;".to_vec(),
    ];
    let code = code_at(&w.secret, &t.clock, 1);
    let revoke = format!("/2fa/authenticators/{}/revoke", w.authenticator);
    let delete = format!("/2fa/authenticators/{}", w.authenticator);
    let routes: Vec<(Method, &str, Value)> = vec![
        (Method::GET, "/", Value::Null),
        (Method::GET, "/api/me", Value::Null),
        (Method::GET, "/admin", Value::Null),
        (Method::GET, "/admin/settings", Value::Null),
        (Method::PUT, "/admin/settings", json!({ "enabled": false })),
        (Method::GET, "/admin/users", Value::Null),
        (Method::GET, "/admin/users/jsmith", Value::Null),
        (
            Method::PUT,
            "/admin/users/jsmith",
            json!({ "require_2fa": false }),
        ),
        (Method::GET, "/2fa", Value::Null),
        (Method::POST, "/2fa", json!({ "code": code })),
        (
            Method::POST,
            "/2fa",
            json!({ "recovery_code": w.recovery_codes[0] }),
        ),
        (Method::GET, "/2fa/enroll", Value::Null),
        (Method::GET, "/2fa/enroll/qr.png", Value::Null),
        (Method::GET, "/2fa/enroll/qr.svg", Value::Null),
        (Method::POST, "/2fa/enroll", json!({ "code": code })),
        (Method::GET, "/2fa/authenticators", Value::Null),
        (Method::POST, &revoke, Value::Null),
        (Method::DELETE, &delete, Value::Null),
        (Method::POST, "/2fa/recovery-codes", Value::Null),
    ];
    for cookie in &cookies {
        for (method, path, body) in &routes {
            let mut p = Probe::new(method.clone(), *path);
            if !cookie.is_empty() {
                p = p.raw_cookie(cookie);
            }
            if !body.is_null() {
                p = p.json_value(body);
            }
            let a = w.refused_unchanged(&p).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", p.describe());
            assert_eq!(reason(&a), "not_logged_in", "{}", p.describe());
            assert_eq!(a.json()["next"], "login");
            // A browser is sent to the login page.
            let mut p = Probe::new(method.clone(), *path).browser();
            if !cookie.is_empty() {
                p = p.raw_cookie(cookie);
            }
            if method != Method::GET {
                p = p.form("");
            }
            let a = w.refused_unchanged(&p).await;
            assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", p.describe());
            assert_eq!(a.location(), "/login", "{}", p.describe());
        }
    }
    // The stranger's code and recovery code were not used up.
    let mut c = login(t, "jsmith", "totp").await;
    let ok = c.post_json("/2fa", json!({ "code": code })).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
}

/// The two routes that read no body and need no session: logging out and
/// the health check. Whatever comes with them, they answer the same and
/// change nothing; only a body declared too large is refused first.
#[tokio::test]
async fn logout_and_health_ignore_what_they_do_not_read() {
    let w = world().await;
    let junk: Vec<Probe> = vec![
        Probe::post("/logout"),
        Probe::post("/logout").session("AAAAAAAAAAAAAAAAAAAAAA"),
        Probe::post("/logout").raw_cookie(b"\xff\xfe"),
        Probe::post("/logout").typed(b"text/plain", "x".repeat(BODY_LIMIT * 2)),
        Probe::post("/logout").json("[not json"),
        Probe::get("/health").session("not-a-session-id"),
        Probe::get("/health")
            .session(&w.admin)
            .json("{\"code\":\"٣\"}"),
    ];
    for p in junk {
        let before = Snapshot::take(&w.t).await;
        let a = send(&w.router, &p).await;
        assert_eq!(a.status, StatusCode::OK, "{}: {}", p.describe(), a.text());
        assert!(
            set_session_cookies(&a).iter().all(String::is_empty),
            "{}",
            p.describe()
        );
        assert_eq!(Snapshot::take(&w.t).await, before, "{}", p.describe());
    }
    for path in ["/logout", "/health"] {
        let method = if path == "/health" {
            Method::GET
        } else {
            Method::POST
        };
        let p = Probe::new(method, path)
            .session(&w.admin)
            .json(vec![b' '; BODY_LIMIT + 1])
            .with_content_length();
        w.refused_as(&p, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            .await;
    }
    // The admin is still logged in: nothing above logged anybody out.
    let me = send(&w.router, &Probe::get("/api/me").session(&w.admin)).await;
    assert_eq!(me.status, StatusCode::OK);
}

/// Steps out of order: a code before the login, after the logout, a
/// confirmation without an enrollment, account changes without a recent
/// second step.
#[tokio::test]
async fn requests_in_the_wrong_order_are_refused() {
    let w = world().await;
    let t = &w.t;
    t.clock.advance(Duration::from_secs(30));
    let code = code_at(&w.secret, &t.clock, 0);

    // A code (or a recovery code) before any login.
    for body in [
        json!({ "code": code }),
        json!({ "recovery_code": w.recovery_codes[0] }),
    ] {
        for path in ["/2fa", "/2fa/enroll"] {
            let p = Probe::post(path).json_value(&body);
            w.refused_as(&p, StatusCode::UNAUTHORIZED, "not_logged_in")
                .await;
        }
    }
    // A second step after the logout.
    let mut c = login(t, "jsmith", "totp").await;
    let stale = c.cookie.clone().unwrap();
    assert_eq!(
        c.post_json("/logout", json!({})).await.status,
        StatusCode::OK
    );
    let p = Probe::post("/2fa")
        .session(&stale)
        .json_value(&json!({ "code": code }));
    w.refused_as(&p, StatusCode::UNAUTHORIZED, "not_logged_in")
        .await;
    // The same client after the logout (no cookie at all).
    let a = c.post_json("/2fa", json!({ "code": code })).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    // Confirming an enrollment that was never started: not charged.
    let p = Probe::post("/2fa/enroll")
        .session(&w.admin)
        .json_value(&json!({ "code": "123456" }));
    w.refused_as(&p, StatusCode::UNAUTHORIZED, "no_pending_enrollment")
        .await;
    // The second step for portal, who must enrol first.
    let p = Probe::post("/2fa")
        .session(&w.portal_enrolling)
        .json_value(&json!({ "code": "123456" }));
    w.refused_as(&p, StatusCode::UNAUTHORIZED, "enrollment_required")
        .await;
    let p = Probe::get("/2fa").session(&w.portal_enrolling);
    w.refused_as(&p, StatusCode::UNAUTHORIZED, "enrollment_required")
        .await;
    let p = Probe::post("/2fa/recovery-codes").session(&w.portal_enrolling);
    w.refused_as(&p, StatusCode::UNAUTHORIZED, "step_up_required")
        .await;

    // The password alone (a password thief) cannot touch the account's
    // second factor: no new phone, no list, no revoke, no recovery codes,
    // nothing behind the layer.
    let pending = w.jsmith_pending.as_str();
    let revoke = format!("/2fa/authenticators/{}/revoke", w.authenticator);
    let delete = format!("/2fa/authenticators/{}", w.authenticator);
    for (method, path, why) in [
        (Method::GET, "/2fa/enroll", "step_up_required"),
        (Method::GET, "/2fa/enroll?name=Thief", "step_up_required"),
        (Method::GET, "/2fa/enroll/qr.png", "step_up_required"),
        (Method::GET, "/2fa/enroll/qr.svg", "step_up_required"),
        (Method::POST, "/2fa/enroll", "step_up_required"),
        (Method::GET, "/2fa/authenticators", "step_up_required"),
        (Method::POST, revoke.as_str(), "step_up_required"),
        (Method::DELETE, delete.as_str(), "step_up_required"),
        (Method::POST, "/2fa/recovery-codes", "step_up_required"),
        (Method::GET, "/api/me", "second_step_required"),
        (Method::GET, "/", "second_step_required"),
        (Method::PUT, "/admin/settings", "second_step_required"),
    ] {
        let p = Probe::new(method, path)
            .session(pending)
            .json_value(&json!({ "code": code, "enabled": false }));
        w.refused_as(&p, StatusCode::UNAUTHORIZED, why).await;
    }
    // The code no stranger could use still logs jsmith in.
    let ok = send(
        &w.router,
        &Probe::post("/2fa")
            .session(pending)
            .json_value(&json!({ "code": code })),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
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
        (json!({ "code": "٣٣٣٣٣٣" }), 401, "malformed"),
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
