//! storage (in progress).
