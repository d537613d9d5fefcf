//! Provisioning networks (`/v1/provisioning-networks`): the subnets and
//! ranges nodes' static provisioning addresses are drawn from, managed
//! through the API on both stores: checked field by field, never
//! overlapping, drawn from one address per node (also by several replicas
//! at once), their gateway and name servers followed by their nodes (whose
//! ISOs are built again), kept while a node holds one of their addresses.

mod bm;
mod common;
#[path = "../../redfish/tests/common/mod.rs"]
mod peers;

use bm::*;
use common::nodes::node;
use common::{TestBackend, TestServer};
use serde_json::{json, Value};

#[test]
fn static_addresses_are_drawn_from_a_provisioning_network() {
    let Some(iso_config) = per_node_iso() else { return };
    for b in TestBackend::ALL {
        let Some(s) = TestServer::start_with(b, iso_tweak(&iso_config)) else {
            continue;
        };
        let b = b.as_str();
        s.admin()
            .post(
                "/v1/provisioning-networks",
                &json!({"name": "pod1", "subnet": "10.9.0.0/24", "first": "10.9.0.10",
                        "last": "10.9.0.13", "gateway": "10.9.0.1", "dns": ["10.9.0.11"]}),
            )
            .expect(201);
        let bmc = json!({"endpoint": "http://127.0.0.1:9", "username": "a", "password": "b"});
        let create = |name: &str, net: Value| {
            s.admin().post(
                "/v1/nodes",
                &json!({"name": name, "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                        "gpu_model": "h100-80gb", "gpus": 8, "bmc": bmc,
                        "boot_method": "virtual_media", "boot_network": net}),
            )
        };
        let mac = |i: u8| format!("52:54:00:00:09:{i:02x}");
        // The lowest free addresses, the name server among them skipped;
        // the network's gateway and name server.
        let n1 = create("n1", json!({"mac": mac(1), "network": "pod1"})).expect(201).body;
        assert_eq!(
            n1["boot_network"],
            json!({"mac": mac(1), "address": "10.9.0.10/24", "network": "pod1",
                   "gateway": "10.9.0.1", "dns": ["10.9.0.11"]}),
            "[{b}]"
        );
        let n2 = create("n2", json!({"mac": mac(2), "network": "pod1"})).expect(201).body;
        assert_eq!(n2["boot_network"]["address"], "10.9.0.12/24", "[{b}] .11 is the name server");
        // One asked inside the network is taken as asked.
        let n3 = create("n3", json!({"mac": mac(3), "network": "pod1", "address": "10.9.0.13"}))
            .expect(201)
            .body;
        assert_eq!(n3["boot_network"]["address"], "10.9.0.13/24", "[{b}]");
        // None left: 409, nothing written.
        let e = create("n4", json!({"mac": mac(4), "network": "pod1"})).expect(409);
        assert!(e.text.contains("no free address"), "[{b}] {}", e.text);
        let e = create("n4", json!({"mac": mac(4), "network": "pod9"})).expect(422);
        assert_eq!(e.error().1.as_deref(), Some("boot_network.network"), "[{b}] {}", e.text);
        assert!(e.text.contains("pod1"), "[{b}] names the networks there are: {}", e.text);
        for (asked, why) in
            [("10.8.0.5", "outside"), ("10.9.0.1", "the gateway"), ("10.9.0.11", "the name server")]
        {
            let e = create("n4", json!({"mac": mac(4), "network": "pod1", "address": asked}))
                .expect(422);
            assert_eq!(
                e.error().1.as_deref(),
                Some("boot_network.address"),
                "[{b}] {why}: {}",
                e.text
            );
        }
        // The network's gateway and name servers are its nodes': not given.
        let e = create("n4", json!({"mac": mac(4), "network": "pod1", "gateway": "10.9.0.2"}))
            .expect(422);
        assert_eq!(e.error().1.as_deref(), Some("boot_network.gateway"), "[{b}] {}", e.text);
        let e = create("n4", json!({"mac": mac(4), "network": "pod1", "dns": ["10.9.0.2"]}))
            .expect(422);
        assert_eq!(e.error().1.as_deref(), Some("boot_network.dns"), "[{b}] {}", e.text);
        assert!(s.admin().get("/v1/nodes/n4").status == 404, "[{b}]");

        // An update in the same network keeps the node's address; a node
        // deleted frees its own.
        let g = n1["generation"].clone();
        let n1b = s
            .admin()
            .patch(
                "/v1/nodes/n1",
                &json!({"generation": g, "availability": "schedulable",
                        "boot_network": {"mac": mac(1), "network": "pod1"}}),
            )
            .expect(200)
            .body;
        assert_eq!(n1b["boot_network"]["address"], "10.9.0.10/24", "[{b}]");
        s.admin().delete("/v1/nodes/n2").expect(204);
        let n5 = create("n5", json!({"mac": mac(5), "network": "pod1"})).expect(201).body;
        assert_eq!(n5["boot_network"]["address"], "10.9.0.12/24", "[{b}]");
    }
}

/// Nodes drawn at once from one network get one address each: eight
/// creates at once through four replicas (each replica serializes its own
/// placement writes; across replicas the draw is under a lock on
/// PostgreSQL).
#[test]
fn nodes_drawn_at_once_get_an_address_each() {
    let Some(iso_config) = per_node_iso() else { return };
    let tweak_all = &iso_tweak(&iso_config);
    for b in TestBackend::ALL {
        let Some(s) = TestServer::start_with(b, tweak_all) else { continue };
        let b = b.as_str();
        s.admin()
            .post(
                "/v1/provisioning-networks",
                &json!({"name": "pod1", "subnet": "10.9.0.0/24", "first": "10.9.0.10",
                        "last": "10.9.0.17"}),
            )
            .expect(201);
        let replicas =
            [s.replica_with(tweak_all), s.replica_with(tweak_all), s.replica_with(tweak_all)];
        let servers: Vec<&TestServer> = std::iter::once(&s).chain(replicas.iter()).collect();
        let got: Vec<Value> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8u8)
                .map(|i| {
                    let server = servers[usize::from(i) % servers.len()];
                    scope.spawn(move || {
                        server
                            .admin()
                            .post(
                                "/v1/nodes",
                                &json!({"name": format!("n{i}"), "site": "s", "pod": "p", "su": "su1",
                                        "rack": "r1", "gpu_model": "h100-80gb", "gpus": 8,
                                        "bmc": {"endpoint": "http://127.0.0.1:9", "username": "a", "password": "b"},
                                        "boot_method": "virtual_media",
                                        "boot_network": {"mac": format!("52:54:00:00:0a:{i:02x}"), "network": "pod1"}}),
                            )
                            .expect(201)
                            .body
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut addresses: Vec<String> = got
            .iter()
            .map(|n| n["boot_network"]["address"].as_str().unwrap().to_string())
            .collect();
        addresses.sort();
        addresses.dedup();
        assert_eq!(addresses.len(), 8, "[{b}] {addresses:?}");
    }
}

/// Every field of a network checked (422 naming it), names and subnets
/// unique (409), the range changed and its nodes kept, the gateway and
/// name servers followed by its nodes (their ISOs built again, with the
/// new gateway in the script), no node's address taken for them, and a
/// network removed only once no node holds one of its addresses.
#[test]
fn provisioning_networks_are_managed_through_the_api() {
    let Some(iso_config) = per_node_iso() else { return };
    for b in TestBackend::ALL {
        let Some(s) = TestServer::start_with(b, iso_tweak(&iso_config)) else {
            continue;
        };
        let b = b.as_str();
        let admin = s.admin();
        const NETS: &str = "/v1/provisioning-networks";
        let body = json!({"name": "pod1", "subnet": "10.9.0.0/24", "first": "10.9.0.10",
                          "last": "10.9.0.19", "gateway": "10.9.0.1", "dns": ["10.9.0.2"]});
        for (field, value) in [
            ("subnet", json!("10.9.0.0")),
            ("subnet", json!("10.9.0.1/24")),
            ("first", json!("10.8.0.10")),
            ("last", json!("10.9.0.5")),
            ("gateway", json!("10.9.1.1")),
            ("dns[0]", json!("not an address")),
        ] {
            let key = field.trim_end_matches("[0]");
            let mut bad = body.clone();
            bad[key] = if field == "dns[0]" { json!([value]) } else { value };
            let e = admin.post(NETS, &bad).expect(422);
            assert_eq!(e.error().1.as_deref(), Some(field), "[{b}] {}", e.text);
        }
        let mut bad = body.clone();
        bad["name"] = json!("Pod 1");
        let e = admin.post(NETS, &bad).expect(400);
        assert_eq!(e.error().1.as_deref(), Some("name"), "[{b}] {}", e.text);
        assert_eq!(admin.get(NETS).expect(200).body["items"], json!([]), "[{b}] nothing written");
        let pod1 = admin.post(NETS, &body).expect(201).body;
        assert_eq!(
            (&pod1["nodes"], &pod1["free"], &pod1["generation"]),
            (&json!(0), &json!(10), &json!(1)),
            "[{b}] {pod1}"
        );
        let e = admin.post(NETS, &body).expect(409);
        assert_eq!(e.error().1.as_deref(), Some("name"), "[{b}] {}", e.text);
        let mut overlapping = body.clone();
        overlapping["name"] = json!("pod2");
        overlapping["subnet"] = json!("10.9.0.0/23");
        overlapping["first"] = json!("10.9.1.10");
        overlapping["last"] = json!("10.9.1.20");
        overlapping["gateway"] = json!("10.9.1.1");
        let e = admin.post(NETS, &overlapping).expect(409);
        assert!(e.text.contains("overlaps provisioning network pod1"), "[{b}] {}", e.text);
        // A /8: its free addresses counted (the gateway and the name server
        // in its range not among them), not walked.
        let big = admin
            .post(
                NETS,
                &json!({"name": "big", "subnet": "11.0.0.0/8", "first": "11.0.0.1",
                        "last": "11.255.255.254", "gateway": "11.0.0.1", "dns": ["11.0.0.2", "1.1.1.1"]}),
            )
            .expect(201)
            .body;
        assert_eq!(big["free"], 16_777_212, "[{b}] {big}");
        admin.delete(&format!("{NETS}/big")).expect(204);

        // Two nodes in it: the network's gateway and name server.
        let create = |name: &str, mac: &str| {
            admin
                .post(
                    "/v1/nodes",
                    &json!({"name": name, "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                            "gpu_model": "h100-80gb", "gpus": 8, "boot_method": "virtual_media",
                            "bmc": {"endpoint": "http://127.0.0.1:9", "username": "a", "password": "b"},
                            "boot_network": {"mac": mac, "network": "pod1"}}),
                )
                .expect(201)
                .body
        };
        let n1 = create("n1", "52:54:00:00:0b:01");
        let n2 = create("n2", "52:54:00:00:0b:02");
        assert_eq!(n2["boot_network"]["address"], "10.9.0.11/24", "[{b}]");
        // An address of its own is no network's gateway or name server.
        for taken in ["10.9.0.1/24", "10.9.0.2/24"] {
            let e = admin
                .post(
                    "/v1/nodes",
                    &json!({"name": "n9", "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                            "gpu_model": "h100-80gb", "gpus": 8, "boot_method": "virtual_media",
                            "bmc": {"endpoint": "http://127.0.0.1:9", "username": "a", "password": "b"},
                            "boot_network": {"mac": "52:54:00:00:0b:09", "address": taken}}),
                )
                .expect(409);
            assert!(e.text.contains("provisioning network pod1"), "[{b}] {}", e.text);
        }
        let got = admin.get(&format!("{NETS}/pod1")).expect(200).body;
        assert_eq!((&got["nodes"], &got["free"]), (&json!(2), &json!(8)), "[{b}] {got}");

        // What the server builds for a node (the same builder and URL).
        let isos = neocloud_server::boot::iso::NodeIsos::new(
            neocloud_server::boot::iso::IsoBuilder::new(iso_config.clone(), &s.data_dir).unwrap(),
            s.url.clone(),
        );
        let iso_of = |n: &Value| {
            let bn: neocloud_types::BootNetwork = serde_json::from_value(
                node(&s, n["name"].as_str().unwrap())["boot_network"].clone(),
            )
            .unwrap();
            isos.for_node(n["id"].as_str().unwrap(), &bn.check().unwrap()).unwrap()
        };
        let before = iso_of(&n1);
        assert!(before.script.contains("gateway 10.9.0.1\n"), "[{b}] {}", before.script);

        // A node's address is not the network's gateway; a stale
        // generation is refused; nothing changes either way.
        let e = admin
            .patch(&format!("{NETS}/pod1"), &json!({"generation": 1, "gateway": "10.9.0.10"}))
            .expect(409);
        assert!(e.text.contains("10.9.0.10"), "[{b}] {}", e.text);
        let e = admin
            .patch(&format!("{NETS}/pod1"), &json!({"generation": 7, "gateway": "10.9.0.3"}))
            .expect(409);
        assert_eq!(e.error().0, "generation_mismatch", "[{b}] {}", e.text);
        assert_eq!(node(&s, "n1")["generation"], n1["generation"], "[{b}]");

        // A new gateway and a narrower range: the nodes take the gateway
        // (their generation bumped, their ISOs built again with it) and
        // keep their addresses.
        let changed = admin
            .patch(
                &format!("{NETS}/pod1"),
                &json!({"generation": 1, "gateway": "10.9.0.254", "first": "10.9.0.11", "last": "10.9.0.11"}),
            )
            .expect(200)
            .body;
        assert_eq!(
            (&changed["generation"], &changed["free"], &changed["nodes"]),
            (&json!(2), &json!(0), &json!(2)),
            "[{b}] {changed}"
        );
        for (n, address) in [(&n1, "10.9.0.10/24"), (&n2, "10.9.0.11/24")] {
            let now = node(&s, n["name"].as_str().unwrap());
            assert_eq!(now["boot_network"]["address"], address, "[{b}]");
            assert_eq!(now["boot_network"]["gateway"], "10.9.0.254", "[{b}]");
            assert_eq!(now["boot_network"]["dns"], json!(["10.9.0.2"]), "[{b}]");
            assert_eq!(
                now["generation"].as_i64(),
                n["generation"].as_i64().map(|g| g + 1),
                "[{b}]"
            );
        }
        let after = iso_of(&n1);
        assert_ne!(after.key, before.key, "[{b}]");
        assert!(after.script.contains("gateway 10.9.0.254\n"), "[{b}] {}", after.script);
        common::nodes::wait_for("the node's new ISO", std::time::Duration::from_secs(30), || {
            isos.builder.is_cached(&after.key).then_some(())
        });
        let (status, _, iso) = fetch(&after.url, None);
        assert_eq!(status, 200, "[{b}]");
        assert!(autoexec_of(&iso).contains("gateway 10.9.0.254\n"), "[{b}] the ISO served");
        // None left in the narrowed range.
        let e = admin
            .post(
                "/v1/nodes",
                &json!({"name": "n3", "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                        "gpu_model": "h100-80gb", "gpus": 8, "boot_method": "virtual_media",
                        "bmc": {"endpoint": "http://127.0.0.1:9", "username": "a", "password": "b"},
                        "boot_network": {"mac": "52:54:00:00:0b:03", "network": "pod1"}}),
            )
            .expect(409);
        assert!(e.text.contains("no free address"), "[{b}] {}", e.text);

        // Removed only once no node holds one of its addresses.
        let e = admin.delete(&format!("{NETS}/pod1")).expect(409);
        assert!(e.text.contains("n1") && e.text.contains("n2"), "[{b}] names them: {}", e.text);
        admin.delete("/v1/nodes/n2").expect(204);
        let g = node(&s, "n1")["generation"].clone();
        admin
            .patch(
                "/v1/nodes/n1",
                &json!({"generation": g, "availability": "schedulable", "boot_method": "pxe", "boot_network": null}),
            )
            .expect(200);
        admin.delete(&format!("{NETS}/pod1")).expect(204);
        admin.get(&format!("{NETS}/pod1")).expect(404);
        let e = admin
            .patch("/v1/nodes/n1", &json!({"generation": node(&s, "n1")["generation"], "availability": "schedulable",
                                           "boot_method": "virtual_media", "boot_network": {"mac": "52:54:00:00:0b:01", "network": "pod1"}}))
            .expect(422);
        assert_eq!(e.error().1.as_deref(), Some("boot_network.network"), "[{b}] {}", e.text);
        // Every change audited, as done.
        let events = admin.get("/v1/audit?limit=1000").expect(200).body["items"].clone();
        for a in [
            "provisioning_network_create",
            "provisioning_network_update",
            "provisioning_network_delete",
        ] {
            let done = events
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == a && e["outcome"] == "success");
            assert!(done, "[{b}] {a} audited");
        }
    }
}

/// A network removed while nodes are drawn from it through four replicas:
/// afterwards either it is there or no node names it (the removal and the
/// draws take the same address lock, so no draw reads a network a removal
/// is deleting). Ten rounds, eight creates and one removal each.
#[test]
fn a_network_removed_while_drawn_from_leaves_no_node_in_it() {
    let Some(iso_config) = per_node_iso() else { return };
    let tweak_all = &iso_tweak(&iso_config);
    for b in TestBackend::ALL {
        let Some(s) = TestServer::start_with(b, tweak_all) else { continue };
        let b = b.as_str();
        let replicas =
            [s.replica_with(tweak_all), s.replica_with(tweak_all), s.replica_with(tweak_all)];
        let servers: Vec<&TestServer> = std::iter::once(&s).chain(replicas.iter()).collect();
        for round in 0..10u8 {
            let net = format!("r{round}");
            s.admin()
                .post(
                    "/v1/provisioning-networks",
                    &json!({"name": net, "subnet": format!("10.20.{round}.0/24"),
                            "first": format!("10.20.{round}.10"), "last": format!("10.20.{round}.200")}),
                )
                .expect(201);
            let deleted = std::thread::scope(|scope| {
                for i in 0..8u8 {
                    let server = servers[usize::from(i) % servers.len()];
                    let net = net.clone();
                    scope.spawn(move || {
                        let r = server.admin().post(
                            "/v1/nodes",
                            &json!({"name": format!("r{round}n{i}"), "site": "s", "pod": "p", "su": "su1",
                                    "rack": "r1", "gpu_model": "h100-80gb", "gpus": 8,
                                    "bmc": {"endpoint": "http://127.0.0.1:9", "username": "a", "password": "b"},
                                    "boot_method": "virtual_media",
                                    "boot_network": {"mac": format!("52:54:00:00:{round:02x}:{i:02x}"), "network": net}}),
                        );
                        assert!(r.status == 201 || r.status == 422, "[{b}] {}", r.text);
                    });
                }
                let server = servers[usize::from(round) % servers.len()];
                let r = server.admin().delete(&format!("/v1/provisioning-networks/{net}"));
                assert!(r.status == 204 || r.status == 409, "[{b}] {}", r.text);
                r.status == 204
            });
            let exists = s.admin().get(&format!("/v1/provisioning-networks/{net}")).status == 200;
            assert_eq!(exists, !deleted, "[{b}]");
            let nodes = s.admin().get("/v1/nodes").expect(200).body["items"].clone();
            let in_it = nodes
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| n["boot_network"]["network"] == json!(net))
                .count();
            assert!(
                exists || in_it == 0,
                "[{b}] round {round}: {in_it} node(s) in removed network {net}"
            );
        }
    }
}
