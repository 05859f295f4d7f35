//! Reading what a client sent, once, into the typed form of its endpoint:
//! an `application/x-www-form-urlencoded` form or a flat JSON object,
//! within a size limit.

use std::collections::HashMap;
use std::fmt;

use bytes::Bytes;
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use serde::de::value::MapDeserializer;
use serde::de::{DeserializeOwned, Deserializer, IntoDeserializer, Visitor};
use serde::{Deserialize, de, forward_to_deserialize_any};
use zeroize::Zeroizing;

use crate::http::negotiate::BodyKind;
use crate::http::refusal::RefusalReason;
use crate::store::BoxError;

/// A field that may hold a code or a recovery code: zeroized on drop,
/// never printed.
pub(super) struct Secret(Zeroizing<String>);

impl Secret {
    pub(super) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Self(Zeroizing::new(s)))
    }
}

/// A checkbox: `on` (what browsers send), or `true`, `1`, `yes`; anything
/// else, or nothing, is off.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Flag(bool);

impl Flag {
    pub(super) fn is_on(self) -> bool {
        self.0
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = String::deserialize(d)?;
        Ok(Self(matches!(value.as_str(), "on" | "true" | "1" | "yes")))
    }
}

/// Read the body into `T`: a form, or a JSON object whose members are
/// strings (or booleans, for flags; `null` is no member). Both kinds are
/// read alike: the last of repeated names wins, unknown names are ignored,
/// and the raw body, every value read from it and every [`Secret`] field
/// are zeroized on drop.
pub(super) async fn read_form<T, B>(
    kind: Option<BodyKind>,
    body: B,
    limit: usize,
) -> Result<T, RefusalReason>
where
    T: DeserializeOwned,
    B: Body + Send,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let bytes = read_body(body, limit).await?;
    let values = match kind {
        None if bytes.is_empty() => HashMap::new(),
        Some(BodyKind::Form) => form_values(&bytes)?,
        Some(BodyKind::Json) => json_values(&bytes)?,
        None | Some(BodyKind::Other) => return Err(RefusalReason::UnsupportedMediaType),
    };
    let fields = values
        .iter()
        .map(|(k, v)| (k.as_str(), FieldValue(v.as_str())));
    T::deserialize(MapDeserializer::<_, de::value::Error>::new(fields))
        .map_err(|_| RefusalReason::BadRequest("The form could not be read."))
}

/// One field's text, as serde reads it into the form's types: a present
/// field is `Some` of its text (serde's own string deserializer would not
/// fill an `Option`).
struct FieldValue<'a>(&'a str);

impl<'de, 'a> IntoDeserializer<'de, de::value::Error> for FieldValue<'a> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de, 'a> Deserializer<'de> for FieldValue<'a> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_str(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

async fn read_body<B>(body: B, limit: usize) -> Result<Zeroizing<Vec<u8>>, RefusalReason>
where
    B: Body + Send,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => {
            let bytes: Bytes = collected.to_bytes();
            Ok(Zeroizing::new(bytes.to_vec()))
        }
        Err(e) => {
            // Our limit, or one in front of us (tower-http's
            // `RequestBodyLimitLayer`), wrapped by the framework's body.
            let first: &(dyn std::error::Error + 'static) = &*e;
            let mut chain = std::iter::successors(Some(first), |e| e.source());
            let too_large = chain.any(|e| e.is::<http_body_util::LengthLimitError>());
            Err(if too_large {
                RefusalReason::PayloadTooLarge
            } else {
                RefusalReason::BadRequest("The request body could not be read.")
            })
        }
    }
}

type Values = HashMap<String, Zeroizing<String>>;

fn form_values(bytes: &[u8]) -> Result<Values, RefusalReason> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(RefusalReason::BadRequest("The form is not valid UTF-8."));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes)
        .map_err(|_| RefusalReason::BadRequest("The form could not be read."))?;
    Ok(pairs
        .into_iter()
        .map(|(k, v)| (k, Zeroizing::new(v)))
        .collect())
}

fn json_values(bytes: &[u8]) -> Result<Values, RefusalReason> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
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
    Ok(values)
}

/// A query string parameter.
pub(super) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use http_body_util::Full;

    use super::*;

    #[derive(Deserialize, Debug)]
    struct Sample {
        code: Option<Secret>,
        #[serde(default)]
        remember: Flag,
    }

    async fn read(kind: Option<BodyKind>, body: &'static str) -> Result<Sample, RefusalReason> {
        read_form(kind, Full::new(Bytes::from_static(body.as_bytes())), 1024).await
    }

    #[tokio::test]
    async fn forms_and_json_read_alike() {
        let form = read(Some(BodyKind::Form), "code=1&code=123456&remember=on&x=y")
            .await
            .unwrap();
        assert_eq!(form.code.as_ref().map(Secret::as_str), Some("123456"));
        assert!(form.remember.is_on());
        let json = read(
            Some(BodyKind::Json),
            r#"{"code":"123456","remember":true,"x":null}"#,
        )
        .await
        .unwrap();
        assert_eq!(json.code.as_ref().map(Secret::as_str), Some("123456"));
        assert!(json.remember.is_on());
        let empty = read(None, "").await.unwrap();
        assert!(empty.code.is_none() && !empty.remember.is_on());
    }

    #[tokio::test]
    async fn what_is_not_a_flat_object_of_strings_is_refused() {
        for (kind, body) in [
            (Some(BodyKind::Json), r#"{"code":123456}"#),
            (Some(BodyKind::Json), r#"["123456"]"#),
            (Some(BodyKind::Json), "{"),
        ] {
            assert!(matches!(
                read(kind, body).await,
                Err(RefusalReason::BadRequest(_))
            ));
        }
        assert_eq!(
            read(Some(BodyKind::Other), "code=1").await.unwrap_err(),
            RefusalReason::UnsupportedMediaType
        );
        assert_eq!(
            read(None, "code=1").await.unwrap_err(),
            RefusalReason::UnsupportedMediaType
        );
    }

    #[test]
    fn a_secret_is_never_printed() {
        let s = Secret(Zeroizing::new("123456".into()));
        assert!(!format!("{s:?}").contains("123456"));
    }
}
