//! The axum extractor for [`TotpVerified`] (feature `axum`).

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use super::extensions::TotpVerified;

/// The rejection when [`TotpVerified`] is missing: the route is not behind
/// [`TotpLayer`](super::TotpLayer), or the user did not do the second step
/// (2FA does not apply to them, or no password login).
#[derive(Debug, Clone, Copy)]
pub struct MissingTotpLayer;

impl IntoResponse for MissingTotpLayer {
    fn into_response(self) -> Response {
        (
            StatusCode::UNAUTHORIZED,
            "TotpVerified missing: put this route behind tower_totp::http::TotpLayer \
             (inside SessionManagerLayer); the layer adds it only after the second step",
        )
            .into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TotpVerified {
    type Rejection = MissingTotpLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<TotpVerified>()
            .cloned()
            .ok_or(MissingTotpLayer)
    }
}
