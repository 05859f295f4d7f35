//! The reference app's router and handlers.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use serde_json::{Value, json};
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_sessions::Session;
use tower_totp::UserId;
use tower_totp::http::{SecondFactor, TotpAuth, TotpVerified, UserDirectory};

use super::{AppService, Body, PasswordCheck};

/// The largest login body read (a fuzzer sends more).
const LOGIN_BODY_LIMIT: usize = 4096;

/// How recent a second step `/sensitive` and `/misplaced` ask for.
const STEP_UP: Duration = Duration::from_secs(120);

/// The application's login.
#[derive(Clone)]
pub(crate) struct Login {
    pub(crate) auth: TotpAuth,
    /// Refuse names this directory does not know (401), when set.
    pub(crate) users: Option<Arc<dyn UserDirectory>>,
    /// The password check; every password is right without one.
    pub(crate) password: Option<Arc<PasswordCheck>>,
}

/// `POST /login` and `/logout` outside the layer, `/2fa...` to the
/// endpoints, everything else through `TotpLayer` to [`hello`] (and
/// `/sensitive` through a step-up as well). `/misplaced` is a setup
/// mistake: a step-up without `TotpLayer`.
pub(crate) fn router(auth: &TotpAuth, hits: &Arc<AtomicUsize>, login: Login) -> AppService {
    let endpoints = auth.endpoints();
    let hello = {
        let hits = Arc::clone(hits);
        service_fn(move |req: Request<Full<Bytes>>| {
            let hits = Arc::clone(&hits);
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Infallible>(hello(&req))
            }
        })
    };
    let step_up = ServiceBuilder::new()
        .layer(auth.step_up(STEP_UP))
        .service(hello.clone());
    let misplaced = step_up.clone();
    let pages = service_fn(move |req: Request<Full<Bytes>>| {
        let (hello, step_up) = (hello.clone(), step_up.clone());
        async move {
            let res = if req.uri().path() == "/sensitive" {
                step_up.oneshot(req).await?.map(BodyExt::boxed)
            } else {
                hello.oneshot(req).await?.map(boxed_full)
            };
            Ok::<_, Infallible>(res)
        }
    });
    let guarded = ServiceBuilder::new().layer(auth.layer()).service(pages);
    BoxCloneSyncService::new(service_fn(move |req: Request<Full<Bytes>>| {
        let (login, endpoints) = (login.clone(), endpoints.clone());
        let (guarded, misplaced) = (guarded.clone(), misplaced.clone());
        async move {
            let path = req.uri().path();
            let res = if path == "/login" {
                login.call(req).await
            } else if path == "/logout" {
                logout(&login.auth, req).await
            } else if path == "/misplaced" {
                misplaced.oneshot(req).await?.map(BodyExt::boxed)
            } else if path == "/2fa" || path.starts_with("/2fa/") {
                endpoints.oneshot(req).await?.map(boxed_full)
            } else {
                guarded.oneshot(req).await?.map(BodyExt::boxed)
            };
            Ok::<_, Infallible>(res)
        }
    }))
}

fn boxed_full(body: Full<Bytes>) -> Body {
    body.map_err(|never| match never {}).boxed()
}

fn json_reply(status: StatusCode, value: &Value) -> Response<Body> {
    let mut res = Response::new(boxed_full(Full::new(Bytes::from(value.to_string()))));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// What the application behind the layer saw, as JSON: `hello: true`, the
/// `path`, `second_factor` (`factor`: `none`, `not_required`, `grace` or
/// `verified`, with the `user`, for `grace` the `until` (Unix seconds), for
/// `verified` the `method` and `verified_at`) and
/// `totp_verified` (the user of the [`TotpVerified`] extension).
pub fn hello<B>(req: &Request<B>) -> Response<Full<Bytes>> {
    let verified = req.extensions().get::<TotpVerified>();
    let factor = match SecondFactor::of(req.extensions()).as_ref() {
        None => json!({ "factor": "none" }),
        Some(SecondFactor::NotRequired { user, .. }) => {
            json!({ "factor": "not_required", "user": user.as_str() })
        }
        Some(SecondFactor::Grace { user, until }) => json!({
            "factor": "grace",
            "user": user.as_str(),
            "until": until.as_secs(),
        }),
        Some(SecondFactor::Verified(v)) => json!({
            "factor": "verified",
            "user": v.user.as_str(),
            "method": format!("{:?}", v.method),
            "verified_at": v.verified_at.as_secs(),
        }),
        Some(other) => json!({ "factor": format!("{other:?}") }),
    };
    let body = json!({
        "hello": true,
        "path": req.uri().path(),
        "second_factor": factor,
        "totp_verified": verified.map(|v| v.user.as_str().to_owned()),
    });
    let mut res = Response::new(Full::new(Bytes::from(body.to_string())));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

impl Login {
    /// `POST /login` with `{"username", "password"}`: the password checked
    /// when the app has a check, else every password is right. Answers
    /// `{"next"}`, with `grace_until` (RFC 3339) in the grace period.
    async fn call(&self, req: Request<Full<Bytes>>) -> Response<Body> {
        let Some(session) = req.extensions().get::<Session>().cloned() else {
            return json_reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({ "error": "no session" }),
            );
        };
        let Ok(body) = Limited::new(req.into_body(), LOGIN_BODY_LIMIT)
            .collect()
            .await
        else {
            return json_reply(StatusCode::PAYLOAD_TOO_LARGE, &json!({}));
        };
        let Ok(form) = serde_json::from_slice::<Value>(&body.to_bytes()) else {
            return json_reply(StatusCode::BAD_REQUEST, &json!({ "error": "json" }));
        };
        let Some(name) = form["username"].as_str() else {
            return json_reply(StatusCode::BAD_REQUEST, &json!({ "error": "username" }));
        };
        if let Some(check) = &self.password {
            let password = form["password"].as_str().unwrap_or("");
            if !check(name, password) {
                return json_reply(
                    StatusCode::UNAUTHORIZED,
                    &json!({ "error": "bad_credentials" }),
                );
            }
        }
        let user = UserId::new(name);
        if let Some(users) = &self.users
            && !matches!(users.user_info(&user).await, Ok(Some(_)))
        {
            return json_reply(
                StatusCode::UNAUTHORIZED,
                &json!({ "error": "unknown user" }),
            );
        }
        match self.auth.password_login(&session, &user).await {
            Ok(outcome) => {
                let mut answer = json!({ "next": outcome.next.as_str() });
                if let Some(until) = outcome.grace_until {
                    answer["grace_until"] = json!(until.to_rfc3339());
                }
                json_reply(StatusCode::OK, &answer)
            }
            Err(e) => json_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({ "error": e.to_string() }),
            ),
        }
    }
}

/// `POST /logout`: 503 when the store fails.
async fn logout(auth: &TotpAuth, req: Request<Full<Bytes>>) -> Response<Body> {
    let Some(session) = req.extensions().get::<Session>() else {
        return json_reply(StatusCode::INTERNAL_SERVER_ERROR, &json!({}));
    };
    match auth.logout(session).await {
        Ok(()) => json_reply(StatusCode::OK, &json!({ "next": "login" })),
        Err(e) => json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "error": e.to_string() }),
        ),
    }
}
