//! An in-process application for the HTTP tests: tower-sessions outside, a
//! tiny router with `/login` and `/logout`, the `/2fa` endpoints, and
//! [`TotpLayer`] around a hello handler that reports what it found in the
//! request extensions. A [`Client`] keeps the cookies like a browser. No
//! sockets, no sleeps: a [`ManualClock`] drives time.

#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower::util::BoxCloneService;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
use tower_sessions::{MemoryStore as SessionMemoryStore, Session, SessionManagerLayer};
use tower_totp::clock::{Clock, ManualClock, UnixTime};
use tower_totp::code::{CodeParams, Hotp, Secret};
use tower_totp::http::{
    Refusal, RememberDevice, SecondFactor, StaticDirectory, TotpAuth, TotpAuthBuilder, TotpVerified,
};
use tower_totp::recovery::RecoveryHash;
use tower_totp::seal::SealedSecret;
use tower_totp::store::{
    Activated, Activation, Authenticator, AuthenticatorId, ConsumeOutcome, EnrollmentStore,
    MemoryStore, PendingEnrollment, PendingLimits, PutPending, RecoveryOutcome, RecoveryStore,
    ResealOutcome, ResyncCandidate, RevokeOutcome, StepStore, StoreError, ThrottleStore,
    UserStatus,
};
use tower_totp::throttle::{Attempt, ThrottlePolicy, ThrottleState};
use tower_totp::{ConfirmAs, TotpConfig, TwoFactor, UserId, UserInfo, UserKind};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = BoxBody<Bytes, BoxError>;
pub type AppService = BoxCloneService<Request<Full<Bytes>>, Response<Body>, Infallible>;

/// 2023-11-14T22:13:20Z plus 10 s: inside a 30 s step, never at its edge.
pub const START: u64 = 1_700_000_010;

/// How long one code step lasts with the default parameters.
pub const STEP: Duration = Duration::from_secs(30);

// ------------------------------------------------------------ flaky store

/// The memory store with a switch that makes every call fail.
#[derive(Debug, Clone, Default)]
pub struct FlakyStore {
    inner: MemoryStore,
    down: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
    log: Arc<std::sync::Mutex<Vec<&'static str>>>,
    yielding: Arc<AtomicBool>,
}

impl FlakyStore {
    /// Make every call fail (`true`) or work again (`false`).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Calls made so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The names of the store methods called so far, in order.
    pub fn call_log(&self) -> Vec<&'static str> {
        self.log.lock().unwrap().clone()
    }

    /// Forget the calls logged so far.
    pub fn clear_call_log(&self) {
        self.log.lock().unwrap().clear();
    }

    /// Yield to the runtime before every call, so that requests driven
    /// together (`tokio::join!`) interleave at each store call, as they
    /// would on a busy server.
    pub fn set_yielding(&self, yielding: bool) {
        self.yielding.store(yielding, Ordering::SeqCst);
    }

    async fn check(&self, method: &'static str) -> Result<(), StoreError> {
        if self.yielding.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.log.lock().unwrap().push(method);
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable(std::io::Error::other(
                "store switched off by the test",
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl EnrollmentStore for FlakyStore {
    async fn status(&self, user: &UserId) -> Result<UserStatus, StoreError> {
        self.check("status").await?;
        self.inner.status(user).await
    }

    async fn authenticators(&self, user: &UserId) -> Result<Vec<Authenticator>, StoreError> {
        self.check("authenticators").await?;
        self.inner.authenticators(user).await
    }

    async fn put_pending(
        &self,
        user: &UserId,
        pending: PendingEnrollment,
        limits: PendingLimits,
    ) -> Result<PutPending, StoreError> {
        self.check("put_pending").await?;
        self.inner.put_pending(user, pending, limits).await
    }

    async fn pending(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<Option<PendingEnrollment>, StoreError> {
        self.check("pending").await?;
        self.inner.pending(user, id).await
    }

    async fn remove_pending(&self, user: &UserId, id: &AuthenticatorId) -> Result<(), StoreError> {
        self.check("remove_pending").await?;
        self.inner.remove_pending(user, id).await
    }

    async fn activate_pending(
        &self,
        user: &UserId,
        activation: &Activation,
    ) -> Result<Activated, StoreError> {
        self.check("activate_pending").await?;
        self.inner.activate_pending(user, activation).await
    }

    async fn revoke(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
    ) -> Result<RevokeOutcome, StoreError> {
        self.check("revoke").await?;
        self.inner.revoke(user, id).await
    }

    async fn reseal(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        secret: SealedSecret,
    ) -> Result<ResealOutcome, StoreError> {
        self.check("reseal").await?;
        self.inner.reseal(user, id, secret).await
    }

    async fn reset(&self, user: &UserId, now: UnixTime) -> Result<(), StoreError> {
        self.check("reset").await?;
        self.inner.reset(user, now).await
    }
}

#[async_trait]
impl StepStore for FlakyStore {
    async fn consume_step(
        &self,
        user: &UserId,
        id: &AuthenticatorId,
        step: u64,
        offset: i64,
    ) -> Result<ConsumeOutcome, StoreError> {
        self.check("consume_step").await?;
        self.inner.consume_step(user, id, step, offset).await
    }

    async fn record_miss(
        &self,
        user: &UserId,
        candidate: Option<(AuthenticatorId, ResyncCandidate)>,
    ) -> Result<(), StoreError> {
        self.check("record_miss").await?;
        self.inner.record_miss(user, candidate).await
    }
}

#[async_trait]
impl ThrottleStore for FlakyStore {
    async fn begin_attempt(
        &self,
        user: &UserId,
        now: UnixTime,
        policy: &ThrottlePolicy,
    ) -> Result<Attempt, StoreError> {
        self.check("begin_attempt").await?;
        self.inner.begin_attempt(user, now, policy).await
    }

    async fn clear_throttle(&self, user: &UserId) -> Result<(), StoreError> {
        self.check("clear_throttle").await?;
        self.inner.clear_throttle(user).await
    }

    async fn throttle_state(&self, user: &UserId) -> Result<ThrottleState, StoreError> {
        self.check("throttle_state").await?;
        self.inner.throttle_state(user).await
    }
}

#[async_trait]
impl RecoveryStore for FlakyStore {
    async fn replace_recovery_codes(
        &self,
        user: &UserId,
        hashes: Vec<RecoveryHash>,
    ) -> Result<(), StoreError> {
        self.check("replace_recovery_codes").await?;
        self.inner.replace_recovery_codes(user, hashes).await
    }

    async fn consume_recovery_code(
        &self,
        user: &UserId,
        hash: &RecoveryHash,
    ) -> Result<RecoveryOutcome, StoreError> {
        self.check("consume_recovery_code").await?;
        self.inner.consume_recovery_code(user, hash).await
    }

    async fn recovery_codes_left(&self, user: &UserId) -> Result<usize, StoreError> {
        self.check("recovery_codes_left").await?;
        self.inner.recovery_codes_left(user).await
    }
}

// ------------------------------------------------------------ application

/// The application under test and its handles.
#[derive(Clone)]
pub struct App {
    pub auth: TotpAuth,
    pub clock: ManualClock,
    pub users: StaticDirectory,
    pub store: FlakyStore,
    /// Calls that reached the hello handler (behind the layer).
    pub hits: Arc<AtomicUsize>,
    pub service: AppService,
}

/// How to build an [`App`].
pub struct Setup {
    config: TotpConfig,
    sessions: bool,
    customise: Box<dyn FnOnce(TotpAuthBuilder) -> TotpAuthBuilder>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            config: TotpConfig::new("Acme").unwrap(),
            sessions: true,
            customise: Box::new(|b| b),
        }
    }
}

impl Setup {
    /// Change the `TotpAuth` builder (remember-device, refusal response...).
    pub fn auth(mut self, f: impl FnOnce(TotpAuthBuilder) -> TotpAuthBuilder + 'static) -> Self {
        self.customise = Box::new(f);
        self
    }

    /// Change the engine's configuration.
    pub fn config(mut self, f: impl FnOnce(TotpConfig) -> TotpConfig) -> Self {
        self.config = f(self.config);
        self
    }

    /// Leave `SessionManagerLayer` out: a setup mistake.
    pub fn without_sessions(mut self) -> Self {
        self.sessions = false;
        self
    }

    pub fn build(self) -> App {
        let clock = ManualClock::new(UnixTime::from_secs(START));
        let store = FlakyStore::default();
        let engine = TwoFactor::builder(self.config)
            .clock(clock.clone())
            .store(store.clone())
            .build()
            .unwrap();
        let users = StaticDirectory::default();
        let auth = (self.customise)(TotpAuth::builder(engine, users.clone())).build();
        let hits = Arc::new(AtomicUsize::new(0));
        let router = router(&auth, &hits);
        let service = if self.sessions {
            let sessions =
                SessionManagerLayer::new(SessionMemoryStore::default()).with_secure(false);
            BoxCloneService::new(ServiceBuilder::new().layer(sessions).service(router))
        } else {
            BoxCloneService::new(router)
        };
        App {
            auth,
            clock,
            users,
            store,
            hits,
            service,
        }
    }
}

impl App {
    pub fn new() -> Self {
        Setup::default().build()
    }

    pub fn setup() -> Setup {
        Setup::default()
    }

    /// A JSON client.
    pub fn client(&self) -> Client {
        Client {
            service: self.service.clone(),
            session: None,
            remember: None,
            html: false,
        }
    }

    /// A browser: `Accept: text/html`.
    pub fn browser(&self) -> Client {
        Client {
            html: true,
            ..self.client()
        }
    }

    /// Add a user.
    pub fn user(&self, name: &str, kind: UserKind, require_2fa: bool) -> UserId {
        self.users.insert(
            name,
            UserInfo {
                kind,
                require_2fa,
                display_name: format!("{name} (display)"),
            },
        );
        UserId::new(name)
    }

    /// Enroll `user` through the engine (no HTTP): their phone.
    pub async fn enroll_directly(&self, user: &UserId) -> Phone {
        let engine = self.auth.engine();
        let e = engine
            .start_enrollment(user, user.as_str(), "Phone", None)
            .await
            .unwrap()
            .unwrap();
        let phone = Phone::new(e.secret().clone(), e.params(), self.clock.clone());
        let confirmed = engine
            .confirm_enrollment(user, e.id(), &phone.code(), ConfirmAs::AnotherAuthenticator)
            .await
            .unwrap();
        assert!(confirmed.is_confirmed());
        phone
    }

    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    /// Move on to the next code step (the last code was used).
    pub fn next_step(&self) {
        self.clock.advance(STEP);
    }

    /// The clock, in whole seconds.
    pub fn now_secs(&self) -> u64 {
        self.clock.now().as_secs()
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// `POST /login` and `/logout` outside the layer, `/2fa...` to the
/// endpoints, everything else through `TotpLayer` to hello (and
/// `/sensitive` through a 2-minute step-up as well). `/misplaced` is a
/// setup mistake: a step-up without `TotpLayer`.
fn router(auth: &TotpAuth, hits: &Arc<AtomicUsize>) -> AppService {
    let endpoints = auth.endpoints();
    let hello = {
        let hits = hits.clone();
        service_fn(move |req: Request<Full<Bytes>>| {
            let hits = hits.clone();
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Infallible>(hello(&req))
            }
        })
    };
    let sensitive = ServiceBuilder::new()
        .layer(auth.step_up(Duration::from_secs(120)))
        .service(hello.clone());
    let misplaced = ServiceBuilder::new()
        .layer(auth.step_up(Duration::from_secs(120)))
        .service(hello.clone());
    let inner = service_fn(move |req: Request<Full<Bytes>>| {
        let hello = hello.clone();
        let sensitive = sensitive.clone();
        async move {
            let res = if req.uri().path() == "/sensitive" {
                sensitive.oneshot(req).await?.map(BodyExt::boxed)
            } else {
                hello.oneshot(req).await?.map(boxed_full)
            };
            Ok::<_, Infallible>(res)
        }
    });
    let guarded = ServiceBuilder::new().layer(auth.layer()).service(inner);
    let auth = auth.clone();
    BoxCloneService::new(service_fn(move |req: Request<Full<Bytes>>| {
        let auth = auth.clone();
        let endpoints = endpoints.clone();
        let guarded = guarded.clone();
        let misplaced = misplaced.clone();
        async move {
            let path = req.uri().path();
            let res = if path == "/login" {
                login(&auth, req).await
            } else if path == "/logout" {
                logout(&auth, req).await
            } else if path == "/misplaced" {
                misplaced.oneshot(req).await?.map(BodyExt::boxed)
            } else if path == "/2fa" || path.starts_with("/2fa/") {
                endpoints.oneshot(req).await?.map(boxed_full)
            } else {
                guarded.oneshot(req).await?.map(BodyExt::boxed)
            };
            Ok::<_, Infallible>(res)
        }
    }))
}

fn boxed_full(body: Full<Bytes>) -> Body {
    body.map_err(|never| match never {}).boxed()
}

fn json_reply(status: StatusCode, value: &Value) -> Response<Body> {
    let mut res = Response::new(boxed_full(Full::new(Bytes::from(value.to_string()))));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// What the application behind the layer saw.
fn hello(req: &Request<Full<Bytes>>) -> Response<Full<Bytes>> {
    let verified = req.extensions().get::<TotpVerified>();
    let factor = match req.extensions().get::<SecondFactor>() {
        None => json!({ "factor": "none" }),
        Some(SecondFactor::NotRequired { user, .. }) => {
            json!({ "factor": "not_required", "user": user.as_str() })
        }
        Some(SecondFactor::Verified(v)) => json!({
            "factor": "verified",
            "user": v.user.as_str(),
            "method": format!("{:?}", v.method),
            "verified_at": v.verified_at.as_secs(),
        }),
        Some(other) => json!({ "factor": format!("{other:?}") }),
    };
    let body = json!({
        "path": req.uri().path(),
        "second_factor": factor,
        "totp_verified": verified.map(|v| v.user.as_str().to_owned()),
    });
    let mut res = Response::new(Full::new(Bytes::from(body.to_string())));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

async fn login(auth: &TotpAuth, req: Request<Full<Bytes>>) -> Response<Body> {
    let Some(session) = req.extensions().get::<Session>().cloned() else {
        return json_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({ "error": "no session" }),
        );
    };
    let bytes = req.into_body().collect().await.unwrap().to_bytes();
    let Ok(form) = serde_json::from_slice::<Value>(&bytes) else {
        return json_reply(StatusCode::BAD_REQUEST, &json!({ "error": "json" }));
    };
    let Some(name) = form["username"].as_str() else {
        return json_reply(StatusCode::BAD_REQUEST, &json!({ "error": "username" }));
    };
    // The password check is the application's; every password is right here.
    match auth.password_verified(&session, &UserId::new(name)).await {
        Ok(next) => json_reply(StatusCode::OK, &json!({ "next": next.as_str() })),
        Err(e) => json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "error": e.to_string() }),
        ),
    }
}

async fn logout(auth: &TotpAuth, req: Request<Full<Bytes>>) -> Response<Body> {
    let Some(session) = req.extensions().get::<Session>() else {
        return json_reply(StatusCode::INTERNAL_SERVER_ERROR, &json!({}));
    };
    auth.logout(session).await.unwrap();
    json_reply(StatusCode::OK, &json!({ "next": "login" }))
}

// ------------------------------------------------------------ phone

/// An authenticator app: the secret from the enrollment, and the clock.
#[derive(Clone)]
pub struct Phone {
    hotp: Hotp,
    params: CodeParams,
    clock: ManualClock,
}

impl Phone {
    pub fn new(secret: Secret, params: CodeParams, clock: ManualClock) -> Self {
        Self {
            hotp: Hotp::new(&secret, params),
            params,
            clock,
        }
    }

    /// From the `secret` member of `GET /2fa/enroll`'s JSON.
    pub fn from_enroll_json(v: &Value, clock: &ManualClock) -> Self {
        let secret = Secret::from_base32(v["secret"].as_str().unwrap()).unwrap();
        Self::new(secret, CodeParams::default(), clock.clone())
    }

    /// The step the app is at now.
    pub fn step(&self) -> u64 {
        self.params.step_at(self.clock.now())
    }

    /// The code the app shows at `step`.
    pub fn code_for_step(&self, step: u64) -> String {
        self.hotp.code_string(step)
    }

    /// The code the app shows now.
    pub fn code(&self) -> String {
        self.hotp.code_string(self.step())
    }

    /// The code shown now, typed with a space in the middle (`123 456`).
    pub fn code_spaced(&self) -> String {
        let c = self.code();
        format!("{} {}", &c[..3], &c[3..])
    }

    /// A well-formed code that matches no step near now.
    pub fn wrong_code(&self) -> String {
        let now = self.step();
        let near: Vec<String> = (now.saturating_sub(15)..=now + 15)
            .map(|s| self.hotp.code_string(s))
            .collect();
        (0..1_000_000u32)
            .map(|n| format!("{n:06}"))
            .find(|c| !near.contains(c))
            .unwrap()
    }
}

// ------------------------------------------------------------ client

/// One answer, with its parts (headers, extensions) kept.
pub struct Reply {
    pub parts: http::response::Parts,
    pub body: Bytes,
}

impl Reply {
    pub fn status(&self) -> StatusCode {
        self.parts.status
    }

    pub fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> &str {
        self.header(header::CONTENT_TYPE).unwrap_or("")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

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

    pub fn refusal(&self) -> Option<Refusal> {
        self.parts.extensions.get::<Refusal>().copied()
    }

    /// The problem's `reason` member, checking it is a problem+json.
    pub fn problem_reason(&self) -> String {
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "{}: {}",
            self.status(),
            self.text()
        );
        self.json()["reason"].as_str().unwrap().to_owned()
    }

    /// The `next` member.
    pub fn next(&self) -> String {
        self.json()["next"].as_str().unwrap_or("").to_owned()
    }

    /// What hello reports, asserting it answered.
    pub fn hello_factor(&self) -> String {
        assert_eq!(self.status(), StatusCode::OK, "{}", self.text());
        self.json()["second_factor"]["factor"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// A client that keeps the session cookie (updated on every answer) and the
/// remember-device cookie.
#[derive(Clone)]
pub struct Client {
    service: AppService,
    pub session: Option<String>,
    pub remember: Option<String>,
    html: bool,
}

impl Client {
    pub async fn send(&mut self, mut req: Request<Full<Bytes>>) -> Reply {
        let mut cookies = Vec::new();
        if let Some(id) = &self.session {
            cookies.push(format!("id={id}"));
        }
        if let Some(r) = &self.remember {
            cookies.push(format!("tower_totp_device={r}"));
        }
        let headers = req.headers_mut();
        if !cookies.is_empty() && !headers.contains_key(header::COOKIE) {
            headers.insert(
                header::COOKIE,
                HeaderValue::from_str(&cookies.join("; ")).unwrap(),
            );
        }
        if self.html && !headers.contains_key(header::ACCEPT) {
            headers.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
        }
        let res = self.service.ready().await.unwrap().call(req).await.unwrap();
        let (parts, body) = res.into_parts();
        for value in parts.headers.get_all(header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let first = text.split(';').next().unwrap();
            let (name, value) = first.split_once('=').unwrap();
            let gone = value.is_empty() || text.contains("Max-Age=0");
            let slot = match name {
                "id" => &mut self.session,
                "tower_totp_device" => &mut self.remember,
                _ => continue,
            };
            *slot = (!gone).then(|| value.to_owned());
        }
        let body = body.collect().await.unwrap().to_bytes();
        Reply { parts, body }
    }

    fn request(&self, method: Method, path: &str) -> http::request::Builder {
        Request::builder().method(method).uri(path)
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        let req = self
            .request(Method::GET, path)
            .body(Full::default())
            .unwrap();
        self.send(req).await
    }

    pub async fn post_json(&mut self, path: &str, body: Value) -> Reply {
        let req = self
            .request(Method::POST, path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        self.send(req).await
    }

    pub async fn post_form(&mut self, path: &str, form: &str) -> Reply {
        let req = self
            .request(Method::POST, path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form.to_owned())))
            .unwrap();
        self.send(req).await
    }

    pub async fn post_raw(
        &mut self,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut b = self.request(Method::POST, path);
        if let Some(t) = content_type {
            b = b.header(header::CONTENT_TYPE, t);
        }
        self.send(b.body(Full::new(Bytes::from(body))).unwrap())
            .await
    }

    pub async fn delete(&mut self, path: &str) -> Reply {
        let req = self
            .request(Method::DELETE, path)
            .body(Full::default())
            .unwrap();
        self.send(req).await
    }

    /// `POST /login`: the password is right; answers `next`.
    pub async fn login(&mut self, user: &UserId) -> String {
        let r = self
            .post_json("/login", json!({ "username": user.as_str() }))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text());
        r.next()
    }

    pub async fn logout(&mut self) {
        let r = self.post_json("/logout", json!({})).await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    /// `POST /2fa` with a code (JSON).
    pub async fn submit(&mut self, code: &str) -> Reply {
        self.post_json("/2fa", json!({ "code": code })).await
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
        assert!(self.remember.is_some());
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
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        (phone, codes)
    }
}

/// A remember-device key for tests.
pub fn remember_device(ttl: Duration) -> RememberDevice {
    RememberDevice::new([42; 32], ttl).insecure_cookie()
}
