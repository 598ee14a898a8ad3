//! Zones: which zone is home, in which order servers are tried, and the
//! probe that says whether a server is worth moving to.
//!
//! **The probe** is ZooKeeper's `srvr` four-letter word on the client port
//! (on every server's default whitelist): TCP connect, send `srvr`, read the
//! answer. A server is *healthy* if it answers with a `Zxid:` line (a member
//! that is not serving — no leader, no quorum — answers "not currently
//! serving requests" instead). Its zxid tells whether it has caught up with
//! what the session has seen, so a move to it will not be refused.
//!
//! **Own zone by measurement**: when no zone is configured, every server
//! that has a zone is probed three times at start (sequentially, per server
//! in parallel); a server's round trip is its fastest healthy probe, and the
//! own zone is the zone of the server with the lowest round trip. If none
//! answers, there is no own zone and all servers are treated alike.
//!
//! **Order of attempts** ([`HostSelector::round`]): own-zone servers in
//! random order, then all other servers in random order. Each connection
//! loss starts from the top again, so a recovered own-zone server is used
//! at the next reconnect; while connected elsewhere the session task probes
//! own-zone servers every `return_home_interval` and moves back when one is
//! healthy and caught up.

use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::connect_string::ServerAddr;

/// The servers and the own zone.
#[derive(Debug, Clone)]
pub struct HostSelector {
    servers: Vec<ServerAddr>,
    home: Option<String>,
}

impl HostSelector {
    pub fn new(servers: Vec<ServerAddr>, home: Option<String>) -> HostSelector {
        HostSelector { servers, home }
    }

    pub fn servers(&self) -> &[ServerAddr] {
        &self.servers
    }

    pub fn home(&self) -> Option<&str> {
        self.home.as_deref()
    }

    /// True if `server` is in the own zone (always false without one).
    pub fn is_home(&self, server: &ServerAddr) -> bool {
        matches!((&self.home, &server.zone), (Some(h), Some(z)) if h == z)
    }

    /// The own-zone servers.
    pub fn home_servers(&self) -> Vec<ServerAddr> {
        self.servers.iter().filter(|s| self.is_home(s)).cloned().collect()
    }

    /// One round of connection attempts: own-zone servers shuffled, then
    /// the rest shuffled.
    pub fn round<R: Rng>(&self, rng: &mut R) -> Vec<ServerAddr> {
        let (mut home, mut away): (Vec<_>, Vec<_>) =
            self.servers.iter().cloned().partition(|s| self.is_home(s));
        home.shuffle(rng);
        away.shuffle(rng);
        home.extend(away);
        home
    }
}

/// What a healthy server said to a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeReply {
    pub rtt: Duration,
    /// The last zxid the server has applied.
    pub zxid: i64,
}

/// Probes `server` with `srvr`; `None` if it is unreachable, too slow or
/// not serving.
pub async fn probe(server: &ServerAddr, timeout: Duration) -> Option<ProbeReply> {
    let start = Instant::now();
    let fut = async {
        let mut s = TcpStream::connect(server.host_port()).await.ok()?;
        s.write_all(b"srvr").await.ok()?;
        let mut out = Vec::new();
        s.take(64 * 1024).read_to_end(&mut out).await.ok()?;
        parse_srvr(&String::from_utf8_lossy(&out))
    };
    let zxid = tokio::time::timeout(timeout, fut).await.ok()??;
    Some(ProbeReply {
        rtt: start.elapsed(),
        zxid,
    })
}

/// The zxid in a `srvr` answer (`Zxid: 0x1a`), if the server is serving.
pub fn parse_srvr(text: &str) -> Option<i64> {
    let line = text.lines().find_map(|l| l.strip_prefix("Zxid:"))?;
    let hex = line.trim().trim_start_matches("0x");
    i64::from_str_radix(hex, 16).ok()
}

/// The zone of the fastest server among `(server, best round trip)`;
/// servers without a zone or an answer do not count.
pub fn pick_zone(measured: &[(ServerAddr, Option<Duration>)]) -> Option<String> {
    measured
        .iter()
        .filter_map(|(s, rtt)| Some((s.zone.clone()?, (*rtt)?)))
        .min_by_key(|(_, rtt)| *rtt)
        .map(|(z, _)| z)
}

/// Measures the own zone (see the module doc).
pub async fn measure_own_zone(servers: &[ServerAddr], timeout: Duration) -> Option<String> {
    let tasks: Vec<_> = servers
        .iter()
        .filter(|s| s.zone.is_some())
        .cloned()
        .map(|s| {
            tokio::spawn(async move {
                let mut best: Option<Duration> = None;
                for _ in 0..3 {
                    if let Some(p) = probe(&s, timeout).await {
                        best = Some(best.map_or(p.rtt, |b| b.min(p.rtt)));
                    }
                }
                (s, best)
            })
        })
        .collect();
    let mut measured = Vec::new();
    for t in tasks {
        if let Ok(m) = t.await {
            tracing::debug!(server = %m.0, rtt = ?m.1, "zone measurement");
            measured.push(m);
        }
    }
    let zone = pick_zone(&measured);
    tracing::info!(zone = ?zone, "own zone picked by measured round trips");
    zone
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn addr(host: &str, zone: Option<&str>) -> ServerAddr {
        ServerAddr {
            host: host.into(),
            port: 1,
            zone: zone.map(Into::into),
        }
    }

    #[test]
    fn home_servers_come_first_in_random_order() {
        let servers = vec![
            addr("a1", Some("a")),
            addr("b1", Some("b")),
            addr("a2", Some("a")),
            addr("n", None),
        ];
        let sel = HostSelector::new(servers, Some("a".into()));
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..50 {
            let r = sel.round(&mut rng);
            assert_eq!(r.len(), 4);
            assert!(sel.is_home(&r[0]) && sel.is_home(&r[1]));
            assert!(!sel.is_home(&r[2]) && !sel.is_home(&r[3]));
            firsts.insert(r[0].host.clone());
        }
        assert_eq!(firsts.len(), 2, "both home servers are picked first sometimes");
        let none = HostSelector::new(vec![addr("x", Some("a"))], None);
        assert!(!none.is_home(&addr("x", Some("a"))));
    }

    #[test]
    fn zone_of_the_fastest_answering_server() {
        let ms = Duration::from_millis;
        let m = vec![
            (addr("a1", Some("a")), Some(ms(5))),
            (addr("b1", Some("b")), Some(ms(2))),
            (addr("c1", Some("c")), None),
            (addr("n", None), Some(ms(1))),
        ];
        assert_eq!(pick_zone(&m), Some("b".into()));
        assert_eq!(pick_zone(&m[2..3]), None);
    }

    #[test]
    fn srvr_answers() {
        let ok = "Zookeeper version: 3.9\nLatency min/avg/max: 0/0/0\nZxid: 0x1a\nMode: leader\n";
        assert_eq!(parse_srvr(ok), Some(0x1a));
        assert_eq!(
            parse_srvr("This ZooKeeper instance is not currently serving requests\n"),
            None
        );
    }
}
