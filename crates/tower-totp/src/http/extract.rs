//! The axum extractors for [`TotpVerified`], `Option<TotpVerified>` and
//! `Option<SecondFactor>` (feature `axum`).

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use super::extensions::{SecondFactor, TotpVerified};
use super::guarded::{Guarded, layer_verified};
use super::negotiate::Format;
use super::refusal::{Next, Refusal, RefusalReason};
use super::respond::{FullResponse, default_refusal};

/// The rejection of the [`TotpVerified`] extractor: the refusal the layer
/// gives, as a response.
///
/// | The request | The answer |
/// |---|---|
/// | no password login | 401 `login_required`, `next: login` (a 303 to the login page for browsers) |
/// | 2FA does not apply, the user has an authenticator, no code given in this session | 401 `step_up_required`, `next: totp` (the second screen, whose code then satisfies it) |
/// | 2FA does not apply, no authenticator | 401 `enrollment_required`, `next: enroll` |
/// | in the enrollment grace period ([`SecondFactor::Grace`]) | 401 `enrollment_required`, `next: enroll` |
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
        Self {
            response: default_refusal(&refusal, format),
        }
    }
}

impl IntoResponse for TotpRejection {
    fn into_response(self) -> Response {
        self.response.into_response()
    }
}

/// The second step this request's session did, whatever the policy asks:
/// the layer's [`TotpVerified`], or, where 2FA does not apply, the step the
/// session did all the same (a code on the second screen, which a refusal
/// below sends the user to).
fn step_done(parts: &Parts) -> Option<TotpVerified> {
    if let Some(verified) = layer_verified(&parts.extensions) {
        return Some(verified.clone());
    }
    match parts.extensions.get::<Guarded>()?.factor()? {
        SecondFactor::Verified(v) => Some(v.clone()),
        SecondFactor::NotRequired {
            user,
            last_step: Some((method, at)),
            ..
        } => Some(TotpVerified {
            user: user.clone(),
            method: *method,
            verified_at: *at,
        }),
        _ => None,
    }
}

/// Taking `TotpVerified` demands the second step whatever the policy says:
/// a handler that asks for it gets it or refuses.
impl<S: Send + Sync> FromRequestParts<S> for TotpVerified {
    type Rejection = TotpRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(verified) = step_done(parts) {
            return Ok(verified);
        }
        let format = Format::of(&parts.headers);
        let Some(guarded) = parts.extensions.get::<Guarded>() else {
            return Err(TotpRejection::missing_layer(format));
        };
        let (reason, next) = match guarded.factor() {
            None => (RefusalReason::LoginRequired, Next::Login),
            Some(SecondFactor::NotRequired { enrolled: true, .. }) => {
                (RefusalReason::StepUpRequired, Next::Totp)
            }
            Some(SecondFactor::NotRequired {
                enrolled: false, ..
            }) => (RefusalReason::EnrollmentRequired, Next::Enroll),
            // The grace period lets a password login in without a second
            // factor; a handler that demands one does not get it.
            Some(SecondFactor::Grace { .. }) => (RefusalReason::EnrollmentRequired, Next::Enroll),
            // A factor this extractor does not know: fail closed.
            Some(_) => return Err(TotpRejection::missing_layer(format)),
        };
        Err(TotpRejection {
            response: guarded.refuse(reason, Some(next), format),
        })
    }
}

/// `Option<TotpVerified>`: `None` when the layer let the request through
/// without a second step done (no login, or 2FA does not apply and no code
/// was given in this session); the rejection only when the route is not
/// inside [`TotpLayer`](super::TotpLayer), which would make `None` a lie.
impl<S: Send + Sync> OptionalFromRequestParts<S> for TotpVerified {
    type Rejection = TotpRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if let Some(verified) = step_done(parts) {
            return Ok(Some(verified));
        }
        if parts.extensions.get::<Guarded>().is_some() {
            return Ok(None);
        }
        Err(TotpRejection::missing_layer(Format::of(&parts.headers)))
    }
}

/// `Option<SecondFactor>`: what [`SecondFactor::of`] reads, `None` without
/// a password login; the rejection only when the route is not inside
/// [`TotpLayer`](super::TotpLayer), which would make `None` a lie.
impl<S: Send + Sync> OptionalFromRequestParts<S> for SecondFactor {
    type Rejection = TotpRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let ext = &parts.extensions;
        if ext.get::<TotpVerified>().is_some() || ext.get::<Guarded>().is_some() {
            return Ok(Self::of(ext));
        }
        Err(TotpRejection::missing_layer(Format::of(&parts.headers)))
    }
}
