//! Prometheus metrics, rendered in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// API request latency buckets, seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// A Prometheus histogram over fixed bucket bounds (seconds).
pub(crate) struct Histogram {
    bounds: &'static [f64],
    /// Observations at most each bound (cumulative, as exposed).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    pub(crate) fn new(bounds: &'static [f64]) -> Histogram {
        Histogram { bounds, counts: vec![0; bounds.len()], sum: 0.0, count: 0 }
    }

    pub(crate) fn observe(&mut self, secs: f64) {
        for (c, b) in self.counts.iter_mut().zip(self.bounds) {
            if secs <= *b {
                *c += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }

    /// Its series, `labels` (`k="v",...`) on each.
    pub(crate) fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    durations: BTreeMap<String, Histogram>,
    audit_events: BTreeMap<&'static str, u64>,
    background_errors: BTreeMap<&'static str, u64>,
    nodes: Vec<(String, i64)>,
    nodes_over_sla: Vec<(String, i64)>,
    agents_silent: i64,
    gpu_unhealthy: i64,
    updating_firmware: i64,
    bmc_health: Vec<(String, i64)>,
    /// Fabric controller outcomes: pushed, repaired, failed.
    fabric: BTreeMap<&'static str, u64>,
    /// Agents' TPM identity proofs: proven, pinned, refused.
    tpm_identity: BTreeMap<&'static str, u64>,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    pub fn request(&self, op: &str, status: u16, elapsed: Duration) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *m.requests.entry((op.to_string(), status)).or_default() += 1;
        m.durations
            .entry(op.to_string())
            .or_insert_with(|| Histogram::new(&BUCKETS))
            .observe(elapsed.as_secs_f64());
    }

    pub fn audit_event(&self, outcome: &'static str) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *m.audit_events.entry(outcome).or_default() += 1;
    }

    pub fn background_error(&self, task: &'static str) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *m.background_errors.entry(task).or_default() += 1;
    }

    /// One fabric controller pass: switches (or subnet managers) given a
    /// new configuration, repaired after drift, and failed.
    pub fn fabric_pass(&self, pushed: usize, repaired: usize, failed: usize) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for (k, n) in [("pushed", pushed), ("repaired", repaired), ("failed", failed)] {
            *m.fabric.entry(k).or_default() += n as u64;
        }
    }

    /// An agent's TPM identity proof: `proven` (the node's), `pinned`
    /// (recorded as the node's), `refused`.
    pub fn tpm_identity(&self, outcome: &'static str) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *m.tpm_identity.entry(outcome).or_default() += 1;
    }

    /// The fleet's lifecycle counts.
    pub fn set_nodes(&self, c: crate::controllers::lifecycle::Census) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.nodes = c.per_state;
        m.nodes_over_sla = c.over_sla;
        m.agents_silent = c.agents_silent;
        m.gpu_unhealthy = c.unhealthy;
        m.updating_firmware = c.updating_firmware;
        m.bmc_health = c.bmc_health;
    }

    pub fn render(&self) -> String {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP neocloud_http_requests_total API requests by operation and status."
        );
        let _ = writeln!(out, "# TYPE neocloud_http_requests_total counter");
        for ((op, status), n) in &m.requests {
            let _ = writeln!(
                out,
                "neocloud_http_requests_total{{op=\"{op}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP neocloud_http_request_duration_seconds API request latency by operation."
        );
        let _ = writeln!(out, "# TYPE neocloud_http_request_duration_seconds histogram");
        for (op, h) in &m.durations {
            h.render(&mut out, "neocloud_http_request_duration_seconds", &format!("op=\"{op}\""));
        }
        let _ =
            writeln!(out, "# HELP neocloud_audit_events_total Audit events appended, by outcome.");
        let _ = writeln!(out, "# TYPE neocloud_audit_events_total counter");
        for (o, n) in &m.audit_events {
            let _ = writeln!(out, "neocloud_audit_events_total{{outcome=\"{o}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP neocloud_nodes Nodes per lifecycle state.");
        let _ = writeln!(out, "# TYPE neocloud_nodes gauge");
        for (state, n) in &m.nodes {
            let _ = writeln!(out, "neocloud_nodes{{lifecycle=\"{state}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP neocloud_nodes_over_sla Nodes in a lifecycle state longer than its SLA (releasing and inspecting: plus firmware_update_timeout_secs per firmware update and activation in the node's plan)."
        );
        let _ = writeln!(out, "# TYPE neocloud_nodes_over_sla gauge");
        for (state, n) in &m.nodes_over_sla {
            let _ = writeln!(out, "neocloud_nodes_over_sla{{lifecycle=\"{state}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP neocloud_node_agents_silent Active nodes whose tenant agent has not been heard for three heartbeat intervals and more."
        );
        let _ = writeln!(out, "# TYPE neocloud_node_agents_silent gauge");
        let _ = writeln!(out, "neocloud_node_agents_silent {}", m.agents_silent);
        let _ = writeln!(
            out,
            "# HELP neocloud_nodes_unhealthy Nodes in service whose agent reports a problem (a GPU with memory errors, a failed or pending row remap, a GPU lost or gone)."
        );
        let _ = writeln!(out, "# TYPE neocloud_nodes_unhealthy gauge");
        let _ = writeln!(out, "neocloud_nodes_unhealthy {}", m.gpu_unhealthy);
        let _ = writeln!(
            out,
            "# HELP neocloud_nodes_hardware_health Nodes by their hardware health as their BMCs last said it (the host's rollup: OK, Warning, Critical)."
        );
        let _ = writeln!(out, "# TYPE neocloud_nodes_hardware_health gauge");
        for health in ["OK", "Warning", "Critical"] {
            let n = m.bmc_health.iter().find(|(h, _)| h == health).map_or(0, |(_, n)| *n);
            let _ = writeln!(out, "neocloud_nodes_hardware_health{{health=\"{health}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP neocloud_nodes_updating_firmware Nodes with firmware updates to the provider's baseline images planned or in flight (their releasing or inspecting time includes the updates')."
        );
        let _ = writeln!(out, "# TYPE neocloud_nodes_updating_firmware gauge");
        let _ = writeln!(out, "neocloud_nodes_updating_firmware {}", m.updating_firmware);
        let _ = writeln!(
            out,
            "# HELP neocloud_fabric_applies_total Switch and subnet-manager applies by the fabric controller, by outcome."
        );
        let _ = writeln!(out, "# TYPE neocloud_fabric_applies_total counter");
        for (o, n) in &m.fabric {
            let _ = writeln!(out, "neocloud_fabric_applies_total{{outcome=\"{o}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP neocloud_agent_tpm_identity_total Agents' TPM identity proofs, by outcome (refused: another machine's TPM, or a wrong answer)."
        );
        let _ = writeln!(out, "# TYPE neocloud_agent_tpm_identity_total counter");
        for o in ["proven", "pinned", "refused"] {
            let n = m.tpm_identity.get(o).copied().unwrap_or(0);
            let _ = writeln!(out, "neocloud_agent_tpm_identity_total{{outcome=\"{o}\"}} {n}");
        }
        let _ =
            writeln!(out, "# HELP neocloud_background_errors_total Failed background task runs.");
        let _ = writeln!(out, "# TYPE neocloud_background_errors_total counter");
        for (t, n) in &m.background_errors {
            let _ = writeln!(out, "neocloud_background_errors_total{{task=\"{t}\"}} {n}");
        }
        out
    }
}

/// A label value as the Prometheus text format writes it: backslash,
/// double quote and newline escaped (values from BMCs and the provider's
/// own names can hold them).
pub fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod label_tests {
    #[test]
    fn label_values_are_escaped() {
        assert_eq!(super::escape_label(r#"HGX "0"\a"#), r#"HGX \"0\"\\a"#);
        assert_eq!(super::escape_label("a\nb"), "a\\nb");
    }
}

#[cfg(test)]
mod census_tests {
    #[test]
    fn hardware_health_is_a_gauge_per_health_zero_included() {
        let m = super::Metrics::default();
        m.set_nodes(crate::controllers::lifecycle::Census {
            bmc_health: vec![("Critical".into(), 2), ("OK".into(), 7)],
            ..Default::default()
        });
        let out = m.render();
        for line in [
            "neocloud_nodes_hardware_health{health=\"OK\"} 7\n",
            "neocloud_nodes_hardware_health{health=\"Warning\"} 0\n",
            "neocloud_nodes_hardware_health{health=\"Critical\"} 2\n",
        ] {
            assert!(out.contains(line), "{line} in {out}");
        }
    }
}
