//! End to end for the networking commands against the real `neocloud
//! serve` binary (harness in common/mod.rs): a fabric of SIMULATED
//! switches applied from a file and replaced, its plan, and a tenant's
//! VPC, networks and security rule.
//!
//! One leaf is managed `none`: it is planned but never pushed, so the plan
//! always has changes to show, while the fabric controller brings the
//! simulated switches in sync.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn switch(name: &str, role: &str, asn: u32, lo: &str, ports: Value, transport: &str) -> Value {
    json!({"name": name, "role": role, "os": "frr", "mgmt_address": lo, "asn": asn,
           "loopback": lo, "fabric_ports": ports, "management": {"transport": transport}})
}

fn fabric_doc() -> Value {
    // North-south traffic (the VPC's NAT gateway) leaves through it.
    let mut border = switch(
        "border1",
        "border",
        65200,
        "10.255.2.1",
        json!([{"port": "swp49", "peer": "spine1"}]),
        "simulated",
    );
    border["uplink"] =
        json!({"port": "swp50", "address": "203.0.113.2/30", "gateway": "203.0.113.1"});
    json!({
        "kind": "ethernet",
        "pools": {"l2_vni": {"first": 10000, "last": 10999},
                  "l3_vni": {"first": 50000, "last": 50099},
                  "vlan": {"first": 100, "last": 999}, "route_target_asn": 65000,
                  "provisioning_vni": 9999, "provisioning_vlan": 4000,
                  "public": ["198.51.100.0/28"]},
        "switches": [
            switch("spine1", "spine", 65000, "10.255.0.1",
                   json!([{"port": "swp1", "peer": "leaf1"}, {"port": "swp2", "peer": "leaf2"},
                          {"port": "swp3", "peer": "border1"}]),
                   "simulated"),
            switch("leaf1", "leaf", 65101, "10.255.1.1",
                   json!([{"port": "swp49", "peer": "spine1"}]), "simulated"),
            switch("leaf2", "leaf", 65102, "10.255.1.2",
                   json!([{"port": "swp49", "peer": "spine1"}]), "none"),
            border,
        ],
    })
}

fn items(v: &Value) -> &Vec<Value> {
    v["items"].as_array().unwrap_or_else(|| panic!("not a list: {v}"))
}

fn state_of(f: &Value, switch: &str) -> String {
    let all = f["switches"].as_array().unwrap_or_else(|| panic!("no switches: {f}"));
    let s = all.iter().find(|s| s["name"] == switch).unwrap_or_else(|| panic!("no {switch}"));
    s["state"].as_str().unwrap_or_default().to_string()
}

/// `args` and then `--tenant acme --project p`.
fn at<'a>(args: &[&'a str]) -> Vec<&'a str> {
    plus(args, &["--tenant", "acme", "--project", "p"])
}

fn plus<'a>(args: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    [args, more].concat()
}

#[test]
fn fabric_plan_and_tenant_networks_end_to_end() {
    let dir = Scratch::new("network");
    let server = Server::start(&dir.0);
    let cli = Cli::new(&dir.0);
    cli.login(&server);
    let file = dir.0.join("dc1.json");
    std::fs::write(&file, fabric_doc().to_string()).unwrap();
    let file = file.to_str().unwrap();

    // Created from the file: the fabric's row, then its switches.
    let o = cli.ok(&["fabric", "apply", "dc1", "-f", file]);
    assert_table(&o.stdout, &["NAME", "ID", "KIND", "SWITCHES", "IN SYNC"], "dc1");
    let (_, switches) = o.stdout.split_once("\n\n").unwrap_or_else(|| panic!("{}", o.stdout));
    assert_table(switches, &["SWITCH", "ROLE", "OS", "STATE", "APPLIED"], "border1");
    assert!(o.stdout.contains("unmanaged"), "{}", o.stdout);
    assert_table(&cli.ok(&["fabric", "list"]).stdout, &["NAME", "ID", "KIND"], "dc1");

    // The simulated switches converge; leaf2 is never pushed.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let f = cli.ok(&["fabric", "get", "dc1", "-o", "json"]).json();
        if ["spine1", "leaf1", "border1"].iter().all(|s| state_of(&f, s) == "in_sync") {
            assert_eq!(state_of(&f, "leaf2"), "unmanaged", "{f}");
            break;
        }
        assert!(Instant::now() < deadline, "the simulated switches never got in sync: {f}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The plan: only the unmanaged leaf has changes, with its FRR steps.
    let plan = cli.ok(&["-o", "json", "fabric", "plan", "dc1"]).json();
    let changed: Vec<&Value> = plan["switches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["changes"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(changed.len(), 1, "{plan}");
    assert_eq!(changed[0]["name"], "leaf2", "{plan}");
    assert!(!changed[0]["steps"].as_array().unwrap().is_empty(), "{plan}");
    let o = cli.ok(&["fabric", "plan", "dc1"]);
    assert!(o.stdout.contains(": 1 of 4 switches change"), "{}", o.stdout);
    assert_table(
        &o.stdout.lines().skip(2).collect::<Vec<_>>().join("\n"),
        &["SWITCH", "OS", "CHANGES", "STEPS"],
        "leaf2",
    );
    assert!(o.stdout.contains("\nleaf2 (frr)\n  changes:\n"), "{}", o.stdout);
    assert!(o.stdout.contains("  steps:\n    1. "), "{}", o.stdout);
    assert!(!o.stdout.contains("\nspine1 (frr)"), "{}", o.stdout);

    // Replaced: at its current generation, read by the command; at the
    // generation `fabric get -o json` printed; a stale one is exit 6.
    let f = cli.ok(&["fabric", "apply", "dc1", "-f", file, "-o", "json"]).json();
    assert_eq!(f["generation"], 2, "{f}");
    let got = dir.0.join("got.json");
    std::fs::write(&got, cli.ok(&["fabric", "get", "dc1", "-o", "json"]).stdout).unwrap();
    let got = got.to_str().unwrap();
    let f = cli.ok(&["fabric", "apply", "dc1", "-f", got, "-o", "json"]).json();
    assert_eq!(f["generation"], 3, "{f}");
    let stale = cli.expect(6, &["fabric", "apply", "dc1", "-f", got]);
    assert!(stale.stderr.contains("generation"), "{}", stale.stderr);
    cli.expect(6, &["fabric", "apply", "dc1", "-f", file, "--generation", "1"]);
    // A bad document: exit 7 naming the field; a file that is not JSON: exit 2.
    let mut bad = fabric_doc();
    bad["switches"][1]["loopback"] = json!("10.255.1.300");
    let bad_file = dir.0.join("bad.json");
    std::fs::write(&bad_file, bad.to_string()).unwrap();
    let o = cli.expect(7, &["fabric", "apply", "dc1", "-f", bad_file.to_str().unwrap()]);
    assert!(o.stderr.contains("field: switches[1].loopback"), "{}", o.stderr);
    std::fs::write(&bad_file, "kind = 'ethernet'").unwrap();
    cli.expect(2, &["fabric", "apply", "dc1", "-f", bad_file.to_str().unwrap()]);
    cli.expect(5, &["fabric", "plan", "nope"]);

    // A tenant's VPC on it, with two networks and a rule between them.
    cli.ok(&["tenant", "create", "acme"]);
    cli.ok(&["project", "create", "--tenant", "acme", "p"]);
    let o = cli.ok(&at(&["vpc", "create", "main", "--description", "web and db"]));
    assert_table(&o.stdout, &["NAME", "ID", "FABRIC ID", "NAT GATEWAY", "NAT IP"], "main");
    let vpc = cli.ok(&at(&["vpc", "get", "main", "-o", "json"])).json();
    assert_eq!((&vpc["nat_gateway"], &vpc["fabric_id"]), (&json!(false), &f["id"]), "{vpc}");
    let vpc = cli.ok(&at(&["vpc", "update", "main", "--nat-gateway", "true", "-o", "json"])).json();
    assert_eq!(vpc["nat_gateway"], true, "{vpc}");
    assert_eq!(vpc["generation"], 2, "{vpc}");
    assert!(vpc["nat_public_ip"].as_str().is_some_and(|ip| ip.starts_with("198.51.100.")), "{vpc}");
    cli.expect(6, &at(&["vpc", "update", "main", "--nat-gateway", "false", "--generation", "1"]));

    let in_vpc = at(&["--vpc", "main"]);
    let with = |args: &[&'static str]| plus(args, &in_vpc);
    let o = cli.ok(&with(&["network", "create", "web", "--cidr", "10.0.0.0/24"]));
    assert_table(&o.stdout, &["NAME", "ID", "CIDR", "GATEWAY"], "web");
    assert!(o.stdout.contains("10.0.0.1"), "{}", o.stdout);
    let db = cli
        .ok(&with(&[
            "network",
            "create",
            "db",
            "--cidr",
            "10.0.1.0/24",
            "--gateway",
            "10.0.1.254",
            "-o",
            "json",
        ]))
        .json();
    assert_eq!(db["gateway"], "10.0.1.254", "{db}");
    let o = cli.expect(7, &with(&["network", "create", "bad", "--cidr", "10.0.0.128/25"]));
    assert!(o.stderr.contains("field: cidr"), "{}", o.stderr);
    assert_eq!(items(&cli.ok(&with(&["network", "list", "-o", "json"])).json()).len(), 2);

    let o = cli.ok(&with(&[
        "security-rule",
        "create",
        "--from",
        "web",
        "--to",
        "db",
        "--protocol",
        "tcp",
        "--ports",
        "5432",
    ]));
    let row = o.stdout.lines().nth(1).unwrap_or_default().to_string();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[1..5], ["web", "db", "tcp", "5432"], "{}", o.stdout);
    let rule_id = cells[0].to_string();
    let rules = cli.ok(&with(&["security-rule", "list", "-o", "json"])).json();
    assert_eq!(items(&rules)[0]["to_network_id"], db["id"], "{rules}");

    // Attachments and floating IPs of the network: none yet; an instance
    // that does not exist is refused naming the field.
    let in_net = with(&["--network", "web"]);
    let on_net = |args: &[&'static str]| plus(args, &in_net);
    assert!(items(&cli.ok(&on_net(&["attachment", "list", "-o", "json"])).json()).is_empty());
    let o = cli.expect(7, &on_net(&["attachment", "create", "--instance", "nope"]));
    assert!(o.stderr.contains("field: instance"), "{}", o.stderr);
    assert!(items(&cli.ok(&with(&["floating-ip", "list", "-o", "json"])).json()).is_empty());

    // The rule, the networks, then the VPC and the fabric go.
    cli.expect(6, &at(&["vpc", "delete", "main"]));
    let o = cli.ok(&plus(&["security-rule", "delete", &rule_id], &in_vpc));
    assert!(o.stdout.contains("deleted"), "{}", o.stdout);
    for n in ["web", "db"] {
        cli.ok(&with(&["network", "delete", n]));
    }
    cli.ok(&at(&["vpc", "delete", "main"]));
    cli.expect(5, &at(&["vpc", "get", "main"]));
    let o = cli.ok(&["fabric", "delete", "dc1"]);
    assert_eq!(o.stdout, "fabric dc1 deleted\n");
}
