//! The agent's NVML binding against a test double of the library
//! (`fake_nvml/fake_nvml.c`, built here with the system's C compiler):
//! the symbols, prototypes and struct layouts of nvml.h, three fixed GPUs
//! (healthy; ECC errors, a pending row remap and two NVLink links down;
//! lost). The same readings
//! were checked against a real H200 (docs/bare-metal.md, "GPU health").

use std::path::{Path, PathBuf};
use std::process::Command;

use neocloud_agent::nvml::Nvml;
use neocloud_agent::{health, Hardware, Host};

mod fake_lib;

/// Builds the fake NVML (once per variant) into `dir/name`.
fn build(dir: &Path, name: &str, defines: &[&str]) -> PathBuf {
    fake_lib::build("fake_nvml/fake_nvml.c", dir, name, defines)
}

fn scratch(test: &str) -> PathBuf {
    fake_lib::scratch("nvml", test)
}

const GPU0: &str = "GPU-fa4e0000-0000-0000-0000-000000000000";
const GPU1: &str = "GPU-fa4e0000-0000-0000-0000-000000000001";

#[test]
fn inventory_and_readings_come_through_the_c_interface() {
    let lib = build(&scratch("full"), "libfake-nvml.so", &[]);
    let nvml = Nvml::load_from(lib.to_str().unwrap()).expect("the fake NVML loads");
    assert_eq!(nvml.driver_version(), "570.86.15-fake");
    assert_eq!(nvml.count(), 3);

    // The lost GPU is left out of the inventory; the rest is read whole.
    let gpus = nvml.gpus();
    assert_eq!(gpus.len(), 2, "{gpus:?}");
    assert_eq!(gpus[0].uuid, GPU0);
    assert_eq!(gpus[0].name, "NVIDIA H200 (fake)");
    assert_eq!(gpus[0].serial, "", "NOT_SUPPORTED is an empty serial");
    assert_eq!(gpus[1].serial, "1650924060001");
    assert_eq!(gpus[0].memory_mib, 143771);
    assert_eq!(gpus[1].pci_bus_id, "00000000:28:00.0");
    assert_eq!(nvml.vbios_version(1).unwrap(), "96.00.A5.00.01");

    let st = nvml.statuses();
    assert_eq!(st.len(), 3);
    // Healthy: every reading, no problem.
    assert_eq!(st[0].uuid, GPU0);
    assert_eq!(st[0].temperature_c, Some(30));
    assert_eq!(st[0].power_mw, Some(75_000));
    assert_eq!(st[0].utilization_pct, Some(40));
    assert_eq!(st[0].memory_used_mib, Some(512));
    assert_eq!(st[0].ecc_uncorrected, Some(0));
    assert_eq!(st[0].row_remap_pending, Some(false));
    assert_eq!(st[0].row_remap_failed, Some(false));
    assert!(st[0].problems.is_empty(), "{:?}", st[0].problems);
    assert_eq!(st[0].throttle_reasons, ["idle"], "read through the older symbol name");
    assert_eq!(st[1].throttle_reasons, ["sw_power_cap", "sw_thermal"], "software caps only");
    // ECC errors and a pending remap.
    assert_eq!(st[1].uuid, GPU1);
    assert_eq!(st[1].ecc_uncorrected, Some(3));
    assert_eq!(st[1].row_remap_pending, Some(true));
    assert_eq!(st[1].memory_used_mib, Some(1024));
    assert_eq!(st[1].problems.len(), 3, "{:?}", st[1].problems);
    assert!(st[1].problems[0].contains("3 uncorrectable ECC errors"));
    assert!(st[1].problems[1].contains("row remap is pending"));
    // NVLink: every link of GPU 0 up; GPU 1 lost two, judged against it.
    assert_eq!((st[0].nvlink_active, st[0].nvlink_down.is_empty()), (Some(18), true));
    assert_eq!(st[1].nvlink_active, Some(16));
    assert_eq!(st[1].nvlink_down, [4, 11]);
    // Error counts summed over the links, CRC flit and data together.
    let e = st[1].nvlink_errors.expect("counted");
    assert_eq!((e.replay, e.recovery, e.crc), (7, 2, 6));
    assert_eq!(st[0].nvlink_errors.map(|e| e.replay + e.recovery + e.crc), Some(0));
    assert_eq!(
        st[1].problems[2],
        format!("GPU 1 ({GPU1}): NVLink 16 links up, its peers 18 (down: 4, 11)")
    );
    // Lost: nothing read, one problem.
    assert_eq!(st[2].uuid, "");
    assert_eq!(st[2].temperature_c, None);
    assert_eq!(st[2].problems, ["GPU 2: lost by the driver (fallen off the bus?)"]);

    // Through the agent's hardware: what it heartbeats.
    let host = Host::with_nvml(Vec::new(), Some(nvml));
    let inv = host.inventory();
    assert_eq!(inv.driver_version, "570.86.15-fake");
    let expected: Vec<String> = inv.gpus.iter().map(|g| g.uuid.clone()).collect();
    let h = health::summary(&expected, &host.gpu_status());
    assert!(h.starts_with("degraded: GPU 1 ("), "{h}");
    assert!(h.contains("GPU 2: lost by the driver"), "{h}");
    assert!(!h.contains(GPU0), "the healthy GPU is not named: {h}");
}

#[test]
fn critical_xids_are_watched_and_reported_until_the_gpu_is_reset() {
    let lib = build(&scratch("xid"), "libfake-nvml-xid.so", &[]);
    let nvml = Nvml::load_from(lib.to_str().unwrap()).expect("the fake NVML loads");
    let host = Host::with_nvml(Vec::new(), Some(nvml));
    assert_eq!(
        host.xid_watch().as_deref(),
        Some("watching 2 GPUs"),
        "the lost GPU cannot register"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let st = loop {
        let st = host.gpu_status();
        if !st[1].xid_errors.is_empty() || std::time::Instant::now() > deadline {
            break st;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(st[1].xid_errors, [79], "{:?}", st[1]);
    assert!(
        st[1].problems.iter().any(|p| p == &format!("GPU 1 ({GPU1}): Xid 79 (fallen off the bus)")),
        "{:?}",
        st[1].problems
    );
    // Xid 13 is an application's fault: not the GPU's.
    assert!(st[0].xid_errors.is_empty() && st[0].problems.is_empty(), "{:?}", st[0]);
}

#[test]
fn a_driver_without_the_readings_still_gives_the_inventory() {
    let lib = build(&scratch("old"), "libfake-nvml-old.so", &["-DNO_READINGS"]);
    let nvml = Nvml::load_from(lib.to_str().unwrap()).expect("the old fake NVML loads");
    assert_eq!(nvml.gpus().len(), 2);
    let st = nvml.status(0);
    assert_eq!(st.uuid, GPU0);
    assert_eq!(
        (st.temperature_c, st.power_mw, st.utilization_pct, st.ecc_uncorrected),
        (None, None, None, None)
    );
    assert_eq!((st.row_remap_pending, st.row_remap_failed), (None, None));
    assert!(st.throttle_reasons.is_empty());
    assert_eq!((st.nvlink_active, st.nvlink_down.len()), (None, 0), "no NVLink symbol");
    assert_eq!(st.nvlink_errors, None);
    // Memory is a base symbol: still read.
    assert_eq!(st.memory_used_mib, Some(512));
    assert!(st.problems.is_empty());
    // Nor events: the Xids are not watched, and the host says why.
    let host = Host::with_nvml(Vec::new(), Some(nvml));
    let w = host.xid_watch().unwrap();
    assert!(w.starts_with("not watched: this NVML has no event calls"), "{w}");
}

#[test]
fn the_agent_prints_what_it_would_report_and_says_whether_it_is_healthy() {
    let dir = scratch("bin");
    // Found by its soname on the library path, as the driver's would be.
    build(&dir, "libnvidia-ml.so.1", &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_neocloud-agent"))
        .args(["--inventory", "--watch", "1s"])
        .env("LD_LIBRARY_PATH", &dir)
        .env_remove("NEOCLOUD_API")
        .env_remove("NEOCLOUD_AGENT_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "unhealthy: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["inventory"]["driver_version"], "570.86.15-fake");
    assert_eq!(v["inventory"]["gpus"].as_array().unwrap().len(), 2);
    assert_eq!(v["gpu_status"].as_array().unwrap().len(), 3);
    assert_eq!(v["gpu_status"][1]["ecc_uncorrected"], 3);
    assert!(v["health"].as_str().unwrap().starts_with("degraded: "), "{}", v["health"]);
    assert_eq!(v["xid_watch"], "watching 2 GPUs");
    // Every Xid seen is listed; only the hardware's count against the GPU.
    assert_eq!(v["xids_seen"], serde_json::json!([{"gpu": 0, "xid": 13}, {"gpu": 1, "xid": 79}]));
    assert_eq!(v["gpu_status"][1]["xid_errors"], serde_json::json!([79]));
    assert!(v["gpu_status"][0].get("xid_errors").is_none(), "{}", v["gpu_status"][0]);

    // Without NVML: no GPUs, healthy, exit 0. The UEFI variables it
    // would clear, read only: two non-volatile (one with authenticated
    // writes), one volatile.
    let efi = scratch("efivars");
    std::fs::create_dir_all(&efi).unwrap();
    let guid = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";
    for (name, attributes) in [("Kept", 0x7u32), ("Signed", 0x27), ("Gone", 0x6)] {
        let mut bytes = attributes.to_le_bytes().to_vec();
        bytes.push(1);
        std::fs::write(efi.join(format!("{name}-{guid}")), bytes).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_neocloud-agent"))
        .args(["--inventory", "--efivars", efi.to_str().unwrap()])
        .env("LD_LIBRARY_PATH", scratch("none"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["uefi_variables"],
        format!("{}: 2 non-volatile variables (1 with authenticated writes)", efi.display())
    );
    assert_eq!(std::fs::read_dir(&efi).unwrap().count(), 3, "--inventory deleted nothing");
    if Nvml::load().is_none() {
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(v["health"], "ok");
        assert_eq!(v["gpu_status"].as_array().unwrap().len(), 0);
    }
}

/// ECC off and MIG on outlive reboots: the sanitizer sets them back through
/// NVML, and the GPU reset applies them (here the fake's stand-in for it).
#[test]
fn ecc_and_mig_modes_are_read_set_and_applied_by_a_reset() {
    let lib = build(&scratch("modes"), "libfake-nvml-modes.so", &[]);
    let nvml = Nvml::load_from(lib.to_str().unwrap()).expect("the fake NVML loads");
    let on = |c, p| Some(neocloud_agent::nvml::Mode { current: c, pending: p });
    assert_eq!(nvml.ecc_mode(0), on(true, true));
    assert_eq!((nvml.ecc_mode(1), nvml.mig_mode(1)), (on(false, false), on(true, true)));
    assert_eq!(nvml.ecc_mode(2), None, "a lost GPU says nothing");
    assert_eq!(health::mode_fixes(nvml.ecc_mode(1), nvml.mig_mode(1)), (true, true));
    nvml.set_ecc_mode(1, true).unwrap();
    nvml.set_mig_mode(1, false).unwrap();
    assert_eq!((nvml.ecc_mode(1), nvml.mig_mode(1)), (on(false, true), on(true, false)));
    let problems = health::mode_problems("GPU 1", nvml.ecc_mode(1), nvml.mig_mode(1));
    assert_eq!(problems.len(), 2, "pending is not applied: {problems:?}");
    // SAFETY: the fake's own function, `void (void)`; the library stays
    // loaded (the `Nvml` above holds it) while it is called.
    unsafe {
        let fake = libloading::Library::new(&lib).unwrap();
        let reset: libloading::Symbol<unsafe extern "C" fn()> =
            fake.get(b"fake_nvml_reset\0").unwrap();
        reset();
    }
    assert_eq!((nvml.ecc_mode(1), nvml.mig_mode(1)), (on(true, true), on(false, false)));
    assert!(health::mode_problems("GPU 1", nvml.ecc_mode(1), nvml.mig_mode(1)).is_empty());
    // A driver without the mode symbols: none read, nothing to set.
    let old = build(&scratch("modes-old"), "libfake-nvml-modes-old.so", &["-DNO_READINGS"]);
    let old = Nvml::load_from(old.to_str().unwrap()).expect("the old fake NVML loads");
    assert_eq!((old.ecc_mode(1), old.mig_mode(1)), (None, None));
    assert!(old.set_ecc_mode(1, true).is_err());
}
