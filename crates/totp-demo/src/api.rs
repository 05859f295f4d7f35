//! `GET /api/me`, `GET /api/me/activity`, `GET /health` and `GET /health/live`.

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
/// snake-case name, `not_required`, or `grace` (in the enrollment grace
/// period, without a second factor).
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
            // The enrollment grace period: no second factor yet.
            SecondFactor::Grace { .. } => Self::NotRequired("grace"),
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

/// `GET /api/me/activity`, behind the layer: the viewer's own security
/// events, the newest [`SHOWN`](crate::activity::SHOWN) first, as an array
/// of `{"at": RFC 3339, "kind", "detail"}`.
pub(crate) async fn activity(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
    v: Viewer,
) -> Response {
    use axum::response::IntoResponse as _;

    match state.activity.recent(&v.user.username).await {
        Ok(entries) => respond::json(StatusCode::OK, &entries),
        Err(e) => respond::Failure::unavailable(v.format, &e).into_response(),
    }
}

/// `GET /api/me` of a load run's baseline (feature `load-baseline`), not
/// behind the layer: the same answer for the user the session's password
/// login names, read from the session by the handler, as a service without
/// a second factor would. `second_factor` is `not_required`.
#[cfg(feature = "load-baseline")]
pub(crate) async fn me_without_totp_layer(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
    headers: http::HeaderMap,
    session: tower_sessions::Session,
) -> Response {
    use axum::response::IntoResponse as _;

    let format = respond::Format::of(&headers);
    let user = match state.auth.session_user(&session).await {
        Ok(Some(id)) => state.users.get(id.as_str()),
        Ok(None) => None,
        Err(e) => return respond::Failure::unavailable(format, &e).into_response(),
    };
    let Some(user) = user else {
        return respond::Failure::not_logged_in(format).into_response();
    };
    respond::json(
        StatusCode::OK,
        &Me {
            username: &user.username,
            display_name: &user.display_name,
            kind: user.kind,
            second_factor: SecondFactorJson::NotRequired("not_required"),
        },
    )
}

/// `GET /health/live`: 200 `{"status":"ok"}` while the process serves,
/// whatever its stores do. For an orchestrator's liveness probe, which
/// restarts a process that fails it: a restart does not bring back an
/// unreachable store, so that probe must not read one (`GET /health`,
/// which does, is for the load balancer).
pub(crate) async fn live() -> Response {
    respond::json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))
}

/// `GET /health`, for load balancers (no session): 200 `{"status":"ok"}`
/// when the TOTP store and the database answer a cheap read within the
/// store timeout, else 503 problem+json `store_unavailable`.
pub(crate) async fn health(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
) -> Response {
    use axum::response::IntoResponse as _;

    match state.health.check(&state.auth).await {
        Ok(()) => respond::json(StatusCode::OK, &serde_json::json!({ "status": "ok" })),
        Err(e) => {
            // The causes too (a timeout, a refused connection): what an
            // operator looks for. Store errors carry no secrets.
            let mut causes = String::new();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                causes.push_str(": ");
                causes.push_str(&s.to_string());
                source = s.source();
            }
            tracing::warn!(error = %e, causes, "health check failed");
            respond::Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "This instance cannot reach its store right now.",
                respond::Format::Json,
            )
            .into_response()
        }
    }
}
