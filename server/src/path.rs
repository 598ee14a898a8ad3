//! path (in progress).
