//! The HTTP transport: axum routes built from the route table, request ids,
//! body limits, logs and metrics; background tasks; graceful shutdown.
//! `routes` turns the route table into axum routes and runs each call;
//! `background` holds the controllers' loops and the periodic tasks.

mod background;
mod routes;

use crate::api;
use crate::auth::TokenUsage;
use crate::config::Config;
use crate::dispatch::App;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::{bootstrap, openapi};
use neocloud_common::{Error, Result};
use neocloud_store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub const REQUEST_ID: &str = "x-request-id";

struct Shared {
    app: App,
    openapi: String,
    max_body: usize,
    draining: AtomicBool,
}

/// A bound, not yet running server.
pub struct Server {
    shared: Arc<Shared>,
    listener: tokio::net::TcpListener,
    /// `boot_listen`: the boot service's own listener.
    boot_listener: Option<tokio::net::TcpListener>,
    cancel: CancellationToken,
    config: Config,
    /// Where the bootstrap token was written, on first start.
    pub bootstrap_token: Option<PathBuf>,
    /// `--demo`: the SIMULATED BMC fleet and its listener, served while running.
    sim_bmcs: Option<(tokio::net::TcpListener, Arc<crate::simbmc::SimFleet>)>,
}

impl Server {
    /// Opens the store (applying migrations), bootstraps an empty one and
    /// binds the listener.
    pub async fn bind(config: Config) -> Result<Server> {
        config.validate()?;
        let url = config.db_url();
        if url.starts_with("sqlite://") {
            std::fs::create_dir_all(&config.data_dir).map_err(|e| {
                Error::invalid_request(
                    "data_dir",
                    format!("cannot create {}: {e}", config.data_dir.display()),
                )
            })?;
        }
        let data_dir = config.data_dir.clone();
        let demo = config.demo;
        let secrets = match &config.secrets_key_file {
            Some(p) => crate::secrets::SecretBox::load_or_create_at(p)?,
            None => crate::secrets::SecretBox::load_or_create(&config.data_dir)?,
        };
        let signer = Arc::new(match &config.signing_key_file {
            Some(p) => crate::signing::Signer::load_or_create_at(p)?,
            None => crate::signing::Signer::load_or_create(&config.data_dir)?,
        });
        // `--demo`: one listener serves the SIMULATED BMC fleet.
        let sim_listener = if demo {
            Some(
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(|e| Error::internal(format!("simulated BMC listener: {e}")))?,
            )
        } else {
            None
        };
        let sim_base = sim_listener
            .as_ref()
            .map(|l| l.local_addr().map(|a| format!("http://{a}")))
            .transpose()
            .map_err(|e| Error::internal(e.to_string()))?;
        let sim_sealed = match &sim_base {
            Some(_) => Some(secrets.seal(crate::simbmc::PASSWORD)?),
            None => None,
        };
        let (store, token, engine) = tokio::task::spawn_blocking(move || {
            let store = Store::open(&url)?;
            let token = bootstrap::bootstrap(&store, &data_dir)?;
            // Before anything plans: an older release's whole ledgers.
            store.write(crate::network::ledger::move_whole_ledgers)?;
            if let (Some(base), Some(sealed)) = (&sim_base, &sim_sealed) {
                let n = crate::demo::seed_with_bmcs(&store, Some((base, sealed)))?;
                if n > 0 {
                    tracing::info!(nodes = n, "demo: seeded a SIMULATED datacenter");
                } else {
                    crate::demo::rebind_sim_bmcs(&store, base)?;
                }
            }
            let engine = store.read(crate::placement::load)?;
            Ok::<_, Error>((store, token, engine))
        })
        .await
        .map_err(|e| Error::internal(format!("startup task: {e}")))??;
        let listener = tokio::net::TcpListener::bind(&config.listen).await.map_err(|e| {
            Error::invalid_request("listen", format!("cannot listen on {}: {e}", config.listen))
        })?;
        let boot_listener = match &config.boot_listen {
            Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                Error::invalid_request("boot_listen", format!("cannot listen on {addr}: {e}"))
            })?),
            None => {
                if !demo {
                    tracing::warn!("the boot service shares the API's listener (no boot_listen): whatever reaches the API, a tenant's node for its agent included, can read any node's boot script and one-time token by its MAC; set boot_listen to an address on the provisioning network");
                }
                None
            }
        };
        let ops = api::ops();
        let openapi = openapi::render(&ops);
        // Nodes need a reachable address: with port 0, the one bound (the
        // boot service's own listener where it has one).
        let bound = match &boot_listener {
            Some(l) => l.local_addr().map(|a| a.to_string()).ok(),
            None => listener.local_addr().map(|a| a.to_string()).ok(),
        }
        .unwrap_or(config.listen.clone());
        let boot_url = config.boot_base_url(&bound);
        let node_isos = match &config.per_node_iso {
            Some(c) => {
                let c = c.clone();
                let dir = config.data_dir.clone();
                let builder =
                    tokio::task::spawn_blocking(move || crate::boot::iso::IsoBuilder::new(c, &dir))
                        .await
                        .map_err(|e| Error::internal(format!("startup task: {e}")))??;
                Some(crate::boot::iso::NodeIsos::new(builder, boot_url.clone()))
            }
            None => None,
        };
        let planners = Arc::new(crate::network::planners::Planners::default());
        let placement = Arc::new(crate::placement::PlacementService::new(engine, &store));
        let app = App {
            store,
            planners: planners.clone(),
            ops,
            metrics: Metrics::default(),
            usage: TokenUsage::default(),
            limiter: RateLimiter::new(config.rate_limit_per_sec, config.rate_limit_burst),
            placement: placement.clone(),
            secrets,
            fabric: {
                let mut f = crate::controllers::fabric::FabricController::new(
                    crate::controllers::fabric::Drivers::new(config.allow_local_switches),
                );
                f.check_interval = Duration::from_secs(config.fabric_check_secs);
                f.lease = Duration::from_secs(config.fabric_lease_secs.max(1));
                f.planners = planners.clone();
                f
            },
            lifecycle: {
                let mut l = crate::controllers::lifecycle::LifecycleController::new(
                    Some(Duration::from_millis(config.bmc_timeout_ms)),
                    signer,
                );
                l.agent_timeout = Duration::from_secs(config.agent_timeout_secs);
                l.agent_silence = Duration::from_secs(config.agent_silence_secs);
                l.boot_timeout = Duration::from_secs(config.boot_timeout_secs);
                l.boot_attempts = config.boot_attempts;
                l.parallel_steps = config.lifecycle_parallel_steps;
                l.isolation_timeout = Duration::from_secs(config.isolation_timeout_secs);
                l.firmware_update_timeout =
                    Duration::from_secs(config.firmware_update_timeout_secs);
                l.firmware_resend_after = Duration::from_secs(config.firmware_resend_secs);
                l.firmware_updates_in_flight = config.firmware_updates_in_flight;
                l.planners = planners;
                l.placement = Some(placement);
                l.replacements = config.provision_replacements;
                if let Some(w) = config.bmc_tls.warning("every BMC") {
                    tracing::warn!("{w}");
                }
                l.bmc_tls = config.bmc_tls.clone();
                if config.image_tls.insecure_skip_verify {
                    tracing::warn!(
                        "TLS certificate verification is OFF for firmware image servers (image_tls.insecure_skip_verify): anyone in the path can substitute the firmware pushed to BMCs; set ca_pem instead"
                    );
                }
                l.image_tls = config.image_tls.clone();
                l.virtual_media_iso = config.virtual_media_iso_url.clone();
                l.uefi_http_boot = config.uefi_http_boot_url.clone();
                l.node_isos = node_isos.clone();
                l.rotate_bmc_password = config.bmc_password_rotation;
                l.sanitize_before_first_use = config.sanitize_before_first_use;
                l.host_interfaces = config.bmc_host_interfaces;
                l.bmc_accounts = config.bmc_accounts;
                l.sel = config.bmc_sel;
                l.tpm_ek_certified = config.tpm_ek_ca_pem.is_some();
                l.health_poll = Duration::from_secs(config.bmc_health_poll_secs);
                l
            },
            boot: crate::boot::handlers::BootConfig {
                base_url: boot_url.clone(),
                agent_api_url: config.agent_api_base_url(&boot_url),
                heartbeat_interval_ms: config.heartbeat_interval_ms,
                virtual_media_iso_url: config.virtual_media_iso_url.clone(),
                uefi_http_boot_url: config.uefi_http_boot_url.clone(),
                node_isos,
                tpm_ek_trust: config.tpm_ek_trust()?.map(|t| {
                    for why in &t.skipped {
                        tracing::warn!("tpm_ek_ca_pem: {why}: not trusted");
                    }
                    Arc::new(t)
                }),
            },
            anonymous_limiter: RateLimiter::new(
                config.anonymous_rate_limit_per_sec,
                config.anonymous_rate_limit_burst,
            ),
        };
        Ok(Server {
            shared: Arc::new(Shared {
                app,
                openapi,
                max_body: config.max_body_bytes,
                draining: AtomicBool::new(false),
            }),
            listener,
            boot_listener,
            cancel: CancellationToken::new(),
            config,
            bootstrap_token: token,
            sim_bmcs: sim_listener.map(|l| {
                let fleet = crate::simbmc::SimFleet::new(Some(boot_url), Duration::ZERO);
                crate::demo::factory_firmware(&fleet);
                (l, fleet)
            }),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// Cancelling it stops the server gracefully.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    pub fn store(&self) -> Store {
        self.shared.app.store.clone()
    }

    /// Serves until the cancellation token fires, then drains in-flight
    /// requests, stops background tasks and flushes what they hold.
    pub async fn run(self) -> Result<()> {
        let Server { shared, listener, boot_listener, cancel, config, sim_bmcs, .. } = self;
        let mut tasks = JoinSet::new();
        if let Some((l, fleet)) = sim_bmcs {
            let c = cancel.clone();
            tasks.spawn(crate::simbmc::serve(l, fleet, c.cancelled_owned()));
        }
        background::spawn_background(&mut tasks, &shared, &cancel, &config);
        let router = routes::router(shared.clone(), boot_listener.is_none());
        if let Some(l) = boot_listener {
            tracing::info!(addr = %l.local_addr().map(|a| a.to_string()).unwrap_or_default(), "serving the boot service");
            let boot = routes::boot_router(shared.clone());
            let c = cancel.clone();
            tasks.spawn(async move {
                let served =
                    axum::serve(l, boot.into_make_service_with_connect_info::<SocketAddr>())
                        .with_graceful_shutdown(c.cancelled_owned())
                        .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the boot service's listener failed");
                }
            });
        }
        tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            store = %shared.app.store.display_url(), "serving");
        let c = cancel.clone();
        let s2 = shared.clone();
        let res = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                c.cancelled().await;
                s2.draining.store(true, Ordering::SeqCst);
                tracing::info!("shutting down: draining in-flight requests");
            })
            .await;
        cancel.cancel();
        while tasks.join_next().await.is_some() {}
        let s3 = shared.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = s3.app.usage.flush(&s3.app.store) {
                tracing::warn!(error = %e, "usage flush at shutdown failed");
            }
            s3.app.lifecycle.end_bmc_sessions();
        })
        .await;
        tracing::info!("stopped");
        res.map_err(|e| Error::internal(format!("serve: {e}")))
    }
}
