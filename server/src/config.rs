//! The server configuration: one TOML file, command-line flags and
//! `ZONEKEEPER_*` environment variables.
//!
//! Owns: the command line ([`Cli`], including the `dev` subcommand's
//! [`DevArgs`]), the file format ([`Settings`], every key optional), the
//! defaults (including the contract ports 2181, 2888 and 8080: no other
//! module may know them), the merge order (defaults < file < environment <
//! flags) and validation into [`Config`], whose values are checked and
//! typed.
//!
//! Must not: open sockets, create directories, install logging or start
//! anything. Reading the config file is its only I/O. Errors name the key,
//! the bad value and what to do (ARCHITECTURE.md, "Bad input gets a clear
//! error and changes nothing").
//!
//! Contract (ARCHITECTURE.md "Contracts"): `zonekeeper-server --data-dir DIR
//! --client-addr 127.0.0.1:2181 --admin-addr 127.0.0.1:8080` runs standalone
//! with no file, `zonekeeper-server --config FILE` runs an ensemble member
//! with flags overriding the file, and `zonekeeper-server dev --members N
//! --zones Z --data-dir DIR --base-port P` runs a local ensemble.

pub use crate::storage::RecoveryMode;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::fourletter::{ConfSummary, Whitelist, DEFAULT_WORDS};
use crate::status::MemberStatus;

/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./zonekeeper-data";
/// Default client (ZooKeeper protocol) address; port 2181 as ZooKeeper.
pub const DEFAULT_CLIENT_ADDR: &str = "127.0.0.1:2181";
/// Default admin HTTP address.
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:8080";
/// Default peer (replication) address; port 2888 as ZooKeeper's quorum port.
pub const DEFAULT_PEER_ADDR: &str = "127.0.0.1:2888";
/// Default zone of a server that names none.
pub const DEFAULT_ZONE: &str = "local";
/// Default tick (ZooKeeper `tickTime`).
pub const DEFAULT_TICK_MS: u64 = 2000;
/// Default connections per client IP (ZooKeeper `maxClientCnxns`).
pub const DEFAULT_MAX_CLIENT_CONNECTIONS: u32 = 60;
/// Default container sweep interval (ZooKeeper
/// `znode.container.checkIntervalMs`).
pub const DEFAULT_CONTAINER_CHECK_INTERVAL_MS: u64 = 60_000;
/// Default entries between snapshots (ZooKeeper `snapCount`).
pub const DEFAULT_SNAPSHOT_EVERY_ENTRIES: u64 = 100_000;
/// Default snapshots kept (ZooKeeper `autopurge.snapRetainCount`).
pub const DEFAULT_SNAPSHOTS_TO_KEEP: u32 = 3;
/// Default WAL segment size, 64 MiB (ZooKeeper `preAllocSize`).
pub const DEFAULT_WAL_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Default log filter.
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// Environment-variable prefix of every setting.
pub const ENV_PREFIX: &str = "ZONEKEEPER_";

/// The command line of `zonekeeper-server`.
#[derive(Debug, Parser)]
#[command(
    name = "zonekeeper-server",
    version,
    args_conflicts_with_subcommands = true,
    about = "ZooKeeper-compatible coordination server",
    long_about = "ZooKeeper-compatible coordination server.\n\n\
        Without a subcommand it runs one server: standalone when no members \
        are configured, else as a member of the ensemble. Settings come from \
        --config FILE (TOML), overridden by ZONEKEEPER_* environment variables, \
        overridden by flags."
)]
pub struct Cli {
    /// What to run instead of a single server.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// TOML config file; environment variables and flags override its keys.
    #[arg(long, env = "ZONEKEEPER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Settings given as flags or environment variables.
    #[command(flatten)]
    pub settings: Settings,
}

/// Subcommands of `zonekeeper-server`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a local ensemble for development: N member processes on
    /// 127.0.0.1 spread over Z zones; prints `connect: host:port@zone,…`.
    Dev(DevCommand),
}

/// `zonekeeper-server dev`: client ports P…P+N-1, admin ports
/// P+1000…P+1000+N-1.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DevArgs {
    /// Number of member processes.
    #[arg(long, default_value_t = 3)]
    pub members: u16,
    /// Number of zones the members are spread over (round robin).
    #[arg(long, default_value_t = 3)]
    pub zones: u16,
    /// Directory holding one data directory per member.
    #[arg(long, default_value = "./zonekeeper-dev")]
    pub data_dir: PathBuf,
    /// First client port; admin ports start at base port + 1000.
    #[arg(long, default_value_t = 2181)]
    pub base_port: u16,
}

/// `zonekeeper-server dev` as typed: the ensemble and what runs beside it.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DevCommand {
    #[command(flatten)]
    pub ensemble: DevArgs,
    /// Also run a `zonekeeper-sidecar` (found next to this binary) with its
    /// HTTP API on this loopback address, e.g. 127.0.0.1:7181, connected to
    /// the ensemble; it prints `sidecar: http://ADDR` after `connect:`.
    #[arg(long)]
    pub sidecar: Option<SocketAddr>,
}

impl DevCommand {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(a) = self.sidecar {
            if !a.ip().is_loopback() {
                return Err(invalid(
                    "sidecar",
                    format!("{a} is not a loopback address; the sidecar serves its own host only, use 127.0.0.1:{}", a.port()),
                ));
            }
        }
        self.ensemble.validate()
    }
}

impl DevArgs {
    /// Checks the counts and that every derived port fits in 1..=65535.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=255).contains(&self.members) {
            return Err(invalid(
                "members",
                format!(
                    "{} is out of range; a dev ensemble has 1 to 255 members (server ids are 1..=255)",
                    self.members
                ),
            ));
        }
        if self.zones == 0 || self.zones > self.members {
            return Err(invalid(
                "zones",
                format!(
                    "{} is out of range; use 1 to --members ({}) zones",
                    self.zones, self.members
                ),
            ));
        }
        let last_admin = u32::from(self.base_port) + 1000 + u32::from(self.members) - 1;
        if self.base_port == 0 || last_admin > u32::from(u16::MAX) {
            return Err(invalid(
                "base_port",
                format!(
                    "{} leaves no room for {} client ports and admin ports up to base port + 1000 + {}; use a port between 1 and {}",
                    self.base_port,
                    self.members,
                    self.members - 1,
                    u32::from(u16::MAX) - 1000 - u32::from(self.members) + 1
                ),
            ));
        }
        Ok(())
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Whether a member votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    /// Counts towards the write quorum and can lead.
    #[default]
    Voter,
    /// Receives every entry and serves reads; never votes (ZooKeeper
    /// observer).
    Observer,
}

impl MemberRole {
    /// `"voter"` or `"observer"`.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Voter => "voter",
            MemberRole::Observer => "observer",
        }
    }
}

/// One `[[members]]` entry of the config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberSettings {
    /// Server id, 1..=255, unique in the ensemble.
    pub id: u64,
    /// Zone the member runs in.
    pub zone: String,
    /// Advertised peer (replication) address, `host:port`.
    pub peer_addr: String,
    /// Advertised client address, `host:port`.
    pub client_addr: String,
    /// `voter` (default) or `observer`.
    #[serde(default)]
    pub role: MemberRole,
}

/// Every setting, each optional: a config file, or the flags and
/// environment variables of one invocation. Keys are snake_case in TOML,
/// `--kebab-case` as flags and `ZONEKEEPER_UPPER_CASE` in the environment.
/// Unknown TOML keys are rejected so that a typo is not silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Server id (ZooKeeper `myid`), 1..=255; must appear in `members` when
    /// members are listed. [default: 1]
    #[arg(long, env = "ZONEKEEPER_ID")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,

    /// Zone of this server; taken from this server's `members` entry when
    /// members are listed. [default: local]
    #[arg(long, env = "ZONEKEEPER_ZONE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,

    /// Directory of the write-ahead log and snapshots.
    /// [default: ./zonekeeper-data]
    #[arg(long, env = "ZONEKEEPER_DATA_DIR", value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,

    /// Address the ZooKeeper-protocol listener (and four-letter words) binds.
    /// [default: 127.0.0.1:2181]
    #[arg(long, env = "ZONEKEEPER_CLIENT_ADDR", value_name = "IP:PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,

    /// Address the admin HTTP listener binds (/healthz, /readyz, /metrics,
    /// /v1/status, /v1/members). [default: 127.0.0.1:8080]
    #[arg(long, env = "ZONEKEEPER_ADMIN_ADDR", value_name = "IP:PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_addr: Option<String>,

    /// Address the replication listener binds. [default: 127.0.0.1:2888]
    #[arg(long, env = "ZONEKEEPER_PEER_ADDR", value_name = "IP:PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_addr: Option<String>,

    /// Base time unit in ms (ZooKeeper `tickTime`); session timeouts default
    /// to multiples of it. [default: 2000]
    #[arg(long, env = "ZONEKEEPER_TICK_MS", value_name = "MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tick_ms: Option<u64>,

    /// Smallest session timeout granted to a client (ZooKeeper
    /// `minSessionTimeout`). [default: 2 * tick_ms]
    #[arg(long, env = "ZONEKEEPER_MIN_SESSION_TIMEOUT_MS", value_name = "MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_session_timeout_ms: Option<u64>,

    /// Largest session timeout granted to a client (ZooKeeper
    /// `maxSessionTimeout`). [default: 20 * tick_ms]
    #[arg(long, env = "ZONEKEEPER_MAX_SESSION_TIMEOUT_MS", value_name = "MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_session_timeout_ms: Option<u64>,

    /// Concurrent connections allowed from one client IP, 0 = unlimited
    /// (ZooKeeper `maxClientCnxns`). [default: 60]
    #[arg(long, env = "ZONEKEEPER_MAX_CLIENT_CONNECTIONS", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_client_connections: Option<u32>,

    /// Largest client packet accepted, in bytes; larger length prefixes close
    /// the connection (ZooKeeper `jute.maxbuffer`). [default: 1048575]
    #[arg(long, env = "ZONEKEEPER_MAX_PACKET_BYTES", value_name = "BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_packet_bytes: Option<usize>,

    /// Four-letter words allowed on the client port, comma separated, or `*`
    /// for all (ZooKeeper `4lw.commands.whitelist`; `srvr` is always
    /// allowed). [default: "ruok, srvr, mntr"]
    #[arg(long, env = "ZONEKEEPER_FOUR_LETTER_WORDS", value_name = "LIST")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub four_letter_words: Option<String>,

    /// Digest of the `super` user, `super:<base64 sha1>` as produced by
    /// ZooKeeper's `DigestAuthenticationProvider` (ZooKeeper
    /// `zookeeper.DigestAuthenticationProvider.superDigest`). Unset = no
    /// super user.
    #[arg(
        long,
        env = "ZONEKEEPER_SUPER_DIGEST",
        hide_env_values = true,
        value_name = "super:BASE64"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub super_digest: Option<String>,

    /// Enable TTL nodes (ZooKeeper `zookeeper.extendedTypesEnabled`); server
    /// ids must then be at most 254. [default: false]
    #[arg(long, env = "ZONEKEEPER_EXTENDED_TYPES_ENABLED", value_name = "BOOL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_types_enabled: Option<bool>,

    /// Answer ZooKeeper's `reconfig` (ZooKeeper `reconfigEnabled`): one
    /// incremental change per request, by the super user or a client with
    /// WRITE on `/zookeeper/config`. Off, it answers RECONFIGDISABLED.
    /// [default: false]
    #[arg(long, env = "ZONEKEEPER_RECONFIG_ENABLED", value_name = "BOOL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconfig_enabled: Option<bool>,

    /// How often empty container and expired TTL nodes are swept (ZooKeeper
    /// `znode.container.checkIntervalMs`). [default: 60000]
    #[arg(long, env = "ZONEKEEPER_CONTAINER_CHECK_INTERVAL_MS", value_name = "MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_check_interval_ms: Option<u64>,

    /// Log entries between snapshots (ZooKeeper `snapCount`).
    /// [default: 100000]
    #[arg(long, env = "ZONEKEEPER_SNAPSHOT_EVERY_ENTRIES", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_every_entries: Option<u64>,

    /// Snapshots kept on disk; older ones and the log before them are
    /// deleted (ZooKeeper `autopurge.snapRetainCount`). [default: 3]
    #[arg(long, env = "ZONEKEEPER_SNAPSHOTS_TO_KEEP", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshots_to_keep: Option<u32>,

    /// Size at which the write-ahead log starts a new segment file, in bytes;
    /// at least 2 * max_packet_bytes. [default: 67108864]
    #[arg(long, env = "ZONEKEEPER_WAL_SEGMENT_BYTES", value_name = "BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_segment_bytes: Option<u64>,

    /// What startup does with a damaged log: `tolerate-tail-corruption` or
    /// `absolute-consistency`. [default: tolerate-tail-corruption]
    #[arg(long, env = "ZONEKEEPER_RECOVERY_MODE", value_name = "MODE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_mode: Option<RecoveryMode>,

    /// fsync the log before acknowledging writes. NEVER disable in
    /// production: an acknowledged write can then be lost on power failure.
    /// Only for throwaway test ensembles. [default: true]
    #[arg(long, env = "ZONEKEEPER_FSYNC", value_name = "BOOL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fsync: Option<bool>,

    /// This member joins an existing ensemble: on a new data directory it
    /// starts with no membership and waits for the leader to add it
    /// (`POST /v1/members` on the leader); `members` then only tells it
    /// whom to reach. [default: false]
    #[arg(long, env = "ZONEKEEPER_JOIN", value_name = "BOOL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub join: Option<bool>,

    /// Log filter in `tracing` EnvFilter syntax, e.g. `info` or
    /// `zonekeeper_server=debug,info`. [default: info]
    #[arg(long, env = "ZONEKEEPER_LOG_LEVEL", value_name = "FILTER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,

    /// Log format: `text` or `json`. [default: text]
    #[arg(long, env = "ZONEKEEPER_LOG_FORMAT", value_name = "FORMAT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,

    /// The ensemble (`[[members]]` tables with id, zone, peer_addr,
    /// client_addr, role). Empty = standalone. File only. Kept last so TOML
    /// serialization emits it after the plain keys.
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<MemberSettings>>,
}

impl Settings {
    /// `top`'s values where set, else `self`'s.
    pub fn overlay(self, top: Settings) -> Settings {
        Settings {
            id: top.id.or(self.id),
            zone: top.zone.or(self.zone),
            data_dir: top.data_dir.or(self.data_dir),
            client_addr: top.client_addr.or(self.client_addr),
            admin_addr: top.admin_addr.or(self.admin_addr),
            peer_addr: top.peer_addr.or(self.peer_addr),
            tick_ms: top.tick_ms.or(self.tick_ms),
            min_session_timeout_ms: top.min_session_timeout_ms.or(self.min_session_timeout_ms),
            max_session_timeout_ms: top.max_session_timeout_ms.or(self.max_session_timeout_ms),
            max_client_connections: top.max_client_connections.or(self.max_client_connections),
            max_packet_bytes: top.max_packet_bytes.or(self.max_packet_bytes),
            four_letter_words: top.four_letter_words.or(self.four_letter_words),
            super_digest: top.super_digest.or(self.super_digest),
            extended_types_enabled: top.extended_types_enabled.or(self.extended_types_enabled),
            reconfig_enabled: top.reconfig_enabled.or(self.reconfig_enabled),
            container_check_interval_ms: top
                .container_check_interval_ms
                .or(self.container_check_interval_ms),
            snapshot_every_entries: top.snapshot_every_entries.or(self.snapshot_every_entries),
            snapshots_to_keep: top.snapshots_to_keep.or(self.snapshots_to_keep),
            wal_segment_bytes: top.wal_segment_bytes.or(self.wal_segment_bytes),
            recovery_mode: top.recovery_mode.or(self.recovery_mode),
            fsync: top.fsync.or(self.fsync),
            join: top.join.or(self.join),
            log_level: top.log_level.or(self.log_level),
            log_format: top.log_format.or(self.log_format),
            members: top.members.or(self.members),
        }
    }

    /// Parses a TOML config file's text.
    pub fn from_toml(text: &str) -> Result<Settings, toml::de::Error> {
        toml::from_str(text)
    }

    /// Renders as a TOML config file (the `dev` subcommand and the operator
    /// write member configs this way).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}

/// A configuration problem, reported before anything starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file named by `--config`.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown keys or wrong types.
    #[error("config file {} is not valid: {message}", path.display())]
    Parse {
        /// The file named by `--config`.
        path: PathBuf,
        /// The TOML parser's message, with line and column.
        message: String,
    },
    /// A setting has a bad value.
    #[error("invalid {key}: {message}")]
    Invalid {
        /// The TOML key (flag `--key-with-dashes`, env `ZONEKEEPER_KEY`).
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
}

impl ConfigError {
    /// The key at fault, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

/// A validated ensemble member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Server id, 1..=255.
    pub id: u64,
    /// Zone.
    pub zone: String,
    /// Advertised peer address, `host:port` (may be a DNS name).
    pub peer_addr: String,
    /// Advertised client address, `host:port` (may be a DNS name).
    pub client_addr: String,
    /// Voter or observer.
    pub role: MemberRole,
}

impl Member {
    /// As the status view reports it.
    pub fn status(&self) -> MemberStatus {
        MemberStatus {
            id: self.id,
            zone: self.zone.clone(),
            role: self.role.as_str().to_string(),
            client_addr: self.client_addr.clone(),
            peer_addr: self.peer_addr.clone(),
        }
    }
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was loaded from, if any.
    pub config_file: Option<PathBuf>,
    /// Server id, 1..=255 (254 with extended types).
    pub id: u64,
    /// This server's zone.
    pub zone: String,
    /// Directory of the WAL and snapshots (not created here).
    pub data_dir: PathBuf,
    /// Client listener bind address.
    pub client_addr: SocketAddr,
    /// Admin HTTP bind address.
    pub admin_addr: SocketAddr,
    /// Replication listener bind address.
    pub peer_addr: SocketAddr,
    /// The ensemble, sorted by id; empty = standalone. When not empty it
    /// contains this server.
    pub members: Vec<Member>,
    /// ZooKeeper `tickTime`.
    pub tick: Duration,
    /// Negotiated session timeouts are clamped to
    /// `min_session_timeout..=max_session_timeout`, as ZooKeeper does.
    pub min_session_timeout: Duration,
    /// See `min_session_timeout`.
    pub max_session_timeout: Duration,
    /// Connections per client IP, 0 = unlimited.
    pub max_client_connections: u32,
    /// Largest accepted client packet (length prefix), bytes.
    pub max_packet_bytes: usize,
    /// Allowed four-letter words.
    pub four_letter_words: Whitelist,
    /// `super:<base64 sha1>` digest of the super user, if any.
    pub super_digest: Option<String>,
    /// TTL nodes enabled.
    pub extended_types_enabled: bool,
    /// The `reconfig` opcode is served.
    pub reconfig_enabled: bool,
    /// Container/TTL sweep interval.
    pub container_check_interval: Duration,
    /// Log entries between snapshots.
    pub snapshot_every_entries: u64,
    /// Snapshots kept.
    pub snapshots_to_keep: u32,
    /// WAL segment size, bytes.
    pub wal_segment_bytes: u64,
    /// Startup behaviour on a damaged log.
    pub recovery_mode: RecoveryMode,
    /// fsync before acknowledging (never false in production).
    pub fsync: bool,
    /// Join an existing ensemble instead of founding one (see `Settings`).
    pub join: bool,
    /// `tracing` EnvFilter directive string.
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
}

impl Default for Config {
    /// The standalone defaults (what `zonekeeper-server` with no flags runs).
    fn default() -> Self {
        Config::from_settings(Settings::default()).expect("the defaults are valid")
    }
}

impl Config {
    /// Loads the file named by `--config` (if any), overlays the flags and
    /// environment variables clap collected, and validates.
    pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => Settings::default(),
        };
        let mut config = Config::from_settings(file.overlay(cli.settings.clone()))?;
        config.config_file = cli.config.clone();
        Ok(config)
    }

    /// Applies defaults to `s` and validates.
    pub fn from_settings(s: Settings) -> Result<Config, ConfigError> {
        let extended_types_enabled = s.extended_types_enabled.unwrap_or(false);
        let max_id = if extended_types_enabled { 254 } else { 255 };
        let id = s.id.unwrap_or(1);
        check_id("id", id, max_id, extended_types_enabled)?;

        let members = validate_members(s.members.unwrap_or_default(), max_id, extended_types_enabled)?;
        let zone = match (s.zone, members.iter().find(|m| m.id == id)) {
            (_, None) if !members.is_empty() => {
                let ids: Vec<String> = members.iter().map(|m| m.id.to_string()).collect();
                return Err(invalid(
                    "members",
                    format!(
                        "this server's id {id} is not among the members (ids {}); \
                         set id to this server's entry or add it to members",
                        ids.join(", ")
                    ),
                ));
            }
            (Some(zone), Some(me)) if zone != me.zone => {
                return Err(invalid(
                    "zone",
                    format!(
                        "\"{zone}\" differs from this server's members entry (id {id}, zone \"{}\"); \
                         remove zone or make them agree",
                        me.zone
                    ),
                ));
            }
            (_, Some(me)) => me.zone.clone(),
            (zone, None) => zone.unwrap_or_else(|| DEFAULT_ZONE.to_string()),
        };
        check_zone("zone", &zone)?;

        let data_dir = s.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        if data_dir.as_os_str().is_empty() {
            return Err(invalid(
                "data_dir",
                "is empty; name a directory for the log and snapshots",
            ));
        }
        let client_addr = socket_addr("client_addr", s.client_addr, DEFAULT_CLIENT_ADDR)?;
        let admin_addr = socket_addr("admin_addr", s.admin_addr, DEFAULT_ADMIN_ADDR)?;
        let peer_addr = socket_addr("peer_addr", s.peer_addr, DEFAULT_PEER_ADDR)?;
        for (a, b, an, bn) in [
            (client_addr, admin_addr, "client_addr", "admin_addr"),
            (client_addr, peer_addr, "client_addr", "peer_addr"),
            (admin_addr, peer_addr, "admin_addr", "peer_addr"),
        ] {
            if a.port() != 0 && a == b {
                return Err(invalid(
                    bn,
                    format!("{b} is also {an}; each listener needs its own port"),
                ));
            }
        }

        let tick_ms = s.tick_ms.unwrap_or(DEFAULT_TICK_MS);
        if tick_ms == 0 {
            return Err(invalid(
                "tick_ms",
                "must be positive (ZooKeeper: \"tickTime is not set\"); the default is 2000",
            ));
        }
        // ZooKeeper (QuorumPeerConfig.parse): min defaults to 2 ticks, max
        // to 20 ticks, and min must not exceed max.
        let min_st = s.min_session_timeout_ms.unwrap_or(2 * tick_ms);
        let max_st = s.max_session_timeout_ms.unwrap_or(20 * tick_ms);
        if min_st == 0 {
            return Err(invalid(
                "min_session_timeout_ms",
                format!(
                    "must be positive; leave it unset for 2 * tick_ms ({})",
                    2 * tick_ms
                ),
            ));
        }
        if min_st > max_st {
            return Err(invalid(
                "min_session_timeout_ms",
                format!(
                    "({min_st}) must not be larger than max_session_timeout_ms ({max_st}); \
                     unset, they default to 2 * tick_ms ({}) and 20 * tick_ms ({})",
                    2 * tick_ms,
                    20 * tick_ms
                ),
            ));
        }
        if max_st > i32::MAX as u64 {
            return Err(invalid(
                "max_session_timeout_ms",
                format!(
                    "({max_st}) does not fit the protocol's 32-bit timeout; use at most {}",
                    i32::MAX
                ),
            ));
        }

        let max_packet_bytes = s.max_packet_bytes.unwrap_or(proto::frame::DEFAULT_MAX_PACKET);
        // Every write becomes one log entry, and the WAL refuses records
        // over 256 MiB: a client must not be able to send one.
        const MAX_PACKET_LIMIT: usize = 64 << 20;
        if max_packet_bytes == 0 || max_packet_bytes > MAX_PACKET_LIMIT {
            return Err(invalid(
                "max_packet_bytes",
                format!(
                    "({max_packet_bytes}) must be between 1 and {MAX_PACKET_LIMIT} (64 MiB; a write must fit \
                     one log record); the default is {} like jute.maxbuffer",
                    proto::frame::DEFAULT_MAX_PACKET
                ),
            ));
        }

        let words = s.four_letter_words.unwrap_or_else(|| DEFAULT_WORDS.to_string());
        let four_letter_words =
            Whitelist::try_parse(&words).map_err(|e| invalid("four_letter_words", e.to_string()))?;

        if let Some(digest) = &s.super_digest {
            check_super_digest(digest)?;
        }

        let container_ms = s
            .container_check_interval_ms
            .unwrap_or(DEFAULT_CONTAINER_CHECK_INTERVAL_MS);
        if container_ms == 0 {
            return Err(invalid(
                "container_check_interval_ms",
                "must be positive; the default is 60000",
            ));
        }
        let snapshot_every_entries = s.snapshot_every_entries.unwrap_or(DEFAULT_SNAPSHOT_EVERY_ENTRIES);
        if snapshot_every_entries == 0 {
            return Err(invalid(
                "snapshot_every_entries",
                "must be positive; the default is 100000",
            ));
        }
        let snapshots_to_keep = s.snapshots_to_keep.unwrap_or(DEFAULT_SNAPSHOTS_TO_KEEP);
        if snapshots_to_keep == 0 {
            return Err(invalid(
                "snapshots_to_keep",
                "must be at least 1 (the latest snapshot is needed to recover); the default is 3",
            ));
        }
        let wal_segment_bytes = s.wal_segment_bytes.unwrap_or(DEFAULT_WAL_SEGMENT_BYTES);
        let min_segment = 2 * max_packet_bytes as u64;
        if wal_segment_bytes < min_segment {
            return Err(invalid(
                "wal_segment_bytes",
                format!(
                    "({wal_segment_bytes}) must be at least 2 * max_packet_bytes ({min_segment}) \
                     so that the largest entry fits in one segment with room for headers"
                ),
            ));
        }

        let log_level = s.log_level.unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_string());
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_level) {
            return Err(invalid(
                "log_level",
                format!("\"{log_level}\" is not a tracing filter ({e}); try \"info\" or \"zonekeeper_server=debug,info\""),
            ));
        }

        Ok(Config {
            config_file: None,
            id,
            zone,
            data_dir,
            client_addr,
            admin_addr,
            peer_addr,
            members,
            tick: Duration::from_millis(tick_ms),
            min_session_timeout: Duration::from_millis(min_st),
            max_session_timeout: Duration::from_millis(max_st),
            max_client_connections: s.max_client_connections.unwrap_or(DEFAULT_MAX_CLIENT_CONNECTIONS),
            max_packet_bytes,
            four_letter_words,
            super_digest: s.super_digest,
            extended_types_enabled,
            reconfig_enabled: s.reconfig_enabled.unwrap_or(false),
            container_check_interval: Duration::from_millis(container_ms),
            snapshot_every_entries,
            snapshots_to_keep,
            wal_segment_bytes,
            recovery_mode: s.recovery_mode.unwrap_or_default(),
            fsync: s.fsync.unwrap_or(true),
            join: s.join.unwrap_or(false),
            log_level,
            log_format: s.log_format.unwrap_or_default(),
        })
    }

    /// No members configured: an ensemble of one.
    pub fn is_standalone(&self) -> bool {
        self.members.is_empty()
    }

    /// This server's members entry (`None` when standalone).
    pub fn self_member(&self) -> Option<&Member> {
        self.members.iter().find(|m| m.id == self.id)
    }

    /// The members as the status view reports them; a standalone server
    /// reports itself as the only voter, at its bind addresses.
    pub fn member_statuses(&self) -> Vec<MemberStatus> {
        if self.members.is_empty() {
            vec![MemberStatus {
                id: self.id,
                zone: self.zone.clone(),
                role: MemberRole::Voter.as_str().to_string(),
                client_addr: self.client_addr.to_string(),
                peer_addr: self.peer_addr.to_string(),
            }]
        } else {
            self.members.iter().map(Member::status).collect()
        }
    }

    /// The figures the `conf` four-letter word prints.
    pub fn conf_summary(&self) -> ConfSummary {
        let dir = std::path::absolute(&self.data_dir)
            .unwrap_or_else(|_| self.data_dir.clone())
            .display()
            .to_string();
        ConfSummary {
            client_port: self.client_addr.port(),
            data_dir: dir.clone(),
            data_log_dir: dir,
            tick_ms: self.tick.as_millis() as u64,
            max_client_cnxns: self.max_client_connections,
            min_session_timeout_ms: self.min_session_timeout.as_millis() as u64,
            max_session_timeout_ms: self.max_session_timeout.as_millis() as u64,
            server_id: self.id,
            peer_port: self.peer_addr.port(),
        }
    }
}

fn read_file(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Settings::from_toml(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// ZooKeeper admin guide ("The myid file"): ids are 1..=255, and at most 254
/// with extended types (TTL nodes), because the id is the top byte of
/// session ids.
fn check_id(key: &str, id: u64, max_id: u64, extended: bool) -> Result<(), ConfigError> {
    if id == 0 || id > max_id {
        let why = if extended {
            " (254 because extended_types_enabled reserves 255)"
        } else {
            ""
        };
        return Err(invalid(
            key,
            format!("{id} is out of range; server ids are 1 to {max_id}{why}"),
        ));
    }
    Ok(())
}

/// Zone names appear in connect strings (`host:port@zone,…`), so they must
/// not contain separators.
fn check_zone(key: &str, zone: &str) -> Result<(), ConfigError> {
    if zone.is_empty() || zone.chars().any(|c| c.is_whitespace() || c == ',' || c == '@') {
        return Err(invalid(
            key,
            format!(
                "\"{zone}\" is not a zone name; use a non-empty name without spaces, ',' or '@' \
                 (e.g. the node's topology.kubernetes.io/zone)"
            ),
        ));
    }
    Ok(())
}

fn socket_addr(key: &str, value: Option<String>, default: &str) -> Result<SocketAddr, ConfigError> {
    let text = value.unwrap_or_else(|| default.to_string());
    text.parse().map_err(|_| {
        invalid(
            key,
            format!(
                "\"{text}\" is not an IP:PORT bind address (e.g. {default} or 0.0.0.0:{})",
                default.rsplit(':').next().unwrap_or("0")
            ),
        )
    })
}

/// A member's advertised `host:port` (host may be a DNS name or a
/// bracketed IPv6 address).
fn check_host_port(key: &str, value: &str) -> Result<(), ConfigError> {
    let ok = value.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && !host.contains(char::is_whitespace)
            && matches!(port.parse::<u16>(), Ok(p) if p != 0)
    });
    if !ok {
        return Err(invalid(
            key,
            format!("\"{value}\" is not host:port (e.g. zk-0.zk.svc:2888 or 10.0.0.5:2181)"),
        ));
    }
    Ok(())
}

fn validate_members(
    list: Vec<MemberSettings>,
    max_id: u64,
    extended: bool,
) -> Result<Vec<Member>, ConfigError> {
    let mut members: Vec<Member> = Vec::with_capacity(list.len());
    for m in list {
        let key = format!("members[id={}]", m.id);
        check_id(&format!("{key}.id"), m.id, max_id, extended)?;
        check_zone(&format!("{key}.zone"), &m.zone)?;
        check_host_port(&format!("{key}.peer_addr"), &m.peer_addr)?;
        check_host_port(&format!("{key}.client_addr"), &m.client_addr)?;
        if members.iter().any(|o| o.id == m.id) {
            return Err(invalid(
                "members",
                format!("id {} appears twice; every member needs its own id", m.id),
            ));
        }
        if let Some(o) = members.iter().find(|o| o.peer_addr == m.peer_addr) {
            return Err(invalid(
                "members",
                format!(
                    "members {} and {} share peer_addr {}; each needs its own",
                    o.id, m.id, m.peer_addr
                ),
            ));
        }
        if let Some(o) = members.iter().find(|o| o.client_addr == m.client_addr) {
            return Err(invalid(
                "members",
                format!(
                    "members {} and {} share client_addr {}; each needs its own",
                    o.id, m.id, m.client_addr
                ),
            ));
        }
        members.push(Member {
            id: m.id,
            zone: m.zone,
            peer_addr: m.peer_addr,
            client_addr: m.client_addr,
            role: m.role,
        });
    }
    if !members.is_empty() && members.iter().all(|m| m.role == MemberRole::Observer) {
        return Err(invalid(
            "members",
            "all members are observers; at least one must be a voter to form a quorum",
        ));
    }
    members.sort_by_key(|m| m.id);
    Ok(members)
}

/// `super:<base64 of a 20-byte SHA-1>`, as ZooKeeper's
/// `DigestAuthenticationProvider.generateDigest("super:password")` prints.
fn check_super_digest(digest: &str) -> Result<(), ConfigError> {
    use base64::Engine as _;
    let hint = "expected super:<base64 sha1>, as printed by \
                `java org.apache.zookeeper.server.auth.DigestAuthenticationProvider super:PASSWORD`";
    let Some(hash) = digest.strip_prefix("super:") else {
        return Err(invalid(
            "super_digest",
            format!("does not start with \"super:\"; {hint}"),
        ));
    };
    match base64::engine::general_purpose::STANDARD.decode(hash) {
        Ok(bytes) if bytes.len() == 20 => Ok(()),
        _ => Err(invalid(
            "super_digest",
            format!("the part after \"super:\" is not a base64 SHA-1 digest; {hint}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::sync::{Mutex, MutexGuard};

    /// clap reads `ZONEKEEPER_*` from the process environment on every
    /// parse, so tests that parse a command line, or set variables, take
    /// this lock.
    static ENV_LOCK: Mutex<()> = Mutex::new(());

    fn env_lock() -> MutexGuard<'static, ()> {
        ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn parse(args: &[&str]) -> Cli {
        let mut argv = vec!["zonekeeper-server"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("valid command line")
    }

    fn config_file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn err_of(settings: Settings) -> ConfigError {
        Config::from_settings(settings).expect_err("should be rejected")
    }

    /// clap's own consistency checks on the command-line definition.
    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("--client-addr <IP:PORT>"), "{help}");
        assert!(help.contains("[env: ZONEKEEPER_CLIENT_ADDR=]"), "{help}");
        if std::env::var_os("ZONEKEEPER_PRINT_HELP").is_some() {
            println!("{help}");
        }
    }

    /// ARCHITECTURE.md "Contracts", standalone server: every flag has a
    /// default; ports 2181/8080 (and 2888 for peers); ruok, srvr, mntr.
    #[test]
    fn defaults_without_file() {
        let _g = env_lock();
        let cli = parse(&[]);
        assert!(cli.command.is_none());
        let c = Config::load(&cli).unwrap();
        assert_eq!(c.id, 1);
        assert_eq!(c.zone, "local");
        assert_eq!(c.data_dir, PathBuf::from("./zonekeeper-data"));
        assert_eq!(c.client_addr, "127.0.0.1:2181".parse().unwrap());
        assert_eq!(c.admin_addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.peer_addr, "127.0.0.1:2888".parse().unwrap());
        assert!(c.is_standalone());
        assert_eq!(c.tick, Duration::from_millis(2000));
        // ZooKeeper defaults: 2 and 20 ticks.
        assert_eq!(c.min_session_timeout, Duration::from_millis(4000));
        assert_eq!(c.max_session_timeout, Duration::from_millis(40000));
        assert_eq!(c.max_client_connections, 60);
        assert_eq!(c.max_packet_bytes, 0xfffff);
        assert_eq!(c.four_letter_words, Whitelist::default_set());
        assert_eq!(c.super_digest, None);
        assert!(!c.extended_types_enabled);
        assert_eq!(c.container_check_interval, Duration::from_secs(60));
        assert_eq!(c.snapshot_every_entries, 100_000);
        assert_eq!(c.snapshots_to_keep, 3);
        assert_eq!(c.wal_segment_bytes, 64 * 1024 * 1024);
        assert_eq!(c.recovery_mode, RecoveryMode::TolerateTailCorruption);
        assert!(c.fsync);
        assert_eq!(c.log_level, "info");
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c, Config::default());
    }

    /// The contract's exact standalone command line.
    #[test]
    fn standalone_contract_flags() {
        let _g = env_lock();
        let cli = parse(&[
            "--data-dir",
            "/tmp/zk1",
            "--client-addr",
            "127.0.0.1:12181",
            "--admin-addr",
            "127.0.0.1:18080",
        ]);
        let c = Config::load(&cli).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/tmp/zk1"));
        assert_eq!(c.client_addr.port(), 12181);
        assert_eq!(c.admin_addr.port(), 18080);
        assert_eq!(
            c.member_statuses(),
            vec![MemberStatus {
                id: 1,
                zone: "local".into(),
                role: "voter".into(),
                client_addr: "127.0.0.1:12181".into(),
                peer_addr: "127.0.0.1:2888".into(),
            }]
        );
    }

    const ENSEMBLE: &str = r#"
id = 2
data_dir = "/var/lib/zonekeeper"
client_addr = "0.0.0.0:2181"
admin_addr = "0.0.0.0:8080"
peer_addr = "0.0.0.0:2888"
tick_ms = 1000
four_letter_words = "*"
recovery_mode = "absolute-consistency"

[[members]]
id = 1
zone = "eu-west-1a"
peer_addr = "zk-0.zk:2888"
client_addr = "zk-0.zk:2181"

[[members]]
id = 2
zone = "eu-west-1b"
peer_addr = "zk-1.zk:2888"
client_addr = "zk-1.zk:2181"

[[members]]
id = 3
zone = "eu-west-1c"
peer_addr = "zk-2.zk:2888"
client_addr = "zk-2.zk:2181"
role = "observer"
"#;

    /// ARCHITECTURE.md "Contracts", ensemble member: `--config FILE`,
    /// members with id, zone, address, role.
    #[test]
    fn ensemble_file_loads() {
        let _g = env_lock();
        let f = config_file(ENSEMBLE);
        let cli = parse(&["--config", f.path().to_str().unwrap()]);
        let c = Config::load(&cli).unwrap();
        assert_eq!(c.config_file.as_deref(), Some(f.path()));
        assert_eq!(c.id, 2);
        assert_eq!(c.zone, "eu-west-1b", "zone comes from this server's entry");
        assert_eq!(c.members.len(), 3);
        assert_eq!(c.members[2].role, MemberRole::Observer);
        assert_eq!(c.self_member().unwrap().peer_addr, "zk-1.zk:2888");
        assert_eq!(c.tick, Duration::from_millis(1000));
        assert_eq!(c.min_session_timeout, Duration::from_millis(2000));
        assert_eq!(c.max_session_timeout, Duration::from_millis(20000));
        assert_eq!(c.four_letter_words, Whitelist::all());
        assert_eq!(c.recovery_mode, RecoveryMode::AbsoluteConsistency);
        assert_eq!(c.member_statuses()[2].role, "observer");
    }

    /// Contract: "flags override the file".
    #[test]
    fn flags_override_file() {
        let _g = env_lock();
        let f = config_file(ENSEMBLE);
        let cli = parse(&[
            "--config",
            f.path().to_str().unwrap(),
            "--id",
            "3",
            "--client-addr",
            "127.0.0.1:3181",
            "--tick-ms",
            "500",
            "--fsync",
            "false",
        ]);
        let c = Config::load(&cli).unwrap();
        assert_eq!(c.id, 3);
        assert_eq!(c.zone, "eu-west-1c");
        assert_eq!(c.client_addr, "127.0.0.1:3181".parse().unwrap());
        assert_eq!(c.tick, Duration::from_millis(500));
        assert!(!c.fsync);
        // Untouched keys still come from the file.
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/zonekeeper"));
    }

    /// Contract: "one TOML file + env overrides"; flags beat env, env beats
    /// the file (the operator renders one ConfigMap and sets
    /// ZONEKEEPER_ID per pod).
    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let _g = env_lock();
        let f = config_file(ENSEMBLE);
        std::env::set_var("ZONEKEEPER_ID", "1");
        std::env::set_var("ZONEKEEPER_MAX_CLIENT_CONNECTIONS", "0");
        std::env::set_var("ZONEKEEPER_LOG_FORMAT", "json");
        let from_env = Config::load(&parse(&["--config", f.path().to_str().unwrap()]));
        let flag_wins = Config::load(&parse(&["--config", f.path().to_str().unwrap(), "--id", "3"]));
        std::env::set_var("ZONEKEEPER_CONFIG", f.path());
        let config_from_env = Config::load(&parse(&[]));
        for key in [
            "ZONEKEEPER_ID",
            "ZONEKEEPER_MAX_CLIENT_CONNECTIONS",
            "ZONEKEEPER_LOG_FORMAT",
            "ZONEKEEPER_CONFIG",
        ] {
            std::env::remove_var(key);
        }
        let from_env = from_env.unwrap();
        assert_eq!(from_env.id, 1);
        assert_eq!(from_env.zone, "eu-west-1a");
        assert_eq!(from_env.max_client_connections, 0);
        assert_eq!(from_env.log_format, LogFormat::Json);
        assert_eq!(flag_wins.unwrap().id, 3);
        assert_eq!(config_from_env.unwrap().id, 1);
    }

    /// Unknown keys are errors (a misspelt `tick_time` must not silently
    /// fall back to the default).
    #[test]
    fn unknown_toml_keys_rejected() {
        let _g = env_lock();
        let f = config_file("tick_time = 2000\n");
        let err = Config::load(&parse(&["--config", f.path().to_str().unwrap()])).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ConfigError::Parse { .. }));
        assert!(msg.contains("unknown field `tick_time`"), "{msg}");
        assert!(msg.contains("tick_ms"), "lists the expected keys: {msg}");

        let err = Settings::from_toml(
            "[[members]]\nid = 1\nzone = \"a\"\npeer_addr = \"h:1\"\nclient_addr = \"h:2\"\nweight = 2\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `weight`"));
    }

    #[test]
    fn wrong_types_and_missing_file_are_reported() {
        let _g = env_lock();
        let f = config_file("tick_ms = \"fast\"\n");
        let err = Config::load(&parse(&["--config", f.path().to_str().unwrap()])).unwrap_err();
        assert!(err.to_string().contains("tick_ms"), "{err}");
        let err = Config::load(&parse(&["--config", "/nonexistent/zonekeeper.toml"])).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
        assert!(err.to_string().contains("/nonexistent/zonekeeper.toml"));
    }

    /// ZooKeeper QuorumPeerConfig: "minSessionTimeout must not be larger
    /// than maxSessionTimeout"; defaults 2 and 20 ticks.
    #[test]
    fn session_timeout_rules() {
        let err = err_of(Settings {
            min_session_timeout_ms: Some(50_000),
            ..Settings::default()
        });
        assert_eq!(err.key(), Some("min_session_timeout_ms"));
        assert!(
            err.to_string()
                .contains("(50000) must not be larger than max_session_timeout_ms (40000)"),
            "{err}"
        );
        // Below 2 ticks is allowed, as in ZooKeeper.
        let c = Config::from_settings(Settings {
            min_session_timeout_ms: Some(1000),
            ..Settings::default()
        })
        .unwrap();
        assert_eq!(c.min_session_timeout, Duration::from_millis(1000));
        assert_eq!(
            err_of(Settings {
                tick_ms: Some(0),
                ..Settings::default()
            })
            .key(),
            Some("tick_ms")
        );
        assert_eq!(
            err_of(Settings {
                max_session_timeout_ms: Some(1 << 40),
                min_session_timeout_ms: Some(1),
                ..Settings::default()
            })
            .key(),
            Some("max_session_timeout_ms")
        );
    }

    /// ZooKeeper admin guide, "The myid file": 1..=255, at most 254 with
    /// extended types.
    #[test]
    fn server_id_range() {
        let err = err_of(Settings {
            id: Some(0),
            ..Settings::default()
        });
        assert_eq!(
            err.to_string(),
            "invalid id: 0 is out of range; server ids are 1 to 255"
        );
        assert!(Config::from_settings(Settings {
            id: Some(255),
            ..Settings::default()
        })
        .is_ok());
        let err = err_of(Settings {
            id: Some(255),
            extended_types_enabled: Some(true),
            ..Settings::default()
        });
        assert!(err.to_string().contains("extended_types_enabled"), "{err}");
    }

    #[test]
    fn bad_values_rejected_with_key() {
        let cases: Vec<(Settings, &str, &str)> = vec![
            (
                Settings {
                    client_addr: Some("localhost:2181".into()),
                    ..Settings::default()
                },
                "client_addr",
                "not an IP:PORT",
            ),
            (
                Settings {
                    admin_addr: Some("127.0.0.1:2181".into()),
                    ..Settings::default()
                },
                "admin_addr",
                "own port",
            ),
            (
                Settings {
                    four_letter_words: Some("ruok, stats".into()),
                    ..Settings::default()
                },
                "four_letter_words",
                "unknown four-letter word `stats`",
            ),
            (
                Settings {
                    super_digest: Some("admin:abc".into()),
                    ..Settings::default()
                },
                "super_digest",
                "super:",
            ),
            (
                Settings {
                    super_digest: Some("super:not-base64!".into()),
                    ..Settings::default()
                },
                "super_digest",
                "base64 SHA-1",
            ),
            (
                Settings {
                    max_packet_bytes: Some(0),
                    ..Settings::default()
                },
                "max_packet_bytes",
                "between 1 and",
            ),
            (
                Settings {
                    wal_segment_bytes: Some(1024),
                    ..Settings::default()
                },
                "wal_segment_bytes",
                "2 * max_packet_bytes",
            ),
            (
                Settings {
                    snapshots_to_keep: Some(0),
                    ..Settings::default()
                },
                "snapshots_to_keep",
                "at least 1",
            ),
            (
                Settings {
                    snapshot_every_entries: Some(0),
                    ..Settings::default()
                },
                "snapshot_every_entries",
                "positive",
            ),
            (
                Settings {
                    container_check_interval_ms: Some(0),
                    ..Settings::default()
                },
                "container_check_interval_ms",
                "positive",
            ),
            (
                Settings {
                    zone: Some("us east".into()),
                    ..Settings::default()
                },
                "zone",
                "not a zone name",
            ),
            (
                Settings {
                    log_level: Some("info,=x=y".into()),
                    ..Settings::default()
                },
                "log_level",
                "not a tracing filter",
            ),
            (
                Settings {
                    data_dir: Some(PathBuf::new()),
                    ..Settings::default()
                },
                "data_dir",
                "empty",
            ),
        ];
        for (settings, key, text) in cases {
            let err = err_of(settings);
            assert_eq!(err.key(), Some(key), "{err}");
            assert!(err.to_string().contains(text), "{key}: {err}");
        }
        // A valid digest: generateDigest("super:test").
        assert!(Config::from_settings(Settings {
            super_digest: Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=".into()),
            ..Settings::default()
        })
        .is_ok());
    }

    fn member(id: u64, zone: &str, role: MemberRole) -> MemberSettings {
        MemberSettings {
            id,
            zone: zone.into(),
            peer_addr: format!("zk-{id}:2888"),
            client_addr: format!("zk-{id}:2181"),
            role,
        }
    }

    #[test]
    fn member_list_rules() {
        let with = |id: u64, members: Vec<MemberSettings>| Settings {
            id: Some(id),
            members: Some(members),
            ..Settings::default()
        };
        let err = err_of(with(
            4,
            vec![
                member(1, "a", MemberRole::Voter),
                member(2, "b", MemberRole::Voter),
            ],
        ));
        assert!(
            err.to_string()
                .contains("id 4 is not among the members (ids 1, 2)"),
            "{err}"
        );

        let err = err_of(with(
            1,
            vec![
                member(1, "a", MemberRole::Voter),
                member(1, "b", MemberRole::Voter),
            ],
        ));
        assert!(err.to_string().contains("id 1 appears twice"), "{err}");

        let mut clash = member(2, "b", MemberRole::Voter);
        clash.peer_addr = "zk-1:2888".into();
        let err = err_of(with(1, vec![member(1, "a", MemberRole::Voter), clash]));
        assert!(err.to_string().contains("share peer_addr zk-1:2888"), "{err}");

        let err = err_of(with(1, vec![member(1, "a", MemberRole::Observer)]));
        assert!(err.to_string().contains("at least one must be a voter"), "{err}");

        let mut bad = member(2, "b", MemberRole::Voter);
        bad.client_addr = "zk-2".into();
        let err = err_of(with(1, vec![member(1, "a", MemberRole::Voter), bad]));
        assert_eq!(err.key(), Some("members[id=2].client_addr"));

        let err = err_of(Settings {
            zone: Some("z".into()),
            ..with(1, vec![member(1, "a", MemberRole::Voter)])
        });
        assert_eq!(err.key(), Some("zone"));
        assert!(err
            .to_string()
            .contains("differs from this server's members entry"));

        // Sorted by id whatever the file order.
        let c = Config::from_settings(with(
            2,
            vec![
                member(3, "c", MemberRole::Voter),
                member(2, "b", MemberRole::Voter),
            ],
        ))
        .unwrap();
        assert_eq!(c.members.iter().map(|m| m.id).collect::<Vec<_>>(), vec![2, 3]);
    }

    /// ARCHITECTURE.md "Contracts", local ensemble: `dev --members N --zones
    /// Z --data-dir DIR --base-port P`.
    #[test]
    fn dev_subcommand_args() {
        let _g = env_lock();
        let cli = parse(&[
            "dev",
            "--members",
            "5",
            "--zones",
            "2",
            "--data-dir",
            "/tmp/dev",
            "--base-port",
            "12000",
        ]);
        let Some(Command::Dev(DevCommand {
            ensemble: dev,
            sidecar: None,
        })) = cli.command
        else {
            panic!("dev subcommand without --sidecar expected");
        };
        assert_eq!(
            dev,
            DevArgs {
                members: 5,
                zones: 2,
                data_dir: PathBuf::from("/tmp/dev"),
                base_port: 12000
            }
        );
        assert!(dev.validate().is_ok());
        // Server flags do not mix with the subcommand, but stray
        // ZONEKEEPER_* variables in the environment must not break it.
        assert!(Cli::try_parse_from(["zonekeeper-server", "--id", "2", "dev"]).is_err());
        std::env::set_var("ZONEKEEPER_ID", "2");
        let with_env = Cli::try_parse_from(["zonekeeper-server", "dev"]);
        std::env::remove_var("ZONEKEEPER_ID");
        assert!(matches!(with_env.unwrap().command, Some(Command::Dev(_))));
        let Some(Command::Dev(DevCommand {
            ensemble: defaults, ..
        })) = parse(&["dev"]).command
        else {
            panic!("dev subcommand expected");
        };
        assert!(defaults.validate().is_ok());
        let bad = DevArgs {
            zones: 6,
            ..dev.clone()
        };
        assert_eq!(bad.validate().unwrap_err().key(), Some("zones"));
        let bad = DevArgs {
            base_port: 65000,
            ..dev
        };
        assert_eq!(bad.validate().unwrap_err().key(), Some("base_port"));
    }

    /// The dev subcommand and the operator write member configs with
    /// `to_toml`; they must read back unchanged.
    #[test]
    fn settings_round_trip_through_toml() {
        let s = Settings::from_toml(ENSEMBLE).unwrap();
        let text = s.to_toml().unwrap();
        assert_eq!(Settings::from_toml(&text).unwrap(), s);
        assert_eq!(Settings::default().to_toml().unwrap(), "");
    }

    #[test]
    fn conf_summary_uses_ports_and_absolute_dir() {
        let c = Config::default();
        let s = c.conf_summary();
        assert_eq!(s.client_port, 2181);
        assert_eq!(s.peer_port, 2888);
        assert_eq!(s.tick_ms, 2000);
        assert_eq!(s.min_session_timeout_ms, 4000);
        assert_eq!(s.max_session_timeout_ms, 40000);
        assert_eq!(s.max_client_cnxns, 60);
        assert!(Path::new(&s.data_dir).is_absolute());
    }
}
