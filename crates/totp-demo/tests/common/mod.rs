//! Helpers shared by the demo's tests: a demo on a temporary database with
//! a manual clock, and a client that keeps the session cookie.

#![allow(dead_code, unreachable_pub)]

pub mod bad_input;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tempfile::TempDir;
use totp_demo::{Database, Demo, DemoConfig, PasswordCost, SESSION_COOKIE, app};
use tower::ServiceExt as _;
use tower_totp::clock::{ManualClock, UnixTime};
use tower_totp::seal::{Keyring, SealingKey};
use tower_totp_testkit::phone::Phone;
use tracing_subscriber::fmt::MakeWriter;

/// The code an authenticator app with `secret` (base32) shows now.
pub fn app_code(secret: &str, clock: &ManualClock) -> String {
    Phone::from_base32(secret, clock).code()
}

/// A fixed start time, far from any step boundary.
pub const START: u64 = 1_700_000_010;

pub struct TestDemo {
    pub demo: Demo,
    pub clock: ManualClock,
    pub dir: TempDir,
    pub key: SealingKey,
}

pub fn config(db: &Path, key: &SealingKey, clock: &ManualClock) -> DemoConfig {
    DemoConfig::new(Database::File(db.to_owned()), Keyring::new(1, key.clone()))
        .password_cost(PasswordCost::Minimal)
        .clock(clock.clone())
}

impl TestDemo {
    pub fn start() -> Self {
        Self::start_with(|c| c)
    }

    /// As [`TestDemo::start`], the configuration changed by `change` first.
    pub fn start_with(change: impl FnOnce(DemoConfig) -> DemoConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = SealingKey::generate().unwrap();
        let clock = ManualClock::new(UnixTime::from_secs(START));
        let demo = app(change(config(&Self::db_path_in(dir.path()), &key, &clock))).unwrap();
        Self {
            demo,
            clock,
            dir,
            key,
        }
    }

    fn db_path_in(dir: &Path) -> PathBuf {
        dir.join("data").join("demo.sqlite3")
    }

    pub fn db_path(&self) -> PathBuf {
        Self::db_path_in(self.dir.path())
    }

    /// Build the demo again on the same database and key (a restart).
    pub fn restart(&mut self) {
        self.demo = app(config(&self.db_path(), &self.key, &self.clock)).unwrap();
    }

    pub fn client(&self) -> Client {
        Client::new(&self.demo)
    }
}

/// A scripted client (JSON) or a browser (`browser = true`: forms and
/// `Accept: text/html`), keeping the session cookie like a browser.
pub struct Client {
    router: Router,
    pub cookie: Option<String>,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// The whole answer: status, headers and the body read to the end.
    pub async fn read(res: http::Response<Body>) -> Self {
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// A problem+json answer's `reason` and `next`.
    pub fn problem(&self) -> (String, Option<String>) {
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "{}",
            self.text()
        );
        let v = self.json();
        (
            v["reason"].as_str().unwrap_or_default().to_owned(),
            v["next"].as_str().map(str::to_owned),
        )
    }
}

impl Client {
    /// A client without a session, talking to `demo`.
    pub fn new(demo: &Demo) -> Self {
        Self {
            router: demo.router(),
            cookie: None,
        }
    }

    /// Send the next requests to `demo`, with the same cookie (another
    /// instance behind the same load balancer).
    pub fn on(&mut self, demo: &Demo) -> &mut Self {
        self.router = demo.router();
        self
    }

    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        accept: &str,
        body: Vec<u8>,
    ) -> Answer {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::ACCEPT, accept);
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        if let Some(cookie) = &self.cookie {
            req = req.header(header::COOKIE, format!("{SESSION_COOKIE}={cookie}"));
        }
        let res = self
            .router
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        for set in res.headers().get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let Some(rest) = set.strip_prefix(&format!("{SESSION_COOKIE}=")) else {
                continue;
            };
            let value = rest.split(';').next().unwrap_or_default();
            let removed = value.is_empty() || set.to_ascii_lowercase().contains("max-age=0");
            self.cookie = (!removed).then(|| value.to_owned());
        }
        Answer::read(res).await
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        self.request(Method::GET, path, None, "application/json", Vec::new())
            .await
    }

    pub async fn send_json(&mut self, method: Method, path: &str, body: Value) -> Answer {
        self.request(
            method,
            path,
            Some("application/json"),
            "application/json",
            body.to_string().into_bytes(),
        )
        .await
    }

    pub async fn post_json(&mut self, path: &str, body: Value) -> Answer {
        self.send_json(Method::POST, path, body).await
    }

    pub async fn put_json(&mut self, path: &str, body: Value) -> Answer {
        self.send_json(Method::PUT, path, body).await
    }

    /// `POST /login` as a script; the `next` it answers.
    /// `POST /login` as a script, whatever it answers.
    pub async fn try_login(&mut self, user: &str, password: &str) -> Answer {
        self.post_json(
            "/login",
            serde_json::json!({ "username": user, "password": password }),
        )
        .await
    }

    pub async fn login(&mut self, user: &str, password: &str) -> String {
        let a = self.try_login(user, password).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
        a.json()["next"].as_str().unwrap().to_owned()
    }

    /// A browser: `GET` with `Accept: text/html`.
    pub async fn browse(&mut self, path: &str) -> Answer {
        self.request(
            Method::GET,
            path,
            None,
            "text/html,application/xhtml+xml",
            Vec::new(),
        )
        .await
    }

    /// A browser posting a form.
    pub async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        self.request(
            Method::POST,
            path,
            Some("application/x-www-form-urlencoded"),
            "text/html,application/xhtml+xml",
            serde_urlencoded::to_string(fields).unwrap().into_bytes(),
        )
        .await
    }
}

/// Syncing an app, for users whose login answers `enroll` (jsmith, and
/// the admin since it must sync one too).
impl Client {
    /// Sync an app in this session (JSON, whatever the client is): the
    /// app's secret. The session is verified afterwards.
    pub async fn sync_app(&mut self, clock: &ManualClock) -> String {
        let page = self.get("/2fa/enroll").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let secret = page.json()["secret"].as_str().unwrap().to_owned();
        let done = self
            .post_json(
                "/2fa/enroll",
                serde_json::json!({ "code": app_code(&secret, clock) }),
            )
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(done.json()["next"], "done");
        secret
    }

    /// Log `user` in as a script and sync an app: its secret.
    pub async fn login_and_sync(&mut self, user: &str, clock: &ManualClock) -> String {
        assert_eq!(self.login(user, "demo").await, "enroll", "{user}");
        self.sync_app(clock).await
    }

    /// Send a code of the app with `secret` to `POST /2fa` (JSON): the
    /// second step, or a step-up in a verified session.
    pub async fn send_code(&mut self, secret: &str, clock: &ManualClock) -> Answer {
        self.post_json(
            "/2fa",
            serde_json::json!({ "code": app_code(secret, clock) }),
        )
        .await
    }
}

/// Every `tracing` event written while it is the thread's subscriber.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// A subscriber that writes INFO and above into this capture.
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + 'static {
        tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish()
    }

    /// What was written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
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
