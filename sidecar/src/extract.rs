//! Request extractors that fail with our JSON errors instead of axum's text.
//!
//! [`Body`] reads the body as JSON whatever the `Content-Type` (curl's `-d`
//! sends `application/x-www-form-urlencoded`), treats an empty body as `{}`
//! so optional-only requests need none, and maps syntax errors to
//! `malformed_json`, type/field errors to `invalid_request` and a body over
//! the limit to `body_too_large` (413).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Code};

/// A JSON request body.
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await?;
        parse(&bytes).map(Body)
    }
}

/// Parses a request body (empty = `{}`).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(text).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => ApiError::new(
                Code::MalformedJson,
                format!("the request body is not valid JSON ({e}); send a JSON object"),
            ),
            Category::Data => ApiError::invalid(format!(
                "the request body does not fit this route ({e}); see GET /openapi.json"
            )),
        }
    })
}

/// Query parameters, rejected with our JSON error.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(q) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(q))
    }
}

/// Path parameters, rejected with our JSON error.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(p) = axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Put {
        value: String,
    }

    #[derive(serde::Deserialize, Debug, Default)]
    #[serde(default)]
    #[allow(dead_code)]
    struct Opt {
        timeout_ms: u64,
    }

    #[test]
    fn classifies_bad_bodies() {
        assert_eq!(
            parse::<Put>(b"{\"value\":").unwrap_err().code,
            Code::MalformedJson
        );
        assert_eq!(parse::<Put>(b"not json").unwrap_err().code, Code::MalformedJson);
        assert_eq!(parse::<Put>(b"{}").unwrap_err().code, Code::InvalidRequest);
        assert_eq!(
            parse::<Put>(b"{\"value\":3}").unwrap_err().code,
            Code::InvalidRequest
        );
        assert_eq!(parse::<Opt>(b"").unwrap().timeout_ms, 0);
        assert_eq!(parse::<Opt>(b"{\"timeout_ms\":5}").unwrap().timeout_ms, 5);
    }
}
