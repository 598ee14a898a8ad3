//! ZooKeeper's error codes (`KeeperException.Code`), the numbers a client
//! expects in a reply header. Every mapping from a server failure to a code
//! a client sees goes through [`ErrorCode`].

/// An error code on the wire. `Ok` is 0; everything else is negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ErrorCode {
    Ok = 0,
    SystemError = -1,
    RuntimeInconsistency = -2,
    DataInconsistency = -3,
    ConnectionLoss = -4,
    MarshallingError = -5,
    Unimplemented = -6,
    OperationTimeout = -7,
    BadArguments = -8,
    UnknownSession = -12,
    NewConfigNoQuorum = -13,
    ReconfigInProgress = -14,
    ApiError = -100,
    NoNode = -101,
    NoAuth = -102,
    BadVersion = -103,
    NoChildrenForEphemerals = -108,
    NodeExists = -110,
    NotEmpty = -111,
    SessionExpired = -112,
    InvalidCallback = -113,
    InvalidAcl = -114,
    AuthFailed = -115,
    SessionMoved = -118,
    NotReadOnly = -119,
    EphemeralOnLocalSession = -120,
    /// Java's `NOWATCHER` (-121). Some client crates use another number;
    /// the server follows ZooKeeper.
    NoWatcher = -121,
    RequestTimeout = -122,
    ReconfigDisabled = -123,
    SessionClosedRequireSaslAuth = -124,
    QuotaExceeded = -125,
    /// Java's `THROTTLEDOP` (-127).
    Throttled = -127,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 32] = [
        ErrorCode::Ok,
        ErrorCode::SystemError,
        ErrorCode::RuntimeInconsistency,
        ErrorCode::DataInconsistency,
        ErrorCode::ConnectionLoss,
        ErrorCode::MarshallingError,
        ErrorCode::Unimplemented,
        ErrorCode::OperationTimeout,
        ErrorCode::BadArguments,
        ErrorCode::UnknownSession,
        ErrorCode::NewConfigNoQuorum,
        ErrorCode::ReconfigInProgress,
        ErrorCode::ApiError,
        ErrorCode::NoNode,
        ErrorCode::NoAuth,
        ErrorCode::BadVersion,
        ErrorCode::NoChildrenForEphemerals,
        ErrorCode::NodeExists,
        ErrorCode::NotEmpty,
        ErrorCode::SessionExpired,
        ErrorCode::InvalidCallback,
        ErrorCode::InvalidAcl,
        ErrorCode::AuthFailed,
        ErrorCode::SessionMoved,
        ErrorCode::NotReadOnly,
        ErrorCode::EphemeralOnLocalSession,
        ErrorCode::NoWatcher,
        ErrorCode::RequestTimeout,
        ErrorCode::ReconfigDisabled,
        ErrorCode::SessionClosedRequireSaslAuth,
        ErrorCode::QuotaExceeded,
        ErrorCode::Throttled,
    ];

    pub fn code(self) -> i32 {
        self as i32
    }

    pub fn from_code(code: i32) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|c| c.code() == code)
    }

    /// ZooKeeper's name for the code, as in `KeeperException.Code`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Ok => "OK",
            ErrorCode::SystemError => "SYSTEMERROR",
            ErrorCode::RuntimeInconsistency => "RUNTIMEINCONSISTENCY",
            ErrorCode::DataInconsistency => "DATAINCONSISTENCY",
            ErrorCode::ConnectionLoss => "CONNECTIONLOSS",
            ErrorCode::MarshallingError => "MARSHALLINGERROR",
            ErrorCode::Unimplemented => "UNIMPLEMENTED",
            ErrorCode::OperationTimeout => "OPERATIONTIMEOUT",
            ErrorCode::BadArguments => "BADARGUMENTS",
            ErrorCode::UnknownSession => "UNKNOWNSESSION",
            ErrorCode::NewConfigNoQuorum => "NEWCONFIGNOQUORUM",
            ErrorCode::ReconfigInProgress => "RECONFIGINPROGRESS",
            ErrorCode::ApiError => "APIERROR",
            ErrorCode::NoNode => "NONODE",
            ErrorCode::NoAuth => "NOAUTH",
            ErrorCode::BadVersion => "BADVERSION",
            ErrorCode::NoChildrenForEphemerals => "NOCHILDRENFOREPHEMERALS",
            ErrorCode::NodeExists => "NODEEXISTS",
            ErrorCode::NotEmpty => "NOTEMPTY",
            ErrorCode::SessionExpired => "SESSIONEXPIRED",
            ErrorCode::InvalidCallback => "INVALIDCALLBACK",
            ErrorCode::InvalidAcl => "INVALIDACL",
            ErrorCode::AuthFailed => "AUTHFAILED",
            ErrorCode::SessionMoved => "SESSIONMOVED",
            ErrorCode::NotReadOnly => "NOTREADONLY",
            ErrorCode::EphemeralOnLocalSession => "EPHEMERALONLOCALSESSION",
            ErrorCode::NoWatcher => "NOWATCHER",
            ErrorCode::RequestTimeout => "REQUESTTIMEOUT",
            ErrorCode::ReconfigDisabled => "RECONFIGDISABLED",
            ErrorCode::SessionClosedRequireSaslAuth => "SESSIONCLOSEDREQUIRESASLAUTH",
            ErrorCode::QuotaExceeded => "QUOTAEXCEEDED",
            ErrorCode::Throttled => "THROTTLEDOP",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

impl std::error::Error for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(c.code()), Some(c));
        }
        let mut codes: Vec<i32> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
        assert_eq!(ErrorCode::from_code(-9999), None);
    }

    #[test]
    fn numbers_match_keeper_exception() {
        // KeeperException.Code in ZooKeeper 3.9.
        assert_eq!(ErrorCode::NoNode.code(), -101);
        assert_eq!(ErrorCode::NodeExists.code(), -110);
        assert_eq!(ErrorCode::NoWatcher.code(), -121);
        assert_eq!(ErrorCode::ReconfigDisabled.code(), -123);
        assert_eq!(ErrorCode::Throttled.code(), -127);
        assert_eq!(ErrorCode::Throttled.name(), "THROTTLEDOP");
    }
}
