//! ZooKeeper's four-letter words (`ruok`, `srvr`, `mntr`, …) on the client
//! port.
//!
//! A connection whose first four bytes spell a known word is a command, not
//! a session: the server writes the answer and closes the connection
//! (ZooKeeper `NIOServerCnxn.checkFourLetterWord`). [`detect`] makes that
//! decision, [`Whitelist`] says which words may run
//! (`4lw.commands.whitelist`), and [`respond`] produces the exact text
//! ZooKeeper 3.8 writes (the `*Command` classes in
//! `org.apache.zookeeper.server.command`), because kazoo, `zkServer.sh` and
//! monitoring agents parse it.
//!
//! Owns: the word list, whitelist rules and output formats. Must not: touch
//! sockets (conn.rs writes the text and closes), or read server state other
//! than through [`StatusSource`]. The only side effects are the `srst`/`crst`
//! resets, made through the trait.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::status::{zookeeper_full_version, Role, StatusSource};

/// Every word this server answers, sorted.
///
/// ZooKeeper also knows `gtmk`, `stmk` and `hash` (trace masks and digests,
/// which we do not have); on our port those bytes read as an oversized
/// length prefix and the connection is closed, which is what ZooKeeper does
/// for any word it does not execute.
pub const ALL_WORDS: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "isro", "mntr", "ruok", "srst", "srvr", "stat", "wchc",
    "wchp", "wchs",
];

/// The words allowed when nothing is configured (ARCHITECTURE.md
/// "Contracts": standalone server).
pub const DEFAULT_WORDS: &str = "ruok, srvr, mntr";

/// ZooKeeper's answer (`AbstractFourLetterCommand.ZK_NOT_SERVING`) while the
/// server has no leader or has not caught up.
pub const ZK_NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// A whitelist entry that names no four-letter word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown four-letter word `{word}`; known words are {known} (or `*` for all)", known = ALL_WORDS.join(", "))]
pub struct UnknownWord {
    /// The entry as written.
    pub word: String,
}

/// The set of words that may run (ZooKeeper's `4lw.commands.whitelist`).
///
/// As in ZooKeeper (`FourLetterCommands.isEnabled`), `srvr` is always
/// allowed: `zkServer.sh status` and other tooling depend on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whitelist(BTreeSet<&'static str>);

impl Whitelist {
    /// Parses `"ruok, srvr, mntr"` or `"*"` leniently: entries are split on
    /// commas and trimmed, `*` allows every word, empty and unknown entries
    /// are ignored (as ZooKeeper ignores them).
    pub fn parse(s: &str) -> Self {
        let mut set = BTreeSet::new();
        for entry in s.split(',').map(str::trim) {
            if entry == "*" {
                return Self::all();
            }
            if let Some(word) = known(entry) {
                set.insert(word);
            }
        }
        Whitelist(set)
    }

    /// Like [`Whitelist::parse`] but rejects entries that name no word, so a
    /// typo in the config file is reported instead of silently disabling a
    /// command.
    pub fn try_parse(s: &str) -> Result<Self, UnknownWord> {
        for entry in s.split(',').map(str::trim) {
            if !entry.is_empty() && entry != "*" && known(entry).is_none() {
                return Err(UnknownWord {
                    word: entry.to_string(),
                });
            }
        }
        Ok(Self::parse(s))
    }

    /// Every word (`"*"`).
    pub fn all() -> Self {
        Whitelist(ALL_WORDS.iter().copied().collect())
    }

    /// `ruok`, `srvr`, `mntr` ([`DEFAULT_WORDS`]).
    pub fn default_set() -> Self {
        Self::parse(DEFAULT_WORDS)
    }

    /// May `word` run? `srvr` always may.
    pub fn allows(&self, word: &str) -> bool {
        word == "srvr" || self.0.contains(word)
    }
}

impl Default for Whitelist {
    fn default() -> Self {
        Self::default_set()
    }
}

impl std::fmt::Display for Whitelist {
    /// The words as a config value, e.g. `"mntr, ruok, srvr"`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let words: Vec<&str> = self.0.iter().copied().collect();
        f.write_str(&words.join(", "))
    }
}

fn known(word: &str) -> Option<&'static str> {
    ALL_WORDS.iter().copied().find(|w| *w == word)
}

/// Is this 4-byte start of a connection a four-letter word?
///
/// ZooKeeper reads the first four bytes as the big-endian length of the
/// ConnectRequest and checks that integer against the known commands. Any
/// word here decodes to a length above 0x63000000, far beyond the packet
/// limit, so a real ConnectRequest never collides. Only call this on the
/// first packet of a connection; later packets are never commands.
pub fn detect(first4: &[u8; 4]) -> Option<&'static str> {
    ALL_WORDS
        .iter()
        .copied()
        .find(|w| w.as_bytes() == first4.as_slice())
}

/// The static configuration `conf` prints (ZooKeeper `dumpConf`). Built
/// from the config by `Config::conf_summary`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfSummary {
    /// Port of the client address (`clientPort`).
    pub client_port: u16,
    /// Absolute data directory (`dataDir`).
    pub data_dir: String,
    /// Absolute directory of the write-ahead log (`dataLogDir`); the same as
    /// `data_dir` unless storage splits them.
    pub data_log_dir: String,
    /// `tickTime` in ms.
    pub tick_ms: u64,
    /// Connections allowed per client IP, 0 = unlimited (`maxClientCnxns`).
    pub max_client_cnxns: u32,
    /// `minSessionTimeout` in ms.
    pub min_session_timeout_ms: u64,
    /// `maxSessionTimeout` in ms.
    pub max_session_timeout_ms: u64,
    /// `serverId`.
    pub server_id: u64,
    /// Port of the peer address; ZooKeeper's `quorumPort` and
    /// `electionPort` (raft uses one port for both).
    pub peer_port: u16,
}

/// The text the server writes back before closing the connection.
///
/// A known word that is not whitelisted gets ZooKeeper's
/// `"<word> is not executed because it is not in the whitelist.\n"`; a word
/// that is not in [`ALL_WORDS`] gets an empty answer (close without
/// writing).
pub fn respond(word: &str, whitelist: &Whitelist, src: &dyn StatusSource, conf: &ConfSummary) -> String {
    if known(word).is_none() {
        return String::new();
    }
    if !whitelist.allows(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    // The commands ZooKeeper runs without checking isZKServerRunning().
    match word {
        "ruok" => return "imok".to_string(),
        "envi" => return envi(src),
        "isro" => return if src.is_ready() { "rw" } else { "null" }.to_string(),
        _ => {}
    }
    if !src.is_ready() {
        return format!("{ZK_NOT_SERVING}\n");
    }
    match word {
        "srvr" => stat(src, false),
        "stat" => stat(src, true),
        "mntr" => mntr(src),
        "conf" => conf_text(src, conf),
        "cons" => cons(src),
        "crst" => {
            src.reset_connection_stats();
            "Connection stats reset.\n".to_string()
        }
        "srst" => {
            src.reset_server_stats();
            "Server stats reset.\n".to_string()
        }
        "wchs" => {
            let (conns, paths, total) = src.watch_summary();
            format!("{conns} connections watching {paths} paths\nTotal watches:{total}\n")
        }
        "wchc" => wchc(src),
        "wchp" => wchp(src),
        "dump" => dump(src),
        "dirs" => {
            let stats = src.stats();
            format!(
                "datadir_size: {}\nlogdir_size: {}\n",
                stats.data_dir_size, stats.log_dir_size
            )
        }
        _ => unreachable!("every word in ALL_WORDS is handled"),
    }
}

/// Formats a double the way Java's `Double.toString` does for the values we
/// print (`0.0`, `1.5`, `0.7561`, `1.0E-4`), after ZooKeeper's rounding of
/// averages to four decimals (`AvgMinMaxCounter.getAvg`).
fn java_double(v: f64) -> String {
    let v = (v * 10_000.0).round() / 10_000.0;
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if v == 0.0 || (1e-3..1e7).contains(&v.abs()) {
        let s = format!("{v}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        if mantissa.contains('.') {
            format!("{mantissa}E{exp}")
        } else {
            format!("{mantissa}.0E{exp}")
        }
    }
}

/// `srvr` and `stat` (ZooKeeper `StatCommand` + `ServerStats.toString`).
fn stat(src: &dyn StatusSource, with_clients: bool) -> String {
    let status = src.status();
    let stats = src.stats();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Zookeeper version: {}",
        zookeeper_full_version(&status.version)
    );
    if with_clients {
        out.push_str("Clients:\n");
        for c in src.connections() {
            connection_line(&mut out, &c, true);
            out.push('\n');
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "Latency min/avg/max: {}/{}/{}",
        stats.min_latency_ms,
        java_double(stats.avg_latency_ms),
        stats.max_latency_ms
    );
    let _ = writeln!(out, "Received: {}", stats.packets_received);
    let _ = writeln!(out, "Sent: {}", stats.packets_sent);
    let _ = writeln!(out, "Connections: {}", stats.num_alive_connections);
    let _ = writeln!(out, "Outstanding: {}", stats.outstanding_requests);
    let _ = writeln!(out, "Zxid: 0x{:x}", status.last_zxid);
    let _ = writeln!(out, "Mode: {}", status.role);
    let _ = writeln!(out, "Node count: {}", stats.znode_count);
    out
}

/// One connection as `ServerCnxn.dumpConnectionInfo` prints it, without the
/// trailing newline.
fn connection_line(out: &mut String, c: &crate::status::ConnectionInfo, brief: bool) {
    let ops = if c.interest_ops == 0 {
        "0".to_string()
    } else {
        format!("{:x}", c.interest_ops)
    };
    let _ = write!(
        out,
        " /{}[{}](queued={},recved={},sent={}",
        c.remote, ops, c.queued, c.received, c.sent
    );
    if !brief && c.session_id != 0 {
        let _ = write!(
            out,
            ",sid=0x{:x},lop={},est={},to={}",
            c.session_id, c.last_op, c.established_ms, c.timeout_ms
        );
        if c.last_cxid >= 0 {
            let _ = write!(out, ",lcxid=0x{:x}", c.last_cxid);
        }
        let _ = write!(
            out,
            ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
            c.last_zxid,
            c.last_response_ms,
            c.last_latency_ms,
            c.min_latency_ms,
            c.avg_latency_ms,
            c.max_latency_ms
        );
    }
    out.push(')');
}

/// `cons` (ZooKeeper `ConsCommand`).
fn cons(src: &dyn StatusSource) -> String {
    let mut out = String::new();
    for c in src.connections() {
        connection_line(&mut out, &c, false);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// `mntr` (ZooKeeper `MonitorCommand`): `zk_<key>\t<value>` lines. Keys are
/// ZooKeeper 3.8's; leader-only keys appear only on the leader, as there.
fn mntr(src: &dyn StatusSource) -> String {
    let status = src.status();
    let stats = src.stats();
    let mut lines: Vec<(&str, String)> = vec![
        ("version", zookeeper_full_version(&status.version)),
        ("server_state", status.role.to_string()),
    ];
    let peer_state = match status.role {
        Role::Leader => Some("leading - broadcast"),
        Role::Follower => Some("following - broadcast"),
        Role::Observer => Some("observing - broadcast"),
        Role::Standalone => None,
    };
    if let Some(p) = peer_state {
        lines.push(("peer_state", p.to_string()));
    }
    lines.extend([
        ("avg_latency", java_double(stats.avg_latency_ms)),
        ("max_latency", stats.max_latency_ms.to_string()),
        ("min_latency", stats.min_latency_ms.to_string()),
        ("packets_received", stats.packets_received.to_string()),
        ("packets_sent", stats.packets_sent.to_string()),
        ("num_alive_connections", stats.num_alive_connections.to_string()),
        ("outstanding_requests", stats.outstanding_requests.to_string()),
        ("uptime", status.uptime_ms.to_string()),
        ("znode_count", stats.znode_count.to_string()),
        ("watch_count", stats.watch_count.to_string()),
        ("ephemerals_count", stats.ephemerals_count.to_string()),
        ("approximate_data_size", stats.approximate_data_size.to_string()),
        ("global_sessions", stats.session_count.to_string()),
        ("local_sessions", "0".to_string()),
        (
            "open_file_descriptor_count",
            stats.open_file_descriptor_count.to_string(),
        ),
        (
            "max_file_descriptor_count",
            stats.max_file_descriptor_count.to_string(),
        ),
    ]);
    if status.role != Role::Standalone {
        let voters = status.members.iter().filter(|m| m.role == "voter").count();
        lines.push(("quorum_size", voters.to_string()));
    }
    if status.role == Role::Leader {
        lines.extend([
            (
                "learners",
                (stats.synced_followers + stats.synced_observers).to_string(),
            ),
            ("synced_followers", stats.synced_followers.to_string()),
            ("synced_non_voting_followers", "0".to_string()),
            ("synced_observers", stats.synced_observers.to_string()),
            ("pending_syncs", stats.pending_syncs.to_string()),
        ]);
    }
    let mut out = String::new();
    for (key, value) in lines {
        let _ = writeln!(out, "zk_{key}\t{value}");
    }
    out
}

/// `conf` (ZooKeeper `ZooKeeperServer.dumpConf`, plus the quorum part of
/// `QuorumZooKeeperServer.dumpConf` when in an ensemble).
fn conf_text(src: &dyn StatusSource, conf: &ConfSummary) -> String {
    let status = src.status();
    let stats = src.stats();
    let mut out = String::new();
    let _ = writeln!(out, "clientPort={}", conf.client_port);
    out.push_str("secureClientPort=-1\n");
    let _ = writeln!(out, "dataDir={}", conf.data_dir);
    let _ = writeln!(out, "dataDirSize={}", stats.data_dir_size);
    let _ = writeln!(out, "dataLogDir={}", conf.data_log_dir);
    let _ = writeln!(out, "dataLogSize={}", stats.log_dir_size);
    let _ = writeln!(out, "tickTime={}", conf.tick_ms);
    let _ = writeln!(out, "maxClientCnxns={}", conf.max_client_cnxns);
    let _ = writeln!(out, "minSessionTimeout={}", conf.min_session_timeout_ms);
    let _ = writeln!(out, "maxSessionTimeout={}", conf.max_session_timeout_ms);
    out.push_str("clientPortListenBacklog=-1\n");
    let _ = writeln!(out, "serverId={}", conf.server_id);
    if status.role != Role::Standalone {
        let _ = writeln!(out, "electionPort={}", conf.peer_port);
        let _ = writeln!(out, "quorumPort={}", conf.peer_port);
        let peer_type = if status.role == Role::Observer { 1 } else { 0 };
        let _ = writeln!(out, "peerType={peer_type}");
        out.push_str("membership: \n");
        for m in &status.members {
            // QuorumServer.toString: host:quorumPort:electionPort:type;client
            let kind = if m.role == "observer" {
                "observer"
            } else {
                "participant"
            };
            let port = m.peer_addr.rsplit(':').next().unwrap_or("");
            let _ = writeln!(
                out,
                "server.{}={}:{}:{};{}",
                m.id, m.peer_addr, port, kind, m.client_addr
            );
        }
        // QuorumMaj.toString ends without a newline.
        out.push_str("version=0");
    }
    out
}

/// `wchc` (ZooKeeper `WatchManager.dumpWatches(byPath = false)`).
fn wchc(src: &dyn StatusSource) -> String {
    let mut out = String::new();
    for (sid, paths) in src.watches_by_session() {
        let _ = writeln!(out, "0x{sid:x}");
        for p in paths {
            let _ = writeln!(out, "\t{p}");
        }
    }
    out.push('\n');
    out
}

/// `wchp` (ZooKeeper `WatchManager.dumpWatches(byPath = true)`).
fn wchp(src: &dyn StatusSource) -> String {
    let mut out = String::new();
    for (path, sids) in src.watches_by_path() {
        let _ = writeln!(out, "{path}");
        for sid in sids {
            let _ = writeln!(out, "\t0x{sid:x}");
        }
    }
    out.push('\n');
    out
}

/// `dump` (ZooKeeper `DumpCommand`). Sessions are listed as a learner's
/// session tracker lists them (`Global Sessions(N):`, id and timeout, sorted
/// by id), since sessions are global here; the connection part is empty, as
/// with ZooKeeper's Netty connection factory.
fn dump(src: &dyn StatusSource) -> String {
    let mut out = String::from("SessionTracker dump:\n");
    let mut sessions = src.sessions();
    sessions.sort_by_key(|s| s.session_id);
    let _ = writeln!(out, "Global Sessions({}):", sessions.len());
    for s in sessions {
        let _ = writeln!(out, "0x{:x}\t{}ms", s.session_id, s.timeout_ms);
    }
    out.push_str("ephemeral nodes dump:\n");
    let ephemerals = src.sessions_with_ephemerals();
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", ephemerals.len());
    for (sid, paths) in ephemerals {
        let _ = writeln!(out, "0x{sid:x}:");
        for p in paths {
            let _ = writeln!(out, "\t{p}");
        }
    }
    out.push_str("Connections dump:\n");
    out
}

/// `envi` (ZooKeeper `EnvCommand` / `Environment.list`): the Java keys that
/// mean something outside a JVM, plus zonekeeper's own.
fn envi(src: &dyn StatusSource) -> String {
    let status = src.status();
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "<NA>".to_string())
    };
    let env = |key: &str| std::env::var(key).unwrap_or_else(|_| "<NA>".to_string());
    let os_name = match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Mac OS X",
        "windows" => "Windows",
        other => other,
    };
    let user_dir = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| "<NA>".to_string());
    let entries = [
        ("zookeeper.version", zookeeper_full_version(&status.version)),
        ("host.name", read("/proc/sys/kernel/hostname")),
        ("os.name", os_name.to_string()),
        ("os.arch", std::env::consts::ARCH.to_string()),
        ("os.version", read("/proc/sys/kernel/osrelease")),
        ("user.name", env("USER")),
        ("user.home", env("HOME")),
        ("user.dir", user_dir),
        ("zonekeeper.version", status.version.clone()),
        ("zonekeeper.id", status.id.to_string()),
        ("zonekeeper.zone", status.zone.clone()),
    ];
    let mut out = String::from("Environment:\n");
    for (k, v) in entries {
        let _ = writeln!(out, "{k}={v}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::fake::FakeStatus;
    use crate::status::{ConnectionInfo, SessionInfo};

    fn conf() -> ConfSummary {
        ConfSummary {
            client_port: 2181,
            data_dir: "/var/lib/zonekeeper".into(),
            data_log_dir: "/var/lib/zonekeeper".into(),
            tick_ms: 2000,
            max_client_cnxns: 60,
            min_session_timeout_ms: 4000,
            max_session_timeout_ms: 40000,
            server_id: 1,
            peer_port: 2888,
        }
    }

    fn run(word: &str, src: &FakeStatus) -> String {
        respond(word, &Whitelist::all(), src, &conf())
    }

    fn conn(sid: i64) -> ConnectionInfo {
        ConnectionInfo {
            remote: "127.0.0.1:50000".into(),
            interest_ops: 1,
            queued: 0,
            received: 7,
            sent: 6,
            session_id: sid,
            last_op: "GETD".into(),
            established_ms: 1_700_000_000_000,
            timeout_ms: 30000,
            last_cxid: 5,
            last_zxid: 0x1_0000_0003,
            last_response_ms: 1_700_000_000_100,
            last_latency_ms: 1,
            min_latency_ms: 0,
            avg_latency_ms: 1,
            max_latency_ms: 3,
        }
    }

    /// ZooKeeper admin guide, `4lw.commands.whitelist`: comma separated,
    /// trimmed, `*` for all.
    #[test]
    fn whitelist_parses_lists_and_star() {
        let w = Whitelist::parse(" ruok ,mntr,, conf");
        assert!(w.allows("ruok") && w.allows("mntr") && w.allows("conf"));
        assert!(!w.allows("dump"));
        let all = Whitelist::parse("*");
        assert!(ALL_WORDS.iter().all(|word| all.allows(word)));
        assert_eq!(Whitelist::parse("ruok, *"), Whitelist::all());
    }

    /// ARCHITECTURE.md "Contracts": `ruok`, `srvr`, `mntr` by default.
    #[test]
    fn default_whitelist_is_ruok_srvr_mntr() {
        let w = Whitelist::default_set();
        for word in ALL_WORDS {
            assert_eq!(w.allows(word), ["ruok", "srvr", "mntr"].contains(word), "{word}");
        }
        assert_eq!(w.to_string(), "mntr, ruok, srvr");
    }

    /// ZooKeeper `FourLetterCommands.isEnabled`: "zkServer.sh depends on
    /// srvr", so it is enabled whatever the list says.
    #[test]
    fn srvr_is_always_allowed() {
        assert!(Whitelist::parse("").allows("srvr"));
        assert!(Whitelist::parse("ruok").allows("srvr"));
    }

    #[test]
    fn try_parse_rejects_unknown_words() {
        let err = Whitelist::try_parse("ruok, stats").unwrap_err();
        assert_eq!(err.word, "stats");
        assert!(err.to_string().contains("known words are conf, cons"));
        assert!(Whitelist::try_parse("*").is_ok());
        assert!(Whitelist::try_parse("").is_ok());
        // Lenient parse ignores the typo, as ZooKeeper does.
        assert!(Whitelist::parse("stats").allows("srvr"));
    }

    /// ZooKeeper decides by the first four bytes of a new connection.
    #[test]
    fn detect_recognises_words_only() {
        for word in ALL_WORDS {
            let bytes: [u8; 4] = word.as_bytes().try_into().unwrap();
            assert_eq!(detect(&bytes), Some(*word));
        }
        assert_eq!(detect(b"RUOK"), None);
        assert_eq!(detect(b"gtmk"), None);
        // A ConnectRequest starts with a small big-endian length.
        assert_eq!(detect(&[0, 0, 0, 44]), None);
    }

    /// ZooKeeper `NIOServerCnxn.checkFourLetterWord` + `NopCommand`.
    #[test]
    fn not_whitelisted_word_gets_zookeeper_message() {
        let src = FakeStatus::standalone();
        let out = respond("dump", &Whitelist::default_set(), &src, &conf());
        assert_eq!(out, "dump is not executed because it is not in the whitelist.\n");
        // A whitelisted-out srst must not reset anything.
        respond("srst", &Whitelist::default_set(), &src, &conf());
        assert_eq!(src.server_resets.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert_eq!(respond("nope", &Whitelist::all(), &src, &conf()), "");
    }

    /// ZooKeeper `RuokCommand` ("imok", no newline) and `IsroCommand`.
    #[test]
    fn ruok_and_isro() {
        let src = FakeStatus::standalone();
        assert_eq!(run("ruok", &src), "imok");
        assert_eq!(run("isro", &src), "rw");
        src.set_ready(false);
        assert_eq!(run("ruok", &src), "imok");
        assert_eq!(run("isro", &src), "null");
    }

    /// ZooKeeper `StatCommand` + `ServerStats.toString`, line for line.
    #[test]
    fn srvr_matches_zookeeper_layout() {
        let src = FakeStatus::standalone();
        src.with_stats(|s| {
            s.min_latency_ms = 0;
            s.avg_latency_ms = 0.75614;
            s.max_latency_ms = 12;
            s.packets_received = 70;
            s.packets_sent = 69;
            s.num_alive_connections = 2;
        });
        let out = run("srvr", &src);
        let expected = format!(
            "Zookeeper version: {}\n\
             Latency min/avg/max: 0/0.7561/12\n\
             Received: 70\n\
             Sent: 69\n\
             Connections: 2\n\
             Outstanding: 0\n\
             Zxid: 0x100000005\n\
             Mode: standalone\n\
             Node count: 5\n",
            zookeeper_full_version(crate::status::VERSION)
        );
        assert_eq!(out, expected);
        assert!(out.starts_with("Zookeeper version: 3.8.0-zonekeeper-"));
    }

    #[test]
    fn srvr_mode_follows_role() {
        let src = FakeStatus::leader_of_three();
        assert!(run("srvr", &src).contains("\nMode: leader\n"));
        src.with_status(|s| s.role = crate::status::Role::Follower);
        assert!(run("srvr", &src).contains("\nMode: follower\n"));
        src.with_status(|s| s.role = crate::status::Role::Observer);
        assert!(run("srvr", &src).contains("\nMode: observer\n"));
    }

    /// Java prints doubles with at least one decimal ("0.0").
    #[test]
    fn java_double_formatting() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(2.0), "2.0");
        assert_eq!(java_double(1.5), "1.5");
        assert_eq!(java_double(0.12345), "0.1235");
        assert_eq!(java_double(0.0001), "1.0E-4");
        assert_eq!(java_double(12_345_678.0), "1.2345678E7");
    }

    /// ZooKeeper `AbstractFourLetterCommand.ZK_NOT_SERVING` while not
    /// serving.
    #[test]
    fn not_serving_message() {
        let src = FakeStatus::standalone();
        src.set_ready(false);
        for word in ["srvr", "stat", "mntr", "cons", "conf", "wchs", "dump", "dirs"] {
            assert_eq!(
                run(word, &src),
                "This ZooKeeper instance is not currently serving requests\n",
                "{word}"
            );
        }
        assert!(run("envi", &src).starts_with("Environment:\n"));
    }

    /// ZooKeeper `StatCommand` with `stat`: a "Clients:" block of brief
    /// connection lines.
    #[test]
    fn stat_lists_clients_briefly() {
        let src = FakeStatus::standalone();
        src.connections.lock().unwrap().push(conn(0x1234));
        let out = run("stat", &src);
        assert!(
            out.contains("\nClients:\n /127.0.0.1:50000[1](queued=0,recved=7,sent=6)\n\nLatency"),
            "{out}"
        );
    }

    /// ZooKeeper `ServerCnxn.dumpConnectionInfo(brief = false)`.
    #[test]
    fn cons_prints_full_connection_info() {
        let src = FakeStatus::standalone();
        src.connections.lock().unwrap().push(conn(0x1234));
        let mut no_session = conn(0);
        no_session.interest_ops = 0;
        src.connections.lock().unwrap().push(no_session);
        assert_eq!(
            run("cons", &src),
            " /127.0.0.1:50000[1](queued=0,recved=7,sent=6,sid=0x1234,lop=GETD,\
             est=1700000000000,to=30000,lcxid=0x5,lzxid=0x100000003,lresp=1700000000100,\
             llat=1,minlat=0,avglat=1,maxlat=3)\n\
             \x20/127.0.0.1:50000[0](queued=0,recved=7,sent=6)\n\n"
        );
    }

    /// ZooKeeper `MonitorCommand`: `zk_<key>\t<value>` lines with 3.8's keys.
    #[test]
    fn mntr_standalone_keys() {
        let src = FakeStatus::standalone();
        src.sessions.lock().unwrap().push(SessionInfo {
            session_id: 1,
            timeout_ms: 30000,
        });
        src.with_stats(|s| s.session_count = 1);
        let out = run("mntr", &src);
        let pairs: Vec<(&str, &str)> = out
            .lines()
            .map(|l| l.split_once('\t').expect("tab separated"))
            .collect();
        assert!(pairs.iter().all(|(k, _)| k.starts_with("zk_")));
        let get = |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        assert!(get("zk_version").unwrap().starts_with("3.8.0-zonekeeper-"));
        assert_eq!(get("zk_server_state"), Some("standalone"));
        assert_eq!(get("zk_avg_latency"), Some("0.0"));
        assert_eq!(get("zk_znode_count"), Some("5"));
        assert_eq!(get("zk_approximate_data_size"), Some("42"));
        assert_eq!(get("zk_global_sessions"), Some("1"));
        assert_eq!(get("zk_max_file_descriptor_count"), Some("1024"));
        assert_eq!(get("zk_peer_state"), None);
        assert_eq!(get("zk_synced_followers"), None);
        assert!(out.ends_with('\n'));
    }

    /// Leader-only keys (`LeaderZooKeeperServer.registerMetrics`) and
    /// `zk_quorum_size` (`QuorumZooKeeperServer`).
    #[test]
    fn mntr_leader_keys() {
        let out = run("mntr", &FakeStatus::leader_of_three());
        assert!(out.contains("zk_server_state\tleader\n"));
        assert!(out.contains("zk_peer_state\tleading - broadcast\n"));
        assert!(out.contains("zk_quorum_size\t3\n"));
        assert!(out.contains("zk_synced_followers\t2\n"));
        assert!(out.contains("zk_synced_observers\t1\n"));
        assert!(out.contains("zk_pending_syncs\t0\n"));
    }

    /// ZooKeeper `ZooKeeperServer.dumpConf`.
    #[test]
    fn conf_standalone() {
        let out = run("conf", &FakeStatus::standalone());
        assert_eq!(
            out,
            "clientPort=2181\nsecureClientPort=-1\ndataDir=/var/lib/zonekeeper\ndataDirSize=0\n\
             dataLogDir=/var/lib/zonekeeper\ndataLogSize=0\ntickTime=2000\nmaxClientCnxns=60\n\
             minSessionTimeout=4000\nmaxSessionTimeout=40000\nclientPortListenBacklog=-1\n\
             serverId=1\n"
        );
    }

    /// `QuorumZooKeeperServer.dumpConf` + `QuorumMaj.toString`.
    #[test]
    fn conf_ensemble_lists_membership() {
        let out = run("conf", &FakeStatus::leader_of_three());
        assert!(out.contains("\nquorumPort=2888\npeerType=0\nmembership: \n"));
        assert!(out.contains("server.1=127.0.0.1:2888:2888:participant;127.0.0.1:2181\n"));
        assert!(out.contains("server.4=127.0.0.1:2891:2891:observer;127.0.0.1:2184\n"));
        assert!(out.ends_with("version=0"));
    }

    /// `WatchManager.toString` / `dumpWatches` followed by `WatchCommand`'s
    /// final newline.
    #[test]
    fn watch_words() {
        let src = FakeStatus::standalone();
        *src.watches.lock().unwrap() = vec![(0x10, "/a".into()), (0x10, "/b".into()), (0x20, "/a".into())];
        assert_eq!(
            run("wchs", &src),
            "2 connections watching 2 paths\nTotal watches:3\n"
        );
        assert_eq!(run("wchc", &src), "0x10\n\t/a\n\t/b\n0x20\n\t/a\n\n");
        assert_eq!(run("wchp", &src), "/a\n\t0x10\n\t0x20\n/b\n\t0x10\n\n");
    }

    /// `DumpCommand`: session tracker, `DataTree.dumpEphemerals`.
    #[test]
    fn dump_sessions_and_ephemerals() {
        let src = FakeStatus::standalone();
        *src.sessions.lock().unwrap() = vec![
            SessionInfo {
                session_id: 0x200,
                timeout_ms: 10000,
            },
            SessionInfo {
                session_id: 0x100,
                timeout_ms: 30000,
            },
        ];
        *src.ephemerals.lock().unwrap() = vec![(0x100, vec!["/lock/x".into()])];
        assert_eq!(
            run("dump", &src),
            "SessionTracker dump:\nGlobal Sessions(2):\n0x100\t30000ms\n0x200\t10000ms\n\
             ephemeral nodes dump:\nSessions with Ephemerals (1):\n0x100:\n\t/lock/x\n\
             Connections dump:\n"
        );
    }

    /// kazoo `KazooClient.server_version()` parses `zookeeper.version=` from
    /// `envi` with `([\d\.]*).*` and splits on dots.
    #[test]
    fn envi_reports_zookeeper_version_for_kazoo() {
        let out = run("envi", &FakeStatus::standalone());
        assert!(out.starts_with("Environment:\n"));
        let version = out
            .lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == "zookeeper.version")
            .map(|(_, v)| v.trim())
            .expect("zookeeper.version line");
        let digits: String = version
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let parts: Vec<u32> = digits.split('.').map(|d| d.parse().unwrap()).collect();
        assert_eq!(parts, vec![3, 8, 0]);
    }

    /// `StatResetCommand` / `CnxnStatResetCommand`.
    #[test]
    fn resets_call_the_source() {
        let src = FakeStatus::standalone();
        assert_eq!(run("srst", &src), "Server stats reset.\n");
        assert_eq!(run("crst", &src), "Connection stats reset.\n");
        use std::sync::atomic::Ordering::SeqCst;
        assert_eq!(src.server_resets.load(SeqCst), 1);
        assert_eq!(src.connection_resets.load(SeqCst), 1);
    }

    /// `DirsCommand`.
    #[test]
    fn dirs_reports_sizes() {
        let src = FakeStatus::standalone();
        src.with_stats(|s| {
            s.data_dir_size = 100;
            s.log_dir_size = 2048;
        });
        assert_eq!(run("dirs", &src), "datadir_size: 100\nlogdir_size: 2048\n");
    }
}
