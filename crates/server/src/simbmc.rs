//! SIMULATED BMCs for `serve --demo`: a small Redfish service per simulated
//! node (service root, a host system with power and boot override, an HGX
//! baseboard with 8 simulated H100 GPUs, MACs), served on loopback so the
//! real Redfish driver and lifecycle controller enroll demo nodes exactly as
//! they enroll real ones. Never a peer in a driver's tests (those use
//! sushy-tools).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// The credentials every simulated BMC accepts (basic auth).
pub const USER: &str = "admin";
pub const PASSWORD: &str = "simulated";

#[derive(Default)]
struct Sim {
    power_on: bool,
    boot_target: String,
    boot_enabled: String,
}

#[derive(Clone)]
struct Ctx {
    index: usize,
    sim: Arc<Mutex<Sim>>,
}

fn authorized(h: &HeaderMap) -> bool {
    // "admin:simulated" in base64.
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Basic YWRtaW46c2ltdWxhdGVk")
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": {"message": "simulated BMC: wrong credentials"}})),
    )
        .into_response()
}

fn guard(h: &HeaderMap, v: Value) -> Response {
    if authorized(h) {
        Json(v).into_response()
    } else {
        unauthorized()
    }
}

fn link(p: &str) -> Value {
    json!({"@odata.id": p})
}

/// A router answering as simulated BMC number `index`.
pub fn router(index: usize) -> Router {
    let ctx = Ctx {
        index,
        sim: Arc::new(Mutex::new(Sim {
            power_on: false,
            boot_target: "None".into(),
            boot_enabled: "Disabled".into(),
        })),
    };
    Router::new()
        .route("/redfish/v1", get(|| async { Json(json!({"Id": "RootService", "Systems": link("/redfish/v1/Systems")})) }))
        .route(
            "/redfish/v1/Systems",
            get(|h: HeaderMap| async move {
                guard(&h, json!({"Members": [link("/redfish/v1/Systems/Host"), link("/redfish/v1/Systems/HGX_Baseboard_0")]}))
            }),
        )
        .route("/redfish/v1/Systems/Host", get(host).patch(patch_host))
        .route("/redfish/v1/Systems/Host/Actions/ComputerSystem.Reset", post(reset))
        .route(
            "/redfish/v1/Systems/Host/EthernetInterfaces",
            get(|h: HeaderMap| async move {
                guard(&h, json!({"Members": [link("/redfish/v1/Systems/Host/EthernetInterfaces/0")]}))
            }),
        )
        .route("/redfish/v1/Systems/Host/EthernetInterfaces/0", get(nic))
        .route(
            "/redfish/v1/Systems/HGX_Baseboard_0",
            get(|h: HeaderMap| async move {
                guard(
                    &h,
                    json!({"Id": "HGX_Baseboard_0", "Processors": link("/redfish/v1/Systems/HGX_Baseboard_0/Processors"),
                           "Memory": link("/redfish/v1/Systems/HGX_Baseboard_0/Memory")}),
                )
            }),
        )
        .route(
            "/redfish/v1/Systems/HGX_Baseboard_0/Processors",
            get(|h: HeaderMap| async move {
                let m: Vec<Value> =
                    (1..=8).map(|i| link(&format!("/redfish/v1/Systems/HGX_Baseboard_0/Processors/GPU_SXM_{i}"))).collect();
                guard(&h, json!({"Members": m}))
            }),
        )
        .route("/redfish/v1/Systems/HGX_Baseboard_0/Processors/{gpu}", get(gpu))
        .route(
            "/redfish/v1/Systems/HGX_Baseboard_0/Memory",
            get(|h: HeaderMap| async move {
                let m: Vec<Value> = (1..=8)
                    .map(|i| link(&format!("/redfish/v1/Systems/HGX_Baseboard_0/Memory/GPU_SXM_{i}_DRAM_0")))
                    .collect();
                guard(&h, json!({"Members": m}))
            }),
        )
        .route(
            "/redfish/v1/Systems/HGX_Baseboard_0/Memory/{dram}",
            get(|h: HeaderMap, Path(d): Path<String>| async move {
                guard(&h, json!({"@odata.id": format!("/redfish/v1/Systems/HGX_Baseboard_0/Memory/{d}"), "Id": d, "CapacityMiB": 81559}))
            }),
        )
        .with_state(ctx)
}

async fn host(State(c): State<Ctx>, h: HeaderMap) -> Response {
    let s = c.sim.lock().unwrap_or_else(|e| e.into_inner());
    guard(
        &h,
        json!({
            "@odata.id": "/redfish/v1/Systems/Host",
            "Id": "Host",
            "UUID": format!("5e1a0000-0000-4000-8000-{:012}", c.index),
            "Manufacturer": "neocloud simulator",
            "Model": "Simulated HGX H100",
            "SerialNumber": format!("SIM{:06}", c.index),
            "PowerState": if s.power_on { "On" } else { "Off" },
            "Boot": {
                "BootSourceOverrideTarget": s.boot_target,
                "BootSourceOverrideEnabled": s.boot_enabled,
                "BootSourceOverrideTarget@Redfish.AllowableValues": ["None", "Pxe", "Cd", "Hdd", "UefiHttp"]
            },
            "Actions": {"#ComputerSystem.Reset": {
                "target": "/redfish/v1/Systems/Host/Actions/ComputerSystem.Reset",
                "ResetType@Redfish.AllowableValues": ["On", "ForceOff", "GracefulShutdown", "ForceRestart"]
            }},
            "MemorySummary": {"TotalSystemMemoryGiB": 2048},
            "EthernetInterfaces": link("/redfish/v1/Systems/Host/EthernetInterfaces")
        }),
    )
}

async fn patch_host(State(c): State<Ctx>, h: HeaderMap, Json(v): Json<Value>) -> Response {
    if !authorized(&h) {
        return unauthorized();
    }
    let mut s = c.sim.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = v["Boot"]["BootSourceOverrideTarget"].as_str() {
        s.boot_target = t.to_string();
    }
    if let Some(e) = v["Boot"]["BootSourceOverrideEnabled"].as_str() {
        s.boot_enabled = e.to_string();
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn reset(State(c): State<Ctx>, h: HeaderMap, Json(v): Json<Value>) -> Response {
    if !authorized(&h) {
        return unauthorized();
    }
    let mut s = c.sim.lock().unwrap_or_else(|e| e.into_inner());
    match v["ResetType"].as_str() {
        Some("On") | Some("ForceRestart") => s.power_on = true,
        Some("ForceOff") | Some("GracefulShutdown") => s.power_on = false,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": {"message": "unsupported ResetType"}})),
            )
                .into_response()
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn nic(State(c): State<Ctx>, h: HeaderMap) -> Response {
    guard(
        &h,
        json!({"@odata.id": "/redfish/v1/Systems/Host/EthernetInterfaces/0", "Id": "0",
               "MACAddress": format!("02:5e:00:00:{:02x}:{:02x}", (c.index >> 8) & 0xff, c.index & 0xff)}),
    )
}

async fn gpu(State(c): State<Ctx>, h: HeaderMap, Path(g): Path<String>) -> Response {
    guard(
        &h,
        json!({
            "@odata.id": format!("/redfish/v1/Systems/HGX_Baseboard_0/Processors/{g}"),
            "Id": g,
            "ProcessorType": "GPU",
            "Manufacturer": "NVIDIA",
            "Model": "NVIDIA H100 80GB HBM3 (simulated)",
            "SerialNumber": format!("SIMGPU{:06}-{g}", c.index),
            "UUID": format!("GPU-5e1a{:04}-{}", c.index, g.trim_start_matches("GPU_SXM_")),
            "Oem": {"Nvidia": {"MIGModeEnabled": false}}
        }),
    )
}
