//! Answering browsers and scripts from the same routes: pages and
//! redirects for `Accept: text/html`, JSON and RFC 9457 problems for the
//! rest; and reading a body that is a form or JSON.

use std::borrow::Cow;

use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower_totp::http::Next;

use crate::pages;

// The library's rules, so that the demo's pages and the layer's refusals
// answer the same client the same way: pages for a browser that accepts
// `text/html` and did not send JSON.
pub(crate) use tower_totp::http::{Format, body_is_json};

fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
}

fn no_store(res: &mut Response) {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A page.
pub(crate) fn html(status: StatusCode, page: String) -> Response {
    let mut res = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response();
    no_store(&mut res);
    res
}

/// A JSON answer.
pub(crate) fn json(status: StatusCode, value: &impl Serialize) -> Response {
    let mut res = (status, axum::Json(value)).into_response();
    no_store(&mut res);
    res
}

/// A 303 See Other (after a form post, or to the login page).
pub(crate) fn see_other(location: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    no_store(&mut res);
    res
}

/// A refusal or error of the demo's own routes, answered as a page (or a
/// redirect to the login page) or as problem+json.
#[derive(Debug)]
pub(crate) struct Failure {
    status: StatusCode,
    reason: &'static str,
    detail: Cow<'static, str>,
    next: Option<Next>,
    format: Format,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<Next>,
}

impl Failure {
    pub(crate) fn new(
        status: StatusCode,
        reason: &'static str,
        detail: impl Into<Cow<'static, str>>,
        format: Format,
    ) -> Self {
        Self {
            status,
            reason,
            detail: detail.into(),
            next: None,
            format,
        }
    }

    /// No (finished) login in this session.
    pub(crate) fn not_logged_in(format: Format) -> Self {
        Self {
            next: Some(Next::Login),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "not_logged_in",
                "Log in with your user name and password first.",
                format,
            )
        }
    }

    /// Wrong user name or password.
    pub(crate) fn bad_credentials(format: Format) -> Self {
        Self {
            next: Some(Next::Login),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "bad_credentials",
                "Wrong user name or password.",
                format,
            )
        }
    }

    /// Logged in, not an administrator.
    pub(crate) fn forbidden(format: Format) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Only administrators may open this page.",
            format,
        )
    }

    pub(crate) fn not_found(format: Format) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "No such page.", format)
    }

    /// The database (or the TOTP store) failed: nothing was changed. The
    /// reason is the library's for a failing store, so a client reads one
    /// name whichever layer noticed the failure.
    pub(crate) fn unavailable(format: Format, error: &dyn std::error::Error) -> Self {
        tracing::warn!(error = %error, "storage failure");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "The service is unavailable right now. Try again shortly.",
            format,
        )
    }

    pub(crate) fn bad_request(format: Format, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail, format)
    }

    /// Well-formed input with a value or member the route does not take.
    pub(crate) fn invalid_body(format: Format, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            detail,
            format,
        )
    }

    pub(crate) fn payload_too_large(format: Format) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "The request body is too large.",
            format,
        )
    }

    pub(crate) fn method_not_allowed(format: Format) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This page does not take that method.",
            format,
        )
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        if self.format.is_html() {
            if self.next == Some(Next::Login) && self.reason == "not_logged_in" {
                return see_other("/login");
            }
            return html(self.status, pages::message_page(title, &self.detail));
        }
        let problem = Problem {
            kind: format!("urn:totp-demo:problem:{}", self.reason),
            title,
            status: self.status.as_u16(),
            detail: &self.detail,
            reason: self.reason,
            next: self.next,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut res = (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response();
        no_store(&mut res);
        res
    }
}

/// Read a form or JSON body into `T`. `explain` decides whether the
/// parser's message (which may quote the input) is shown: never for
/// bodies that hold a password.
pub(crate) fn parse_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    format: Format,
    explain: bool,
) -> Result<T, Failure> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Failure::payload_too_large(format)
        } else {
            Failure::bad_request(format, "The request body could not be read.")
        }
    })?;
    // Both parsers would take bytes that are not UTF-8 (serde_urlencoded
    // replaces them, serde_json calls it the wrong shape): refuse them
    // here, as the 2FA endpoints do.
    if std::str::from_utf8(&bytes).is_err() {
        return Err(Failure::bad_request(format, "The body is not valid UTF-8."));
    }
    let detail = |what: &'static str, e: &dyn std::fmt::Display| -> Cow<'static, str> {
        if explain {
            format!("{what}: {e}").into()
        } else {
            what.into()
        }
    };
    if body_is_json(headers) {
        return serde_json::from_slice(&bytes).map_err(|e| {
            if e.is_data() {
                // Well-formed JSON of the wrong shape.
                Failure::invalid_body(format, detail("The JSON body does not fit", &e))
            } else {
                Failure::bad_request(format, detail("The body is not valid JSON", &e))
            }
        });
    }
    if media_type(headers).as_deref() == Some("application/x-www-form-urlencoded") {
        return serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| Failure::bad_request(format, detail("The form could not be read", &e)));
    }
    Err(Failure::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "Send application/json or application/x-www-form-urlencoded.",
        format,
    ))
}

/// A checkbox or ON/OFF radio value from a form: `on` (or `true`, `1`,
/// `yes`) or `off` (`false`, `0`, `no`), in any case. `None` for anything
/// else, which the form never sends.
pub(crate) fn form_flag(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Some(true),
        "off" | "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// A checkbox: sent (with an on value) when checked, left out when not.
pub(crate) fn form_checkbox(value: Option<&str>, format: Format) -> Result<bool, Failure> {
    match value {
        None => Ok(false),
        Some(v) => form_flag(v)
            .ok_or_else(|| Failure::invalid_body(format, "A checkbox value is not on or off.")),
    }
}

/// An ON/OFF radio group: the form always sends one of the two.
pub(crate) fn form_radio(value: Option<&str>, name: &str, format: Format) -> Result<bool, Failure> {
    value.and_then(form_flag).ok_or_else(|| {
        Failure::invalid_body(format, format!("The form needs {name}=on or {name}=off."))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_get_pages_scripts_get_json() {
        let mut h = HeaderMap::new();
        assert_eq!(Format::of(&h), Format::Json);
        h.insert(header::ACCEPT, HeaderValue::from_static("text/html,*/*"));
        assert_eq!(Format::of(&h), Format::Html);
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(Format::of(&h), Format::Json);
        assert!(body_is_json(&h));
    }

    #[test]
    fn form_flags() {
        for on in ["on", "ON", "true", "1", "yes"] {
            assert_eq!(form_flag(on), Some(true));
            assert!(form_checkbox(Some(on), Format::Json).unwrap());
            assert!(form_radio(Some(on), "x", Format::Json).unwrap());
        }
        for off in ["off", "OFF", "no", "0", "false"] {
            assert_eq!(form_flag(off), Some(false));
            assert!(!form_radio(Some(off), "x", Format::Json).unwrap());
        }
        for bad in ["", "maybe", "\u{fffd}", "onn"] {
            assert_eq!(form_flag(bad), None);
            assert!(form_checkbox(Some(bad), Format::Json).is_err());
        }
        assert!(!form_checkbox(None, Format::Json).unwrap());
        assert!(form_radio(None, "x", Format::Json).is_err());
    }
}
