//! The axum extractors for [`TotpVerified`] and `Option<TotpVerified>`
//! (feature `axum`).

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use super::extensions::{SecondFactor, TotpVerified};
use super::guarded::Guarded;
use super::negotiate::Format;
use super::pages::{DefaultPages, Pages as _};
use super::refusal::{Next, Refusal, RefusalReason};
use super::respond::{FullResponse, page_response, problem_response};

/// The rejection of the [`TotpVerified`] extractor: the refusal the layer
/// gives, as a response.
///
/// | The request | The answer |
/// |---|---|
/// | no password login | 401 `login_required`, `next: login` (a 303 to the login page for browsers) |
/// | 2FA does not apply, the user has an authenticator | 401 `step_up_required`, `next: totp` (the second screen) |
/// | 2FA does not apply, no authenticator | 401 `enrollment_required`, `next: enroll` |
/// | the route is not inside [`TotpLayer`](super::TotpLayer) | 500 `missing_totp_layer`: a setup mistake, never a pass |
///
/// Answers are the handle's: its refusal response or pages, with the
/// [`Refusal`] in the response extensions.
#[derive(Debug)]
pub struct TotpRejection {
    response: FullResponse,
}

impl TotpRejection {
    /// Why the request was refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        self.response.extensions().get::<Refusal>()
    }

    /// No [`TotpLayer`](super::TotpLayer) ran, so there is no handle to
    /// answer with: the default problem or page.
    fn missing_layer(format: Format) -> Self {
        let refusal = Refusal::new(RefusalReason::MissingTotpLayer, None);
        let response = match format {
            Format::Html => page_response(DefaultPages.message(&refusal), &refusal),
            Format::Json => problem_response(&refusal),
        };
        Self { response }
    }
}

impl IntoResponse for TotpRejection {
    fn into_response(self) -> Response {
        self.response.into_response()
    }
}

/// Taking `TotpVerified` demands the second step whatever the policy says:
/// a handler that asks for it gets it or refuses.
impl<S: Send + Sync> FromRequestParts<S> for TotpVerified {
    type Rejection = TotpRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(verified) = parts.extensions.get::<TotpVerified>() {
            return Ok(verified.clone());
        }
        let format = Format::of(&parts.headers);
        let Some(guarded) = parts.extensions.get::<Guarded>() else {
            return Err(TotpRejection::missing_layer(format));
        };
        let (reason, next) = match parts.extensions.get::<SecondFactor>() {
            Some(SecondFactor::NotRequired { enrolled: true, .. }) => {
                (RefusalReason::StepUpRequired, Next::Totp)
            }
            Some(_) => (RefusalReason::EnrollmentRequired, Next::Enroll),
            None => (RefusalReason::LoginRequired, Next::Login),
        };
        Err(TotpRejection {
            response: guarded.refuse(reason, Some(next), format),
        })
    }
}

/// `Option<TotpVerified>`: `None` when the layer let the request through
/// without a verified second step (no login, or 2FA does not apply); the
/// rejection only when the route is not inside
/// [`TotpLayer`](super::TotpLayer), which would make `None` a lie.
impl<S: Send + Sync> OptionalFromRequestParts<S> for TotpVerified {
    type Rejection = TotpRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if let Some(verified) = parts.extensions.get::<TotpVerified>() {
            return Ok(Some(verified.clone()));
        }
        if parts.extensions.get::<Guarded>().is_some() {
            return Ok(None);
        }
        Err(TotpRejection::missing_layer(Format::of(&parts.headers)))
    }
}
