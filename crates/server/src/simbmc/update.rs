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
use super::{answer, done, error, link, lost, refusal, Fleet};
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

/// The URL of the fleet's bundle that installs `version` on every
/// component it is sent for (as an HGX package updates several), for a
/// fleet served at `base`.
pub fn bundle_url(base: &str, version: &str) -> String {
    format!("{}/simbmc/firmware-bundle/{version}", base.trim_end_matches('/'))
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
            "/simbmc/firmware-bundle/{version}",
            get(|Path(v): Path<String>| async move {
                Json(json!({"simulated_firmware": {"bundle": true, "version": v}}))
            }),
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
                        "MultipartHttpPushUri": PUSH_URI,
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
        .route("/simbmc/{i}/redfish/v1/UpdateService/update-multipart", post(push_update))
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
    if let Some(r) = refusal(&f, &h, i).await {
        return r;
    }
    if v["ResetType"].as_str() != Some("PowerCycle") {
        return error(StatusCode::BAD_REQUEST, "unsupported ResetType (allowed: PowerCycle)");
    }
    f.with(i, |s| {
        s.stop_os();
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
    done(&f, i, "chassis_reset")
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
    if let Some(r) = refusal(f, h, i).await {
        return r;
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
        v["Payload"] = t.payload.clone();
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
/// the task (and its monitor in `Location`). Any number of targets, and
/// one update at a time: while one runs, another is refused with 503 and a
/// `Retry-After` (as OpenBMC's bmcweb does).
async fn simple_update(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path(i): Path<usize>,
    Json(v): Json<Value>,
) -> Response {
    if let Some(r) = refusal(&f, &h, i).await {
        return r;
    }
    let Some(image) = v["ImageURI"].as_str().filter(|s| !s.is_empty()).map(str::to_string) else {
        return error(StatusCode::BAD_REQUEST, "ImageURI required");
    };
    let payload = json!({"HttpOperation": "POST",
        "TargetUri": "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
        "JsonBody": v.to_string()});
    start_update(&f, i, &v, Source::Url(image), payload)
}

/// An upload (`MultipartHttpPushUri`): the `UpdateParameters` part (its
/// `Targets`) and the `UpdateFile` part (a SIMULATED package), installed
/// as [`simple_update`] installs what it fetches.
async fn push_update(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path(i): Path<usize>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = refusal(&f, &h, i).await {
        return r;
    }
    let content_type = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(boundary) = content_type
        .strip_prefix("multipart/form-data")
        .and_then(|rest| rest.split("boundary=").nth(1))
        .map(|b| b.trim_matches('"').to_string())
    else {
        return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "multipart/form-data required");
    };
    let parts = multipart(&body, &boundary);
    let part = |name: &str| parts.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_slice());
    let params: Option<Value> =
        part("UpdateParameters").and_then(|b| serde_json::from_slice(b).ok());
    let (Some(params), Some(file)) = (params, part("UpdateFile")) else {
        return error(StatusCode::BAD_REQUEST, "UpdateParameters and UpdateFile parts required");
    };
    let package = serde_json::from_slice(file).unwrap_or(Value::Null);
    let payload = json!({"HttpOperation": "POST", "TargetUri": PUSH_URI,
        "JsonBody": params.to_string()});
    start_update(&f, i, &params, Source::Package(package), payload)
}

/// Where the simulated BMC takes uploads.
const PUSH_URI: &str = "/redfish/v1/UpdateService/update-multipart";

/// The parts of a `multipart/form-data` body: each one's name and content.
fn multipart(body: &[u8], boundary: &str) -> Vec<(String, Vec<u8>)> {
    let delimiter = format!("--{boundary}");
    let d = delimiter.as_bytes();
    let mut starts = Vec::new();
    let mut at = 0;
    while let Some(k) = body[at..].windows(d.len()).position(|w| w == d) {
        starts.push(at + k);
        at += k + d.len();
    }
    let mut parts = Vec::new();
    for w in starts.windows(2) {
        let part = &body[w[0] + d.len()..w[1]];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let Some(split) = part.windows(4).position(|x| x == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&part[..split]);
        let disposition =
            head.lines().find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"));
        let name = disposition.and_then(|d| {
            d.split(';').find_map(|kv| {
                kv.trim().strip_prefix("name=").map(|n| n.trim_matches('"').to_string())
            })
        });
        if let Some(name) = name {
            parts.push((name, part[split + 4..].to_vec()));
        }
    }
    parts
}

/// What an update installs from.
enum Source {
    /// The BMC fetches it.
    Url(String),
    /// Uploaded with the request.
    Package(Value),
}

/// Starts the task of an update of `request`'s one target from `source`:
/// refused while another runs, or for a target not in the inventory.
fn start_update(f: &Fleet, i: usize, request: &Value, source: Source, payload: Value) -> Response {
    let targets: Vec<&str> = request["Targets"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if targets.is_empty() {
        return error(StatusCode::BAD_REQUEST, "the simulated BMC updates the Targets named");
    }
    if f.with(i, |s| s.tasks.iter().any(|t| t.state == "Running")) {
        let mut busy = error(StatusCode::SERVICE_UNAVAILABLE, "an update is already in progress");
        busy.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
        return busy;
    }
    let mut components = Vec::new();
    for target in targets {
        let component =
            target.trim_end_matches('/').strip_prefix(&format!("{INVENTORY}/")).map(str::to_string);
        let Some(component) = component.filter(|c| f.with(i, |s| s.firmware.contains_key(c)))
        else {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("{target} is not a component of this BMC's firmware inventory"),
            );
        };
        components.push(component);
    }
    let first = match &source {
        Source::Url(image) => format!("fetching {image}"),
        Source::Package(_) => "received the image".to_string(),
    };
    let (id, task) = f.with(i, |s| {
        let t = SimTask {
            state: "Running".into(),
            status: "OK".into(),
            percent: 0,
            messages: vec![json!({"Message": first})],
            payload: payload.clone(),
        };
        s.tasks.push(t.clone());
        s.updated.push(components.clone());
        (s.tasks.len(), t)
    });
    let fleet = f.clone();
    let flash = f.boot_delay;
    std::thread::spawn(move || {
        std::thread::sleep(fleet.wait_of(i, flash));
        let end = install(&fleet, i, &components, source, payload);
        fleet.with(i, |s| {
            if let Some(t) = s.tasks.get_mut(id - 1) {
                *t = end;
            }
        });
    });
    if let Some(lost) = lost(f, i, "firmware_update") {
        return lost;
    }
    let monitor = format!("/redfish/v1/TaskService/Tasks/{id}/Monitor");
    (StatusCode::ACCEPTED, [(header::LOCATION, monitor)], Json(task_json(f, id, &task)))
        .into_response()
}

/// Fetches the package (or takes the one uploaded) and installs it on each
/// of `components` (a bundle on any; a package on its own component only):
/// the BMC's own firmware at once, the HGX baseboard's at the chassis's
/// next AC power cycle, the host's at its next power-on. The task as it
/// ends, started by `payload`.
fn install(f: &Fleet, i: usize, components: &[String], source: Source, payload: Value) -> SimTask {
    let failed = |m: String| SimTask {
        state: "Exception".into(),
        status: "Critical".into(),
        percent: 0,
        messages: vec![json!({"Message": m})],
        payload: payload.clone(),
    };
    let (image, body) = match source {
        Source::Package(v) => ("the uploaded image".to_string(), v),
        Source::Url(image) => {
            if !f.reach_images.load(Ordering::Relaxed) {
                return failed(format!(
                    "{image}: download failed: not reachable from the BMC's network (simulated)"
                ));
            }
            let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
            match agent.get(&image).call().map(|r| r.into_json::<Value>()) {
                Ok(Ok(v)) => (image, v),
                Ok(Err(e)) => {
                    return failed(format!("{image}: not a SIMULATED firmware package: {e}"))
                }
                Err(e) => return failed(format!("{image}: download failed: {e}")),
            }
        }
    };
    let p = &body["simulated_firmware"];
    let bundle = p["bundle"].as_bool() == Some(true);
    let Some(version) = p["version"].as_str() else {
        return failed(format!("{image}: not a SIMULATED firmware package"));
    };
    if !bundle {
        let for_component = p["component"].as_str().unwrap_or("");
        if let Some(other) = components.iter().find(|c| *c != for_component) {
            return failed(format!("{image} is firmware for {for_component}, not {other}"));
        }
    }
    let announce = f.announce_resets.load(Ordering::Relaxed);
    let mut messages = Vec::new();
    let mut power_cycle = false;
    f.with(i, |s| {
        for component in components {
            let (c, v) = (component.clone(), version.to_string());
            if component == "BMC" {
                s.firmware.insert(c, v);
                messages.push(json!({"Message": format!("{component} {version} installed")}));
            } else if component.starts_with("HGX_") {
                s.firmware_chassis_pending.insert(c, v);
                power_cycle = true;
                messages.push(json!({"Message": format!("{component} {version} staged: activates at an AC power cycle of the chassis")}));
            } else {
                s.firmware_pending.insert(c, v);
                messages.push(json!({"Message": format!("{component} {version} staged: applies at the next power-on")}));
            }
        }
    });
    if power_cycle && announce {
        let action = format!("{CHASSIS}/Actions/Chassis.Reset");
        messages.push(json!({
            "MessageId": "Base.1.16.0.ResetRequired",
            "Message": format!("In order to complete the operation, a component reset is required with the Reset action URI '{action}' and ResetType 'PowerCycle'."),
            "MessageArgs": [action, "PowerCycle"],
            "Severity": "Warning"
        }));
    }
    SimTask { state: "Completed".into(), status: "OK".into(), percent: 100, messages, payload }
}
