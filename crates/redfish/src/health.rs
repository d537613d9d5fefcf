//! What the BMC says of a node's health: the host system's rollup, the
//! parts (systems, processors) it reports other than healthy, and, for a
//! node it reports unhealthy, its memory modules and drives, its chassis'
//! parts (power supplies, fans, temperature sensors) and the latest
//! warnings and errors of its logs (`LogServices`: the SEL and event logs,
//! DSP0268 `LogEntry`).
//!
//! A healthy node costs one read (the host system); the parts and the logs
//! are read only where the rollup is not `OK`.

use crate::client::Bmc;
use crate::error::Result;
use crate::ops::{ids_in, members, s};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Log entries kept per read: the newest.
pub const EVENTS_KEPT: usize = 5;
/// Entries read one by one, where a log lists its entries as links only
/// (the last ones listed).
const ENTRIES_READ: usize = 16;
/// A message is cut to this many characters (log text is free form, and
/// a host can write to its SEL).
const MESSAGE_MAX: usize = 240;

/// A log service of the BMC's (DSP0268 `LogService`) as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogService {
    /// Its resource path.
    pub path: String,
    entries: Option<String>,
    clear_target: String,
}

/// A component the BMC reports other than healthy (`Status.Health`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthFault {
    /// Its resource path.
    pub path: String,
    /// Its `Id`.
    pub name: String,
    /// `Warning` or `Critical`.
    pub health: String,
}

impl HealthFault {
    /// `GPU_SXM_3 Critical`.
    pub fn short(&self) -> String {
        format!("{} {}", self.name, self.health)
    }
}

/// An entry of one of the BMC's logs whose `Severity` is `Warning` or
/// `Critical`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthEvent {
    /// The entry's resource path.
    pub path: String,
    /// `Created`, as the BMC writes it (empty where it does not).
    pub created: String,
    pub severity: String,
    /// `Message`, cut to 240 characters, control characters removed.
    pub message: String,
}

/// What the BMC says of the node's health: the host system's rollup, and
/// each system and processor an inventory reads anyway (CPUs, GPUs, GPU
/// baseboards) whose `Status.Health` is not `OK`. Absent components
/// (`Health` null) say nothing. For a node reported unhealthy, read only
/// then: its memory modules, drives and chassis' parts not `OK` as well,
/// and the newest warnings and errors of its logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// The host system's `Status.HealthRollup` (its `Health` where the BMC
    /// gives no rollup): `OK`, `Warning` or `Critical`; `None` where it
    /// says neither.
    pub rollup: Option<String>,
    pub faults: Vec<HealthFault>,
    /// The newest [`EVENTS_KEPT`] log entries of severity `Warning` or
    /// `Critical`, newest first; read only when the node is unhealthy.
    #[serde(default)]
    pub events: Vec<HealthEvent>,
    /// Why the chassis' parts or the logs of an unhealthy node could not
    /// all be read (they are read for diagnosis only: a BMC that fails them
    /// fails no step; the rollup still decides).
    #[serde(default)]
    pub unread: Option<String>,
}

/// Whether a DSP0268 `Health` value says the resource needs immediate
/// attention (`Critical`).
pub fn is_critical(health: &str) -> bool {
    health == "Critical"
}

/// A system's `Status.HealthRollup`, else its `Status.Health`.
pub(crate) fn rollup_of(system: &Value) -> Option<String> {
    let st = &system["Status"];
    st["HealthRollup"].as_str().or(st["Health"].as_str()).map(str::to_string)
}

impl Health {
    /// Whether the BMC reports the node, or a component of it, `Critical`.
    pub fn critical(&self) -> bool {
        self.rollup.as_deref().is_some_and(is_critical)
            || self.faults.iter().any(|f| is_critical(&f.health))
    }

    /// Whether the BMC reports the node other than healthy (its rollup
    /// `Warning` or `Critical`, or a part so): where the parts and the
    /// logs are worth a read.
    pub fn unhealthy(&self) -> bool {
        self.rollup.as_deref().is_some_and(|r| r != "OK") || !self.faults.is_empty()
    }

    /// One line: the rollup, each fault and the newest event.
    pub fn describe(&self) -> String {
        let mut parts =
            vec![format!("system health {}", self.rollup.as_deref().unwrap_or("not reported"))];
        parts.extend(self.faults.iter().map(|f| format!("{} {} ({})", f.name, f.health, f.path)));
        if let Some(e) = self.events.first() {
            let at = if e.created.is_empty() { String::new() } else { format!(" {}", e.created) };
            parts.push(format!("last logged{at}: {} {}", e.severity, e.message));
        }
        parts.join("; ")
    }

    /// Notes `v` (a system or processor read) where the BMC reports it
    /// other than healthy.
    pub(crate) fn note(&mut self, v: &Value) {
        let Some(h) = v["Status"]["Health"].as_str().filter(|h| *h != "OK") else { return };
        // Members inline in the older `Power` and `Thermal` have no `Id`.
        let name = ["Id", "Name", "MemberId"]
            .iter()
            .map(|k| s(v, k))
            .find(|n| !n.is_empty())
            .unwrap_or_default();
        self.faults.push(HealthFault { path: s(v, "@odata.id"), name, health: h.to_string() });
    }
}

/// `v` (a `LogEntry`) as an event, where its severity is `Warning` or
/// `Critical`.
fn event_of(v: &Value) -> Option<HealthEvent> {
    let severity = v["Severity"].as_str().filter(|s| matches!(*s, "Warning" | "Critical"))?;
    let message: String = s(v, "Message")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MESSAGE_MAX)
        .collect();
    Some(HealthEvent {
        path: s(v, "@odata.id"),
        created: s(v, "Created"),
        severity: severity.to_string(),
        message: message.trim().to_string(),
    })
}

impl Bmc {
    /// The node's health (the host system behind `system`): its rollup,
    /// and, only where it is not `OK`, the parts the BMC reports other
    /// than healthy and the newest warnings and errors of its logs. One
    /// read for a healthy node.
    pub fn health(&self, system: &str) -> Result<Health> {
        let sys = self.get(system)?;
        let mut h = Health { rollup: rollup_of(&sys), ..Health::default() };
        if !h.unhealthy() {
            return Ok(h);
        }
        for (system_read, processors) in self.processor_systems(system, &sys)? {
            h.note(&system_read);
            processors.iter().for_each(|p| h.note(p));
        }
        self.unhealthy_detail(&sys, &mut h);
        Ok(h)
    }

    /// For an unhealthy node (the host system read as `sys`): its memory
    /// modules, drives and chassis' parts and its logs' newest warnings and
    /// errors, read for diagnosis only. What the BMC fails to answer is
    /// noted in `h.unread`, not an error: the rollup already says the node
    /// is unhealthy.
    pub(crate) fn unhealthy_detail(&self, sys: &Value, h: &mut Health) {
        let mut unread = Vec::new();
        if let Err(e) = self.memory_faults(sys, h) {
            unread.push(format!("memory: {e}"));
        }
        if let Err(e) = self.drive_faults(sys, h) {
            unread.push(format!("storage: {e}"));
        }
        if let Err(e) = self.chassis_faults(sys, h) {
            unread.push(format!("chassis: {e}"));
        }
        match self.events_of(sys) {
            Ok(events) => h.events = events,
            Err(e) => unread.push(format!("logs: {e}")),
        }
        h.unread = (!unread.is_empty()).then(|| unread.join("; "));
    }

    /// Notes in `h` the memory modules of the system `sys` (as read) the BMC
    /// reports other than healthy (a DIMM with uncorrectable errors; empty
    /// slots say nothing).
    fn memory_faults(&self, sys: &Value, h: &mut Health) -> Result<()> {
        // Diagnosis only (as the storage and chassis reads below): a module
        // the BMC fails to serve (500) must not hide the others' faults.
        self.linked_members(sys, "Memory", Bmc::get_optional_or_failed)?
            .iter()
            .for_each(|m| h.note(m));
        Ok(())
    }

    /// Notes in `h` the storage controllers of the system `sys` (as read)
    /// and their drives the BMC reports other than healthy.
    fn drive_faults(&self, sys: &Value, h: &mut Health) -> Result<()> {
        // sushy-tools answers 500 for `Storage` (it has none): tolerated.
        for st in self.linked_members(sys, "Storage", Bmc::get_optional_or_failed)? {
            h.note(&st);
            for d in ids_in(&st["Drives"]) {
                if let Some(dv) = self.get_optional_or_failed(&d)? {
                    h.note(&dv);
                }
            }
        }
        Ok(())
    }

    /// Notes in `h` the parts of the chassis the system `sys` (as read)
    /// links (`Links.Chassis`) the BMC reports other than healthy: each
    /// chassis, its power supplies and fans (`PowerSubsystem`,
    /// `ThermalSubsystem`, else the older `Power` and `Thermal`, whose
    /// temperature sensors count too).
    pub(crate) fn chassis_faults(&self, sys: &Value, h: &mut Health) -> Result<()> {
        for c in ids_in(&sys["Links"]["Chassis"]) {
            let Some(cv) = self.get_optional_or_failed(&c)? else { continue };
            h.note(&cv);
            for (subsystem, key, legacy, arrays) in [
                ("PowerSubsystem", "PowerSupplies", "Power", &["PowerSupplies"][..]),
                ("ThermalSubsystem", "Fans", "Thermal", &["Fans", "Temperatures"][..]),
            ] {
                if let Some(p) = cv[subsystem]["@odata.id"].as_str() {
                    let Some(sv) = self.get_optional_or_failed(p)? else { continue };
                    h.note(&sv);
                    self.linked_members(&sv, key, Bmc::get_optional_or_failed)?
                        .iter()
                        .for_each(|m| h.note(m));
                } else if let Some(p) = cv[legacy]["@odata.id"].as_str() {
                    let Some(lv) = self.get_optional_or_failed(p)? else { continue };
                    for a in arrays {
                        lv[*a].as_array().into_iter().flatten().for_each(|m| h.note(m));
                    }
                }
            }
        }
        Ok(())
    }

    /// The log services of the system `sys` (as read) and of its managers
    /// (the SEL is under either, by vendor), each as read. One the BMC
    /// fails to serve (500) is an error: the SEL a sanitization clears must
    /// not be missed.
    fn log_services(&self, sys: &Value) -> Result<Vec<Value>> {
        let mut logs = Vec::new();
        let mut services = |owner: &Value| -> Result<()> {
            if let Some(c) = owner["LogServices"]["@odata.id"].as_str() {
                logs.extend(self.get_optional(c)?.map(|v| members(&v)).unwrap_or_default());
            }
            Ok(())
        };
        services(sys)?;
        for m in self.managers_of(sys)? {
            if let Some(mv) = self.get_optional(&m)? {
                services(&mv)?;
            }
        }
        let mut out = Vec::new();
        for log in logs {
            out.extend(self.get_optional(&log)?);
        }
        Ok(out)
    }

    /// The system event logs (`LogEntryType` `SEL`: the IPMI SEL, which
    /// the host can write to in-band) of the system behind `system` and of
    /// its managers.
    pub fn sel_services(&self, system: &str) -> Result<Vec<LogService>> {
        self.sel_services_of(&self.get(system)?)
    }

    /// [`Self::sel_services`] of the system as read (`sys`).
    pub fn sel_services_of(&self, sys: &Value) -> Result<Vec<LogService>> {
        Ok(self
            .log_services(sys)?
            .iter()
            .filter(|l| l["LogEntryType"].as_str() == Some("SEL"))
            .map(|l| {
                let path = s(l, "@odata.id");
                LogService {
                    clear_target: l["Actions"]["#LogService.ClearLog"]["target"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("{path}/Actions/LogService.ClearLog")),
                    entries: l["Entries"]["@odata.id"].as_str().map(str::to_string),
                    path,
                }
            })
            .collect())
    }

    /// Clears the log (`LogService.ClearLog`), then answers how many
    /// entries it lists after (many BMCs log the clearing itself).
    pub fn clear_log(&self, log: &LogService) -> Result<usize> {
        self.request("POST", &log.clear_target, Some(&serde_json::json!({})))?;
        let Some(entries) = &log.entries else { return Ok(0) };
        let v = self.get(entries)?;
        Ok(v["Members@odata.count"]
            .as_u64()
            .map(|n| n as usize)
            .unwrap_or_else(|| v["Members"].as_array().map_or(0, Vec::len)))
    }

    /// The newest warnings and errors of the logs of the system `sys` (as
    /// read) and of its managers (the SEL is under either, by vendor).
    /// Only each log's first page is read: a BMC that lists its entries
    /// oldest first and pages them shows its oldest.
    pub(crate) fn events_of(&self, sys: &Value) -> Result<Vec<HealthEvent>> {
        let mut events = Vec::new();
        for lv in self.log_services(sys)? {
            let Some(entries) = lv["Entries"]["@odata.id"].as_str() else { continue };
            // Diagnosis only: a log whose entries the BMC fails to serve
            // must not hide the others'.
            let Some(ev) = self.get_optional_or_failed(entries)? else { continue };
            let listed = ev["Members"].as_array().cloned().unwrap_or_default();
            // Expanded (most BMCs), else each of the last ones read.
            let inline =
                listed.iter().any(|m| m.get("Severity").is_some() || m.get("Message").is_some());
            if inline {
                events.extend(listed.iter().filter_map(event_of));
            } else {
                let paths = members(&ev);
                for p in paths.iter().skip(paths.len().saturating_sub(ENTRIES_READ)) {
                    if let Some(v) = self.get_optional_or_failed(p)? {
                        events.extend(event_of(&v));
                    }
                }
            }
        }
        // Newest first (RFC 3339 times of one BMC compare as text).
        events.sort_by(|a, b| b.created.cmp(&a.created));
        events.truncate(EVENTS_KEPT);
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn health_notes_what_is_not_ok_and_critical_is_either_part() {
        let mut h = Health { rollup: Some("Warning".into()), ..Health::default() };
        h.note(&json!({"@odata.id": "/a/GPU_1", "Id": "GPU_1", "Status": {"Health": "OK"}}));
        h.note(&json!({"@odata.id": "/a/GPU_2", "Id": "GPU_2", "Status": {"State": "Absent", "Health": null}}));
        h.note(&json!({"@odata.id": "/a/GPU_3", "Id": "GPU_3"}));
        assert!(h.faults.is_empty() && !h.critical() && h.unhealthy(), "{h:?}");
        h.note(&json!({"@odata.id": "/a/GPU_4", "Id": "GPU_4", "Status": {"Health": "Warning"}}));
        assert!(!h.critical(), "{h:?}");
        h.note(&json!({"@odata.id": "/a/GPU_5", "Id": "GPU_5", "Status": {"Health": "Critical"}}));
        assert!(h.critical());
        assert_eq!(
            h.describe(),
            "system health Warning; GPU_4 Warning (/a/GPU_4); GPU_5 Critical (/a/GPU_5)"
        );
        assert_eq!(h.faults[1].short(), "GPU_5 Critical");
        let rolled = Health { rollup: Some("Critical".into()), ..Health::default() };
        assert!(rolled.critical());
        assert!(!Health::default().critical() && !Health::default().unhealthy());
        let ok = Health { rollup: Some("OK".into()), ..Health::default() };
        assert!(!ok.unhealthy());
        assert_eq!(Health::default().describe(), "system health not reported");
    }

    #[test]
    fn events_are_warnings_and_errors_cut_and_cleaned() {
        assert_eq!(event_of(&json!({"Severity": "OK", "Message": "fine"})), None);
        assert_eq!(event_of(&json!({"Message": "no severity"})), None);
        let e = event_of(&json!({
            "@odata.id": "/l/1", "Created": "2026-12-06T04:00:00+00:00",
            "Severity": "Critical", "Message": "GPU 3\nXid 79\u{7}"
        }))
        .unwrap();
        assert_eq!(e.message, "GPU 3 Xid 79");
        assert_eq!(e.created, "2026-12-06T04:00:00+00:00");
        let long = event_of(&json!({"Severity": "Warning", "Message": "x".repeat(1000)})).unwrap();
        assert_eq!(long.message.len(), MESSAGE_MAX);
        let h = Health { rollup: Some("Critical".into()), events: vec![e], ..Health::default() };
        assert_eq!(
            h.describe(),
            "system health Critical; last logged 2026-12-06T04:00:00+00:00: Critical GPU 3 Xid 79"
        );
    }
}
