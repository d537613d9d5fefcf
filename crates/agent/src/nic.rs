//! The persistent settings of NVIDIA (Mellanox) network adapters.
//!
//! A ConnectX adapter keeps its configuration (SR-IOV and its VFs, each
//! port's link type, the boot ROM, RoCE, PCI settings...) in its own
//! non-volatile memory. Root on the host changes it with `mstconfig`
//! (mstflint; `mlxconfig` in NVIDIA's tools): the change outlives every
//! disk wipe, reset and power cycle, and takes effect at the next boot, so
//! a tenant could leave the next one an adapter set its way (a boot ROM
//! off, a port switched to another link type, settings that change what
//! the adapter exposes to the host). The sanitizer reads every physical
//! function's settings (`mstconfig -d ADDR -e query`: each one's default,
//! current and next-boot value) and, where one is off the node's baseline,
//! resets them to the firmware's defaults (`reset`), sets the baseline's
//! back (`set`), and reads them again: every next-boot value must be the
//! baseline's. The node's baseline is what its first sanitization found
//! off the defaults (before any tenant where `sanitize_before_first_use`
//! is on): a provider that sets its adapters its way keeps them so.
//!
//! Settings read only, and arrays (shown as `Array[0..7]`, their values
//! not listed), are not compared. The values set back are the next boot's:
//! the node is powered off at the end of its sanitization, and its next
//! boot loads them.

use crate::result_of;
use crate::tools::{find_tool, last_line, read_trimmed, run_with_deadline, stdout_or_error};
use neocloud_types::{AgentStepResult, StepItem, NIC_SETTINGS_READ, NIC_SETTING_KEPT, NO_NICS};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Where the kernel lists PCI devices.
pub const PCI_DEVICES: &str = "/sys/bus/pci/devices";

/// NVIDIA's networking (formerly Mellanox) PCI vendor id.
const VENDOR: &str = "0x15b3";

/// How long one `mstconfig` call may take.
const DEADLINE: Duration = Duration::from_secs(120);

/// The physical functions of NVIDIA network adapters (PCI class 0x02:
/// Ethernet, InfiniBand) under `pci` (`/sys/bus/pci/devices`), by address;
/// virtual functions (which have a `physfn`) are their PF's.
pub fn discover(pci: &Path) -> Result<Vec<String>, String> {
    let entries = std::fs::read_dir(pci).map_err(|e| format!("{}: {e}", pci.display()))?;
    let mut found: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let p = e.path();
            let is = |file: &str, want: &dyn Fn(&str) -> bool| {
                read_trimmed(&p.join(file)).is_ok_and(|v| want(&v))
            };
            is("vendor", &|v| v.eq_ignore_ascii_case(VENDOR))
                && is("class", &|c| c.starts_with("0x02"))
                && !p.join("physfn").exists()
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    Ok(found)
}

/// One setting as `mstconfig -e query` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub name: String,
    pub default: String,
    pub current: String,
    pub next: String,
    /// Marked `RO`: the firmware does not let it be changed.
    pub read_only: bool,
}

impl Setting {
    /// Whether its values can be compared (not an array, whose values the
    /// query does not list, nor read only).
    fn compared(&self) -> bool {
        !self.read_only && !self.next.starts_with("Array[")
    }
}

/// A value as `set` takes it: the number of `True(1)`, `ETH(2)`; a plain
/// number, or anything else, as shown.
pub fn raw(value: &str) -> &str {
    match value.strip_suffix(')').and_then(|v| v.rsplit_once('(')) {
        Some((_, n)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => n,
        _ => value,
    }
}

/// The settings in `mstconfig -d ADDR -e query`'s output: the rows after
/// `Configurations:` (each an optional `*`, an optional `RO`, the name,
/// then default, current and next-boot values). A firmware that cannot
/// show defaults or current values (its header lacks those columns) is an
/// error: nothing could be compared.
pub fn parse_query(out: &str) -> Result<Vec<Setting>, String> {
    let mut lines = out.lines();
    let header = lines
        .by_ref()
        .find(|l| l.trim_start().starts_with("Configurations:"))
        .ok_or_else(|| format!("no settings in its answer: {}", last_line(out.as_bytes())))?;
    if !(header.contains("Default") && header.contains("Current") && header.contains("Next Boot")) {
        return Err(format!(
            "its firmware does not show default and current values ({})",
            header.split_whitespace().collect::<Vec<_>>().join(" ")
        ));
    }
    let mut settings = Vec::new();
    for line in lines {
        let mut words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        if line.starts_with("The ") {
            break;
        }
        // Warnings and notes between the rows; an error is one.
        if line.starts_with("-E-") {
            return Err(line.trim().to_string());
        }
        if line.starts_with("-W-") || line.starts_with("-I-") {
            continue;
        }
        if words[0] == "*" {
            words.remove(0);
        }
        let read_only = words.first() == Some(&"RO");
        if read_only {
            words.remove(0);
        }
        let [name, default, current, next] = words[..] else {
            return Err(format!("a setting it shows unreadably: {:?}", line.trim()));
        };
        settings.push(Setting {
            name: name.to_string(),
            default: default.to_string(),
            current: current.to_string(),
            next: next.to_string(),
            read_only,
        });
    }
    if settings.is_empty() {
        return Err("it shows no settings".to_string());
    }
    Ok(settings)
}

/// `mstconfig` at `tool`, run against one adapter.
struct Mstconfig<'a> {
    tool: &'a Path,
    address: &'a str,
}

impl Mstconfig<'_> {
    /// Runs it with these arguments after `-d ADDR`: its output, or why it
    /// failed (it writes its errors, `-E- ...`, to its standard output).
    fn run(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new(self.tool);
        cmd.arg("-d").arg(self.address).args(args);
        let out = run_with_deadline(cmd, DEADLINE)
            .map_err(|e| format!("mstconfig {}: {e}", args.join(" ")))?;
        stdout_or_error("mstconfig", args, &out)
    }

    fn query(&self) -> Result<Vec<Setting>, String> {
        parse_query(&self.run(&["-e", "query"])?).map_err(|e| format!("mstconfig -e query: {e}"))
    }
}

/// The node's baseline by adapter: `ADDR` (an adapter it had) and
/// `ADDR/PARAMETER=value` (a setting kept off its default).
fn by_adapter(baseline: &[String]) -> BTreeMap<&str, BTreeMap<&str, &str>> {
    let mut map: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for entry in baseline {
        match entry.split_once('=').and_then(|(key, v)| Some((key.split_once('/')?, v))) {
            Some(((address, name), value)) => {
                map.entry(address).or_default().insert(name, value);
            }
            None if !entry.contains(['/', '=']) => {
                map.entry(entry.as_str()).or_default();
            }
            None => {}
        }
    }
    map
}

fn item(target: &str, method: &str, ok: bool, detail: impl Into<String>) -> StepItem {
    StepItem { target: target.into(), method: method.into(), ok, detail: detail.into() }
}

/// The settings off `kept` (the baseline's, else each one's default),
/// each with the value wanted.
fn off<'a>(settings: &'a [Setting], kept: &BTreeMap<&str, &'a str>) -> Vec<(&'a Setting, &'a str)> {
    settings
        .iter()
        .filter(|s| s.compared())
        .map(|s| (s, kept.get(s.name.as_str()).copied().unwrap_or_else(|| raw(&s.default))))
        .filter(|(s, want)| raw(&s.next) != *want)
        .collect()
}

fn listed(off: &[(&Setting, &str)]) -> String {
    off.iter()
        .map(|(s, want)| format!("{} {} -> {want}", s.name, s.next))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sets every NVIDIA network adapter's settings under `pci` back to the
/// node's `baseline` with `mstconfig` at `tool` (`None`: not installed),
/// and reads them back: an item per adapter (method `mstconfig`), and one
/// per setting kept off its default (`nic-kept`, the value as `set` takes
/// it). Without a baseline, changes nothing: the settings off their
/// defaults are kept as the node's. One item (`none`) where the machine
/// has no such adapter.
///
/// With a baseline every adapter is reset, whatever its query shows
/// (arrays, and settings the query does not list, are not compared, and
/// go back to their defaults so), in phases: every function read, every
/// one reset, the baseline's settings set, every one read back. A reset
/// through one function resets its whole card, so no function is read
/// back before every reset is done.
pub fn reset(tool: Option<&Path>, pci: &Path, baseline: Option<&[String]>) -> AgentStepResult {
    let adapters = match discover(pci) {
        Ok(a) => a,
        Err(e) => return result_of(vec![item("nics", NIC_SETTINGS_READ, false, e)]),
    };
    let wanted = by_adapter(baseline.unwrap_or_default());
    let mut items = Vec::new();
    // An adapter of the baseline that is gone: its settings are unknown.
    for gone in wanted.keys().filter(|a| !adapters.iter().any(|x| x == *a)) {
        items.push(item(gone, NIC_SETTINGS_READ, false, "in the node's baseline, not found"));
    }
    if adapters.is_empty() {
        items.push(item("nics", NO_NICS, true, "no NVIDIA (Mellanox) network adapter"));
        return result_of(items);
    }
    let Some(tool) = tool else {
        items.extend(
            adapters.iter().map(|a| {
                item(a, NIC_SETTINGS_READ, false, "mstconfig (mstflint) is not installed")
            }),
        );
        return result_of(items);
    };
    let tools: Vec<Mstconfig> =
        adapters.iter().map(|address| Mstconfig { tool, address }).collect();
    if baseline.is_none() {
        for m in &tools {
            match m.query() {
                Err(e) => items.push(item(m.address, NIC_SETTINGS_READ, false, e)),
                Ok(settings) => {
                    let off = off(&settings, &BTreeMap::new());
                    let detail = format!(
                        "{} settings read, {} off their defaults recorded as the node's baseline",
                        settings.len(),
                        off.len()
                    );
                    items.push(item(m.address, NIC_SETTINGS_READ, true, detail));
                    items.extend(off.iter().map(|(s, _)| {
                        let target = format!("{}/{}", m.address, s.name);
                        item(&target, NIC_SETTING_KEPT, true, raw(&s.next))
                    }));
                }
            }
        }
        return result_of(items);
    }
    let kept = |address: &str| wanted.get(address).cloned().unwrap_or_default();
    // What each function had before: for the record.
    let was: Vec<String> = tools
        .iter()
        .map(|m| match m.query() {
            Ok(settings) => match listed(&off(&settings, &kept(m.address))) {
                l if l.is_empty() => "nothing off the baseline".to_string(),
                l => format!("off the baseline: {l}"),
            },
            Err(e) => format!("not read ({e})"),
        })
        .collect();
    let resets: Vec<Result<String, String>> =
        tools.iter().map(|m| m.run(&["-y", "reset"])).collect();
    let sets: Vec<Result<String, String>> = tools
        .iter()
        .map(|m| {
            let sets: Vec<String> =
                kept(m.address).iter().map(|(k, v)| format!("{k}={v}")).collect();
            if sets.is_empty() {
                return Ok(String::new());
            }
            let mut args = vec!["-y", "set"];
            args.extend(sets.iter().map(String::as_str));
            m.run(&args)
        })
        .collect();
    for (i, m) in tools.iter().enumerate() {
        let kept = kept(m.address);
        let after = m.query();
        let (ok, detail) = match (&resets[i], &sets[i], &after) {
            (Err(e), _, _) | (Ok(_), Err(e), _) | (Ok(_), Ok(_), Err(e)) => {
                (false, format!("{}; {e}", was[i]))
            }
            (Ok(_), Ok(_), Ok(after)) => {
                let left = off(after, &kept);
                let unknown: Vec<&str> = kept
                    .keys()
                    .filter(|k| !after.iter().any(|s| s.compared() && s.name == **k))
                    .copied()
                    .collect();
                if !left.is_empty() {
                    let l = listed(&left);
                    (false, format!("{}; reset, still off the baseline after it: {l}", was[i]))
                } else if !unknown.is_empty() {
                    let u = unknown.join(", ");
                    (false, format!("{}; the baseline's {u} not shown by the adapter", was[i]))
                } else {
                    let detail = format!(
                        "{}; reset and read back at the node's baseline, loaded at its next boot",
                        was[i]
                    );
                    (true, detail)
                }
            }
        };
        items.push(item(m.address, NIC_SETTINGS_READ, ok, detail));
        // The baseline's settings as read back.
        let read = after.as_deref().unwrap_or_default();
        items.extend(kept.iter().map(|(name, want)| {
            let now = read.iter().find(|s| s.name == *name).map(|s| raw(&s.next));
            let target = format!("{}/{name}", m.address);
            match now {
                Some(v) if v == *want => item(&target, NIC_SETTING_KEPT, true, *want),
                Some(v) => item(&target, NIC_SETTING_KEPT, false, format!("{v}, not {want}")),
                None => item(&target, NIC_SETTING_KEPT, false, format!("not read, not {want}")),
            }
        }));
    }
    result_of(items)
}

/// What [`reset`] would find, read only: each adapter and its settings
/// off their defaults, or why they cannot be read (`neocloud-agent
/// --inventory`).
pub fn describe(tool: Option<&Path>, pci: &Path) -> String {
    let adapters = match discover(pci) {
        Ok(a) if a.is_empty() => return "no NVIDIA (Mellanox) network adapter".to_string(),
        Ok(a) => a,
        Err(e) => return e,
    };
    let Some(tool) = tool else {
        return format!("{}: mstconfig (mstflint) is not installed", adapters.join(", "));
    };
    let each = adapters.iter().map(|address| match (Mstconfig { tool, address }).query() {
        Err(e) => format!("{address}: {e}"),
        Ok(settings) => {
            let off = off(&settings, &BTreeMap::new());
            let named: Vec<String> =
                off.iter().map(|(s, _)| format!("{}={}", s.name, raw(&s.next))).collect();
            format!(
                "{address}: {} settings, {} off their defaults{}",
                settings.len(),
                off.len(),
                if named.is_empty() { String::new() } else { format!(" ({})", named.join(", ")) }
            )
        }
    });
    each.collect::<Vec<_>>().join("; ")
}

/// `mstconfig` on this machine, if installed.
pub fn find_mstconfig() -> Option<PathBuf> {
    find_tool("mstconfig")
}

#[cfg(test)]
mod tests {
    use super::*;

    // mstflint 4.21's layout (Debian 12): fields padded, a `*` before a
    // setting whose next value differs from its default or current one.
    const QUERY: &str = "
Device #1:
----------

Device type:    ConnectX6DX     
Name:           MCX623106AN-CDA_Ax
Description:    ConnectX-6 Dx EN adapter card; 100GbE; Dual-port QSFP56
Device:         0000:3b:00.0    

Configurations:                              Default         Current         Next Boot
         SRIOV_EN                            True(1)         True(1)         True(1)         
*        NUM_OF_VFS                          8               8               16              
         LINK_TYPE_P1                        ETH(2)          ETH(2)          ETH(2)          
         ROCE_CC_PRIO_MASK_P1                Array[0..7]     Array[0..7]     Array[0..7]     
The '*' shows parameters with next value different from default/current value.
";

    #[test]
    fn a_query_is_read_in_either_layout() {
        let s = parse_query(QUERY).unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(
            s[1],
            Setting {
                name: "NUM_OF_VFS".into(),
                default: "8".into(),
                current: "8".into(),
                next: "16".into(),
                read_only: false
            }
        );
        assert!(!s[3].compared(), "arrays are not compared");
        // The later layout: wider fields, `RO` marks.
        let later = "Configurations:                                          Default             Current         Next Boot
*       NUM_OF_VFS                                  8                    8                    16                  
 RO     PF_NUM_OF_VF_VALID                          True(1)              True(1)              True(1)             

The '*' shows parameters with next value different from default/current value.
The 'RO' shows parameters which are for read only and cannot be changed
";
        let s = parse_query(later).unwrap();
        assert_eq!((s.len(), s[0].next.as_str(), s[1].read_only), (2, "16", true));
        // A firmware that shows only the next boot's values cannot be compared.
        let e =
            parse_query("Configurations:      Next Boot\n   SRIOV_EN    True(1)\n").unwrap_err();
        assert!(e.contains("does not show default and current values"), "{e}");
        // Notes between the rows are skipped; an error among them is one.
        let noted = QUERY.replace("*        NUM_OF_VFS", "-W- a note\n*        NUM_OF_VFS");
        assert_eq!(parse_query(&noted).unwrap().len(), 4);
        let failed = QUERY.replace(
            "*        NUM_OF_VFS",
            "-E- Failed to query some of the TLVs:\n*        NUM_OF_VFS",
        );
        assert!(parse_query(&failed).unwrap_err().contains("Failed to query some"));
        let e = parse_query("-E- Failed to open the device\n").unwrap_err();
        assert!(e.contains("Failed to open the device"), "{e}");
    }

    #[test]
    fn values_as_set_takes_them() {
        assert_eq!(raw("True(1)"), "1");
        assert_eq!(raw("ETH(2)"), "2");
        assert_eq!(raw("16"), "16");
        assert_eq!(raw("N/A"), "N/A");
        assert_eq!(raw("Array[0..7]"), "Array[0..7]");
    }

    #[test]
    fn settings_are_off_the_baseline_or_their_default() {
        let s = parse_query(QUERY).unwrap();
        let none = BTreeMap::new();
        let found = off(&s, &none);
        assert_eq!(listed(&found), "NUM_OF_VFS 16 -> 8");
        let kept = BTreeMap::from([("NUM_OF_VFS", "16")]);
        assert!(off(&s, &kept).is_empty());
        let kept = BTreeMap::from([("NUM_OF_VFS", "16"), ("SRIOV_EN", "0")]);
        assert_eq!(listed(&off(&s, &kept)), "SRIOV_EN True(1) -> 0");
        let b = ["0000:3b:00.0/NUM_OF_VFS=16".to_string(), "0000:3b:00.1".into(), "x/y".into()];
        let m = by_adapter(&b);
        assert_eq!(m["0000:3b:00.0"]["NUM_OF_VFS"], "16");
        assert!(m["0000:3b:00.1"].is_empty());
        assert_eq!(m.len(), 2, "{m:?}");
    }
}
