//! A machine's NVIDIA network adapters for the agent's
//! `reset_nic_settings`: a directory laid out as sysfs's
//! `/sys/bus/pci/devices` and the `mstconfig` test double (`mstconfig`
//! beside this file, its adapters in a `state.json` beside its copy).
//! Shared by the agent's and the control plane's tests.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The adapters' physical functions: a dual-port ConnectX-6 Dx.
pub const PF0: &str = "0000:3b:00.0";
pub const PF1: &str = "0000:3b:00.1";
/// One of PF0's virtual functions (not an adapter of its own).
pub const VF: &str = "0000:3b:00.2";
/// Another maker's network adapter.
pub const OTHER: &str = "0000:5e:00.0";

pub struct FakeNics {
    pub pci: PathBuf,
    pub tool: PathBuf,
    dir: PathBuf,
}

fn device(pci: &Path, address: &str, vendor: &str, class: &str) -> PathBuf {
    let d = pci.join(address);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("vendor"), format!("{vendor}\n")).unwrap();
    std::fs::write(d.join("class"), format!("{class}\n")).unwrap();
    d
}

/// The card a function's address is of (the address less its function).
fn card_of(address: &str) -> &str {
    address.rsplit_once('.').map_or(address, |(card, _)| card)
}

fn params() -> Value {
    let p = |name: &str, kind: &str, v: i64| json!({"name": name, "kind": kind, "default": v, "current": v, "next": v});
    let mut link = p("LINK_TYPE_P1", "enum", 2);
    link["values"] = json!({"IB": 1, "ETH": 2});
    // Each function's own (Per_Host_Per_Function): DEVICE_DEFAULT.
    let mut roce = p("ROCE_CONTROL", "enum", 0);
    roce["values"] = json!({"DEVICE_DEFAULT": 0, "ROCE_DISABLE": 1, "ROCE_ENABLE": 2});
    roce["scope"] = json!("function");
    json!([
        p("SRIOV_EN", "bool", 1),
        p("NUM_OF_VFS", "uint", 8),
        link,
        p("EXP_ROM_UEFI_x86_ENABLE", "bool", 1),
        roce,
        p("ROCE_CC_PRIO_MASK_P1", "array", 255),
    ])
}

impl FakeNics {
    /// The adapters in `dir`, every setting at its default.
    pub fn new(dir: &Path) -> FakeNics {
        let pci = dir.join("pci-devices");
        device(&pci, PF0, "0x15b3", "0x020000");
        device(&pci, PF1, "0x15b3", "0x020000");
        let vf = device(&pci, VF, "0x15b3", "0x020000");
        std::os::unix::fs::symlink(pci.join(PF0), vf.join("physfn")).unwrap();
        device(&pci, OTHER, "0x8086", "0x020000");
        // A NVIDIA device that is not a network adapter (a PCIe switch).
        device(&pci, "0000:17:00.0", "0x15b3", "0x060400");
        let tool_dir = dir.join("mstconfig");
        std::fs::create_dir_all(&tool_dir).unwrap();
        let tool = tool_dir.join("mstconfig");
        let src =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/tests/fake_mstconfig/mstconfig");
        std::fs::copy(&src, &tool).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        let nics = FakeNics { pci, tool, dir: tool_dir };
        nics.write(&json!({"devices": {
            PF0: {"type": "ConnectX6DX", "name": "MCX623106AN-CDA_Ax", "params": params()},
            PF1: {"type": "ConnectX6DX", "name": "MCX623106AN-CDA_Ax", "params": params()},
        }}));
        nics
    }

    fn read(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.join("state.json")).unwrap()).unwrap()
    }

    fn write(&self, v: &Value) {
        std::fs::write(self.dir.join("state.json"), serde_json::to_vec(v).unwrap()).unwrap();
    }

    fn param<'a>(v: &'a mut Value, address: &str, name: &str) -> &'a mut Value {
        let ps = v["devices"][address]["params"].as_array_mut().unwrap();
        ps.iter_mut().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{name}"))
    }

    /// Sets a setting's next-boot value, as `mstconfig set` by root on the
    /// host does (`current` too: it rebooted since): through every
    /// function of the card for one of the card's, `address`'s alone for a
    /// function's own.
    pub fn set(&self, address: &str, name: &str, value: i64, rebooted: bool) {
        let mut v = self.read();
        let own = Self::param(&mut v, address, name)["scope"] == "function";
        let all: Vec<String> = v["devices"].as_object().unwrap().keys().cloned().collect();
        for a in all.iter().filter(|a| *a == address || (!own && card_of(a) == card_of(address))) {
            let p = Self::param(&mut v, a, name);
            p["next"] = json!(value);
            if rebooted {
                p["current"] = json!(value);
            }
        }
        self.write(&v);
    }

    /// A setting's next-boot value.
    pub fn next(&self, address: &str, name: &str) -> i64 {
        let mut v = self.read();
        Self::param(&mut v, address, name)["next"].as_i64().unwrap()
    }

    /// Makes a reset through any function of the adapter's card say it
    /// is done and change nothing.
    pub fn ignore_reset(&self, address: &str) {
        let mut v = self.read();
        for (a, d) in v["devices"].as_object_mut().unwrap().iter_mut() {
            if card_of(a) == card_of(address) {
                d["ignore_reset"] = json!(true);
            }
        }
        self.write(&v);
    }

    /// Forgets the adapter (the tool then fails to open it).
    pub fn unplug_from_tool(&self, address: &str) {
        let mut v = self.read();
        v["devices"].as_object_mut().unwrap().remove(address);
        self.write(&v);
    }

    /// The calls made so far, one per line, and forgets them.
    pub fn take_calls(&self) -> Vec<String> {
        let log = self.dir.join("calls.log");
        let calls = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        calls.lines().map(str::to_string).collect()
    }
}
