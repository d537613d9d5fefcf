//! `neocloud node hardware`: what the node's BMC and its agent reported,
//! one row per component.

use crate::output::{short_time, Table};
use neocloud_types::NodeHardware;

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>, unit: &str) -> String {
    v.map(|v| format!("{v}{unit}")).unwrap_or_else(|| "-".into())
}

/// The table: the BMC's system, GPUs, firmware, Secure Boot and accounts,
/// then the agent and its GPUs' readings.
pub(super) fn table(hw: &NodeHardware) -> String {
    let mut t = Table::new(&["SOURCE", "KIND", "ID", "DETAIL"]);
    match &hw.bmc {
        None => t.row(vec!["bmc".into(), "-".into(), "-".into(), "not inspected".into()]),
        Some(b) => {
            let mut row = |kind: &str, id: &str, detail: String| {
                t.row(vec!["bmc".into(), kind.into(), id.into(), detail]);
            };
            row("system", &b.system_id, format!("{} {}", b.manufacturer, b.model));
            row("serial", "-", b.serial.clone());
            row("memory", "-", format!("{} CPUs, {} GiB", b.cpus.len(), b.memory_mib / 1024));
            row("inspected", "-", short_time(&b.inspected_at));
            // The BMC's word on the node's health (as last walked).
            if let Some(h) = &b.health {
                row(
                    "health",
                    "-",
                    format!("rollup {}", h.rollup.as_deref().unwrap_or("not reported")),
                );
                for f in &h.faults {
                    row("health", &f.name, f.health.clone());
                }
                // The BMC's log, newest first (the whole message in the JSON).
                for e in &h.events {
                    let at = if e.created.is_empty() { "-".into() } else { short_time(&e.created) };
                    row("logged", &at, format!("{} {}", e.severity, e.message));
                }
                if let Some(why) = &h.unread {
                    row("health", "unread", why.clone());
                }
            }
            for n in &b.nics {
                row("nic", &n.id, n.mac.clone());
            }
            for g in &b.gpus {
                // Cells are cut at 48 characters: the serial is in the JSON.
                let mig = if g.mig_enabled == Some(true) { ", MIG on" } else { "" };
                let gib = (g.memory_mib + 512) / 1024;
                row("gpu", &g.id, format!("{}, {gib} GiB{mig}", g.model));
            }
            for f in &b.firmware {
                row("firmware", &f.id, f.version.clone());
            }
            match &b.secure_boot {
                Some(s) => row(
                    "secure-boot",
                    "-",
                    format!(
                        "{} ({})",
                        on_off(s.enable),
                        s.mode.as_deref().unwrap_or("mode not reported")
                    ),
                ),
                None => row("secure-boot", "-", "not reported".into()),
            }
            match &b.bmc_accounts {
                Some(accounts) => {
                    for a in accounts {
                        let state = if a.enabled { "enabled" } else { "disabled" };
                        row("bmc-account", &a.user_name, format!("{}, {state}", a.role_id));
                    }
                }
                None => row("bmc-account", "-", "no account service".into()),
            }
            match &b.bios {
                Some(attrs) => {
                    for (name, value) in attrs {
                        let v = value.as_str().map(str::to_string).unwrap_or(value.to_string());
                        row("bios", name, v);
                    }
                }
                None => row("bios", "-", "not reported".into()),
            }
            match &b.boot_order {
                Some(order) => row("boot-order", "-", order.join(", ")),
                None => row("boot-order", "-", "not reported".into()),
            }
            for o in b.boot_options.iter().flatten() {
                let state = if o.enabled { "" } else { ", disabled" };
                let path = o.device_path.as_deref().unwrap_or("no device path");
                row("boot-option", &o.reference, format!("{} ({path}){state}", o.display_name));
            }
            match &b.host_interfaces {
                Some(list) => {
                    for h in list {
                        let cb = match h.credential_bootstrapping {
                            Some(true) => ", bootstrap on",
                            Some(false) => ", bootstrap off",
                            None => "",
                        };
                        let kind = h.interface_type.as_deref().unwrap_or("type not reported");
                        row("host-interface", &h.id, format!("{kind}, {}{cb}", on_off(h.enabled)));
                    }
                }
                None => row("host-interface", "-", "none reported".into()),
            }
        }
    }
    // Cells are cut at 48 characters: the whole name is in the JSON.
    match &hw.tpm_identity {
        Some(ek) => t.row(vec!["node".into(), "tpm-identity".into(), "-".into(), ek.clone()]),
        None => {
            t.row(vec!["node".into(), "tpm-identity".into(), "-".into(), "none on record".into()])
        }
    }
    if let Some(by) = hw.tpm_identity_recorded_by {
        t.row(vec!["node".into(), "tpm-recorded-by".into(), "-".into(), by.as_str().into()]);
    }
    if let Some(ca) = &hw.tpm_identity_certified_by {
        t.row(vec!["node".into(), "tpm-certified-by".into(), "-".into(), ca.clone()]);
    }
    // The sanitization's firmware updates under way (cells are cut: the
    // task and the BMC's words are in the JSON).
    for u in &hw.firmware_updates {
        let percent = u.percent.map(|p| format!(" {p}%")).unwrap_or_default();
        t.row(vec![
            "update".into(),
            "firmware".into(),
            u.component.clone(),
            format!("{} -> {}: {}{percent}", u.from, u.to, u.state.as_str()),
        ]);
        // The reset that activates it (an AC power cycle, say).
        if let Some(a) = &u.activation {
            t.row(vec![
                "activation".into(),
                "firmware".into(),
                u.component.clone(),
                format!("{}: {}", a.reset_type, a.state.as_str()),
            ]);
        }
    }
    match &hw.agent {
        None => t.row(vec!["agent".into(), "-".into(), "-".into(), "none registered".into()]),
        Some(a) => {
            let revoked = if a.revoked { ", revoked" } else { "" };
            t.row(vec![
                "agent".into(),
                a.purpose.as_str().into(),
                a.agent_id.clone(),
                format!("last seen {}{revoked}", short_time(&a.last_seen_at)),
            ]);
            t.row(vec!["agent".into(), "health".into(), "-".into(), a.health.clone()]);
            let proven = a.tpm_identity.clone().unwrap_or_else(|| "not proven".into());
            t.row(vec!["agent".into(), "tpm-identity".into(), "-".into(), proven]);
            for g in &a.gpu_status {
                let problems = match g.problems.is_empty() {
                    true => "ok".to_string(),
                    false => g.problems.join("; "),
                };

                t.row(vec![
                    "agent".into(),
                    "gpu".into(),
                    g.index.to_string(),
                    format!(
                        "{}, {}, {} used, {}: {problems}",
                        opt(g.temperature_c, " C"),
                        opt(g.power_mw.map(|p| p / 1000), " W"),
                        opt(g.memory_used_mib, " MiB"),
                        opt(g.utilization_pct, " %"),
                    ),
                ]);
                if let Some(up) = g.nvlink_active {
                    let down: Vec<String> = g.nvlink_down.iter().map(u32::to_string).collect();
                    let down = match down.is_empty() {
                        true => String::new(),
                        false => format!(", down: {}", down.join(", ")),
                    };
                    t.row(vec![
                        "agent".into(),
                        "nvlink".into(),
                        g.index.to_string(),
                        format!("{up} up{down}"),
                    ]);
                    if let Some(e) = g.nvlink_errors.filter(|e| e.replay + e.recovery + e.crc > 0) {
                        t.row(vec![
                            "agent".into(),
                            "nvlink-errors".into(),
                            g.index.to_string(),
                            format!("{} replay, {} recovery, {} CRC", e.replay, e.recovery, e.crc),
                        ]);
                    }
                }
                if !g.throttle_reasons.is_empty() {
                    t.row(vec![
                        "agent".into(),
                        "gpu-clocks".into(),
                        g.index.to_string(),
                        g.throttle_reasons.join(", "),
                    ]);
                }
            }
        }
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_component_has_a_row() {
        let hw: NodeHardware = serde_json::from_value(json!({
            "bmc": {"inspected_at": "2026-12-04T00:00:00.123456Z", "system_id": "DGX", "uuid": "u",
                    "manufacturer": "NVIDIA", "model": "DGX H100", "serial": "S1",
                    "cpus": [], "memory_mib": 2097152, "nics": [{"id": "0", "mac": "aa:bb"}],
                    "gpus": [{"id": "GPU_SXM_1", "model": "H100", "serial": "G1", "uuid": "g",
                              "memory_mib": 81559, "mig_enabled": false}],
                    "firmware": [{"id": "BMC", "name": "BMC", "version": "1.2"}],
                    "secure_boot": {"enable": true, "mode": "DeployedMode"},
                    "bmc_accounts": [{"user_name": "eve", "role_id": "Administrator", "enabled": false}],
                    "bios": {"IntelVTforDirectedIO": "Enabled", "NumaNodesPerSocket": 2},
                    "boot_order": ["Boot0001", "Boot0002"],
                    "boot_options": [{"reference": "Boot0007", "display_name": "x",
                                      "device_path": "Uri(http://e)", "enabled": false}],
                    "host_interfaces": [{"id": "Self", "interface_type": "NetworkHostInterface",
                                         "enabled": false, "credential_bootstrapping": false}],
                    "health": {"rollup": "Warning", "faults": [{"path": "/p/GPU_SXM_2",
                               "name": "GPU_SXM_2", "health": "Warning"}],
                               "events": [{"path": "/l/7", "created": "2026-12-06T04:00:00Z",
                                           "severity": "Warning", "message": "GPU_SXM_2 temperature high"}],
                               "unread": "chassis: BMC timeout"}},
            "agent": {"agent_id": "a1", "purpose": "tenant", "registered_at": "t",
                      "last_seen_at": "t2", "health": "degraded: GPU 0: Xid 79", "revoked": false,
                      "inventory": {"hostname": "h", "driver_version": "", "gpus": [], "disks": [], "macs": []},
                      "gpu_status": [{"index": 0, "uuid": "g", "temperature_c": 61, "power_mw": 691000,
                                      "xid_errors": [79], "throttle_reasons": ["hw_slowdown"],
                                      "nvlink_active": 16, "nvlink_down": [4, 11],
                                      "nvlink_errors": {"replay": 7, "recovery": 2, "crc": 6},
                                      "problems": ["Xid 79"]}]},
            "firmware_updates": [{"component": "BIOS", "target": "/x/BIOS", "from": "0.9",
                                  "to": "1.0", "image": "http://fw/b", "state": "sent",
                                  "task": "/t/1", "percent": 40, "sends": 1},
                                 {"component": "HGX_FW_GPU_SXM_1", "target": "/x/GPU", "from": "95",
                                  "to": "96", "image": "http://fw/g", "state": "completed",
                                  "activation": {"action": "/redfish/v1/Chassis/C/Actions/Chassis.Reset",
                                                 "reset_type": "PowerCycle", "state": "sent"}}]
        }))
        .unwrap();
        let out = table(&hw);
        for want in [
            "system       DGX        NVIDIA DGX H100",
            "serial       -          S1",
            "0 CPUs, 2048 GiB",
            "inspected    -          2026-12-04T00:00:00Z",
            "GPU_SXM_1 H100, 80 GiB",
            "secure-boot  -          on (DeployedMode)",
            "eve        Administrator, disabled",
            "IntelVTforDirectedIO  Enabled",
            "NumaNodesPerSocket    2",
            "boot-order - Boot0001, Boot0002",
            "boot-option Boot0007 x (Uri(http://e)), disabled",
            "host-interface Self NetworkHostInterface, off, bootstrap off",
            "bmc health - rollup Warning",
            "health GPU_SXM_2 Warning",
            "logged 2026-12-06T04:00:00Z Warning GPU_SXM_2 temperature high",
            "health unread chassis: BMC timeout",
            "tenant       a1         last seen t2",
            "health       -          degraded: GPU 0: Xid 79",
            "61 C, 691 W, - used, -: Xid 79",
            "gpu-clocks 0 hw_slowdown",
            "nvlink 0 16 up, down: 4, 11",
            "nvlink-errors 0 7 replay, 2 recovery, 6 CRC",
            "update firmware BIOS 0.9 -> 1.0: sent 40%",
            "update firmware HGX_FW_GPU_SXM_1 95 -> 96: completed",
            "activation firmware HGX_FW_GPU_SXM_1 PowerCycle: sent",
        ] {
            // Column widths follow the longest cell: compare words.
            let words = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(out.lines().any(|l| words(l).contains(&words(want))), "{want:?} in\n{out}");
        }
        assert!(out.lines().any(|l| l.ends_with("H100, 80 GiB")), "nothing cut:\n{out}");
        let none = table(&NodeHardware {
            bmc: None,
            agent: None,
            tpm_identity: None,
            tpm_identity_recorded_by: None,
            tpm_identity_certified_by: None,
            firmware_updates: vec![],
        });
        assert!(none.contains("not inspected") && none.contains("none registered"), "{none}");
    }
}
