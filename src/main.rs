//! The `ferrocable` binary: flags → configuration → logging → bind → serve → exit code.

use std::process::ExitCode;

use clap::Parser;
use ferrocable::cli::{Cli, Commands, ConfigCommand, TokenArgs};
use ferrocable::config::{self, AuthMode, RawConfig, Settings};
use ferrocable::{server, telemetry};

/// sysexits.h: configuration error.
const EX_CONFIG: u8 = 64;
/// sysexits.h: cannot bind or set up a service.
const EX_UNAVAILABLE: u8 = 69;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let loaded = config::load(cli.global.config.as_deref(), &cli.global.overrides())
        .and_then(|raw| Settings::from_raw(&raw).map(|settings| (raw, settings)));
    let (raw, settings) = match loaded {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("ferrocable: invalid configuration: {e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    match cli.command {
        Some(Commands::Config(ConfigCommand::Check)) => {
            println!(
                "configuration ok: listen {}, mount {}, broker {}, auth {}, {} channel(s)",
                settings.listen,
                settings.mount_path,
                match &settings.broker {
                    config::BrokerSettings::Memory => "in-process".to_string(),
                    config::BrokerSettings::Redis { channel_prefix, .. } =>
                        format!("redis (prefix {channel_prefix:?})"),
                },
                match raw.auth.mode {
                    AuthMode::Jwt => format!("jwt {}", raw.auth.algorithm),
                    AuthMode::None => "none".to_string(),
                },
                settings.channels.len()
            );
            ExitCode::SUCCESS
        }
        Some(Commands::Config(ConfigCommand::Print)) => {
            print!("{}", raw.to_masked_toml());
            ExitCode::SUCCESS
        }
        Some(Commands::Token(args)) => token(&raw, &args),
        Some(Commands::Serve) | None => serve(raw, settings),
    }
}

/// Mints a token the configured verifier accepts, for trying things out by hand.
fn token(raw: &RawConfig, args: &TokenArgs) -> ExitCode {
    let algorithm = match raw.auth.algorithm.as_str() {
        "HS256" => jsonwebtoken::Algorithm::HS256,
        "HS384" => jsonwebtoken::Algorithm::HS384,
        "HS512" => jsonwebtoken::Algorithm::HS512,
        other => {
            eprintln!("ferrocable: token needs an HS* algorithm with a secret, not {other}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    if raw.auth.secret.is_empty() {
        eprintln!("ferrocable: no secret configured: set SECRET_KEY_BASE (or auth.secret)");
        return ExitCode::from(EX_CONFIG);
    }
    let mut claims = serde_json::Map::new();
    for claim in &args.claims {
        let Some((name, value)) = claim.split_once('=') else {
            eprintln!("ferrocable: --claim {claim:?} is not NAME=VALUE");
            return ExitCode::from(EX_CONFIG);
        };
        let value = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
        claims.insert(name.to_string(), value);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    claims.insert("iat".into(), now.into());
    if args.expires_in > 0 {
        claims.insert("exp".into(), (now + args.expires_in).into());
    }
    match jsonwebtoken::encode(
        &jsonwebtoken::Header::new(algorithm),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(raw.auth.secret.as_bytes()),
    ) {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferrocable: cannot sign: {e}");
            ExitCode::from(EX_CONFIG)
        }
    }
}

/// The listen backlog asked of the kernel (it caps it at `net.core.somaxconn`). tokio's
/// `TcpListener::bind` asks for 1,024, which a connect storm of 1,000 clients overflows: the
/// overflowed SYNs wait a full second for their retransmit.
const LISTEN_BACKLOG: u32 = 4096;

fn bind_listener(address: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // Same as std and tokio's bind: a restarted server can reuse its port while old
    // connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

fn serve(raw: RawConfig, settings: Settings) -> ExitCode {
    telemetry::init(&settings.logging);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferrocable: cannot start the runtime: {e}");
            return ExitCode::from(EX_UNAVAILABLE);
        }
    };
    runtime.block_on(async move {
        let listener = match bind_listener(settings.listen) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(address = %settings.listen, cause = %e, "cannot listen");
                return ExitCode::from(EX_UNAVAILABLE);
            }
        };
        let address = listener.local_addr().unwrap_or(settings.listen);
        if raw.auth.mode == AuthMode::None {
            tracing::warn!(
                "auth.mode = \"none\": EVERY CONNECTION IS ACCEPTED WITHOUT A TOKEN. \
                 This is for development only; set auth.mode = \"jwt\" and SECRET_KEY_BASE in production."
            );
        }
        tracing::info!(
            %address,
            mount = %settings.mount_path,
            broker = match &settings.broker {
                config::BrokerSettings::Memory => "in-process",
                config::BrokerSettings::Redis { .. } => "redis",
            },
            channels = settings.channels.len(),
            version = env!("CARGO_PKG_VERSION"),
            "ferrocable listening"
        );
        match server::run(listener, settings, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(cause = %e, "server failed");
                ExitCode::from(EX_UNAVAILABLE)
            }
        }
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(cause = %e, "cannot listen for SIGTERM; only Ctrl-C will stop the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}
