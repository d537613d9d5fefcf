//! Write-ahead for the changes a step makes on a node's BMC outside its
//! state transitions: a host interface turned off at inspection; Secure
//! Boot, accounts, boot options, boot order and host interfaces put back
//! at the end of sanitization. Each is journaled on the node
//! ([`nodes::journal_bmc_change`]) before it is sent. The step that records
//! them (the transition out of inspection audits them; the sanitization
//! record lists them) reads the journal and clears it in the same
//! transaction, so a control plane killed (or a BMC answer lost) after the
//! BMC made a change and before the step recorded it still records it:
//! the pass that runs again finds the change done and has nothing of its
//! own to say about it.

use super::platform::item;
use super::StepError;
use neocloud_common::time::{now_micros, to_rfc3339};
use neocloud_store::nodes::{self, BmcChange};
use neocloud_store::Store;
use neocloud_types::SanitizationCheck;

/// The node's journal, for one pass of a step.
pub(super) struct Journal<'a> {
    store: &'a Store,
    node_id: &'a str,
}

impl<'a> Journal<'a> {
    pub fn new(store: &'a Store, node_id: &'a str) -> Journal<'a> {
        Journal { store, node_id }
    }

    /// Journals a change to `target` (for the record's `check`), committed
    /// before it returns: call it right before sending the change.
    pub fn before(&self, check: &str, target: &str, change: &str) -> Result<(), StepError> {
        let entry = BmcChange {
            check: check.into(),
            target: target.into(),
            change: change.into(),
            at: to_rfc3339(now_micros()),
        };
        self.store
            .write(|w| nodes::journal_bmc_change(w, self.node_id, &entry))
            .map_err(StepError::Store)
    }
}

/// Puts into `checks` the changes an earlier pass journaled (`earlier`, read
/// before this pass changed anything) that this pass did not make again:
/// each an item of its check, done (this pass read the setting back as
/// the baseline wants it, or made the change itself and says so).
pub(super) fn merge(checks: &mut [SanitizationCheck], earlier: &[BmcChange]) {
    for e in earlier {
        let Some(c) = checks.iter_mut().find(|c| c.name == e.check) else { continue };
        if c.items.iter().any(|i| i.target == e.target && i.method == "redfish-patch") {
            continue;
        }
        c.items.push(item(
            &e.target,
            "redfish-patch",
            true,
            &format!(
                "{}: sent at {} by a pass that did not finish (a restart or a lost answer), \
                 read back done",
                e.change, e.at
            ),
        ));
        c.ok = c.items.iter().all(|i| i.ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(check: &str, target: &str) -> BmcChange {
        BmcChange {
            check: check.into(),
            target: target.into(),
            change: format!("turn {target} off"),
            at: "2026-12-05T00:00:00Z".into(),
        }
    }

    #[test]
    fn earlier_changes_join_their_check_once() {
        let mut checks = vec![
            SanitizationCheck {
                name: "host_interfaces".into(),
                ok: true,
                items: vec![item("host interfaces", "redfish", true, "every one off")],
            },
            SanitizationCheck {
                name: "bmc_accounts".into(),
                ok: true,
                items: vec![item("/a/3", "redfish-patch", true, "disabled")],
            },
        ];
        let earlier = vec![
            change("host_interfaces", "/hi/1"),
            // Made again by this pass: its own item says so.
            change("bmc_accounts", "/a/3"),
            // A check this record does not have: nothing to add it to.
            change("secure_boot", "/sb"),
        ];
        merge(&mut checks, &earlier);
        assert_eq!(checks[0].items.len(), 2);
        let added = &checks[0].items[1];
        assert_eq!(
            (added.target.as_str(), added.method.as_str(), added.ok),
            ("/hi/1", "redfish-patch", true)
        );
        assert!(
            added.detail.starts_with("turn /hi/1 off: sent at 2026-12-05T00:00:00Z"),
            "{}",
            added.detail
        );
        assert!(checks[0].ok);
        assert_eq!(checks[1].items.len(), 1, "not repeated");
    }
}
