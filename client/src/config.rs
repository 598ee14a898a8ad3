//! What a [`crate::Client`] is created with.

use std::time::Duration;

use crate::connect_string::ConnectString;

/// Connection settings. Build with [`ClientConfig::new`] and the `with_*`
/// setters; every field is public for callers that prefer struct syntax.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub servers: ConnectString,
    /// Own zone. `None`: the zone whose servers answer a probe fastest,
    /// measured once at [`crate::Client::connect`] (see
    /// [`crate::host_selection`]).
    pub zone: Option<String>,
    /// Requested session timeout; the server may negotiate it into its
    /// bounds. Default 10 s.
    pub session_timeout: Duration,
    /// How long a request may wait for its reply. A request not yet sent
    /// when this passes fails with [`crate::Error::Timeout`] (it was never
    /// sent); one that was sent fails with
    /// [`crate::Error::ConnectionLoss`] and the connection is replaced (the
    /// server did not answer in time). Default 10 s.
    pub request_timeout: Duration,
    /// Authentication sent on every connection, e.g.
    /// `("digest", b"user:password")`.
    pub auth: Vec<(String, Vec<u8>)>,
    /// While connected outside the own zone, how often own-zone servers are
    /// probed; when one is healthy and caught up, the client moves back to
    /// it, keeping the session. Default 5 s.
    pub return_home_interval: Duration,
    /// How long one TCP connect + handshake attempt may take. Default 2 s.
    pub connect_timeout: Duration,
}

impl ClientConfig {
    pub fn new(servers: ConnectString) -> Self {
        ClientConfig {
            servers,
            zone: None,
            session_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            auth: Vec::new(),
            return_home_interval: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
        }
    }

    pub fn with_zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = Some(zone.into());
        self
    }

    pub fn with_session_timeout(mut self, t: Duration) -> Self {
        self.session_timeout = t;
        self
    }

    pub fn with_request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = t;
        self
    }

    /// Adds an authentication (e.g. `("digest", "user:password")`).
    pub fn with_auth(mut self, scheme: impl Into<String>, auth: impl Into<Vec<u8>>) -> Self {
        self.auth.push((scheme.into(), auth.into()));
        self
    }

    pub fn with_return_home_interval(mut self, t: Duration) -> Self {
        self.return_home_interval = t;
        self
    }

    pub fn with_connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }
}
