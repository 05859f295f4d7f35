//! What the HTTP drivers share: the request bodies, the session cookie,
//! and how an answer maps to an [`Outcome`](crate::driver::Outcome) (the table in [`crate::driver`]).

use std::borrow::Cow;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use tower_totp::code::{Algorithm, CodeParams, Secret};

use crate::driver::{DriverError, Enrolled, Refusal};

/// `{"username":"…","password":"…"}`, escaped as JSON.
pub fn login_body(username: &str, password: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(32 + username.len() + password.len());
    buf.put_slice(b"{\"username\":");
    put_json_str(&mut buf, username);
    buf.put_slice(b",\"password\":");
    put_json_str(&mut buf, password);
    buf.put_u8(b'}');
    buf.freeze()
}

/// `{"code":"…"}` for a code of digits (nothing to escape).
pub fn code_body(code: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(12 + code.len());
    buf.put_slice(b"{\"code\":");
    put_json_str(&mut buf, code);
    buf.put_u8(b'}');
    buf.freeze()
}

fn put_json_str(buf: &mut BytesMut, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.put_u8(b'"');
        buf.put_slice(s.as_bytes());
        buf.put_u8(b'"');
    } else {
        // Escaping is rare (user names from a file): let serde do it.
        buf.put_slice(serde_json::Value::from(s).to_string().as_bytes());
    }
}

/// The cookies of one exchange (a login's few requests), as a browser
/// keeps them: set by `Set-Cookie`, removed by an empty value or
/// `Max-Age=0`, sent back in one `Cookie` header.
#[derive(Debug, Clone, Default)]
pub struct Jar {
    cookies: Vec<(String, String)>,
    header: Option<HeaderValue>,
}

impl Jar {
    /// An empty jar.
    pub fn new() -> Self {
        Self::default()
    }

    /// Take the `Set-Cookie` headers of an answer.
    pub fn update(&mut self, headers: &HeaderMap) {
        let mut changed = false;
        for value in headers.get_all(header::SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let first = text.split(';').next().unwrap_or("");
            let Some((name, value)) = first.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            let gone = value.is_empty()
                || text
                    .split(';')
                    .any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            self.cookies.retain(|(n, _)| n != name);
            if !gone {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
            changed = true;
        }
        if changed {
            let line = self
                .cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            self.header = HeaderValue::from_str(&line)
                .ok()
                .filter(|_| !line.is_empty());
        }
    }

    /// The `Cookie` header to send, if any cookie is kept.
    pub fn header(&self) -> Option<&HeaderValue> {
        self.header.as_ref()
    }

    /// The value of cookie `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The value of the `name=` cookie set by an answer, as a ready `Cookie`
/// header (`name=value`), without building a jar: the in-process driver's
/// fast path (its server sets exactly one cookie, the session's).
pub fn set_cookie_pair(headers: &HeaderMap, name: &str) -> Option<HeaderValue> {
    headers.get_all(header::SET_COOKIE).iter().find_map(|v| {
        let bytes = v.as_bytes();
        let end = bytes.iter().position(|b| *b == b';').unwrap_or(bytes.len());
        let pair = &bytes[..end];
        let value = pair.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
        if value.is_empty() {
            return None;
        }
        HeaderValue::from_bytes(pair).ok()
    })
}

/// The members of the answers the drivers read.
#[derive(Debug, Default, Deserialize)]
struct Answer<'a> {
    #[serde(borrow, default)]
    next: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
}

/// The `next` member of a JSON answer.
///
/// # Errors
///
/// [`DriverError::Protocol`] if the body is not JSON with a string `next`.
pub fn next_of<'a>(
    body: &'a [u8],
    step: &'static str,
    status: StatusCode,
) -> Result<Cow<'a, str>, DriverError> {
    serde_json::from_slice::<Answer<'a>>(body)
        .ok()
        .and_then(|a| a.next)
        .ok_or_else(|| protocol(step, status, body))
}

/// What a code step answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeAnswer {
    /// 200 `{"next":"done"}`.
    Done,
    /// A problem with this `reason`.
    Refused(Refusal),
    /// 429 with `Retry-After`.
    Throttled(Duration),
}

/// Map the answer to `POST /2fa` or `POST /2fa/enroll`.
///
/// # Errors
///
/// [`DriverError::Protocol`] for anything else: 200 with another `next`,
/// a 5xx, a refusal without a `reason`.
pub fn code_answer(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    step: &'static str,
) -> Result<CodeAnswer, DriverError> {
    if status == StatusCode::OK {
        return match next_of(body, step, status)?.as_ref() {
            "done" => Ok(CodeAnswer::Done),
            _ => Err(protocol(step, status, body)),
        };
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        let secs = headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| protocol(step, status, body))?;
        return Ok(CodeAnswer::Throttled(Duration::from_secs(secs)));
    }
    if status.is_client_error() {
        let reason = serde_json::from_slice::<Answer<'_>>(body)
            .ok()
            .and_then(|a| a.reason)
            .ok_or_else(|| protocol(step, status, body))?;
        return Ok(CodeAnswer::Refused(Refusal::from_reason(&reason)));
    }
    Err(protocol(step, status, body))
}

/// A [`DriverError::Protocol`] quoting the status and the start of the body.
pub fn protocol(step: &'static str, status: StatusCode, body: &[u8]) -> DriverError {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    DriverError::Protocol {
        step,
        detail: format!("{status}: {text}"),
    }
}

/// The phone's side of `GET /2fa/enroll`'s JSON: the base32 `secret` and
/// the code parameters of the `otpauth_uri` (defaults for missing ones,
/// as authenticator apps assume).
///
/// # Errors
///
/// [`DriverError::Protocol`] if either member is missing or malformed.
pub fn enrolled_from_json(body: &[u8], status: StatusCode) -> Result<Enrolled, DriverError> {
    #[derive(Deserialize)]
    struct Page {
        secret: String,
        otpauth_uri: String,
    }
    let bad = || protocol("enroll", status, body);
    let page: Page = serde_json::from_slice(body).map_err(|_| bad())?;
    let secret = Secret::from_base32(&page.secret).map_err(|_| bad())?;
    let params = params_of_uri(&page.otpauth_uri).ok_or_else(bad)?;
    Ok(Enrolled { secret, params })
}

/// The code parameters of an `otpauth://totp/…` URI.
pub fn params_of_uri(uri: &str) -> Option<CodeParams> {
    let rest = uri.strip_prefix("otpauth://totp/")?;
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    let (mut algorithm, mut digits, mut period) = (Algorithm::Sha1, 6u8, 30u32);
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key.to_ascii_lowercase().as_str() {
            "algorithm" => algorithm = value.parse().ok()?,
            "digits" => digits = value.parse().ok()?,
            "period" => period = value.parse().ok()?,
            _ => {}
        }
    }
    CodeParams::new(algorithm, digits, period).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_json() {
        let v: serde_json::Value = serde_json::from_slice(&login_body("u1", "pw-1")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({ "username": "u1", "password": "pw-1" })
        );
        let v: serde_json::Value = serde_json::from_slice(&login_body("a\"b", "c\\d")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({ "username": "a\"b", "password": "c\\d" })
        );
        let v: serde_json::Value = serde_json::from_slice(&code_body("012345")).unwrap();
        assert_eq!(v, serde_json::json!({ "code": "012345" }));
    }

    #[test]
    fn the_jar_keeps_sets_and_drops_cookies() {
        let mut jar = Jar::new();
        let mut h = HeaderMap::new();
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("id=abc; HttpOnly; Path=/"),
        );
        h.append(header::SET_COOKIE, HeaderValue::from_static("x=1"));
        jar.update(&h);
        assert_eq!(jar.header().unwrap(), "id=abc; x=1");
        assert_eq!(jar.get("id"), Some("abc"));
        let mut h = HeaderMap::new();
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("id=; Max-Age=0"),
        );
        jar.update(&h);
        assert_eq!(jar.header().unwrap(), "x=1");
        assert_eq!(
            set_cookie_pair(
                &{
                    let mut h = HeaderMap::new();
                    h.append(
                        header::SET_COOKIE,
                        HeaderValue::from_static("id=q1; Path=/"),
                    );
                    h
                },
                "id"
            )
            .unwrap(),
            "id=q1"
        );
    }

    #[test]
    fn answers_map_to_outcomes() {
        let h = HeaderMap::new();
        assert_eq!(
            code_answer(StatusCode::OK, &h, br#"{"next":"done"}"#, "2fa").unwrap(),
            CodeAnswer::Done
        );
        assert_eq!(
            code_answer(
                StatusCode::UNAUTHORIZED,
                &h,
                br#"{"reason":"replayed","next":"totp"}"#,
                "2fa"
            )
            .unwrap(),
            CodeAnswer::Refused(Refusal::Replayed)
        );
        let mut t = HeaderMap::new();
        t.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(
            code_answer(StatusCode::TOO_MANY_REQUESTS, &t, b"{}", "2fa").unwrap(),
            CodeAnswer::Throttled(Duration::from_secs(7))
        );
        assert!(code_answer(StatusCode::SERVICE_UNAVAILABLE, &h, b"{}", "2fa").is_err());
        assert!(code_answer(StatusCode::OK, &h, br#"{"next":"totp"}"#, "2fa").is_err());
    }

    #[test]
    fn otpauth_parameters_are_read() {
        let p = params_of_uri(
            "otpauth://totp/Acme:u1?secret=AAAA&issuer=Acme&algorithm=SHA256&digits=8&period=60",
        )
        .unwrap();
        assert_eq!((p.digits(), p.period()), (8, 60));
        assert_eq!(p.algorithm(), Algorithm::Sha256);
        let p = params_of_uri("otpauth://totp/x?secret=AAAA").unwrap();
        assert_eq!((p.digits(), p.period()), (6, 30));
        assert!(params_of_uri("otpauth://hotp/x?secret=AAAA").is_none());
    }
}
