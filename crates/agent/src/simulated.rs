//! A hardware SIMULATOR: fake GPUs and disks, steps that touch nothing.
//!
//! Used by the control plane's demo datacenter (agents run in-process
//! against the real API) and by tests. Everything it reports is derived
//! from a seed string, so the same seed always gives the same GPU uuids,
//! serials and MACs. Nothing is ever wiped or reset: steps answer `ok`
//! items with method `simulated`, unless a failure is injected with
//! [`SimulatedConfig::fail_step`].

use std::sync::Mutex;

use neocloud_types::{
    AgentDisk, AgentGpu, AgentInventory, AgentStepKind, AgentStepResult, GpuStatus, StepItem,
};

use crate::{result_of, Hardware};

/// The simulated BIOS version [`Simulated`] reports.
pub const SIMULATED_BIOS_VERSION: &str = "SIM-BIOS-1.0";
/// The simulated VBIOS version of every simulated GPU.
pub const SIMULATED_VBIOS_VERSION: &str = "96.00.SIM.00.01";
/// The simulated NVIDIA driver version.
pub const SIMULATED_DRIVER_VERSION: &str = "550.0-simulated";

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedConfig {
    /// Everything derived (uuids, serials, MACs) comes from it; use the
    /// node's name so each simulated node differs.
    pub seed: String,
    pub hostname: String,
    pub gpu_count: u32,
    pub gpu_model: String,
    pub gpu_memory_mib: u64,
    /// Simulated disks: path and size in bytes.
    pub disks: Vec<(String, u64)>,
    /// Makes this step fail (every item, or one `simulator` item when it
    /// has none), for tests of failure handling.
    pub fail_step: Option<AgentStepKind>,
    /// This GPU (by index) reports uncorrectable ECC errors and a failed
    /// row remap, which no reset clears: a board to replace.
    pub unhealthy_gpu: Option<u32>,
    /// A real TPM (a software one, in tests) whose identity the simulated
    /// node proves; none by default.
    pub tpm: Option<crate::tpm::TpmPath>,
}

impl SimulatedConfig {
    /// An 8-GPU H100 node with two 3.84 TB NVMe disks.
    pub fn new(seed: &str) -> SimulatedConfig {
        SimulatedConfig {
            seed: seed.to_string(),
            hostname: format!("sim-{seed}"),
            gpu_count: 8,
            gpu_model: "NVIDIA H100 80GB HBM3 (simulated)".into(),
            gpu_memory_mib: 81559,
            disks: vec![
                ("/dev/sim-nvme0n1".into(), 3_840_755_982_336),
                ("/dev/sim-nvme1n1".into(), 3_840_755_982_336),
            ],
            fail_step: None,
            unhealthy_gpu: None,
            tpm: None,
        }
    }
}

/// Simulated hardware (see the module documentation).
pub struct Simulated {
    config: SimulatedConfig,
    ran: Mutex<Vec<AgentStepKind>>,
}

impl Simulated {
    pub fn new(config: SimulatedConfig) -> Simulated {
        Simulated { config, ran: Mutex::new(Vec::new()) }
    }

    pub fn config(&self) -> &SimulatedConfig {
        &self.config
    }

    /// The steps run so far, in order.
    pub fn steps_run(&self) -> Vec<AgentStepKind> {
        self.ran.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn gpu_list(&self) -> Vec<AgentGpu> {
        let seed = &self.config.seed;
        (0..self.config.gpu_count)
            .map(|i| {
                let a = hash(&format!("{seed}/gpu/{i}/a"));
                let b = hash(&format!("{seed}/gpu/{i}/b"));
                AgentGpu {
                    index: i,
                    name: self.config.gpu_model.clone(),
                    uuid: format!(
                        "GPU-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                        a >> 32,
                        (a >> 16) & 0xffff,
                        a & 0xffff,
                        b >> 48,
                        b & 0xffff_ffff_ffff
                    ),
                    serial: format!("{:013}", hash(&format!("{seed}/serial/{i}")) % 10u64.pow(13)),
                    memory_mib: self.config.gpu_memory_mib,
                    pci_bus_id: format!("00000000:{:02X}:00.0", 0x18 + i * 0x10),
                }
            })
            .collect()
    }

    fn step(&self, kind: AgentStepKind, mut items: Vec<StepItem>) -> AgentStepResult {
        self.ran.lock().unwrap_or_else(|e| e.into_inner()).push(kind);
        if self.config.fail_step == Some(kind) {
            if items.is_empty() {
                items.push(sim_item("simulator", true, String::new()));
            }
            for it in &mut items {
                it.ok = false;
                it.detail = format!("simulated failure of {}", kind.as_str());
            }
        }
        result_of(items)
    }
}

fn sim_item(target: &str, ok: bool, detail: String) -> StepItem {
    StepItem { target: target.into(), method: "simulated".into(), ok, detail }
}

/// FNV-1a, then a splitmix64 finalizer to spread the bits.
fn hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl Hardware for Simulated {
    fn inventory(&self) -> AgentInventory {
        let m = hash(&format!("{}/mac", self.config.seed));
        // Locally administered, unicast.
        let mac = format!(
            "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            (m >> 32) as u8,
            (m >> 24) as u8,
            (m >> 16) as u8,
            (m >> 8) as u8,
            m as u8
        );
        AgentInventory {
            hostname: self.config.hostname.clone(),
            driver_version: if self.config.gpu_count > 0 {
                SIMULATED_DRIVER_VERSION.into()
            } else {
                String::new()
            },
            gpus: self.gpu_list(),
            disks: self
                .config
                .disks
                .iter()
                .map(|(path, bytes)| AgentDisk {
                    path: path.clone(),
                    bytes: *bytes,
                    model: "Simulated NVMe".into(),
                })
                .collect(),
            macs: vec![mac],
        }
    }

    fn gpus(&self) -> Vec<AgentGpu> {
        self.gpu_list()
    }

    fn wipe_disks(&self) -> AgentStepResult {
        let mut items: Vec<StepItem> = self
            .config
            .disks
            .iter()
            .map(|(path, bytes)| sim_item(path, true, format!("simulated wipe of {bytes} bytes")))
            .collect();
        if items.is_empty() {
            // Like the real host: a wipe of nothing is not a success.
            items.push(sim_item("disks", false, "no simulated disks".into()));
        }
        self.step(AgentStepKind::WipeDisks, items)
    }

    fn gpu_status(&self) -> Vec<GpuStatus> {
        self.gpu_list()
            .into_iter()
            .map(|g| {
                let bad = self.config.unhealthy_gpu == Some(g.index);
                let mut s = GpuStatus {
                    index: g.index,
                    uuid: g.uuid,
                    temperature_c: Some(32 + g.index),
                    power_mw: Some(72_000),
                    utilization_pct: Some(0),
                    memory_used_mib: Some(0),
                    ecc_uncorrected: Some(if bad { 2 } else { 0 }),
                    row_remap_pending: Some(false),
                    row_remap_failed: Some(bad),
                    xid_errors: Vec::new(),
                    // An idle simulated GPU, as NVML reports an idle one.
                    throttle_reasons: vec!["idle".into()],
                    // An HGX baseboard: 18 NVLink links, all up.
                    nvlink_active: Some(18),
                    nvlink_down: Vec::new(),
                    nvlink_errors: Some(neocloud_types::NvLinkErrors::default()),
                    problems: Vec::new(),
                };
                crate::health::assess(&mut s);
                s
            })
            .collect()
    }

    fn reset_gpus(&self) -> AgentStepResult {
        let mut items: Vec<StepItem> = self
            .gpu_list()
            .iter()
            .map(|g| sim_item(&g.uuid, true, format!("simulated reset of GPU {}", g.index)))
            .collect();
        crate::host::after_reset(&mut items, &self.gpu_status());
        items.extend(self.gpu_list().iter().map(|g| {
            let detail = format!("simulated GPU {}: {} MiB set to zero", g.index, g.memory_mib);
            sim_item(&g.uuid, true, detail)
        }));
        self.step(AgentStepKind::ResetGpus, items)
    }

    fn report_firmware(&self) -> AgentStepResult {
        let mut items = vec![sim_item("bios", true, SIMULATED_BIOS_VERSION.into())];
        items.extend(
            self.gpu_list().iter().map(|g| sim_item(&g.uuid, true, SIMULATED_VBIOS_VERSION.into())),
        );
        self.step(AgentStepKind::ReportFirmware, items)
    }

    fn tpm_path(&self) -> Option<crate::tpm::TpmPath> {
        self.config.tpm.clone()
    }

    fn clear_tpm(&self) -> AgentStepResult {
        if let Some(t) = &self.config.tpm {
            let item = crate::tpm::clear_tpm(t, None);
            return self.step(AgentStepKind::ClearTpm, vec![item]);
        }
        let items = vec![sim_item("tpm", true, "simulated TPM cleared, nothing left".into())];
        self.step(AgentStepKind::ClearTpm, items)
    }

    fn clear_uefi_variables(&self, _baseline: Option<&[String]>) -> AgentStepResult {
        let items = vec![sim_item("efivars", true, "simulated NVRAM, nothing created".into())];
        self.step(AgentStepKind::ClearUefiVariables, items)
    }

    fn reset_nic_settings(&self, _baseline: Option<&[String]>) -> AgentStepResult {
        let items =
            vec![sim_item("nics", true, "simulated network adapters, settings at defaults".into())];
        self.step(AgentStepKind::ResetNicSettings, items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_step(hw: &dyn Hardware, kind: AgentStepKind) -> AgentStepResult {
        let step = neocloud_types::AgentStep {
            id: "s".into(),
            kind,
            uefi_baseline: None,
            nic_baseline: None,
        };
        crate::run_step(hw, &step)
    }

    #[test]
    fn inventory_is_deterministic_per_seed() {
        let a = Simulated::new(SimulatedConfig::new("node-a")).inventory();
        let a2 = Simulated::new(SimulatedConfig::new("node-a")).inventory();
        let b = Simulated::new(SimulatedConfig::new("node-b")).inventory();
        assert_eq!(a, a2);
        assert_eq!(a.gpus.len(), 8);
        assert_eq!(a.disks.len(), 2);
        assert_eq!(a.driver_version, SIMULATED_DRIVER_VERSION);
        assert_ne!(a.gpus[0].uuid, b.gpus[0].uuid);
        assert_ne!(a.macs, b.macs);
        let mut uuids: Vec<_> = a.gpus.iter().map(|g| g.uuid.clone()).collect();
        uuids.sort();
        uuids.dedup();
        assert_eq!(uuids.len(), 8, "uuids are distinct");
        for g in &a.gpus {
            assert_eq!(g.uuid.len(), "GPU-".len() + 36, "{}", g.uuid);
            assert_eq!(g.serial.len(), 13);
            assert_eq!(g.memory_mib, 81559);
        }
        assert!(a.macs[0].starts_with("02:"));
    }

    #[test]
    fn configurable_shape() {
        let mut c = SimulatedConfig::new("s");
        c.gpu_count = 2;
        c.gpu_model = "Sim A100".into();
        c.gpu_memory_mib = 40960;
        c.disks = vec![("/dev/simA".into(), 10)];
        let inv = Simulated::new(c).inventory();
        assert_eq!(inv.gpus.len(), 2);
        assert_eq!(inv.gpus[1].name, "Sim A100");
        assert_eq!(inv.gpus[1].memory_mib, 40960);
        assert_eq!(
            inv.disks,
            [AgentDisk { path: "/dev/simA".into(), bytes: 10, model: "Simulated NVMe".into() }]
        );
    }

    #[test]
    fn steps_succeed_with_an_item_per_disk_and_gpu() {
        let sim = Simulated::new(SimulatedConfig::new("n"));
        let wipe = run_step(&sim, AgentStepKind::WipeDisks);
        assert!(wipe.ok);
        assert_eq!(wipe.items.len(), 2);
        assert!(wipe.items.iter().all(|i| i.ok && i.method == "simulated"));
        let reset = run_step(&sim, AgentStepKind::ResetGpus);
        assert!(reset.ok);
        // Each GPU reset, and its memory set to zero.
        assert_eq!(reset.items.len(), 16);
        assert!(reset.items[8].detail.contains("81559 MiB set to zero"), "{:?}", reset.items[8]);
        let fw = run_step(&sim, AgentStepKind::ReportFirmware);
        assert!(fw.ok);
        assert_eq!(fw.items.len(), 9);
        assert_eq!(fw.items[0].detail, SIMULATED_BIOS_VERSION);
        let nics = run_step(&sim, AgentStepKind::ResetNicSettings);
        assert!(nics.ok && nics.items.len() == 1 && nics.items[0].method == "simulated");
        let uefi = run_step(&sim, AgentStepKind::ClearUefiVariables);
        assert!(uefi.ok && uefi.items.len() == 1 && uefi.items[0].method == "simulated");
        let tpm = run_step(&sim, AgentStepKind::ClearTpm);
        assert!(tpm.ok && tpm.items.len() == 1 && tpm.items[0].method == "simulated");
        assert_eq!(sim.steps_run(), AgentStepKind::SANITIZE);
    }

    #[test]
    fn failure_injection_fails_only_that_step() {
        let mut c = SimulatedConfig::new("f");
        c.fail_step = Some(AgentStepKind::ResetGpus);
        let sim = Simulated::new(c);
        assert!(run_step(&sim, AgentStepKind::WipeDisks).ok);
        let r = run_step(&sim, AgentStepKind::ResetGpus);
        assert!(!r.ok);
        assert_eq!(r.items.len(), 16);
        assert!(r.items.iter().all(|i| !i.ok && i.detail.contains("simulated failure")));
        assert!(run_step(&sim, AgentStepKind::ReportFirmware).ok);

        // A step with no items still fails visibly.
        let mut c = SimulatedConfig::new("g");
        c.gpu_count = 0;
        c.fail_step = Some(AgentStepKind::ResetGpus);
        let r = run_step(&Simulated::new(c), AgentStepKind::ResetGpus);
        assert!(!r.ok);
        assert_eq!(r.items.len(), 1);
    }

    #[test]
    fn no_gpus_reset_is_ok_and_empty() {
        let mut c = SimulatedConfig::new("z");
        c.gpu_count = 0;
        let sim = Simulated::new(c);
        assert_eq!(sim.inventory().driver_version, "");
        let r = sim.reset_gpus();
        assert!(r.ok);
        assert!(r.items.is_empty());
    }
}
