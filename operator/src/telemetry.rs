//! Logging setup: `tracing` to stderr, filtered by `RUST_LOG` (default
//! `info`), as text or one JSON object per line.
//!
//! Must not: be called more than once per process (tests do not call it).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
