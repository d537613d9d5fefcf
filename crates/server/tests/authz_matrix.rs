//! Walks every route of the served OpenAPI document, for every role, against
//! the caller's own tenant (and project), a sibling project in the same
//! tenant, and another tenant. Fails when a route has no rule, when any
//! cross-tenant request gets past authorization, or when the matrix differs
//! from `tests/snapshots/authz_matrix.txt` (regenerate with
//! `NEOCLOUD_UPDATE_SNAPSHOTS=1` and review the diff).
//!
//! Requests must not change what later requests see, so every object a
//! request may delete is created fresh for it, updates carry a stale
//! generation (allowed -> 409, nothing changes), and deletes of tenants and
//! projects hit non-empty ones (allowed -> 409).

mod common;

use common::{Client, TestBackend, TestServer};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn uniq(prefix: &str) -> String {
    format!("{prefix}{}", SEQ.fetch_add(1, Ordering::SeqCst))
}

const STALE: i64 = 1_000_000;

/// A provisioning network's name and create body, on a /24 of its own.
fn provisioning_network() -> (String, serde_json::Value) {
    let i = SEQ.fetch_add(1, Ordering::SeqCst);
    let (hi, lo) = (i / 256 % 256, i % 256);
    let n = format!("pn{i}");
    let body = json!({"name": n, "subnet": format!("10.{hi}.{lo}.0/24"),
                      "first": format!("10.{hi}.{lo}.10"), "last": format!("10.{hi}.{lo}.20")});
    (n, body)
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Where {
    Own,
    Sibling,
    Other,
}

impl Where {
    fn as_str(self) -> &'static str {
        match self {
            Where::Own => "own",
            Where::Sibling => "sibling",
            Where::Other => "other",
        }
    }
}

struct Fixture {
    admin: Client,
}

struct Principal {
    role: &'static str,
    client: Client,
    /// A tenant principal: must never get past authorization in another tenant.
    tenant_scoped: bool,
}

impl Fixture {
    fn tenant_of(&self, w: Where) -> &'static str {
        match w {
            Where::Own | Where::Sibling => "ta",
            Where::Other => "tb",
        }
    }

    fn project_of(&self, w: Where) -> &'static str {
        match w {
            Where::Own => "pa",
            Where::Sibling => "pa2",
            Where::Other => "pb",
        }
    }

    fn user(&self, tenant: &str) -> String {
        let n = uniq("u");
        self.admin.post(&format!("/v1/tenants/{tenant}/users"), &json!({"name": n})).expect(201);
        n
    }

    fn provider_user(&self) -> String {
        let n = uniq("pu");
        self.admin.post("/v1/users", &json!({"name": n, "role": "provider-viewer"})).expect(201);
        n
    }

    fn membership(&self, tenant: &str) -> String {
        let u = self.user(tenant);
        let m = self
            .admin
            .post(
                &format!("/v1/tenants/{tenant}/memberships"),
                &json!({"user": u, "role": "tenant-viewer"}),
            )
            .expect(201);
        m.body["id"].as_str().unwrap().to_string()
    }

    fn tenant_token(&self, tenant: &str) -> String {
        let u = self.user(tenant);
        let t = self
            .admin
            .post(&format!("/v1/tenants/{tenant}/tokens"), &json!({"name": "fx", "user": u}))
            .expect(201);
        t.body["token"]["id"].as_str().unwrap().to_string()
    }

    /// A fresh 8-GPU node (capacity never runs out during the walk).
    fn node(&self) -> String {
        let n = uniq("node");
        self.admin
            .post(
                "/v1/nodes",
                &json!({"name": n, "site": "s1", "pod": "pod1", "su": "su1", "rack": "r1",
                        "gpu_model": "h100-80gb", "gpus": 8, "mig_capable": true}),
            )
            .expect(201);
        n
    }

    /// The shared fabric `fx` re-cabled so every node has `eth0` on a leaf
    /// (an instance placed anywhere can be attached).
    fn cable_all(&self) {
        let f = self.admin.get("/v1/fabrics/fx").expect(200).body;
        let nodes = self.admin.get("/v1/nodes").expect(200).body;
        let links: Vec<Value> = nodes["items"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, n)| json!({"node": n["id"], "nic": "eth0", "switch": "leaf1", "port": format!("p{}", i + 1)}))
            .collect();
        let mut doc = fabric_doc(links);
        doc["generation"] = f["generation"].clone();
        self.admin.put("/v1/fabrics/fx", &doc).expect(200);
    }

    /// A fresh VPC on `fx` with networks `a` and `b`.
    fn vpc(&self, tenant: &str, project: &str) -> String {
        let n = uniq("vpc");
        let base = format!("/v1/tenants/{tenant}/projects/{project}/vpcs");
        self.admin.post(&base, &json!({"name": n, "fabric": "fx"})).expect(201);
        for (net, cidr) in [("a", "10.0.0.0/24"), ("b", "10.1.0.0/24")] {
            self.admin
                .post(&format!("{base}/{n}/networks"), &json!({"name": net, "cidr": cidr}))
                .expect(201);
        }
        n
    }

    /// A fresh instance attached to network `a` of the VPC: the attachment id.
    fn attachment(&self, tenant: &str, project: &str, vpc: &str) -> String {
        let i = self.instance(tenant, project, true);
        let a = self
            .admin
            .post(
                &format!(
                    "/v1/tenants/{tenant}/projects/{project}/vpcs/{vpc}/networks/a/attachments"
                ),
                &json!({"instance": i}),
            )
            .expect(201);
        a.body["id"].as_str().unwrap().to_string()
    }

    /// A fresh instance on a fresh node (cabled to the leaf where `cabled`,
    /// for an attachment): its id.
    fn instance(&self, tenant: &str, project: &str, cabled: bool) -> String {
        self.node();
        if cabled {
            self.cable_all();
        }
        let i = self
            .admin
            .post(
                &format!("/v1/tenants/{tenant}/projects/{project}/instances"),
                &json!({"name": uniq("i"), "instance_type": "bm-1", "image": "os-1"}),
            )
            .expect(201);
        i.body["items"][0]["id"].as_str().unwrap().to_string()
    }

    fn claim(&self, tenant: &str, project: &str) -> String {
        let c = self
            .admin
            .post(
                &format!("/v1/tenants/{tenant}/projects/{project}/claims"),
                &json!({"resources": {"nodes": 1}}),
            )
            .expect(201);
        c.body["id"].as_str().unwrap().to_string()
    }

    /// The path with its parameters filled for `who` acting on `w`, and a body.
    fn request(
        &self,
        op_id: &str,
        path: &str,
        who: &Principal,
        w: Where,
    ) -> (String, Option<Value>) {
        let tenant = self.tenant_of(w);
        let project = self.project_of(w);
        let mut p = path.replace("{tenant}", tenant).replace("{project}", project);
        if p.contains("{user}") {
            let u = if path.starts_with("/v1/users/") {
                self.provider_user()
            } else {
                self.user(tenant)
            };
            p = p.replace("{user}", &u);
        }
        if p.contains("{membership}") {
            p = p.replace("{membership}", &self.membership(tenant));
        }
        if p.contains("{token}") {
            let id = if path.starts_with("/v1/tokens/") {
                // The caller's own token (a fresh one), or someone else's.
                match (w, &who.client.token) {
                    (Where::Own | Where::Sibling, Some(_)) => {
                        let t = who
                            .client
                            .post("/v1/tokens", &json!({"name": uniq("own")}))
                            .expect(201);
                        t.body["token"]["id"].as_str().unwrap().to_string()
                    }
                    _ => self.tenant_token("tb"),
                }
            } else {
                self.tenant_token(tenant)
            };
            p = p.replace("{token}", &id);
        }
        if p.contains("{node}") {
            p = p.replace("{node}", &self.node());
        }
        if p.contains("{instance_type}") {
            let n = uniq("it");
            self.admin
                .post(
                    "/v1/instance-types",
                    &json!({"name": n, "kind": "vm", "gpu_model": "h100-80gb", "gpus": 1}),
                )
                .expect(201);
            p = p.replace("{instance_type}", &n);
        }
        if p.contains("{allocation}") {
            self.node();
            let a = self
                .admin
                .post(
                    &format!("/v1/tenants/{tenant}/projects/{project}/allocations"),
                    &json!({"instance_type": "vm-1"}),
                )
                .expect(201);
            p = p.replace("{allocation}", a.body["id"].as_str().unwrap());
        }
        if p.contains("{reservation}") {
            self.node();
            let a = self
                .admin
                .post(
                    &format!("/v1/tenants/{tenant}/projects/{project}/reservations"),
                    &json!({"instance_type": "vm-1"}),
                )
                .expect(201);
            p = p.replace("{reservation}", a.body["id"].as_str().unwrap());
        }
        if p.contains("{image}") {
            let n = uniq("img");
            self.admin
                .post(
                    "/v1/images",
                    &json!({"name": n, "kernel_url": "http://img/k", "initrd_url": "http://img/i"}),
                )
                .expect(201);
            p = p.replace("{image}", &n);
        }
        if p.contains("{firmware_baseline}") {
            // Fresh (it may be deleted), for a model of its own.
            let n = uniq("fw");
            self.admin
                .post(
                    "/v1/firmware-baselines",
                    &json!({"name": n, "model": n, "components": {"BMC": "1.0"}}),
                )
                .expect(201);
            p = p.replace("{firmware_baseline}", &n);
        }
        if p.contains("{provisioning_network}") {
            // Fresh (it may be deleted), on a subnet of its own.
            let (n, body) = provisioning_network();
            self.admin.post("/v1/provisioning-networks", &body).expect(201);
            p = p.replace("{provisioning_network}", &n);
        }
        if p.contains("{instance}") {
            p = p.replace("{instance}", &self.instance(tenant, project, false));
        }
        if p.contains("{claim}") {
            p = p.replace("{claim}", &self.claim(tenant, project));
        }
        if p.contains("{fabric}") {
            // Fresh and empty: it may be deleted.
            let n = uniq("fab");
            self.admin.put(&format!("/v1/fabrics/{n}"), &fabric_doc(Vec::new())).expect(201);
            p = p.replace("{fabric}", &n);
        }
        let mut vpc = None;
        if p.contains("{vpc}") || op_id == "vpc_create" {
            let v = self.vpc(tenant, project);
            p = p.replace("{vpc}", &v);
            vpc = Some(v);
        }
        if p.contains("{network}") {
            // A fresh one (it may be deleted): in the fresh VPC.
            let base =
                format!("/v1/tenants/{tenant}/projects/{project}/vpcs/{}", vpc.clone().unwrap());
            let n = uniq("net");
            self.admin
                .post(&format!("{base}/networks"), &json!({"name": n, "cidr": "10.5.0.0/24"}))
                .expect(201);
            if p.contains("{attachment}") {
                self.admin.delete(&format!("{base}/networks/{n}")).expect(204);
                p = p.replace("{network}", "a");
            } else {
                p = p.replace("{network}", &n);
            }
        }
        if p.contains("{attachment}") {
            let a = self.attachment(tenant, project, vpc.as_deref().unwrap());
            p = p.replace("{attachment}", &a);
        }
        if p.contains("{rule}") {
            let r = self
                .admin
                .post(
                    &format!(
                        "/v1/tenants/{tenant}/projects/{project}/vpcs/{}/rules",
                        vpc.clone().unwrap()
                    ),
                    &json!({"from": "a", "to": "b", "protocol": "tcp"}),
                )
                .expect(201);
            p = p.replace("{rule}", r.body["id"].as_str().unwrap());
        }
        if p.contains("{floating_ip}") {
            let v = vpc.clone().unwrap();
            let a = self.attachment(tenant, project, &v);
            let f = self
                .admin
                .post(
                    &format!("/v1/tenants/{tenant}/projects/{project}/vpcs/{v}/floating-ips"),
                    &json!({"attachment": a, "allow": [{"protocol": "tcp", "ports": {"first": 22, "last": 22}}]}),
                )
                .expect(201);
            p = p.replace("{floating_ip}", f.body["id"].as_str().unwrap());
        }
        assert!(!p.contains('{'), "unfilled parameter in {p}");
        let body = match op_id {
            "tenant_create" | "project_create" | "user_create" => Some(json!({"name": uniq("n")})),
            "provider_user_create" => Some(json!({"name": uniq("n"), "role": "provider-viewer"})),
            "tenant_update" | "project_update" | "user_update" | "provider_user_update" => {
                Some(json!({"generation": STALE}))
            }
            "membership_create" => {
                Some(json!({"user": self.user(tenant), "role": "tenant-viewer"}))
            }
            "membership_update" => Some(json!({"generation": STALE, "role": "tenant-viewer"})),
            "token_create" => Some(json!({"name": uniq("t"), "user": self.user(tenant)})),
            "own_token_create" | "provider_user_token_create" => Some(json!({"name": uniq("t")})),
            "provider_quota_update" | "tenant_quota_update" | "project_quota_update" => {
                Some(json!({"generation": STALE, "limits": {"nodes": 5}}))
            }
            "claim_create" => Some(json!({"resources": {"nodes": 1}})),
            "node_create" => {
                Some(json!({"name": uniq("n"), "site": "s1", "pod": "pod1", "su": "su1",
                "rack": "r1", "gpu_model": "h100-80gb", "gpus": 8}))
            }
            "node_update" => Some(json!({"generation": STALE, "availability": "maintenance"})),
            "node_inspect" => Some(json!({})),
            "instance_type_create" => {
                Some(json!({"name": uniq("t"), "kind": "bare_metal", "gpu_model": "h100-80gb"}))
            }
            "instance_type_update" => Some(json!({"generation": STALE})),
            "allocation_create" | "reservation_create" => Some(json!({"instance_type": "vm-1"})),
            "image_create" => Some(
                json!({"name": uniq("img"), "kernel_url": "http://img/k", "initrd_url": "http://img/i"}),
            ),
            "firmware_baseline_create" => {
                let n = uniq("fw");
                Some(json!({"name": n, "model": n, "components": {"BMC": "1.0"}}))
            }
            "firmware_baseline_update" => Some(json!({"generation": STALE})),
            "provisioning_network_create" => Some(provisioning_network().1),
            "provisioning_network_update" => Some(json!({"generation": STALE})),
            "instance_create" => {
                self.node();
                Some(json!({"name": uniq("i"), "instance_type": "bm-1", "image": "os-1"}))
            }
            // Not ready (pending): 409 past authorization.
            "instance_power" => Some(json!({"action": "reboot"})),
            "instance_rebuild" => Some(json!({})),
            "instance_release_many" => {
                Some(json!({"instances": [self.instance(tenant, project, false)]}))
            }
            "fabric_plan_proposed" => Some(fabric_doc(Vec::new())),
            "fabric_put" => {
                let mut doc = fabric_doc(Vec::new());
                doc["generation"] = json!(STALE);
                Some(doc)
            }
            "vpc_create" => Some(json!({"name": uniq("vpc"), "fabric": "fx"})),
            "vpc_update" => Some(json!({"generation": STALE, "nat_gateway": true})),
            "network_create" => Some(json!({"name": uniq("net"), "cidr": "10.2.0.0/24"})),
            "attachment_create" => Some(json!({"instance": self.instance(tenant, project, true)})),
            "security_rule_create" => Some(json!({"from": "a", "to": "b", "protocol": "udp"})),
            "floating_ip_create" => {
                let a = self.attachment(tenant, project, vpc.as_deref().unwrap());
                Some(json!({"attachment": a}))
            }
            _ => None,
        };
        (p, body)
    }
}

/// The fixture fabric's document: a spine, a leaf and a border with an
/// uplink, all SIMULATED switches; `links` cable nodes to the leaf.
fn fabric_doc(links: Vec<Value>) -> Value {
    let sw = |name: &str, role: &str, asn: u32, lo: &str, ports: Value| {
        json!({"name": name, "role": role, "os": "frr", "mgmt_address": lo, "asn": asn,
               "loopback": lo, "fabric_ports": ports, "management": {"transport": "simulated"}})
    };
    let mut border =
        sw("border1", "border", 65103, "10.255.1.3", json!([{"port": "swp49", "peer": "spine1"}]));
    border["uplink"] = json!({"port": "swp60", "address": "192.0.2.2/30", "gateway": "192.0.2.1"});
    json!({
        "kind": "ethernet",
        "pools": {"l2_vni": {"first": 10000, "last": 19999}, "l3_vni": {"first": 50000, "last": 50999},
                  "vlan": {"first": 100, "last": 3999}, "route_target_asn": 65000,
                  "provisioning_vni": 9999, "provisioning_vlan": 4000,
                  "public": ["198.51.100.0/24"]},
        "switches": [
            sw("spine1", "spine", 65000, "10.255.0.1",
               json!([{"port": "swp1", "peer": "leaf1"}, {"port": "swp2", "peer": "border1"}])),
            sw("leaf1", "leaf", 65101, "10.255.1.1", json!([{"port": "swp49", "peer": "spine1"}])),
            border,
        ],
        "links": links,
    })
}

/// What the matrix records: past authorization, or the refusal.
fn classify(op: &str, r: &common::Resp, backend: &str) -> &'static str {
    match r.status {
        200..=299 | 409 => "ok",
        401 => "401",
        403 => "403",
        404 => "404",
        s => panic!(
            "[{backend}] {op}: unexpected status {s} (the matrix's request is wrong?): {}",
            r.text
        ),
    }
}

fn setup(s: &TestServer) -> Vec<Principal> {
    let a = s.admin();
    for t in ["ta", "tb"] {
        a.post("/v1/tenants", &json!({"name": t})).expect(201);
        a.put(
            &format!("/v1/tenants/{t}/quotas"),
            &json!({"generation": 1, "limits": {"nodes": 100000, "gpu:h100-80gb": 100000}}),
        )
        .expect(200);
    }
    for (t, p) in [("ta", "pa"), ("ta", "pa2"), ("tb", "pb")] {
        a.post(&format!("/v1/tenants/{t}/projects"), &json!({"name": p})).expect(201);
        // An active claim keeps the project from being deleted.
        a.post(
            &format!("/v1/tenants/{t}/projects/{p}/claims"),
            &json!({"resources": {"nodes": 1}}),
        )
        .expect(201);
    }
    a.post(
        "/v1/instance-types",
        &json!({"name": "vm-1", "kind": "vm", "gpu_model": "h100-80gb", "gpus": 1}),
    )
    .expect(201);
    a.post(
        "/v1/instance-types",
        &json!({"name": "bm-1", "kind": "bare_metal", "gpu_model": "h100-80gb"}),
    )
    .expect(201);
    for (name, purpose) in [("os-1", "tenant"), ("sanitizer-1", "sanitizer")] {
        a.post(
            "/v1/images",
            &json!({"name": name, "purpose": purpose, "kernel_url": "http://img/k", "initrd_url": "http://img/i"}),
        )
        .expect(201);
    }
    a.put("/v1/fabrics/fx", &fabric_doc(Vec::new())).expect(201);
    a.post("/v1/users", &json!({"name": "viewer", "role": "provider-viewer"})).expect(201);
    let pv = a.post("/v1/users/viewer/tokens", &json!({"name": "t"})).expect(201);
    let mut out = vec![
        Principal { role: "provider-admin", client: a.clone(), tenant_scoped: false },
        Principal {
            role: "provider-viewer",
            client: s.client(pv.body["secret"].as_str().unwrap()),
            tenant_scoped: false,
        },
    ];
    for (name, role, project) in [
        ("admin-a", "tenant-admin", None),
        ("member-a", "tenant-member", None),
        ("viewer-a", "tenant-viewer", None),
        ("pmember-a", "tenant-member", Some("pa")),
        ("pviewer-a", "tenant-viewer", Some("pa")),
    ] {
        let tok = s.user_with_role("ta", name, role, project);
        let label: &'static str = match (role, project) {
            ("tenant-admin", None) => "tenant-admin",
            ("tenant-member", None) => "tenant-member",
            ("tenant-viewer", None) => "tenant-viewer",
            ("tenant-member", Some(_)) => "project-member",
            _ => "project-viewer",
        };
        out.push(Principal { role: label, client: s.client(&tok), tenant_scoped: true });
    }
    out.push(Principal { role: "anonymous", client: s.anonymous(), tenant_scoped: true });
    out
}

fn matrix(s: &TestServer) -> String {
    let backend = s.backend.as_str();
    let principals = setup(s);
    let fx = Fixture { admin: s.admin() };
    let doc = s.anonymous().get("/v1/openapi.json").expect(200).body;
    let ops: BTreeMap<&str, neocloud_server::api::Op> =
        neocloud_server::api::ops().into_iter().map(|o| (o.id, o)).collect();
    let mut out = String::new();
    let paths = doc["paths"].as_object().expect("paths");
    let mut routes: Vec<(String, String)> = Vec::new();
    for (path, methods) in paths {
        for m in methods.as_object().unwrap().keys() {
            routes.push((path.clone(), m.clone()));
        }
    }
    routes.sort();
    assert!(routes.len() >= 40, "[{backend}] only {} routes in the document", routes.len());
    for (path, method) in routes {
        let spec = &doc["paths"][&path][&method];
        let op_id = spec["operationId"].as_str().expect("operationId");
        let op = ops.get(op_id).unwrap_or_else(|| {
            panic!("[{backend}] {method} {path}: no route-table entry (no authz rule)")
        });
        let rule = &spec["x-neocloud-authz"];
        assert_eq!(rule["resource"], op.resource.as_str(), "{op_id}: documented rule differs");
        assert_eq!(rule["action"], op.action.as_str(), "{op_id}: documented rule differs");
        let has_tenant = path.contains("{tenant}");
        let wheres: &[Where] = if path.contains("{project}") {
            &[Where::Own, Where::Sibling, Where::Other]
        } else if has_tenant || path.starts_with("/v1/tokens/") {
            &[Where::Own, Where::Other]
        } else {
            &[Where::Own]
        };
        let _ = writeln!(
            out,
            "{} {path} [{}:{}]",
            method.to_uppercase(),
            op.resource.as_str(),
            op.action.as_str()
        );
        for who in &principals {
            let mut cells = Vec::new();
            for &w in wheres {
                let (p, body) = fx.request(op_id, &path, who, w);
                let r = match &body {
                    Some(b) => who.client.raw(
                        &method.to_uppercase(),
                        &p,
                        Some(b.to_string().as_bytes()),
                        &[],
                    ),
                    None => who.client.raw(&method.to_uppercase(), &p, None, &[]),
                };
                let c = classify(op_id, &r, backend);
                if who.role == "anonymous" {
                    assert_eq!(c, "401", "[{backend}] anonymous {method} {p}");
                }
                if w == Where::Other && who.tenant_scoped {
                    // Another tenant's objects: never reachable, never revealed.
                    assert_eq!(
                        c,
                        if who.role == "anonymous" { "401" } else { "404" },
                        "[{backend}] {} {method} {p} crossed tenants: {}",
                        who.role,
                        r.text
                    );
                }
                if w == Where::Sibling && who.role.starts_with("project-") {
                    assert_eq!(
                        c, "404",
                        "[{backend}] {} reached a sibling project: {method} {p}",
                        who.role
                    );
                }
                cells.push(format!("{}={c}", w.as_str()));
            }
            let _ = writeln!(out, "  {:<15} {}", who.role, cells.join(" "));
        }
    }
    // Lists never show another tenant's objects.
    for who in principals.iter().filter(|p| p.tenant_scoped && p.role != "anonymous") {
        let l = who.client.get("/v1/tenants").expect(200);
        let names: Vec<&str> = l.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["ta"], "[{backend}] {} lists tenants {names:?}", who.role);
        if who.role.starts_with("project-") {
            let l = who.client.get("/v1/tenants/ta/projects").expect(200);
            let names: Vec<&str> = l.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, ["pa"], "[{backend}] {} lists projects {names:?}", who.role);
        }
    }
    out
}

#[test]
fn authorization_matrix_matches_snapshot_on_every_backend() {
    let snapshot = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots/authz_matrix.txt");
    let mut header = String::from(
        "# Authorization matrix: every API route x role x target (own tenant/project,\n\
         # sibling project in the same tenant, other tenant). ok = passed authorization\n\
         # (2xx, or 409 from the deliberately stale/conflicting request); 401/403/404 =\n\
         # refused. Generated by tests/authz_matrix.rs; review every change.\n",
    );
    let mut done = 0;
    for b in TestBackend::ALL {
        // No lifecycle controller: instances on BMC-less fixture nodes stay
        // pending (attachable) instead of failing.
        let Some(s) = TestServer::start_with(b, |c| c.lifecycle_interval_ms = 0) else { continue };
        let m = matrix(&s);
        let full = format!("{header}{m}");
        if std::env::var_os("NEOCLOUD_UPDATE_SNAPSHOTS").is_some() && done == 0 {
            std::fs::create_dir_all(snapshot.parent().unwrap()).unwrap();
            std::fs::write(&snapshot, &full).unwrap();
        }
        let expected = std::fs::read_to_string(&snapshot).unwrap_or_else(|e| {
            panic!("{}: {e}; generate with NEOCLOUD_UPDATE_SNAPSHOTS=1", snapshot.display())
        });
        if expected != full {
            let diff: Vec<String> = expected
                .lines()
                .zip(full.lines())
                .filter(|(a, b)| a != b)
                .take(10)
                .map(|(a, b)| format!("  snapshot: {a}\n  actual:   {b}"))
                .collect();
            panic!(
                "[{}] authorization matrix differs from the snapshot:\n{}",
                b.as_str(),
                diff.join("\n")
            );
        }
        done += 1;
    }
    header.clear();
    assert!(done >= 1);
}
