//! The simulated firmware: a firmware inventory (the BMC's own, applied at
//! once; the HGX baseboard's, any `HGX_*` component a test adds, at the
//! next AC power cycle of its chassis, which the update's task says is
//! required; the host's, such as the BIOS, at the next power-on), firmware
//! updates (`UpdateService.SimpleUpdate`: the BMC fetches the image and
//! runs a task), the HGX chassis and its `Chassis.Reset` (an AC power
//! cycle: the host loses power, the BMC is away a moment), and a
//! repository of SIMULATED firmware packages for them.
//!
//! A SIMULATED package is a JSON document naming the component and the
//! version it installs ([`package`]); the fleet serves one for any
//! component and version at `/simbmc/firmware/{component}/{version}`.

use super::fleet::{SimFleet, SimTask};
use super::{answer, error, link, lost, Fleet};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;

const INVENTORY: &str = "/redfish/v1/UpdateService/FirmwareInventory";

/// The HGX baseboard's chassis, whose AC power cycle activates the
/// baseboard's firmware.
const CHASSIS: &str = "/redfish/v1/Chassis/HGX_Chassis_0";

/// A SIMULATED firmware package that installs `version` on `component`.
pub fn package(component: &str, version: &str) -> Value {
    json!({"simulated_firmware": {"component": component, "version": version}})
}

/// The URL of the fleet's package for `component` at `version`, for a
/// fleet served at `base`.
pub fn package_url(base: &str, component: &str, version: &str) -> String {
    format!("{}/simbmc/firmware/{component}/{version}", base.trim_end_matches('/'))
}

pub(super) fn routes() -> Router<Fleet> {
    Router::new()
        .route(
            "/simbmc/firmware/{component}/{version}",
            get(|Path((c, v)): Path<(String, String)>| async move { Json(package(&c, &v)) }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/UpdateService",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || {
                    json!({
                        "@odata.id": "/redfish/v1/UpdateService",
                        "Id": "UpdateService",
                        "ServiceEnabled": true,
                        "FirmwareInventory": link(INVENTORY),
                        "Actions": {"#UpdateService.SimpleUpdate": {
                            "target": "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
                            "TransferProtocol@Redfish.AllowableValues": ["HTTP", "HTTPS"]
                        }}
                    })
                })
                .await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
            post(simple_update),
        )
        .route(
            "/simbmc/{i}/redfish/v1/UpdateService/FirmwareInventory",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                let ids: Vec<String> = f.with(i, |s| s.firmware.keys().cloned().collect());
                answer(&f, &h, i, || {
                    let m: Vec<Value> = ids.iter().map(|c| link(&format!("{INVENTORY}/{c}"))).collect();
                    json!({"Members": m})
                })
                .await
            }),
        )
        .route("/simbmc/{i}/redfish/v1/UpdateService/FirmwareInventory/{fw}", get(component))
        .route("/simbmc/{i}/redfish/v1/TaskService/Tasks", get(tasks))
        .route("/simbmc/{i}/redfish/v1/TaskService/Tasks/{t}", get(task))
        .route(
            "/simbmc/{i}/redfish/v1/Chassis/HGX_Chassis_0",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || {
                    json!({
                        "@odata.id": CHASSIS,
                        "Id": "HGX_Chassis_0",
                        "Name": "HGX baseboard (simulated)",
                        "Actions": {"#Chassis.Reset": {
                            "target": format!("{CHASSIS}/Actions/Chassis.Reset"),
                            "ResetType@Redfish.AllowableValues": ["PowerCycle"]
                        }}
                    })
                })
                .await
            }),
        )
        .route("/simbmc/{i}/redfish/v1/Chassis/HGX_Chassis_0/Actions/Chassis.Reset", post(chassis_reset))
}

/// How long the simulated BMC is away during an AC power cycle of its
/// chassis.
const POWER_CYCLE_AWAY: Duration = Duration::from_millis(500);

/// An AC power cycle of the chassis: the host loses power (whatever ran
/// stops; it stays off), the firmware staged for the cycle takes effect,
/// and the BMC answers nothing for a moment.
async fn chassis_reset(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path(i): Path<usize>,
    Json(v): Json<Value>,
) -> Response {
    let resp = answer(&f, &h, i, || json!({})).await;
    if resp.status() != StatusCode::OK {
        return resp;
    }
    if v["ResetType"].as_str() != Some("PowerCycle") {
        return error(StatusCode::BAD_REQUEST, "unsupported ResetType (allowed: PowerCycle)");
    }
    f.with(i, |s| {
        if let Some(stop) = s.agent_stop.take() {
            stop.store(true, Ordering::SeqCst);
        }
        s.power_on = false;
        let staged = std::mem::take(&mut s.firmware_chassis_pending);
        s.firmware.extend(staged);
        s.chassis_resets += 1;
        s.restarting = true;
    });
    let fleet = f.clone();
    let away = f.wait_of(i, POWER_CYCLE_AWAY);
    std::thread::spawn(move || {
        std::thread::sleep(away);
        fleet.with(i, |s| s.restarting = false);
    });
    if let Some(lost) = lost(&f, i, "chassis_reset") {
        return lost;
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn component(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path((i, fw)): Path<(usize, String)>,
) -> Response {
    let Some(version) = f.with(i, |s| s.firmware.get(&fw).cloned()) else {
        return not_found(&f, &h, i).await;
    };
    answer(&f, &h, i, || {
        json!({"@odata.id": format!("{INVENTORY}/{fw}"), "Id": fw,
               "Name": format!("simulated {fw}"), "Version": version, "Updateable": true})
    })
    .await
}

async fn not_found(f: &Fleet, h: &HeaderMap, i: usize) -> Response {
    let resp = answer(f, h, i, || json!({})).await;
    if resp.status() != StatusCode::OK {
        return resp;
    }
    error(StatusCode::NOT_FOUND, "no such resource")
}

fn task_json(f: &SimFleet, id: usize, t: &SimTask) -> Value {
    let messages = &t.messages;
    let mut v = json!({
        "@odata.id": format!("/redfish/v1/TaskService/Tasks/{id}"),
        "@odata.type": "#Task.v1_4_3.Task",
        "Id": id.to_string(),
        "Name": "Firmware update (simulated)",
        "TaskState": t.state,
        "TaskStatus": t.status,
        "PercentComplete": t.percent,
        "Messages": messages
    });
    if f.list_tasks.load(Ordering::Relaxed) {
        v["Payload"] = json!({
            "HttpOperation": "POST",
            "TargetUri": "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
            "JsonBody": t.payload.to_string()
        });
    }
    v
}

/// The task collection, where the fleet lists tasks.
async fn tasks(State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>) -> Response {
    if !f.list_tasks.load(Ordering::Relaxed) {
        return not_found(&f, &h, i).await;
    }
    let n = f.with(i, |s| s.tasks.len());
    answer(&f, &h, i, || {
        let m: Vec<Value> =
            (1..=n).map(|t| link(&format!("/redfish/v1/TaskService/Tasks/{t}"))).collect();
        json!({"@odata.id": "/redfish/v1/TaskService/Tasks", "Members": m})
    })
    .await
}

async fn task(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path((i, t)): Path<(usize, String)>,
) -> Response {
    let id = t.parse::<usize>().ok();
    let found = id.and_then(|id| f.with(i, |s| s.tasks.get(id.wrapping_sub(1)).cloned()));
    match (id, found) {
        (Some(id), Some(task)) => answer(&f, &h, i, || task_json(&f, id, &task)).await,
        _ => not_found(&f, &h, i).await,
    }
}

/// Starts a task that fetches the image and installs it; answers 202 with
/// the task (and its monitor in `Location`). One target per update, and
/// one update at a time: while one runs, another is refused with 503 and a
/// `Retry-After` (as OpenBMC's bmcweb does).
async fn simple_update(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path(i): Path<usize>,
    Json(v): Json<Value>,
) -> Response {
    let resp = answer(&f, &h, i, || json!({})).await;
    if resp.status() != StatusCode::OK {
        return resp;
    }
    let Some(image) = v["ImageURI"].as_str().filter(|s| !s.is_empty()).map(str::to_string) else {
        return error(StatusCode::BAD_REQUEST, "ImageURI required");
    };
    let targets: Vec<&str> = v["Targets"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let [target] = targets.as_slice() else {
        return error(
            StatusCode::BAD_REQUEST,
            "the simulated BMC updates exactly one target at a time",
        );
    };
    if f.with(i, |s| s.tasks.iter().any(|t| t.state == "Running")) {
        let mut busy = error(StatusCode::SERVICE_UNAVAILABLE, "an update is already in progress");
        busy.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
        return busy;
    }
    let component =
        target.trim_end_matches('/').strip_prefix(&format!("{INVENTORY}/")).map(str::to_string);
    let Some(component) = component.filter(|c| f.with(i, |s| s.firmware.contains_key(c))) else {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("{target} is not a component of this BMC's firmware inventory"),
        );
    };
    let (id, task) = f.with(i, |s| {
        let t = SimTask {
            state: "Running".into(),
            status: "OK".into(),
            percent: 0,
            messages: vec![json!({"Message": format!("fetching {image}")})],
            payload: v.clone(),
        };
        s.tasks.push(t.clone());
        (s.tasks.len(), t)
    });
    let fleet = f.clone();
    let flash = f.boot_delay;
    let request = v.clone();
    std::thread::spawn(move || {
        std::thread::sleep(fleet.wait_of(i, flash));
        let end = install(&fleet, i, &component, &image, request);
        fleet.with(i, |s| {
            if let Some(t) = s.tasks.get_mut(id - 1) {
                *t = end;
            }
        });
    });
    if let Some(lost) = lost(&f, i, "firmware_update") {
        return lost;
    }
    let monitor = format!("/redfish/v1/TaskService/Tasks/{id}/Monitor");
    (StatusCode::ACCEPTED, [(header::LOCATION, monitor)], Json(task_json(&f, id, &task)))
        .into_response()
}

/// Fetches the package and installs it: the BMC's own firmware at once,
/// the host's at its next power-on. The task as it ends, started by
/// `payload`.
fn install(f: &Fleet, i: usize, component: &str, image: &str, payload: Value) -> SimTask {
    let failed = |m: String| SimTask {
        state: "Exception".into(),
        status: "Critical".into(),
        percent: 0,
        messages: vec![json!({"Message": m})],
        payload: payload.clone(),
    };
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
    let body: Value = match agent.get(image).call().map(|r| r.into_json::<Value>()) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return failed(format!("{image}: not a SIMULATED firmware package: {e}")),
        Err(e) => return failed(format!("{image}: download failed: {e}")),
    };
    let p = &body["simulated_firmware"];
    let (Some(for_component), Some(version)) = (p["component"].as_str(), p["version"].as_str())
    else {
        return failed(format!("{image}: not a SIMULATED firmware package"));
    };
    if for_component != component {
        return failed(format!("{image} is firmware for {for_component}, not {component}"));
    }
    let (c, v) = (component.to_string(), version.to_string());
    let announce = f.announce_resets.load(Ordering::Relaxed);
    let messages = f.with(i, |s| {
        if component == "BMC" {
            s.firmware.insert(c, v);
            vec![json!({"Message": format!("{component} {version} installed")})]
        } else if component.starts_with("HGX_") {
            s.firmware_chassis_pending.insert(c, v);
            let action = format!("{CHASSIS}/Actions/Chassis.Reset");
            let staged = json!({"Message": format!("{component} {version} staged: activates at an AC power cycle of the chassis")});
            if !announce {
                return vec![staged];
            }
            vec![
                staged,
                json!({
                    "MessageId": "Base.1.16.0.ResetRequired",
                    "Message": format!("In order to complete the operation, a component reset is required with the Reset action URI '{action}' and ResetType 'PowerCycle'."),
                    "MessageArgs": [action, "PowerCycle"],
                    "Severity": "Warning"
                }),
            ]
        } else {
            s.firmware_pending.insert(c, v);
            vec![json!({"Message": format!("{component} {version} staged: applies at the next power-on")})]
        }
    });
    SimTask { state: "Completed".into(), status: "OK".into(), percent: 100, messages, payload }
}
