//! Extractors of the host API whose rejections are problem+json.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use super::problem::Problem;
use crate::codes::ErrorCode;

/// A JSON body of type `T`. A body sent with another content type than
/// `application/json` (or another `+json` type) gets
/// `unsupported_media_type`, and one over the body limit gets
/// `payload_too_large`. A body that does not deserialize into `T` gets
/// `invalid_request`, naming the offending field.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(request.headers()) {
            return Err(Problem::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }

        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::new(
                        ErrorCode::PayloadTooLarge,
                        format!("the body is larger than {} bytes", super::MAX_BODY_BYTES),
                    )
                } else {
                    Problem::new(
                        ErrorCode::InvalidRequest,
                        format!("the body could not be read: {}", rejection.body_text()),
                    )
                }
            })?;

        parse_json(&bytes).map(ApiJson)
    }
}

fn has_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Deserializes a whole JSON document; an error names the path of the
/// field that failed, such as `requester.name`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let detail = match inner.classify() {
            Category::Data if path == "." => format!("the body is invalid: {inner}"),
            Category::Data => format!("`{path}` is invalid: {inner}"),
            Category::Syntax | Category::Eof | Category::Io => {
                format!("the body is not valid JSON: {inner}")
            }
        };
        Problem::new(ErrorCode::InvalidRequest, detail)
    })?;
    deserializer.end().map_err(|error| {
        Problem::new(
            ErrorCode::InvalidRequest,
            format!("the body is not valid JSON: {error}"),
        )
    })?;
    Ok(value)
}

/// The `{id}` path parameter of an approval request. A parameter that
/// cannot be decoded gets `not_found`, like any other id that names no
/// request.
pub struct ApiPath(pub String);

impl<S> FromRequestParts<S> for ApiPath
where
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(ApiPath(id)),
            Err(rejection) => Err(Problem::new(
                ErrorCode::NotFound,
                "no approval request with this id",
            )
            .with_log_message(format!("undecodable id in path: {}", rejection.body_text()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Inner,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
    }

    fn detail_of(body: &str) -> String {
        let problem = parse_json::<Outer>(body.as_bytes()).unwrap_err();
        assert_eq!(problem.code(), ErrorCode::InvalidRequest);
        problem.log_message().to_owned()
    }

    #[test]
    fn unknown_nested_field_is_named_with_its_path() {
        let detail = detail_of(r#"{"inner": {"name": "x", "extra": 1}}"#);

        assert!(
            detail.starts_with("`inner.extra` is invalid: unknown field `extra`"),
            "{detail}"
        );
    }

    #[test]
    fn wrong_type_is_named_with_its_path() {
        let detail = detail_of(r#"{"inner": {"name": 5}}"#);

        assert!(
            detail.starts_with("`inner.name` is invalid: invalid type: integer"),
            "{detail}"
        );
    }

    #[test]
    fn missing_field_is_reported() {
        let detail = detail_of(r#"{}"#);

        assert!(detail.contains("missing field `inner`"), "{detail}");
    }

    #[test]
    fn trailing_data_is_invalid_json() {
        let detail = detail_of(r#"{"inner": {"name": "x"}} {}"#);

        assert!(detail.starts_with("the body is not valid JSON"), "{detail}");
    }

    #[test]
    fn json_content_types_are_recognized() {
        for (value, expected) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
            ("application/jsonp", false),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(has_json_content_type(&headers), expected, "{value}");
        }
        assert!(!has_json_content_type(&HeaderMap::new()));
    }
}
