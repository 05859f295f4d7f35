//! The harness of the demo's bad-input tests (`tests/bad_input_*.rs`): a
//! snapshot of every stored state a request could change, probes (bad
//! requests with what a refusal must look like), and a world of users in
//! every state to send them into.
//!
//! Every bad request must be refused with a 4xx and a problem+json body (a
//! readable page, or a redirect to the step the browser should take, for
//! browser requests): never a 500, never a panic, never a new session. And
//! the stored state afterwards must be exactly what it was: each user's
//! authenticators with their sync state, pending enrollment, epoch,
//! throttle state and recovery codes left (read through the TOTP store),
//! and the demo's user and settings rows (read from the SQLite file).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Answer, Client, TestDemo};
use axum::Router;
use axum::body::Body;
use http::{HeaderValue, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use totp_demo::SESSION_COOKIE;
use tower::ServiceExt as _;
use tower_totp::UserId;
use tower_totp::clock::{Clock as _, ManualClock};
use tower_totp::store::{Authenticator, PendingEnrollment, UserStatus};
use tower_totp::throttle::{ThrottlePolicy, ThrottleState};
use tower_totp_testkit::phone::Phone;

pub const USERS: [&str; 3] = ["admin", "jsmith", "portal"];
pub const JSON: &str = "application/json";
pub const FORM: &str = "application/x-www-form-urlencoded";

// ---------------------------------------------------------------------------
// Stored state

/// One user's TOTP state, as the store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct TotpState {
    pub status: UserStatus,
    pub authenticators: Vec<Authenticator>,
    /// Every pending enrollment of the user (one per session that started
    /// one), by id.
    pub pending: Vec<PendingEnrollment>,
    pub throttle: ThrottleState,
    pub recovery_codes_left: usize,
}

/// Everything a request could change.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// `demo_users` rows: name, display name, kind, admin, require 2FA,
    /// password hash.
    pub users: Vec<(String, String, String, i64, i64, String)>,
    /// The `demo_settings` row.
    pub settings: (i64, i64, i64),
    pub totp: BTreeMap<&'static str, TotpState>,
}

impl Snapshot {
    pub async fn take(t: &TestDemo) -> Self {
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

    pub fn user(&mut self, name: &str) -> &mut TotpState {
        self.totp.get_mut(name).unwrap()
    }

    /// This snapshot with one guess charged to `name` at `t`'s time.
    pub fn charged(mut self, name: &str, t: &TestDemo) -> Self {
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
pub struct Probe {
    pub method: Method,
    pub path: String,
    pub content_type: Option<HeaderValue>,
    pub browser: bool,
    pub body: Vec<u8>,
    pub cookie: Option<HeaderValue>,
    pub content_length: bool,
}

impl Probe {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
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

    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    pub fn post(path: impl Into<String>) -> Self {
        Self::new(Method::POST, path)
    }

    pub fn typed(mut self, content_type: &[u8], body: impl Into<Vec<u8>>) -> Self {
        self.content_type = Some(HeaderValue::from_bytes(content_type).unwrap());
        self.body = body.into();
        self
    }

    pub fn json(self, body: impl Into<Vec<u8>>) -> Self {
        self.typed(JSON.as_bytes(), body)
    }

    pub fn json_value(self, value: &Value) -> Self {
        self.json(value.to_string())
    }

    pub fn form(self, body: impl Into<Vec<u8>>) -> Self {
        self.typed(FORM.as_bytes(), body)
    }

    pub fn browser(mut self) -> Self {
        self.browser = true;
        self
    }

    pub fn session(self, id: &str) -> Self {
        self.raw_cookie(format!("{SESSION_COOKIE}={id}").as_bytes())
    }

    pub fn raw_cookie(mut self, value: &[u8]) -> Self {
        self.cookie = Some(HeaderValue::from_bytes(value).unwrap());
        self
    }

    pub fn with_content_length(mut self) -> Self {
        self.content_length = true;
        self
    }

    /// Whether the demo should answer with pages (the rule of the layer
    /// and the demo: accepts HTML and did not send JSON).
    pub fn wants_html(&self) -> bool {
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

    pub fn describe(&self) -> String {
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

pub async fn send(router: &Router, p: &Probe) -> Answer {
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
    Answer::read(res).await
}

/// The session cookie values an answer sets (an empty value removes it).
pub fn set_session_cookies(a: &Answer) -> Vec<String> {
    a.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix(&format!("{SESSION_COOKIE}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .collect()
}

/// The session id a probe carries, if its cookie header holds one.
pub fn sent_session(p: &Probe) -> Option<String> {
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
pub fn assert_refusal(p: &Probe, a: &Answer) {
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
pub fn reason(a: &Answer) -> String {
    a.json()["reason"].as_str().unwrap_or_default().to_owned()
}

// ---------------------------------------------------------------------------
// The world the bad requests are sent into

/// The code an app shows for `secret`, `steps` steps from now.
pub fn code_at(secret: &str, clock: &ManualClock, steps: i64) -> String {
    Phone::from_base32(secret, clock).code_at_offset(steps)
}

/// A six-digit code that no step within the maximum drift (±10) of now
/// shows: wrong, well-formed, and not a resync candidate.
pub fn wrong_code(secret: &str, clock: &ManualClock) -> String {
    let near: Vec<String> = (-12..=12).map(|s| code_at(secret, clock, s)).collect();
    (0..)
        .map(|n: u32| format!("{:06}", (123_456 + n * 7_919) % 1_000_000))
        .find(|c| !near.contains(c))
        .unwrap()
}

pub fn full_width(code: &str) -> String {
    in_script(code, 0xFF10)
}

/// `code`'s ASCII digits as the digits of the script whose zero is `zero`
/// (`0xFF10` full-width, `0x0660` Arabic-Indic, `0x0966` Devanagari...).
pub fn in_script(code: &str, zero: u32) -> String {
    code.chars()
        .map(|c| char::from_u32(zero + c.to_digit(10).unwrap()).unwrap())
        .collect()
}

pub struct World {
    pub t: TestDemo,
    pub router: Router,
    /// jsmith's app.
    pub secret: String,
    pub recovery_codes: Vec<String>,
    pub authenticator: String,
    /// portal's pending enrollment.
    pub portal_secret: String,
    /// Session ids.
    pub admin: String,
    pub jsmith_pending: String,
    pub jsmith_verified: String,
    pub portal_enrolling: String,
}

pub async fn login(t: &TestDemo, user: &str, next: &str) -> Client {
    let mut c = t.client();
    assert_eq!(c.login(user, "demo").await, next, "{user}");
    c
}

/// jsmith has synced an app (30 s ago) and has recovery codes; TFA for
/// external users is on, so portal (required) must sync one and has
/// started to; sessions: admin logged in, jsmith waiting for the second
/// step, jsmith verified a moment ago, portal enrolling.
pub async fn world() -> World {
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
    pub async fn refused_unchanged(&self, p: &Probe) -> Answer {
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
    pub async fn refused_as(&self, p: &Probe, status: StatusCode, why: &str) -> Answer {
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
    pub async fn sessions(&self) -> Vec<(StatusCode, Vec<u8>)> {
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

pub fn probe(method: &Method, path: &str, session: &str) -> Probe {
    let p = Probe::new(method.clone(), path);
    if session.is_empty() {
        p
    } else {
        p.session(session)
    }
}
