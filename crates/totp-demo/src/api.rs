//! `GET /api/me` and `GET /health`.

use axum::response::Response;
use http::StatusCode;
use serde::Serialize;
use tower_totp::UserKind;
use tower_totp::http::{SecondFactor, StepMethod};

use crate::respond;
use crate::viewer::Viewer;

/// The answer of `GET /api/me`, written straight from borrowed fields (no
/// intermediate JSON value: this route is the demo's hot path).
#[derive(Serialize)]
struct Me<'a> {
    username: &'a str,
    display_name: &'a str,
    kind: UserKind,
    /// `not_required`, or how the second step was done (`totp`,
    /// `recovery_code`, `enrollment`, `remembered_device`).
    second_factor: SecondFactorJson,
}

/// How the second factor stands, as JSON writes it: the method's own
/// snake-case name, or `not_required`.
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum SecondFactorJson {
    /// Done, this way.
    Verified(StepMethod),
    /// Not required right now.
    NotRequired(&'static str),
}

impl From<&SecondFactor> for SecondFactorJson {
    fn from(sf: &SecondFactor) -> Self {
        match sf {
            SecondFactor::Verified(v) => Self::Verified(v.method),
            _ => Self::NotRequired("not_required"),
        }
    }
}

/// `GET /api/me`, behind the layer: who is logged in.
pub(crate) async fn me(v: Viewer) -> Response {
    respond::json(
        StatusCode::OK,
        &Me {
            username: &v.user.username,
            display_name: &v.user.display_name,
            kind: v.user.kind,
            second_factor: SecondFactorJson::from(&v.second_factor),
        },
    )
}

/// `GET /health`: no session, no database; for load balancers.
pub(crate) async fn health() -> Response {
    respond::json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))
}
