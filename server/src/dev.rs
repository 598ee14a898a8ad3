//! `zonekeeper-server dev`: a local multi-zone ensemble for development.
//! N member processes of this same binary on 127.0.0.1, spread round-robin
//! over Z zones (`zone-a`, `zone-b`, …), each with its own config file and
//! data directory under `--data-dir`. Ports (docs/server.md): client
//! `base…base+N-1`, admin `base+1000…`, peer `base+2000…`.
//!
//! It prints one line, `connect: 127.0.0.1:P@zone-a,…`, once every member
//! serves, and runs until interrupted; then it stops the members with
//! SIGTERM (they exit cleanly, everything acknowledged is on disk). Data
//! directories are kept, so running it again resumes the same ensemble.
//!
//! With `--sidecar ADDR` it also runs the `zonekeeper-sidecar` binary found
//! next to its own (build both: `cargo build -p zonekeeper-server -p
//! zonekeeper-sidecar`) with `--servers` set to the connect string and its
//! HTTP API on ADDR, waits until the sidecar is ready and prints
//! `sidecar: http://ADDR` after the `connect:` line. It is stopped first
//! (SIGTERM: it releases what it holds while the members still serve).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tracing::{info, warn};

use crate::config::{ConfigError, DevArgs, DevCommand, MemberRole, MemberSettings, Settings};

/// Port offsets from `--base-port`.
pub const ADMIN_PORT_OFFSET: u16 = 1000;
pub const PEER_PORT_OFFSET: u16 = 2000;

/// One member of the planned ensemble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevMember {
    pub id: u64,
    pub zone: String,
    pub client_port: u16,
    pub admin_port: u16,
    pub peer_port: u16,
    pub dir: PathBuf,
}

/// Zone names: `zone-a`, `zone-b`, … (`zone-27` past the alphabet).
pub fn zone_name(i: u16) -> String {
    match char::from_u32('a' as u32 + i as u32) {
        Some(c) if i < 26 => format!("zone-{c}"),
        _ => format!("zone-{}", i + 1),
    }
}

/// The members `args` describe. Pure, so it is tested without processes.
pub fn plan(args: &DevArgs) -> Result<Vec<DevMember>, ConfigError> {
    args.validate()?;
    Ok((0..args.members)
        .map(|i| DevMember {
            id: u64::from(i) + 1,
            zone: zone_name(i % args.zones),
            client_port: args.base_port + i,
            admin_port: args.base_port + ADMIN_PORT_OFFSET + i,
            peer_port: args.base_port + PEER_PORT_OFFSET + i,
            dir: args.data_dir.join(format!("member-{}", i + 1)),
        })
        .collect())
}

/// The config file of `me` in the ensemble `all` (TOML, the server's own
/// schema).
pub fn config_for(me: &DevMember, all: &[DevMember]) -> Result<String, ConfigError> {
    let settings = Settings {
        id: Some(me.id),
        data_dir: Some(me.dir.join("data")),
        client_addr: Some(format!("127.0.0.1:{}", me.client_port)),
        admin_addr: Some(format!("127.0.0.1:{}", me.admin_port)),
        peer_addr: Some(format!("127.0.0.1:{}", me.peer_port)),
        four_letter_words: Some("*".into()),
        members: Some(
            all.iter()
                .map(|m| MemberSettings {
                    id: m.id,
                    zone: m.zone.clone(),
                    peer_addr: format!("127.0.0.1:{}", m.peer_port),
                    client_addr: format!("127.0.0.1:{}", m.client_port),
                    role: MemberRole::Voter,
                })
                .collect(),
        ),
        ..Settings::default()
    };
    settings.to_toml().map_err(|e| ConfigError::Invalid {
        key: "members".into(),
        message: format!("cannot render the dev config: {e}"),
    })
}

/// The `connect:` line's value: `127.0.0.1:P@zone,…`.
pub fn connect_string(all: &[DevMember]) -> String {
    all.iter()
        .map(|m| format!("127.0.0.1:{}@{}", m.client_port, m.zone))
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs the ensemble until `shutdown` resolves. `exe` is the server binary
/// (normally this process's own).
pub async fn run(
    command: DevCommand,
    exe: PathBuf,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    command.validate()?;
    let args = command.ensemble;
    let members = plan(&args)?;
    let mut children = Vec::new();
    for m in &members {
        std::fs::create_dir_all(&m.dir)?;
        let config = m.dir.join("zonekeeper.toml");
        std::fs::write(&config, config_for(m, &members)?)?;
        children.push((m.clone(), spawn(&exe, &config, &m.dir)?));
    }
    info!(members = members.len(), dir = %args.data_dir.display(), "dev ensemble starting");
    let deadline = Instant::now() + Duration::from_secs(60);
    for (m, child) in &mut children {
        while !serving(m.client_port).await {
            if let Ok(Some(status)) = child.try_wait() {
                anyhow::bail!(
                    "member {} exited during start-up ({status}); see {}",
                    m.id,
                    m.dir.join("server.log").display()
                );
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "member {} did not start serving within 60 s; see {}",
                    m.id,
                    m.dir.join("server.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    println!("connect: {}", connect_string(&members));
    let mut sidecar = match command.sidecar {
        Some(addr) => {
            let child = start_sidecar(&exe, addr, &connect_string(&members), &args.data_dir).await?;
            println!("sidecar: http://{addr}");
            Some(child)
        }
        None => None,
    };
    tokio::pin!(shutdown);
    let mut watch = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = watch.tick() => {
                for (m, child) in &mut children {
                    if let Ok(Some(status)) = child.try_wait() {
                        warn!(id = m.id, %status, log = %m.dir.join("server.log").display(),
                            "a member exited; the others keep running");
                    }
                }
            }
        }
    }
    info!("stopping the dev ensemble");
    if let Some(child) = &mut sidecar {
        if let Some(pid) = child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            warn!("the sidecar did not stop within 10 s; killing it");
            let _ = child.kill().await;
        }
    }
    for (_, child) in &children {
        if let Some(pid) = child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
    }
    for (m, child) in &mut children {
        match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                warn!(id = m.id, "member did not stop within 10 s; killing it");
                let _ = child.kill().await;
            }
        }
    }
    Ok(())
}

fn spawn(exe: &Path, config: &Path, dir: &Path) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))?;
    Ok(Command::new(exe)
        .arg("--config")
        .arg(config)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?)
}

/// The `zonekeeper-sidecar` binary next to `server_exe`.
pub fn sidecar_exe(server_exe: &Path) -> PathBuf {
    server_exe.with_file_name("zonekeeper-sidecar")
}

/// Starts the sidecar and waits (60 s at most) until its `/readyz` is 200.
async fn start_sidecar(
    server_exe: &Path,
    addr: std::net::SocketAddr,
    connect: &str,
    dir: &Path,
) -> anyhow::Result<Child> {
    let exe = sidecar_exe(server_exe);
    if !exe.exists() {
        anyhow::bail!(
            "--sidecar needs the zonekeeper-sidecar binary next to this one ({}); build both with \
             `cargo build -p zonekeeper-server -p zonekeeper-sidecar` (same profile, e.g. --release)",
            exe.display()
        );
    }
    let log_path = dir.join("sidecar.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let mut child = Command::new(&exe)
        .arg("--servers")
        .arg(connect)
        .arg("--listen")
        .arg(addr.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http_ok(addr, "/readyz").await {
        if let Ok(Some(status)) = child.try_wait() {
            anyhow::bail!(
                "the sidecar exited during start-up ({status}); see {}",
                log_path.display()
            );
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "the sidecar was not ready within 60 s; see {}",
                log_path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(child)
}

/// `GET path` answers 200.
async fn http_ok(addr: std::net::SocketAddr, path: &str) -> bool {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.ok()?;
        Some(out.starts_with(b"HTTP/1.1 200"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Some(true))
    )
}

/// Whether the member answers `srvr` as a serving server (ZooKeeper's
/// "not currently serving requests" until it has a leader and caught up).
async fn serving(port: u16) -> bool {
    let Ok(Ok(mut s)) = tokio::time::timeout(
        Duration::from_secs(1),
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    else {
        return false;
    };
    if s.write_all(b"srvr").await.is_err() {
        return false;
    }
    let mut out = String::new();
    let read = tokio::time::timeout(Duration::from_secs(1), s.read_to_string(&mut out)).await;
    matches!(read, Ok(Ok(_))) && out.starts_with("Zookeeper version")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(members: u16, zones: u16) -> DevArgs {
        DevArgs {
            members,
            zones,
            data_dir: PathBuf::from("/tmp/dev"),
            base_port: 2181,
        }
    }

    #[test]
    fn members_are_spread_round_robin_with_the_contracts_ports() {
        // ARCHITECTURE.md: client ports P…P+N-1, admin ports P+1000….
        let p = plan(&args(5, 3)).unwrap();
        let zones: Vec<_> = p.iter().map(|m| m.zone.as_str()).collect();
        assert_eq!(zones, ["zone-a", "zone-b", "zone-c", "zone-a", "zone-b"]);
        assert_eq!(p[4].client_port, 2185);
        assert_eq!(p[4].admin_port, 3185);
        assert_eq!(p[4].peer_port, 4185);
        assert_eq!(p[0].dir, PathBuf::from("/tmp/dev/member-1"));
        assert_eq!(
            connect_string(&p[..2]),
            "127.0.0.1:2181@zone-a,127.0.0.1:2182@zone-b"
        );
    }

    #[test]
    fn each_config_lists_every_member_and_is_valid_for_the_server() {
        let p = plan(&args(3, 3)).unwrap();
        let text = config_for(&p[1], &p).unwrap();
        let settings = Settings::from_toml(&text).unwrap();
        let config = crate::config::Config::from_settings(settings).unwrap();
        assert_eq!(config.id, 2);
        assert_eq!(config.zone, "zone-b");
        assert_eq!(config.members.len(), 3);
        assert_eq!(config.client_addr.port(), 2182);
        assert!(!config.is_standalone());
    }

    #[test]
    fn the_sidecar_is_found_next_to_the_server_and_must_be_loopback() {
        assert_eq!(
            sidecar_exe(Path::new("/x/target/release/zonekeeper-server")),
            PathBuf::from("/x/target/release/zonekeeper-sidecar")
        );
        let mut c = DevCommand {
            ensemble: args(3, 3),
            sidecar: Some("127.0.0.1:7181".parse().unwrap()),
        };
        assert!(c.validate().is_ok());
        c.sidecar = Some("0.0.0.0:7181".parse().unwrap());
        assert!(c.validate().is_err());
    }

    #[test]
    fn bad_counts_are_refused() {
        assert!(plan(&args(0, 1)).is_err());
        assert!(plan(&args(3, 0)).is_err());
    }
}
