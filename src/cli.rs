//! The command line: `ferrocable [serve]`, `ferrocable config check`, `ferrocable config print`,
//! `ferrocable token`, `ferrocable init`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::CliOverrides;
use crate::telemetry::LogFormat;

/// A fast, lean server for the Rails Action Cable protocol.
#[derive(Debug, Parser)]
#[command(name = "ferrocable", version, about)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Commands>,
    /// Settings shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Flags accepted by every command.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML configuration file (see config/example.toml).
    #[arg(long, short = 'c', global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Address to listen on (server.host).
    #[arg(long, global = true)]
    pub host: Option<String>,
    /// Port to listen on (server.port; also PORT).
    #[arg(long, short = 'p', global = true)]
    pub port: Option<u16>,
    /// Redis URL for Rails' Redis adapter (redis.url; also REDIS_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub redis_url: Option<String>,
    /// Log format (logging.format).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
    /// Log filter, e.g. "debug" or "ferrocable=debug,info" (logging.level; RUST_LOG wins).
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
}

/// `--log-format` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Run the server (the default).
    Serve,
    /// Inspect configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a development token signed with the configured HS* secret.
    Token(TokenArgs),
    /// Read a Rails app (without running it) and write a ferrocable profile plus a report.
    Init(InitArgs),
}

/// `init` arguments.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The Rails app's root directory (where config/cable.yml is).
    #[arg(long, value_name = "DIR")]
    pub rails_root: PathBuf,
    /// Where to write the profile.
    #[arg(long, value_name = "PROFILE.toml", default_value = "ferrocable.toml")]
    pub out: PathBuf,
    /// Where to write the report.
    #[arg(
        long,
        value_name = "REPORT.md",
        default_value = "ferrocable-init-report.md"
    )]
    pub report: PathBuf,
    /// The Rails environment to read (its cable.yml section and `config/environments/<env>.rb`).
    #[arg(long, default_value = "production")]
    pub environment: String,
    /// The channels directory, relative to the Rails root; repeat it for an app that keeps
    /// channels in several places.
    #[arg(long, value_name = "DIR", default_value = "app/channels")]
    pub channels: Vec<String>,
    /// Overwrite the profile and the report if they exist.
    #[arg(long)]
    pub force: bool,
}

/// `token` arguments.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// A claim as NAME=VALUE; VALUE is read as JSON when it parses (42, true, "x"), else as
    /// a string. Repeat for several claims.
    #[arg(long = "claim", value_name = "NAME=VALUE")]
    pub claims: Vec<String>,
    /// Seconds until the token expires (sets `exp`); 0 for no `exp`.
    #[arg(long, default_value_t = 3600)]
    pub expires_in: u64,
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration (file, environment and flags); exit 64 if invalid.
    Check,
    /// Print the effective configuration as TOML, secrets masked.
    Print,
}

impl GlobalArgs {
    /// The flags as configuration overrides.
    pub fn overrides(&self) -> CliOverrides {
        CliOverrides {
            host: self.host.clone(),
            port: self.port,
            redis_url: self.redis_url.clone(),
            log_format: self.log_format.map(|f| match f {
                LogFormatArg::Text => LogFormat::Text,
                LogFormatArg::Json => LogFormat::Json,
            }),
            log_level: self.log_level.clone(),
        }
    }
}
