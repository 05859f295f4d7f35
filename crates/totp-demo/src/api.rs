//! `GET /api/me` and `GET /health`.

use axum::response::Response;
use http::StatusCode;
use serde::Serialize;
use tower_totp::UserKind;
use tower_totp::http::SecondFactor;

use crate::respond;
use crate::viewer::Viewer;

/// The answer of `GET /api/me`.
#[derive(Serialize)]
struct Me<'a> {
    username: &'a str,
    display_name: &'a str,
    kind: UserKind,
    /// `not_required`, or how the second step was done (`totp`,
    /// `recovery_code`, `enrollment`, `remembered_device`).
    second_factor: serde_json::Value,
}

/// How the second factor stands, in words for JSON.
pub(crate) fn second_factor_json(sf: &SecondFactor) -> serde_json::Value {
    match sf {
        SecondFactor::Verified(v) => {
            serde_json::to_value(v.method).unwrap_or(serde_json::Value::Null)
        }
        _ => serde_json::Value::String("not_required".into()),
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
            second_factor: second_factor_json(&v.second_factor),
        },
    )
}

/// `GET /health`: no session, no database; for load balancers.
pub(crate) async fn health() -> Response {
    respond::json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))
}
