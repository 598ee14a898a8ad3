//! ACL schemes (world, auth, digest, ip, super) and permission checks.
//!
//! Owns: what `addauth` does for each scheme (ZooKeeper's
//! `DigestAuthenticationProvider` / `IPAuthenticationProvider`), the ids a
//! connection holds ([`AuthInfo`]), the permission check every operation
//! makes (`ZooKeeperServer.checkACL`) and the validation/expansion of ACLs a
//! client sends with `create`/`setACL` (`PrepRequestProcessor.fixupACL`).
//!
//! Must not: touch the data tree, sessions or sockets, or read the clock.
//! Callers pass the node's ACL and the connection's [`AuthInfo`].
//!
//! Supported schemes are those ZooKeeper registers by default: `digest`
//! and `ip` (plus the special `world:anyone`, `auth` and `super`). SASL and
//! x509 are not implemented: ACL entries naming them are rejected by
//! [`fixup`] (as ZooKeeper does when their provider is not configured) and
//! never match in [`check`].
//!
//! A caller delivering watch events must also filter them through
//! [`check`] with `perms::READ` (ZooKeeper 3.8.4+/3.9.2+ does this in
//! `NIOServerCnxn.process(WatchedEvent, List<ACL>)`; see [`crate::watch`]).

use std::net::IpAddr;

use base64::Engine as _;
use proto::records::{perms, Acl, ClientInfo, Id};
use proto::ErrorCode;
use sha1::{Digest as _, Sha1};

/// Scheme names (`ProviderRegistry` / `ZooDefs.Ids`).
pub mod scheme {
    pub const WORLD: &str = "world";
    pub const AUTH: &str = "auth";
    pub const DIGEST: &str = "digest";
    pub const IP: &str = "ip";
    pub const SUPER: &str = "super";
}

/// A compile-time `scheme:id` pair; [`Id`] owns `String`s and so cannot be
/// a `const`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConstId {
    pub scheme: &'static str,
    pub id: &'static str,
}

impl ConstId {
    pub fn to_id(self) -> Id {
        Id {
            scheme: self.scheme.to_string(),
            id: self.id.to_string(),
        }
    }

    pub fn matches(self, id: &Id) -> bool {
        id.scheme == self.scheme && id.id == self.id
    }
}

/// `ZooDefs.Ids.ANYONE_ID_UNSAFE`: `world:anyone`.
pub const WORLD_ANYONE: ConstId = ConstId {
    scheme: scheme::WORLD,
    id: "anyone",
};

/// `ZooDefs.Ids.AUTH_IDS`: `auth:` (expanded by [`fixup`] to the caller's
/// authenticated ids).
pub const AUTH_IDS: ConstId = ConstId {
    scheme: scheme::AUTH,
    id: "",
};

/// `ZooDefs.Ids.OPEN_ACL_UNSAFE`: `world:anyone` with all permissions.
pub fn open_acl_unsafe() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: WORLD_ANYONE.to_id(),
    }]
}

/// `ZooDefs.Ids.CREATOR_ALL_ACL`: all permissions for the creator's
/// authenticated ids.
pub fn creator_all_acl() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: AUTH_IDS.to_id(),
    }]
}

/// `ZooDefs.Ids.READ_ACL_UNSAFE`: `world:anyone` may read.
pub fn read_acl_unsafe() -> Vec<Acl> {
    vec![Acl {
        perms: perms::READ,
        id: WORLD_ANYONE.to_id(),
    }]
}

/// `"user:password"` → `"user:base64(sha1("user:password"))"`
/// (`DigestAuthenticationProvider.generateDigest`). The user is everything
/// before the first `:`; the hash covers the whole input. An input without
/// `:` is hashed all the same (`"x"` → `"x:<hash of x>"`).
pub fn generate_digest(id_password: &str) -> String {
    let user = id_password.split(':').next().unwrap_or("");
    let hash = Sha1::digest(id_password.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(hash);
    format!("{user}:{b64}")
}

/// Authentication of an `addauth` packet, for schemes that need nothing
/// from the connection.
///
/// - `digest`: always succeeds (ZooKeeper's digest provider never fails:
///   any bytes, even without `:`, are hashed by [`generate_digest`]); the
///   bytes are read as UTF-8, lossily, like Java's `new String(authData)`.
/// - `ip`: ZooKeeper accepts it and (re-)adds `ip:<remote address>`, which
///   needs the connection; use [`AuthInfo::add_auth`]. Here it is
///   `AuthFailed`.
/// - anything else (`world`, `super`, `auth`, `sasl`, unknown): no provider
///   is registered, so `AuthFailed` (`ZooKeeperServer.processPacket`, and
///   the server then closes the connection).
pub fn authenticate(scheme: &str, auth: &[u8]) -> Result<Id, ErrorCode> {
    match scheme {
        scheme::DIGEST => Ok(Id {
            scheme: scheme::DIGEST.to_string(),
            id: generate_digest(&String::from_utf8_lossy(auth)),
        }),
        _ => Err(ErrorCode::AuthFailed),
    }
}

/// The ids a connection has: always `ip:<client ip>` (when known), plus what
/// `addauth` added; super is a flag rather than an `super:` id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthInfo {
    /// Distinct ids in the order they were added (ZooKeeper keeps a set).
    pub ids: Vec<Id>,
    pub is_super: bool,
}

impl AuthInfo {
    /// A new connection: `ip:<address>` formatted as Java's
    /// `InetAddress.getHostAddress()` does (IPv4-mapped IPv6 addresses are
    /// shown as IPv4, IPv6 without `::` compression).
    pub fn new(client_ip: Option<IpAddr>) -> Self {
        let mut info = AuthInfo::default();
        if let Some(ip) = client_ip {
            info.ids.push(Id {
                scheme: scheme::IP.to_string(),
                id: java_host_address(ip),
            });
        }
        info
    }

    /// Adds an authenticated id (duplicates are ignored, like
    /// `ServerCnxn.addAuthInfo` into a set). A `digest` id equal to the
    /// configured super digest (`"super:<base64 sha1>"`) makes the
    /// connection super (`DigestAuthenticationProvider.handleAuthentication`).
    pub fn add(&mut self, id: Id, super_digest: Option<&str>) {
        if id.scheme == scheme::DIGEST && super_digest == Some(id.id.as_str()) {
            self.is_super = true;
        }
        if !self.ids.contains(&id) {
            self.ids.push(id);
        }
    }

    /// A whole `addauth`: what `ZooKeeperServer.processPacket` does with an
    /// auth packet. `ip` succeeds and (re-)adds the connection's own address
    /// (already present from [`AuthInfo::new`]); `digest` adds the digest id;
    /// anything else is `AuthFailed` (the caller then replies and closes the
    /// connection, as ZooKeeper does).
    pub fn add_auth(
        &mut self,
        scheme: &str,
        auth: &[u8],
        super_digest: Option<&str>,
    ) -> Result<(), ErrorCode> {
        if scheme == scheme::IP {
            return Ok(());
        }
        let id = authenticate(scheme, auth)?;
        self.add(id, super_digest);
        Ok(())
    }

    /// The ids `auth` ACL entries expand to: those of providers whose
    /// `isAuthenticated()` is true, i.e. `digest` (not `ip`, not `super`).
    pub fn authenticated_ids(&self) -> impl Iterator<Item = &Id> {
        self.ids.iter().filter(|id| id.scheme == scheme::DIGEST)
    }

    /// The `whoAmI` reply (`AuthUtil.getClientInfos`): scheme and user name
    /// per id (`digest` shows the user part only); a super connection also
    /// shows `super` with an empty user (no provider → `""`).
    pub fn client_infos(&self) -> Vec<ClientInfo> {
        let mut out: Vec<ClientInfo> = self
            .ids
            .iter()
            .map(|id| ClientInfo {
                auth_scheme: id.scheme.clone(),
                user: if id.scheme == scheme::DIGEST {
                    id.id.split(':').next().unwrap_or("").to_string()
                } else {
                    id.id.clone()
                },
            })
            .collect();
        if self.is_super {
            out.push(ClientInfo {
                auth_scheme: scheme::SUPER.to_string(),
                user: String::new(),
            });
        }
        out
    }
}

/// `ZooKeeperServer.checkACL`: `Ok` if the ACL is empty, if the connection
/// is super, or if any entry granting `perm` matches one of the
/// connection's ids: `world:anyone` matches everyone; `digest` needs the
/// exact same id; `ip` matches an address or CIDR (`10.0.0.0/8`). Entries
/// of other schemes (including a stored `auth`) never match. Otherwise
/// `NoAuth`.
pub fn check(acl: &[Acl], perm: i32, auth: &AuthInfo) -> Result<(), ErrorCode> {
    if acl.is_empty() || auth.is_super {
        return Ok(());
    }
    for entry in acl.iter().filter(|a| a.perms & perm != 0) {
        let id = &entry.id;
        if WORLD_ANYONE.matches(id) {
            return Ok(());
        }
        let matched = match id.scheme.as_str() {
            scheme::DIGEST => auth
                .ids
                .iter()
                .any(|a| a.scheme == scheme::DIGEST && a.id == id.id),
            scheme::IP => auth
                .ids
                .iter()
                .any(|a| a.scheme == scheme::IP && ip_matches(&a.id, &id.id)),
            _ => false,
        };
        if matched {
            return Ok(());
        }
    }
    Err(ErrorCode::NoAuth)
}

/// `PrepRequestProcessor.fixupACL`: validates and expands the ACL of a
/// `create`/`setACL`.
///
/// The input is first deduplicated (exact duplicates, first one kept) and
/// must not be empty. Then per entry: `world:anyone` is kept; `auth:<any>`
/// is replaced by one entry with the same perms per authenticated id of the
/// connection (`digest` ids; none → `InvalidAcl`); `digest` ids must pass
/// [`digest_id_is_valid`]; `ip` ids must pass [`ip_id_is_valid`]; anything
/// else (other `world` ids, `super`, unknown schemes) is `InvalidAcl`.
/// As in ZooKeeper, duplicates created by the `auth` expansion are kept and
/// permission bits are not validated.
pub fn fixup(acl: &[Acl], auth: &AuthInfo) -> Result<Vec<Acl>, ErrorCode> {
    let mut uniq: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !uniq.contains(&a) {
            uniq.push(a);
        }
    }
    if uniq.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(uniq.len());
    for a in uniq {
        let id = &a.id;
        if WORLD_ANYONE.matches(id) {
            out.push(a.clone());
        } else if id.scheme == scheme::AUTH {
            let before = out.len();
            out.extend(auth.authenticated_ids().map(|cid| Acl {
                perms: a.perms,
                id: cid.clone(),
            }));
            if out.len() == before {
                return Err(ErrorCode::InvalidAcl);
            }
        } else {
            let valid = match id.scheme.as_str() {
                scheme::DIGEST => digest_id_is_valid(&id.id),
                scheme::IP => ip_id_is_valid(&id.id),
                _ => false,
            };
            if !valid {
                return Err(ErrorCode::InvalidAcl);
            }
            out.push(a.clone());
        }
    }
    Ok(out)
}

/// `DigestAuthenticationProvider.isValid`: `id.split(":").length == 2`
/// with Java's `split`, which drops trailing empty strings. So `"u:h"`,
/// `":h"` and `"u:h:"` are valid; `"u:"`, `"u"` and `"u:h:x"` are not.
pub fn digest_id_is_valid(id: &str) -> bool {
    let parts: Vec<&str> = id.split(':').collect();
    // Length of Java's result: up to the last non-empty part.
    let java_len = parts.iter().rposition(|p| !p.is_empty()).map_or(0, |i| i + 1);
    java_len == 2
}

/// `IPAuthenticationProvider.isValid`: an address (IPv4 dotted quad or
/// IPv6), optionally followed by `/bits` with bits within the address size.
pub fn ip_id_is_valid(id: &str) -> bool {
    parse_ip_expr(id).is_some()
}

/// `IPAuthenticationProvider.matches(clientId, aclExpr)`: both masked to
/// the ACL's prefix length and compared; IPv4 never matches IPv6.
pub fn ip_matches(client: &str, acl_expr: &str) -> bool {
    let Some((mut acl_addr, bits)) = parse_ip_expr(acl_expr) else {
        return false;
    };
    let Some(mut remote) = addr_to_bytes(client) else {
        return false;
    };
    mask(&mut acl_addr, bits);
    mask(&mut remote, bits);
    remote == acl_addr
}

/// `addr[/bits]` → (address bytes, prefix bits), as
/// `IPAuthenticationProvider.isValid`/`matches` parse it.
fn parse_ip_expr(expr: &str) -> Option<(Vec<u8>, usize)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (expr, None),
    };
    let bytes = addr_to_bytes(addr)?;
    let max = bytes.len() * 8;
    let bits = match bits {
        // Java's Integer.parseInt: optional sign, decimal digits.
        Some(b) => usize::try_from(b.parse::<i32>().ok()?)
            .ok()
            .filter(|&b| b <= max)?,
        None => max,
    };
    Some((bytes, bits))
}

/// `IPAuthenticationProvider.addr2Bytes`: anything with a `:` is IPv6,
/// otherwise anything with a `.` is IPv4.
fn addr_to_bytes(addr: &str) -> Option<Vec<u8>> {
    if addr.contains(':') {
        v6_to_bytes(addr)
    } else if addr.contains('.') {
        v4_to_bytes(addr)
    } else {
        None
    }
}

/// `v4addr2Bytes`: exactly four parts, each an integer in 0..=255 (Java's
/// `parseInt` allows a sign and leading zeros, so `"010"` is 10).
fn v4_to_bytes(addr: &str) -> Option<Vec<u8>> {
    let parts: Vec<&str> = addr.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    parts
        .iter()
        .map(|p| p.parse::<i32>().ok().and_then(|v| u8::try_from(v).ok()))
        .collect()
}

/// `parseV6addr`: at most one `::`; without it exactly eight groups, with
/// it fewer than eight explicit groups; each group 1–4 characters parsed as
/// hex by Java's `parseInt(s, 16)`. Embedded IPv4 (`::ffff:1.2.3.4`) and
/// zone ids are not accepted.
fn v6_to_bytes(addr: &str) -> Option<Vec<u8>> {
    let halves: Vec<&str> = addr.split("::").collect();
    let split = |s: &str| -> Vec<String> {
        if s.is_empty() {
            Vec::new()
        } else {
            s.split(':').map(str::to_string).collect()
        }
    };
    let (head, tail) = match halves.as_slice() {
        [whole] => {
            let groups: Vec<String> = whole.split(':').map(str::to_string).collect();
            if groups.len() != 8 {
                return None;
            }
            (groups, Vec::new())
        }
        [a, b] => {
            let (head, tail) = (split(a), split(b));
            if head.len() + tail.len() >= 8 {
                return None;
            }
            (head, tail)
        }
        _ => return None,
    };
    let mut out = vec![0u8; 16];
    let group = |s: &str| -> Option<[u8; 2]> {
        if s.is_empty() || s.len() > 4 {
            return None;
        }
        let v = i32::from_str_radix(s, 16).ok()?;
        Some([(v >> 8) as u8, v as u8])
    };
    for (i, g) in head.iter().enumerate() {
        out[2 * i..2 * i + 2].copy_from_slice(&group(g)?);
    }
    let start = 16 - 2 * tail.len();
    for (i, g) in tail.iter().enumerate() {
        out[start + 2 * i..start + 2 * i + 2].copy_from_slice(&group(g)?);
    }
    Some(out)
}

/// `IPAuthenticationProvider.mask`: keep the first `bits` bits.
fn mask(bytes: &mut [u8], bits: usize) {
    let start = bits / 8;
    let rem = bits % 8;
    if start < bytes.len() {
        bytes[start] &= !(0xFFu8 >> rem);
        for b in &mut bytes[start + 1..] {
            *b = 0;
        }
    }
}

/// Java's `InetAddress.getHostAddress()` text: dotted quad for IPv4 (and
/// IPv4-mapped IPv6, which Java turns into `Inet4Address`), and eight
/// uncompressed lowercase hex groups for IPv6 (`0:0:0:0:0:0:0:1`).
pub fn java_host_address(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6
            .segments()
            .iter()
            .map(|s| format!("{s:x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn id(scheme: &str, id: &str) -> Id {
        Id {
            scheme: scheme.to_string(),
            id: id.to_string(),
        }
    }

    fn acl(perms: i32, scheme: &str, i: &str) -> Acl {
        Acl {
            perms,
            id: id(scheme, i),
        }
    }

    fn client(ip: &str) -> AuthInfo {
        AuthInfo::new(Some(ip.parse().unwrap()))
    }

    const SUPER: &str = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=";

    #[test]
    fn super_digest_of_test_matches_zookeeper_docs() {
        // The documented example for zookeeper.DigestAuthenticationProvider.superDigest.
        assert_eq!(generate_digest("super:test"), SUPER);
    }

    #[test]
    fn digest_keeps_user_before_first_colon_and_hashes_everything() {
        // generateDigest: idPassword.split(":", 2)[0] + ":" + base64(sha1(idPassword)).
        let d = generate_digest("a:b:c");
        assert!(d.starts_with("a:"));
        assert_eq!(d.len(), "a:".len() + 28);
        assert_ne!(d, generate_digest("a:b"));
        assert!(generate_digest("nocolon").starts_with("nocolon:"));
        // sha1("") = da39a3ee5e6b4b0d3255bfef95601890afd80709
        assert_eq!(generate_digest(""), ":2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
    }

    #[test]
    fn addauth_digest_never_fails_like_zookeeper() {
        // DigestAuthenticationProvider.handleAuthentication always returns an id.
        let got = authenticate("digest", b"bob:secret").unwrap();
        assert_eq!(got, id("digest", &generate_digest("bob:secret")));
        assert!(authenticate("digest", b"no colon at all").is_ok());
        assert!(authenticate("digest", b"").is_ok());
    }

    #[test]
    fn addauth_of_unregistered_schemes_fails() {
        // ProviderRegistry has only ip and digest: others are AUTHFAILED.
        for s in ["world", "super", "auth", "sasl", "x509", "nope", ""] {
            assert_eq!(authenticate(s, b"x:y"), Err(ErrorCode::AuthFailed), "{s}");
        }
        // ip needs the connection: only AuthInfo::add_auth can do it.
        assert_eq!(authenticate("ip", b""), Err(ErrorCode::AuthFailed));
    }

    #[test]
    fn add_auth_ip_succeeds_without_changing_ids() {
        // IPAuthenticationProvider.handleAuthentication re-adds ip:<remote>.
        let mut a = client("10.1.2.3");
        let before = a.clone();
        assert_eq!(a.add_auth("ip", b"whatever", None), Ok(()));
        assert_eq!(a, before);
        assert_eq!(a.add_auth("world", b"anyone", None), Err(ErrorCode::AuthFailed));
    }

    #[test]
    fn connection_starts_with_its_ip_id() {
        assert_eq!(client("10.1.2.3").ids, vec![id("ip", "10.1.2.3")]);
        // Java getHostAddress: uncompressed IPv6, mapped IPv4 as IPv4.
        assert_eq!(client("::1").ids, vec![id("ip", "0:0:0:0:0:0:0:1")]);
        assert_eq!(
            client("fe80::1:abcd").ids,
            vec![id("ip", "fe80:0:0:0:0:0:1:abcd")]
        );
        assert_eq!(client("::ffff:10.0.0.1").ids, vec![id("ip", "10.0.0.1")]);
        assert_eq!(AuthInfo::new(None).ids, vec![]);
    }

    #[test]
    fn add_dedups_and_detects_super() {
        let mut a = client("127.0.0.1");
        a.add_auth("digest", b"bob:pw", Some(SUPER)).unwrap();
        a.add_auth("digest", b"bob:pw", Some(SUPER)).unwrap();
        assert_eq!(a.ids.len(), 2);
        assert!(!a.is_super);
        a.add_auth("digest", b"super:test", Some(SUPER)).unwrap();
        assert!(a.is_super);
        // Without a configured super digest nobody is super.
        let mut b = client("127.0.0.1");
        b.add_auth("digest", b"super:test", None).unwrap();
        assert!(!b.is_super);
    }

    #[test]
    fn check_empty_acl_and_super_always_pass() {
        // checkACL: empty ACL returns before anything else; "super" ids bypass.
        let nobody = AuthInfo::default();
        assert_eq!(check(&[], perms::ADMIN, &nobody), Ok(()));
        let locked = vec![acl(perms::READ, "digest", "x:y")];
        let sup = AuthInfo {
            is_super: true,
            ..AuthInfo::default()
        };
        assert_eq!(check(&locked, perms::WRITE, &sup), Ok(()));
        assert_eq!(check(&locked, perms::WRITE, &nobody), Err(ErrorCode::NoAuth));
    }

    #[test]
    fn check_world_anyone_only_for_granted_perms() {
        let read_only = read_acl_unsafe();
        let a = client("1.2.3.4");
        assert_eq!(check(&read_only, perms::READ, &a), Ok(()));
        assert_eq!(check(&read_only, perms::WRITE, &a), Err(ErrorCode::NoAuth));
        assert_eq!(check(&open_acl_unsafe(), perms::ADMIN, &a), Ok(()));
        // world with another id is not "anyone".
        let odd = vec![acl(perms::ALL, "world", "someone")];
        assert_eq!(check(&odd, perms::READ, &a), Err(ErrorCode::NoAuth));
    }

    #[test]
    fn check_digest_is_exact_match() {
        // DigestAuthenticationProvider.matches: id.equals(aclExpr).
        let d = generate_digest("bob:pw");
        let node = vec![acl(perms::READ | perms::WRITE, "digest", &d)];
        let mut a = client("1.2.3.4");
        assert_eq!(check(&node, perms::READ, &a), Err(ErrorCode::NoAuth));
        a.add_auth("digest", b"bob:wrong", None).unwrap();
        assert_eq!(check(&node, perms::READ, &a), Err(ErrorCode::NoAuth));
        a.add_auth("digest", b"bob:pw", None).unwrap();
        assert_eq!(check(&node, perms::READ, &a), Ok(()));
        assert_eq!(check(&node, perms::DELETE, &a), Err(ErrorCode::NoAuth));
    }

    #[test]
    fn check_ip_exact_and_cidr() {
        // IPAuthenticationProvider.matches with mask().
        let a = client("10.1.2.3");
        let yes = |expr: &str| check(&[acl(perms::READ, "ip", expr)], perms::READ, &a).is_ok();
        assert!(yes("10.1.2.3"));
        assert!(yes("10.0.0.0/8"));
        assert!(yes("10.1.2.0/24"));
        assert!(yes("10.1.2.2/31"));
        assert!(yes("0.0.0.0/0"));
        assert!(!yes("10.1.2.4"));
        assert!(!yes("11.0.0.0/8"));
        assert!(!yes("10.1.2.0/33"));
        assert!(!yes("10.1.2.0/-1"));
        assert!(!yes("10.1.2.0/x"));
        // IPv4 never matches IPv6, even with /0.
        assert!(!yes("::/0"));
        let v6 = client("fe80::1");
        let yes6 = |expr: &str| check(&[acl(perms::READ, "ip", expr)], perms::READ, &v6).is_ok();
        assert!(yes6("fe80::1"));
        assert!(yes6("fe80:0:0:0:0:0:0:1"));
        assert!(yes6("fe80::/16"));
        assert!(yes6("fe80::/10"));
        assert!(!yes6("fe81::/16"));
        assert!(!yes6("0.0.0.0/0"));
    }

    #[test]
    fn check_ignores_stored_auth_and_unknown_schemes() {
        // No provider for "auth"/"sasl": such entries never match.
        let mut a = client("1.2.3.4");
        a.add_auth("digest", b"bob:pw", None).unwrap();
        let node = vec![
            acl(perms::ALL, "auth", ""),
            acl(perms::ALL, "sasl", "bob"),
            acl(perms::ALL, "super", ""),
        ];
        assert_eq!(check(&node, perms::READ, &a), Err(ErrorCode::NoAuth));
    }

    #[test]
    fn fixup_rejects_empty_acl() {
        assert_eq!(fixup(&[], &client("1.2.3.4")), Err(ErrorCode::InvalidAcl));
    }

    #[test]
    fn fixup_keeps_world_anyone_and_dedups_input() {
        // removeDuplicates (ZOOKEEPER-1877) keeps the first of equal entries.
        let input = vec![
            acl(perms::ALL, "world", "anyone"),
            acl(perms::READ, "ip", "10.0.0.0/8"),
            acl(perms::ALL, "world", "anyone"),
        ];
        let out = fixup(&input, &AuthInfo::default()).unwrap();
        assert_eq!(out, input[..2].to_vec());
    }

    #[test]
    fn fixup_expands_auth_to_digest_ids_only() {
        // fixupACL: "auth" → one entry per id whose provider isAuthenticated()
        // (digest yes, ip no, super has no provider).
        let mut a = client("1.2.3.4");
        assert_eq!(
            fixup(&creator_all_acl(), &a),
            Err(ErrorCode::InvalidAcl),
            "ip alone is not authenticated"
        );
        a.add_auth("digest", b"super:test", Some(SUPER)).unwrap();
        a.add_auth("digest", b"bob:pw", Some(SUPER)).unwrap();
        let out = fixup(&[acl(perms::READ, "auth", "ignored")], &a).unwrap();
        assert_eq!(
            out,
            vec![
                acl(perms::READ, "digest", SUPER),
                acl(perms::READ, "digest", &generate_digest("bob:pw")),
            ]
        );
    }

    #[test]
    fn fixup_keeps_duplicates_created_by_auth_expansion() {
        // removeDuplicates runs on the input, before the expansion.
        let mut a = client("1.2.3.4");
        a.add_auth("digest", b"bob:pw", None).unwrap();
        let d = generate_digest("bob:pw");
        let out = fixup(&[acl(perms::ALL, "digest", &d), acl(perms::ALL, "auth", "")], &a).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], out[1]);
    }

    #[test]
    fn fixup_validates_digest_ids_like_java_split() {
        // DigestAuthenticationProvider.isValid: id.split(":").length == 2.
        let a = AuthInfo::default();
        let ok = |i: &str| fixup(&[acl(perms::ALL, "digest", i)], &a).is_ok();
        assert!(ok("user:hash"));
        assert!(ok(":hash"));
        assert!(ok("user:hash:")); // trailing empty strings are dropped
        assert!(!ok("user:"));
        assert!(!ok("user"));
        assert!(!ok("a:b:c"));
        assert!(!ok("::"));
        assert!(!ok(""));
    }

    #[test]
    fn fixup_validates_ip_ids() {
        // IPAuthenticationProvider.isValid.
        let a = AuthInfo::default();
        let ok = |i: &str| fixup(&[acl(perms::ALL, "ip", i)], &a).is_ok();
        assert!(ok("10.0.0.1"));
        assert!(ok("10.0.0.0/8"));
        assert!(ok("10.0.0.0/0"));
        assert!(ok("10.0.0.0/32"));
        assert!(ok("010.0.0.1")); // parseInt allows leading zeros
        assert!(ok("::1"));
        assert!(ok("::"));
        assert!(ok("1:2:3:4:5:6:7:8"));
        assert!(ok("2001:db8::/32"));
        assert!(ok("::/128"));
        assert!(!ok("10.0.0.0/33"));
        assert!(!ok("::/129"));
        assert!(!ok("10.0.0"));
        assert!(!ok("10.0.0.256"));
        assert!(!ok("10.0.0.1.2"));
        assert!(!ok("localhost"));
        assert!(!ok(""));
        assert!(!ok("1:2:3:4:5:6:7"));
        assert!(!ok("1:2:3:4::5:6:7:8")); // "::" must stand for a group
        assert!(!ok("1::2::3"));
        assert!(!ok("12345::"));
        assert!(!ok("g::"));
        assert!(!ok(":::"));
        assert!(!ok("::ffff:10.0.0.1"));
    }

    #[test]
    fn fixup_rejects_other_schemes_and_world_ids() {
        let mut a = client("1.2.3.4");
        a.add_auth("digest", b"super:test", Some(SUPER)).unwrap();
        for (s, i) in [
            ("world", "everyone"),
            ("super", ""),
            ("sasl", "bob"),
            ("x509", "CN=x"),
            ("", ""),
        ] {
            assert_eq!(
                fixup(&[acl(perms::ALL, s, i)], &a),
                Err(ErrorCode::InvalidAcl),
                "{s}:{i}"
            );
        }
        // One bad entry spoils the whole list.
        let mixed = vec![acl(perms::ALL, "world", "anyone"), acl(perms::ALL, "ip", "nope")];
        assert_eq!(fixup(&mixed, &a), Err(ErrorCode::InvalidAcl));
    }

    #[test]
    fn whoami_client_infos() {
        // AuthUtil.getClientInfos: digest shows the user name only.
        let mut a = client("127.0.0.1");
        a.add_auth("digest", b"bob:pw", None).unwrap();
        let infos = a.client_infos();
        assert_eq!(infos.len(), 2);
        assert_eq!(
            (infos[0].auth_scheme.as_str(), infos[0].user.as_str()),
            ("ip", "127.0.0.1")
        );
        assert_eq!(
            (infos[1].auth_scheme.as_str(), infos[1].user.as_str()),
            ("digest", "bob")
        );
    }

    #[test]
    fn java_host_address_forms() {
        assert_eq!(java_host_address(Ipv4Addr::LOCALHOST.into()), "127.0.0.1");
        assert_eq!(java_host_address(Ipv6Addr::UNSPECIFIED.into()), "0:0:0:0:0:0:0:0");
    }
}
