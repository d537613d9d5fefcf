//! `neocloud serve`: the control plane's HTTP API.
//!
//! Layers, outside in: [`server`] (transport: routes, request ids, body
//! limits, logs, metrics, shutdown) -> [`dispatch`] (authentication, rate
//! limits, resolution, authorization, audit, idempotency) -> [`api`] (the
//! route table and one handler per operation) -> `neocloud-store`.
//! Errors become HTTP responses in one place, [`http_error`].

pub mod api;
pub mod auth;
pub mod boot;
pub mod bootstrap;
pub mod config;
pub mod controllers;
pub mod demo;
pub mod dispatch;
pub mod ek_certificate;
pub mod http_error;
pub mod metrics;
pub mod network;
pub mod openapi;
pub mod placement;
pub mod ratelimit;
pub mod secrets;
pub mod server;
pub mod signing;
pub mod simbmc;
pub mod tpm_identity;

pub use config::{Config, LogFormat};
pub use server::Server;

/// Installs the global log subscriber (once; later calls are ignored).
pub fn init_logging(format: LogFormat) {
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
