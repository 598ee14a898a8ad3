//! Command line and environment of `zonekeeper-sidecar`, and the checks that
//! turn them into a [`Config`]: the HTTP API and the ZooKeeper proxy listen
//! on loopback addresses only (the API has no authentication: anything that
//! can reach it can take the application's locks).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use zonekeeper_client::ConnectString;

/// Default HTTP API address (docs/sidecar.md).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7181";

#[derive(Parser, Debug, Clone)]
#[command(
    name = "zonekeeper-sidecar",
    version,
    about = "Localhost HTTP API for membership, locks, elections, barriers and key/value, backed by a zonekeeper ensemble"
)]
pub struct Cli {
    /// The ensemble: `host:port@zone,host:port@zone[/chroot]` (zones optional).
    #[arg(long, env = "ZONEKEEPER_SERVERS")]
    pub servers: String,
    /// Where the HTTP API listens; a loopback address.
    #[arg(long, env = "ZONEKEEPER_SIDECAR_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// This pod's zone (Kubernetes: `topology.kubernetes.io/zone` of the node,
    /// passed in as env `ZONE`). Unset: the zone whose servers answer fastest.
    #[arg(long, env = "ZONE")]
    pub zone: Option<String>,
    /// Also listen for ZooKeeper-protocol clients here (a loopback address,
    /// e.g. 127.0.0.1:2181) and pipe them to the ensemble, zone-aware.
    #[arg(long, env = "ZONEKEEPER_SIDECAR_ZK_PROXY")]
    pub zk_proxy: Option<SocketAddr>,
    /// The znode under which the sidecar keeps groups, locks, elections…
    /// Every sidecar of one application must use the same root.
    #[arg(long, env = "ZONEKEEPER_SIDECAR_ROOT", default_value = "/zonekeeper")]
    pub root: String,
    /// Ensemble session timeout, in milliseconds.
    #[arg(long, env = "ZONEKEEPER_SIDECAR_SESSION_TIMEOUT_MS", default_value_t = 10_000)]
    pub session_timeout_ms: u64,
    /// Largest accepted HTTP request body, in bytes.
    #[arg(long, env = "ZONEKEEPER_SIDECAR_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub servers: ConnectString,
    pub listen: SocketAddr,
    pub zone: Option<String>,
    pub zk_proxy: Option<SocketAddr>,
    pub root: String,
    pub session_timeout: Duration,
    pub max_body_bytes: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("--servers {0:?} is not a connect string: {1}; use host:port@zone,host:port@zone")]
    Servers(String, String),
    #[error(
        "{flag} {addr} is not a loopback address; the sidecar serves only its own pod, \
         use 127.0.0.1:{port} (or [::1]:{port})"
    )]
    NotLoopback {
        flag: &'static str,
        addr: SocketAddr,
        port: u16,
    },
    #[error("--root {0:?} must be an absolute znode path without a trailing slash, e.g. /zonekeeper")]
    Root(String),
    #[error("--session-timeout-ms {0} is out of range; use 1000..=120000")]
    SessionTimeout(u64),
    #[error("--max-body-bytes {0} is out of range; use 1024..=16777216")]
    MaxBody(usize),
    #[error("--listen and --zk-proxy are both {0}; give them different ports")]
    SameAddr(SocketAddr),
}

fn loopback(flag: &'static str, addr: SocketAddr) -> Result<SocketAddr, ConfigError> {
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(ConfigError::NotLoopback {
            flag,
            addr,
            port: addr.port(),
        })
    }
}

impl Config {
    pub fn from_cli(cli: &Cli) -> Result<Config, ConfigError> {
        let servers: ConnectString =
            cli.servers
                .parse()
                .map_err(|e: zonekeeper_client::connect_string::ParseError| {
                    ConfigError::Servers(cli.servers.clone(), e.to_string())
                })?;
        let listen = loopback("--listen", cli.listen)?;
        let zk_proxy = cli.zk_proxy.map(|a| loopback("--zk-proxy", a)).transpose()?;
        if zk_proxy == Some(listen) && listen.port() != 0 {
            return Err(ConfigError::SameAddr(listen));
        }
        let root = cli.root.clone();
        if !root.starts_with('/') || root.len() < 2 || root.ends_with('/') || root.contains("//") {
            return Err(ConfigError::Root(root));
        }
        if !(1000..=120_000).contains(&cli.session_timeout_ms) {
            return Err(ConfigError::SessionTimeout(cli.session_timeout_ms));
        }
        if !(1024..=16 * 1024 * 1024).contains(&cli.max_body_bytes) {
            return Err(ConfigError::MaxBody(cli.max_body_bytes));
        }
        Ok(Config {
            servers,
            listen,
            zone: cli.zone.clone().filter(|z| !z.is_empty()),
            zk_proxy,
            root,
            session_timeout: Duration::from_millis(cli.session_timeout_ms),
            max_body_bytes: cli.max_body_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Result<Config, ConfigError> {
        let mut v = vec!["zonekeeper-sidecar", "--servers", "127.0.0.1:2181@zone-a"];
        v.extend_from_slice(args);
        Config::from_cli(&Cli::try_parse_from(v).unwrap())
    }

    #[test]
    fn defaults_are_the_contracts() {
        let c = cli(&[]).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.root, "/zonekeeper");
        assert_eq!(c.zk_proxy, None);
        assert_eq!(c.servers.servers[0].zone.as_deref(), Some("zone-a"));
    }

    #[test]
    fn non_loopback_addresses_are_refused() {
        let e = cli(&["--listen", "0.0.0.0:7181"]).unwrap_err();
        assert!(
            matches!(e, ConfigError::NotLoopback { flag: "--listen", .. }),
            "{e}"
        );
        assert!(e.to_string().contains("use 127.0.0.1:7181"), "{e}");
        let e = cli(&["--zk-proxy", "10.0.0.1:2181"]).unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::NotLoopback {
                    flag: "--zk-proxy",
                    ..
                }
            ),
            "{e}"
        );
        cli(&["--listen", "[::1]:7181", "--zk-proxy", "127.0.0.1:2181"]).unwrap();
    }

    #[test]
    fn bad_values_are_refused_with_what_to_do() {
        assert!(matches!(cli(&["--root", "x"]), Err(ConfigError::Root(_))));
        assert!(matches!(cli(&["--root", "/a/"]), Err(ConfigError::Root(_))));
        assert!(matches!(
            cli(&["--session-timeout-ms", "5"]),
            Err(ConfigError::SessionTimeout(5))
        ));
        let e = Config::from_cli(&Cli::try_parse_from(["s", "--servers", "nope:port"]).unwrap()).unwrap_err();
        assert!(matches!(e, ConfigError::Servers(..)), "{e}");
    }
}
