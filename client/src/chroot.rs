//! Chroot: the client's view of the tree is rooted at a server path.
//! Outgoing paths get the prefix; paths in replies and watch events lose it.

/// Checks a ZooKeeper path the way the server does (`PathUtils`): absolute,
/// no empty, `.` or `..` segments, no trailing slash except for `/`.
pub(crate) fn validate_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("a path must start with '/'".into());
    }
    if path == "/" {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err("a path must not end with '/'".into());
    }
    for seg in path[1..].split('/') {
        if seg.is_empty() {
            return Err("empty path segment".into());
        }
        if seg == "." || seg == ".." {
            return Err("relative path segment".into());
        }
        if seg.contains('\0') {
            return Err("NUL character".into());
        }
    }
    Ok(())
}

/// A chroot prefix (`None`: the server's root).
#[derive(Debug, Clone, Default)]
pub(crate) struct Chroot(Option<String>);

impl Chroot {
    pub(crate) fn new(prefix: Option<String>) -> Chroot {
        Chroot(prefix.filter(|p| p != "/"))
    }

    /// The server path for a client path.
    pub(crate) fn to_server(&self, path: &str) -> String {
        match &self.0 {
            None => path.to_string(),
            Some(p) if path == "/" => p.clone(),
            Some(p) => format!("{p}{path}"),
        }
    }

    /// The client path for a server path; paths outside the chroot (which
    /// the server should never send) are returned unchanged.
    pub(crate) fn to_client(&self, path: &str) -> String {
        match &self.0 {
            None => path.to_string(),
            Some(p) => match path.strip_prefix(p.as_str()) {
                Some("") => "/".to_string(),
                Some(rest) if rest.starts_with('/') => rest.to_string(),
                _ => path.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_strip() {
        let c = Chroot::new(Some("/app".into()));
        assert_eq!(c.to_server("/"), "/app");
        assert_eq!(c.to_server("/a/b"), "/app/a/b");
        assert_eq!(c.to_client("/app"), "/");
        assert_eq!(c.to_client("/app/a"), "/a");
        assert_eq!(c.to_client("/apple"), "/apple");
        let none = Chroot::new(None);
        assert_eq!(none.to_server("/a"), "/a");
        assert_eq!(none.to_client("/a"), "/a");
    }

    #[test]
    fn paths_are_validated() {
        assert!(validate_path("/").is_ok());
        assert!(validate_path("/a/b").is_ok());
        for bad in ["", "a", "/a/", "//", "/a//b", "/a/./b", "/.."] {
            assert!(validate_path(bad).is_err(), "{bad}");
        }
    }
}
