//! `GET /`: the home page.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use tower_sessions::Session;
use tower_totp::UserId;
use tower_totp::http::{ClockHint, SecondFactor, StepMethod};

use crate::pages;
use crate::respond::{self, Failure};
use crate::state::AppState;
use crate::viewer::Viewer;

fn describe(sf: &SecondFactor) -> &'static str {
    match sf {
        SecondFactor::Verified(v) => match v.method {
            StepMethod::Totp => "verified with your authenticator app",
            StepMethod::Enrollment => "verified while syncing your authenticator app",
            StepMethod::RecoveryCode => "verified with a recovery code",
            StepMethod::RememberedDevice => "this device is remembered",
            // A way the library adds later.
            _ => "verified",
        },
        SecondFactor::Grace { .. } => {
            "not set up yet: sync an authenticator app before the grace period ends"
        }
        _ => "not required for your account right now",
    }
}

/// A user with this many unused recovery codes or fewer is asked to make
/// new ones.
pub(crate) const FEW_RECOVERY_CODES: usize = 3;

/// `GET /`: "Welcome, <display name>", and, once after a code that told of
/// a phone clock off by a step or more, the clock hint; a warning when few
/// recovery codes are left; the last security events. JSON clients get
/// `/api/me`'s answer (their hint came with the code's answer).
pub(crate) async fn home(
    State(state): State<AppState>,
    v: Viewer,
    session: Session,
) -> Result<Response, Failure> {
    if v.format.is_html() {
        let hint = ClockHint::take(&session)
            .await
            .map_err(|e| Failure::unavailable(v.format, &e))?
            .map(|hint| hint.to_string());
        let engine = state.auth.engine();
        let id = UserId::new(v.user.username.as_str());
        let unavailable = |e: tower_totp::Error| Failure::unavailable(v.format, &e);
        // Only an enrolled user has codes to run out of.
        let few_codes = if engine.status(&id).await.map_err(unavailable)?.enrolled {
            let left = engine.recovery_codes_left(&id).await.map_err(unavailable)?;
            (left <= FEW_RECOVERY_CODES).then_some(left)
        } else {
            None
        };
        let activity = state
            .activity
            .recent(&v.user.username)
            .await
            .map_err(|e| Failure::unavailable(v.format, &e))?;
        return Ok(respond::html(
            StatusCode::OK,
            pages::home_page(
                &v.user,
                describe(&v.second_factor),
                hint.as_deref(),
                &pages::Activity {
                    entries: &activity,
                    few_recovery_codes: few_codes,
                },
            ),
        ));
    }
    Ok(crate::api::me(v).await.into_response())
}
