//! `[cross_origin]`: a page on a foreign origin makes a logged-in victim's
//! browser submit the service's state-changing requests.
//!
//! The victim logs in (password, then its phone's code) in a session of
//! its own. Through that session, each request of [`forms`] is sent as a
//! foreign page's `fetch` or form post sends it: the victim's cookie,
//! `Origin` the attacker's, `Sec-Fetch-Site: cross-site`,
//! `Sec-Fetch-Mode: no-cors`, a form-encoded body (JSON for `PUT`),
//! `Accept: application/json` (a safelisted header, so that the answer
//! says why). A request counts as **accepted** unless it is refused with
//! 403: anything else means it reached the application's handler (which
//! may still have refused it for its own reasons: a wrong code, an unknown
//! id), and that the origin was not checked.
//!
//! The requests ([`forms`]): the `/2fa` endpoints' unsafe routes
//! (`POST /2fa`, `POST /2fa/enroll`, `POST /2fa/recovery-codes`,
//! `POST /2fa/authenticators/{id}/revoke`, `DELETE /2fa/authenticators/{id}`,
//! with a wrong code and an id that names nothing, so that the victim keeps
//! its authenticator); when the server is the demo (`GET /api/me` answers),
//! its logout and, for a victim who may open the admin pages, the
//! "Two Factor Auth" switches and the victim's "Require Two Factor
//! Authentication" flag, as form posts and as `PUT`s, each with the values
//! they have (read first, from the victim's own origin), so that a run
//! changes nothing a server refusing them would keep; last, `POST /login`
//! with the victim's name and a wrong password (login CSRF).

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::browser::{log_in, log_out, post_code, send};
use crate::driver::{Account, Driver, DriverError, WebRequest};
use crate::wire::{CodeAnswer, Jar};

const SECTION: &str = "cross_origin";

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// A request the attacker's page submits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// The method.
    pub method: Method,
    /// The path.
    pub path: String,
    /// `Content-Type` of the body.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Form {
    fn new(
        method: Method,
        path: impl Into<String>,
        content_type: &'static str,
        body: &str,
    ) -> Self {
        Self {
            method,
            path: path.into(),
            content_type,
            body: body.to_owned(),
        }
    }

    /// The request as the foreign page makes the browser send it.
    pub fn request(&self, origin: &HeaderValue) -> WebRequest {
        WebRequest::new(self.method.clone(), self.path.clone())
            .body(self.content_type, Bytes::from(self.body.clone()))
            .header(header::ORIGIN, origin.clone())
            .header(
                HeaderName::from_static("sec-fetch-site"),
                HeaderValue::from_static("cross-site"),
            )
            .header(
                HeaderName::from_static("sec-fetch-mode"),
                HeaderValue::from_static("no-cors"),
            )
    }
}

/// How a lure went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lure {
    /// The victim's own login did not verify (its code was refused or
    /// throttled): nothing was submitted; try again later.
    NotVerified(CodeAnswer),
    /// The victim has no authenticator: nothing was submitted.
    NotEnrolled,
    /// The forms were submitted.
    Submitted {
        /// Requests sent.
        attempts: u64,
        /// Requests not refused with 403.
        accepted: u64,
    },
}

/// Whether an answer means the request was let through.
pub fn accepted(status: StatusCode) -> bool {
    status != StatusCode::FORBIDDEN
}

#[derive(Deserialize)]
struct Me {
    username: String,
}

#[derive(Deserialize)]
struct Switches {
    enabled: bool,
    internal_users: bool,
    external_users: bool,
}

#[derive(Deserialize)]
struct UserFlag {
    require_2fa: bool,
}

fn on_off(v: bool) -> &'static str {
    if v { "on" } else { "off" }
}

/// A same-origin `GET` in the victim's session, as JSON, if it answers 200.
async fn read<D: Driver, T: for<'de> Deserialize<'de>>(
    driver: &D,
    jar: &mut Jar,
    path: &str,
) -> Result<Option<T>, DriverError> {
    let answer = send(driver, SECTION, jar, &WebRequest::new(Method::GET, path)).await?;
    if answer.status != StatusCode::OK {
        return Ok(None);
    }
    Ok(serde_json::from_slice(&answer.body).ok())
}

/// The requests to submit through the victim's (verified) session: see the
/// [module](self).
///
/// # Errors
///
/// [`DriverError`] when the transport fails.
pub async fn forms<D: Driver>(
    driver: &D,
    jar: &mut Jar,
    victim: &Account,
) -> Result<Vec<Form>, DriverError> {
    let nobody = "/2fa/authenticators/not-an-authenticator";
    let mut out = vec![
        Form::new(Method::POST, "/2fa", FORM, "code=000000"),
        Form::new(Method::POST, "/2fa/enroll", FORM, "code=000000"),
        Form::new(Method::POST, "/2fa/recovery-codes", FORM, ""),
        Form::new(Method::POST, format!("{nobody}/revoke"), FORM, ""),
        Form::new(Method::DELETE, nobody, FORM, ""),
    ];
    let me: Option<Me> = read(driver, jar, "/api/me").await?;
    let name = me
        .as_ref()
        .map_or_else(|| victim.id.as_str().to_owned(), |m| m.username.clone());
    if me.is_some() {
        if let Some(s) = read::<D, Switches>(driver, jar, "/admin/settings").await? {
            let mut fields = vec![
                ("internal_users", on_off(s.internal_users)),
                ("external_users", on_off(s.external_users)),
            ];
            if s.enabled {
                fields.push(("enabled", "on"));
            }
            let body = form(&fields);
            out.push(Form::new(Method::POST, "/admin/settings", FORM, &body));
            out.push(Form::new(Method::PUT, "/admin/settings", JSON, "{}"));
        }
        let path = format!("/admin/users/{}", percent_path(&name));
        if let Some(u) = read::<D, UserFlag>(driver, jar, &path).await? {
            let body = if u.require_2fa { "require_2fa=on" } else { "" };
            out.push(Form::new(Method::POST, path.clone(), FORM, body));
            let json = format!("{{\"require_2fa\":{}}}", u.require_2fa);
            out.push(Form::new(Method::PUT, path, JSON, &json));
        }
        out.push(Form::new(Method::POST, "/logout", FORM, ""));
    }
    let login = form(&[("username", &name), ("password", "not-the-password")]);
    out.push(Form::new(Method::POST, "/login", FORM, &login));
    Ok(out)
}

/// What stays as it is in a path segment: RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A name as one path segment.
fn percent_path(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

/// A form-encoded body of these fields.
fn form(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).unwrap_or_default()
}

/// Log `victim` in with `code` and submit [`forms`] through its session
/// with `origin`.
///
/// # Errors
///
/// [`DriverError`] when the driver speaks no HTTP or the server gives no
/// usable answer.
pub async fn lure<D: Driver>(
    driver: &D,
    victim: &Account,
    code: &str,
    origin: &HeaderValue,
) -> Result<Lure, DriverError> {
    let mut jar = Jar::new();
    if log_in(driver, SECTION, victim, &mut jar).await? != "totp" {
        log_out(driver, SECTION, &mut jar).await?;
        return Ok(Lure::NotEnrolled);
    }
    let answer = post_code(driver, SECTION, &mut jar, "/2fa", code).await?;
    if answer != CodeAnswer::Done {
        log_out(driver, SECTION, &mut jar).await?;
        return Ok(Lure::NotVerified(answer));
    }
    let forms = forms(driver, &mut jar, victim).await?;
    let (mut attempts, mut passed) = (0, 0);
    for form in &forms {
        let answer = send(driver, SECTION, &mut jar, &form.request(origin)).await?;
        attempts += 1;
        passed += u64::from(accepted(answer.status));
    }
    log_out(driver, SECTION, &mut jar).await?;
    Ok(Lure::Submitted {
        attempts,
        accepted: passed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_403_is_a_refusal() {
        assert!(!accepted(StatusCode::FORBIDDEN));
        for s in [200, 303, 401, 404, 405, 429] {
            assert!(accepted(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn the_foreign_page_sends_its_origin_and_cross_site() {
        let origin = HeaderValue::from_static("http://evil.example");
        let r = Form::new(Method::POST, "/2fa", FORM, "code=1").request(&origin);
        assert_eq!(r.headers[header::ORIGIN], "http://evil.example");
        assert_eq!(r.headers["sec-fetch-site"], "cross-site");
        assert_eq!(r.headers[header::CONTENT_TYPE], FORM);
        assert_eq!(percent_path("a b/c~d"), "a%20b%2Fc~d");
        assert_eq!(
            form(&[("username", "a b&c"), ("password", "x")]),
            "username=a+b%26c&password=x"
        );
    }
}
