//! Allocations through the API, on both backends: placement constraints,
//! input errors, refusals that write nothing, the quota ledger, idempotent
//! creates and releases, tenancy, and the audit trail.

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

#[track_caller]
fn check_error(s: &TestServer, what: &str, r: &Resp, status: u16, code: &str, field: Option<&str>) {
    let b = s.backend.as_str();
    assert_eq!(r.status, status, "[{b}] {what}: status; body: {}", r.text);
    let (c, f) = r.error();
    assert_eq!(c, code, "[{b}] {what}: error.code; body: {}", r.text);
    assert_eq!(f.as_deref(), field, "[{b}] {what}: error.field; body: {}", r.text);
}

/// Asserts a placement refusal: 409 conflict, `cannot place (<constraint>)`.
#[track_caller]
fn check_no_fit(s: &TestServer, what: &str, r: &Resp, constraint: &str) -> String {
    check_error(s, what, r, 409, "conflict", None);
    let msg = r.body["error"]["message"].as_str().unwrap_or_default().to_string();
    assert!(
        msg.starts_with(&format!("cannot place ({constraint}): ")),
        "[{}] {what}: message {msg:?}",
        s.backend.as_str()
    );
    msg
}

fn str_of(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_else(|| panic!("no string {k} in {v}")).to_string()
}

const H100: &str = "h100-80gb";
const A100: &str = "a100-80gb";

struct Fleet {
    /// tenant-member of acme.
    alice: Client,
    /// node id -> (name, su, rack)
    nodes: Vec<(String, String, String, String)>,
}

impl Fleet {
    fn node(&self, id: &str) -> (&str, &str, &str) {
        let n = self.nodes.iter().find(|n| n.0 == id).unwrap_or_else(|| panic!("node {id}"));
        (&n.1, &n.2, &n.3)
    }

    fn sus(&self, a: &Value) -> BTreeSet<String> {
        nodes_of(a).iter().map(|id| self.node(id).1.to_string()).collect()
    }
}

/// Five H100 nodes: n1-n3 in SU su-a (racks r1, r1, r2), n4-n5 in su-b
/// (rack r3); two A100 nodes m1, m2 in su-c. Instance types bm, vm-1,
/// vm-2, vm-8, mig-1g (H100) and a-vm-1 (A100). Tenant acme (projects web
/// and ml) with quotas, tenant-member alice.
fn fleet(s: &TestServer) -> Fleet {
    let a = s.admin();
    let mut nodes = Vec::new();
    for (name, su, rack, model) in [
        ("n1", "su-a", "r1", H100),
        ("n2", "su-a", "r1", H100),
        ("n3", "su-a", "r2", H100),
        ("n4", "su-b", "r3", H100),
        ("n5", "su-b", "r3", H100),
        ("m1", "su-c", "r4", A100),
        ("m2", "su-c", "r4", A100),
    ] {
        let n = a
            .post(
                "/v1/nodes",
                &json!({"name": name, "site": "s1", "pod": "p1", "su": su, "rack": rack,
                        "gpu_model": model, "gpus": 8, "mig_capable": true}),
            )
            .expect(201);
        nodes.push((str_of(&n.body, "id"), name.into(), su.into(), rack.into()));
    }
    for (name, body) in [
        ("bm", json!({"kind": "bare_metal", "gpu_model": H100})),
        ("vm-1", json!({"kind": "vm", "gpus": 1, "gpu_model": H100})),
        ("vm-2", json!({"kind": "vm", "gpus": 2, "gpu_model": H100})),
        ("vm-8", json!({"kind": "vm", "gpus": 8, "gpu_model": H100})),
        ("mig-1g", json!({"kind": "mig", "mig_profile": "1g.10gb", "gpu_model": H100})),
        ("a-vm-1", json!({"kind": "vm", "gpus": 1, "gpu_model": A100})),
    ] {
        let mut b = body;
        b["name"] = json!(name);
        a.post("/v1/instance-types", &b).expect(201);
    }
    tenant(
        s,
        "acme",
        json!({"nodes": 100, "gpu:h100-80gb": 1000, "gpu:a100-80gb": 100, "mig:1g.10gb": 100}),
    );
    a.post("/v1/tenants/acme/projects", &json!({"name": "ml"})).expect(201);
    Fleet { alice: s.client(&s.user_with_role("acme", "alice", "tenant-member", None)), nodes }
}

/// A tenant with quota limits and a project `web`.
fn tenant(s: &TestServer, name: &str, limits: Value) {
    let a = s.admin();
    a.post("/v1/tenants", &json!({"name": name})).expect(201);
    a.put(&format!("/v1/tenants/{name}/quotas"), &json!({"generation": 1, "limits": limits}))
        .expect(200);
    a.post(&format!("/v1/tenants/{name}/projects"), &json!({"name": "web"})).expect(201);
}

fn allocs(tenant: &str, project: &str) -> String {
    format!("/v1/tenants/{tenant}/projects/{project}/allocations")
}

fn allocate(c: &Client, body: Value) -> Resp {
    c.post(&allocs("acme", "web"), &body)
}

/// A request for one `it` inside the named pod, SU or rack.
fn within(it: &str, level: &str, name: &str) -> Value {
    json!({"instance_type": it, "constraints": {"within": {"level": level, "name": name}}})
}

fn release(c: &Client, id: &str) -> Resp {
    c.delete(&format!("{}/{id}", allocs("acme", "web")))
}

fn nodes_of(a: &Value) -> Vec<String> {
    a["placement"]["assignments"].as_array().unwrap().iter().map(|x| str_of(x, "node_id")).collect()
}

/// `committed` of each quota resource at a level (a quota path).
fn committed(c: &Client, path: &str, keys: &[&str]) -> Vec<i64> {
    let q = c.get(path).expect(200);
    keys.iter().map(|k| q.body["resources"][*k]["committed"].as_i64().unwrap_or(0)).collect()
}

/// (GPU, memory slice) units held, checked the same by the allocations'
/// records and by the nodes' words.
fn units(s: &TestServer) -> u64 {
    let (by_allocation, by_node) =
        s.store.read(neocloud_store::allocation_holds::units_held).unwrap();
    assert_eq!(by_allocation, by_node, "the allocations' holds and the nodes' words agree");
    by_allocation
}

fn count(s: &TestServer, sql: &str) -> i64 {
    s.store
        .read(|r| r.query(sql, &[]))
        .unwrap_or_else(|e| panic!("[{}] {sql}: {e}", s.backend.as_str()))[0]
        .i64(0)
        .expect("count")
}

/// Everything a refused allocation must leave as it was.
fn snapshot(s: &TestServer) -> Value {
    let a = s.admin();
    let get = |p: &str| a.get(p).expect(200).body;
    json!({
        "web": get(&allocs("acme", "web")),
        "ml": get(&allocs("acme", "ml")),
        "project_quota": get("/v1/tenants/acme/projects/web/quotas"),
        "tenant_quota": get("/v1/tenants/acme/quotas"),
        "provider_quota": get("/v1/quotas"),
        "claims": get("/v1/tenants/acme/projects/web/claims"),
        "capacity": get("/v1/capacity"),
        "units": units(s),
        "allocations": count(s, "SELECT COUNT(*) FROM allocations"),
        "quota_claims": count(s, "SELECT COUNT(*) FROM quota_claims"),
        "placement_generation": count(s, "SELECT generation FROM placement_state"),
    })
}

#[test]
fn placement_constraints_scope_within_and_gangs() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let f = fleet(s);
        let c = &f.alice;
        // A gang of 2 in one SU.
        let g =
            allocate(c, json!({"instance_type": "bm", "count": 2, "constraints": {"scope": "su"}}))
                .expect(201)
                .body;
        let ns = nodes_of(&g);
        assert_eq!(ns.len(), 2, "[{b}] {g}");
        assert_eq!(ns.iter().collect::<BTreeSet<_>>().len(), 2, "[{b}] two distinct nodes: {g}");
        assert_eq!(f.sus(&g).len(), 1, "[{b}] one SU: {g}");
        assert!(
            g["placement"]["assignments"]
                .as_array()
                .unwrap()
                .iter()
                .all(|x| x["whole_node"] == true && x["gpus"].as_array().unwrap().len() == 8),
            "[{b}] {g}"
        );
        assert_eq!((&g["count"], &g["state"]), (&json!(2), &json!("active")), "[{b}]");
        release(c, &str_of(&g, "id")).expect(200);

        // `within` pins a node to a named SU or rack.
        let w = allocate(c, within("bm", "rack", "r2")).expect(201).body;
        assert_eq!(f.node(&nodes_of(&w)[0]).0, "n3", "[{b}] the only node in r2: {w}");
        let r = allocate(c, within("bm", "rack", "r2"));
        let msg = check_no_fit(s, "r2 is full", &r, "within");
        assert!(msg.contains("0 free"), "[{b}] {msg}");
        let r = allocate(c, within("bm", "su", "su-z"));
        check_no_fit(s, "no such SU", &r, "within");
        let v = allocate(c, within("vm-1", "su", "su-b")).expect(201).body;
        assert_eq!(f.node(&nodes_of(&v)[0]).1, "su-b", "[{b}] {v}");
        // Now su-a has n1, n2 free; su-b has n5 entirely free (n4 holds the VM,
        // or the other way round): no SU has 3 whole nodes.
        let before = snapshot(s);
        let r =
            allocate(c, json!({"instance_type": "bm", "count": 3, "constraints": {"scope": "su"}}));
        let msg = check_no_fit(s, "no SU with 3 free nodes", &r, "scope");
        assert!(msg.contains("the best has 2 free"), "[{b}] {msg}");
        assert_eq!(snapshot(s), before, "[{b}] a refused gang writes nothing");
        // Without the scope the gang spans SUs (as few as possible).
        let g = allocate(c, json!({"instance_type": "bm", "count": 3})).expect(201).body;
        assert_eq!(f.sus(&g), ["su-a", "su-b"].map(String::from).into(), "[{b}] {g}");
        // No whole node is left.
        let r = allocate(c, json!({"instance_type": "bm", "count": 1}));
        check_no_fit(s, "fleet full", &r, "capacity");
        // A pod scope with a named pod that exists: fine, it is all one pod.
        release(c, &str_of(&g, "id")).expect(200);
        let mut body = within("bm", "pod", "p1");
        body["count"] = json!(3);
        body["constraints"]["scope"] = json!("pod");
        let g = allocate(c, body).expect(201).body;
        assert_eq!(nodes_of(&g).len(), 3, "[{b}]");
    });
}

#[test]
fn bad_allocation_requests_name_the_field_and_write_nothing() {
    each_backend(|s| {
        let f = fleet(s);
        let before = snapshot(s);
        #[rustfmt::skip]
        let cases: Vec<(&str, Value, u16, &str, &str)> = vec![
            ("count 0", json!({"instance_type": "bm", "count": 0}), 422, "invalid_value", "count"),
            ("bare-metal count 1025", json!({"instance_type": "bm", "count": 1025}), 422, "invalid_value", "count"),
            ("VM count 257", json!({"instance_type": "vm-1", "count": 257}), 422, "invalid_value", "count"),
            ("MIG count 257", json!({"instance_type": "mig-1g", "count": 257}), 422, "invalid_value", "count"),
            ("negative count", json!({"instance_type": "bm", "count": -1}), 400, "invalid_request", "count"),
            ("unknown instance type", json!({"instance_type": "nope"}), 422, "invalid_value", "instance_type"),
            ("unknown instance type id", json!({"instance_type": "00000000-0000-4000-8000-000000000000"}), 422, "invalid_value", "instance_type"),
            ("malformed instance type", json!({"instance_type": "No Such"}), 422, "invalid_value", "instance_type"),
            ("missing instance type", json!({"count": 1}), 400, "invalid_request", "instance_type"),
            ("unknown scope", json!({"instance_type": "bm", "constraints": {"scope": "galaxy"}}), 400, "invalid_request", "constraints.scope"),
            ("unknown within level", json!({"instance_type": "bm", "constraints": {"within": {"level": "row", "name": "x"}}}), 400, "invalid_request", "constraints.within.level"),
            ("unknown constraint", json!({"instance_type": "bm", "constraints": {"colour": "red"}}), 400, "invalid_request", "constraints.colour"),
            ("unknown field", json!({"instance_type": "bm", "priority": 1}), 400, "invalid_request", "priority"),
        ];
        for (what, body, status, code, field) in cases {
            let r = allocate(&f.alice, body);
            check_error(s, what, &r, status, code, Some(field));
            assert_eq!(snapshot(s), before, "[{}] {what}: the store changed", s.backend.as_str());
        }
    });
}

#[test]
fn requests_that_do_not_fit_are_refused_and_write_nothing() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let f = fleet(s);
        let c = &f.alice;
        // Some state first, so "unchanged" is not "empty".
        allocate(c, json!({"instance_type": "bm"})).expect(201);
        allocate(c, json!({"instance_type": "vm-2"})).expect(201);
        allocate(c, json!({"instance_type": "mig-1g", "count": 2})).expect(201);
        let before = snapshot(s);
        assert_eq!(before["units"], 8 * 8 + 2 * 8 + 2, "[{b}] units held: {before}");

        let r = allocate(c, json!({"instance_type": "bm", "count": 5}));
        let msg = check_no_fit(s, "5 whole nodes", &r, "capacity");
        assert!(
            msg.contains("need 5 whole h100-80gb node(s); 3 free")
                && msg.contains("across 5 node(s)"),
            "[{b}] names what is free: {msg}"
        );
        assert_eq!(snapshot(s), before, "[{b}] gang refusal wrote something");

        let r = allocate(c, json!({"instance_type": "vm-8", "count": 4}));
        let msg = check_no_fit(s, "4 x 8 GPUs", &r, "nvlink_domain");
        assert!(msg.contains("only 3 of 4 fit"), "[{b}] {msg}");
        assert_eq!(snapshot(s), before, "[{b}] VM refusal wrote something");

        let r = allocate(c, json!({"instance_type": "mig-1g", "count": 256}));
        check_no_fit(s, "256 MIG slices", &r, "capacity");
        assert_eq!(snapshot(s), before, "[{b}] MIG refusal wrote something");

        s.admin()
            .post(
                "/v1/instance-types",
                &json!({"name": "b200", "kind": "bare_metal", "gpu_model": "b200-180gb"}),
            )
            .expect(201);
        let r = allocate(c, json!({"instance_type": "b200"}));
        check_no_fit(s, "no node of the model", &r, "gpu_model");
        assert_eq!(snapshot(s), before, "[{b}] model refusal wrote something");
    });
}

#[test]
fn quota_exceeded_is_refused_and_writes_nothing() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let f = fleet(s);
        let a = s.admin();
        // acme may use 12 H100 GPUs.
        let q = a.get("/v1/tenants/acme/quotas").expect(200).body;
        a.put(
            "/v1/tenants/acme/quotas",
            &json!({"generation": q["generation"], "limits": {"gpu:h100-80gb": 12, "mig:1g.10gb": 0}}),
        )
        .expect(200);
        let c = &f.alice;
        allocate(c, json!({"instance_type": "bm"})).expect(201);
        let before = snapshot(s);
        for (what, body) in [
            ("bare metal over the GPU limit", json!({"instance_type": "bm"})),
            ("VMs over the GPU limit", json!({"instance_type": "vm-1", "count": 5})),
            ("gang over the GPU limit", json!({"instance_type": "bm", "count": 2})),
        ] {
            let r = allocate(c, body);
            check_error(s, what, &r, 409, "quota_exceeded", None);
            let msg = r.body["error"]["message"].as_str().unwrap();
            assert!(msg.contains("gpu:h100-80gb"), "[{b}] {what}: {msg}");
            assert_eq!(snapshot(s), before, "[{b}] {what}: the store changed");
        }
        // A limit of 0.
        let r = allocate(c, json!({"instance_type": "mig-1g"}));
        check_error(s, "MIG limit 0", &r, 409, "quota_exceeded", None);
        assert_eq!(snapshot(s), before, "[{b}] the store changed");
        // What fits still goes.
        allocate(c, json!({"instance_type": "vm-2", "count": 2})).expect(201);
        assert_eq!(committed(&a, "/v1/tenants/acme/quotas", &["gpu:h100-80gb"]), [12], "[{b}]");
    });
}

#[test]
fn the_quota_ledger_follows_allocations_and_releases() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let f = fleet(s);
        let a = s.admin();
        let c = &f.alice;
        let keys = ["nodes", "gpu:h100-80gb", "mig:1g.10gb"];
        let levels =
            ["/v1/tenants/acme/projects/web/quotas", "/v1/tenants/acme/quotas", "/v1/quotas"];
        let check = |what: &str, want: [i64; 3]| {
            for l in levels {
                assert_eq!(committed(&a, l, &keys), want, "[{b}] {what}: committed at {l}");
            }
            assert_eq!(
                committed(&a, "/v1/tenants/acme/projects/ml/quotas", &keys),
                [0, 0, 0],
                "[{b}] {what}: ml"
            );
        };
        let bm = allocate(c, json!({"instance_type": "bm", "count": 2})).expect(201).body;
        check("2 nodes", [2, 16, 0]);
        let vm = allocate(c, json!({"instance_type": "vm-2", "count": 3})).expect(201).body;
        check("+ 3 x 2 GPUs", [2, 22, 0]);
        let mig = allocate(c, json!({"instance_type": "mig-1g", "count": 3})).expect(201).body;
        check("+ 3 MIG slices", [2, 22, 3]);
        // The allocation's claim is committed, with these amounts.
        let claim = a
            .get(&format!("/v1/tenants/acme/projects/web/claims/{}", str_of(&mig, "claim_id")))
            .expect(200)
            .body;
        assert_eq!(claim["state"], "committed", "[{b}] {claim}");
        assert_eq!(claim["resources"], json!({"mig:1g.10gb": 3}), "[{b}] {claim}");
        assert_eq!(units(s), 2 * 64 + 3 * 2 * 8 + 3, "[{b}] units");

        // Released: back to the pool; a second release changes nothing.
        let r1 = release(c, &str_of(&vm, "id")).expect(200).body;
        assert_eq!((&r1["state"], &r1["id"]), (&json!("released"), &vm["id"]), "[{b}]");
        check("- the VMs", [2, 16, 3]);
        let held = units(s);
        let cap = a.get("/v1/capacity").expect(200).body;
        let r2 = release(c, &str_of(&vm, "id")).expect(200).body;
        assert_eq!(r2["state"], "released", "[{b}]");
        assert_eq!(r2["generation"], r1["generation"], "[{b}] a second release is no change");
        check("the VMs released twice", [2, 16, 3]);
        assert_eq!(units(s), held, "[{b}]");
        assert_eq!(a.get("/v1/capacity").expect(200).body, cap, "[{b}] capacity unchanged");
        let claim = a
            .get(&format!("/v1/tenants/acme/projects/web/claims/{}", str_of(&vm, "claim_id")))
            .expect(200)
            .body;
        assert_eq!(claim["state"], "released", "[{b}]");
        release(c, &str_of(&bm, "id")).expect(200);
        release(c, &str_of(&mig, "id")).expect(200);
        check("all released", [0, 0, 0]);
        assert_eq!(units(s), 0, "[{b}]");
        let cap = a.get("/v1/capacity?gpu_model=h100-80gb").expect(200).body;
        assert_eq!(cap["models"].as_array().unwrap().len(), 1, "[{b}] filtered: {cap}");
        assert_eq!(
            (&cap["models"][0]["total"]["free_nodes"], &cap["models"][0]["total"]["free_gpus"]),
            (&json!(5), &json!(40)),
            "[{b}] {cap}"
        );
        // The allocations stay listed, released.
        let list = c.get(&allocs("acme", "web")).expect(200).body;
        let states: Vec<_> =
            list["items"].as_array().unwrap().iter().map(|x| x["state"].clone()).collect();
        assert_eq!(states, vec![json!("released"); 3], "[{b}]");
        // Releasing an unknown or malformed id.
        let r = release(c, "00000000-0000-4000-8000-000000000000");
        check_error(s, "unknown allocation", &r, 404, "not_found", None);
        let r = release(c, "not-an-id");
        check_error(s, "not an id", &r, 400, "invalid_request", Some("allocation"));
    });
}

#[test]
fn anti_affinity_groups_spread_over_nodes() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let f = fleet(s);
        let c = &f.alice;
        let grouped = json!({"instance_type": "a-vm-1", "constraints": {"anti_affinity": "db"}});
        let x = allocate(c, grouped.clone()).expect(201).body;
        let y = allocate(c, grouped.clone()).expect(201).body;
        assert_ne!(nodes_of(&x), nodes_of(&y), "[{b}] same group, same node: {x} {y}");
        let before = snapshot(s);
        let r = allocate(c, grouped.clone());
        check_error(s, "a third member on 2 nodes", &r, 409, "conflict", None);
        assert!(r.text.contains("cannot place ("), "[{b}] {}", r.text);
        assert_eq!(snapshot(s), before, "[{b}] refusal wrote something");
        // Other groups, and ungrouped VMs, still fit on those nodes.
        let z = allocate(
            c,
            json!({"instance_type": "a-vm-1", "constraints": {"anti_affinity": "web"}}),
        )
        .expect(201)
        .body;
        allocate(c, json!({"instance_type": "a-vm-1"})).expect(201);
        // Several in one request are spread too, all or nothing.
        let r = allocate(
            c,
            json!({"instance_type": "a-vm-1", "count": 3, "constraints": {"anti_affinity": "cache"}}),
        );
        check_error(s, "3 in one request on 2 nodes", &r, 409, "conflict", None);
        let cache = json!({"instance_type": "a-vm-1", "count": 2, "constraints": {"anti_affinity": "cache"}});
        let two = allocate(c, cache).expect(201).body;
        let on: BTreeSet<_> = nodes_of(&two).into_iter().collect();
        assert_eq!(on.len(), 2, "[{b}] {two}");
        // A released member frees its node for the group.
        release(c, &str_of(&x, "id")).expect(200);
        let x2 = allocate(c, grouped.clone()).expect(201).body;
        assert_eq!(nodes_of(&x2), nodes_of(&x), "[{b}] the freed node");
        let _ = z;
    });
}

/// Runs `f` on every backend, collecting what each one got wrong (so a bug
/// test reports both backends, not just the first).
fn on_each_backend(f: impl Fn(&TestServer) -> Vec<String>) {
    let mut wrong = Vec::new();
    each_backend(|s| {
        for w in f(s) {
            wrong.push(format!("[{}] {w}", s.backend.as_str()));
        }
    });
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The refusal names the constraint that could not be met.
#[test]
fn vm_refusals_name_anti_affinity_and_within() {
    on_each_backend(|s| {
        let f = fleet(s);
        let c = &f.alice;
        let grouped = json!({"instance_type": "a-vm-1", "constraints": {"anti_affinity": "db"}});
        allocate(c, grouped.clone()).expect(201);
        allocate(c, grouped.clone()).expect(201);
        let mut wrong = Vec::new();
        for (what, body, want) in [
            ("third member of a group on 2 nodes", grouped, "anti_affinity"),
            ("VM within an unknown rack", within("vm-1", "rack", "nope"), "within"),
            ("MIG within an unknown rack", within("mig-1g", "rack", "nope"), "within"),
        ] {
            let r = allocate(c, body);
            let msg = r.body["error"]["message"].as_str().unwrap_or_default();
            if r.status != 409 || !msg.starts_with(&format!("cannot place ({want}): ")) {
                wrong.push(format!("{what}: want ({want}), got {} {msg}", r.status));
            }
        }
        wrong
    });
}

/// Anti-affinity group names are the tenant's own: another tenant's group
/// of the same name must not keep it off nodes.
#[test]
fn anti_affinity_groups_are_per_tenant() {
    on_each_backend(|s| {
        let f = fleet(s);
        tenant(s, "beta", json!({"gpu:a100-80gb": 100}));
        let bea = s.client(&s.user_with_role("beta", "bea", "tenant-member", None));
        let grouped = json!({"instance_type": "a-vm-1", "constraints": {"anti_affinity": "db"}});
        allocate(&f.alice, grouped.clone()).expect(201);
        allocate(&f.alice, grouped.clone()).expect(201);
        // Each A100 node has 7 free GPUs; beta's own "db" group is empty.
        let r = bea.post(&allocs("beta", "web"), &grouped);
        match r.status {
            201 => vec![],
            _ => vec![format!("beta's group \"db\" refused because of acme's: {}", r.text)],
        }
    });
}

/// VMs larger than a node span the trays of one NVLink domain (NVL72), and
/// never trays of different domains.
#[test]
fn vms_larger_than_a_node_stay_in_one_nvlink_domain() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let a = s.admin();
        let mut ids = std::collections::BTreeMap::new();
        for (name, domain) in
            [("t1", Some("nvl-a")), ("t2", Some("nvl-a")), ("t3", None), ("t4", Some("nvl-b"))]
        {
            let mut n = json!({"name": name, "site": "s1", "pod": "p1", "su": "su-a", "rack": "r1",
                               "gpu_model": "gb200", "gpus": 4, "gpu_memory_gb": 186});
            if let Some(d) = domain {
                n["nvlink_domain"] = json!(d);
            }
            let n = a.post("/v1/nodes", &n).expect(201).body;
            ids.insert(str_of(&n, "id"), name);
        }
        a.post(
            "/v1/instance-types",
            &json!({"name": "vm-8", "kind": "vm", "gpus": 8, "gpu_model": "gb200"}),
        )
        .expect(201);
        tenant(s, "acme", json!({"gpu:gb200": 100}));
        let c = s.client(&s.user_with_role("acme", "alice", "tenant-member", None));
        let v = allocate(&c, json!({"instance_type": "vm-8"})).expect(201).body;
        let on: BTreeSet<&str> = nodes_of(&v).iter().map(|id| ids[id]).collect();
        assert_eq!(on, ["t1", "t2"].into(), "[{b}] both trays of nvl-a: {v}");
        let gpus: usize = v["placement"]["assignments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["gpus"].as_array().unwrap().len())
            .sum();
        assert_eq!(gpus, 8, "[{b}] {v}");
        assert_eq!(committed(&a, "/v1/tenants/acme/quotas", &["gpu:gb200"]), [8], "[{b}]");
        // t3 (its own domain) and t4 (nvl-b) have 4 free each: not one domain.
        let r = allocate(&c, json!({"instance_type": "vm-8"}));
        let msg = check_no_fit(s, "8 GPUs over two domains", &r, "nvlink_domain");
        assert!(msg.contains("8 GPU(s) of gb200 free"), "[{b}] {msg}");
        // Not a MIG model.
        let mig = json!({"name": "mig-gb", "kind": "mig", "mig_profile": "1g.23gb", "gpu_model": "gb200"});
        let r = a.post("/v1/instance-types", &mig);
        check_error(s, "MIG on gb200", &r, 422, "invalid_value", Some("gpu_model"));
    });
}

/// An SU is named within its pod: two pods may both have an `su-1`, and a
/// gang scoped to one SU must not take a node from each.
#[test]
fn same_su_name_in_two_pods_is_two_sus() {
    on_each_backend(|s| {
        let a = s.admin();
        for (name, pod) in [("n1", "p1"), ("n2", "p2")] {
            a.post(
                "/v1/nodes",
                &json!({"name": name, "site": "s1", "pod": pod, "su": "su-1", "rack": format!("r-{pod}"),
                        "gpu_model": "h100-80gb", "gpus": 8}),
            )
            .expect(201);
        }
        a.post(
            "/v1/instance-types",
            &json!({"name": "bm", "kind": "bare_metal", "gpu_model": "h100-80gb"}),
        )
        .expect(201);
        tenant(s, "acme", json!({"nodes": 10, "gpu:h100-80gb": 100}));
        let c = s.client(&s.user_with_role("acme", "alice", "tenant-member", None));
        let mut wrong = Vec::new();
        for scope in ["su", "pod"] {
            let r = allocate(
                &c,
                json!({"instance_type": "bm", "count": 2, "constraints": {"scope": scope}}),
            );
            if r.status == 201 {
                wrong.push(format!("scope {scope}: a gang over two pods' su-1: {}", r.text));
                release(&c, &str_of(&r.body, "id")).expect(200);
            }
        }
        let cap = a.get("/v1/capacity").expect(200).body;
        if cap["models"][0]["by_su"].as_object().map(|m| m.len()) == Some(1) {
            wrong.push(format!(
                "capacity merges p1/su-1 and p2/su-1: {}",
                cap["models"][0]["by_su"]
            ));
        }
        wrong
    });
}

#[test]
fn idempotent_create_returns_the_same_allocation() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let f = fleet(s);
        let c = &f.alice;
        let body = json!({"instance_type": "vm-2", "count": 2});
        let send = |key: &str, body: &Value| {
            c.raw(
                "POST",
                &allocs("acme", "web"),
                Some(body.to_string().as_bytes()),
                &[("Idempotency-Key", key)],
            )
        };
        let first = send("k-1", &body).expect(201).body;
        let after = snapshot(s);
        let again = send("k-1", &body).expect(201).body;
        assert_eq!(again["id"], first["id"], "[{b}] same allocation");
        assert_eq!(again, first, "[{b}] same answer");
        assert_eq!(snapshot(s), after, "[{b}] the retry placed something");
        // The same key with another body is refused.
        let r = send("k-1", &json!({"instance_type": "vm-2", "count": 3}));
        check_error(s, "key reused", &r, 422, "idempotency_key_reused", None);
        assert_eq!(snapshot(s), after, "[{b}] a reused key placed something");
        // Another key is another allocation.
        let other = send("k-2", &body).expect(201).body;
        assert_ne!(other["id"], first["id"], "[{b}]");
        let listed = c.get(&allocs("acme", "web")).expect(200).body;
        assert_eq!(listed["items"].as_array().unwrap().len(), 2, "[{b}] {listed}");
        assert_eq!(
            committed(&s.admin(), "/v1/tenants/acme/quotas", &["gpu:h100-80gb"]),
            [8],
            "[{b}]"
        );
        // Replayed after a release: still the stored answer, and nothing placed.
        release(c, &str_of(&first, "id")).expect(200);
        let after = snapshot(s);
        let replay = send("k-1", &body).expect(201).body;
        assert_eq!(replay["id"], first["id"], "[{b}]");
        assert_eq!(snapshot(s), after, "[{b}] a replay after release placed something");
    });
}

#[test]
fn allocations_are_tenant_and_project_private() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let f = fleet(s);
        let c = &f.alice;
        let al = allocate(c, json!({"instance_type": "vm-1"})).expect(201).body;
        let id = str_of(&al, "id");
        let item = format!("{}/{id}", allocs("acme", "web"));
        assert_eq!(c.get(&item).expect(200).body, al, "[{b}]");

        // Another tenant, with its own id path or acme's.
        tenant(s, "beta", json!({"gpu:h100-80gb": 8}));
        let bea = s.client(&s.user_with_role("beta", "bea", "tenant-admin", None));
        let theirs = format!("{}/{id}", allocs("beta", "web"));
        check_error(s, "other tenant, own path", &bea.get(&theirs), 404, "not_found", None);
        check_error(
            s,
            "other tenant releases, own path",
            &bea.delete(&theirs),
            404,
            "not_found",
            None,
        );
        check_error(s, "other tenant, acme path", &bea.get(&item), 404, "not_found", None);
        check_error(
            s,
            "other tenant releases, acme path",
            &bea.delete(&item),
            404,
            "not_found",
            None,
        );
        check_error(
            s,
            "other tenant lists acme",
            &bea.get(&allocs("acme", "web")),
            404,
            "not_found",
            None,
        );
        let r = bea.post(&allocs("acme", "web"), &json!({"instance_type": "vm-1"}));
        check_error(s, "other tenant allocates in acme", &r, 404, "not_found", None);
        assert!(
            bea.get(&allocs("beta", "web")).expect(200).body["items"]
                .as_array()
                .unwrap()
                .is_empty(),
            "[{b}]"
        );
        // Another project of the same tenant: the id does not resolve there.
        check_error(
            s,
            "sibling project path",
            &c.get(&format!("{}/{id}", allocs("acme", "ml"))),
            404,
            "not_found",
            None,
        );
        check_error(
            s,
            "release via sibling project",
            &c.delete(&format!("{}/{id}", allocs("acme", "ml"))),
            404,
            "not_found",
            None,
        );

        // A member of project ml only does not see web at all.
        let pat = s.client(&s.user_with_role("acme", "pat", "tenant-member", Some("ml")));
        check_error(s, "project member, sibling item", &pat.get(&item), 404, "not_found", None);
        check_error(
            s,
            "project member, sibling list",
            &pat.get(&allocs("acme", "web")),
            404,
            "not_found",
            None,
        );
        check_error(
            s,
            "project member, sibling release",
            &pat.delete(&item),
            404,
            "not_found",
            None,
        );
        let r = pat.post(&allocs("acme", "web"), &json!({"instance_type": "vm-1"}));
        check_error(s, "project member, sibling create", &r, 404, "not_found", None);
        // ... but allocates in its own.
        let mine =
            pat.post(&allocs("acme", "ml"), &json!({"instance_type": "vm-1"})).expect(201).body;
        assert!(
            pat.get(&format!("{}/{}", allocs("acme", "ml"), str_of(&mine, "id"))).status == 200,
            "[{b}]"
        );

        // A tenant viewer lists and reads, but cannot allocate or release.
        let vic = s.client(&s.user_with_role("acme", "vic", "tenant-viewer", None));
        let listed = vic.get(&allocs("acme", "web")).expect(200).body;
        assert_eq!(listed["items"].as_array().unwrap().len(), 1, "[{b}] {listed}");
        assert_eq!(vic.get(&item).expect(200).body, al, "[{b}]");
        let before = snapshot(s);
        let r = vic.post(&allocs("acme", "web"), &json!({"instance_type": "vm-1"}));
        check_error(s, "viewer allocates", &r, 403, "forbidden", None);
        check_error(s, "viewer releases", &vic.delete(&item), 403, "forbidden", None);
        assert_eq!(snapshot(s), before, "[{b}] refused requests wrote something");
        assert_eq!(c.get(&item).expect(200).body["state"], "active", "[{b}] still active");
    });
}

#[test]
fn the_audit_trail_records_allocations_in_the_tenants_chain() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let f = fleet(s);
        let a = s.admin();
        let acme_id = str_of(&a.get("/v1/tenants/acme").expect(200).body, "id");
        let c = &f.alice;
        let cr = allocate(c, json!({"instance_type": "bm"})).expect(201);
        let id = str_of(&cr.body, "id");
        let rel = release(c, &id).expect(200);
        let rel2 = release(c, &id).expect(200);
        let refused = allocate(c, json!({"instance_type": "bm", "count": 6}));
        assert_eq!(refused.status, 409, "[{b}] {}", refused.text);

        let trail = a.get("/v1/tenants/acme/audit?limit=1000").expect(200).body;
        let events = trail["items"].as_array().unwrap();
        let of = |r: &Resp, what: &str| -> Value {
            let rid = r.header("x-request-id").expect("x-request-id");
            let found: Vec<_> = events.iter().filter(|e| e["request_id"] == rid).collect();
            assert_eq!(found.len(), 1, "[{b}] {what}: one event for {rid} in {trail}");
            found[0].clone()
        };
        let target = format!("/v1/tenants/acme/projects/web/allocations/{id}");
        for (r, what, action, outcome, status) in [
            (&cr, "create", "allocation_create", "success", 201),
            (&rel, "release", "allocation_release", "success", 200),
            (&rel2, "second release", "allocation_release", "success", 200),
        ] {
            let e = of(r, what);
            assert_eq!(
                (
                    &e["chain"],
                    &e["tenant_id"],
                    &e["action"],
                    &e["target"],
                    &e["outcome"],
                    &e["status"],
                    &e["actor_name"],
                    &e["role"]
                ),
                (
                    &json!(acme_id),
                    &json!(acme_id),
                    &json!(action),
                    &json!(target),
                    &json!(outcome),
                    &json!(status),
                    &json!("alice"),
                    &json!("tenant-member")
                ),
                "[{b}] {what}: {e}"
            );
        }
        let e = of(&refused, "refused");
        assert_eq!(
            (&e["chain"], &e["action"], &e["outcome"], &e["status"]),
            (&json!(acme_id), &json!("allocation_create"), &json!("failed"), &json!(409)),
            "[{b}] refused: {e}"
        );
        // Nothing of acme's allocations lands in the provider's chain.
        let provider = a.get("/v1/audit?limit=1000").expect(200).body;
        assert!(
            provider["items"].as_array().unwrap().iter().all(|e| !(e["action"]
                .as_str()
                .unwrap_or("")
                .starts_with("allocation_")
                && e["chain"] != json!(acme_id))),
            "[{b}] an allocation event outside acme's chain"
        );
    });
}
