//! The agent's `wipe_disks` against real NVMe controllers: QEMU's emulated
//! NVMe (with namespace management), driven through the kernel's NVMe
//! driver by Debian's nvme-cli, the tools a sanitizer image carries. The
//! machine is `guest::Machine` (OVMF and a Debian cloud kernel, this test
//! binary as init); the namespaces' backing files on this machine are the
//! drives' media, so what the wipe left is read there, byte by byte.
//!
//! Two controllers, each its own subsystem, every namespace holding the
//! last tenant's data:
//! - `tenant-a`: namespace 1 attached (named to the agent) and namespace 2
//!   allocated but detached, as a tenant with root can leave it so that a
//!   per-device wipe never sees it. The controller has no Sanitize, so the
//!   agent attaches namespace 2, formats it with secure erase and detaches
//!   it again, then formats namespace 1: both media read back all zero,
//!   and the layout is as the tenant left it;
//! - `unnamed`: namespaces 1 (named) and 2 attached, 3 detached. Namespace
//!   2 was not named, so nothing on that controller may be erased: the
//!   item fails saying why, and all three media are untouched.
//!
//! The agent's binary (`--inventory --all-disks`) reads the machine first.
//! Both are multipath-capable subsystems, so the kernel lists a hidden
//! path device per namespace and controller (`nvme0c0n1`, no device
//! node) beside each namespace: what `--all-disks` finds is the three
//! attached namespaces, once each.

mod guest;

use std::path::{Path, PathBuf};
use std::process::Command;

use neocloud_agent::{run_step, Host};
use neocloud_types::{AgentStep, AgentStepKind, AgentStepResult};
use serde_json::{json, Value};

/// Each namespace's size.
const SIZE: usize = 16 << 20;

#[test]
#[ignore = "runs as init inside the UEFI guest that a_detached_namespace_is_erased_only_where_every_namespace_was_named boots"]
fn guest_side() {
    guest::guest_main(guest);
}

/// The controller (`nvme0`) whose serial is `serial`, once its first
/// namespace's block device is there.
fn controller(serial: &str) -> Result<String, String> {
    guest::device("/sys/class/nvme", serial, |c| Path::new(&format!("/dev/{c}n1")).exists())
}

fn list_ns(ctrl: &str, all: bool) -> Result<String, String> {
    let mut args = vec!["list-ns".to_string(), format!("/dev/{ctrl}"), "-o".into(), "json".into()];
    if all {
        args.push("--all".into());
    }
    let out = Command::new("/usr/sbin/nvme").args(&args).output().map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out.stdout).split_whitespace().collect())
}

fn guest(_mode: &str) -> Result<Value, String> {
    let a = controller("tenant-a")?;
    let b = controller("unnamed")?;
    let disks = vec![PathBuf::from(format!("/dev/{a}n1")), PathBuf::from(format!("/dev/{b}n1"))];
    // The agent's binary, as the sanitizer image runs it, reads first.
    let out = Command::new(env!("CARGO_BIN_EXE_neocloud-agent"))
        .args(["--inventory", "--all-disks"])
        .output()
        .map_err(|e| e.to_string())?;
    let inventory: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&out.stderr)))?;
    let step = AgentStep {
        id: "s".into(),
        kind: AgentStepKind::WipeDisks,
        uefi_baseline: None,
        nic_baseline: None,
    };
    let result = run_step(&Host::new(disks.clone()), &step);
    // What `--all-disks` would wipe: the namespaces, not multipath's
    // hidden per-controller paths to them (no device nodes).
    let found = neocloud_agent::disks::discover_disks().map_err(|e| e.to_string())?;
    Ok(json!({
        "controllers": [a, b],
        "inventory": inventory,
        "found": found,
        "disks": disks,
        "result": result,
        "a_attached": list_ns(&a, false)?,
        "a_allocated": list_ns(&a, true)?,
    }))
}

/// The namespaces' backing files and the byte each is filled with.
const MEDIA: [(&str, u8); 5] =
    [("a1", 0xa1), ("a2", 0xa2), ("b1", 0xb1), ("b2", 0xb2), ("b3", 0xb3)];

#[test]
fn a_detached_namespace_is_erased_only_where_every_namespace_was_named() {
    let agent = env!("CARGO_BIN_EXE_neocloud-agent");
    let Some(machine) = guest::Machine::new("nvme", &["/usr/sbin/nvme", agent]) else { return };
    let mut args: Vec<String> = Vec::new();
    let mut arg = |a: String| args.push(a);
    for (ctrl, serial) in [("a", "tenant-a"), ("b", "unnamed")] {
        arg("-device".into());
        arg(format!("nvme-subsys,id=subsys-{ctrl},nqn=neocloud-test-{ctrl}"));
        arg("-device".into());
        arg(format!("nvme,serial={serial},id=nvme-{ctrl},subsys=subsys-{ctrl}"));
    }
    for (media, fill) in MEDIA {
        std::fs::write(machine.path(media), vec![fill; SIZE]).unwrap();
        let (ctrl, nsid) = media.split_at(1);
        let detached = matches!(media, "a2" | "b3");
        arg("-drive".into());
        arg(format!("file={},if=none,id={media},format=raw", machine.path(media).display()));
        arg("-device".into());
        arg(format!("nvme-ns,drive={media},bus=nvme-{ctrl},nsid={nsid},detached={detached}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let machine = machine.qemu_args(&args);

    let v = machine.boot("wipe", &[]);
    let found: Vec<String> = serde_json::from_value(v["found"].clone()).unwrap();
    let (a, b) = (v["controllers"][0].as_str().unwrap(), v["controllers"][1].as_str().unwrap());
    let heads = [format!("/dev/{a}n1"), format!("/dev/{b}n1"), format!("/dev/{b}n2")];
    let mut heads = heads.to_vec();
    heads.sort();
    assert_eq!(found, heads, "every attached namespace, once: {v}");
    // The agent's binary read the namespaces too; and this guest has no
    // efivarfs module: the UEFI variables are said unreadable, not none.
    let inv = &v["inventory"];
    let paths: Vec<&str> = inv["inventory"]["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, heads, "{inv}");
    assert!(inv["inventory"]["disks"][0]["bytes"] == SIZE, "{inv}");
    let uefi = inv["uefi_variables"].as_str().unwrap();
    assert!(uefi.contains("efivarfs is not mounted"), "{inv}");
    // And which of the steps' tools the image holds.
    assert_eq!(inv["tools"]["nvme"], "/usr/sbin/nvme", "{inv}");
    assert_eq!(inv["tools"]["chattr"], "/usr/bin/chattr", "{inv}");
    let hdparm = inv["tools"]["hdparm"].as_str().unwrap();
    assert!(hdparm.starts_with("missing: ATA security erase"), "{inv}");
    let r: AgentStepResult = serde_json::from_value(v["result"].clone()).unwrap();
    let left = |media: &str, fill: u8| {
        let data = std::fs::read(machine.path(media)).unwrap();
        (data.iter().filter(|b| **b != 0).count(), data.iter().all(|b| *b == fill))
    };
    // tenant-a: both namespaces erased on their media, the layout kept.
    let a = &r.items[0];
    assert!(a.ok && a.method == "nvme-user-data-erase", "QEMU has no crypto erase: {r:?}");
    assert!(a.detail.contains("namespace(s) [2]") && a.detail.contains("detached again"), "{a:?}");
    assert_eq!(left("a1", 0xa1).0, 0, "namespace 1 erased: {a:?}");
    assert_eq!(left("a2", 0xa2).0, 0, "the detached namespace erased: {a:?}");
    assert_eq!(v["a_attached"], r#"{"nsid_list":[{"nsid":1}]}"#, "{v}");
    assert_eq!(v["a_allocated"], r#"{"nsid_list":[{"nsid":1},{"nsid":2}]}"#, "{v}");
    // unnamed: refused, nothing touched.
    let b = &r.items[1];
    assert!(!b.ok && b.method == "none", "{r:?}");
    assert!(b.detail.contains("[3]") && b.detail.contains("not every namespace"), "{b:?}");
    for (media, fill) in [("b1", 0xb1), ("b2", 0xb2), ("b3", 0xb3)] {
        assert!(left(media, fill).1, "{media} untouched: {b:?}");
    }
    assert!(!r.ok, "{r:?}");
    machine.done();
}
