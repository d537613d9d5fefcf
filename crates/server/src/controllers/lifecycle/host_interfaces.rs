//! The BMC's host interfaces (`bmc_host_interfaces`): the host's channel
//! to its BMC's Redfish service, over which software on the host reaches
//! the BMC from inside the tenancy (and, with credential bootstrapping on,
//! obtains BMC credentials without knowing any). With the `disabled`
//! policy a clean node's inspection turns every one off before the node
//! joins the pool (one that stays on fails it), and every sanitization
//! turns off any found on again and records it (the `host_interfaces`
//! check), each read back.

use super::journal::Journal;
use super::platform::{item, soft};
use super::StepError;
use crate::config::HostInterfacePolicy;
use neocloud_redfish::{Bmc, HostInterface};
use neocloud_types::{InventoryHostInterface, SanitizationCheck};

/// The record's check, and the journal's name for its changes.
pub(super) const CHECK: &str = "host_interfaces";

/// One interface found on, and what turning it off gave: the interface
/// read back, or the BMC's refusal.
pub(super) struct TurnedOff {
    pub found: HostInterface,
    pub after: Result<HostInterface, String>,
}

impl TurnedOff {
    pub fn ok(&self) -> bool {
        matches!(&self.after, Ok(a) if !a.enabled)
    }

    fn detail(&self) -> String {
        let what = describe(&self.found);
        match &self.after {
            Ok(a) if !a.enabled => format!("{what} was on: turned off"),
            Ok(_) => format!("{what} was on: still on after turning it off"),
            Err(why) => format!("{what} was on: the BMC refused to turn it off: {why}"),
        }
    }
}

fn describe(hi: &HostInterface) -> String {
    let mut s = format!("host interface {}", hi.id);
    if let Some(k) = &hi.kind {
        s.push_str(&format!(" ({k})"));
    }
    if hi.credential_bootstrapping == Some(true) {
        s.push_str(", credential bootstrapping on,");
    }
    s
}

/// Turns off every interface of `found` that is on (each journaled first,
/// each read back). A BMC's refusal is the interface's outcome; what may
/// pass is retried.
pub(super) fn turn_off(
    bmc: &Bmc,
    found: &[HostInterface],
    journal: &Journal,
) -> Result<Vec<TurnedOff>, StepError> {
    let mut out = Vec::new();
    for hi in found.iter().filter(|h| h.enabled) {
        let what = format!("turn off {}", describe(hi).trim_end_matches(','));
        journal.before(CHECK, &hi.path, &what)?;
        let after = soft(bmc.disable_host_interface(hi))?;
        out.push(TurnedOff { found: hi.clone(), after });
    }
    Ok(out)
}

/// At a clean node's inspection: turns off the interfaces on (under the
/// `disabled` policy) and puts what the BMC reports after into `found`.
/// Answers what was turned off, or why the node cannot join the pool.
pub(super) fn lock(
    bmc: &Bmc,
    policy: HostInterfacePolicy,
    found: &mut Option<Vec<HostInterface>>,
    journal: &Journal,
) -> Result<Result<Vec<String>, String>, StepError> {
    let list = match (policy, found.as_mut()) {
        (HostInterfacePolicy::Unmanaged, _) | (HostInterfacePolicy::Disabled, None) => {
            return Ok(Ok(Vec::new()))
        }
        (HostInterfacePolicy::Disabled, Some(list)) => list,
    };
    let done = turn_off(bmc, list, journal)?;
    let mut off = Vec::new();
    let mut refused = Vec::new();
    for t in &done {
        if let Ok(after) = &t.after {
            if let Some(h) = list.iter_mut().find(|h| h.path == after.path) {
                *h = after.clone();
            }
        }
        if t.ok() {
            off.push(t.found.id.clone());
        } else {
            refused.push(t.detail());
        }
    }
    if refused.is_empty() {
        Ok(Ok(off))
    } else {
        Ok(Err(format!(
            "the BMC keeps a channel from the host open (bmc_host_interfaces = disabled): {}",
            refused.join("; ")
        )))
    }
}

/// At the end of sanitization: the `host_interfaces` check. Under the
/// `disabled` policy every interface found on (a tenant, or whatever ran on
/// the host, turned it on again) is turned off and read back.
pub(super) fn check(
    bmc: &Bmc,
    policy: HostInterfacePolicy,
    found: Option<&[HostInterface]>,
    journal: &Journal,
) -> Result<SanitizationCheck, StepError> {
    let mut items = Vec::new();
    match (policy, found) {
        (_, None) => {
            items.push(item("host interfaces", "redfish", true, "none reported by the BMC"))
        }
        (HostInterfacePolicy::Unmanaged, Some(list)) => items.push(item(
            "host interfaces",
            "redfish",
            true,
            &format!(
                "{} on, {} off: left as the BMC has them (bmc_host_interfaces = unmanaged)",
                list.iter().filter(|h| h.enabled).count(),
                list.iter().filter(|h| !h.enabled).count()
            ),
        )),
        (HostInterfacePolicy::Disabled, Some(list)) => {
            for t in turn_off(bmc, list, journal)? {
                items.push(item(&t.found.path, "redfish-patch", t.ok(), &t.detail()));
            }
            if items.iter().all(|i| i.ok) {
                items.push(item(
                    "host interfaces",
                    "redfish",
                    true,
                    &format!("{} host interface(s), every one off", list.len()),
                ));
            }
        }
    }
    Ok(SanitizationCheck { name: CHECK.into(), ok: items.iter().all(|i| i.ok), items })
}

/// As operators read it.
pub(super) fn inventory(hi: &HostInterface) -> InventoryHostInterface {
    InventoryHostInterface {
        id: hi.id.clone(),
        interface_type: hi.kind.clone(),
        enabled: hi.enabled,
        credential_bootstrapping: hi.credential_bootstrapping,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hi(id: &str, enabled: bool, cb: Option<bool>) -> HostInterface {
        HostInterface {
            path: format!("/redfish/v1/Managers/BMC/HostInterfaces/{id}"),
            id: id.into(),
            kind: Some("NetworkHostInterface".into()),
            enabled,
            credential_bootstrapping: cb,
        }
    }

    #[test]
    fn each_outcome_says_what_was_found_and_done() {
        let on = hi("1", true, Some(true));
        let off = TurnedOff { found: on.clone(), after: Ok(hi("1", false, Some(false))) };
        assert!(off.ok());
        assert_eq!(
            off.detail(),
            "host interface 1 (NetworkHostInterface), credential bootstrapping on, was on: \
             turned off"
        );
        let kept = TurnedOff { found: on.clone(), after: Ok(on.clone()) };
        assert!(!kept.ok());
        assert!(kept.detail().ends_with("still on after turning it off"), "{}", kept.detail());
        let refused = TurnedOff { found: hi("2", true, None), after: Err("400: read-only".into()) };
        assert!(!refused.ok());
        assert_eq!(
            refused.detail(),
            "host interface 2 (NetworkHostInterface) was on: the BMC refused to turn it off: \
             400: read-only"
        );
    }
}
