//! Content negotiation, decided once per request: whether the client reads
//! pages or JSON ([`Format`]), and what kind of body it sent ([`BodyKind`]).
//! The layers, the endpoints and an application's own pages decide alike.

use http::{HeaderMap, header};

/// What the client reads: pages (and redirects) or JSON (and RFC 9457
/// problems).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// A browser: pages, and redirects to the next page.
    Html,
    /// A script: JSON answers and problem+json refusals.
    Json,
}

impl Format {
    /// The format a request asks for: [`Format::Html`] when it accepts
    /// `text/html` and did not send JSON (a script that sends JSON wants
    /// JSON back, whatever its `Accept` header lists), else
    /// [`Format::Json`].
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, header};
    /// use tower_totp::http::Format;
    ///
    /// let mut headers = HeaderMap::new();
    /// assert_eq!(Format::of(&headers), Format::Json);
    /// headers.insert(header::ACCEPT, HeaderValue::from_static("text/html,*/*"));
    /// assert_eq!(Format::of(&headers), Format::Html);
    /// headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    /// assert_eq!(Format::of(&headers), Format::Json);
    /// ```
    pub fn of(headers: &HeaderMap) -> Self {
        Self::given(headers, BodyKind::of(headers))
    }

    /// [`Format::of`] with the body kind already read.
    pub(crate) fn given(headers: &HeaderMap, body: Option<BodyKind>) -> Self {
        let accepts_html = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("text/html"));
        if accepts_html && body != Some(BodyKind::Json) {
            Self::Html
        } else {
            Self::Json
        }
    }

    /// Whether it is [`Format::Html`].
    pub fn is_html(self) -> bool {
        self == Self::Html
    }
}

/// The kind of request body, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `application/json` or any `+json` type.
    Json,
    /// Anything else.
    Other,
}

impl BodyKind {
    /// The body's kind, parameters and case aside; `None` without a
    /// `Content-Type` (or with one that is not text).
    pub(crate) fn of(headers: &HeaderMap) -> Option<Self> {
        let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let essence = value.split(';').next().unwrap_or("").trim();
        Some(
            if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
                Self::Form
            } else if essence.eq_ignore_ascii_case("application/json")
                || ends_with_ignore_case(essence, "+json")
            {
                Self::Json
            } else {
                Self::Other
            },
        )
    }
}

fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.get(s.len() - suffix.len()..)
            .is_some_and(|end| end.eq_ignore_ascii_case(suffix))
}

/// Whether the request body is JSON: its `Content-Type` is
/// `application/json` or any `+json` type, parameters and case aside. The
/// endpoints read such a body as JSON and answer in JSON; an application
/// with pages of its own can decide the same way.
pub fn body_is_json(headers: &HeaderMap) -> bool {
    BodyKind::of(headers) == Some(BodyKind::Json)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn with(name: header::HeaderName, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn body_kinds_ignore_parameters_and_case() {
        let kind = |v| BodyKind::of(&with(header::CONTENT_TYPE, v));
        assert_eq!(
            kind("application/json; charset=utf-8"),
            Some(BodyKind::Json)
        );
        assert_eq!(kind("Application/Problem+JSON"), Some(BodyKind::Json));
        assert_eq!(
            kind("APPLICATION/X-WWW-FORM-URLENCODED;charset=UTF-8"),
            Some(BodyKind::Form)
        );
        assert_eq!(kind("text/plain"), Some(BodyKind::Other));
        assert_eq!(kind("json"), Some(BodyKind::Other));
        assert_eq!(BodyKind::of(&HeaderMap::new()), None);
    }

    #[test]
    fn a_script_sending_json_reads_json() {
        let mut h = with(header::ACCEPT, "text/html");
        assert_eq!(Format::of(&h), Format::Html);
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/merge-patch+json"),
        );
        assert_eq!(Format::of(&h), Format::Json);
        assert_eq!(
            Format::of(&with(header::ACCEPT, "application/json")),
            Format::Json
        );
    }
}
