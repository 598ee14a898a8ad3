//! acl (in progress).
