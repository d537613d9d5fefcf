//! The BMC's system event log between tenants. The host writes to the
//! IPMI SEL in-band (`ipmitool sel add`: any bytes, a record at a time),
//! so a tenant could leave data there for the next one to read, and the
//! SEL shows the next tenant when the last one's node rebooted or faulted.
//! Every sanitization clears each log the BMC types `SEL` (under the
//! system or its managers; the BMC's own audit and lifecycle logs are the
//! provider's and are left alone), after the node is powered off, and
//! reads it back: what is left is at most the BMC's own entry for the
//! clearing. The warnings and errors of a node the BMC reports unhealthy
//! were read before (the record's `hardware_health` check and the node's
//! hardware view).
//!
//! Not journaled: clearing a cleared log changes nothing, so a pass that
//! dies after it clears again.

use super::platform::{check, item};
use super::StepError;
use crate::config::SelPolicy;
use neocloud_redfish::Bmc;
use neocloud_types::SanitizationCheck;

pub(super) const CHECK: &str = "clear_sel";

/// Clears the node's system event logs (`bmc_sel = clear`); the record's
/// check. `read`: the host system (`system`) as the step's inventory read
/// it (its links do not change with the power).
pub(super) fn clear(
    bmc: &Bmc,
    system: &str,
    read: &serde_json::Value,
    policy: SelPolicy,
) -> Result<SanitizationCheck, StepError> {
    match policy {
        SelPolicy::Clear => {}
        SelPolicy::Unmanaged => {
            return Ok(check(
                CHECK,
                vec![item(system, "policy", true, "left as the BMC has it (bmc_sel = unmanaged)")],
            ))
        }
    }
    let logs = bmc.sel_services_of(read).map_err(StepError::from)?;
    if logs.is_empty() {
        return Ok(check(
            CHECK,
            vec![item(system, "redfish-read", true, "the BMC shows no system event log")],
        ));
    }
    let mut items = Vec::new();
    for log in &logs {
        items.push(match bmc.clear_log(log) {
            Ok(left) => item(
                &log.path,
                "redfish-action",
                left <= 1,
                &format!("cleared; {left} entries after"),
            ),
            Err(e) if !e.is_transient() => {
                item(&log.path, "redfish-action", false, &format!("the BMC did not clear it: {e}"))
            }
            Err(e) => return Err(StepError::Retry(e)),
        });
    }
    Ok(check(CHECK, items))
}
