//! Refusals: every way the layer or the endpoints say no, as a typed reason
//! and a response (RFC 9457 problem+json, a redirect, or a page).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;

use crate::verify::RejectReason;

/// Where the client should go next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Next {
    /// Log in with the password (again).
    Login,
    /// Enter a code on the second screen.
    Totp,
    /// Enrol an authenticator first.
    Enroll,
    /// Nothing more: logged in.
    Done,
}

impl Next {
    /// The name used in JSON (`login`, `totp`, `enroll`, `done`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Totp => "totp",
            Self::Enroll => "enroll",
            Self::Done => "done",
        }
    }
}

/// Why a request was refused. Put into the response extensions of every
/// refusal, so outer layers and tests can tell refusals apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusalReason {
    /// No password login in this session (only from our endpoints; the layer
    /// passes such requests on to the application).
    NotLoggedIn,
    /// The second step is required and not done.
    SecondStepRequired,
    /// The user must enrol an authenticator first.
    EnrollmentRequired,
    /// The pending second step took too long; log in again.
    StepExpired,
    /// This route wants a second step done more recently.
    StepUpRequired,
    /// A code or recovery code was refused.
    CodeRejected(RejectReason),
    /// Locked out by the throttle.
    Throttled {
        /// How long until the next attempt.
        retry_after: Duration,
    },
    /// The user has as many pending enrollments (one per session that
    /// started one) as allowed; they expire after the pending time.
    TooManyPendingEnrollments,
    /// The user has as many active authenticators as allowed.
    TooManyAuthenticators,
    /// The store (or the session store) failed; nothing was let through.
    StoreUnavailable,
    /// The request could not be understood.
    BadRequest(&'static str),
    /// The body is larger than the endpoints accept.
    PayloadTooLarge,
    /// The body is neither a form nor JSON.
    UnsupportedMediaType,
    /// No such endpoint.
    NotFound,
    /// The endpoint exists, not with this method.
    MethodNotAllowed,
    /// `SessionManagerLayer` is missing around the layer: a setup mistake.
    MissingSessionLayer,
    /// [`StepUpLayer`](super::StepUpLayer) is not inside
    /// [`TotpLayer`](super::TotpLayer): a setup mistake.
    MissingTotpLayer,
    /// A state change sent by a page of another origin (see
    /// [`SameOriginLayer`](super::SameOriginLayer)).
    CrossOrigin,
}

impl RefusalReason {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Throttled { .. }
            | Self::CodeRejected(RejectReason::Throttled { .. })
            | Self::TooManyPendingEnrollments => StatusCode::TOO_MANY_REQUESTS,
            Self::TooManyAuthenticators => StatusCode::CONFLICT,
            Self::NotLoggedIn
            | Self::SecondStepRequired
            | Self::EnrollmentRequired
            | Self::StepExpired
            | Self::StepUpRequired
            | Self::CodeRejected(_) => StatusCode::UNAUTHORIZED,
            Self::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::MissingSessionLayer | Self::MissingTotpLayer => StatusCode::INTERNAL_SERVER_ERROR,
            Self::CrossOrigin => StatusCode::FORBIDDEN,
        }
    }

    /// A short machine-readable name, the problem's `reason` member.
    pub fn slug(&self) -> &'static str {
        match self {
            Self::NotLoggedIn => "not_logged_in",
            Self::SecondStepRequired => "second_step_required",
            Self::EnrollmentRequired => "enrollment_required",
            Self::StepExpired => "step_expired",
            Self::StepUpRequired => "step_up_required",
            Self::CodeRejected(r) => r.as_str(),
            Self::Throttled { .. } => "throttled",
            Self::TooManyPendingEnrollments => "too_many_pending_enrollments",
            Self::TooManyAuthenticators => "too_many_authenticators",
            Self::StoreUnavailable => "store_unavailable",
            Self::BadRequest(_) => "bad_request",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::MissingSessionLayer => "missing_session_layer",
            Self::MissingTotpLayer => "missing_totp_layer",
            Self::CrossOrigin => "cross_origin",
        }
    }

    /// A sentence for people. Never contains a code or a secret.
    pub fn detail(&self) -> &'static str {
        match self {
            Self::NotLoggedIn => "Log in with your user name and password first.",
            Self::SecondStepRequired => "Enter the code from your authenticator app.",
            Self::EnrollmentRequired => {
                "Two-factor authentication is required: sync an authenticator app first."
            }
            Self::StepExpired => "The login took too long. Log in again.",
            Self::StepUpRequired => "Confirm it is you: enter a code from your authenticator app.",
            Self::CodeRejected(RejectReason::Malformed) => {
                "That is not a code: type the digits shown in your app (spaces and dashes are fine)."
            }
            Self::CodeRejected(RejectReason::Replayed) => {
                "That code was already used. Wait for the next code in your app."
            }
            Self::CodeRejected(RejectReason::NotEnrolled) => "No authenticator app is set up.",
            Self::CodeRejected(RejectReason::NoPendingEnrollment) => {
                "The setup expired. Start again to get a new QR code."
            }
            Self::CodeRejected(RejectReason::Throttled { .. }) | Self::Throttled { .. } => {
                "Too many attempts. Wait a moment, then try again."
            }
            Self::CodeRejected(_) => "That code is not valid. Check the app and try again.",
            Self::TooManyPendingEnrollments => {
                "Too many app setups are waiting for their first code. Finish one, or wait a few minutes and start again."
            }
            Self::TooManyAuthenticators => {
                "You have as many authenticator apps as allowed. Remove one before adding another."
            }
            Self::StoreUnavailable => {
                "Two-factor authentication is unavailable right now. Try again shortly."
            }
            Self::BadRequest(what) => what,
            Self::PayloadTooLarge => "The request body is too large.",
            Self::UnsupportedMediaType => {
                "Send application/x-www-form-urlencoded or application/json."
            }
            Self::NotFound => "No such page.",
            Self::MethodNotAllowed => "This page does not take that method.",
            Self::MissingSessionLayer => {
                "Server misconfiguration: tower_sessions::SessionManagerLayer must wrap TotpLayer and the 2FA endpoints."
            }
            Self::MissingTotpLayer => {
                "Server misconfiguration: StepUpLayer must be inside TotpLayer (TotpAuth::layer)."
            }
            Self::CrossOrigin => {
                "This change came from a page of another site or origin and was refused. Open this site's own page and try again there."
            }
        }
    }

    /// How long the client should wait, for throttling.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after }
            | Self::CodeRejected(RejectReason::Throttled { retry_after }) => Some(*retry_after),
            _ => None,
        }
    }
}

/// A refusal: the reason and where to go next. Found in the response
/// extensions of every refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub reason: RefusalReason,
    /// Where the client should go next, if anywhere.
    pub next: Option<Next>,
}

impl Refusal {
    /// A refusal for `reason` pointing to `next`.
    pub fn new(reason: RefusalReason, next: Option<Next>) -> Self {
        Self { reason, next }
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<Next>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
}

/// Seconds for a `Retry-After` header: rounded up, at least 1.
pub(crate) fn retry_after_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

/// The RFC 9457 problem+json response for `refusal`.
pub fn problem_response(refusal: &Refusal) -> Response<Full<Bytes>> {
    let status = refusal.reason.status();
    let problem = Problem {
        kind: format!("urn:tower-totp:problem:{}", refusal.reason.slug()),
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail: refusal.reason.detail(),
        reason: refusal.reason.slug(),
        next: refusal.next,
        retry_after: refusal.reason.retry_after().map(retry_after_secs),
    };
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    finish(&mut res, refusal);
    res
}

/// A 303 See Other to `location`, carrying the refusal.
pub fn redirect_response(location: &str, refusal: &Refusal) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    finish(&mut res, refusal);
    res
}

/// An HTML page with `status`, carrying the refusal.
pub(crate) fn page_response(html: String, refusal: &Refusal) -> Response<Full<Bytes>> {
    let mut res = html_response(refusal.reason.status(), html);
    finish(&mut res, refusal);
    res
}

pub(crate) fn html_response(status: StatusCode, html: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(html)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    no_store(res.headers_mut());
    res
}

/// Responses about login state must never be cached.
pub(crate) fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn finish(res: &mut Response<Full<Bytes>>, refusal: &Refusal) {
    if let Some(d) = refusal.reason.retry_after() {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs(d)));
    }
    no_store(res.headers_mut());
    res.extensions_mut().insert(*refusal);
}

/// Whether the client is a browser that wants pages: it accepts
/// `text/html` and did not send JSON (a script that sends JSON wants JSON
/// back, whatever its `Accept` header lists). The layer and the endpoints
/// decide alike; an application's own pages can call it to answer the
/// same client the same way.
pub fn wants_html(headers: &HeaderMap) -> bool {
    let accepts_html = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"));
    accepts_html && !crate::http::endpoints::body_is_json(headers)
}
