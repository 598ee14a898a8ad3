//! status (in progress).
