//! The admin pages: the "Two Factor Auth" switches and the users'
//! "Require Two Factor Authentication" flag. Only administrators reach
//! them (the [`Admin`] extractor answers 403 to others).

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use tower_totp::UserId;

use crate::app::AppState;
use crate::pages;
use crate::respond::{self, Failure, body_is_json, form_flag, parse_body, see_other};
use crate::settings::SettingsPatch;
use crate::users::User;
use crate::viewer::Admin;

/// `?saved=1` after a form post.
#[derive(Deserialize)]
pub(crate) struct Saved {
    saved: Option<String>,
}

impl Saved {
    fn is_set(&self) -> bool {
        self.saved.is_some()
    }
}

/// `GET /admin`.
pub(crate) async fn index(_admin: Admin) -> Response {
    see_other("/admin/settings")
}

/// `GET /admin/settings`.
pub(crate) async fn settings(
    State(state): State<AppState>,
    Admin(v): Admin,
    Query(saved): Query<Saved>,
) -> Response {
    let current = state.settings.get();
    if v.html {
        return respond::html(
            StatusCode::OK,
            pages::settings_page(&v.user, current, saved.is_set()),
        );
    }
    respond::json(StatusCode::OK, &current)
}

/// JSON: any of the three switches; the others stay.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsJson {
    enabled: Option<bool>,
    internal_users: Option<bool>,
    external_users: Option<bool>,
}

/// The form: a checkbox and two ON/OFF radios (a missing field is off).
#[derive(Deserialize)]
struct SettingsForm {
    enabled: Option<String>,
    internal_users: Option<String>,
    external_users: Option<String>,
}

/// `PUT /admin/settings` (JSON) and `POST /admin/settings` (the form).
pub(crate) async fn update_settings(
    State(state): State<AppState>,
    Admin(v): Admin,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // The form sends all three switches; JSON only those to change, and
    // the database changes only those (another instance may be changing
    // the others).
    let patch = if body_is_json(&headers) {
        match parse_body::<SettingsJson>(&headers, body, v.html, true) {
            Ok(p) => SettingsPatch {
                enabled: p.enabled,
                internal_users: p.internal_users,
                external_users: p.external_users,
            },
            Err(f) => return f.into_response(),
        }
    } else {
        match parse_body::<SettingsForm>(&headers, body, v.html, true) {
            Ok(f) => SettingsPatch {
                enabled: Some(form_flag(f.enabled.as_deref())),
                internal_users: Some(form_flag(f.internal_users.as_deref())),
                external_users: Some(form_flag(f.external_users.as_deref())),
            },
            Err(f) => return f.into_response(),
        }
    };
    let new = match state.settings.patch(patch).await {
        Ok(new) => new,
        Err(e) => return Failure::unavailable(v.html, &e).into_response(),
    };
    tracing::info!(admin = %v.user.username, settings = ?new, "2FA settings changed");
    if v.html {
        return see_other("/admin/settings?saved=1");
    }
    respond::json(StatusCode::OK, &new)
}

/// A user as the admin JSON shows it.
#[derive(Serialize)]
struct UserJson<'a> {
    #[serde(flatten)]
    user: &'a User,
    /// Whether an authenticator app is synced.
    enrolled: bool,
}

async fn enrolled(state: &AppState, user: &User) -> Result<bool, tower_totp::Error> {
    Ok(state
        .auth
        .engine()
        .status(&UserId::new(user.username.as_str()))
        .await?
        .enrolled)
}

/// `GET /admin/users`.
pub(crate) async fn users(State(state): State<AppState>, Admin(v): Admin) -> Response {
    let mut rows = Vec::new();
    for user in state.users.list() {
        match enrolled(&state, &user).await {
            Ok(e) => rows.push((user, e)),
            Err(e) => return Failure::unavailable(v.html, &e).into_response(),
        }
    }
    if v.html {
        return respond::html(StatusCode::OK, pages::users_page(&v.user, &rows));
    }
    let list: Vec<UserJson<'_>> = rows
        .iter()
        .map(|(user, enrolled)| UserJson {
            user,
            enrolled: *enrolled,
        })
        .collect();
    respond::json(StatusCode::OK, &serde_json::json!({ "users": list }))
}

/// `GET /admin/users/{username}`.
pub(crate) async fn user(
    State(state): State<AppState>,
    Admin(v): Admin,
    Path(username): Path<String>,
    Query(saved): Query<Saved>,
) -> Response {
    let Some(user) = state.users.get(&username) else {
        return Failure::not_found(v.html).into_response();
    };
    let enrolled = match enrolled(&state, &user).await {
        Ok(e) => e,
        Err(e) => return Failure::unavailable(v.html, &e).into_response(),
    };
    if v.html {
        return respond::html(
            StatusCode::OK,
            pages::user_page(&v.user, &user, enrolled, saved.is_set()),
        );
    }
    respond::json(
        StatusCode::OK,
        &UserJson {
            user: &user,
            enrolled,
        },
    )
}

/// JSON: `{"require_2fa": bool}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    require_2fa: bool,
}

/// The form: the checkbox (missing is off).
#[derive(Deserialize)]
struct UserForm {
    require_2fa: Option<String>,
}

/// `PUT /admin/users/{username}` (JSON) and `POST` (the form).
pub(crate) async fn update_user(
    State(state): State<AppState>,
    Admin(v): Admin,
    Path(username): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if state.users.get(&username).is_none() {
        return Failure::not_found(v.html).into_response();
    }
    let require = if body_is_json(&headers) {
        match parse_body::<UserPatch>(&headers, body, v.html, true) {
            Ok(p) => p.require_2fa,
            Err(f) => return f.into_response(),
        }
    } else {
        match parse_body::<UserForm>(&headers, body, v.html, true) {
            Ok(f) => form_flag(f.require_2fa.as_deref()),
            Err(f) => return f.into_response(),
        }
    };
    let user = match state.users.set_require_2fa(&username, require).await {
        Ok(Some(user)) => user,
        Ok(None) => return Failure::not_found(v.html).into_response(),
        Err(e) => return Failure::unavailable(v.html, &e).into_response(),
    };
    tracing::info!(admin = %v.user.username, user = %user.username, require_2fa = require, "user changed");
    if v.html {
        return see_other(&format!(
            "/admin/users/{}?saved=1",
            percent_path(&user.username)
        ));
    }
    let enrolled = match enrolled(&state, &user).await {
        Ok(e) => e,
        Err(e) => return Failure::unavailable(v.html, &e).into_response(),
    };
    respond::json(
        StatusCode::OK,
        &UserJson {
            user: &user,
            enrolled,
        },
    )
}

/// A user name as one path segment.
fn percent_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::percent_path;

    #[test]
    fn user_names_are_one_path_segment() {
        assert_eq!(percent_path("jsmith"), "jsmith");
        assert_eq!(percent_path("a b/c?d"), "a%20b%2Fc%3Fd");
    }
}
