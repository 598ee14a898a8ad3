//! Validation of the names applications give to groups, members, locks,
//! semaphores, elections, barriers and keys. Each name becomes one znode
//! under the sidecar's root, so it must be a single path segment: checked
//! here, before anything is sent to the ensemble, so a bad name changes
//! nothing.

use crate::error::{ApiError, Code};

/// Longest accepted name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Checks that `name` (of the given `kind`, e.g. "group") is 1–128 bytes of
/// ASCII letters, digits, `-`, `_` and `.`, and not `.` or `..`.
pub fn check(kind: &str, name: &str) -> Result<(), ApiError> {
    let bad = |why: &str| {
        Err(ApiError::new(
            Code::InvalidName,
            format!(
                "{kind} name {name:?} {why}; use 1-{MAX_NAME_LEN} characters from \
                 A-Z a-z 0-9 - _ . (not \".\" or \"..\")"
            ),
        ))
    };
    if name.is_empty() {
        return bad("is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("is too long");
    }
    if name == "." || name == ".." {
        return bad("is reserved");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return bad(&format!("contains the illegal character {c:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        for n in ["a", "orders", "db-primary", "v1.2_x", &"x".repeat(MAX_NAME_LEN)] {
            check("lock", n).unwrap();
        }
    }

    #[test]
    fn refuses_what_cannot_be_one_znode_segment() {
        for n in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "zk\u{0}",
            "ü",
            "a:b",
            &"x".repeat(MAX_NAME_LEN + 1),
        ] {
            let e = check("group", n).unwrap_err();
            assert_eq!(e.code, Code::InvalidName, "{n:?}");
            assert!(e.message.contains("group name"), "{}", e.message);
        }
    }
}
