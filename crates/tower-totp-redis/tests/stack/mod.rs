//! Complete in-process service stacks for the tests across instances.
//!
//! Each [`Instance`] is what one process of a service would run:
//! [`TotpAuth::session_guard`] and `SessionManagerLayer` over a
//! [`RedisSessionStore`], `POST /login` calling
//! [`TotpAuth::password_verified`], `/2fa` to [`TotpAuth::endpoints`], and
//! everything else through [`TotpAuth::layer`] to a hello handler that
//! counts its calls. Each has its own `TwoFactor` engine over its own
//! [`RedisStore`] connection. Instances built from one [`Shared`] act as one
//! service behind a load balancer: the same Redis and prefixes, the same
//! sealing key (each instance builds its own `Keyring` from the same bytes,
//! as each process would load it from a secret store), the same user
//! directory and the same [`ManualClock`].
//!
//! A [`Client`] keeps the session cookie like a browser and sends each
//! request to whichever instance the test names: the load balancer. No
//! sockets, no sleeps; every request is bounded by [`BOUND`].

#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
use tower_sessions::{Session, SessionManagerLayer};
use tower_totp::clock::{Clock, ManualClock, UnixTime};
use tower_totp::code::{CodeParams, Hotp, Secret};
use tower_totp::http::{SecondFactor, StaticDirectory, TotpAuth};
use tower_totp::seal::{Keyring, SealingKey};
use tower_totp::{ConfirmAs, TotpConfig, TwoFactor, UserId, UserInfo, UserKind};
use tower_totp_redis::redis::aio::ConnectionManager;
use tower_totp_redis::{RedisSessionStore, RedisStore};

use crate::common::{RedisServer, fresh_prefix};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = BoxBody<Bytes, BoxError>;
pub type AppService = BoxCloneSyncService<Request<Full<Bytes>>, Response<Body>, Infallible>;

/// 2023-11-14T22:13:20Z plus 10 s: inside a 30 s step, never at its edge.
pub const START: u64 = 1_700_000_010;

/// How long one code step lasts with the default parameters.
pub const STEP: Duration = Duration::from_secs(30);

/// No request may take longer than this, whatever Redis does: the
/// connection settings promise about three seconds at worst.
pub const BOUND: Duration = Duration::from_secs(10);

/// The sealing key every instance loads.
const SEALING_KEY: [u8; 32] = [7; 32];

/// What the instances of one service share.
#[derive(Clone)]
pub struct Shared {
    pub clock: ManualClock,
    pub users: StaticDirectory,
    config: TotpConfig,
    totp_prefix: String,
    session_prefix: String,
}

impl Shared {
    /// One service with `config`, under fresh key prefixes (tests sharing a
    /// server never see each other's keys).
    pub fn new(config: TotpConfig) -> Self {
        Self {
            clock: ManualClock::new(UnixTime::from_secs(START)),
            users: StaticDirectory::default(),
            config,
            totp_prefix: fresh_prefix(),
            session_prefix: format!("{}session:", fresh_prefix()),
        }
    }

    /// The default configuration.
    pub fn standard() -> Self {
        Self::new(TotpConfig::new("Acme").expect("config"))
    }

    /// An internal user whom the default policy asks for a code.
    pub fn user(&self, name: &str) -> UserId {
        self.users.insert(
            name,
            UserInfo {
                kind: UserKind::Internal,
                require_2fa: true,
                display_name: name.to_owned(),
            },
        );
        UserId::new(name)
    }

    /// An instance with a connection of its own to `server`, its sessions
    /// on the same connection (one Redis client per process).
    pub async fn instance(&self, name: &'static str, server: &RedisServer) -> Instance {
        let conn = server.manager().await;
        self.instance_on(name, conn.clone(), conn)
    }

    /// An instance whose TOTP store uses `store_conn` and whose sessions
    /// use `session_conn`.
    pub fn instance_on(
        &self,
        name: &'static str,
        store_conn: ConnectionManager,
        session_conn: ConnectionManager,
    ) -> Instance {
        let store = RedisStore::new(store_conn).with_prefix(self.totp_prefix.clone());
        let sessions =
            RedisSessionStore::new(session_conn).with_prefix(self.session_prefix.clone());
        let keyring = Keyring::new(1, SealingKey::from_bytes(SEALING_KEY));
        let engine = TwoFactor::builder(self.config.clone())
            .clock(self.clock.clone())
            .store(store.clone())
            .keyring(keyring)
            .build()
            .expect("engine");
        let auth = TotpAuth::builder(engine, self.users.clone()).build();
        let hits = Arc::new(AtomicUsize::new(0));
        // Outside in: the session guard (a failed session save is a 503,
        // not tower-sessions' bare 500), the sessions, the routes.
        let service = BoxCloneSyncService::new(
            ServiceBuilder::new()
                .map_response(|res: Response<_>| res.map(BodyExt::boxed))
                .layer(auth.session_guard())
                .layer(SessionManagerLayer::new(sessions).with_secure(false))
                .service(router(&auth, &hits)),
        );
        Instance {
            name,
            auth,
            store,
            hits,
            service,
        }
    }

    /// Move the shared clock on by one code step.
    pub fn next_step(&self) {
        self.clock.advance(STEP);
    }
}

/// One instance of the service.
#[derive(Clone)]
pub struct Instance {
    pub name: &'static str,
    pub auth: TotpAuth,
    /// Its store, on its own connection.
    pub store: RedisStore,
    hits: Arc<AtomicUsize>,
    service: AppService,
}

impl Instance {
    /// Calls that reached the hello handler behind the layer.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Enrol `user` through this instance's engine (no HTTP), then move the
    /// clock to the next step so the confirming code is not the next one
    /// asked for: the user's phone.
    pub async fn enroll(&self, user: &UserId, clock: &ManualClock) -> Phone {
        let engine = self.auth.engine();
        let e = engine
            .start_enrollment(user, user.as_str(), "Phone", None)
            .await
            .expect("start enrollment")
            .expect("under the caps");
        let phone = Phone::new(e.secret(), e.params(), clock.clone());
        let confirmed = engine
            .confirm_enrollment(user, e.id(), &phone.code(), ConfirmAs::FirstAuthenticator)
            .await
            .expect("confirm enrollment");
        assert!(confirmed.is_confirmed(), "enrollment not confirmed");
        clock.advance(STEP);
        phone
    }
}

/// `POST /login` outside the layer, `/2fa...` to the endpoints, everything
/// else through `TotpLayer` to hello.
fn router(auth: &TotpAuth, hits: &Arc<AtomicUsize>) -> AppService {
    let endpoints = auth.endpoints();
    let hello = {
        let hits = Arc::clone(hits);
        service_fn(move |req: Request<Full<Bytes>>| {
            let hits = Arc::clone(&hits);
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Infallible>(hello(&req))
            }
        })
    };
    let guarded = ServiceBuilder::new().layer(auth.layer()).service(hello);
    let auth = auth.clone();
    BoxCloneSyncService::new(service_fn(move |req: Request<Full<Bytes>>| {
        let auth = auth.clone();
        let endpoints = endpoints.clone();
        let guarded = guarded.clone();
        async move {
            let path = req.uri().path();
            let res = if path == "/login" {
                login(&auth, req).await
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
    let factor = match req.extensions().get::<SecondFactor>() {
        None => "none",
        Some(SecondFactor::NotRequired { .. }) => "not_required",
        Some(SecondFactor::Verified(_)) => "verified",
        Some(_) => "other",
    };
    let body = json!({ "factor": factor });
    let mut res = Response::new(Full::new(Bytes::from(body.to_string())));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// The application's login: every password is right here.
async fn login(auth: &TotpAuth, req: Request<Full<Bytes>>) -> Response<Body> {
    let Some(session) = req.extensions().get::<Session>().cloned() else {
        return json_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({ "error": "no session" }),
        );
    };
    let Ok(bytes) = req.into_body().collect().await.map(|b| b.to_bytes());
    let Ok(form) = serde_json::from_slice::<Value>(&bytes) else {
        return json_reply(StatusCode::BAD_REQUEST, &json!({ "error": "json" }));
    };
    let Some(name) = form["username"].as_str() else {
        return json_reply(StatusCode::BAD_REQUEST, &json!({ "error": "username" }));
    };
    match auth.password_verified(&session, &UserId::new(name)).await {
        Ok(next) => json_reply(StatusCode::OK, &json!({ "next": next.as_str() })),
        Err(e) => json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "error": e.to_string() }),
        ),
    }
}

// ------------------------------------------------------------ phone

/// An authenticator app, possibly with a clock `offset` steps off.
#[derive(Clone)]
pub struct Phone {
    hotp: Hotp,
    params: CodeParams,
    clock: ManualClock,
    offset: i64,
}

impl Phone {
    /// An app holding `secret`, on the shared clock.
    pub fn new(secret: &Secret, params: CodeParams, clock: ManualClock) -> Self {
        Self {
            hotp: Hotp::new(secret, params),
            params,
            clock,
            offset: 0,
        }
    }

    /// The same phone with its clock `steps` steps ahead of the server's.
    #[must_use]
    pub fn drifted(&self, steps: i64) -> Self {
        Self {
            offset: steps,
            ..self.clone()
        }
    }

    fn step(&self) -> u64 {
        self.params
            .step_at(self.clock.now())
            .checked_add_signed(self.offset)
            .expect("step in range")
    }

    /// The code the app shows now.
    pub fn code(&self) -> String {
        self.hotp.code_string(self.step())
    }

    /// A well-formed code that matches no step within 15 of the phone's.
    pub fn wrong_code(&self) -> String {
        let now = self.step();
        let near: Vec<String> = (now - 15..=now + 15)
            .map(|s| self.hotp.code_string(s))
            .collect();
        (0..1_000_000u32)
            .map(|n| format!("{n:06}"))
            .find(|c| !near.contains(c))
            .expect("a wrong code")
    }
}

// ------------------------------------------------------------ client

/// One answer.
#[derive(Debug)]
pub struct Reply {
    pub parts: http::response::Parts,
    pub body: Bytes,
    /// How long the instance took to answer.
    pub took: Duration,
}

impl Reply {
    pub fn status(&self) -> StatusCode {
        self.parts.status
    }

    pub fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status(), self.text()))
    }

    /// The `next` member of a JSON answer.
    pub fn next(&self) -> String {
        self.json()["next"].as_str().unwrap_or("").to_owned()
    }

    /// The problem's `reason` member, checking it is a problem+json.
    pub fn reason(&self) -> String {
        assert_eq!(
            self.header(header::CONTENT_TYPE),
            Some("application/problem+json"),
            "{}: {}",
            self.status(),
            self.text()
        );
        self.json()["reason"].as_str().unwrap_or("").to_owned()
    }

    /// What hello reported, asserting it answered.
    pub fn factor(&self) -> String {
        assert_eq!(self.status(), StatusCode::OK, "{}", self.text());
        self.json()["factor"].as_str().unwrap_or("").to_owned()
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

/// A browser's cookie jar (the session cookie only), sent to whichever
/// instance each request names.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub session: Option<String>,
}

impl Client {
    pub fn new() -> Self {
        Self::default()
    }

    /// Send `req` to `to`, with the session cookie; keep the cookie the
    /// answer sets.
    ///
    /// # Panics
    ///
    /// If the instance takes longer than [`BOUND`].
    pub async fn send(&mut self, to: &Instance, mut req: Request<Full<Bytes>>) -> Reply {
        if let Some(id) = &self.session {
            let cookie = HeaderValue::from_str(&format!("id={id}")).expect("cookie");
            req.headers_mut().insert(header::COOKIE, cookie);
        }
        let mut service = to.service.clone();
        let start = Instant::now();
        let call = async move {
            let res = service.ready().await?.call(req).await?;
            let (parts, body) = res.into_parts();
            let body = body.collect().await.map(|b| b.to_bytes());
            Ok::<_, Infallible>((parts, body))
        };
        let Ok((parts, body)) = tokio::time::timeout(BOUND, call)
            .await
            .unwrap_or_else(|_| panic!("instance {} hung for more than {BOUND:?}", to.name));
        let took = start.elapsed();
        for value in parts.headers.get_all(header::SET_COOKIE) {
            let text = value.to_str().expect("cookie text");
            let first = text.split(';').next().unwrap_or("");
            if let Some(id) = first.strip_prefix("id=") {
                let gone = id.is_empty() || text.contains("Max-Age=0");
                self.session = (!gone).then(|| id.to_owned());
            }
        }
        let body = body.expect("answer body");
        Reply { parts, body, took }
    }

    pub async fn post_json(&mut self, to: &Instance, path: &str, body: &Value) -> Reply {
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("request");
        self.send(to, req).await
    }

    pub async fn get(&mut self, to: &Instance, path: &str) -> Reply {
        let req = Request::builder()
            .uri(path)
            .body(Full::default())
            .expect("request");
        self.send(to, req).await
    }

    /// `POST /login` on `to`.
    pub async fn try_login(&mut self, to: &Instance, user: &UserId) -> Reply {
        self.post_json(to, "/login", &json!({ "username": user.as_str() }))
            .await
    }

    /// `POST /login` on `to`, asserting a 200: what comes next.
    pub async fn login(&mut self, to: &Instance, user: &UserId) -> String {
        let r = self.try_login(to, user).await;
        assert_eq!(r.status(), StatusCode::OK, "login: {}", r.text());
        r.next()
    }

    /// `POST /2fa` with `code` on `to`.
    pub async fn submit(&mut self, to: &Instance, code: &str) -> Reply {
        self.post_json(to, "/2fa", &json!({ "code": code })).await
    }

    /// `GET /hello` on `to`.
    pub async fn hello(&mut self, to: &Instance) -> Reply {
        self.get(to, "/hello").await
    }
}
