//! Refusals: every way the layer or the endpoints say no, as a typed reason
//! with its status, name and sentence. The responses that carry them are
//! built in [`respond`](super::respond).

use std::time::Duration;

use http::StatusCode;
use serde::Serialize;

use crate::verify::RejectReason;

/// Where the client should go next: the `next` member of JSON answers and
/// problems, and what [`TotpAuth::password_verified`](super::TotpAuth::password_verified)
/// returns (never [`Next::Login`] there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
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
    /// No password login in this session (from our endpoints; the layer
    /// passes such requests on to the application), or a login that ended:
    /// the user no longer exists, or an administrator reset them.
    NotLoggedIn,
    /// A handler demands [`TotpVerified`](super::TotpVerified) and the
    /// request has no password login at all: the answer of the extractor
    /// (feature `axum`), as the layer would refuse.
    LoginRequired,
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
            Self::CodeRejected(RejectReason::Throttled { .. })
            | Self::TooManyPendingEnrollments => StatusCode::TOO_MANY_REQUESTS,
            Self::TooManyAuthenticators => StatusCode::CONFLICT,
            Self::NotLoggedIn
            | Self::LoginRequired
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
            Self::LoginRequired => "login_required",
            Self::SecondStepRequired => "second_step_required",
            Self::EnrollmentRequired => "enrollment_required",
            Self::StepExpired => "step_expired",
            Self::StepUpRequired => "step_up_required",
            Self::CodeRejected(r) => r.as_str(),
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
            Self::NotLoggedIn | Self::LoginRequired => {
                "Log in with your user name and password first."
            }
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
            Self::CodeRejected(RejectReason::Throttled { .. }) => {
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
                "Server misconfiguration: this route needs TotpLayer (TotpAuth::layer) around it: StepUpLayer and the TotpVerified extractor work only inside it."
            }
            Self::CrossOrigin => {
                "This change came from a page of another site or origin and was refused. Open this site's own page and try again there."
            }
        }
    }

    /// How long the client should wait, for throttling.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::CodeRejected(RejectReason::Throttled { retry_after }) => Some(*retry_after),
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
