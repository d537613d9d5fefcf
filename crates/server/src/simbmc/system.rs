//! The simulated host system: power, the boot override, the persistent
//! boot order, virtual media and the NIC.

use super::{act, answer, done, error, link, mac, refusal, Fleet};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub(super) fn routes() -> Router<Fleet> {
    Router::new()
        .route(
            "/simbmc/{i}/redfish/v1/Systems",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || json!({"Members": [link("/redfish/v1/Systems/Host"), link("/redfish/v1/Systems/HGX_Baseboard_0")]})).await
            }),
        )
        .route("/simbmc/{i}/redfish/v1/Systems/Host", get(host).patch(patch_host))
        .route("/simbmc/{i}/redfish/v1/Systems/Host/Actions/ComputerSystem.Reset", post(reset))
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/VirtualMedia",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || json!({"Members": [link("/redfish/v1/Systems/Host/VirtualMedia/Cd")]})).await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/LogServices",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || json!({"Members": [link("/redfish/v1/Systems/Host/LogServices/SEL")]})).await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/LogServices/SEL",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || json!({"@odata.id": "/redfish/v1/Systems/Host/LogServices/SEL", "Id": "SEL",
                                         "LogEntryType": "SEL",
                                         "Entries": link("/redfish/v1/Systems/Host/LogServices/SEL/Entries"),
                                         "Actions": {"#LogService.ClearLog": {"target": "/redfish/v1/Systems/Host/LogServices/SEL/Actions/LogService.ClearLog"}}})).await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/LogServices/SEL/Actions/LogService.ClearLog",
            post(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                if f.with(i, |s| s.sel_clear_refused) {
                    return error(StatusCode::BAD_REQUEST, "clearing the SEL is not allowed (simulated)");
                }
                act(&f, &h, i, "sel", |s| s.sel.clear()).await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/LogServices/SEL/Entries",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                let (entries, broken) = f.with(i, |s| (s.sel.clone(), s.sel_broken));
                if broken {
                    return error(StatusCode::SERVICE_UNAVAILABLE, "the SEL is unreadable (simulated)");
                }
                answer(&f, &h, i, || json!({"Members": entries})).await
            }),
        )
        .route("/simbmc/{i}/redfish/v1/Systems/Host/VirtualMedia/Cd", get(cd))
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/VirtualMedia/Cd/Actions/VirtualMedia.InsertMedia",
            post(insert_media),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/VirtualMedia/Cd/Actions/VirtualMedia.EjectMedia",
            post(eject_media),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/EthernetInterfaces",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || json!({"Members": [link("/redfish/v1/Systems/Host/EthernetInterfaces/0")]})).await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/EthernetInterfaces/0",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || json!({"@odata.id": "/redfish/v1/Systems/Host/EthernetInterfaces/0", "Id": "0", "MACAddress": mac(i)})).await
            }),
        )
}

async fn host(State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>) -> Response {
    let (power_on, target, enabled, uri, order, status) = f.with(i, |s| {
        (
            s.power_on,
            s.boot_target.clone(),
            s.boot_enabled.clone(),
            s.http_boot_uri.clone(),
            s.boot_order.clone(),
            s.host_status(),
        )
    });
    answer(&f, &h, i, || {
        json!({
            "@odata.id": "/redfish/v1/Systems/Host",
            "Id": "Host",
            "UUID": format!("5e1a0000-0000-4000-8000-{i:012}"),
            "Manufacturer": "neocloud simulator",
            "Model": "Simulated HGX H100",
            "SerialNumber": format!("SIM{i:06}"),
            "PowerState": if power_on { "On" } else { "Off" },
            "Status": status,
            "Boot": {
                "BootSourceOverrideTarget": target,
                "BootSourceOverrideEnabled": enabled,
                "HttpBootUri": uri,
                "BootOrder": order,
                "BootOptions": link("/redfish/v1/Systems/Host/BootOptions"),
                "BootSourceOverrideTarget@Redfish.AllowableValues": ["None", "Pxe", "Cd", "Hdd", "UefiHttp"]
            },
            "Actions": {"#ComputerSystem.Reset": {
                "target": "/redfish/v1/Systems/Host/Actions/ComputerSystem.Reset",
                "ResetType@Redfish.AllowableValues": ["On", "ForceOff", "GracefulShutdown", "ForceRestart"]
            }},
            "MemorySummary": {"TotalSystemMemoryGiB": 2048},
            "TrustedModules": [{"InterfaceType": "TPM2_0", "Status": {"State": "Enabled"}}],
            "VirtualMedia": link("/redfish/v1/Systems/Host/VirtualMedia"),
            "SecureBoot": link("/redfish/v1/Systems/Host/SecureBoot"),
            "Bios": link("/redfish/v1/Systems/Host/Bios"),
            "Links": {"ManagedBy": [link("/redfish/v1/Managers/BMC")]},
            "LogServices": link("/redfish/v1/Systems/Host/LogServices"),
            "EthernetInterfaces": link("/redfish/v1/Systems/Host/EthernetInterfaces")
        })
    })
    .await
}

async fn patch_host(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path(i): Path<usize>,
    Json(v): Json<Value>,
) -> Response {
    act(&f, &h, i, "system", |s| {
        if let Some(t) = v["Boot"]["BootSourceOverrideTarget"].as_str() {
            s.boot_target = t.to_string();
        }
        if let Some(e) = v["Boot"]["BootSourceOverrideEnabled"].as_str() {
            s.boot_enabled = e.to_string();
        }
        if let Some(u) = v["Boot"]["HttpBootUri"].as_str() {
            s.http_boot_uri = Some(u.to_string()).filter(|u| !u.is_empty());
        }
        // A boot order naming options it does not have: kept as is (the
        // read back shows it unchanged).
        if let Some(order) = v["Boot"]["BootOrder"].as_array() {
            let order: Vec<String> =
                order.iter().filter_map(|r| r.as_str().map(str::to_string)).collect();
            if order.iter().all(|r| s.boot_options.iter().any(|o| &o.reference == r)) {
                s.boot_order = order;
            }
        }
    })
    .await
}

async fn cd(State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>) -> Response {
    let media = f.with(i, |s| s.media.clone());
    let base = "/redfish/v1/Systems/Host/VirtualMedia/Cd";
    answer(&f, &h, i, || {
        json!({
            "@odata.id": base,
            "Id": "Cd",
            "MediaTypes": ["CD", "DVD"],
            "Image": media.clone().unwrap_or_default(),
            "Inserted": media.is_some(),
            "Actions": {
                "#VirtualMedia.InsertMedia": {"target": format!("{base}/Actions/VirtualMedia.InsertMedia")},
                "#VirtualMedia.EjectMedia": {"target": format!("{base}/Actions/VirtualMedia.EjectMedia")}
            }
        })
    })
    .await
}

async fn insert_media(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path(i): Path<usize>,
    Json(v): Json<Value>,
) -> Response {
    let Some(image) = v["Image"].as_str().filter(|s| !s.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "Image required");
    };
    act(&f, &h, i, "media", |s| s.media = Some(image.to_string())).await
}

async fn eject_media(State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>) -> Response {
    act(&f, &h, i, "media", |s| s.media = None).await
}

async fn reset(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path(i): Path<usize>,
    Json(v): Json<Value>,
) -> Response {
    let slow = f.reset_delay_ms.load(Ordering::Relaxed);
    if slow > 0 {
        tokio::time::sleep(Duration::from_millis(slow)).await;
    }
    if let Some(r) = refusal(&f, &h, i).await {
        return r;
    }
    let on = match v["ResetType"].as_str() {
        Some("On") | Some("ForceRestart") => true,
        Some("ForceOff") | Some("GracefulShutdown") => false,
        _ => return error(StatusCode::BAD_REQUEST, "unsupported ResetType"),
    };
    let boot = f.with(i, |s| {
        // Whatever ran stops: power went away or the node restarts.
        s.stop_os();
        s.power_on = on;
        if !on {
            s.off_at = Some(neocloud_common::time::now_micros());
            return None;
        }
        // The firmware applies pending BIOS settings as it starts.
        let pending = std::mem::take(&mut s.bios_pending);
        s.bios.extend(pending);
        // And the host firmware an update staged.
        let pending = std::mem::take(&mut s.firmware_pending);
        s.firmware.extend(pending);
        let network = s.boot_enabled != "Disabled"
            && match s.boot_target.as_str() {
                "Pxe" => true,
                // The firmware fetches the iPXE EFI binary it is pointed at
                // (not really: the SIMULATED one needs only to be pointed).
                "UefiHttp" => s.http_boot_uri.is_some(),
                "Cd" => s.media.is_some(),
                _ => false,
            };
        // A virtual-media boot reads the CD the override points at.
        let media = (s.boot_target == "Cd").then(|| s.media.clone()).flatten();
        if s.boot_enabled == "Once" {
            s.boot_enabled = "Disabled".into();
            s.boot_target = "None".into();
        }
        network.then(|| {
            let stop = Arc::new(AtomicBool::new(false));
            s.agent_stop = Some(stop.clone());
            (stop, media)
        })
    });
    if let Some((stop, media)) = boot {
        f.network_boots.fetch_add(1, Ordering::Relaxed);
        f.boot(i, stop, media);
    }
    done(&f, i, &format!("reset {}", v["ResetType"].as_str().unwrap_or_default()))
}
