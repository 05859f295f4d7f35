//! `GET /`: the home page.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use tower_sessions::Session;
use tower_totp::http::{ClockHint, SecondFactor, StepMethod};

use crate::pages;
use crate::respond::{self, Failure};
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
        _ => "not required for your account right now",
    }
}

/// `GET /`: "Welcome, <display name>", and, once after a code that told of
/// a phone clock off by a step or more, the clock hint. JSON clients get
/// `/api/me`'s answer (their hint came with the code's answer).
pub(crate) async fn home(v: Viewer, session: Session) -> Result<Response, Failure> {
    if v.format.is_html() {
        let hint = ClockHint::take(&session)
            .await
            .map_err(|e| Failure::unavailable(v.format, &e))?
            .map(|hint| hint.to_string());
        return Ok(respond::html(
            StatusCode::OK,
            pages::home_page(&v.user, describe(&v.second_factor), hint.as_deref()),
        ));
    }
    Ok(crate::api::me(v).await.into_response())
}
