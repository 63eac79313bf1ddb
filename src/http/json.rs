//! `ApiJson<T>`: the JSON body extractor. Unlike actix's own it answers in the error envelope
//! with the right status: 415 if the body is not JSON, 413 above the configured limit (before
//! reading when Content-Length says so), 400 for malformed JSON, 422 naming the field for
//! wrong types, missing or unknown fields.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::app::AppState;
use crate::error::ApiError;

pub struct ApiJson<T>(pub T);

fn is_json(req: &HttpRequest) -> bool {
    let Some(ct) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge {
        message: format!("the request body is larger than {limit} bytes"),
    }
}

/// Whether `T` deserializes as a struct (serde's derive asks the deserializer for one), which
/// serde_json would fill from an array too, field by field in declaration order.
fn is_struct<T: DeserializeOwned>() -> bool {
    #[derive(Debug)]
    struct Asked(bool);
    impl std::fmt::Display for Asked {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "asked for a struct: {}", self.0)
        }
    }
    impl std::error::Error for Asked {}
    impl serde::de::Error for Asked {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Asked(false)
        }
    }
    /// Answers every request with an error saying whether it was for a struct.
    struct Probe;
    impl<'de> Deserializer<'de> for Probe {
        type Error = Asked;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Asked> {
            Err(Asked(false))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            _: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Asked> {
            Err(Asked(true))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    matches!(T::deserialize(Probe), Err(Asked(true)))
}

/// Parses `body` as `T`, classifying failures as 400 (syntax) or 422 (shape).
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // Bodies and mutation arguments are objects. serde_json fills a struct from an array as
    // well (`[null, null]` was a PATCH that changed nothing and answered 200, found by
    // fuzzing): refuse one as it refuses any other value that is not an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') && is_struct::<T>() {
        let why = "invalid type: sequence, expected a JSON object".to_string();
        return Err(ApiError::Validation {
            message: format!("body: {why}"),
            fields: BTreeMap::from([("body".to_string(), why)]),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de);
    if value.is_ok()
        && let Err(e) = de.end()
    {
        return Err(ApiError::bad_request(
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
        ));
    }
    value.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." || path.is_empty() {
                    "body".to_string()
                } else {
                    path
                };
                let why = strip_position(&inner.to_string());
                ApiError::Validation {
                    message: format!("{field}: {why}"),
                    fields: BTreeMap::from([(field, why)]),
                }
            }
            _ => ApiError::bad_request(
                "malformed_json",
                format!("the body is not valid JSON: {inner}"),
            ),
        }
    })
}

/// serde_json appends " at line 1 column 42" to data errors; the field path says more.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<ApiJson<T>, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map_or(1 << 20, |s| s.config.max_json_body_bytes);
        let json = is_json(req);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if declared.is_some_and(|n| n > limit as u64) {
                return Err(too_large(limit));
            }
            if !json {
                return Err(ApiError::UnsupportedMediaType {
                    message: "send the body as Content-Type: application/json".into(),
                });
            }
            let mut body =
                BytesMut::with_capacity(declared.unwrap_or(0).min(limit as u64) as usize);
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    ApiError::bad_request("bad_body", format!("reading the body failed: {e}"))
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(too_large(limit));
                }
                body.extend_from_slice(&chunk);
            }
            parse(&body).map(ApiJson)
        })
    }
}

/// For PATCH fields where `null` (clear) differs from absent (keep): absent is `None`,
/// `null` is `Some(None)`.
pub fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// 400 for a body that is JSON but not an object.
pub fn not_an_object() -> ApiError {
    ApiError::bad_request("malformed_json", "the body must be a JSON object")
}

/// A create body whose `id` the client may leave to the server (devices make their own
/// UUIDs; web clients need not): fills in a new one, then parses it as `T`.
pub fn parse_with_id<T: DeserializeOwned>(mut body: serde_json::Value) -> Result<T, ApiError> {
    let Some(o) = body.as_object_mut() else {
        return Err(not_an_object());
    };
    o.entry("id")
        .or_insert_with(|| serde_json::Value::String(crate::validate::new_id()));
    parse(body.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        a: String,
        n: Option<u32>,
    }

    #[test]
    fn classifies_errors() {
        assert!(parse::<T>(br#"{"a": "x"}"#).is_ok());
        assert!(matches!(
            parse::<T>(b"{\"a\": "),
            Err(ApiError::BadRequest { .. })
        ));
        assert!(matches!(
            parse::<T>(br#"{"a": "x"} trailing"#),
            Err(ApiError::BadRequest { .. })
        ));
        match parse::<T>(br#"{"a": "x", "n": "seven"}"#) {
            Err(ApiError::Validation { fields, .. }) => {
                assert!(fields.contains_key("n"), "{fields:?}")
            }
            other => panic!("{other:?}"),
        }
        match parse::<T>(br#"{"a": "x", "zz": 1}"#) {
            Err(ApiError::Validation { message, .. }) => {
                assert!(message.contains("zz"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        match parse::<T>(br#"{}"#) {
            Err(ApiError::Validation { message, .. }) => {
                assert!(message.contains("`a`"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        // serde_json would fill the struct from an array, field by field.
        match parse::<T>(br#" ["x", 1]"#) {
            Err(ApiError::Validation { fields, .. }) => {
                assert!(fields.contains_key("body"), "{fields:?}")
            }
            other => panic!("{other:?}"),
        }
        // What is not a struct still takes an array.
        assert!(parse::<serde_json::Value>(br#"[1]"#).is_ok());
        assert!(parse::<Vec<u32>>(br#"[1]"#).is_ok());
    }
}
