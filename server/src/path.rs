//! Znode path validation and parent/child helpers.
//!
//! Owns: the rules for what a znode path may look like (ZooKeeper's
//! `PathUtils.validatePath`) and cheap string helpers for walking a path
//! towards the root. Must not: look at the data tree, allocate when a slice
//! will do, or accept anything `PathUtils` rejects (a client must get
//! `BadArguments` from us exactly when it would from ZooKeeper).
//!
//! The helpers other than [`validate`] assume an already validated path.
//!
//! Note on ZooKeeper's check order for `create` (PrepRequestProcessor
//! `pRequest2TxnCreate`): the path is first only checked for containing a
//! `/` and no NUL (`validatePathForCreate`); then the ACL is fixed up, the
//! parent looked up (`NoNode`) and its CREATE permission checked (`NoAuth`);
//! only then, after the sequence suffix is appended, is the full
//! `validatePath` run (`BadArguments`). [`validate_create`] is the
//! equivalent of that last check done up front (appending `"1"` instead of
//! the ten-digit counter gives the same verdict).

use proto::ErrorCode;

/// ZooKeeper's `PathUtils.validatePath` rules; `Err(ErrorCode::BadArguments)`
/// when invalid.
///
/// A valid path is `/` or `/seg(/seg)*` where no segment is empty, `.` or
/// `..`, and no character is NUL, in `\u{1}`–`\u{1F}`, `\u{7F}`–`\u{9F}`,
/// `\u{D800}`–`\u{F8FF}` or `\u{FFF0}`–`\u{FFFF}`.
///
/// Java checks UTF-16 code units, so every character outside the Basic
/// Multilingual Plane (stored as a surrogate pair, `\u{D800}`–`\u{DFFF}`) is
/// rejected too; we reject any `char` above `\u{FFFF}` to match.
pub fn validate(path: &str) -> Result<(), ErrorCode> {
    let rest = match path.strip_prefix('/') {
        Some(rest) => rest,
        // Empty, or does not start with '/'.
        None => return Err(ErrorCode::BadArguments),
    };
    if rest.is_empty() {
        return Ok(()); // the root
    }
    // A trailing '/' shows up as an empty last segment, "//" as an empty
    // middle one: both are "empty node name" / "must not end with /".
    for segment in rest.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(ErrorCode::BadArguments);
        }
        if segment.chars().any(invalid_char) {
            return Err(ErrorCode::BadArguments);
        }
    }
    Ok(())
}

/// For sequential creates ZooKeeper validates `path + "1"`
/// (`PathUtils.validatePath(String, boolean)`), so a trailing `/` (and a
/// last segment of `.` or `..`) is allowed: the sequence number completes
/// the name.
pub fn validate_create(path: &str, sequential: bool) -> Result<(), ErrorCode> {
    if sequential {
        let mut with_suffix = String::with_capacity(path.len() + 1);
        with_suffix.push_str(path);
        with_suffix.push('1');
        validate(&with_suffix)
    } else {
        validate(path)
    }
}

/// The characters `PathUtils.validatePath` rejects (as Rust `char`s).
fn invalid_char(c: char) -> bool {
    matches!(
        c as u32,
        0x0000..=0x001F | 0x007F..=0x009F | 0xD800..=0xF8FF | 0xFFF0..=0xFFFF
    ) || c as u32 > 0xFFFF
}

/// The parent of a validated path: `"/a/b"` → `"/a"`, `"/a"` → `"/"`,
/// `"/"` → `""`.
/// ZooKeeper's `getParentPathAndValidate` / `validatePathForCreate`: the
/// text before the last '/', as the tree is looked up (`""` is the root, as
/// ZooKeeper registers the root under both `""` and `"/"`). `None` — a
/// BadArguments — if there is no '/' or there is a NUL.
pub fn parent_for_lookup(path: &str) -> Option<&str> {
    if path.contains('\0') {
        return None;
    }
    let i = path.rfind('/')?;
    Some(if i == 0 { "/" } else { &path[..i] })
}

/// `DataTree.isSpecialPath`: the root and ZooKeeper's own nodes, which
/// cannot be deleted.
pub fn is_special(path: &str) -> bool {
    matches!(
        path,
        "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config"
    )
}

pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) if path.len() > 1 => "/",
        Some(0) | None => "",
        Some(i) => &path[..i],
    }
}

/// The last segment of a validated path: `"/a/b"` → `"b"`, `"/"` → `""`.
pub fn basename(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// A child path: `"/"` + `"a"` → `"/a"`, `"/x"` + `"a"` → `"/x/a"`.
pub fn join(parent: &str, child: &str) -> String {
    let mut out = String::with_capacity(parent.len() + 1 + child.len());
    out.push_str(parent);
    if !parent.ends_with('/') {
        out.push('/');
    }
    out.push_str(child);
    out
}

/// Ancestors from the nearest parent up to `"/"`, e.g. `"/a/b/c"` →
/// `["/a/b", "/a", "/"]`; `"/"` has none. This is ZooKeeper's
/// `PathParentIterator` without its first element (the path itself).
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let first = parent(path);
    std::iter::successors((!first.is_empty()).then_some(first), |p| {
        let up = parent(p);
        (!up.is_empty()).then_some(up)
    })
}

/// Depth of a validated path: `"/"` → 0, `"/a"` → 1, `"/a/b"` → 2.
pub fn depth(path: &str) -> usize {
    if path == "/" {
        0
    } else {
        path.bytes().filter(|&b| b == b'/').count()
    }
}

/// Whether `path` is `ancestor` itself or lies below it (segment-wise:
/// `/ab` is not below `/a`).
pub fn is_descendant_or_self(path: &str, ancestor: &str) -> bool {
    if ancestor == "/" {
        return path.starts_with('/');
    }
    match path.strip_prefix(ancestor) {
        Some("") => true,
        Some(rest) => rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> bool {
        validate(p).is_ok()
    }

    #[test]
    fn root_and_simple_paths_are_valid() {
        // PathUtils.validatePath: "/" is the root and returns early.
        assert!(ok("/"));
        assert!(ok("/a"));
        assert!(ok("/a/b/c"));
        assert!(ok("/zookeeper/quota"));
        assert!(ok("/with space/and-dash_underscore.dot"));
    }

    #[test]
    fn empty_or_relative_paths_are_bad_arguments() {
        // "Path length must be > 0", "Path must start with / character".
        assert_eq!(validate(""), Err(ErrorCode::BadArguments));
        assert_eq!(validate("a"), Err(ErrorCode::BadArguments));
        assert_eq!(validate("a/b"), Err(ErrorCode::BadArguments));
    }

    #[test]
    fn trailing_slash_is_rejected_except_root() {
        // "Path must not end with / character".
        assert!(!ok("/a/"));
        assert!(!ok("/a/b/"));
        assert!(ok("/"));
    }

    #[test]
    fn empty_segment_is_rejected() {
        // "empty node name specified".
        assert!(!ok("//"));
        assert!(!ok("//a"));
        assert!(!ok("/a//b"));
    }

    #[test]
    fn dot_and_dotdot_segments_are_rejected_but_dotted_names_are_fine() {
        // "relative paths not allowed": only whole segments "." and "..".
        assert!(!ok("/."));
        assert!(!ok("/.."));
        assert!(!ok("/a/."));
        assert!(!ok("/a/./b"));
        assert!(!ok("/a/.."));
        assert!(!ok("/a/../b"));
        assert!(ok("/..."));
        assert!(ok("/.a"));
        assert!(ok("/a."));
        assert!(ok("/..a"));
        assert!(ok("/a../b"));
        assert!(ok("/a/.b/c.."));
    }

    #[test]
    fn null_and_control_characters_are_rejected() {
        // "null character not allowed", "invalid character" (\u0001-\u001F).
        assert!(!ok("/a\0b"));
        assert!(!ok("/\0"));
        assert!(!ok("/a\u{1}"));
        assert!(!ok("/a\tb"));
        assert!(!ok("/a\nb"));
        assert!(!ok("/\u{1F}"));
        assert!(ok("/\u{20}"));
    }

    #[test]
    fn del_and_c1_controls_are_rejected() {
        // \u007F-\u009F.
        assert!(!ok("/\u{7F}"));
        assert!(!ok("/\u{80}"));
        assert!(!ok("/\u{9F}"));
        assert!(ok("/\u{7E}"));
        assert!(ok("/\u{A0}"));
    }

    #[test]
    fn private_use_and_specials_are_rejected() {
        // \ud800-\uf8ff (surrogates + private use area) and \ufff0-\uffff.
        assert!(!ok("/\u{E000}"));
        assert!(!ok("/\u{F8FF}"));
        assert!(ok("/\u{F900}"));
        assert!(ok("/\u{D7FF}"));
        assert!(!ok("/\u{FFF0}"));
        assert!(!ok("/\u{FFFD}")); // the replacement character
        assert!(!ok("/\u{FFFF}"));
        assert!(ok("/\u{FFEF}"));
    }

    #[test]
    fn non_bmp_characters_are_rejected_like_java_surrogates() {
        // Java iterates UTF-16 code units: an emoji is a surrogate pair,
        // both halves in \ud800-\uf8ff.
        assert!(!ok("/\u{1F600}"));
        assert!(!ok("/\u{10000}"));
    }

    #[test]
    fn ordinary_unicode_is_valid() {
        assert!(ok("/日本語/ü/é"));
    }

    #[test]
    fn sequential_create_validates_path_plus_one() {
        // PathUtils.validatePath(path, isSequential) validates path + "1".
        assert!(validate_create("/a/", true).is_ok());
        assert!(validate_create("/", true).is_ok());
        assert!(validate_create("/a/.", true).is_ok()); // "/a/.1"
        assert!(validate_create("/a/", false).is_err());
        assert!(validate_create("/a//", true).is_err()); // "/a//1"
        assert!(validate_create("", true).is_err()); // "1"
        assert!(validate_create("/a/b", false).is_ok());
        assert!(validate_create("/a\0", true).is_err());
    }

    #[test]
    fn parent_and_basename() {
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/"), "");
        assert_eq!(parent("/a/b/c"), "/a/b");
        assert_eq!(basename("/a/b"), "b");
        assert_eq!(basename("/a"), "a");
        assert_eq!(basename("/"), "");
    }

    #[test]
    fn join_paths() {
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/x", "a"), "/x/a");
        assert_eq!(join("/x/y", "a"), "/x/y/a");
    }

    #[test]
    fn ancestors_walk_up_to_root() {
        // PathParentIterator.forAll minus the path itself.
        let v: Vec<&str> = ancestors("/a/b/c").collect();
        assert_eq!(v, vec!["/a/b", "/a", "/"]);
        assert_eq!(ancestors("/a").collect::<Vec<_>>(), vec!["/"]);
        assert_eq!(ancestors("/").count(), 0);
    }

    #[test]
    fn depth_and_descendants() {
        assert_eq!(depth("/"), 0);
        assert_eq!(depth("/a"), 1);
        assert_eq!(depth("/a/b"), 2);
        assert!(is_descendant_or_self("/a/b", "/a"));
        assert!(is_descendant_or_self("/a", "/a"));
        assert!(is_descendant_or_self("/a", "/"));
        assert!(!is_descendant_or_self("/ab", "/a"));
        assert!(!is_descendant_or_self("/a", "/a/b"));
    }
}
