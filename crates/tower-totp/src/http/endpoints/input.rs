//! Reading what a client sent: a form or JSON, within a size limit.

use std::collections::HashMap;

use bytes::Bytes;
use http::{HeaderMap, header};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use zeroize::Zeroizing;

use crate::http::refusal::RefusalReason;
use crate::store::BoxError;

/// The fields of a request body. Values may hold codes: zeroized on drop,
/// never printed.
#[derive(Default)]
pub(crate) struct Fields {
    values: HashMap<String, Zeroizing<String>>,
}

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fields")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Fields {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|v| v.as_str())
    }

    pub(crate) fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("on" | "true" | "1" | "yes"))
    }
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Whether the request body is JSON: its `Content-Type` is
/// `application/json` or any `+json` type, parameters and case aside. The
/// endpoints read such a body as JSON and answer in JSON; an application
/// with pages of its own can decide the same way.
pub fn body_is_json(headers: &HeaderMap) -> bool {
    content_type(headers).is_some_and(|t| t == "application/json" || t.ends_with("+json"))
}

/// Read the body as form fields or a flat JSON object of strings (and
/// booleans, for flags).
pub(crate) async fn read_fields<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
) -> Result<Fields, RefusalReason>
where
    B: Body + Send,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let bytes: Bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            // Our limit, or one in front of us (tower-http's
            // `RequestBodyLimitLayer`), wrapped by the framework's body.
            let first: &(dyn std::error::Error + 'static) = &*e;
            let mut chain = std::iter::successors(Some(first), |e| e.source());
            let too_large = chain.any(|e| e.is::<http_body_util::LengthLimitError>());
            return Err(if too_large {
                RefusalReason::PayloadTooLarge
            } else {
                RefusalReason::BadRequest("The request body could not be read.")
            });
        }
    };
    let bytes = Zeroizing::new(bytes.to_vec());
    let kind = content_type(headers);
    if bytes.is_empty() && kind.is_none() {
        return Ok(Fields::default());
    }
    match kind.as_deref() {
        Some("application/x-www-form-urlencoded") => {
            if std::str::from_utf8(&bytes).is_err() {
                return Err(RefusalReason::BadRequest("The form is not valid UTF-8."));
            }
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
                .map_err(|_| RefusalReason::BadRequest("The form could not be read."))?;
            Ok(Fields {
                values: pairs
                    .into_iter()
                    .map(|(k, v)| (k, Zeroizing::new(v)))
                    .collect(),
            })
        }
        Some(t) if t == "application/json" || t.ends_with("+json") => {
            let value: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|_| RefusalReason::BadRequest("The body is not valid JSON."))?;
            let serde_json::Value::Object(map) = value else {
                return Err(RefusalReason::BadRequest("Send a JSON object."));
            };
            let mut values = HashMap::new();
            for (k, v) in map {
                let text = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Bool(b) => b.to_string(),
                    serde_json::Value::Null => continue,
                    _ => {
                        return Err(RefusalReason::BadRequest(
                            "JSON members must be strings (codes are strings, e.g. \"123456\").",
                        ));
                    }
                };
                values.insert(k, Zeroizing::new(text));
            }
            Ok(Fields { values })
        }
        _ => Err(RefusalReason::UnsupportedMediaType),
    }
}

/// A query string parameter.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}
