//! ops (in progress).
