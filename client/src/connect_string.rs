//! The connection string: `host:port[@zone],host:port[@zone]…[/chroot]`.
//!
//! The zone of each server is optional; servers without one are never
//! "home" but are still used for failover. The chroot, if present, starts
//! at the first `/` and applies to every path the client sends or receives.

use std::fmt;
use std::str::FromStr;

/// A parsed connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    pub servers: Vec<ServerAddr>,
    /// `Some("/app")` for `…/app`; `None` for no chroot (or a bare `/`).
    pub chroot: Option<String>,
}

/// One server of the connection string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerAddr {
    pub host: String,
    pub port: u16,
    pub zone: Option<String>,
}

impl ServerAddr {
    /// `host:port`, what is passed to `TcpStream::connect`.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.host_port())?;
        if let Some(z) = &self.zone {
            write!(f, "@{z}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ConnectString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.servers.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{s}")?;
        }
        if let Some(c) = &self.chroot {
            f.write_str(c)?;
        }
        Ok(())
    }
}

/// Why a connection string was refused; the message names the offending
/// part and the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid connection string {input:?}: {reason} (expected host:port[@zone],...[/chroot])")]
pub struct ParseError {
    pub input: String,
    pub reason: String,
}

impl FromStr for ConnectString {
    type Err = ParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ParseError {
            input: input.to_string(),
            reason,
        };
        let s = input.trim();
        let (hosts, chroot) = match s.find('/') {
            Some(i) => (&s[..i], Some(&s[i..])),
            None => (s, None),
        };
        let chroot = match chroot {
            None | Some("/") => None,
            Some(c) => {
                crate::chroot::validate_path(c).map_err(|e| err(format!("chroot {c:?}: {e}")))?;
                Some(c.to_string())
            }
        };
        let mut servers = Vec::new();
        for part in hosts.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(err("empty server entry".into()));
            }
            let (addr, zone) = match part.split_once('@') {
                Some((a, z)) => {
                    if z.is_empty() || z.contains(|c: char| c.is_whitespace() || c == '@') {
                        return Err(err(format!("bad zone in {part:?}")));
                    }
                    (a, Some(z.to_string()))
                }
                None => (part, None),
            };
            let (host, port) =
                split_host_port(addr).ok_or_else(|| err(format!("{part:?} is not host:port")))?;
            let port: u16 = port
                .parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| err(format!("bad port {port:?} in {part:?}")))?;
            if host.is_empty() {
                return Err(err(format!("empty host in {part:?}")));
            }
            servers.push(ServerAddr {
                host: host.to_string(),
                port,
                zone,
            });
        }
        Ok(ConnectString { servers, chroot })
    }
}

/// `host:port` or `[v6]:port`.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        return Some((h, p));
    }
    s.rsplit_once(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_and_chroot() {
        let c: ConnectString = "a:1@z1, b:2@z2,c:3/app/x".parse().unwrap();
        assert_eq!(c.servers.len(), 3);
        assert_eq!(c.servers[0].zone.as_deref(), Some("z1"));
        assert_eq!(c.servers[1].host, "b");
        assert_eq!(c.servers[2].zone, None);
        assert_eq!(c.chroot.as_deref(), Some("/app/x"));
        assert_eq!(c.to_string(), "a:1@z1,b:2@z2,c:3/app/x");
        let v6: ConnectString = "[::1]:2181@z".parse().unwrap();
        assert_eq!(v6.servers[0].host, "::1");
        assert_eq!(v6.servers[0].host_port(), "[::1]:2181");
        assert_eq!("a:1/".parse::<ConnectString>().unwrap().chroot, None);
    }

    #[test]
    fn bad_input_is_refused_with_the_reason() {
        for bad in [
            "", "a", "a:", "a:0", "a:x", ":1", "a:1,", "a:1@", "a:1/x/", "a:1//x", "a:1@z@y",
        ] {
            let e = bad.parse::<ConnectString>().unwrap_err();
            assert!(e.to_string().contains("expected host:port"), "{bad}: {e}");
        }
    }
}
