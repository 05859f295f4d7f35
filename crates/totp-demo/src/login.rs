//! The demo's own password login and the logout.

use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;
use tower_totp::UserId;
use tower_totp::http::Next;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::respond::{self, Failure, Format, body_is_json, parse_body, see_other};
use crate::state::AppState;
use crate::users::MAX_USERNAME;
use crate::{pages, password_throttle};

/// `GET /login`.
pub(crate) async fn page() -> Response {
    respond::html(StatusCode::OK, pages::login_page(None, ""))
}

/// The login form or JSON body. Wiped when dropped; never printed.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
struct LoginForm {
    username: String,
    password: String,
}

/// The JSON body: exactly these two members (a script that sends more
/// is mistaken about this route). Forms may carry other fields.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct LoginJson {
    username: String,
    password: String,
}

/// `POST /login`: form or `{"username","password"}`.
pub(crate) async fn submit(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let format = Format::of(&headers);
    let read = if body_is_json(&headers) {
        parse_body::<LoginJson>(&headers, body, format, false).map(|mut j| LoginForm {
            username: std::mem::take(&mut j.username),
            password: std::mem::take(&mut j.password),
        })
    } else {
        parse_body::<LoginForm>(&headers, body, format, false)
    };
    let form = match read {
        Ok(form) => form,
        Err(failure) => return failure.into_response(),
    };
    let username = form.username.trim();
    // Charged before the password is checked, for every name alike: a
    // locked-out name is refused without hashing, whether it exists or not.
    // Except a name longer than any user's can be (`MAX_USERNAME`): it is
    // refused below as a wrong password, and a counter for it would only
    // let anyone store up to a body's worth of bytes per request.
    if username.len() <= MAX_USERNAME {
        match password_throttle::charge(&state, username).await {
            Ok(None) => {}
            Ok(Some(retry_after)) => {
                tracing::info!(user = %loggable(&state, username), "password attempt throttled");
                return password_throttle::locked(retry_after, format, username);
            }
            Err(e) => return Failure::unavailable(format, &e).into_response(),
        }
    }
    let user = match state.users.check_password(username, &form.password).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            tracing::info!(user = %loggable(&state, username), "password refused");
            if format.is_html() {
                return respond::html(
                    StatusCode::UNAUTHORIZED,
                    pages::login_page(Some("Wrong user name or password."), username),
                );
            }
            return Failure::bad_credentials(Format::Json).into_response();
        }
        Err(e) => return Failure::unavailable(format, &e).into_response(),
    };
    if let Err(e) = password_throttle::clear(&state, username).await {
        return Failure::unavailable(format, &e).into_response();
    }
    let outcome = match state
        .auth
        .password_login(&session, &UserId::new(user.username.as_str()))
        .await
    {
        Ok(outcome) => outcome,
        Err(e) => return Failure::unavailable(format, &e).into_response(),
    };
    let next = outcome.next;
    // A grace login has no second factor: the log says so.
    tracing::info!(
        user = %user.username,
        next = next.as_str(),
        grace = outcome.grace_until.is_some(),
        "password accepted"
    );
    if format.is_html() {
        let prefix = state.auth.prefix();
        return match next {
            // In the grace period: the page that says how long is left
            // and offers "Sync now" or "Later".
            Next::Done if outcome.grace_until.is_some() => see_other(&format!("{prefix}/grace")),
            Next::Done => see_other("/"),
            Next::Enroll => see_other(&format!("{prefix}/enroll")),
            // The second screen, and for a step the demo does not know yet:
            // `GET /2fa` answers every state.
            _ => see_other(prefix),
        };
    }
    match outcome.grace_until {
        Some(until) => respond::json(
            StatusCode::OK,
            &json!({ "next": next, "grace_until": until.to_rfc3339() }),
        ),
        None => respond::json(StatusCode::OK, &json!({ "next": next })),
    }
}

/// The typed user name as the log shows it: the name of a user who exists
/// (without control characters: logs are read in terminals), or
/// `(unknown)`. A name that belongs to nobody is often a password typed
/// into the wrong field, and passwords never reach the logs.
fn loggable(state: &AppState, username: &str) -> String {
    if state.users.get(username).is_none() {
        return "(unknown)".to_owned();
    }
    username.chars().filter(|c| !c.is_control()).collect()
}

/// `POST /logout`: forget the login and drop the session.
pub(crate) async fn logout(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> Response {
    let format = Format::of(&headers);
    if let Err(e) = state.auth.logout(&session).await {
        return Failure::unavailable(format, &e).into_response();
    }
    if let Err(e) = session.flush().await {
        return Failure::unavailable(format, &e).into_response();
    }
    if format.is_html() {
        return see_other("/login");
    }
    respond::json(StatusCode::OK, &json!({ "next": "login" }))
}
