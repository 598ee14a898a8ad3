//! consensus (in progress).
