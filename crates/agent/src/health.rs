//! GPU health: what the readings of a GPU say is wrong with it, and the
//! one line of health the agent heartbeats.
//!
//! A GPU is unhealthy when its memory lost data (uncorrectable ECC errors
//! since the driver loaded), when a row remap waits for a reset or failed
//! (the memory cannot be repaired in place), when the driver lost it (it
//! fell off the bus), or when a GPU the agent registered with is no longer
//! seen at all. Temperatures, power and utilization are reported, not
//! judged: their limits differ by board and the driver throttles itself.

use crate::nvml::Mode;
use neocloud_types::GpuStatus;

/// The health of a machine with nothing wrong.
pub const OK: &str = "ok";

/// Fills `s.problems` from its readings (keeping any already found while
/// reading it, such as a lost GPU).
pub fn assess(s: &mut GpuStatus) {
    let gpu = format!("GPU {} ({})", s.index, s.uuid);
    if let Some(n) = s.ecc_uncorrected.filter(|n| *n > 0) {
        s.problems.push(format!("{gpu}: {n} uncorrectable ECC errors since the driver loaded"));
    }
    if s.row_remap_failed == Some(true) {
        s.problems.push(format!("{gpu}: a memory row remap failed (the GPU needs replacing)"));
    }
    if s.row_remap_pending == Some(true) {
        s.problems.push(format!("{gpu}: a memory row remap is pending (it needs a GPU reset)"));
    }
    // The hardware holding its clocks down: cooling, power delivery or an
    // external power brake is failing (software caps are the operator's).
    let hw: Vec<&str> = s
        .throttle_reasons
        .iter()
        .map(String::as_str)
        .filter(|r| matches!(*r, "hw_slowdown" | "hw_thermal" | "hw_power_brake"))
        .collect();
    if !hw.is_empty() {
        s.problems.push(format!("{gpu}: clocks held down by the hardware ({})", hw.join(", ")));
    }
}

/// NVLink, judged across a machine's GPUs: a GPU with fewer links up than
/// the best of its peers lost some (a link, a cable or an NVSwitch port).
/// Links down on every GPU alike are not judged (a board without NVLink
/// wired, a fabric not brought up) beyond being reported.
pub fn compare_nvlinks(all: &mut [GpuStatus]) {
    let Some(best) = all.iter().filter_map(|s| s.nvlink_active).max() else { return };
    for s in all.iter_mut() {
        if let Some(n) = s.nvlink_active.filter(|n| *n < best) {
            let down: Vec<String> = s.nvlink_down.iter().map(u32::to_string).collect();
            s.problems.push(format!(
                "GPU {} ({}): NVLink {n} links up, its peers {best} (down: {})",
                s.index,
                s.uuid,
                down.join(", ")
            ));
        }
    }
}

/// NVML's clock event reason bits (`nvmlClocksEventReason*`), by name.
const CLOCK_EVENTS: [(u64, &str); 9] = [
    (0x1, "idle"),
    (0x2, "applications_clocks"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal"),
    (0x40, "hw_thermal"),
    (0x80, "hw_power_brake"),
    (0x100, "display_clocks"),
];

/// The names of the clock event reasons set in `bits` (unknown bits left
/// out).
pub fn throttle_reasons(bits: u64) -> Vec<&'static str> {
    CLOCK_EVENTS.iter().filter(|(b, _)| bits & b != 0).map(|(_, n)| *n).collect()
}

/// What a hardware-class Xid means, or `None` for the rest: those an
/// application causes (13, 31, 43, 45: a bad kernel or address harms only
/// its own process) and those that are informational. These need at least
/// a GPU reset (NVIDIA's Xid catalog and memory error management guide).
pub fn critical_xid(code: u64) -> Option<&'static str> {
    match code {
        48 => Some("uncorrectable ECC error"),
        64 => Some("failure to record a row remap"),
        74 => Some("NVLink error"),
        79 => Some("fallen off the bus"),
        92 => Some("high single-bit ECC error rate"),
        95 => Some("uncontained ECC error"),
        119 | 120 => Some("GPU System Processor error"),
        _ => None,
    }
}

/// Adds the Xids reported for `s`'s GPU (hardware class only) to its
/// errors and problems.
pub fn add_xids(s: &mut GpuStatus, codes: impl IntoIterator<Item = u64>) {
    for code in codes {
        let Some(meaning) = critical_xid(code) else { continue };
        if s.xid_errors.contains(&code) {
            continue;
        }
        s.xid_errors.push(code);
        s.problems.push(format!("GPU {} ({}): Xid {code} ({meaning})", s.index, s.uuid));
    }
}

/// What a GPU's modes need before its reset, which applies them: ECC on
/// and MIG off, as every tenant gets a GPU (`(turn ECC on, turn MIG off)`).
/// A tenant can turn ECC off or MIG on; both outlive reboots.
pub fn mode_fixes(ecc: Option<Mode>, mig: Option<Mode>) -> (bool, bool) {
    (ecc.is_some_and(|m| !m.current || !m.pending), mig.is_some_and(|m| m.current || m.pending))
}

/// After the reset: what is not back (ECC off, MIG on, now or pending).
pub fn mode_problems(gpu: &str, ecc: Option<Mode>, mig: Option<Mode>) -> Vec<String> {
    let mut out = Vec::new();
    if ecc.is_some_and(|m| !m.current || !m.pending) {
        out.push(format!("{gpu}: ECC is off after the reset"));
    }
    if mig.is_some_and(|m| m.current || m.pending) {
        out.push(format!("{gpu}: MIG is on after the reset"));
    }
    out
}

/// The problem of a GPU the agent registered with and no longer sees.
pub fn missing(uuid: &str) -> String {
    format!("GPU {uuid}: no longer seen (it was there when the agent registered)")
}

/// The heartbeat's health: [`OK`], or `degraded: ` and every problem (the
/// GPUs registered with, `expected` by uuid, and not seen first).
pub fn summary(expected: &[String], seen: &[GpuStatus]) -> String {
    let mut problems: Vec<String> = expected
        .iter()
        .filter(|u| !seen.iter().any(|s| &s.uuid == *u))
        .map(|u| missing(u))
        .collect();
    problems.extend(seen.iter().flat_map(|s| s.problems.iter().cloned()));
    if problems.is_empty() {
        OK.to_string()
    } else {
        format!("degraded: {}", problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvlinks_are_judged_against_the_best_peer() {
        let gpu = |i: u32, active: Option<u32>, down: &[u32]| GpuStatus {
            index: i,
            uuid: format!("GPU-{i}"),
            nvlink_active: active,
            nvlink_down: down.to_vec(),
            ..GpuStatus::default()
        };
        let mut all = vec![gpu(0, Some(18), &[]), gpu(1, Some(17), &[3]), gpu(2, None, &[])];
        compare_nvlinks(&mut all);
        assert!(all[0].problems.is_empty() && all[2].problems.is_empty(), "{all:?}");
        assert_eq!(all[1].problems, ["GPU 1 (GPU-1): NVLink 17 links up, its peers 18 (down: 3)"]);
        // Down alike on every GPU (no fabric brought up): reported, not judged.
        let mut all = vec![gpu(0, Some(0), &[0, 1]), gpu(1, Some(0), &[0, 1])];
        compare_nvlinks(&mut all);
        assert!(all.iter().all(|s| s.problems.is_empty()), "{all:?}");
        // No NVLink at all: nothing to judge.
        let mut all = vec![gpu(0, None, &[])];
        compare_nvlinks(&mut all);
        assert!(all[0].problems.is_empty());
    }

    fn gpu(index: u32) -> GpuStatus {
        GpuStatus { index, uuid: format!("GPU-{index}"), ..GpuStatus::default() }
    }

    #[test]
    fn the_hardware_holding_clocks_down_is_a_problem_software_caps_are_not() {
        assert_eq!(throttle_reasons(0x1 | 0x4 | 0x20), ["idle", "sw_power_cap", "sw_thermal"]);
        assert_eq!(throttle_reasons(0x8 | 0x80 | 0x10000), ["hw_slowdown", "hw_power_brake"]);
        let mut s = gpu(3);
        s.throttle_reasons = vec!["sw_power_cap".into(), "idle".into()];
        assess(&mut s);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        s.throttle_reasons = vec!["sw_power_cap".into(), "hw_thermal".into()];
        assess(&mut s);
        assert_eq!(s.problems, ["GPU 3 (GPU-3): clocks held down by the hardware (hw_thermal)"]);
    }

    #[test]
    fn ecc_goes_back_on_and_mig_off() {
        let m = |current, pending| Some(Mode { current, pending });
        assert_eq!(mode_fixes(m(true, true), m(false, false)), (false, false));
        assert_eq!(mode_fixes(m(false, false), m(true, true)), (true, true));
        assert_eq!(mode_fixes(m(true, false), m(false, true)), (true, true), "pending counts");
        assert_eq!(mode_fixes(None, None), (false, false), "a board without them");
        assert!(mode_problems("GPU 0", m(true, true), m(false, false)).is_empty());
        assert_eq!(
            mode_problems("GPU 1", m(false, true), m(true, false)),
            ["GPU 1: ECC is off after the reset", "GPU 1: MIG is on after the reset"]
        );
    }

    #[test]
    fn healthy_readings_have_no_problems() {
        let mut s = gpu(0);
        s.ecc_uncorrected = Some(0);
        s.row_remap_pending = Some(false);
        s.row_remap_failed = Some(false);
        s.temperature_c = Some(95);
        s.utilization_pct = Some(100);
        assess(&mut s);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        assert_eq!(summary(&["GPU-0".into()], &[s]), OK);
        // Readings the GPU does not offer are not problems either.
        let mut bare = gpu(1);
        assess(&mut bare);
        assert!(bare.problems.is_empty());
    }

    #[test]
    fn memory_errors_and_remaps_are_problems() {
        let mut s = gpu(3);
        s.ecc_uncorrected = Some(2);
        s.row_remap_pending = Some(true);
        s.row_remap_failed = Some(true);
        assess(&mut s);
        assert_eq!(s.problems.len(), 3, "{:?}", s.problems);
        assert!(s.problems[0].starts_with("GPU 3 (GPU-3): 2 uncorrectable ECC errors"));
        assert!(s.problems[1].contains("row remap failed"));
        assert!(s.problems[2].contains("row remap is pending"));
        let h = summary(&["GPU-3".into()], &[s]);
        assert!(h.starts_with("degraded: GPU 3 (GPU-3): 2 uncorrectable"), "{h}");
    }

    #[test]
    fn only_hardware_class_xids_are_problems_once_each() {
        let mut s = gpu(2);
        add_xids(&mut s, [13, 31, 43, 45, 63, 94]);
        assert!(s.problems.is_empty() && s.xid_errors.is_empty(), "{s:?}");
        add_xids(&mut s, [79, 13, 79, 48]);
        assert_eq!(s.xid_errors, [79, 48]);
        assert_eq!(
            s.problems,
            [
                "GPU 2 (GPU-2): Xid 79 (fallen off the bus)",
                "GPU 2 (GPU-2): Xid 48 (uncorrectable ECC error)"
            ]
        );
    }

    #[test]
    fn a_gpu_registered_with_and_gone_is_a_problem_first() {
        let mut lost = gpu(1);
        lost.problems.push("GPU 1 (GPU-1): lost by the driver".into());
        let h = summary(&["GPU-0".into(), "GPU-1".into(), "GPU-2".into()], &[gpu(0), lost]);
        assert_eq!(h, format!("degraded: {}; GPU 1 (GPU-1): lost by the driver", missing("GPU-2")),);
    }
}
