//! A client of the reference app that keeps its cookies like a browser.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower::{Service, ServiceExt};
use tower_totp::UserId;
use tower_totp::clock::ManualClock;
use tower_totp::http::{Next, Refusal};

use super::{App, AppService};
use crate::phone::Phone;

/// tower-sessions' cookie name.
const SESSION_COOKIE: &str = "id";

/// The remember-device cookie's name.
const REMEMBER_COOKIE: &str = "tower_totp_device";

/// One answer, with its parts (headers, extensions) kept.
#[derive(Debug)]
pub struct Reply {
    /// Status, headers, extensions.
    pub parts: http::response::Parts,
    /// The whole body.
    pub body: Bytes,
    /// How long the service took to answer.
    pub took: Duration,
}

impl Reply {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.parts.status
    }

    /// A header's text.
    pub fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The content type, or "".
    pub fn content_type(&self) -> &str {
        self.header(header::CONTENT_TYPE).unwrap_or("")
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    ///
    /// # Panics
    ///
    /// If it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {:?} {}",
                self.status(),
                self.parts.headers,
                self.text()
            )
        })
    }

    /// The layer's typed refusal, if it refused.
    pub fn refusal(&self) -> Option<Refusal> {
        self.parts.extensions.get::<Refusal>().copied()
    }

    /// The problem's `reason` member.
    ///
    /// # Panics
    ///
    /// Unless the answer is a problem+json with a reason.
    pub fn problem_reason(&self) -> String {
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "{}: {}",
            self.status(),
            self.text()
        );
        self.json()["reason"]
            .as_str()
            .expect("a reason member")
            .to_owned()
    }

    /// The `next` member of a JSON answer, or "".
    pub fn next(&self) -> String {
        self.json()["next"].as_str().unwrap_or("").to_owned()
    }

    /// What the page behind the layer reports (`none`, `not_required`,
    /// `verified`).
    ///
    /// # Panics
    ///
    /// Unless the page answered (200).
    pub fn hello_factor(&self) -> String {
        assert_eq!(self.status(), StatusCode::OK, "{}", self.text());
        self.json()["second_factor"]["factor"]
            .as_str()
            .expect("a factor")
            .to_owned()
    }

    /// Whether the answer sets a session cookie.
    pub fn sets_session_cookie(&self) -> bool {
        self.parts
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .any(|v| v.as_bytes().starts_with(b"id="))
    }
}

/// What a [`Client`] can send to: an [`App`], or a wrapper of one (an
/// instance of a service with several).
pub trait Target {
    /// The whole service.
    fn service(&self) -> &AppService;
}

impl<S> Target for App<S> {
    fn service(&self) -> &AppService {
        &self.service
    }
}

/// A client that keeps the session cookie (updated on every answer) and the
/// remember-device cookie, and sends to one app; [`Client::on`] points it at
/// another instance of the same service (the load balancer).
#[derive(Clone, Default)]
pub struct Client {
    service: Option<AppService>,
    /// The session cookie's value.
    pub session: Option<String>,
    /// The remember-device cookie's value.
    pub remember: Option<String>,
    html: bool,
    bound: Option<Duration>,
}

impl Client {
    /// A JSON client with no cookies, sending nowhere until [`Client::on`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A JSON client of `to` with no cookies.
    pub fn of(to: &impl Target) -> Self {
        Self {
            service: Some(to.service().clone()),
            ..Self::default()
        }
    }

    /// Send `Accept: text/html`, as a browser does.
    #[must_use]
    pub fn html(mut self) -> Self {
        self.html = true;
        self
    }

    /// Panic when an answer takes longer than `bound`.
    #[must_use]
    pub fn bounded(mut self, bound: Duration) -> Self {
        self.bound = Some(bound);
        self
    }

    /// Send the next requests to `to` (with the same cookies).
    pub fn on(&mut self, to: &impl Target) -> &mut Self {
        self.service = Some(to.service().clone());
        self
    }

    /// Send `req` with the cookies (unless it has a `cookie` header of its
    /// own); keep the cookies the answer sets.
    ///
    /// # Panics
    ///
    /// If the client was never pointed at an app, or the answer takes
    /// longer than the [bound](Client::bounded).
    pub async fn send(&mut self, mut req: Request<Full<Bytes>>) -> Reply {
        let mut cookies = Vec::new();
        if let Some(id) = &self.session {
            cookies.push(format!("{SESSION_COOKIE}={id}"));
        }
        if let Some(r) = &self.remember {
            cookies.push(format!("{REMEMBER_COOKIE}={r}"));
        }
        let headers = req.headers_mut();
        if !cookies.is_empty() && !headers.contains_key(header::COOKIE) {
            let value = HeaderValue::from_str(&cookies.join("; ")).expect("cookie text");
            headers.insert(header::COOKIE, value);
        }
        if self.html && !headers.contains_key(header::ACCEPT) {
            headers.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
        }
        let mut service = self.service.clone().expect("a client pointed at an app");
        let start = Instant::now();
        let call = async move {
            let Ok(res) = service.ready().await?.call(req).await;
            let (parts, body) = res.into_parts();
            let body = body.collect().await.map(|b| b.to_bytes());
            Ok::<_, std::convert::Infallible>((parts, body))
        };
        let Ok((parts, body)) = match self.bound {
            Some(bound) => tokio::time::timeout(bound, call)
                .await
                .unwrap_or_else(|_| panic!("no answer within {bound:?}")),
            None => call.await,
        };
        let took = start.elapsed();
        self.keep_cookies(&parts.headers);
        let body = body.expect("an answer body");
        Reply { parts, body, took }
    }

    fn keep_cookies(&mut self, headers: &http::HeaderMap) {
        for value in headers.get_all(header::SET_COOKIE) {
            let text = value.to_str().expect("cookie text");
            let first = text.split(';').next().unwrap_or("");
            let Some((name, value)) = first.split_once('=') else {
                continue;
            };
            let gone = value.is_empty() || text.contains("Max-Age=0");
            let slot = match name {
                SESSION_COOKIE => &mut self.session,
                REMEMBER_COOKIE => &mut self.remember,
                _ => continue,
            };
            *slot = (!gone).then(|| value.to_owned());
        }
    }

    fn request(method: Method, path: &str) -> http::request::Builder {
        Request::builder().method(method).uri(path)
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Reply {
        let req = Self::request(Method::GET, path)
            .body(Full::default())
            .expect("a request");
        self.send(req).await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&mut self, path: &str, body: Value) -> Reply {
        let req = Self::request(Method::POST, path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("a request");
        self.send(req).await
    }

    /// `POST path` with a form body.
    pub async fn post_form(&mut self, path: &str, form: &str) -> Reply {
        let req = Self::request(Method::POST, path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form.to_owned())))
            .expect("a request");
        self.send(req).await
    }

    /// `POST path` with any body and content type.
    pub async fn post_raw(
        &mut self,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut b = Self::request(Method::POST, path);
        if let Some(t) = content_type {
            b = b.header(header::CONTENT_TYPE, t);
        }
        self.send(b.body(Full::new(Bytes::from(body))).expect("a request"))
            .await
    }

    /// `DELETE path`.
    pub async fn delete(&mut self, path: &str) -> Reply {
        let req = Self::request(Method::DELETE, path)
            .body(Full::default())
            .expect("a request");
        self.send(req).await
    }

    /// `POST /login` (the password is right).
    pub async fn try_login(&mut self, user: &UserId) -> Reply {
        self.post_json("/login", json!({ "username": user.as_str() }))
            .await
    }

    /// `POST /login`, asserting a 200: what comes next.
    pub async fn login(&mut self, user: &UserId) -> String {
        let r = self.try_login(user).await;
        assert_eq!(r.status(), StatusCode::OK, "login: {}", r.text());
        r.next()
    }

    /// `POST /logout`, asserting a 200.
    pub async fn logout(&mut self) {
        let r = self.post_json("/logout", json!({})).await;
        assert_eq!(r.status(), StatusCode::OK, "logout: {}", r.text());
    }

    /// `POST /2fa` with a code (JSON).
    pub async fn submit(&mut self, code: &str) -> Reply {
        self.post_json("/2fa", json!({ "code": code })).await
    }

    /// `GET /hello`, a page behind the layer.
    pub async fn hello(&mut self) -> Reply {
        self.get("/hello").await
    }

    /// Log in and do the second step with `phone`; asserts success.
    pub async fn login_verified(&mut self, user: &UserId, phone: &Phone) {
        assert_eq!(self.login(user).await, "totp");
        let r = self.submit(&phone.code()).await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
        assert_eq!(r.next(), "done");
    }

    /// `POST /2fa` with a code and `remember: true`; asserts the cookie.
    pub async fn submit_remembered(&mut self, phone: &Phone) {
        let r = self
            .post_json("/2fa", json!({ "code": phone.code(), "remember": true }))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
        assert!(self.remember.is_some(), "no remember-device cookie");
    }

    /// Enroll through the endpoints after a login that answered `enroll`:
    /// the phone and the recovery codes.
    pub async fn enroll(&mut self, clock: &ManualClock) -> (Phone, Vec<String>) {
        let r = self.get("/2fa/enroll").await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
        let phone = Phone::from_enroll_json(&r.json(), clock);
        let r = self
            .post_json("/2fa/enroll", json!({ "code": phone.code() }))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
        let v = r.json();
        assert_eq!(v["next"], "done");
        let codes = v["recovery_codes"]
            .as_array()
            .expect("recovery codes")
            .iter()
            .map(|c| c.as_str().expect("a code").to_owned())
            .collect();
        (phone, codes)
    }
}

/// Assert a problem+json refusal with this status, `reason` and `next`, the
/// same reason and next in the response extensions, and `no-store`.
///
/// # Panics
///
/// When any of it differs.
#[track_caller]
pub fn assert_problem(r: &Reply, status: StatusCode, reason: &str, next: Option<&str>) {
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

/// Assert a 303 to `to`.
///
/// # Panics
///
/// Unless it is one.
#[track_caller]
pub fn assert_redirect(r: &Reply, to: &str) {
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.header(header::LOCATION), Some(to));
}
