//! The HTTP transport: axum routes built from the route table, request ids,
//! body limits, logs and metrics; background tasks; graceful shutdown.

use crate::api::{self, Body, Method};
use crate::auth::TokenUsage;
use crate::config::Config;
use crate::dispatch::{self, App, Outcome, Request};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::{bootstrap, http_error, openapi};
use axum::extract::{Path as AxPath, Query};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use neocloud_common::{new_id, time::now_micros, Error, Result};
use neocloud_store::{idempotency, Store};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
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
        let ops = api::ops();
        let openapi = openapi::render(&ops);
        // Nodes need a reachable address: with port 0, the one bound.
        let boot_url = match &config.boot_url {
            Some(u) => u.clone(),
            None => format!(
                "http://{}",
                listener.local_addr().map(|a| a.to_string()).unwrap_or(config.listen.clone())
            ),
        };
        let planners = Arc::new(crate::network::planners::Planners::default());
        let app = App {
            store,
            planners: planners.clone(),
            ops,
            metrics: Metrics::default(),
            usage: TokenUsage::default(),
            limiter: RateLimiter::new(config.rate_limit_per_sec, config.rate_limit_burst),
            placement: crate::placement::PlacementService::new(engine),
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
                l.boot_timeout = Duration::from_secs(config.boot_timeout_secs);
                l.boot_attempts = config.boot_attempts;
                l.parallel_steps = config.lifecycle_parallel_steps;
                l.isolation_timeout = Duration::from_secs(config.isolation_timeout_secs);
                l.planners = planners;
                if let Some(w) = config.bmc_tls.warning("every BMC") {
                    tracing::warn!("{w}");
                }
                l.bmc_tls = config.bmc_tls.clone();
                l
            },
            boot: crate::boot::handlers::BootConfig {
                base_url: boot_url.clone(),
                heartbeat_interval_ms: config.heartbeat_interval_ms,
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
            cancel: CancellationToken::new(),
            config,
            bootstrap_token: token,
            sim_bmcs: sim_listener
                .map(|l| (l, crate::simbmc::SimFleet::new(Some(boot_url), Duration::ZERO))),
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
        let Server { shared, listener, cancel, config, sim_bmcs, .. } = self;
        let mut tasks = JoinSet::new();
        if let Some((l, fleet)) = sim_bmcs {
            let c = cancel.clone();
            tasks.spawn(crate::simbmc::serve(l, fleet, c.cancelled_owned()));
        }
        spawn_background(&mut tasks, &shared, &cancel, &config);
        let router = router(shared.clone());
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

/// Background work: one JoinSet, stopped by the cancellation token.
fn spawn_background(
    tasks: &mut JoinSet<()>,
    shared: &Arc<Shared>,
    cancel: &CancellationToken,
    config: &Config,
) {
    let flush_every = Duration::from_secs(config.token_flush_secs);
    let (s, c) = (shared.clone(), cancel.clone());
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(flush_every);
        loop {
            tokio::select! {
                _ = c.cancelled() => return,
                _ = tick.tick() => {}
            }
            let s2 = s.clone();
            match tokio::task::spawn_blocking(move || s2.app.usage.flush(&s2.app.store)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    s.app.metrics.background_error("token_usage");
                    tracing::warn!(error = %e, "token last-used flush failed");
                }
                Err(e) => tracing::warn!(error = %e, "token last-used task panicked"),
            }
        }
    });
    let every = Duration::from_millis(config.lifecycle_interval_ms.max(100));
    let (s, c) = (shared.clone(), cancel.clone());
    // 0 disables the controller on this replica (another runs it).
    let run_lifecycle = config.lifecycle_interval_ms > 0;
    tasks.spawn(async move {
        if !run_lifecycle {
            return;
        }
        let mut tick = tokio::time::interval(every);
        let wake = s.app.lifecycle.wake.clone();
        loop {
            let tick = tokio::select! {
                _ = c.cancelled() => return,
                _ = tick.tick() => true,
                _ = wake.notified() => false,
            };
            // Start a step for every node with work (on a wake-up: the
            // nodes it names) and none running; do not wait for them (a
            // silent BMC must not hold up the others).
            let s2 = s.clone();
            let claimed = tokio::task::spawn_blocking(move || {
                if tick {
                    let (counts, over) = crate::controllers::lifecycle::census(&s2.app.store)?;
                    s2.app.metrics.set_nodes(counts, over);
                }
                s2.app.lifecycle.claim(&s2.app.store, tick)
            })
            .await;
            let nodes = match claimed {
                Ok(Ok(nodes)) => nodes,
                Ok(Err(e)) => {
                    s.app.metrics.background_error("node_lifecycle");
                    tracing::warn!(error = %e, "node lifecycle pass failed");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "node lifecycle task panicked");
                    continue;
                }
            };
            for id in nodes {
                let s3 = s.clone();
                tokio::task::spawn_blocking(move || {
                    let res =
                        s3.app.lifecycle.step_node_chained(&s3.app.store, &s3.app.secrets, &id);
                    if let Err(e) = res {
                        s3.app.metrics.background_error("node_lifecycle");
                        tracing::warn!(node = %id, error = %e, "node lifecycle step failed");
                    }
                });
            }
        }
    });
    spawn_fabric(tasks, shared, cancel, config);
    let ttl = config.idempotency_ttl_secs as i64 * 1_000_000;
    let (s, c) = (shared.clone(), cancel.clone());
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tokio::select! {
                _ = c.cancelled() => return,
                _ = tick.tick() => {}
            }
            let s2 = s.clone();
            let before = now_micros() - ttl;
            match tokio::task::spawn_blocking(move || {
                s2.app.store.write(|w| idempotency::expire(w, before))
            })
            .await
            {
                Ok(Ok(n)) if n > 0 => tracing::info!(expired = n, "idempotency keys expired"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    s.app.metrics.background_error("idempotency_expiry");
                    tracing::warn!(error = %e, "idempotency expiry failed");
                }
                Err(e) => tracing::warn!(error = %e, "idempotency expiry task panicked"),
            }
        }
    });
}

/// The fabric controller's loop: a pass per tick, and at once when an API
/// write or a release wakes it. A pass that pushed something wakes the
/// lifecycle controller (releases wait on their nodes' ports).
fn spawn_fabric(
    tasks: &mut JoinSet<()>,
    shared: &Arc<Shared>,
    cancel: &CancellationToken,
    config: &Config,
) {
    if config.fabric_interval_ms == 0 {
        return;
    }
    let every = Duration::from_millis(config.fabric_interval_ms.max(100));
    let settle = Duration::from_millis(100);
    let (s, c) = (shared.clone(), cancel.clone());
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(every);
        let wake = s.app.fabric.wake.clone();
        let released = s.app.lifecycle.fabric_wake.clone();
        loop {
            let woken = tokio::select! {
                _ = c.cancelled() => return,
                _ = tick.tick() => false,
                _ = wake.notified() => true,
                _ = released.notified() => true,
            };
            // Changes come in bursts (a tenant attaching a gang of nodes):
            // let the burst land, so one pass pushes it once.
            if woken {
                tokio::time::sleep(settle).await;
            }
            let s2 = s.clone();
            match tokio::task::spawn_blocking(move || {
                s2.app.fabric.pass(&s2.app.store, &s2.app.secrets)
            })
            .await
            {
                Ok(Ok(r)) => {
                    s.app.metrics.fabric_pass(r.pushed, r.repaired, r.failed);
                    if r.pushed + r.repaired > 0 {
                        s.app.lifecycle.wake_all();
                    }
                }
                Ok(Err(e)) => {
                    s.app.metrics.background_error("fabric");
                    tracing::warn!(error = %e, "fabric controller pass failed");
                }
                Err(e) => tracing::warn!(error = %e, "fabric controller task panicked"),
            }
        }
    });
}

fn filter(m: Method) -> MethodFilter {
    match m {
        Method::Get => MethodFilter::GET,
        Method::Post => MethodFilter::POST,
        Method::Put => MethodFilter::PUT,
        Method::Patch => MethodFilter::PATCH,
        Method::Delete => MethodFilter::DELETE,
    }
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 128
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(new_id)
}

fn with_id(mut resp: Response, id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

fn error(e: &Error, id: &str) -> Response {
    with_id(http_error::response(e, id), id)
}

fn router(shared: Arc<Shared>) -> Router {
    let mut by_path: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
    for (i, op) in shared.app.ops.iter().enumerate() {
        by_path.entry(op.path).or_default().push(i);
    }
    let mut router = Router::new();
    for (path, idxs) in by_path {
        let mut mr: MethodRouter = MethodRouter::new();
        for i in idxs {
            let s = shared.clone();
            mr = mr.on(
                filter(s.app.ops[i].method),
                move |params: std::result::Result<AxPath<HashMap<String, String>>, _>,
                      query: std::result::Result<Query<HashMap<String, String>>, _>,
                      axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
                      uri: axum::http::Uri,
                      headers: HeaderMap,
                      body: axum::body::Body| async move {
                    api_call(s, i, params, query, peer, uri, headers, body).await
                },
            );
        }
        mr = mr.fallback(|req: axum::extract::Request| async move {
            let id = request_id(req.headers());
            error(&Error::MethodNotAllowed { method: req.method().to_string() }, &id)
        });
        router = router.route(path, mr);
    }
    let s = shared.clone();
    let s2 = shared.clone();
    let s3 = shared.clone();
    let s4 = shared.clone();
    router
        .route(
            "/healthz",
            on(MethodFilter::GET, || async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/readyz",
            on(MethodFilter::GET, move |headers: HeaderMap| async move {
                let id = request_id(&headers);
                if s.draining.load(Ordering::SeqCst) {
                    return error(&Error::Unavailable { internal: "draining".into() }, &id);
                }
                let s2 = s.clone();
                match tokio::task::spawn_blocking(move || s2.app.store.ping()).await {
                    Ok(Ok(())) => {
                        axum::Json(serde_json::json!({"status": "ready"})).into_response()
                    }
                    Ok(Err(e)) => error(&Error::Unavailable { internal: e.to_string() }, &id),
                    Err(e) => error(&Error::internal(e.to_string()), &id),
                }
            }),
        )
        .route(
            "/metrics",
            on(MethodFilter::GET, move || async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                    s2.app.metrics.render() + &s2.app.planners.render_metrics(),
                )
            }),
        )
        .merge(boot_routes(shared.clone()))
        .route(
            "/v1/openapi.json",
            on(MethodFilter::GET, move || async move {
                ([(header::CONTENT_TYPE, "application/json")], s3.openapi.clone())
            }),
        )
        .fallback(move |req: axum::extract::Request| async move {
            let _ = &s4;
            let id = request_id(req.headers());
            error(&Error::not_found("route", req.uri().path().to_string()), &id)
        })
}

#[allow(clippy::too_many_arguments)]
async fn api_call(
    s: Arc<Shared>,
    op: usize,
    params: std::result::Result<
        AxPath<HashMap<String, String>>,
        axum::extract::rejection::PathRejection,
    >,
    query: std::result::Result<
        Query<HashMap<String, String>>,
        axum::extract::rejection::QueryRejection,
    >,
    peer: SocketAddr,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let started = Instant::now();
    let id = request_id(&headers);
    let op_id = s.app.ops[op].id;
    let (resp, who) =
        match prepare(&s, op, params, query, peer, uri.path(), &headers, body, &id).await {
            Err(e) => {
                if s.app.ops[op].method.is_mutating() {
                    let req = Request {
                        op,
                        path: uri.path().to_string(),
                        params: HashMap::new(),
                        query: HashMap::new(),
                        authorization: headers
                            .get(header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string),
                        idempotency_key: None,
                        body: Vec::new(),
                        request_id: id.clone(),
                        peer: peer.ip(),
                    };
                    let (s2, e2) = (s.clone(), e.clone());
                    let _ = tokio::task::spawn_blocking(move || {
                        dispatch::record_rejected(&s2.app, &req, &e2)
                    })
                    .await;
                }
                (Err(e), None)
            }
            Ok(req) => {
                let s2 = s.clone();
                match tokio::task::spawn_blocking(move || {
                    let (res, who) = dispatch::handle(&s2.app, &req);
                    (res, who, req.path)
                })
                .await
                {
                    Ok((res, who, _)) => (res, who),
                    Err(e) => (Err(Error::internal(format!("handler panicked: {e}"))), None),
                }
            }
        };
    let response = match resp {
        Ok(out) => success(out, &id),
        Err(e) => error(&e, &id),
    };
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    s.app.metrics.request(op_id, status, elapsed);
    tracing::info!(
        request_id = %id,
        op = op_id,
        status,
        principal = who.as_deref().unwrap_or("-"),
        elapsed_us = elapsed.as_micros() as u64,
        "request"
    );
    response
}

#[allow(clippy::too_many_arguments)]
async fn prepare(
    s: &Shared,
    op: usize,
    params: std::result::Result<
        AxPath<HashMap<String, String>>,
        axum::extract::rejection::PathRejection,
    >,
    query: std::result::Result<
        Query<HashMap<String, String>>,
        axum::extract::rejection::QueryRejection,
    >,
    peer: SocketAddr,
    path: &str,
    headers: &HeaderMap,
    body: axum::body::Body,
    id: &str,
) -> Result<Request> {
    let params = params
        .map_err(|e| Error::InvalidRequest { field: Some("path".into()), message: e.body_text() })?
        .0;
    let query = query
        .map_err(|e| Error::InvalidRequest { field: Some("query".into()), message: e.body_text() })?
        .0;
    let header_str = |name: header::HeaderName, canonical: &str| -> Result<Option<String>> {
        match headers.get(&name) {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .map(|v| Some(v.to_string()))
                .map_err(|_| Error::invalid_request(canonical, "must be visible ASCII")),
        }
    };
    // An unreadable credential is no credential: 401 (with its challenge).
    let authorization = header_str(header::AUTHORIZATION, "Authorization")
        .map_err(|_| Error::unauthenticated("Authorization header is not visible ASCII"))?;
    let idempotency_key =
        header_str(header::HeaderName::from_static("idempotency-key"), "Idempotency-Key")?;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > s.max_body {
            return Err(Error::PayloadTooLarge { limit: s.max_body });
        }
    }
    let bytes = axum::body::to_bytes(body, s.max_body)
        .await
        .map_err(|_| Error::PayloadTooLarge { limit: s.max_body })?;
    let o = &s.app.ops[op];
    if !bytes.is_empty() && o.request.is_none() {
        return Err(Error::invalid_request("body", "this operation takes no body"));
    }
    if !bytes.is_empty() {
        if let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
            if !ct.starts_with("application/json") {
                return Err(Error::invalid_request("Content-Type", "must be application/json"));
            }
        }
    }
    Ok(Request {
        op,
        path: path.to_string(),
        params,
        query,
        authorization,
        idempotency_key,
        body: bytes.to_vec(),
        request_id: id.to_string(),
        peer: peer.ip(),
    })
}

fn success(out: Outcome, id: &str) -> Response {
    let status = StatusCode::from_u16(out.status).unwrap_or(StatusCode::OK);
    let mut resp = match out.body {
        Body::Json(v) => (status, axum::Json(v)).into_response(),
        Body::JsonLines(s) => {
            (status, [(header::CONTENT_TYPE, "application/x-ndjson")], s).into_response()
        }
        Body::Empty => status.into_response(),
    };
    if out.replayed {
        resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    with_id(resp, id)
}

/// The boot service and agent API (see `boot`): outside `/v1`, answered on
/// blocking threads.
fn boot_routes(shared: Arc<Shared>) -> Router {
    use crate::boot::handlers;
    async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| Error::internal(format!("boot task: {e}")))?
    }
    fn text(r: Result<handlers::Text>, id: &str) -> Response {
        match r {
            Ok(t) => with_id(
                (
                    StatusCode::from_u16(t.status).unwrap_or(StatusCode::OK),
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    t.body,
                )
                    .into_response(),
                id,
            ),
            Err(e) => error(&e, id),
        }
    }
    fn json<T: serde::Serialize>(r: Result<T>, status: StatusCode, id: &str) -> Response {
        match r {
            Ok(v) => with_id((status, axum::Json(v)).into_response(), id),
            Err(e) => error(&e, id),
        }
    }
    fn auth(h: &HeaderMap) -> Option<String> {
        h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string)
    }
    let (s1, s2, s3, s4, s5) =
        (shared.clone(), shared.clone(), shared.clone(), shared.clone(), shared);
    Router::new()
        .route(
            "/boot/ipxe",
            on(MethodFilter::GET, move |headers: HeaderMap, q: Query<HashMap<String, String>>| async move {
                let id = request_id(&headers);
                let mac = q.get("mac").cloned();
                let r = blocking(move || handlers::ipxe(&s1.app, &s1.app.boot, mac.as_deref())).await;
                text(r, &id)
            }),
        )
        .route(
            "/boot/nocloud/{token}/{doc}",
            on(MethodFilter::GET, move |headers: HeaderMap, AxPath((token, doc)): AxPath<(String, String)>| async move {
                let id = request_id(&headers);
                let r = blocking(move || handlers::nocloud(&s2.app, &s2.app.boot, &token, &doc)).await;
                text(r, &id)
            }),
        )
        .route(
            "/agent/v1/register",
            on(MethodFilter::POST, move |headers: HeaderMap,
                  axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
                  body: axum::body::Bytes| async move {
                let id = request_id(&headers);
                let r = blocking(move || handlers::register(&s3.app, &s3.app.boot, &peer.ip().to_string(), &body)).await;
                json(r, StatusCode::CREATED, &id)
            }),
        )
        .route(
            "/agent/v1/heartbeat",
            on(MethodFilter::POST, move |headers: HeaderMap, body: axum::body::Bytes| async move {
                let id = request_id(&headers);
                let a = auth(&headers);
                let s = s4.clone();
                let hb = blocking(move || handlers::heartbeat(&s.app, a.as_deref(), &body)).await;
                let r = match hb {
                    Ok(handlers::Heartbeat { await_steps: Some((agent, signal)), .. }) => {
                        // Held until the agent's steps are queued (or a while).
                        let wait = Duration::from_millis(handlers::AWAIT_STEPS_MS);
                        let _ = tokio::time::timeout(wait, signal.notified()).await;
                        s4.app.lifecycle.forget_steps_signal(&agent);
                        let s = s4.clone();
                        blocking(move || handlers::pending_steps(&s.app, &agent)).await
                    }
                    other => other.map(|h| h.reply),
                };
                json(r, StatusCode::OK, &id)
            }),
        )
        .route(
            "/agent/v1/steps/{step}",
            on(MethodFilter::POST, move |headers: HeaderMap, AxPath(step): AxPath<String>, body: axum::body::Bytes| async move {
                let id = request_id(&headers);
                let a = auth(&headers);
                let r = blocking(move || handlers::step_result(&s5.app, a.as_deref(), &step, &body)).await;
                json(r.map(|()| serde_json::json!({"recorded": true})), StatusCode::OK, &id)
            }),
        )
}
