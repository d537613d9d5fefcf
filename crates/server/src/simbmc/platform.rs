//! The simulated platform settings a tenant can change from the host:
//! Secure Boot, the BIOS attributes (in effect and pending), the UEFI boot
//! options, the BMC's local accounts and its host interface.

use super::fleet::{Sim, READ_ONLY_BIOS};
use super::{act, answer, done, error, link, refusal, Fleet, USER};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

pub(super) fn routes() -> Router<Fleet> {
    Router::new()
        .route(
            "/simbmc/{i}/redfish/v1/Managers",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || json!({"Members": [link("/redfish/v1/Managers/BMC")]})).await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Managers/BMC",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || {
                    json!({"@odata.id": "/redfish/v1/Managers/BMC", "Id": "BMC",
                           "ManagerType": "BMC",
                           "HostInterfaces": link("/redfish/v1/Managers/BMC/HostInterfaces")})
                })
                .await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Managers/BMC/HostInterfaces",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || {
                    json!({"Members": [link("/redfish/v1/Managers/BMC/HostInterfaces/1")]})
                })
                .await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Managers/BMC/HostInterfaces/1",
            get(host_interface).patch(patch_host_interface),
        )
        .route("/simbmc/{i}/redfish/v1/Systems/Host/Bios", get(bios))
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/BootOptions",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                let refs: Vec<String> =
                    f.with(i, |s| s.boot_options.iter().map(|o| o.reference.clone()).collect());
                answer(&f, &h, i, || {
                    let members: Vec<Value> = refs
                        .iter()
                        .map(|r| link(&format!("/redfish/v1/Systems/Host/BootOptions/{r}")))
                        .collect();
                    json!({"Members@odata.count": members.len(), "Members": members})
                })
                .await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/BootOptions/{r}",
            get(boot_option).patch(patch_boot_option),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/Bios/Settings",
            get(bios_settings).patch(patch_bios_settings),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/SecureBoot",
            get(secure_boot).patch(patch_secure_boot),
        )
        .route(
            "/simbmc/{i}/redfish/v1/AccountService",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || json!({"Id": "AccountService", "Accounts": link("/redfish/v1/AccountService/Accounts")})).await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/AccountService/Accounts",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                let n = f.with(i, |s| s.accounts.len());
                answer(&f, &h, i, || {
                    let m: Vec<Value> =
                        (1..=n).map(|a| link(&format!("/redfish/v1/AccountService/Accounts/{a}"))).collect();
                    json!({"Members": m})
                })
                .await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/AccountService/Accounts/{a}",
            get(account).patch(patch_account),
        )
}

async fn secure_boot(State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>) -> Response {
    let on = f.with(i, |s| s.secure_boot);
    answer(&f, &h, i, || {
        json!({"@odata.id": "/redfish/v1/Systems/Host/SecureBoot", "Id": "SecureBoot",
               "SecureBootEnable": on, "SecureBootMode": "DeployedMode"})
    })
    .await
}

async fn patch_secure_boot(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path(i): Path<usize>,
    Json(v): Json<Value>,
) -> Response {
    act(&f, &h, i, "secure_boot", |s| {
        if let Some(on) = v["SecureBootEnable"].as_bool() {
            s.secure_boot = on;
        }
    })
    .await
}

async fn boot_option(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path((i, r)): Path<(usize, String)>,
) -> Response {
    let Some(o) = f.with(i, |s| s.boot_options.iter().find(|o| o.reference == r).cloned()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    answer(&f, &h, i, || {
        json!({"@odata.id": format!("/redfish/v1/Systems/Host/BootOptions/{r}"), "Id": r,
               "BootOptionReference": o.reference, "DisplayName": o.name,
               "UefiDevicePath": o.device_path, "BootOptionEnabled": o.enabled})
    })
    .await
}

async fn patch_boot_option(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path((i, r)): Path<(usize, String)>,
    Json(v): Json<Value>,
) -> Response {
    act(&f, &h, i, "boot_option", |s| {
        if let (Some(o), Some(on)) =
            (s.boot_options.iter_mut().find(|o| o.reference == r), v["BootOptionEnabled"].as_bool())
        {
            o.enabled = on;
        }
    })
    .await
}

async fn bios(State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>) -> Response {
    let attrs = f.with(i, |s| s.bios.clone());
    answer(&f, &h, i, || {
        json!({"@odata.id": "/redfish/v1/Systems/Host/Bios", "Id": "Bios", "Attributes": attrs,
               "@Redfish.Settings": {
                   "SettingsObject": link("/redfish/v1/Systems/Host/Bios/Settings"),
                   "SupportedApplyTimes": ["OnReset"]}})
    })
    .await
}

async fn bios_settings(State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>) -> Response {
    let attrs = f.with(i, |s| s.bios_pending.clone());
    answer(&f, &h, i, || {
        json!({"@odata.id": "/redfish/v1/Systems/Host/Bios/Settings", "Id": "Settings",
               "Attributes": attrs})
    })
    .await
}

/// Pending values, applied at the next power-on (unknown names refused,
/// as BMCs check them against their attribute registry).
async fn patch_bios_settings(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path(i): Path<usize>,
    Json(v): Json<Value>,
) -> Response {
    let Some(attrs) = v["Attributes"].as_object().cloned() else {
        return error(StatusCode::BAD_REQUEST, "Attributes missing");
    };
    if let Some(r) = refusal(&f, &h, i).await {
        return r;
    }
    let refused =
        |k: &String, s: &Sim| !s.bios.contains_key(k) || READ_ONLY_BIOS.contains(&k.as_str());
    let unknown = f.with(i, |s| match attrs.keys().find(|k| refused(k, s)) {
        Some(k) => Some(k.clone()),
        None => {
            s.bios_pending.extend(attrs);
            None
        }
    });
    match unknown {
        Some(k) => error(StatusCode::BAD_REQUEST, &format!("unknown or read-only attribute {k}")),
        None => done(&f, i, "bios_settings"),
    }
}

async fn account(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path((i, a)): Path<(usize, usize)>,
) -> Response {
    let Some(acc) = f.with(i, |s| a.checked_sub(1).and_then(|k| s.accounts.get(k).cloned())) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    answer(&f, &h, i, || {
        json!({"@odata.id": format!("/redfish/v1/AccountService/Accounts/{a}"), "Id": a.to_string(),
               "UserName": acc.user, "RoleId": acc.role, "Enabled": acc.enabled})
    })
    .await
}

async fn patch_account(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path((i, a)): Path<(usize, usize)>,
    Json(v): Json<Value>,
) -> Response {
    act(&f, &h, i, "account", |s| {
        let Some(acc) = a.checked_sub(1).and_then(|k| s.accounts.get_mut(k)) else { return };
        if let Some(on) = v["Enabled"].as_bool() {
            acc.enabled = on;
        }
        if let (Some(pw), true) = (v["Password"].as_str(), acc.user == USER) {
            s.password = pw.to_string();
        }
    })
    .await
}

async fn host_interface(State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>) -> Response {
    let (on, cb) = f.with(i, |s| (s.host_interface, s.credential_bootstrapping));
    answer(&f, &h, i, || {
        json!({"@odata.id": "/redfish/v1/Managers/BMC/HostInterfaces/1", "Id": "1",
               "HostInterfaceType": "NetworkHostInterface", "InterfaceEnabled": on,
               "CredentialBootstrapping": {"Enabled": cb, "EnableAfterReset": cb,
                                           "RoleId": "Administrator"}})
    })
    .await
}

async fn patch_host_interface(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path(i): Path<usize>,
    Json(v): Json<Value>,
) -> Response {
    act(&f, &h, i, "host_interface", |s| {
        if let Some(on) = v["InterfaceEnabled"].as_bool() {
            s.host_interface = on;
        }
        if let Some(on) = v["CredentialBootstrapping"]["Enabled"].as_bool() {
            s.credential_bootstrapping = on;
        }
    })
    .await
}
