//! The `layerpipe` command: reads the config, listens, serves.

use std::net::SocketAddr;
use std::path::PathBuf;

use layerpipe::config::{Config, LogFormat};

const USAGE: &str = "usage: layerpipe [--config FILE] [--listen ADDR]

  --config FILE   JSON config (see config/layerpipe.json); without it, defaults:
                  listen on 127.0.0.1:8042, Docker Hub as the default registry
  --listen ADDR   address to listen on, overriding the config's \"listen\"

Logs go to stderr; RUST_LOG sets the level (default info).";

fn main() {
    layerpipe::allocator::keep_freed_buffers();
    let (config_path, listen) = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("layerpipe: {message}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let mut config = match &config_path {
        Some(path) => Config::load(path).unwrap_or_else(|e| {
            eprintln!("layerpipe: {e}");
            std::process::exit(2);
        }),
        None => Config::default(),
    };
    if let Some(listen) = listen {
        config.listen = listen;
    }
    init_logs(config.log_format);
    if let Err(e) = layerpipe::runtime::serve(config, shutdown_signal) {
        eprintln!("layerpipe: {e}");
        std::process::exit(1);
    }
    tracing::info!("layerpipe stopped");
}

/// Logs to stderr, as text or one JSON object per line; `RUST_LOG` sets the level.
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a person at a terminal, never into a log file or a pipe.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(Option<PathBuf>, Option<SocketAddr>), String> {
    let (mut config, mut listen) = (None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config = Some(PathBuf::from(args.next().ok_or("--config needs a file")?)),
            "--listen" => {
                let value = args.next().ok_or("--listen needs an address")?;
                listen = Some(
                    value.parse().map_err(|_| format!("--listen: {value:?} is not an address like 127.0.0.1:8042"))?,
                );
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--version" => {
                println!("layerpipe {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok((config, listen))
}
