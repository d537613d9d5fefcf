//! End to end for the inventory commands: `node`, `instance-type`,
//! `capacity` and `allocation`, against the real `neocloud serve` binary.
//! The harness is in common/mod.rs.

mod common;
use common::*;
use serde_json::Value;
#[allow(unused_imports)]
use std::net::TcpListener;
#[allow(unused_imports)]
use std::process::Command;
#[allow(unused_imports)]
use std::time::Duration;

/// The items of a list answer.
fn items(v: &Value) -> &Vec<Value> {
    v["items"].as_array().unwrap_or_else(|| panic!("not a list: {v}"))
}

/// `capacity -o json`: the one GPU model's totals.
fn total(cli: &Cli) -> Value {
    let cap = cli.ok(&["capacity", "-o", "json"]).json();
    let models = cap["models"].as_array().expect("models");
    assert_eq!(models.len(), 1, "{cap}");
    assert_eq!(models[0]["gpu_model"], "h100-80gb");
    models[0]["total"].clone()
}

/// The distinct node ids of an allocation's placement.
fn placed_nodes(a: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for x in a["placement"]["assignments"].as_array().expect("assignments") {
        let id = x["node_id"].as_str().expect("node_id").to_string();
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

fn generation(v: &Value) -> String {
    v["generation"].as_i64().unwrap_or_else(|| panic!("no generation: {v}")).to_string()
}

#[test]
fn inventory_end_to_end() {
    let dir = Scratch::new("e2e");
    let server = Server::start(&dir.0);
    let cli = Cli::new(&dir.0);
    cli.login(&server);

    // Nodes: n1 and n2 in su-a, n3 alone in su-b; 8 x h100-80gb, MIG capable.
    let mut node_ids = Vec::new();
    for (name, su, rack) in [("n1", "su-a", "r1"), ("n2", "su-a", "r2"), ("n3", "su-b", "r3")] {
        let args = [
            "node",
            "create",
            name,
            "--site",
            "s1",
            "--pod",
            "p1",
            "--su",
            su,
            "--rack",
            rack,
            "--gpu-model",
            "h100-80gb",
            "--gpus",
            "8",
            "--mig-capable",
        ];
        let o = cli.ok(&args);
        assert_table(&o.stdout, &["NAME", "ID", "SITE", "POD", "SU", "RACK"], name);
        let n = cli.ok(&["node", "get", name, "-o", "json"]).json();
        assert_eq!(n["su"], su);
        assert_eq!(n["gpus"], 8);
        assert_eq!(n["mig_capable"], true);
        assert_eq!(n["availability"], "schedulable");
        node_ids.push(n["id"].as_str().expect("node id").to_string());
    }
    let dup = cli.expect(
        6,
        &[
            "node",
            "create",
            "n1",
            "--site",
            "s1",
            "--pod",
            "p1",
            "--su",
            "su-a",
            "--rack",
            "r1",
            "--gpu-model",
            "h100-80gb",
            "--gpus",
            "8",
        ],
    );
    assert!(dup.stderr.contains("error:"), "{}", dup.stderr);
    assert_eq!(items(&cli.ok(&["node", "list", "-o", "json"]).json()).len(), 3);
    let o = cli.ok(&["node", "list"]);
    assert_table(&o.stdout, &["NAME", "ID"], "n3");
    assert_eq!(o.stdout.lines().count(), 4, "{}", o.stdout);
    // A bad value is a usage error, before any request.
    cli.expect(2, &["node", "update", "n1", "--availability", "broken", "--generation", "1"]);
    cli.expect(5, &["node", "get", "no-such-node"]);

    // Instance types.
    let o = cli.ok(&[
        "instance-type",
        "create",
        "bm",
        "--kind",
        "bare-metal",
        "--gpu-model",
        "h100-80gb",
        "--description",
        "A whole HGX node",
    ]);
    assert_table(&o.stdout, &["NAME", "ID", "KIND", "GPU MODEL"], "bm");
    let vm = cli
        .ok(&[
            "instance-type",
            "create",
            "vm-2",
            "--kind",
            "vm",
            "--gpu-model",
            "h100-80gb",
            "--gpus",
            "2",
            "--vcpus",
            "32",
            "--memory-gib",
            "256",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(vm["kind"], "vm");
    assert_eq!(vm["gpus"], 2);
    assert_eq!(vm["memory_gib"], 256);
    let mig = cli
        .ok(&[
            "instance-type",
            "create",
            "mig-1g",
            "--kind",
            "mig",
            "--gpu-model",
            "h100-80gb",
            "--mig-profile",
            "1g.10gb",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(mig["mig_profile"], "1g.10gb");
    let bad = cli.expect(
        7,
        &[
            "instance-type",
            "create",
            "mig-bad",
            "--kind",
            "mig",
            "--gpu-model",
            "h100-80gb",
            "--mig-profile",
            "9g.99gb",
        ],
    );
    assert!(bad.stderr.contains("field: mig_profile"), "{}", bad.stderr);
    let types = cli.ok(&["instance-type", "list", "-o", "json"]).json();
    assert_eq!(items(&types).len(), 3, "{types}");
    assert_eq!(items(&types).iter().filter(|t| t["kind"] == "bare_metal").count(), 1);
    let o = cli.ok(&["instance-type", "list"]);
    assert_table(&o.stdout, &["NAME", "ID", "KIND"], "mig-1g");
    assert!(o.stdout.contains("bare_metal"), "{}", o.stdout);
    let bm = cli.ok(&["instance-type", "get", "bm", "-o", "json"]).json();
    let bm_gen = generation(&bm);
    let bm = cli
        .ok(&[
            "instance-type",
            "update",
            "bm",
            "--generation",
            &bm_gen,
            "--description",
            "HGX H100",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(bm["description"], "HGX H100");
    cli.expect(
        6,
        &["instance-type", "update", "bm", "--generation", &bm_gen, "--description", "stale"],
    );

    // A tenant, a project and a quota.
    cli.ok(&["tenant", "create", "t"]);
    cli.ok(&["project", "create", "p", "--tenant", "t"]);
    let q = cli.ok(&["quota", "get", "--tenant", "t", "-o", "json"]).json();
    cli.ok(&[
        "quota",
        "set",
        "--tenant",
        "t",
        "nodes=10",
        "gpu:h100-80gb=64",
        "mig:1g.10gb=20",
        "--generation",
        &generation(&q),
    ]);

    let before = total(&cli);
    assert_eq!(before["nodes"], 3);
    assert_eq!(before["free_nodes"], 3);
    assert_eq!(before["free_gpus"], 24);

    // A gang of two whole nodes in one SU: only su-a has room.
    let at = ["--tenant", "t", "--project", "p"];
    let alloc = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["allocation", "create"].iter().map(|s| s.to_string()).collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v.extend(at.iter().map(|s| s.to_string()));
        v
    };
    let args = alloc(&["--instance-type", "bm", "--count", "2", "--scope", "su", "-o", "json"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let gang = cli.ok(&args).json();
    assert_eq!(gang["state"], "active");
    assert_eq!(gang["count"], 2);
    assert_eq!(gang["instance_type_id"], bm["id"]);
    assert_eq!(gang["constraints"]["scope"], "su");
    let mut placed = placed_nodes(&gang);
    placed.sort();
    let mut su_a = vec![node_ids[0].clone(), node_ids[1].clone()];
    su_a.sort();
    assert_eq!(placed, su_a, "{gang}");
    let gang_id = gang["id"].as_str().expect("allocation id").to_string();

    let after = total(&cli);
    assert_eq!(after["free_nodes"], 1, "{after}");
    assert_eq!(after["free_gpus"], 8, "{after}");

    // The table: one row, the GPUs held, the nodes truncated to fit.
    let o = cli.ok(&["allocation", "get", &gang_id, "--tenant", "t", "--project", "p"]);
    assert_table(&o.stdout, &["ID", "TYPE ID", "COUNT", "STATE", "NODES", "GPUS"], &gang_id);
    let row: Vec<&str> = o.stdout.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[2..4], &["2", "active"], "{}", o.stdout);
    assert!(row.contains(&"16"), "{}", o.stdout);
    assert!(o.stdout.contains("+1 more"), "{}", o.stdout);

    // No SU has two free nodes left.
    let args = alloc(&["--instance-type", "bm", "--count", "2", "--scope", "su"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let no = cli.expect(6, &args);
    assert!(no.stderr.contains("cannot place"), "{}", no.stderr);
    assert_eq!(total(&cli)["free_nodes"], 1);

    // Two GPUs in one NVLink domain, and a MIG slice: both on n3.
    let args = alloc(&["--instance-type", "vm-2", "-o", "json"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let v = cli.ok(&args).json();
    assert_eq!(placed_nodes(&v), vec![node_ids[2].clone()], "{v}");
    assert_eq!(v["placement"]["assignments"][0]["gpus"].as_array().map(Vec::len), Some(2));
    let vm_id = v["id"].as_str().unwrap().to_string();
    let args = alloc(&["--instance-type", "mig-1g", "--policy", "pack", "-o", "json"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let m = cli.ok(&args).json();
    assert_eq!(m["placement"]["assignments"][0]["mig"]["profile"], "1g.10gb", "{m}");
    let mig_id = m["id"].as_str().unwrap().to_string();
    let now = total(&cli);
    assert_eq!(now["free_nodes"], 0, "{now}");
    assert_eq!(now["mig_gpus"], 1, "{now}");
    assert!(now["mig_free_slices"].as_u64().unwrap() > 0, "{now}");

    // Capacity tables: per model (default) and one row per SU.
    let o = cli.ok(&["capacity"]);
    assert_table(&o.stdout, &["GPU MODEL", "NODES", "UNAVAILABLE", "FREE NODES"], "h100-80gb");
    assert_eq!(o.stdout.lines().count(), 2, "{}", o.stdout);
    assert!(o.stdout.lines().next().unwrap().ends_with("FRAGMENTATION"), "{}", o.stdout);
    let o = cli.ok(&["capacity", "--by", "su"]);
    assert_table(&o.stdout, &["GPU MODEL", "SU", "NODES"], "h100-80gb");
    let rows: Vec<Vec<&str>> =
        o.stdout.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{}", o.stdout);
    assert_eq!((rows[0][1], rows[0][2]), ("p1/su-a", "2"), "{}", o.stdout);
    assert_eq!((rows[1][1], rows[1][2]), ("p1/su-b", "1"), "{}", o.stdout);
    // Fragmentation has two decimals.
    assert!(rows.iter().all(|r| r.last().unwrap().split('.').nth(1).map(str::len) == Some(2)));
    let o = cli.ok(&["capacity", "--by", "rack"]);
    assert_eq!(o.stdout.lines().count(), 4, "{}", o.stdout);
    let o = cli.ok(&["capacity", "--gpu-model", "b200", "-o", "json"]).json();
    assert_eq!(o["models"].as_array().map(Vec::len), Some(0), "{o}");

    let o = cli.ok(&["allocation", "list", "--tenant", "t", "--project", "p"]);
    assert_table(&o.stdout, &["ID", "TYPE ID", "COUNT", "STATE"], &mig_id);
    assert_eq!(o.stdout.lines().count(), 4, "{}", o.stdout);

    // Maintenance, with a stale generation refused.
    let n3 = cli.ok(&["node", "get", "n3", "-o", "json"]).json();
    let g3 = generation(&n3);
    let n3 = cli
        .ok(&[
            "node",
            "update",
            "n3",
            "--availability",
            "maintenance",
            "--generation",
            &g3,
            "-o",
            "json",
        ])
        .json();
    assert_eq!(n3["availability"], "maintenance");
    assert_eq!(total(&cli)["unavailable_nodes"], 1);
    let stale = cli
        .expect(6, &["node", "update", "n3", "--availability", "maintenance", "--generation", &g3]);
    assert!(stale.stderr.contains("error:"), "{}", stale.stderr);
    let o = cli.ok(&[
        "node",
        "update",
        "n3",
        "--availability",
        "schedulable",
        "--generation",
        &generation(&n3),
    ]);
    assert_table(&o.stdout, &["NAME"], "n3");
    assert!(o.stdout.contains("schedulable"), "{}", o.stdout);
    // A node holding allocations cannot go.
    cli.expect(6, &["node", "delete", "n1"]);

    // Release the gang: its nodes are free again.
    let r = cli
        .ok(&["allocation", "release", &gang_id, "--tenant", "t", "--project", "p", "-o", "json"])
        .json();
    assert_eq!(r["state"], "released");
    assert_eq!(total(&cli)["free_nodes"], 2);
    let list =
        cli.ok(&["allocation", "list", "-o", "json", "--tenant", "t", "--project", "p"]).json();
    let state = |id: &str| {
        items(&list)
            .iter()
            .find(|a| a["id"] == id)
            .map(|a| a["state"].clone())
            .unwrap_or_else(|| panic!("{id} not listed: {list}"))
    };
    assert_eq!(state(&gang_id), "released");
    assert_eq!(state(&vm_id), "active");
    assert_eq!(state(&mig_id), "active");
    let q = cli.ok(&["quota", "get", "--tenant", "t", "-o", "json"]).json();
    assert_eq!(q["resources"]["nodes"]["committed"], 0, "{q}");
    assert_eq!(q["resources"]["gpu:h100-80gb"]["committed"], 2, "{q}");
    assert_eq!(q["resources"]["mig:1g.10gb"]["committed"], 1, "{q}");

    // A type in use cannot be deleted.
    cli.expect(6, &["instance-type", "delete", "vm-2"]);

    // Release the rest; then an unused node can be deleted.
    for id in [&vm_id, &mig_id] {
        let o = cli.ok(&["allocation", "release", id, "--tenant", "t", "--project", "p"]);
        assert_table(&o.stdout, &["ID"], id);
        assert!(o.stdout.contains("released"), "{}", o.stdout);
    }
    assert_eq!(total(&cli)["free_nodes"], 3);

    // Reserve two nodes now, allocate one of them later.
    let at = ["--tenant", "t", "--project", "p"];
    let mut args = vec![
        "allocation",
        "create",
        "--instance-type",
        "bm",
        "--count",
        "2",
        "--reserve",
        "-o",
        "json",
    ];
    args.extend_from_slice(&at);
    let r = cli.ok(&args).json();
    assert_eq!(r["kind"], "reservation", "{r}");
    let rid = r["id"].as_str().unwrap().to_string();
    assert_eq!(total(&cli)["free_nodes"], 1);
    let mut args = vec![
        "allocation",
        "create",
        "--instance-type",
        "bm",
        "--from-reservation",
        &rid,
        "-o",
        "json",
    ];
    args.extend_from_slice(&at);
    let a = cli.ok(&args).json();
    assert_eq!(a["reservation_id"], rid.as_str(), "{a}");
    assert!(placed_nodes(&r).contains(&placed_nodes(&a)[0]), "allocated from the reserved nodes");
    let mut args = vec!["allocation", "get", &rid, "--reservation", "-o", "json"];
    args.extend_from_slice(&at);
    assert_eq!(cli.ok(&args).json()["count"], 1);
    let mut args = vec!["allocation", "list", "--reservations", "-o", "json"];
    args.extend_from_slice(&at);
    assert_eq!(items(&cli.ok(&args).json()).len(), 1);
    let aid = a["id"].as_str().unwrap().to_string();
    for (id, flag) in [(&aid, None), (&rid, Some("--reservation"))] {
        let mut args = vec!["allocation", "release", id.as_str()];
        args.extend(flag);
        args.extend_from_slice(&at);
        cli.ok(&args);
    }
    assert_eq!(total(&cli)["free_nodes"], 3);

    // Enrolling through a BMC: the password comes from a file and is never shown.
    let pw = dir.0.join("bmc.pw");
    std::fs::write(&pw, "bmc-secret-77\n").unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = format!("http://127.0.0.1:{closed}");
    let enroll = [
        "node",
        "create",
        "enr1",
        "--site",
        "s1",
        "--pod",
        "p1",
        "--su",
        "su-a",
        "--rack",
        "r9",
        "--gpu-model",
        "h100-80gb",
        "--gpus",
        "8",
        "--bmc-endpoint",
        &endpoint,
        "--bmc-username",
        "admin",
        "--bmc-password-file",
        pw.to_str().unwrap(),
        "-o",
        "json",
    ];
    // A new node is sanitized before it joins the pool: not without a
    // sanitizer in the catalog.
    let o = cli.expect(6, &enroll);
    assert!(o.stderr.contains("no sanitizer image in the catalog"), "{}", o.stderr);
    cli.ok(&[
        "image",
        "create",
        "sanitizer",
        "--purpose",
        "sanitizer",
        "--kernel",
        "http://images.invalid/sanitizer/vmlinuz",
        "--initrd",
        "http://images.invalid/sanitizer/initrd",
    ]);
    let o = cli.ok(&enroll);
    assert!(!o.stdout.contains("bmc-secret-77"), "{}", o.stdout);
    let n = o.json();
    assert_eq!(n["lifecycle"]["state"], "enrolling", "{n}");
    assert_eq!(n["bmc_endpoint"], endpoint.as_str(), "{n}");
    assert_eq!(n["boot_method"], "pxe", "{n}");
    // Virtual-media boots need the server's iPXE ISO, which it has not.
    let generation = n["generation"].to_string();
    let o = cli.expect(
        7,
        &[
            "node",
            "update",
            "enr1",
            "--availability",
            "schedulable",
            "--boot-method",
            "virtual-media",
            "--generation",
            &generation,
        ],
    );
    assert!(o.stderr.contains("boot_method"), "{}", o.stderr);
    // A static provisioning address goes as the API's boot_network: this
    // server builds no per-node ISOs, and says so naming it.
    let o = cli.expect(
        7,
        &[
            "node",
            "update",
            "enr1",
            "--availability",
            "schedulable",
            "--boot-method",
            "virtual-media",
            "--boot-mac",
            "52:54:00:aa:bb:cc",
            "--boot-address",
            "10.0.0.5/24",
            "--boot-gateway",
            "10.0.0.1",
            "--boot-dns",
            "10.0.0.2",
            "--generation",
            &generation,
        ],
    );
    assert!(o.stderr.contains("boot_network") && o.stderr.contains("per_node_iso"), "{}", o.stderr);
    let o = cli.expect(
        2,
        &[
            "node",
            "update",
            "enr1",
            "--availability",
            "schedulable",
            "--boot-mac",
            "52:54:00:aa:bb:cc",
            "--generation",
            &generation,
        ],
    );
    assert!(o.stderr.contains("--boot-address"), "{}", o.stderr);
    let o = cli.expect(
        7,
        &[
            "node",
            "update",
            "enr1",
            "--availability",
            "schedulable",
            "--boot-method",
            "virtual-media",
            "--boot-mac",
            "52:54:00:aa:bb:cc",
            "--boot-network",
            "pod1",
            "--generation",
            &generation,
        ],
    );
    assert!(o.stderr.contains("boot_network"), "{}", o.stderr);
    let o = cli.ok(&[
        "node",
        "update",
        "enr1",
        "--availability",
        "schedulable",
        "--no-boot-network",
        "--generation",
        &generation,
        "-o",
        "json",
    ]);
    assert!(o.json().get("boot_network").is_none(), "{}", o.stdout);
    // Inspect again: the API records the intent (202) and answers the node.
    let o = cli.ok(&["node", "inspect", "enr1", "-o", "json"]);
    assert!(o.json()["bmc_endpoint"].is_string(), "{}", o.stdout);
    let o = cli.expect(6, &["node", "inspect", "n1"]);
    assert!(o.stderr.contains("no BMC"), "{}", o.stderr);
    // Its hardware: nothing inspected, no agent.
    let o = cli.ok(&["node", "hardware", "n1"]);
    assert!(o.stdout.contains("SOURCE") && o.stdout.contains("not inspected"), "{}", o.stdout);
    let hw = cli.ok(&["node", "hardware", "n1", "-o", "json"]).json();
    assert!(hw["bmc"].is_null() && hw["agent"].is_null(), "{hw}");
    cli.expect(5, &["node", "hardware", "no-such-node"]);
    // Tokens for provider users (e.g. a provider-viewer for a dashboard).
    cli.ok(&["user", "create", "ops", "--role", "provider-viewer"]);
    let o = cli.ok(&["token", "create", "dash", "--provider-user", "ops"]);
    assert!(o.stdout.contains("secret: nc_"), "{}", o.stdout);
    cli.expect(2, &["token", "create", "x", "--provider-user", "ops", "--tenant", "t"]);
    let o = cli.ok(&["node", "get", "enr1"]);
    assert!(o.stdout.contains("LIFECYCLE"), "{}", o.stdout);
    let lines: Vec<&str> = o.stdout.lines().collect();
    // Its BMC never answered: no health read.
    let column = lines[0].find(" HEALTH ").map(|c| c + 1);
    let health = column.and_then(|c| lines.get(1).and_then(|l| l.get(c..c + 1)));
    assert_eq!(health, Some("-"), "{}", o.stdout);
    let column = lines[0].find(" BOOT ").map(|c| c + 1);
    let boot = column.and_then(|c| lines.get(1).and_then(|l| l.get(c..c + 3)));
    assert_eq!(boot, Some("pxe"), "{}", o.stdout);
    cli.expect(
        2,
        &[
            "node",
            "create",
            "enr2",
            "--site",
            "s1",
            "--pod",
            "p1",
            "--su",
            "su-a",
            "--rack",
            "r9",
            "--gpu-model",
            "h100-80gb",
            "--gpus",
            "8",
            "--bmc-endpoint",
            &endpoint,
        ],
    );

    cli.ok(&["instance-type", "create", "spare", "--kind", "bare-metal", "--gpu-model", "b200"]);
    let o = cli.ok(&["instance-type", "delete", "spare"]);
    assert!(o.stdout.contains("deleted"), "{}", o.stdout);
    cli.expect(5, &["instance-type", "get", "spare"]);
    cli.ok(&["node", "delete", "n3"]);
    cli.ok(&["node", "delete", "enr1"]);
    assert_eq!(total(&cli)["nodes"], 2);
}

#[test]
fn inventory_needs_a_login() {
    let dir = Scratch::new("nologin");
    let cli = Cli::new(&dir.0);
    let o = cli.expect(3, &["capacity"]);
    assert!(o.stderr.contains("not logged in"), "{}", o.stderr);
    cli.expect(2, &["allocation", "list", "--tenant", "t"]);
}
