//! The simulated hardware inventory: an HGX baseboard with 8 simulated
//! H100 GPUs and their memory (the firmware inventory: `update`).

use super::{answer, link, Fleet};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

const GPUS: usize = 8;

pub(super) fn routes() -> Router<Fleet> {
    Router::new()
        .route(
            "/simbmc/{i}/redfish/v1/Systems/HGX_Baseboard_0",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || json!({"Id": "HGX_Baseboard_0", "Processors": link("/redfish/v1/Systems/HGX_Baseboard_0/Processors"),
                                         "Memory": link("/redfish/v1/Systems/HGX_Baseboard_0/Memory")})).await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/HGX_Baseboard_0/Processors",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || {
                    let m: Vec<Value> = (1..=GPUS)
                        .map(|g| link(&format!("/redfish/v1/Systems/HGX_Baseboard_0/Processors/GPU_SXM_{g}")))
                        .collect();
                    json!({"Members": m})
                })
                .await
            }),
        )
        .route("/simbmc/{i}/redfish/v1/Systems/HGX_Baseboard_0/Processors/{gpu}", get(gpu))
        .route(
            "/simbmc/{i}/redfish/v1/Systems/HGX_Baseboard_0/Memory",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || {
                    let m: Vec<Value> = (1..=GPUS)
                        .map(|g| link(&format!("/redfish/v1/Systems/HGX_Baseboard_0/Memory/GPU_SXM_{g}_DRAM_0")))
                        .collect();
                    json!({"Members": m})
                })
                .await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/HGX_Baseboard_0/Memory/{dram}",
            get(|State(f): State<Fleet>, h: HeaderMap, Path((i, d)): Path<(usize, String)>| async move {
                answer(&f, &h, i, || json!({"@odata.id": format!("/redfish/v1/Systems/HGX_Baseboard_0/Memory/{d}"), "Id": d, "CapacityMiB": 81559})).await
            }),
        )
}

async fn gpu(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path((i, g)): Path<(usize, String)>,
) -> Response {
    let status = f.with(i, |s| s.status_of(&g));
    answer(&f, &h, i, || {
        json!({
            "@odata.id": format!("/redfish/v1/Systems/HGX_Baseboard_0/Processors/{g}"),
            "Status": status,
            "Id": g,
            "ProcessorType": "GPU",
            "Manufacturer": "NVIDIA",
            "Model": "NVIDIA H100 80GB HBM3 (simulated)",
            "SerialNumber": format!("SIMGPU{i:06}-{g}"),
            "UUID": format!("GPU-5e1a{i:04}-{}", g.trim_start_matches("GPU_SXM_")),
            "Oem": {"Nvidia": {"MIGModeEnabled": false}}
        })
    })
    .await
}
