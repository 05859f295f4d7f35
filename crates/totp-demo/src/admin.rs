//! The admin pages: the "Two Factor Auth" switches, the users'
//! "Require Two Factor Authentication" flag and "Reset Two Factor
//! Authentication". Only administrators reach them (the [`Admin`]
//! extractor answers 403 to others).

use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use tower_totp::UserId;

use crate::pages;
use crate::respond::{
    self, Failure, Format, body_is_json, form_checkbox, form_radio, parse_body, see_other,
};
use crate::settings::{MAX_GRACE_DAYS, SettingsPatch};
use crate::state::AppState;
use crate::users::User;
use crate::viewer::Admin;

/// Whether the query has `key` (`?saved=1` after a form post). Only a
/// notice on the page: a query that does not parse just has none.
fn has(RawQuery(query): &RawQuery, key: &str) -> bool {
    query
        .as_deref()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .is_some_and(|pairs| pairs.iter().any(|(k, _)| k == key))
}

fn saved(query: &RawQuery) -> bool {
    has(query, "saved")
}

/// The user name of the path. One that does not decode (not UTF-8) names
/// nobody.
fn username(path: Result<Path<String>, PathRejection>, format: Format) -> Result<String, Failure> {
    path.map(|Path(name)| name)
        .map_err(|_| Failure::not_found(format))
}

/// `GET /admin`.
pub(crate) async fn index(_admin: Admin) -> Response {
    see_other("/admin/settings")
}

/// `GET /admin/settings`.
pub(crate) async fn settings(
    State(state): State<AppState>,
    Admin(v): Admin,
    query: RawQuery,
) -> Response {
    let current = state.settings.get();
    if v.format.is_html() {
        return respond::html(
            StatusCode::OK,
            pages::settings_page(&v.user, current, saved(&query)),
        );
    }
    respond::json(StatusCode::OK, &current)
}

/// JSON: any of the switches; the others stay.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsJson {
    enabled: Option<bool>,
    internal_users: Option<bool>,
    external_users: Option<bool>,
    grace_days: Option<u32>,
}

/// The form: a checkbox (left out when off), two ON/OFF radios (always
/// sent) and the grace days (the page sends them; a form without them
/// keeps the saved value). Checked in [`update_settings`]: a form that is
/// not the page's changes nothing.
#[derive(Deserialize)]
struct SettingsForm {
    enabled: Option<String>,
    internal_users: Option<String>,
    external_users: Option<String>,
    grace_days: Option<String>,
}

/// The grace days within 0..=[`MAX_GRACE_DAYS`], else a 400 that says so.
fn grace_days(days: Option<u32>, format: Format) -> Result<Option<u32>, Failure> {
    match days {
        Some(d) if d > MAX_GRACE_DAYS => Err(Failure::invalid_body(
            format,
            format!("grace_days must be a whole number from 0 to {MAX_GRACE_DAYS}."),
        )),
        d => Ok(d),
    }
}

/// The form's grace days: digits only (a browser's number field sends
/// them so), surrounding spaces allowed.
fn form_grace_days(value: Option<&str>, format: Format) -> Result<Option<u32>, Failure> {
    let Some(text) = value.map(str::trim) else {
        return Ok(None);
    };
    let parsed = (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse::<u32>().ok())
        .flatten();
    match parsed {
        Some(d) => grace_days(Some(d), format),
        None => grace_days(Some(u32::MAX), format),
    }
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
        match parse_body::<SettingsJson>(&headers, body, v.format, true) {
            Ok(p) => match grace_days(p.grace_days, v.format) {
                Ok(grace_days) => SettingsPatch {
                    enabled: p.enabled,
                    internal_users: p.internal_users,
                    external_users: p.external_users,
                    grace_days,
                },
                Err(f) => return f.into_response(),
            },
            Err(f) => return f.into_response(),
        }
    } else {
        let read = parse_body::<SettingsForm>(&headers, body, v.format, true).and_then(|f| {
            Ok(SettingsPatch {
                enabled: Some(form_checkbox(f.enabled.as_deref(), v.format)?),
                internal_users: Some(form_radio(
                    f.internal_users.as_deref(),
                    "internal_users",
                    v.format,
                )?),
                external_users: Some(form_radio(
                    f.external_users.as_deref(),
                    "external_users",
                    v.format,
                )?),
                grace_days: form_grace_days(f.grace_days.as_deref(), v.format)?,
            })
        });
        match read {
            Ok(patch) => patch,
            Err(f) => return f.into_response(),
        }
    };
    let new = match state.settings.patch(patch).await {
        Ok(new) => new,
        Err(e) => return Failure::unavailable(v.format, &e).into_response(),
    };
    tracing::info!(admin = %v.user.username, settings = ?new, "2FA settings changed");
    if v.format.is_html() {
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
            Err(e) => return Failure::unavailable(v.format, &e).into_response(),
        }
    }
    if v.format.is_html() {
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
    path: Result<Path<String>, PathRejection>,
    query: RawQuery,
) -> Response {
    let username = match username(path, v.format) {
        Ok(name) => name,
        Err(f) => return f.into_response(),
    };
    let Some(user) = state.users.get(&username) else {
        return Failure::not_found(v.format).into_response();
    };
    let enrolled = match enrolled(&state, &user).await {
        Ok(e) => e,
        Err(e) => return Failure::unavailable(v.format, &e).into_response(),
    };
    if v.format.is_html() {
        return respond::html(
            StatusCode::OK,
            pages::user_page(
                &v.user,
                &user,
                enrolled,
                pages::UserNotice::from_query(saved(&query), has(&query, "reset")),
            ),
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

/// JSON: either or both of the flag and the reset. `reset_2fa: false`
/// resets nothing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    require_2fa: Option<bool>,
    reset_2fa: Option<bool>,
}

/// The forms of the User ID page: the flag's form (its checkbox left out
/// when off) or the reset button's form, which sends only `reset_2fa` and
/// so leaves the flag alone.
#[derive(Deserialize)]
struct UserForm {
    require_2fa: Option<String>,
    reset_2fa: Option<String>,
}

/// What an admin request changes about a user.
struct UserChange {
    require_2fa: Option<bool>,
    reset_2fa: bool,
}

fn read_change(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    format: Format,
) -> Result<UserChange, Failure> {
    if body_is_json(headers) {
        let p = parse_body::<UserPatch>(headers, body, format, true)?;
        if p.require_2fa.is_none() && p.reset_2fa.is_none() {
            return Err(Failure::invalid_body(
                format,
                "Send require_2fa, reset_2fa or both.",
            ));
        }
        return Ok(UserChange {
            require_2fa: p.require_2fa,
            reset_2fa: p.reset_2fa.unwrap_or(false),
        });
    }
    let f = parse_body::<UserForm>(headers, body, format, true)?;
    if f.reset_2fa.is_some() {
        return Ok(UserChange {
            require_2fa: None,
            reset_2fa: form_checkbox(f.reset_2fa.as_deref(), format)?,
        });
    }
    Ok(UserChange {
        require_2fa: Some(form_checkbox(f.require_2fa.as_deref(), format)?),
        reset_2fa: false,
    })
}

/// `PUT /admin/users/{username}` (JSON) and `POST` (the forms).
pub(crate) async fn update_user(
    State(state): State<AppState>,
    Admin(v): Admin,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let username = match username(path, v.format) {
        Ok(name) => name,
        Err(f) => return f.into_response(),
    };
    let Some(mut user) = state.users.get(&username) else {
        return Failure::not_found(v.format).into_response();
    };
    let change = match read_change(&headers, body, v.format) {
        Ok(change) => change,
        Err(f) => return f.into_response(),
    };
    // The reset first: it is the urgent one (a lost or stolen phone).
    if change.reset_2fa {
        let admin = UserId::new(v.user.username.as_str());
        let target = UserId::new(user.username.as_str());
        // Apps and recovery codes removed, every session of the user ended
        // (at its next request, with any session store), audited naming
        // both.
        if let Err(e) = state.auth.reset_user(&admin, &target).await {
            return Failure::unavailable(v.format, &e).into_response();
        }
    }
    if let Some(require) = change.require_2fa {
        user = match state.users.set_require_2fa(&username, require).await {
            Ok(Some(user)) => user,
            Ok(None) => return Failure::not_found(v.format).into_response(),
            Err(e) => return Failure::unavailable(v.format, &e).into_response(),
        };
    }
    tracing::info!(
        admin = %v.user.username,
        user = %user.username,
        require_2fa = ?change.require_2fa,
        reset_2fa = change.reset_2fa,
        "user changed"
    );
    if v.format.is_html() {
        let notice = if change.reset_2fa {
            "reset=1"
        } else {
            "saved=1"
        };
        return see_other(&format!(
            "/admin/users/{}?{notice}",
            percent_path(&user.username)
        ));
    }
    let enrolled = match enrolled(&state, &user).await {
        Ok(e) => e,
        Err(e) => return Failure::unavailable(v.format, &e).into_response(),
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
