//! Desired vs applied per switch, and how a plan is shown to the provider.

use neocloud_common::{Error, Result};
use neocloud_fabric::render::{self, Rendered};
use neocloud_fabric::{diff_switch, Change, Object, Op, SwitchConfig};
use neocloud_store::fabrics::SwitchState;
use std::collections::BTreeMap;

/// What each switch was last given (parsed from the store).
pub fn applied(states: &[SwitchState]) -> Result<BTreeMap<String, SwitchConfig>> {
    let mut out = BTreeMap::new();
    for s in states {
        if let Some(json) = &s.applied {
            out.insert(s.switch.clone(), parse_applied(&s.switch, json)?);
        }
    }
    Ok(out)
}

/// One switch's stored configuration.
pub fn parse_applied(switch: &str, json: &str) -> Result<SwitchConfig> {
    serde_json::from_str(json)
        .map_err(|e| Error::internal(format!("stored config of switch {switch}: {e}")))
}

fn describe_object(o: &Object) -> String {
    serde_json::to_string(o).unwrap_or_else(|_| format!("{:?}", o.id()))
}

/// One change as a line: `+` add, `-` remove, `~` modify.
pub fn describe(c: &Change) -> String {
    match &c.op {
        Op::Add { object } => format!("+ {}", describe_object(object)),
        Op::Remove { object } => format!("- {}", describe_object(object)),
        Op::Modify { from, to } => {
            format!("~ {} -> {}", describe_object(from), describe_object(to))
        }
    }
}

/// The object changes and the OS-level steps that take a switch from
/// `actual` to `desired`.
pub fn switch_plan(
    name: &str,
    actual: &SwitchConfig,
    desired: &SwitchConfig,
) -> Result<(Vec<String>, Vec<String>)> {
    let changes: Vec<String> =
        diff_switch(name, Some(desired), Some(actual)).iter().map(describe).collect();
    if changes.is_empty() {
        return Ok((changes, Vec::new()));
    }
    let unsupported = super::fabric_error;
    let steps = match desired.os {
        neocloud_fabric::SwitchOs::Frr => {
            let c = render::converge_frr(name, actual, desired).map_err(unsupported)?;
            let mut steps: Vec<String> = c.commands.iter().map(|a| a.join(" ")).collect();
            if let Some(files) = c.frr {
                steps.push(format!("write frr.conf and reload FRR:\n{}", files.integrated));
            }
            steps
        }
        _ => match render::render(name, desired).map_err(unsupported)? {
            Rendered::Frr { commands, .. } => commands.iter().map(|a| a.join(" ")).collect(),
            Rendered::Sonic(cfg) => vec![cfg.config_db_json(), cfg.frr.integrated],
            Rendered::Nvue(cmds) => cmds,
            Rendered::Eos(text) => text.lines().map(str::to_string).collect(),
        },
    };
    Ok((changes, steps))
}
