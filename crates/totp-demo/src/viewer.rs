//! Who is asking: the extractors of the routes behind the TOTP layer.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use http::request::Parts;
use tower_totp::http::SecondFactor;

use crate::respond::{Failure, Format};
use crate::state::AppState;
use crate::users::User;

/// A user the layer let through: the password is checked and the second
/// factor is done or not required. Anyone else gets a redirect to the
/// login page or a 401 problem with `next: login`.
pub(crate) struct Viewer {
    pub(crate) user: Arc<User>,
    pub(crate) second_factor: SecondFactor,
    pub(crate) format: Format,
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Failure> {
        let format = Format::of(&parts.headers);
        // The layer marks only a finished login so; without it the session
        // has no password login at all.
        let second_factor =
            SecondFactor::of(&parts.extensions).ok_or_else(|| Failure::not_logged_in(format))?;
        let user = state
            .users
            .get(second_factor.user().as_str())
            .ok_or_else(|| Failure::not_logged_in(format))?;
        Ok(Self {
            user,
            second_factor,
            format,
        })
    }
}

/// A [`Viewer`] who is an administrator; others get 403.
pub(crate) struct Admin(pub(crate) Viewer);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Failure> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        if !viewer.user.is_admin {
            tracing::info!(user = %viewer.user.username, path = %parts.uri.path(), "admin page refused");
            return Err(Failure::forbidden(viewer.format));
        }
        Ok(Self(viewer))
    }
}
