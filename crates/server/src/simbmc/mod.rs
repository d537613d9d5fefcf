//! SIMULATED BMCs for `serve --demo` and the benchmarks: one listener
//! serves any number of simulated Redfish BMCs, BMC `i` under
//! `/simbmc/{i}` (service root, a host system with power, boot override, a
//! virtual CD and a MAC, Secure Boot, BIOS, boot options, local accounts,
//! a manager with a host interface, an HGX baseboard with 8 simulated H100
//! GPUs, a firmware inventory with updates). The real Redfish driver and lifecycle controller drive them
//! exactly as they drive real BMCs.
//!
//! A simulated node also boots: powering it on (or restarting it) with a
//! network boot override (or a one-time boot from its virtual CD with an
//! image inserted: the image stands for an iPXE ISO) fetches its iPXE script from the boot service and,
//! when the script carries a token, starts a SIMULATED agent (the real
//! agent library over simulated hardware) that registers with it. Powering
//! it off stops that agent. Each answer can be delayed by a latency
//! (benchmarks use 1 s), and answers and boots spread around their nominal
//! times by a jitter; the fleet accounts each node's waiting. Never a peer
//! in a driver's tests (those use sushy-tools).

mod fleet;
mod hardware;
mod platform;
mod system;
mod update;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use fleet::Sim;
pub use fleet::{ChangeHook, SimFleet};
pub use update::{
    bundle_url as firmware_bundle_url, package as firmware_package,
    package_url as firmware_package_url,
};

/// The credentials every simulated BMC accepts (basic auth).
pub const USER: &str = "admin";
pub const PASSWORD: &str = "simulated";

/// BMC `i`'s endpoint under a fleet served at `base` (`http://host:port`).
pub fn endpoint(base: &str, i: usize) -> String {
    format!("{}/simbmc/{i}", base.trim_end_matches('/'))
}

/// The MAC of simulated node `i`'s NIC.
pub fn mac(i: usize) -> String {
    format!("02:5e:00:{:02x}:{:02x}:{:02x}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff)
}

/// What a fleet has answered and started, its timings, and the CPU its
/// process has used (`GET /simbmc/stats`, not counted as a request: a
/// benchmark reads it from a fleet that runs in a process of its own).
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub requests: u64,
    pub delayed: u64,
    pub boots: u64,
    pub latency_secs: f64,
    pub boot_delay_secs: f64,
    /// See [`SimFleet::jitter`] (0 when absent: older fleets).
    #[serde(default)]
    pub jitter: f64,
    /// See [`SimFleet::media_bytes`] (0 when absent: older fleets).
    #[serde(default)]
    pub media_bytes: u64,
    #[serde(default)]
    pub media_failures: u64,
    /// Nodes whose boots hang (see [`SimFleet::dead_nodes`]; 0 when
    /// absent: older fleets).
    #[serde(default)]
    pub dead_nodes: u64,
    /// The fleet's process, user + system (`None` where the OS does not say).
    pub cpu_secs: Option<f64>,
}

/// Basic auth as [`USER`] with the node's password (its password changes
/// when the control plane rotates it).
fn authorized(h: &HeaderMap, password: &str) -> bool {
    let want =
        format!("Basic {}", neocloud_common::encoding::base64(&format!("{USER}:{password}")));
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(want.as_str())
}

/// An error answer with Redfish's `error.message`.
fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": {"message": message}}))).into_response()
}

fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, "simulated BMC: wrong credentials")
}

fn link(p: &str) -> Value {
    json!({"@odata.id": p})
}

type Fleet = Arc<SimFleet>;

/// Counts the request, waits BMC `i`'s latency, then answers `v` if
/// authorized.
async fn answer(f: &SimFleet, h: &HeaderMap, i: usize, v: impl FnOnce() -> Value) -> Response {
    f.requests.fetch_add(1, Ordering::Relaxed);
    f.delayed.fetch_add(1, Ordering::Relaxed);
    let d = f.wait_of(i, f.latency);
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
    if f.with(i, |s| s.restarting) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "simulated BMC restarting");
    }
    if authorized(h, &f.with(i, |s| s.password.clone())) {
        Json(v()).into_response()
    } else {
        unauthorized()
    }
}

/// The answer BMC `i` gives a request it does not take (its latency
/// waited): 503 while restarting, 401 for wrong credentials.
async fn refusal(f: &SimFleet, h: &HeaderMap, i: usize) -> Option<Response> {
    let resp = answer(f, h, i, || json!({})).await;
    (resp.status() != StatusCode::OK).then_some(resp)
}

/// An action's answer (its latency, its credentials); once accepted, the
/// change (`what`) to the simulated node.
async fn act(
    f: &SimFleet,
    h: &HeaderMap,
    i: usize,
    what: &str,
    change: impl FnOnce(&mut Sim),
) -> Response {
    if let Some(r) = refusal(f, h, i).await {
        return r;
    }
    f.with(i, change);
    done(f, i, what)
}

/// The answer to a change made: 204, or 500 where a test loses it.
fn done(f: &SimFleet, i: usize, what: &str) -> Response {
    lost(f, i, what).unwrap_or_else(|| StatusCode::NO_CONTENT.into_response())
}

/// 500 where a test loses the answer to change `what`, just made: an
/// error after the BMC acted (a 503 says it did not, and may be sent
/// again).
fn lost(f: &SimFleet, i: usize, what: &str) -> Option<Response> {
    f.changed(i, what).then(|| error(StatusCode::INTERNAL_SERVER_ERROR, "answer lost (simulated)"))
}

/// The router of a whole simulated fleet.
pub fn router(fleet: Fleet) -> Router {
    Router::new()
        .route("/simbmc/stats", get(|State(f): State<Fleet>| async move { Json(f.stats()) }))
        .route("/simbmc/waits", get(|State(f): State<Fleet>| async move { Json(f.waits()) }))
        .route(
            "/simbmc/{i}/redfish/v1",
            get(|State(f): State<Fleet>| async move {
                f.requests.fetch_add(1, Ordering::Relaxed);
                Json(json!({"Id": "RootService", "Systems": link("/redfish/v1/Systems"),
                            "UpdateService": link("/redfish/v1/UpdateService"),
                            "AccountService": link("/redfish/v1/AccountService"),
                            "Managers": link("/redfish/v1/Managers")}))
            }),
        )
        .merge(system::routes())
        .merge(platform::routes())
        .merge(hardware::routes())
        .merge(update::routes())
        .with_state(fleet)
}

/// Serves the fleet on `listener` until `shutdown` completes, then stops
/// its simulated agents.
pub async fn serve(
    listener: tokio::net::TcpListener,
    fleet: Arc<SimFleet>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let _ = axum::serve(listener, router(fleet.clone())).with_graceful_shutdown(shutdown).await;
    fleet.stop_all();
}
