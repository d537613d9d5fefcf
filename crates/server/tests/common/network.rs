//! Fixtures for the tenant-network tests: placement-only nodes, a catalog
//! to create bare-metal instances from, tenants with a project `p`.

use super::Client;
use serde_json::json;

/// Nodes `n1`..`n{count}` (no BMC: available at once, placement only).
pub fn nodes(a: &Client, count: usize) {
    for i in 1..=count {
        a.post(
            "/v1/nodes",
            &json!({"name": format!("n{i}"), "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                    "gpu_model": "h100-80gb", "gpus": 8}),
        )
        .expect(201);
    }
}

/// Instance type `bm` (a whole node) and images `os` and `sanitizer`.
pub fn catalog(a: &Client) {
    a.post(
        "/v1/instance-types",
        &json!({"name": "bm", "kind": "bare_metal", "gpu_model": "h100-80gb"}),
    )
    .expect(201);
    for (name, purpose) in [("os", "tenant"), ("sanitizer", "sanitizer")] {
        a.post(
            "/v1/images",
            &json!({"name": name, "purpose": purpose, "kernel_url": "http://img.local/k",
                    "initrd_url": "http://img.local/i"}),
        )
        .expect(201);
    }
}

/// Tenant `name` with a quota of `nodes` nodes and project `p`.
pub fn tenant(a: &Client, name: &str, nodes: u32) {
    a.post("/v1/tenants", &json!({"name": name})).expect(201);
    a.put(
        &format!("/v1/tenants/{name}/quotas"),
        &json!({"generation": 1, "limits": {"nodes": nodes, "gpu:h100-80gb": 8 * nodes}}),
    )
    .expect(200);
    a.post(&format!("/v1/tenants/{name}/projects"), &json!({"name": "p"})).expect(201);
}
