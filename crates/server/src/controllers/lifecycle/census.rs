//! What the controller reports: each state's SLA, the fleet's census (nodes
//! per state, past their SLA, with a silent tenant agent) and the time
//! nodes spent in each state's step.

use super::provision::in_state;
use super::LifecycleController;
use crate::metrics::Histogram;
use neocloud_common::{time::now_micros, Result};
use neocloud_store::{agents, nodes, Store};
use neocloud_types::{Node, NodeLifecycle};
use std::time::Duration;

/// How long each state may take before an operator should look (the SLA
/// reported in metrics), by state name.
pub fn sla(state: &str) -> Option<Duration> {
    match state {
        "enrolling" => Some(Duration::from_secs(120)),
        "inspecting" => Some(Duration::from_secs(600)),
        "provisioning" | "releasing" => Some(Duration::from_secs(1800)),
        "sanitizing" => Some(Duration::from_secs(7200)),
        _ => None,
    }
}

/// Buckets for the time spent in a state's step, seconds: from a BMC call
/// to the SLA of sanitization.
const STEP_BUCKETS: [f64; 14] =
    [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0];

/// Counts per lifecycle state name.
pub type StateCounts = Vec<(String, i64)>;

/// What the metrics report of the fleet's lifecycle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    /// Nodes per state.
    pub per_state: StateCounts,
    /// Nodes in a state longer than its SLA, per state with one.
    pub over_sla: StateCounts,
    /// Active nodes whose tenant agent has not been heard for longer than
    /// the silence given (the node hung or crashed, or the tenant stopped
    /// the agent): the provider's cue to look.
    pub agents_silent: i64,
    /// Nodes in service whose agent reports its health other than `ok`
    /// (GPU memory errors, a row remap, a GPU lost or gone).
    pub unhealthy: i64,
    /// Nodes with firmware updates planned or in flight (a cause of time
    /// over the releasing or inspecting SLA).
    pub updating_firmware: i64,
    /// Nodes by their hardware health as their BMCs last said it.
    pub bmc_health: StateCounts,
}

/// Counts the fleet for metrics. A tenant agent is silent when unheard for
/// longer than `silence`. A releasing or inspecting node with firmware
/// updates in its plan has `per_update` more than its state's SLA for each
/// update and each reset that activates one (firmware takes its time).
pub fn census(store: &Store, silence: Duration, per_update: Duration) -> Result<Census> {
    store.read(|r| {
        let per_state = nodes::lifecycle_counts(r)?;
        let mut over_sla = Vec::new();
        let now = now_micros();
        for state in NodeLifecycle::NAMES {
            if let Some(sla) = sla(state) {
                let before = now - sla.as_micros() as i64;
                let n = match state {
                    "releasing" | "inspecting" => {
                        let plans = nodes::firmware_plans_in_state(r, state)?;
                        let late = plans.iter().filter(|(since, updates)| {
                            let work = updates.len()
                                + updates.iter().filter(|u| u.activation.is_some()).count();
                            let allowance = per_update.as_micros() as i64 * work as i64;
                            *since < before - allowance
                        });
                        nodes::count_unplanned_in_state_since(r, state, before)?
                            + late.count() as i64
                    }
                    _ => nodes::count_in_state_since(r, state, before)?,
                };
                over_sla.push((state.to_string(), n));
            }
        }
        let before = now_micros() - silence.as_micros() as i64;
        let agents_silent = agents::silent_on_active_nodes(r, before)?;
        let unhealthy = agents::unhealthy_nodes(r)?;
        let updating_firmware = nodes::updating_firmware(r)?;
        let bmc_health = nodes::health_counts(r)?;
        Ok(Census { per_state, over_sla, agents_silent, unhealthy, updating_firmware, bmc_health })
    })
}

/// Sanitization records written, by outcome, and their failed checks;
/// tenants' power actions recorded, by action and outcome; firmware
/// updates ended, by component and outcome; resets that activate them,
/// by reset type and outcome.
#[derive(Default)]
pub(super) struct RecordCounts {
    complete: u64,
    incomplete: u64,
    failed_checks: std::collections::BTreeMap<String, u64>,
    power: std::collections::BTreeMap<(&'static str, &'static str), u64>,
    firmware: std::collections::BTreeMap<(String, &'static str), u64>,
    activations: std::collections::BTreeMap<(String, &'static str), u64>,
    placed_again: std::collections::BTreeMap<&'static str, u64>,
}

impl LifecycleController {
    /// A sanitization record was written: counted, with its failed checks.
    pub(super) fn record_written(&self, complete: bool, failed: &[&str]) {
        let mut m = self.records.lock().unwrap_or_else(|p| p.into_inner());
        if complete {
            m.complete += 1;
        } else {
            m.incomplete += 1;
        }
        for c in failed {
            *m.failed_checks.entry((*c).to_string()).or_default() += 1;
        }
    }

    /// A tenant's power action was recorded done (`ok`: the BMC took it).
    pub(super) fn power_recorded(&self, action: &'static str, ok: bool) {
        let mut m = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = if ok { "success" } else { "failed" };
        *m.power.entry((action, outcome)).or_default() += 1;
    }

    /// A firmware update ended (`ok`: nothing left to wait for; the
    /// record's check reads the version).
    pub(super) fn firmware_update_ended(&self, component: &str, ok: bool) {
        let mut m = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = if ok { "completed" } else { "failed" };
        *m.firmware.entry((component.to_string(), outcome)).or_default() += 1;
    }

    /// A reset that activates firmware updates ended (`ok`: they read the
    /// baseline's versions after it).
    pub(super) fn firmware_activation_ended(&self, reset_type: &str, ok: bool) {
        let mut m = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = if ok { "completed" } else { "failed" };
        *m.activations.entry((reset_type.to_string(), outcome)).or_default() += 1;
    }

    /// An instance whose node failed before the handover was placed on
    /// another node (`placed`) or failed with its node (`failed`).
    pub(super) fn placed_again(&self, outcome: &'static str) {
        let mut m = self.records.lock().unwrap_or_else(|p| p.into_inner());
        *m.placed_again.entry(outcome).or_default() += 1;
    }

    /// The node left its state's step (`n` as it was): how long it took.
    pub(super) fn left_step(&self, n: &Node) {
        let secs = in_state(n).as_secs_f64();
        let key = (n.lifecycle.name(), n.lifecycle.step().unwrap_or(""));
        let mut m = self.step_times.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(key).or_insert_with(|| Histogram::new(&STEP_BUCKETS)).observe(secs);
    }

    /// This controller's metrics, in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        let mut out = String::from(
            "# HELP neocloud_node_step_duration_seconds Time nodes spent in a lifecycle state's step before leaving it, by state and step.\n\
             # TYPE neocloud_node_step_duration_seconds histogram\n",
        );
        let m = self.step_times.lock().unwrap_or_else(|p| p.into_inner());
        for ((state, step), h) in m.iter() {
            let labels = format!("lifecycle=\"{state}\",step=\"{step}\"");
            h.render(&mut out, "neocloud_node_step_duration_seconds", &labels);
        }
        drop(m);
        let r = self.records.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str(
            "# HELP neocloud_sanitization_records_total Signed sanitization records this replica wrote, by outcome (incomplete: the node failed).\n\
             # TYPE neocloud_sanitization_records_total counter\n",
        );
        for (outcome, n) in [("complete", r.complete), ("incomplete", r.incomplete)] {
            out.push_str(&format!(
                "neocloud_sanitization_records_total{{outcome=\"{outcome}\"}} {n}\n"
            ));
        }
        out.push_str(
            "# HELP neocloud_sanitization_checks_failed_total Checks failed in the sanitization records this replica wrote, by check.\n\
             # TYPE neocloud_sanitization_checks_failed_total counter\n",
        );
        for (check, n) in &r.failed_checks {
            out.push_str(&format!(
                "neocloud_sanitization_checks_failed_total{{check=\"{check}\"}} {n}\n"
            ));
        }
        out.push_str(
            "# HELP neocloud_instance_power_actions_total Tenants' power actions this replica recorded, by action and outcome (failed: the BMC refused, did not answer, or it is not known).\n\
             # TYPE neocloud_instance_power_actions_total counter\n",
        );
        for ((action, outcome), n) in &r.power {
            out.push_str(&format!(
                "neocloud_instance_power_actions_total{{action=\"{action}\",outcome=\"{outcome}\"}} {n}\n"
            ));
        }
        out.push_str(
            "# HELP neocloud_firmware_updates_total Firmware updates to the provider's baseline images this replica saw end, by component and outcome (failed: refused, its task failed or timed out, or never answered).\n\
             # TYPE neocloud_firmware_updates_total counter\n",
        );
        for ((component, outcome), n) in &r.firmware {
            out.push_str(&format!(
                "neocloud_firmware_updates_total{{component=\"{}\",outcome=\"{outcome}\"}} {n}\n",
                crate::metrics::escape_label(component)
            ));
        }
        out.push_str(
            "# HELP neocloud_firmware_activations_total Resets sent to activate firmware updates (an AC power cycle of a chassis, a BMC restart) this replica saw end, by reset type and outcome (failed: refused, or the versions did not follow).\n\
             # TYPE neocloud_firmware_activations_total counter\n",
        );
        for ((reset_type, outcome), n) in &r.activations {
            out.push_str(&format!(
                "neocloud_firmware_activations_total{{reset_type=\"{}\",outcome=\"{outcome}\"}} {n}\n",
                crate::metrics::escape_label(reset_type)
            ));
        }
        out.push_str(
            "# HELP neocloud_instances_placed_again_total Instances whose node failed before they were handed over, by outcome (placed: on another node; failed: with their node, none could take them or their replacements were spent).\n\
             # TYPE neocloud_instances_placed_again_total counter\n",
        );
        for (outcome, n) in &r.placed_again {
            out.push_str(&format!(
                "neocloud_instances_placed_again_total{{outcome=\"{outcome}\"}} {n}\n"
            ));
        }
        out
    }
}
