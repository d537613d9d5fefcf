//! The agent's `reset_nic_settings` against the `mstconfig` test double
//! (mstflint 4.21's output and behaviour: errors on standard output, a
//! reset and a set change the next boot's values only) and a directory
//! laid out as sysfs's PCI devices.

#[path = "fake_mstconfig/mod.rs"]
mod fake_nics;

use fake_nics::{FakeNics, OTHER, PF0, PF1, VF};
use neocloud_agent::{run_step, Hardware, Host};
use neocloud_types::{AgentStep, AgentStepKind, AgentStepResult, StepItem};

fn scratch(test: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("neocloud-nics-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn host(nics: &FakeNics) -> Host {
    Host::without_gpus(Vec::new()).with_nics(&nics.pci, Some(nics.tool.clone()))
}

fn run(hw: &dyn Hardware, baseline: Option<Vec<String>>) -> AgentStepResult {
    let step = AgentStep {
        id: "s".into(),
        kind: AgentStepKind::ResetNicSettings,
        uefi_baseline: None,
        nic_baseline: baseline,
    };
    run_step(hw, &step)
}

fn item<'a>(r: &'a AgentStepResult, target: &str) -> &'a StepItem {
    r.items.iter().find(|i| i.target == target).unwrap_or_else(|| panic!("{target}: {r:?}"))
}

fn kept(r: &AgentStepResult) -> Vec<String> {
    let kept = r.items.iter().filter(|i| i.method == neocloud_types::NIC_SETTING_KEPT);
    kept.map(|i| format!("{}={}", i.target, i.detail)).collect()
}

#[test]
fn a_tenants_adapter_settings_are_set_back_to_the_nodes_baseline() {
    let dir = scratch("baseline");
    let nics = FakeNics::new(&dir);
    // The provider gave the card 16 VFs and turned RoCE on for its first
    // function before the node joined the pool.
    nics.set(PF0, "NUM_OF_VFS", 16, true);
    nics.set(PF0, "ROCE_CONTROL", 2, true);

    // The first sanitization changes nothing and keeps that as the baseline.
    let first = run(&host(&nics), None);
    assert!(first.ok, "{first:?}");
    assert_eq!(
        kept(&first),
        [
            format!("{PF0}/NUM_OF_VFS=16"),
            format!("{PF0}/ROCE_CONTROL=2"),
            format!("{PF1}/NUM_OF_VFS=16"),
        ]
    );
    assert!(item(&first, PF0).detail.contains("2 off their defaults recorded"), "{first:?}");
    // Only the NVIDIA adapters' physical functions were asked, and only read.
    let calls = nics.take_calls();
    assert_eq!(calls, [format!("-d {PF0} -e query"), format!("-d {PF1} -e query")]);
    assert!(!first.items.iter().any(|i| [VF, OTHER].contains(&i.target.as_str())));

    // The baseline as the control plane keeps it: the settings, and the
    // adapters there were.
    let mut baseline = kept(&first);
    baseline.extend([PF0.to_string(), PF1.to_string()]);
    // A tenant with root sets the card its way (one of them rebooted into
    // already), the second function's RoCE, and an array the query does
    // not show the values of.
    nics.set(PF0, "SRIOV_EN", 0, true);
    nics.set(PF0, "LINK_TYPE_P1", 1, false);
    nics.set(PF1, "NUM_OF_VFS", 4, false);
    nics.set(PF1, "ROCE_CONTROL", 1, false);
    nics.set(PF0, "ROCE_CC_PRIO_MASK_P1", 15, false);
    let r = run(&host(&nics), Some(baseline.clone()));
    assert!(r.ok, "{r:?}");
    let d = &item(&r, PF0).detail;
    assert!(
        d.contains("SRIOV_EN False(0) -> 1, NUM_OF_VFS 4 -> 16, LINK_TYPE_P1 IB(1) -> 2"),
        "{d}"
    );
    assert!(item(&r, PF1).detail.contains("ROCE_CONTROL ROCE_DISABLE(1) -> 0"), "{r:?}");
    // The next boot's values: the defaults, and the baseline's. The
    // first function's RoCE survived the reset through the second (a
    // reset resets the card).
    for (a, name, want) in [
        (PF0, "SRIOV_EN", 1),
        (PF0, "LINK_TYPE_P1", 2),
        (PF0, "NUM_OF_VFS", 16),
        (PF1, "NUM_OF_VFS", 16),
        (PF0, "ROCE_CONTROL", 2),
        (PF1, "ROCE_CONTROL", 0),
        (PF0, "ROCE_CC_PRIO_MASK_P1", 255),
    ] {
        assert_eq!(nics.next(a, name), want, "{a} {name}");
    }
    assert_eq!(kept(&r), kept(&first), "the baseline stays in the record");
    // Every function read, reset, set, then read back.
    let calls = nics.take_calls();
    let q = |a: &str| format!("-d {a} -e query");
    assert_eq!(
        calls,
        [
            q(PF0),
            q(PF1),
            format!("-d {PF0} -y reset"),
            format!("-d {PF1} -y reset"),
            format!("-d {PF0} -y set NUM_OF_VFS=16 ROCE_CONTROL=2"),
            format!("-d {PF1} -y set NUM_OF_VFS=16"),
            q(PF0),
            q(PF1),
        ]
    );

    // At the baseline: said so, and reset all the same (what the query
    // does not show may differ).
    let r = run(&host(&nics), Some(baseline.clone()));
    assert!(r.ok, "{r:?}");
    assert!(item(&r, PF0).detail.starts_with("nothing off the baseline; reset"), "{r:?}");
    assert_eq!(nics.take_calls().len(), 8);
}

#[test]
fn settings_that_cannot_be_set_back_or_read_fail_the_step() {
    let dir = scratch("failures");
    let nics = FakeNics::new(&dir);
    let both = || vec![PF0.to_string(), PF1.to_string()];
    // A card whose reset changes nothing: the read-back catches it.
    nics.set(PF1, "SRIOV_EN", 0, false);
    nics.ignore_reset(PF1);
    let r = run(&host(&nics), Some(both()));
    assert!(!r.ok, "{r:?}");
    let d = &item(&r, PF1).detail;
    assert!(
        !item(&r, PF1).ok && d.contains("still off the baseline after it: SRIOV_EN False(0) -> 1")
    );
    nics.set(PF1, "SRIOV_EN", 1, false);

    // A setting of the baseline the adapter does not have: its set fails,
    // and so does its item.
    let mut b = both();
    b.push(format!("{PF0}/NO_SUCH=1"));
    let r = run(&host(&nics), Some(b));
    assert!(!item(&r, PF0).ok && item(&r, PF0).detail.contains("Unknown Parameter: NO_SUCH"));
    let k = item(&r, &format!("{PF0}/NO_SUCH"));
    assert!(!k.ok && k.detail == "not read, not 1", "{k:?}");

    // An adapter the tool cannot open (its error on standard output).
    nics.unplug_from_tool(PF1);
    let r = run(&host(&nics), Some(both()));
    assert!(!r.ok && item(&r, PF1).detail.contains("-E- Failed to open the device"), "{r:?}");

    // An adapter of the node's baseline that is gone.
    let r = run(&host(&nics), Some(vec!["0000:af:00.0".into()]));
    assert!(!item(&r, "0000:af:00.0").ok, "{r:?}");

    // No mstconfig where there are adapters.
    let hw = Host::without_gpus(Vec::new()).with_nics(&nics.pci, None);
    let r = run(&hw, None);
    assert!(!r.ok && item(&r, PF0).detail.contains("not installed"), "{r:?}");

    // No NVIDIA adapter at all: one item, ok.
    let empty = dir.join("no-nics");
    std::fs::create_dir_all(&empty).unwrap();
    let hw = Host::without_gpus(Vec::new()).with_nics(&empty, None);
    let r = run(&hw, None);
    assert!(r.ok && r.items.len() == 1 && r.items[0].method == "none", "{r:?}");
    // Where the baseline had adapters, they are missed.
    let r = run(&hw, Some(both()));
    assert!(!r.ok && !item(&r, PF0).ok, "{r:?}");
}

#[test]
fn the_agents_inventory_shows_the_adapters_settings_reading_only() {
    let dir = scratch("inventory");
    let nics = FakeNics::new(&dir);
    nics.set(PF1, "SRIOV_EN", 0, false); // the card's: both functions show it
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_neocloud-agent"))
        .args(["--inventory", "--efivars", "none", "--tpm", "none", "--pci-devices"])
        .arg(&nics.pci)
        .arg("--mstconfig")
        .arg(&nics.tool)
        .env("LD_LIBRARY_PATH", dir.join("no-libraries"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        v["nic_settings"],
        format!(
            "{PF0}: 6 settings, 1 off their defaults (SRIOV_EN=0); \
             {PF1}: 6 settings, 1 off their defaults (SRIOV_EN=0)"
        ),
        "{v}"
    );
    let calls = nics.take_calls();
    assert_eq!(calls, [format!("-d {PF0} -e query"), format!("-d {PF1} -e query")]);
    assert_eq!(nics.next(PF1, "SRIOV_EN"), 0, "--inventory changed nothing");
}
