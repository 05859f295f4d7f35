//! The HTTP side: a tower layer that demands the TOTP step after the
//! application's own password check, the ready `/2fa` endpoints, and the
//! extractor.
//!
//! The shape, outside in: tower-sessions' `SessionManagerLayer`, then
//! [`TotpLayer`], then the application. The application's login handler
//! checks the password and calls [`TotpAuth::password_verified`]; from then
//! on, per request:
//!
//! | Session | Outcome |
//! |---|---|
//! | no password login | passed through untouched (the application's own auth decides) |
//! | 2FA not required by the policy | passed through with [`SecondFactor::NotRequired`] (read with [`SecondFactor::of`]) |
//! | second step done, same enrollment epoch | passed through with [`TotpVerified`] |
//! | required, no authenticator | refused, `next: enroll` (only the endpoints are reachable) |
//! | enrolled, not verified | refused, `next: totp` |
//! | pending longer than 5 minutes | refused, `next: login` |
//! | password login at or before an administrator's reset ([`TotpAuth::reset_user`]) | login forgotten, refused `not_logged_in`, `next: login` |
//! | store failure | 503; the application never sees the request |
//!
//! Refusals are responses: browsers (`Accept: text/html`) get a 303 to the
//! right page, other clients a 401 `application/problem+json` with `next`;
//! throttling is a 429 with `Retry-After`. Each carries a [`Refusal`] in its
//! extensions.
//!
//! A handler that demands the second step whatever the policy says takes
//! [`TotpVerified`] (feature `axum`; `Option<TotpVerified>` to ask without
//! demanding). Without it, the handler answers the layer's refusal
//! (`TotpRejection`): `login_required` with no password login (a redirect
//! to the login page for browsers), `step_up_required` or
//! `enrollment_required` when 2FA does not apply, and `missing_totp_layer`
//! (a 500, never a pass) when the route is not inside the layer.
//!
//! Outermost, [`SameOriginLayer`] (or [`TotpAuth::same_origin`]) refuses
//! state changes sent by another origin's page (403 `cross_origin`), which
//! the session cookie alone would authorise.
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_sessions::{MemoryStore, SessionManagerLayer};
//! use tower_totp::http::{TotpAuth, StaticDirectory};
//! use tower_totp::{TotpConfig, TwoFactor, UserInfo, UserKind};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let engine = TwoFactor::builder(TotpConfig::new("Acme").unwrap()).build().unwrap();
//! let users = StaticDirectory::default();
//! let auth = TotpAuth::builder(engine, users).build();
//!
//! let app = service_fn(|_req: Request<String>| async {
//!     Ok::<_, Infallible>(Response::new(String::from("hello")))
//! });
//! let service = ServiceBuilder::new()
//!     .layer(SessionManagerLayer::new(MemoryStore::default()))
//!     .layer(auth.layer())
//!     .service(app);
//!
//! // No password login in this session: the layer lets the app decide.
//! let res = service.oneshot(Request::new(String::new())).await.unwrap();
//! assert_eq!(res.status(), StatusCode::OK);
//! # });
//! ```

// The handle and what it is built from.
mod auth;
mod directory;
mod language;
pub mod pages;
mod remember;

// What a request carries: our session state, content negotiation, the
// marks the layer leaves for the application.
mod clock_hint;
mod extensions;
mod guarded;
mod negotiate;
mod own_enrollment;
mod session;

// Saying no, and every response.
mod refusal;
mod respond;

// The layers, outside in, and the endpoints.
mod body;
pub mod endpoints;
#[cfg(feature = "axum")]
mod extract;
mod future;
mod layer;
mod same_origin;
mod session_guard;
mod step_up;

pub use auth::{LoginOutcome, RefusalResponder, TotpAuth, TotpAuthBuilder};
pub use body::TotpBody;
pub use clock_hint::{ClockHint, ClockHintRule};
pub use directory::{StaticDirectory, UnknownUser, UserDirectory, UserLookup};
pub use endpoints::Endpoints;
pub use extensions::{SecondFactor, StepMethod, TotpVerified};
#[cfg(feature = "axum")]
pub use extract::TotpRejection;
pub use future::ResponseFuture;
pub use language::{Languages, Strings};
pub use layer::{Totp, TotpLayer};
pub use negotiate::{Format, body_is_json};
pub use refusal::{Next, Refusal, RefusalReason};
pub use remember::RememberDevice;
pub use respond::{problem_response, redirect_response};
pub use same_origin::{SameOrigin, SameOriginFuture, SameOriginLayer};
pub use session_guard::{SessionGuard, SessionGuardFuture, SessionGuardLayer};
pub use step_up::{StepUp, StepUpLayer};
