//! The error every configuration section reports: which key, and what is wrong with it.
//!
//! Each section's module (`auth`, `channels`, `origin`, `limits`, ...) checks its own keys and
//! returns this; `config` only layers the sources and aggregates the sections, and `main` maps
//! it to exit status 64.

/// A configuration problem, named by its key (`server.port`, `channels.Chat.streams[0]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct ConfigError {
    /// Dotted path of the offending key.
    pub key: String,
    /// What is wrong with it, in words.
    pub problem: String,
}

impl ConfigError {
    /// The problem with `key`.
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            problem: problem.into(),
        }
    }
}
