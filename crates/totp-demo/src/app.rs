//! The router (only assembled here; the handlers' shared state is in
//! [`crate::state`]): public routes, the library's `/2fa` endpoints, the routes
//! behind the TOTP layer (the admin changes behind a recent second step as
//! well), sessions around everything but `/health` (and, with Redis, the
//! refresh of admin changes other instances made), and a body limit and
//! the refusal of cross-origin state changes around everything.

use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post, put};
use http::{HeaderValue, header};
use tower_http::limit::RequestBodyLimitLayer;
use tower_sessions::cookie::{SameSite, time};
use tower_sessions::{Expiry, MemoryStore, SessionManagerLayer, SessionStore};
use tower_totp_postgres::PostgresSessionStore;
use tower_totp_redis::RedisSessionStore;

use crate::live::{self, Live};
use crate::respond::{Failure, Format};
use crate::state::AppState;
use crate::store_timeout::Bounded;
use crate::{admin, api, home, login, scrape};

/// The largest request body any route reads.
pub const BODY_LIMIT: usize = 16 * 1024;

/// How recent the administrator's second step must be for a change of the
/// switches or of a user: "sudo mode", so that a session left open or
/// stolen cannot switch 2FA off without the phone.
pub(crate) const ADMIN_STEP_UP: Duration = Duration::from_secs(15 * 60);

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "totp_demo_session";

/// A session unused this long is over.
const SESSION_IDLE_HOURS: i64 = 8;

/// Where sessions live.
#[derive(Debug)]
pub(crate) enum Sessions {
    /// In this process: a restart logs everybody out.
    Memory,
    /// In Redis, shared by every instance on the same server and prefix;
    /// each call bounded by the store timeout.
    Redis(Bounded<RedisSessionStore>),
    /// In PostgreSQL, shared by every instance on the same database; each
    /// call bounded by the store timeout.
    Postgres(Bounded<PostgresSessionStore>),
}

/// One instance, or one of several sharing Redis and the SQLite file, or
/// PostgreSQL.
#[derive(Debug)]
pub(crate) struct Wiring {
    pub(crate) sessions: Sessions,
    /// With several instances: re-read admin changes before each request.
    pub(crate) live: Option<Live>,
    pub(crate) secure_cookie: bool,
    /// `GET /api/me` without the TOTP layer (a load run's baseline).
    #[cfg(feature = "load-baseline")]
    pub(crate) load_baseline: bool,
}

pub(crate) fn router(state: AppState, wiring: Wiring) -> Router {
    // The changes (PUT for scripts, POST for the forms) need a recent
    // second step; reading the admin pages does not.
    let sudo =
        |handler: MethodRouter<AppState>| handler.route_layer(state.auth.step_up(ADMIN_STEP_UP));
    let protected = Router::new().route("/", get(home::home));
    #[cfg(feature = "load-baseline")]
    let protected = if wiring.load_baseline {
        protected
    } else {
        protected.route("/api/me", get(api::me))
    };
    #[cfg(not(feature = "load-baseline"))]
    let protected = protected.route("/api/me", get(api::me));
    let protected = protected
        .route("/api/me/activity", get(api::activity))
        .route("/admin", get(admin::index))
        .route(
            "/admin/settings",
            get(admin::settings).merge(sudo(
                put(admin::update_settings).post(admin::update_settings),
            )),
        )
        .route("/admin/users", get(admin::users))
        .route(
            "/admin/users/{username}",
            get(admin::user).merge(sudo(put(admin::update_user).post(admin::update_user))),
        )
        .route_layer(state.auth.layer());

    // Outside the sessions: a load balancer's probe needs none.
    let health = get(api::health).with_state(state.clone());
    // Outside the sessions too: a scraper has none (loopback or a token).
    let metrics = get(scrape::metrics).with_state(state.clone());
    let guard = state.auth.session_guard();
    let same_origin = state.auth.same_origin();
    let with_sessions = Router::new();
    // The load run's baseline: the same route and answer, outside the
    // layer (the handler reads the session's user itself).
    #[cfg(feature = "load-baseline")]
    let with_sessions = if wiring.load_baseline {
        with_sessions.route("/api/me", get(api::me_without_totp_layer))
    } else {
        with_sessions
    };
    let with_sessions = with_sessions
        .route("/login", get(login::page).post(login::submit))
        .route("/logout", post(login::logout))
        .nest_service(state.auth.prefix(), state.auth.endpoints())
        .merge(protected)
        .fallback(not_found)
        .with_state(state);
    // In memory, a restart logs everybody out, which a single demo can
    // afford (users, switches and authenticators are in SQLite). In Redis
    // or PostgreSQL, every instance sees every session: a login started on
    // one finishes on another, a logout anywhere is a logout everywhere.
    let with_sessions = match wiring.sessions {
        Sessions::Memory => {
            with_sessions.layer(session_layer(MemoryStore::default(), wiring.secure_cookie))
        }
        // Redis or PostgreSQL can fail to save a session after a handler
        // answered, and tower-sessions then answers a bare 500: the guard
        // outside it makes that a 503 problem or page. (The memory store
        // cannot fail.)
        Sessions::Redis(store) => with_sessions
            .layer(session_layer(store, wiring.secure_cookie))
            .layer(guard),
        Sessions::Postgres(store) => with_sessions
            .layer(session_layer(store, wiring.secure_cookie))
            .layer(guard),
    };
    // Outside the sessions and the TOTP layer: both see the fresh copies.
    let with_sessions = match wiring.live {
        Some(live) => with_sessions.layer(middleware::from_fn_with_state(live, live::refresh)),
        None => with_sessions,
    };

    // Outside in: the security headers on every answer, a state change
    // sent by another origin's page refused before anything reads it or
    // its session, a body declared too large refused as a problem or a
    // page, then tower-http's limit for bodies that grow too large while
    // read (the handlers answer that). Every route answers a method it
    // does not take with a 405 problem or page, not axum's empty one.
    Router::new()
        .route("/health", health)
        .route("/health/live", get(api::live))
        .route("/metrics", metrics)
        .merge(with_sessions)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(middleware::from_fn(refuse_declared_too_large))
        .layer(same_origin)
        .layer(middleware::from_fn(security_headers))
}

/// The session layer over `store`. A session unused for 8 hours is over.
/// The cookie is HttpOnly and SameSite=Lax (a form posted from another
/// site carries no session: that is the CSRF defence of these forms).
/// `Secure` is off by default because the demo serves plain HTTP on
/// loopback: a browser would not send a Secure cookie back over
/// http://127.0.0.1, and login would silently fail. Behind a TLS proxy,
/// run with --secure-cookie.
fn session_layer<S: SessionStore + Clone>(store: S, secure_cookie: bool) -> SessionManagerLayer<S> {
    SessionManagerLayer::new(store)
        .with_name(SESSION_COOKIE)
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(
            SESSION_IDLE_HOURS,
        )))
        .with_secure(secure_cookie)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
}

async fn not_found(headers: http::HeaderMap) -> Response {
    Failure::not_found(Format::of(&headers)).into_response()
}

async fn method_not_allowed(headers: http::HeaderMap) -> Response {
    Failure::method_not_allowed(Format::of(&headers)).into_response()
}

/// A `Content-Length` over [`BODY_LIMIT`]: refused before anything reads
/// the body, as tower-http's limit would, but as a problem or a page
/// rather than its plain text.
async fn refuse_declared_too_large(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Failure::payload_too_large(Format::of(req.headers())).into_response();
    }
    next.run(req).await
}

/// Headers for every answer: no framing (clickjacking of the admin
/// switches), no MIME sniffing, no referrer to other origins, and a content
/// security policy that fits pages without scripts.
///
/// The referrer policy is `same-origin`, not `no-referrer`: under
/// `no-referrer` browsers send `Origin: null` with the pages' own form
/// posts, and the same-origin layer refuses those.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    res
}
