//! Every response the HTTP side builds: problem+json, redirects, pages,
//! JSON answers, and a refusal rendered for its client
//! ([`TotpAuth::refuse`]).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;

use super::auth::TotpAuth;
use super::language::Strings;
use super::negotiate::Format;
use super::pages::{DefaultPages, Pages as _};
use super::refusal::{Next, Refusal, RefusalReason};

/// The response body of everything this module builds.
pub(crate) type FullResponse = Response<Full<Bytes>>;

impl TotpAuth {
    /// The response for a refusal: the application's own if it set one,
    /// else a redirect or page for browsers and problem+json for the rest.
    pub(crate) fn refuse(&self, refusal: Refusal, format: Format) -> FullResponse {
        self.refuse_in(refusal, format, &self.strings_for(&HeaderMap::new()))
    }

    /// [`TotpAuth::refuse`] for a request: its format and language.
    pub(crate) fn refuse_to(&self, refusal: Refusal, headers: &HeaderMap) -> FullResponse {
        self.refuse_in(refusal, Format::of(headers), &self.strings_for(headers))
    }

    /// [`TotpAuth::refuse`] with a page in the language of `strings`.
    pub(crate) fn refuse_in(
        &self,
        refusal: Refusal,
        format: Format,
        strings: &Strings,
    ) -> FullResponse {
        if let Some(respond) = self.responder() {
            let mut res = respond(&refusal, format);
            res.extensions_mut().insert(refusal);
            return res;
        }
        if format == Format::Json {
            return problem_response(&refusal);
        }
        let to = match (refusal.reason, refusal.next) {
            (RefusalReason::CodeRejected(_), _) => None,
            (_, Some(Next::Login)) => Some(self.login_path().to_owned()),
            (_, Some(Next::Totp)) => Some(self.prefix().to_owned()),
            (_, Some(Next::Enroll)) => Some(format!("{}/enroll", self.prefix())),
            _ => None,
        };
        match to {
            Some(location) => redirect_response(&location, &refusal),
            None => page_response(self.pages().message_in(&refusal, strings), &refusal),
        }
    }
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
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
}

/// Seconds for a `Retry-After` header: rounded up, at least 1.
fn retry_after_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

/// The crate's own answer to `refusal`, for layers that have no handle
/// (and so no application pages): the default page, or problem+json.
pub(crate) fn default_refusal(refusal: &Refusal, format: Format) -> FullResponse {
    match format {
        Format::Html => page_response(DefaultPages.message(refusal), refusal),
        Format::Json => problem_response(refusal),
    }
}

/// The RFC 9457 problem+json response for `refusal`.
pub fn problem_response(refusal: &Refusal) -> Response<Full<Bytes>> {
    let status = refusal.reason.status();
    let problem = Problem {
        kind: format!("urn:tower-totp:problem:{}", refusal.reason.slug()),
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail: refusal.reason.detail(),
        reason: refusal.reason.slug(),
        next: refusal.next,
        retry_after: refusal.reason.retry_after().map(retry_after_secs),
    };
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    finish(&mut res, refusal);
    res
}

/// A 303 See Other to `location`, carrying the refusal.
pub fn redirect_response(location: &str, refusal: &Refusal) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    finish(&mut res, refusal);
    res
}

/// An HTML page with `status`, carrying the refusal.
pub(crate) fn page_response(html: String, refusal: &Refusal) -> FullResponse {
    let mut res = html_response(refusal.reason.status(), html);
    finish(&mut res, refusal);
    res
}

pub(crate) fn html_response(status: StatusCode, html: String) -> FullResponse {
    let mut res = Response::new(Full::new(Bytes::from(html)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    no_store(res.headers_mut());
    res
}

/// Responses about login state must never be cached.
pub(crate) fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn finish(res: &mut FullResponse, refusal: &Refusal) {
    if let Some(d) = refusal.reason.retry_after() {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs(d)));
    }
    no_store(res.headers_mut());
    res.extensions_mut().insert(*refusal);
}

/// A JSON answer (never cached).
pub(crate) fn json_response(status: StatusCode, value: &serde_json::Value) -> FullResponse {
    let mut res = Response::new(Full::new(Bytes::from(value.to_string())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    no_store(res.headers_mut());
    res
}

/// A 303 See Other to the next page (never cached).
pub(crate) fn see_other(location: &str) -> FullResponse {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    no_store(res.headers_mut());
    res
}

/// An image (a QR code), never cached.
pub(crate) fn image_response(bytes: Vec<u8>, content_type: &'static str) -> FullResponse {
    let mut res = Response::new(Full::new(Bytes::from(bytes)));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    no_store(res.headers_mut());
    res
}
