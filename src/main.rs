//! The `ferrocable` binary: flags → configuration → logging → bind → serve → exit code.

use std::process::ExitCode;

use clap::Parser;
use ferrocable::cli::{Cli, Commands, ConfigCommand, InitArgs};
use ferrocable::config::{self, Settings};
use ferrocable::server::Stop;
use ferrocable::{auth, init, limits, listener, server, telemetry};

/// sysexits.h: configuration error.
const EX_CONFIG: u8 = 64;
/// sysexits.h: cannot bind or set up a service.
const EX_UNAVAILABLE: u8 = 69;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `init` reads a Rails app, not ferrocable's configuration.
    if let Some(Commands::Init(args)) = &cli.command {
        return init(args);
    }
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
            for warning in &settings.warnings {
                eprintln!("ferrocable: warning: {warning}");
            }
            println!("configuration ok: {}", settings.summary());
            ExitCode::SUCCESS
        }
        Some(Commands::Config(ConfigCommand::Print)) => {
            print!("{}", raw.to_masked_toml());
            ExitCode::SUCCESS
        }
        Some(Commands::Token(args)) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            match auth::jwt::mint(&raw.auth, &args.claims, args.expires_in, now) {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("ferrocable: {e}");
                    ExitCode::from(EX_CONFIG)
                }
            }
        }
        Some(Commands::Serve) | None => serve(settings),
        Some(Commands::Init(_)) => unreachable!("handled before the configuration is loaded"),
    }
}

/// sysexits.h: cannot create an output file.
const EX_CANTCREAT: u8 = 73;
/// sysexits.h: an input file does not exist.
const EX_NOINPUT: u8 = 66;

fn init(args: &InitArgs) -> ExitCode {
    for path in [&args.out, &args.report] {
        if path.exists() && !args.force {
            eprintln!(
                "ferrocable init: {} exists; pass --force to overwrite it",
                path.display()
            );
            return ExitCode::from(EX_CANTCREAT);
        }
    }
    let opts = init::Options {
        rails_root: args.rails_root.clone(),
        environment: args.environment.clone(),
        channel_dirs: args.channels.clone(),
    };
    let report_name = args.report.display().to_string();
    let profile_name = args.out.display().to_string();
    let outcome = match init::run(&opts, &profile_name, &report_name) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ferrocable init: {e}");
            return ExitCode::from(EX_NOINPUT);
        }
    };
    for (path, text) in [
        (&args.out, &outcome.profile),
        (&args.report, &outcome.report),
    ] {
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("ferrocable init: cannot write {}: {e}", path.display());
            return ExitCode::from(EX_CANTCREAT);
        }
    }
    let (ok, assumed, not) = outcome.counts;
    println!(
        "wrote {} and {}: {ok} mapped, {assumed} mapped with assumptions, {not} not expressible",
        args.out.display(),
        args.report.display()
    );
    ExitCode::SUCCESS
}

fn serve(settings: Settings) -> ExitCode {
    telemetry::init(&settings.logging);
    // rustls (Redis over TLS) with ring, the one provider compiled in, chosen for a light build
    // (aws-lc-rs needs cmake and a C toolchain); explicit, so no other crate's choice can
    // change it. rustls deprecates ring's provider for lacking post-quantum key exchange,
    // which no Redis deployment needs of a cable server today.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    match limits::raise_open_files_limit() {
        Ok(files) => {
            tracing::info!(
                soft_before = files.before,
                soft = files.now,
                hard = files.hard,
                "open files limit"
            );
            // Each connection holds a descriptor; listeners, Redis and logs need a few more.
            let wanted = settings.limits.max_connections as u64 + 64;
            if files.now < wanted {
                tracing::warn!(
                    limit = files.now,
                    max_connections = settings.limits.max_connections,
                    "the open files limit is below limits.max_connections: accepts will fail with EMFILE first (raise the hard limit: systemd LimitNOFILE=, ulimit -Hn)"
                );
            }
        }
        Err(e) => tracing::warn!(cause = %e, "cannot read or raise the open files limit"),
    }
    // Found while validating, before there was anywhere to log them.
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    // Multi-threaded even when pinned to one CPU: a current-thread runtime interleaves the
    // Redis reader and the connections' tasks task by task, so queued frames never pile up
    // into one vectored write (R2 on 100 streams fell from 1.28 M to 80 k deliveries/s), and
    // with one thread glibc serves every allocation from one arena, so what the accept loop
    // makes on this (main) thread is no longer packed apart from the connections' buffers,
    // made on the worker (R1: ~0.8 µs more per delivery; docs/BENCHMARKS.md, "Issue 8").
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
        let listen = settings.server.listen;
        let listener = match listener::bind(listen) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(address = %listen, cause = %e, "cannot listen");
                return ExitCode::from(EX_UNAVAILABLE);
            }
        };
        let address = listener.local_addr().unwrap_or(listen);
        if settings.auth.verifier.is_none() && settings.auth.cookie.is_none() {
            if settings.channels.streams_only_signed_names() {
                // Turbo-only apps: each stream is authorized by the app's signature.
                tracing::info!(
                    "auth.mode = \"none\": connections carry no identity; every channel streams \
                     only names the app signed"
                );
            } else {
                tracing::warn!(
                    "auth.mode = \"none\": EVERY CONNECTION IS ACCEPTED WITHOUT A TOKEN. \
                     This is for development only; set auth.mode = \"jwt\" or \"cookie\" and SECRET_KEY_BASE in production."
                );
            }
        }
        tracing::info!(
            %address,
            mount = %settings.server.mount_path,
            broker = %settings.broker.describe(),
            channels = settings.channels.len(),
            auth = %settings.auth.describe(),
            version = env!("CARGO_PKG_VERSION"),
            "ferrocable listening"
        );
        if settings.console.enabled {
            // An unspecified address (0.0.0.0) is reached on loopback from this machine.
            let host = match address.ip() {
                ip if ip.is_unspecified() => "127.0.0.1".to_string(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            let url = format!("http://{host}:{}/console", address.port());
            tracing::info!(%url, "live console: open {url} in a browser");
        }
        server::run(listener, settings, stop_signals()).await;
        ExitCode::SUCCESS
    })
}

/// Forwards SIGTERM (drain first) and SIGINT (at once) to the server, for as long as it runs.
fn stop_signals() -> tokio::sync::mpsc::Receiver<Stop> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(cause = %e, "cannot listen for SIGTERM; only Ctrl-C will stop the server");
                None
            }
        };
        loop {
            let stop = tokio::select! {
                _ = tokio::signal::ctrl_c() => {
                    tracing::info!("SIGINT received");
                    Stop::Now
                }
                Some(()) = async {
                    match term.as_mut() {
                        Some(t) => t.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    tracing::info!("SIGTERM received");
                    Stop::Drain
                }
            };
            if tx.send(stop).await.is_err() {
                return;
            }
        }
    });
    rx
}
