//! End to end for the bare-metal commands: `image`, `firmware-baseline`,
//! `provisioning-network`,
//! `instance` and `node sanitizations`, against the real `neocloud serve` binary (harness in
//! common/mod.rs).
//!
//! The nodes here are registered without a BMC: they are `available` at
//! once and instances can be placed on them, but the lifecycle controller
//! (running every 2s in the harness's server) cannot boot them and fails
//! their provisioning. So these tests assert what the CLI shows, and where
//! the controller may already have moved an instance, accept any state it
//! can be in.

mod common;
use common::*;
use serde_json::Value;

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBm9Tq0example tenant@laptop";
const KEY2: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 ops@bastion";
const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// The items of a list answer.
fn items(v: &Value) -> &Vec<Value> {
    v["items"].as_array().unwrap_or_else(|| panic!("not a list: {v}"))
}

/// `args` and then `--tenant t --project p`.
fn at<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.extend_from_slice(&["--tenant", "t", "--project", "p"]);
    v
}

fn image_args<'a>(name: &'a str, kernel: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["image", "create", name, "--kernel", kernel, "--initrd", "http://img.local/i"];
    v.extend_from_slice(extra);
    v
}

/// `instance create NAME --type bm --image ubuntu`, `extra`, in the project.
fn create<'a>(name: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["instance", "create", name, "--type", "bm", "--image", "ubuntu"];
    v.extend_from_slice(extra);
    at(&v)
}

/// A node of 8 x h100-80gb without a BMC.
fn node(cli: &Cli, name: &str) -> Value {
    let o = cli.ok(&[
        "node",
        "create",
        name,
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
        "-o",
        "json",
    ]);
    o.json()
}

#[test]
fn images_end_to_end() {
    let dir = Scratch::new("images");
    let server = Server::start(&dir.0);
    let cli = Cli::new(&dir.0);
    cli.login(&server);

    let o = cli.ok(&image_args(
        "ubuntu",
        "http://img.local/ubuntu/vmlinuz",
        &[
            "--root",
            "https://img.local/ubuntu/root.img",
            "--root-sha256",
            SHA,
            "--cmdline",
            "console=ttyS0,115200 quiet",
            "--description",
            "Ubuntu 24.04",
        ],
    ));
    assert_table(&o.stdout, &["NAME", "ID", "PURPOSE", "KERNEL", "ROOT"], "ubuntu");
    assert!(o.stdout.contains("tenant"), "{}", o.stdout);
    let s = cli
        .ok(&image_args(
            "sanitizer",
            "http://img.local/s/vmlinuz",
            &["--purpose", "sanitizer", "-o", "json"],
        ))
        .json();
    assert_eq!(s["purpose"], "sanitizer", "{s}");
    assert_eq!(s["root_url"], Value::Null, "{s}");
    assert_eq!(s["cmdline"], "", "{s}");

    // The API's checks: exit 7, the field named.
    let bad = cli.expect(7, &image_args("bad", "ftp://img.local/k", &[]));
    assert!(bad.stderr.contains("field: kernel_url"), "{}", bad.stderr);
    let bad = cli.expect(7, &image_args("bad", "http://img.local/a b", &[]));
    assert!(bad.stderr.contains("field: kernel_url"), "{}", bad.stderr);
    let bad = cli
        .expect(7, &image_args("bad", "http://k", &["--root", "http://r", "--root-sha256", "abc"]));
    assert!(bad.stderr.contains("field: root_sha256"), "{}", bad.stderr);
    let bad = cli.expect(7, &image_args("bad", "http://k", &["--root", "file:///r"]));
    assert!(bad.stderr.contains("field: root_url"), "{}", bad.stderr);
    let bad = cli.expect(7, &image_args("bad", "http://k", &["--cmdline", "ds=nocloud"]));
    assert!(bad.stderr.contains("field: cmdline"), "{}", bad.stderr);
    // A checksum without the image it checks, a bad name: usage errors.
    cli.expect(2, &image_args("bad", "http://k", &["--root-sha256", SHA]));
    cli.expect(2, &image_args("Bad_Name", "http://k", &[]));
    cli.expect(2, &image_args("bad", "http://k", &["--purpose", "vm"]));
    // Names are unique.
    let dup = cli.expect(6, &image_args("ubuntu", "http://k", &[]));
    assert!(dup.stderr.contains("error:"), "{}", dup.stderr);

    let list = cli.ok(&["image", "list", "-o", "json"]).json();
    let names: Vec<&str> = items(&list).iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["sanitizer", "ubuntu"], "{list}");
    let o = cli.ok(&["image", "list"]);
    assert_table(&o.stdout, &["NAME", "ID", "PURPOSE"], "sanitizer");
    assert_eq!(o.stdout.lines().count(), 3, "{}", o.stdout);

    let u = cli.ok(&["image", "get", "ubuntu", "-o", "json"]).json();
    assert_eq!(u["kernel_url"], "http://img.local/ubuntu/vmlinuz", "{u}");
    assert_eq!(u["root_url"], "https://img.local/ubuntu/root.img", "{u}");
    assert_eq!(u["root_sha256"], SHA, "{u}");
    assert_eq!(u["cmdline"], "console=ttyS0,115200 quiet", "{u}");
    assert_eq!(u["description"], "Ubuntu 24.04", "{u}");
    // By id as well as by name.
    let by_id = cli.ok(&["image", "get", u["id"].as_str().unwrap(), "-o", "json"]).json();
    assert_eq!(by_id, u);
    let o = cli.ok(&["image", "get", "ubuntu"]);
    assert_table(&o.stdout, &["NAME", "ID", "PURPOSE", "KERNEL", "ROOT", "DESCRIPTION"], "ubuntu");
    assert!(o.stdout.contains("Ubuntu 24.04"), "{}", o.stdout);
    cli.expect(5, &["image", "get", "no-such-image"]);

    let o = cli.ok(&["image", "delete", "sanitizer"]);
    assert!(o.stdout.contains("image sanitizer deleted"), "{}", o.stdout);
    let o = cli.ok(&["image", "delete", "ubuntu", "-o", "json"]);
    assert_eq!(o.stdout, "", "nothing with -o json");
    cli.expect(5, &["image", "get", "sanitizer"]);
    cli.expect(5, &["image", "delete", "sanitizer"]);
    assert!(items(&cli.ok(&["image", "list", "-o", "json"]).json()).is_empty());
}

#[test]
fn firmware_baselines_end_to_end() {
    let dir = Scratch::new("firmware");
    let server = Server::start(&dir.0);
    let cli = Cli::new(&dir.0);
    cli.login(&server);
    let create = |name: &str, extra: &[&str]| {
        let mut v = vec!["firmware-baseline", "create", name, "--model", "DGX H100"];
        v.extend_from_slice(extra);
        cli.run(&v)
    };
    let bios_image = "https://fw.example/dgx/EROT_BIOS-1.2.fwpkg";
    let image = format!("EROT_BIOS_0={bios_image}");
    let chassis = "/redfish/v1/Chassis/HGX_Chassis_0/Actions/Chassis.Reset";
    let activation = format!("EROT_BIOS_0={chassis}:PowerCycle");
    let o = create(
        "dgx",
        &[
            "--component",
            "HGX_FW_BMC_0=24.09",
            "--component",
            "EROT_BIOS_0=1.2",
            "--image",
            &image,
            "--activation",
            &activation,
            "--transfer",
            "push",
            "--order",
            "EROT_BIOS_0",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_table(&o.stdout, &["NAME", "ID", "MODEL", "COMPONENTS", "GENERATION"], "dgx");
    assert!(o.stdout.contains("EROT_BIOS_0=1.2 +image +activation, HGX_FW_"), "{}", o.stdout);
    // An activation whose component has no image: refused naming it (exit 7).
    let bad = create(
        "dgx-4",
        &["--component", "BMC=1", "--activation", &format!("BMC={chassis}:PowerCycle")],
    );
    assert_eq!(bad.code, 7, "{}", bad.stderr);
    assert!(bad.stderr.contains("activations.BMC"), "{}", bad.stderr);
    assert_eq!(create("dgx-4", &["--component", "BMC=1", "--activation", "BMC=x"]).code, 2);
    assert_eq!(create("dgx-4", &["--component", "BMC=1", "--transfer", "scp"]).code, 2);
    // An image for a component not listed: refused naming it (exit 7).
    let bad = create("dgx-4", &["--component", "BMC=1", "--image", "CPLD=https://fw/c.bin"]);
    assert_eq!(bad.code, 7, "{}", bad.stderr);
    assert!(bad.stderr.contains("images.CPLD"), "{}", bad.stderr);
    // One per model (exit 6); no component, or one without a version: usage errors.
    let dup = create("dgx-2", &["--component", "BMC=1"]);
    assert_eq!(dup.code, 6, "{}", dup.stderr);
    assert!(dup.stderr.contains("model"), "{}", dup.stderr);
    assert_eq!(create("dgx-3", &[]).code, 2);
    assert_eq!(create("dgx-3", &["--component", "BMC"]).code, 2);

    let b = cli.ok(&["firmware-baseline", "get", "dgx", "-o", "json"]).json();
    assert_eq!(b["components"]["HGX_FW_BMC_0"], "24.09", "{b}");
    assert_eq!(b["images"]["EROT_BIOS_0"], bios_image, "{b}");
    assert_eq!(b["transfer"], "push", "{b}");
    assert_eq!(b["order"], serde_json::json!(["EROT_BIOS_0"]), "{b}");
    assert_eq!(
        b["activations"]["EROT_BIOS_0"],
        serde_json::json!({"action": chassis, "reset_type": "PowerCycle"}),
        "{b}"
    );
    // An update at a stale generation is refused (exit 6); at the one read, taken.
    let stale = cli.expect(
        6,
        &["firmware-baseline", "update", "dgx", "--generation", "9", "--component", "BMC=2"],
    );
    assert!(stale.stderr.contains("generation"), "{}", stale.stderr);
    let u = cli
        .ok(&[
            "firmware-baseline",
            "update",
            "dgx",
            "--generation",
            "1",
            "--component",
            "HGX_FW_BMC_0=25.01",
            "--no-images",
            "--no-activations",
            "--no-order",
            "--transfer",
            "pull",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(u["activations"], serde_json::json!({}), "{u}");
    assert_eq!(u["transfer"], "pull", "{u}");
    assert_eq!(u["order"], serde_json::json!([]), "{u}");
    assert_eq!(u["components"], serde_json::json!({"HGX_FW_BMC_0": "25.01"}), "{u}");
    assert_eq!(u["images"], serde_json::json!({}), "{u}");
    assert_eq!(u["generation"], 2, "{u}");
    let list = cli.ok(&["firmware-baseline", "list", "-o", "json"]).json();
    assert_eq!(items(&list).len(), 1, "{list}");
    // No node of the model inspected: none to show.
    let o = cli.ok(&["firmware-baseline", "nodes", "dgx"]);
    assert!(o.stdout.contains("NODE") && o.stdout.contains("COMPLIANT"), "{}", o.stdout);
    assert!(items(&cli.ok(&["firmware-baseline", "nodes", "dgx", "-o", "json"]).json()).is_empty());
    cli.expect(5, &["firmware-baseline", "nodes", "nope"]);
    let o = cli.ok(&["firmware-baseline", "delete", "dgx"]);
    assert!(o.stdout.contains("firmware baseline dgx deleted"), "{}", o.stdout);
    cli.expect(5, &["firmware-baseline", "get", "dgx"]);
}

#[test]
fn provisioning_networks_end_to_end() {
    let dir = Scratch::new("provnet");
    let server = Server::start(&dir.0);
    let cli = Cli::new(&dir.0);
    cli.login(&server);
    let create = |name: &str, subnet: &str, extra: &[&str]| {
        let first = subnet.replace(".0/24", ".10");
        let last = subnet.replace(".0/24", ".20");
        let mut v = vec!["provisioning-network", "create", name, "--subnet", subnet];
        v.extend_from_slice(&["--first", &first, "--last", &last]);
        v.extend_from_slice(extra);
        cli.run(&v)
    };
    let o = create("pod1", "10.8.0.0/24", &["--gateway", "10.8.0.1", "--dns", "10.8.0.2"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_table(
        &o.stdout,
        &["NAME", "SUBNET", "RANGE", "GATEWAY", "DNS", "NODES", "FREE"],
        "pod1",
    );
    assert!(o.stdout.contains("10.8.0.10-10.8.0.20"), "{}", o.stdout);
    // A gateway outside the subnet: refused naming it (exit 7); the same
    // name or an overlapping subnet: conflicts (exit 6).
    let bad = create("pod2", "10.9.0.0/24", &["--gateway", "10.8.0.1"]);
    assert_eq!(bad.code, 7, "{}", bad.stderr);
    assert!(bad.stderr.contains("gateway"), "{}", bad.stderr);
    assert_eq!(create("pod1", "10.9.0.0/24", &[]).code, 6);
    let overlap = create("pod2", "10.8.0.0/24", &[]);
    assert_eq!(overlap.code, 6, "{}", overlap.stderr);
    assert!(overlap.stderr.contains("overlaps provisioning network pod1"), "{}", overlap.stderr);
    let n = cli.ok(&["provisioning-network", "get", "pod1", "-o", "json"]).json();
    assert_eq!(
        (&n["free"], &n["nodes"], &n["gateway"]),
        (&serde_json::json!(11), &serde_json::json!(0), &serde_json::json!("10.8.0.1")),
        "{n}"
    );
    // Updates at the generation read; stale ones refused (exit 6).
    let stale = cli.expect(
        6,
        &["provisioning-network", "update", "pod1", "--generation", "9", "--last", "10.8.0.30"],
    );
    assert!(stale.stderr.contains("generation"), "{}", stale.stderr);
    let u = cli
        .ok(&[
            "provisioning-network",
            "update",
            "pod1",
            "--generation",
            "1",
            "--last",
            "10.8.0.30",
            "--no-gateway",
            "--no-dns",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(
        (&u["last"], &u["free"], &u["generation"]),
        (&serde_json::json!("10.8.0.30"), &serde_json::json!(21), &serde_json::json!(2)),
        "{u}"
    );
    assert!(u.get("gateway").is_none() && u["dns"] == serde_json::json!([]), "{u}");
    assert_eq!(
        cli.run(&[
            "provisioning-network",
            "update",
            "pod1",
            "--generation",
            "2",
            "--gateway",
            "10.8.0.1",
            "--no-gateway"
        ])
        .code,
        2
    );
    // A node's boot network names one; its gateway comes from it.
    let o = cli.run(&[
        "node",
        "update",
        "n1",
        "--availability",
        "schedulable",
        "--generation",
        "1",
        "--boot-mac",
        "52:54:00:aa:bb:cc",
        "--boot-network",
        "pod1",
        "--boot-gateway",
        "10.8.0.1",
    ]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    let list = cli.ok(&["provisioning-network", "list", "-o", "json"]).json();
    assert_eq!(items(&list).len(), 1, "{list}");
    cli.ok(&["provisioning-network", "delete", "pod1"]);
    cli.expect(5, &["provisioning-network", "get", "pod1"]);
}

#[test]
fn instances_end_to_end() {
    let dir = Scratch::new("instances");
    let server = Server::start(&dir.0);
    let cli = Cli::new(&dir.0);
    cli.login(&server);

    // Three BMC-less nodes: available at once.
    let mut node_ids = Vec::new();
    for name in ["n1", "n2", "n3"] {
        let n = node(&cli, name);
        assert_eq!(n["lifecycle"]["state"], "available", "{n}");
        node_ids.push(n["id"].as_str().unwrap().to_string());
    }
    cli.ok(&["instance-type", "create", "bm", "--kind", "bare-metal", "--gpu-model", "h100-80gb"]);
    cli.ok(&[
        "instance-type",
        "create",
        "vm-2",
        "--kind",
        "vm",
        "--gpu-model",
        "h100-80gb",
        "--gpus",
        "2",
    ]);
    cli.ok(&["tenant", "create", "t"]);
    cli.ok(&["project", "create", "p", "--tenant", "t"]);
    let q = cli.ok(&["quota", "get", "--tenant", "t", "-o", "json"]).json();
    let g = q["generation"].as_i64().unwrap().to_string();
    cli.ok(&["quota", "set", "--tenant", "t", "nodes=10", "gpu:h100-80gb=80", "--generation", &g]);
    cli.ok(&image_args("ubuntu", "http://img.local/ubuntu/vmlinuz", &[]));

    // No sanitizer registered: no node is handed out.
    let o = cli.expect(6, &create("job", &["--ssh-key", KEY]));
    assert!(o.stderr.contains("sanitizer"), "{}", o.stderr);
    cli.ok(&image_args("sanitizer", "http://img.local/s/vmlinuz", &["--purpose", "sanitizer"]));

    // Validation: the API names the field (exit 7); local files are usage errors (exit 2).
    let o = cli.expect(7, &create("job", &["--ssh-key", "not a key"]));
    assert!(o.stderr.contains("field: ssh_keys[0]"), "{}", o.stderr);
    let o = cli.expect(7, &create("job", &["--ssh-key", KEY, "--ssh-key", "ssh-ed25519"]));
    assert!(o.stderr.contains("field: ssh_keys[1]"), "{}", o.stderr);
    let o =
        cli.expect(7, &at(&["instance", "create", "job", "--type", "bm", "--image", "sanitizer"]));
    assert!(o.stderr.contains("field: image"), "{}", o.stderr);
    let o =
        cli.expect(7, &at(&["instance", "create", "job", "--type", "vm-2", "--image", "ubuntu"]));
    assert!(o.stderr.contains("field: instance_type"), "{}", o.stderr);
    let big = dir.0.join("big-user-data");
    std::fs::write(&big, "#".repeat(64 * 1024 + 1)).unwrap();
    let o = cli.expect(7, &create("job", &["--user-data-file", big.to_str().unwrap()]));
    assert!(o.stderr.contains("field: user_data"), "{}", o.stderr);
    let private = dir.0.join("id_ed25519");
    std::fs::write(&private, "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n")
        .unwrap();
    let o = cli.expect(2, &create("job", &["--ssh-key-file", private.to_str().unwrap()]));
    assert!(o.stderr.contains("private key"), "{}", o.stderr);
    cli.expect(2, &create("job", &["--user-data-file", "/no/such/file"]));
    cli.expect(2, &create("Bad_Name", &[]));
    cli.expect(2, &create("job", &["--within", "row:1"]));
    assert!(items(&cli.ok(&at(&["instance", "list", "-o", "json"])).json()).is_empty());

    // One instance, keys from the flag and a file, user-data from a file.
    let keys = dir.0.join("keys.pub");
    std::fs::write(&keys, format!("# ops\n{KEY2}\n")).unwrap();
    let ud = dir.0.join("user-data");
    std::fs::write(&ud, "#cloud-config\nruncmd: [[touch, /ok]]\n").unwrap();
    let o = cli.ok(&create(
        "job",
        &[
            "--ssh-key",
            KEY,
            "--ssh-key-file",
            keys.to_str().unwrap(),
            "--user-data-file",
            ud.to_str().unwrap(),
            "--scope",
            "su",
        ],
    ));
    assert_table(
        &o.stdout,
        &["NAME", "ID", "STATE", "STEP", "HEALTH", "NODE", "REASON", "AGE"],
        "job",
    );
    // Answered in the transaction that created it: nothing has run yet.
    assert!(o.stdout.contains("pending"), "{}", o.stdout);
    assert!(o.stdout.contains("waiting_for_node 0/3"), "{}", o.stdout);
    let job = cli.ok(&at(&["instance", "get", "job", "-o", "json"])).json();
    let job_id = job["id"].as_str().unwrap().to_string();
    assert!(
        ["pending", "provisioning", "failed"].contains(&job["state"].as_str().unwrap()),
        "{job}"
    );
    assert_eq!(job["name"], "job");
    assert_eq!(job["ssh_keys"], serde_json::json!([KEY, KEY2]), "{job}");
    assert!(node_ids.contains(&job["node_id"].as_str().unwrap().to_string()), "{job}");
    // By id too; the table shows the node and the step.
    let o = cli.ok(&at(&["instance", "get", &job_id]));
    assert_table(&o.stdout, &["NAME", "ID", "STATE", "STEP", "HEALTH", "NODE"], "job");
    assert!(o.stdout.contains(job["node_id"].as_str().unwrap()), "{}", o.stdout);
    let dup = cli.expect(6, &create("job", &[]));
    assert!(dup.stderr.contains("field: name"), "{}", dup.stderr);
    cli.expect(5, &at(&["instance", "get", "no-such-instance"]));
    // The image is in use.
    let o = cli.expect(6, &["image", "delete", "ubuntu"]);
    assert!(o.stderr.contains("release"), "{}", o.stderr);

    // A gang of two on the two other nodes, waited for: the controller
    // cannot boot BMC-less nodes, so both end `failed` and the wait exits 1
    // with the final state printed.
    let o = cli
        .expect(1, &create("gang", &["--count", "2", "--wait", "--timeout", "60s", "-o", "json"]));
    let gang = o.json();
    let gang_items = items(&gang);
    assert_eq!(gang_items.len(), 2, "{gang}");
    let mut gang_nodes = Vec::new();
    for (i, g) in gang_items.iter().enumerate() {
        assert_eq!(g["name"], format!("gang-{i}"), "{gang}");
        assert_eq!(g["state"], "failed", "{gang}");
        assert!(g["reason"].as_str().unwrap().contains("BMC"), "{gang}");
        gang_nodes.push(g["node_id"].as_str().unwrap().to_string());
    }
    gang_nodes.sort();
    gang_nodes.dedup();
    assert_eq!(gang_nodes.len(), 2, "whole nodes: {gang}");
    assert!(!gang_nodes.contains(&job["node_id"].as_str().unwrap().to_string()), "{gang}");
    // Progress went to stderr, one line per change, then why it failed.
    assert!(o.stderr.contains("gang-0: pending (waiting_for_node 0/3)"), "{}", o.stderr);
    assert!(o.stderr.contains("gang-1: failed: "), "{}", o.stderr);
    assert!(o.stderr.contains("error: gang-0: "), "{}", o.stderr);
    // No node left.
    let o = cli.expect(6, &create("more", &[]));
    assert!(o.stderr.contains("cannot place"), "{}", o.stderr);

    let list = cli.ok(&at(&["instance", "list", "-o", "json"])).json();
    assert_eq!(items(&list).len(), 3, "{list}");
    let o = cli.ok(&at(&["instance", "list"]));
    assert_table(&o.stdout, &["NAME", "ID", "STATE", "STEP", "HEALTH", "NODE"], "gang-1");
    assert_eq!(o.stdout.lines().count(), 4, "{}", o.stdout);
    assert!(o.stdout.contains("without a BMC"), "the reason is shown:\n{}", o.stdout);

    // Power actions are for ready instances (exit 6, the API's reason);
    // an unknown action is a usage error.
    let o = cli.expect(6, &at(&["instance", "power", "job", "reboot", "--force"]));
    assert!(o.stderr.contains("power actions are for ready instances"), "{}", o.stderr);
    cli.expect(2, &at(&["instance", "power", "job", "hibernate"]));
    let o = cli.expect(6, &at(&["instance", "rebuild", "job", "--image", "ubuntu"]));
    assert!(o.stderr.contains("rebuilds are for ready instances"), "{}", o.stderr);

    // Release: the API records the intent and answers the instance.
    let o = cli.ok(&at(&["instance", "release", "job"]));
    assert_table(&o.stdout, &["NAME", "ID", "STATE"], "job");
    let r = cli.ok(&at(&["instance", "release", &job_id, "-o", "json"])).json();
    assert_eq!(r["id"], job_id.as_str(), "releasing twice is fine: {r}");
    assert!(
        ["pending", "provisioning", "failed", "releasing", "released"]
            .contains(&r["state"].as_str().unwrap()),
        "{r}"
    );

    // Released with --wait: it ends (released, failed, or a release that
    // stalled on a node with no BMC) and prints the instance.
    let o = cli.run(&at(&[
        "instance",
        "release",
        "gang-1",
        "--wait",
        "--timeout",
        "30s",
        "-o",
        "json",
    ]));
    assert!([0, 1].contains(&o.code), "{o:?}");
    let g1 = o.json();
    assert_eq!(g1["name"], "gang-1", "{g1}");
    assert!(o.stderr.contains("gang-1: failed"), "{}", o.stderr);
    if o.code == 1 {
        assert!(o.stderr.contains("stalled") || o.stderr.contains("timed out"), "{}", o.stderr);
    } else {
        assert_eq!(g1["state"], "released", "{g1}");
    }
    // The node was never touched (no BMC): the release frees it at once.
    let o = cli.run(&at(&["instance", "release", "gang-0", "--wait", "--timeout", "30s"]));
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stderr.contains("gang-0: released"), "{}", o.stderr);
    assert_table(&o.stdout, &["NAME", "ID", "STATE"], "gang-0");

    // Several in one request, all or none: one unknown refuses them all
    // (exit 5); those released already are answered as they are.
    let list = cli.ok(&at(&["instance", "list", "-o", "json"])).json();
    let id_of = |name: &str| {
        let i = items(&list).iter().find(|i| i["name"] == name).cloned();
        i.unwrap_or_else(|| panic!("{name} in {list}"))["id"].as_str().unwrap().to_string()
    };
    let g0 = id_of("gang-0");
    let o = cli.expect(5, &at(&["instance", "release", &g0, "no-such-instance"]));
    assert!(o.stderr.contains("no-such-instance"), "{}", o.stderr);
    let v = cli.ok(&at(&["instance", "release", &job_id, &g0, "-o", "json"])).json();
    let names: Vec<&str> = items(&v).iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["job", "gang-0"], "in the order named: {v}");
    // With --wait: until each ends, then the list.
    let o = cli.run(&at(&["instance", "release", &g0, &job_id, "--wait", "--timeout", "30s"]));
    assert!([0, 1].contains(&o.code), "{o:?}");
    assert!(o.stdout.contains("gang-0") && o.stdout.contains("job"), "{}", o.stdout);

    // No node was sanitized: no records, and nothing to verify.
    let o = cli.ok(&at(&["instance", "sanitization", &job_id]));
    assert_eq!(
        o.stdout.lines().collect::<Vec<_>>(),
        ["RECORD  FINISHED  COMPLETE  CHECK  OK  ITEMS"]
    );
    let v = cli.ok(&at(&["instance", "sanitization", &job_id, "-o", "json"])).json();
    assert!(items(&v).is_empty(), "{v}");
    let o = cli.expect(1, &at(&["instance", "sanitization", &job_id, "--verify"]));
    assert!(o.stderr.contains("no sanitization record"), "{}", o.stderr);
    let key = "ab".repeat(32);
    cli.expect(1, &at(&["instance", "sanitization", &job_id, "--public-key", &key]));
    cli.expect(2, &at(&["instance", "sanitization", &job_id, "--public-key", "abc"]));
    cli.expect(5, &at(&["instance", "sanitization", "no-such-instance"]));
    let o = cli.ok(&["node", "sanitizations", "n1"]);
    assert_eq!(o.stdout.lines().count(), 1, "{}", o.stdout);
    assert!(o.stdout.starts_with("RECORD"), "{}", o.stdout);
    let v = cli.ok(&["node", "sanitizations", &node_ids[1], "-o", "json"]).json();
    assert!(items(&v).is_empty(), "{v}");
    cli.expect(1, &["node", "sanitizations", "n1", "--verify"]);
    cli.expect(5, &["node", "sanitizations", "no-such-node"]);
}

#[test]
fn instance_commands_need_a_project() {
    let dir = Scratch::new("noproject");
    let cli = Cli::new(&dir.0);
    cli.expect(2, &["instance", "list", "--tenant", "t"]);
    cli.expect(2, &["instance", "create", "j", "--type", "bm", "--tenant", "t", "--project", "p"]);
    let o = cli.expect(3, &at(&["instance", "list"]));
    assert!(o.stderr.contains("not logged in"), "{}", o.stderr);
}
