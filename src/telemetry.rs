//! Logging: tracing with an `EnvFilter` (`RUST_LOG` wins over `logging.level`), text or JSON.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LoggingSection};

/// Installs the global subscriber. Call once, after the configuration is valid.
pub fn init(logging: &LoggingSection) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&logging.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match logging.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Already installed (tests, embedding): keep the existing one.
    let _ = result;
}
