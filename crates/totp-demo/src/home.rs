//! `GET /`: the home page.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use tower_totp::http::{SecondFactor, StepMethod};

use crate::pages;
use crate::respond;
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

/// `GET /`: "Welcome, <display name>". JSON clients get `/api/me`'s answer.
pub(crate) async fn home(v: Viewer) -> Response {
    if v.format.is_html() {
        return respond::html(
            StatusCode::OK,
            pages::home_page(&v.user, describe(&v.second_factor)),
        );
    }
    crate::api::me(v).await.into_response()
}
