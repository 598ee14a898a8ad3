//! The one JSON error model of the HTTP API: every failure, from a bad name
//! to a lost ensemble session, is `{"code": "...", "message": "..."}` with a
//! stable `code` (docs/sidecar.md lists them) and a message that says what to
//! do. Extractor rejections (malformed JSON, oversized bodies, bad query
//! strings) are turned into the same shape, never axum's plain text.

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Stable error codes. Clients match on these, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// A group, lock, election, barrier or key name has illegal characters.
    InvalidName,
    /// The body or query is well-formed but a field is missing or invalid.
    InvalidRequest,
    /// The body is not valid JSON.
    MalformedJson,
    /// The body is larger than `--max-body-bytes`.
    BodyTooLarge,
    /// No such route.
    RouteNotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The key does not exist.
    KeyNotFound,
    /// The app lease does not exist (never created, revoked or lapsed).
    LeaseNotFound,
    /// The holder id is not a current holder of this lock/semaphore/group
    /// membership/leadership (released, lapsed with its lease, or never).
    NotHolder,
    /// The holder id is right but the fencing token is not this grant's.
    TokenMismatch,
    /// Compare-and-set failed: the key's version is not the expected one
    /// (or the key exists when creation was asked for).
    VersionConflict,
    /// The lock or semaphore is held by others (try, or timeout passed).
    LockBusy,
    /// A campaign or barrier wait did not complete within its timeout.
    TimedOut,
    /// The member name is already in the group (joined by someone else).
    AlreadyMember,
    /// The sidecar has no ensemble session right now.
    Unavailable,
    /// The sidecar is shutting down.
    ShuttingDown,
    /// A bug or an unexpected server answer; the message has details.
    Internal,
}

impl Code {
    pub fn status(self) -> StatusCode {
        use Code::*;
        match self {
            InvalidName | InvalidRequest | MalformedJson => StatusCode::BAD_REQUEST,
            BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RouteNotFound | KeyNotFound | LeaseNotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            TokenMismatch => StatusCode::FORBIDDEN,
            NotHolder | VersionConflict | LockBusy | TimedOut | AlreadyMember => StatusCode::CONFLICT,
            Unavailable | ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn as_str(self) -> &'static str {
        Code::ALL
            .iter()
            .find(|(c, _)| *c == self)
            .map(|(_, n)| *n)
            .unwrap_or("internal")
    }

    /// Every code with its wire name (docs and tests iterate it).
    pub const ALL: &'static [(Code, &'static str)] = &[
        (Code::InvalidName, "invalid_name"),
        (Code::InvalidRequest, "invalid_request"),
        (Code::MalformedJson, "malformed_json"),
        (Code::BodyTooLarge, "body_too_large"),
        (Code::RouteNotFound, "route_not_found"),
        (Code::MethodNotAllowed, "method_not_allowed"),
        (Code::KeyNotFound, "key_not_found"),
        (Code::LeaseNotFound, "lease_not_found"),
        (Code::NotHolder, "not_holder"),
        (Code::TokenMismatch, "token_mismatch"),
        (Code::VersionConflict, "version_conflict"),
        (Code::LockBusy, "lock_busy"),
        (Code::TimedOut, "timed_out"),
        (Code::AlreadyMember, "already_member"),
        (Code::Unavailable, "unavailable"),
        (Code::ShuttingDown, "shutting_down"),
        (Code::Internal, "internal"),
    ];
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub code: Code,
    /// What went wrong and what to do about it.
    pub message: String,
}

/// An API failure: a code and a message.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::InvalidRequest, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::Internal, message)
    }

    pub fn unavailable(detail: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            Code::Unavailable,
            format!(
                "the sidecar has no working session with the ensemble ({detail}); retry with \
                 backoff, GET /readyz turns 200 when it is back"
            ),
        )
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            code: self.code,
            message: self.message,
        };
        (status, axum::Json(body)).into_response()
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> ApiError {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                Code::BodyTooLarge,
                "the request body is larger than the sidecar accepts (--max-body-bytes); \
                 send a smaller value",
            )
        } else {
            ApiError::invalid(format!("cannot read the request body: {r}"))
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::new(Code::InvalidName, format!("bad path parameter: {r}"))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::invalid(format!(
            "bad query string: {}; see GET /openapi.json for the parameters",
            r.body_text()
        ))
    }
}

impl From<zonekeeper_client::Error> for ApiError {
    fn from(e: zonekeeper_client::Error) -> ApiError {
        use zonekeeper_client::Error as E;
        match e {
            E::ConnectionLoss | E::Timeout => ApiError::unavailable(&e),
            E::SessionExpired => ApiError::new(
                Code::Unavailable,
                "the ensemble expired the sidecar's session: everything it held for applications is \
                 gone; the sidecar is opening a new session — wait for GET /readyz to be 200, then \
                 acquire/join/campaign again",
            ),
            E::Closed => ApiError::new(
                Code::ShuttingDown,
                "the sidecar's session is closed; it is shutting down",
            ),
            E::InvalidArgument(m) => ApiError::invalid(m),
            e => ApiError::internal(format!("the ensemble refused the request: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for (code, name) in Code::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), *name);
            assert_eq!(code.as_str(), *name);
        }
    }
}
