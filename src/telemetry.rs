//! Logging: tracing with an `EnvFilter` (`RUST_LOG` wins over `logging.level`), text or JSON;
//! and the `[logging]` section that configures it.

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

/// `[logging]`. Nothing to compile: a filter that does not parse falls back to `info` when
/// logging starts, so the section is used as written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingSection {
    /// `text` or `json`.
    pub format: LogFormat,
    /// tracing filter directive.
    pub level: String,
}

impl Default for LoggingSection {
    fn default() -> Self {
        LoggingSection {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

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
