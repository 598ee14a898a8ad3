//! The client's error, split by what the caller must do about it.

use proto::ErrorCode;

/// Why an operation failed.
///
/// | variant | outcome of the request | what to do |
/// |---|---|---|
/// | `Server(code)` | the server refused it; nothing changed | depends on the code (`NoNode`, `NodeExists`, `BadVersion`…) |
/// | `ConnectionLoss` | **unknown**: a write may or may not have been applied | retry (the session lives on); make writes idempotent or check first |
/// | `Timeout` | not sent: nothing changed | retry |
/// | `SessionExpired` | the session is gone, with its ephemerals and watches | create a new `Client` and rebuild state |
/// | `Closed` | the client was closed | — |
/// | `InvalidArgument` | not sent | fix the call |
/// | `Protocol` | the server sent something undecodable; the connection was replaced | report a bug |
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("server error: {0}")]
    Server(ErrorCode),
    #[error("connection lost before the reply arrived; the request may or may not have been applied")]
    ConnectionLoss,
    #[error("session expired: its ephemeral nodes and watches are gone; create a new client")]
    SessionExpired,
    #[error("request not sent within the request timeout (no server reachable)")]
    Timeout,
    #[error("client closed")]
    Closed,
    #[error("authentication failed: check the credentials in the client configuration")]
    AuthFailed,
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl Error {
    /// The ZooKeeper error code this corresponds to, if any.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server(c) => Some(*c),
            Error::ConnectionLoss => Some(ErrorCode::ConnectionLoss),
            Error::SessionExpired => Some(ErrorCode::SessionExpired),
            Error::Timeout => Some(ErrorCode::OperationTimeout),
            Error::AuthFailed => Some(ErrorCode::AuthFailed),
            Error::InvalidArgument(_) => Some(ErrorCode::BadArguments),
            Error::Protocol(_) => Some(ErrorCode::MarshallingError),
            Error::Closed => None,
        }
    }

    /// True if the same request may succeed when tried again on this
    /// client (the session still exists). For [`Error::ConnectionLoss`] the
    /// first attempt may have been applied: a retried create can answer
    /// `NodeExists`, a retried versioned set `BadVersion`.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::ConnectionLoss | Error::Timeout => true,
            Error::Server(c) => matches!(
                c,
                ErrorCode::ConnectionLoss
                    | ErrorCode::OperationTimeout
                    | ErrorCode::Throttled
                    | ErrorCode::SessionMoved
            ),
            _ => false,
        }
    }
}

impl From<ErrorCode> for Error {
    fn from(c: ErrorCode) -> Self {
        match c {
            ErrorCode::SessionExpired => Error::SessionExpired,
            ErrorCode::ConnectionLoss => Error::ConnectionLoss,
            ErrorCode::AuthFailed => Error::AuthFailed,
            c => Error::Server(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retriable_and_codes() {
        assert!(Error::ConnectionLoss.is_retriable());
        assert!(Error::Timeout.is_retriable());
        assert!(!Error::SessionExpired.is_retriable());
        assert!(!Error::Server(ErrorCode::NoNode).is_retriable());
        assert_eq!(Error::from(ErrorCode::NoNode).code(), Some(ErrorCode::NoNode));
        assert_eq!(Error::from(ErrorCode::SessionExpired), Error::SessionExpired);
    }
}
