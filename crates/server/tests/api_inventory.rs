//! Provider inventory through the API, on both backends: nodes (defaults,
//! validation, availability under generations, maintenance nodes never
//! chosen, delete guarded by allocations), instance types (shapes checked
//! against the MIG tables, tenant read-only access, delete guarded by
//! allocations), and two control-plane replicas on one store.

mod common;
use common::*;
use serde_json::{json, Value};

fn node(name: &str, su: &str, rack: &str) -> Value {
    json!({"name": name, "site": "s1", "pod": "p1", "su": su, "rack": rack,
           "gpu_model": "h100-80gb", "gpus": 8, "mig_capable": true})
}

#[track_caller]
fn check_error(s: &TestServer, what: &str, r: &Resp, status: u16, code: &str, field: Option<&str>) {
    let b = s.backend.as_str();
    assert_eq!(r.status, status, "[{b}] {what}: status; body: {}", r.text);
    let (c, f) = r.error();
    assert_eq!(c, code, "[{b}] {what}: error.code; body: {}", r.text);
    assert_eq!(f.as_deref(), field, "[{b}] {what}: error.field; body: {}", r.text);
}

fn str_of(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_else(|| panic!("no string {k} in {v}")).to_string()
}

/// The `name`s of a list answer, in order.
fn names(c: &Client, path: &str) -> Vec<String> {
    let r = c.get(path).expect(200);
    r.body["items"].as_array().unwrap().iter().map(|x| str_of(x, "name")).collect()
}

/// The `total` counts of `/v1/capacity` for a model (Null without nodes of it).
fn capacity(c: &Client, model: &str) -> Value {
    let r = c.get("/v1/capacity").expect(200);
    r.body["models"]
        .as_array()
        .unwrap_or_else(|| panic!("capacity: {}", r.text))
        .iter()
        .find(|m| m["gpu_model"] == model)
        .map(|m| m["total"].clone())
        .unwrap_or(Value::Null)
}

/// A tenant `t` with a project `web`, generous quotas, and a tenant-member
/// token.
fn tenant(s: &TestServer) -> Client {
    let a = s.admin();
    a.post("/v1/tenants", &json!({"name": "t"})).expect(201);
    a.put(
        "/v1/tenants/t/quotas",
        &json!({"generation": 1, "limits": {"nodes": 100, "gpu:h100-80gb": 1000, "mig:1g.10gb": 100}}),
    )
    .expect(200);
    a.post("/v1/tenants/t/projects", &json!({"name": "web"})).expect(201);
    s.client(&s.user_with_role("t", "alice", "tenant-member", None))
}

fn instance_type(s: &TestServer, name: &str, body: Value) {
    let mut b = body;
    b["name"] = json!(name);
    if b.get("gpu_model").is_none() {
        b["gpu_model"] = json!("h100-80gb");
    }
    s.admin().post("/v1/instance-types", &b).expect(201);
}

const ALLOCS: &str = "/v1/tenants/t/projects/web/allocations";

fn allocate(c: &Client, it: &str) -> Resp {
    c.post(ALLOCS, &json!({"instance_type": it}))
}

fn release(c: &Client, id: &str) -> Resp {
    c.delete(&format!("{ALLOCS}/{id}"))
}

/// The node ids an allocation's placement uses.
fn placed_nodes(a: &Value) -> Vec<String> {
    a["placement"]["assignments"].as_array().unwrap().iter().map(|x| str_of(x, "node_id")).collect()
}

#[test]
fn nodes_create_with_defaults_list_get_and_reject_bad_input() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let a = s.admin();
        let mut body = node("n1", "su-a", "r1");
        body.as_object_mut().unwrap().remove("mig_capable");
        let n1 = a.post("/v1/nodes", &body).expect(201).body;
        assert_eq!(n1["nvlink_domain"], "n1", "[{b}] default NVLink domain is the node's name");
        assert_eq!(n1["availability"], "schedulable", "[{b}]");
        assert_eq!(n1["generation"], 1, "[{b}]");
        assert_eq!(n1["gpus"], 8, "[{b}]");
        assert_eq!(n1["mig_capable"], false, "[{b}] mig_capable defaults to false");
        let mut body = node("n0", "su-a", "r1");
        body["nvlink_domain"] = json!("nvl-1");
        let n0 = a.post("/v1/nodes", &body).expect(201).body;
        assert_eq!(n0["nvlink_domain"], "nvl-1", "[{b}]");
        assert_eq!(names(&a, "/v1/nodes"), ["n0", "n1"], "[{b}] listed by name");
        let id = str_of(&n1, "id");
        assert_eq!(a.get("/v1/nodes/n1").expect(200).body, n1, "[{b}] get by name");
        assert_eq!(a.get(&format!("/v1/nodes/{id}")).expect(200).body, n1, "[{b}] get by id");
        let r = a.get("/v1/nodes/nope");
        check_error(s, "unknown node", &r, 404, "not_found", None);

        let cap_before = capacity(&a, "h100-80gb");
        assert_eq!(cap_before["nodes"], 2, "[{b}] {cap_before}");
        assert_eq!(cap_before["free_gpus"], 16, "[{b}] {cap_before}");

        // Refused: nothing is created.
        let r = a.post("/v1/nodes", &node("n1", "su-b", "r9"));
        check_error(s, "duplicate name", &r, 409, "already_exists", Some("name"));
        let with = |k: &str, v: Value| {
            let mut x = node("nx", "su-a", "r1");
            x[k] = v;
            x
        };
        #[rustfmt::skip]
        let cases: Vec<(&str, Value, u16, &str, &str)> = vec![
            ("gpus 0", with("gpus", json!(0)), 422, "invalid_value", "gpus"),
            ("gpus 17", with("gpus", json!(17)), 422, "invalid_value", "gpus"),
            ("gpus 256 (not a u8)", with("gpus", json!(256)), 400, "invalid_request", "gpus"),
            ("gpus negative", with("gpus", json!(-1)), 400, "invalid_request", "gpus"),
            ("uppercase name", with("name", json!("Node1")), 400, "invalid_request", "name"),
            ("underscore in site", with("site", json!("s_1")), 400, "invalid_request", "site"),
            ("empty su", with("su", json!("")), 400, "invalid_request", "su"),
            ("rack ends with -", with("rack", json!("r-")), 400, "invalid_request", "rack"),
            ("pod too long", with("pod", json!("p".repeat(64))), 400, "invalid_request", "pod"),
            ("bad gpu_model", with("gpu_model", json!("H100 80GB")), 400, "invalid_request", "gpu_model"),
            ("bad nvlink_domain", with("nvlink_domain", json!("a.b")), 400, "invalid_request", "nvlink_domain"),
            ("mig_capable not a bool", with("mig_capable", json!("yes")), 400, "invalid_request", "mig_capable"),
            ("unknown field", with("colour", json!("red")), 400, "invalid_request", "colour"),
        ];
        for (what, body, status, code, field) in cases {
            let r = a.post("/v1/nodes", &body);
            check_error(s, what, &r, status, code, Some(field));
        }
        let mut missing = node("nx", "su-a", "r1");
        missing.as_object_mut().unwrap().remove("rack");
        let r = a.post("/v1/nodes", &missing);
        check_error(s, "missing rack", &r, 400, "invalid_request", Some("rack"));
        // Tenants cannot register nodes, nor see the inventory.
        let alice = tenant(s);
        let r = alice.post("/v1/nodes", &node("nt", "su-a", "r1"));
        check_error(s, "tenant creates a node", &r, 403, "forbidden", None);
        let r = alice.get("/v1/nodes");
        check_error(s, "tenant lists nodes", &r, 403, "forbidden", None);
        let r = alice.get("/v1/capacity");
        check_error(s, "tenant reads capacity", &r, 403, "forbidden", None);

        assert_eq!(names(&a, "/v1/nodes"), ["n0", "n1"], "[{b}] no refused node was created");
        assert_eq!(a.get("/v1/nodes/n1").expect(200).body, n1, "[{b}] n1 unchanged");
        assert_eq!(capacity(&a, "h100-80gb"), cap_before, "[{b}] capacity unchanged");
    });
}

#[test]
fn node_availability_needs_the_generation_and_maintenance_nodes_are_never_chosen() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let a = s.admin();
        let alice = tenant(s);
        instance_type(s, "bm", json!({"kind": "bare_metal"}));
        instance_type(s, "vm-1", json!({"kind": "vm", "gpus": 1}));
        for n in ["n1", "n2", "n3"] {
            a.post("/v1/nodes", &node(n, "su-a", "r1")).expect(201);
        }
        let n2 = a
            .patch("/v1/nodes/n2", &json!({"generation": 1, "availability": "maintenance"}))
            .expect(200)
            .body;
        assert_eq!(n2["availability"], "maintenance", "[{b}]");
        assert_eq!(n2["generation"], 2, "[{b}] generation + 1");
        let n2_id = str_of(&n2, "id");
        // A stale generation changes nothing.
        let r = a.patch("/v1/nodes/n2", &json!({"generation": 1, "availability": "schedulable"}));
        check_error(s, "stale generation", &r, 409, "generation_mismatch", None);
        let r = a.patch("/v1/nodes/n2", &json!({"generation": 7, "availability": "failed"}));
        check_error(s, "future generation", &r, 409, "generation_mismatch", None);
        let r = a.patch("/v1/nodes/n2", &json!({"availability": "schedulable"}));
        check_error(s, "no generation", &r, 400, "invalid_request", Some("generation"));
        let r = a.patch("/v1/nodes/n2", &json!({"generation": 2, "availability": "broken"}));
        check_error(s, "unknown availability", &r, 400, "invalid_request", Some("availability"));
        let r = a.patch("/v1/nodes/zz", &json!({"generation": 1, "availability": "failed"}));
        check_error(s, "unknown node", &r, 404, "not_found", None);
        // The configuration is unchanged (the lifecycle controller may have
        // moved the node's status into maintenance meanwhile).
        let now = a.get("/v1/nodes/n2").expect(200).body;
        for field in ["availability", "generation", "gpus", "gpu_model", "nics"] {
            assert_eq!(now[field], n2[field], "[{b}] refused updates change nothing: {field}");
        }

        let cap = capacity(&a, "h100-80gb");
        assert_eq!(
            (&cap["nodes"], &cap["unavailable_nodes"], &cap["free_nodes"], &cap["free_gpus"]),
            (&json!(3), &json!(1), &json!(2), &json!(16)),
            "[{b}] {cap}"
        );

        // Allocate until full: never on n2.
        let mut got = Vec::new();
        loop {
            let r = allocate(&alice, "bm");
            if r.status != 201 {
                check_error(s, "fleet full", &r, 409, "conflict", None);
                break;
            }
            assert!(got.len() < 3, "[{b}] more bare-metal allocations than schedulable nodes");
            got.push(r.body);
        }
        assert_eq!(got.len(), 2, "[{b}] one per schedulable node");
        for g in &got {
            assert!(
                !placed_nodes(g).contains(&n2_id),
                "[{b}] placed on a node in maintenance: {g}"
            );
        }
        // n2's 8 free GPUs are not offered to a VM either.
        let r = allocate(&alice, "vm-1");
        check_error(s, "VM on a node in maintenance", &r, 409, "conflict", None);
        let cap = capacity(&a, "h100-80gb");
        assert_eq!(
            (&cap["unavailable_nodes"], &cap["free_nodes"], &cap["free_gpus"]),
            (&json!(1), &json!(0), &json!(0)),
            "[{b}] {cap}"
        );

        // Back in service (with the current generation), it is used.
        let n2 = a
            .patch("/v1/nodes/n2", &json!({"generation": 2, "availability": "schedulable"}))
            .expect(200)
            .body;
        assert_eq!(n2["generation"], 3, "[{b}]");
        let v = allocate(&alice, "vm-1").expect(201).body;
        assert_eq!(placed_nodes(&v), std::slice::from_ref(&n2_id), "[{b}]");
        let cap = capacity(&a, "h100-80gb");
        assert_eq!(
            (&cap["unavailable_nodes"], &cap["free_gpus"]),
            (&json!(0), &json!(7)),
            "[{b}] {cap}"
        );

        // A node holding an allocation may fail: the allocation stays.
        let holder = placed_nodes(&got[0])[0].clone();
        a.patch(
            &format!("/v1/nodes/{holder}"),
            &json!({"generation": 1, "availability": "failed"}),
        )
        .expect(200);
        let still = alice.get(&format!("{ALLOCS}/{}", str_of(&got[0], "id"))).expect(200).body;
        assert_eq!(still["state"], "active", "[{b}]");
        let cap = capacity(&a, "h100-80gb");
        assert_eq!(cap["unavailable_nodes"], 1, "[{b}] {cap}");
        // Released while failed, it stays out of scheduling.
        release(&alice, &str_of(&got[0], "id")).expect(200);
        let r = allocate(&alice, "bm");
        check_error(s, "bare metal on a failed node", &r, 409, "conflict", None);
        let cap = capacity(&a, "h100-80gb");
        assert_eq!(
            (&cap["free_nodes"], &cap["unavailable_nodes"]),
            (&json!(0), &json!(1)),
            "[{b}] {cap}"
        );
    });
}

#[test]
fn node_delete_is_refused_while_it_holds_an_allocation() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let a = s.admin();
        let alice = tenant(s);
        instance_type(s, "bm", json!({"kind": "bare_metal"}));
        for n in ["n1", "n2"] {
            a.post("/v1/nodes", &node(n, "su-a", "r1")).expect(201);
        }
        let al = allocate(&alice, "bm").expect(201).body;
        let held = placed_nodes(&al)[0].clone();
        let held_node = a.get(&format!("/v1/nodes/{held}")).expect(200).body;
        let free_name = if held_node["name"] == "n1" { "n2" } else { "n1" };

        let r = a.delete(&format!("/v1/nodes/{held}"));
        check_error(s, "delete a node holding an allocation", &r, 409, "conflict", None);
        let r = a.delete(&format!("/v1/nodes/{}", held_node["name"].as_str().unwrap()));
        check_error(s, "same, by name", &r, 409, "conflict", None);
        assert_eq!(a.get(&format!("/v1/nodes/{held}")).expect(200).body, held_node, "[{b}]");
        assert_eq!(capacity(&a, "h100-80gb")["nodes"], 2, "[{b}]");

        // The free one goes; capacity shrinks.
        a.delete(&format!("/v1/nodes/{free_name}")).expect(204);
        let cap = capacity(&a, "h100-80gb");
        assert_eq!((&cap["nodes"], &cap["free_nodes"]), (&json!(1), &json!(0)), "[{b}] {cap}");
        let r = a.get(&format!("/v1/nodes/{free_name}"));
        check_error(s, "deleted node", &r, 404, "not_found", None);
        let r = allocate(&alice, "bm");
        check_error(s, "no node left", &r, 409, "conflict", None);
        let r = a.delete(&format!("/v1/nodes/{free_name}"));
        check_error(s, "delete twice", &r, 404, "not_found", None);

        // After the release it can go too; the model disappears from capacity.
        release(&alice, &str_of(&al, "id")).expect(200);
        assert_eq!(capacity(&a, "h100-80gb")["free_nodes"], 1, "[{b}]");
        a.delete(&format!("/v1/nodes/{held}")).expect(204);
        assert_eq!(capacity(&a, "h100-80gb"), Value::Null, "[{b}] no h100 node left");
        assert!(names(&a, "/v1/nodes").is_empty(), "[{b}]");
        let r = allocate(&alice, "bm");
        check_error(s, "no node of the model", &r, 409, "conflict", None);
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with("cannot place (gpu_model)"), "[{b}] {msg}");
        // The released allocation is still readable after its node went.
        let old = alice.get(&format!("{ALLOCS}/{}", str_of(&al, "id"))).expect(200).body;
        assert_eq!(old["state"], "released", "[{b}]");
    });
}

#[test]
fn instance_type_shapes_are_checked_and_name_the_field() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let a = s.admin();
        let it = |kind: &str, model: &str, extra: Value| {
            let mut x = json!({"name": "x1", "kind": kind, "gpu_model": model});
            for (k, v) in extra.as_object().unwrap() {
                x[k] = v.clone();
            }
            x
        };
        let h100 = "h100-80gb";
        #[rustfmt::skip]
        let cases: Vec<(&str, Value, u16, &str, &str)> = vec![
            ("bare metal with gpus", it("bare_metal", h100, json!({"gpus": 8})), 422, "invalid_value", "gpus"),
            ("bare metal with mig_profile", it("bare_metal", h100, json!({"mig_profile": "1g.10gb"})), 422, "invalid_value", "mig_profile"),
            ("vm without gpus", it("vm", h100, json!({})), 422, "invalid_value", "gpus"),
            ("vm with 0 gpus", it("vm", h100, json!({"gpus": 0})), 422, "invalid_value", "gpus"),
            ("vm with 17 gpus", it("vm", h100, json!({"gpus": 17})), 422, "invalid_value", "gpus"),
            ("vm with a mig_profile", it("vm", h100, json!({"gpus": 1, "mig_profile": "1g.10gb"})), 422, "invalid_value", "mig_profile"),
            ("mig without a profile", it("mig", h100, json!({})), 422, "invalid_value", "mig_profile"),
            ("mig with gpus", it("mig", h100, json!({"mig_profile": "1g.10gb", "gpus": 1})), 422, "invalid_value", "gpus"),
            ("mig on a model without MIG", it("mig", "gb200", json!({"mig_profile": "1g.10gb"})), 422, "invalid_value", "gpu_model"),
            ("unknown kind", it("container", h100, json!({})), 400, "invalid_request", "kind"),
            ("bad name", json!({"name": "X_1", "kind": "bare_metal", "gpu_model": h100}), 400, "invalid_request", "name"),
            ("bad gpu_model", it("bare_metal", "H100", json!({})), 400, "invalid_request", "gpu_model"),
            ("unknown field", it("bare_metal", h100, json!({"price": 3})), 400, "invalid_request", "price"),
            ("description with a control character", it("bare_metal", h100, json!({"description": "a\u{1}b"})), 422, "invalid_value", "description"),
        ];
        for (what, body, status, code, field) in cases {
            let r = a.post("/v1/instance-types", &body);
            check_error(s, what, &r, status, code, Some(field));
        }
        // An unknown profile names the model's profiles. 1g.20gb is an
        // 80 GB profile, not an A100-40GB one.
        for (model, profile, known) in [
            (
                "a100-40gb",
                "1g.20gb",
                "1g.5gb, 1g.5gb+me, 1g.10gb, 2g.10gb, 3g.20gb, 4g.20gb, 7g.40gb",
            ),
            (
                "h100-80gb",
                "9g.1gb",
                "1g.10gb, 1g.10gb+me, 1g.20gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb",
            ),
            ("a100-40gb", "3g.40gb", "3g.20gb"),
        ] {
            let r =
                a.post("/v1/instance-types", &it("mig", model, json!({"mig_profile": profile})));
            check_error(
                s,
                &format!("{profile} on {model}"),
                &r,
                422,
                "invalid_value",
                Some("mig_profile"),
            );
            let msg = r.body["error"]["message"].as_str().unwrap();
            assert!(
                msg.contains(profile) && msg.contains(known),
                "[{b}] {profile} on {model}: {msg}"
            );
        }
        assert!(names(&a, "/v1/instance-types").is_empty(), "[{b}] nothing refused was created");

        // Valid shapes, with what is stored for each.
        let ok = |name: &str, body: Value| {
            let mut x = body;
            x["name"] = json!(name);
            a.post("/v1/instance-types", &x).expect(201).body
        };
        let bm = ok("bm", it("bare_metal", h100, json!({"vcpus": 224, "memory_gib": 2048})));
        assert_eq!(
            (&bm["kind"], &bm["gpus"], &bm["mig_profile"]),
            (&json!("bare_metal"), &json!(0), &Value::Null),
            "[{b}] {bm}"
        );
        assert_eq!(
            (&bm["vcpus"], &bm["memory_gib"], &bm["generation"]),
            (&json!(224), &json!(2048), &json!(1)),
            "[{b}] {bm}"
        );
        let vm = ok("vm-16", it("vm", h100, json!({"gpus": 16})));
        assert_eq!(vm["gpus"], 16, "[{b}]");
        // The A100-40GB's double-memory 1g profile is called 1g.10gb.
        let mig = ok("mig-a100", it("mig", "a100-40gb", json!({"mig_profile": "1g.10gb"})));
        assert_eq!(
            (&mig["mig_profile"], &mig["gpus"]),
            (&json!("1g.10gb"), &json!(0)),
            "[{b}] {mig}"
        );
        ok("mig-me", it("mig", "b200-180gb", json!({"mig_profile": "1g.23gb+me"})));
        let r = a.post("/v1/instance-types", &it("vm", h100, json!({"name": "bm", "gpus": 1})));
        check_error(s, "duplicate name", &r, 409, "already_exists", Some("name"));
        assert_eq!(names(&a, "/v1/instance-types"), ["bm", "mig-a100", "mig-me", "vm-16"], "[{b}]");
        assert_eq!(
            a.get("/v1/instance-types/bm").expect(200).body,
            bm,
            "[{b}] duplicate left bm alone"
        );
    });
}

#[test]
fn instance_types_are_read_only_to_tenants_and_guarded_by_active_allocations() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let a = s.admin();
        let alice = tenant(s);
        let viewer = s.client(&s.user_with_role("t", "vic", "tenant-viewer", None));
        a.post("/v1/nodes", &node("n1", "su-a", "r1")).expect(201);
        instance_type(s, "vm-1", json!({"kind": "vm", "gpus": 1, "description": "one"}));
        let t = a.get("/v1/instance-types/vm-1").expect(200).body;
        let id = str_of(&t, "id");
        for (who, c) in [("member", &alice), ("viewer", &viewer)] {
            assert_eq!(names(c, "/v1/instance-types"), ["vm-1"], "[{b}] {who} lists");
            assert_eq!(c.get("/v1/instance-types/vm-1").expect(200).body, t, "[{b}] {who} by name");
            assert_eq!(
                c.get(&format!("/v1/instance-types/{id}")).expect(200).body,
                t,
                "[{b}] {who} by id"
            );
            let r = c.post(
                "/v1/instance-types",
                &json!({"name": "mine", "kind": "vm", "gpu_model": "h100-80gb", "gpus": 1}),
            );
            check_error(s, &format!("{who} creates"), &r, 403, "forbidden", None);
            let r =
                c.patch("/v1/instance-types/vm-1", &json!({"generation": 1, "description": "x"}));
            check_error(s, &format!("{who} updates"), &r, 403, "forbidden", None);
            let r = c.delete("/v1/instance-types/vm-1");
            check_error(s, &format!("{who} deletes"), &r, 403, "forbidden", None);
        }
        assert_eq!(names(&a, "/v1/instance-types"), ["vm-1"], "[{b}]");
        assert_eq!(a.get("/v1/instance-types/vm-1").expect(200).body, t, "[{b}] unchanged");

        // Updates carry the generation.
        let t2 = a
            .patch("/v1/instance-types/vm-1", &json!({"generation": 1, "description": "two"}))
            .expect(200)
            .body;
        assert_eq!((&t2["description"], &t2["generation"]), (&json!("two"), &json!(2)), "[{b}]");
        let r =
            a.patch("/v1/instance-types/vm-1", &json!({"generation": 1, "description": "three"}));
        check_error(s, "stale generation", &r, 409, "generation_mismatch", None);
        let r = a.patch("/v1/instance-types/vm-1", &json!({"generation": 2, "gpus": 4}));
        check_error(s, "shape is not updatable", &r, 400, "invalid_request", Some("gpus"));
        assert_eq!(
            a.get("/v1/instance-types/vm-1").expect(200).body,
            t2,
            "[{b}] refused updates change nothing"
        );

        // In use: not deletable.
        let al = allocate(&alice, "vm-1").expect(201).body;
        assert_eq!(al["instance_type_id"], id, "[{b}]");
        let r = a.delete("/v1/instance-types/vm-1");
        check_error(s, "delete a type in use", &r, 409, "conflict", None);
        assert_eq!(a.get("/v1/instance-types/vm-1").expect(200).body, t2, "[{b}] still there");
        assert_eq!(
            alice.get(&format!("{ALLOCS}/{}", str_of(&al, "id"))).expect(200).body["state"],
            "active",
            "[{b}]"
        );
    });
}

/// A type with allocation history stays in the catalogue (the history
/// names it): deleting it is a conflict, not a server error; a type never
/// used can go.
#[test]
fn instance_types_with_allocation_history_stay_in_the_catalogue() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let a = s.admin();
        let alice = tenant(s);
        a.post("/v1/nodes", &node("n1", "su-a", "r1")).expect(201);
        instance_type(s, "vm-1", json!({"kind": "vm", "gpus": 1}));
        instance_type(s, "vm-2", json!({"kind": "vm", "gpus": 2}));
        let al = allocate(&alice, "vm-1").expect(201).body;
        release(&alice, &str_of(&al, "id")).expect(200);
        let t = a.get("/v1/instance-types/vm-1").expect(200).body;
        let r = a.delete("/v1/instance-types/vm-1");
        check_error(s, "delete a type with released allocations", &r, 409, "conflict", None);
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(msg.contains("1 past allocation"), "[{b}] {msg}");
        assert_eq!(a.get("/v1/instance-types/vm-1").expect(200).body, t, "[{b}] still there");
        let old = alice.get(&format!("{ALLOCS}/{}", str_of(&al, "id"))).expect(200).body;
        assert_eq!(
            (&old["state"], &old["instance_type_id"]),
            (&json!("released"), &t["id"]),
            "[{b}]"
        );
        // Never used: deleted, by name; gone for tenants and allocations.
        a.delete("/v1/instance-types/vm-2").expect(204);
        check_error(s, "deleted type", &a.get("/v1/instance-types/vm-2"), 404, "not_found", None);
        check_error(
            s,
            "delete twice",
            &a.delete("/v1/instance-types/vm-2"),
            404,
            "not_found",
            None,
        );
        let r = allocate(&alice, "vm-2");
        check_error(s, "allocate a deleted type", &r, 422, "invalid_value", Some("instance_type"));
        assert_eq!(names(&alice, "/v1/instance-types"), ["vm-1"], "[{b}]");
    });
}

#[test]
fn replicas_see_each_others_inventory_and_availability() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let alice = tenant(s);
        let r2 = s.replica();
        let a2 = r2.admin();
        let a1 = s.admin();
        // Warm both engines before the other replica changes anything.
        assert_eq!(capacity(&a1, "h100-80gb"), Value::Null, "[{b}]");
        assert_eq!(capacity(&a2, "h100-80gb"), Value::Null, "[{b}]");
        // A node and a type created through r2 are placed on through s.
        let n1 = a2.post("/v1/nodes", &node("n1", "su-a", "r1")).expect(201).body;
        a2.post(
            "/v1/instance-types",
            &json!({"name": "bm", "kind": "bare_metal", "gpu_model": "h100-80gb"}),
        )
        .expect(201);
        let al = allocate(&alice, "bm").expect(201).body;
        assert_eq!(placed_nodes(&al), [str_of(&n1, "id")], "[{b}]");
        let cap2 = capacity(&a2, "h100-80gb");
        assert_eq!(
            (&cap2["nodes"], &cap2["free_nodes"]),
            (&json!(1), &json!(0)),
            "[{b}] r2 sees s's allocation: {cap2}"
        );
        // The only node is taken, whichever replica is asked.
        let r = r2
            .client(alice.token.as_deref().unwrap())
            .post(ALLOCS, &json!({"instance_type": "bm"}));
        check_error(s, "r2 on a full fleet", &r, 409, "conflict", None);

        // Maintenance set through s shows in r2's capacity.
        a1.post("/v1/nodes", &node("n2", "su-a", "r1")).expect(201);
        let cap2 = capacity(&a2, "h100-80gb");
        assert_eq!((&cap2["nodes"], &cap2["free_nodes"]), (&json!(2), &json!(1)), "[{b}] {cap2}");
        a1.patch("/v1/nodes/n2", &json!({"generation": 1, "availability": "maintenance"}))
            .expect(200);
        let cap2 = capacity(&a2, "h100-80gb");
        assert_eq!(
            (&cap2["nodes"], &cap2["unavailable_nodes"], &cap2["free_nodes"], &cap2["free_gpus"]),
            (&json!(2), &json!(1), &json!(0), &json!(0)),
            "[{b}] r2 sees n2 in maintenance: {cap2}"
        );
        let r = r2
            .client(alice.token.as_deref().unwrap())
            .post(ALLOCS, &json!({"instance_type": "bm"}));
        check_error(s, "r2 does not place on n2", &r, 409, "conflict", None);
        // r2's stale generation for n2 is refused like any other.
        let r = a2.patch("/v1/nodes/n2", &json!({"generation": 1, "availability": "schedulable"}));
        check_error(s, "stale generation through r2", &r, 409, "generation_mismatch", None);

        // A release through r2 frees capacity for s.
        r2.client(alice.token.as_deref().unwrap())
            .delete(&format!("{ALLOCS}/{}", str_of(&al, "id")))
            .expect(200);
        let cap1 = capacity(&a1, "h100-80gb");
        assert_eq!(
            (&cap1["free_nodes"], &cap1["unavailable_nodes"]),
            (&json!(1), &json!(1)),
            "[{b}] {cap1}"
        );
        let again = allocate(&alice, "bm").expect(201).body;
        assert_eq!(placed_nodes(&again), [str_of(&n1, "id")], "[{b}] still not n2");
        // A node deleted through r2 is gone for s.
        a2.delete("/v1/nodes/n2").expect(204);
        let cap1 = capacity(&a1, "h100-80gb");
        assert_eq!(
            (&cap1["nodes"], &cap1["unavailable_nodes"]),
            (&json!(1), &json!(0)),
            "[{b}] {cap1}"
        );
    });
}
