//! `neocloud`: runs the control plane (`serve`) and talks to its API.
//!
//! Exit codes (stable, for scripts):
//! 0 success; 1 other error; 2 usage error (bad flags or arguments);
//! 3 unauthenticated (401); 4 forbidden (403); 5 not found (404);
//! 6 conflict (409: exists, stale generation, quota exceeded);
//! 7 invalid request (400, 413, 422); 8 rate limited (429);
//! 9 server or connection unavailable (5xx, no answer);
//! 10 a verification failed: `audit verify` found edited, deleted or
//! truncated audit events, or `instance sanitization --verify` (`node
//! sanitizations --verify`) found a record whose signature does not verify.
//!
//! `instance create --wait` and `instance release --wait` exit 1 when an
//! instance ends `failed` (or its release stalls) or the wait times out;
//! `attachment create --wait` exits 1 when the wait times out.

mod bench;
mod bench_api;
mod bench_baremetal;
mod bench_fabric;
mod bench_fleet;
mod bench_network;
mod bench_placement;
mod client;
mod commands;
mod output;

use clap::{Parser, Subcommand};
use neocloud_server::{Config, LogFormat, Server};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "neocloud", version, about = "neocloud GPU cloud control plane")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the control plane's API server.
    Serve(ServeArgs),
    /// Print the OpenAPI document of this build.
    Openapi,
    /// Benchmark API reads and writes against an in-process server on SQLite.
    Bench(bench::BenchArgs),
    #[command(flatten)]
    Client(commands::ClientCommand),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML config file; flags override it.
    #[arg(long, env = "NEOCLOUD_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<String>,
    /// Store: sqlite://PATH or postgres://... (default sqlite://<data-dir>/neocloud.db).
    #[arg(long, env = "NEOCLOUD_DB")]
    db: Option<String>,
    /// Directory for the embedded store and admin.token (default ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long)]
    log_format: Option<String>,
    /// Seed an empty store with a small simulated datacenter (16 simulated
    /// H100 nodes and a catalogue of instance types).
    #[arg(long)]
    demo: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(output::EXIT_USAGE),
            };
        }
    };
    match cli.command {
        Command::Serve(a) => serve(a),
        Command::Openapi => {
            print!("{}", neocloud_server::openapi::render(&neocloud_server::api::ops()));
            ExitCode::SUCCESS
        }
        Command::Bench(a) => bench::run(a),
        Command::Client(c) => commands::run(c),
    }
}

fn serve(a: ServeArgs) -> ExitCode {
    let mut config = match &a.config {
        Some(p) => match Config::from_file(p) {
            Ok(c) => c,
            Err(e) => return output::fail_local(&e),
        },
        None => Config::default(),
    };
    if let Some(v) = a.listen {
        config.listen = v;
    }
    if let Some(v) = a.db {
        config.db = Some(v);
    }
    if let Some(v) = a.data_dir {
        config.data_dir = v;
    }
    if a.demo {
        config.demo = true;
    }
    if let Some(v) = a.log_format {
        config.log_format = match v.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => {
                eprintln!("error: --log-format must be text or json");
                return ExitCode::from(output::EXIT_USAGE);
            }
        };
    }
    neocloud_server::init_logging(config.log_format);
    // Every lifecycle step in flight holds a blocking thread while it waits
    // on its BMC: room for all of them next to the API's store calls.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(config.lifecycle_parallel_steps.max(1) + 512)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = rt.block_on(async move {
        let server = match Server::bind(config).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                return output::fail_local(&e);
            }
        };
        if let Some(p) = &server.bootstrap_token {
            tracing::info!(path = %p.display(), "bootstrap: provider-admin token written (mode 0600)");
        }
        tracing::info!(addr = %server.local_addr(), "listening");
        let cancel = server.cancel_token();
        tokio::spawn(async move {
            shutdown_signal().await;
            cancel.cancel();
        });
        match server.run().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "server failed");
                ExitCode::from(1)
            }
        }
    });
    // Work still blocked on a slow BMC gets a bounded grace period.
    rt.shutdown_timeout(std::time::Duration::from_secs(10));
    code
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
