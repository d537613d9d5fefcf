//! Prometheus metrics, rendered in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
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
    /// Fabric controller outcomes: pushed, repaired, failed.
    fabric: BTreeMap<&'static str, u64>,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    pub fn request(&self, op: &str, status: u16, elapsed: Duration) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *m.requests.entry((op.to_string(), status)).or_default() += 1;
        let h = m.durations.entry(op.to_string()).or_default();
        let s = elapsed.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += s;
        h.count += 1;
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

    /// The fleet's lifecycle counts.
    pub fn set_nodes(&self, c: crate::controllers::lifecycle::Census) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.nodes = c.per_state;
        m.nodes_over_sla = c.over_sla;
        m.agents_silent = c.agents_silent;
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
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "neocloud_http_request_duration_seconds_bucket{{op=\"{op}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "neocloud_http_request_duration_seconds_bucket{{op=\"{op}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "neocloud_http_request_duration_seconds_sum{{op=\"{op}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "neocloud_http_request_duration_seconds_count{{op=\"{op}\"}} {}",
                h.count
            );
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
            "# HELP neocloud_nodes_over_sla Nodes in a lifecycle state longer than its SLA."
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
            "# HELP neocloud_fabric_applies_total Switch and subnet-manager applies by the fabric controller, by outcome."
        );
        let _ = writeln!(out, "# TYPE neocloud_fabric_applies_total counter");
        for (o, n) in &m.fabric {
            let _ = writeln!(out, "neocloud_fabric_applies_total{{outcome=\"{o}\"}} {n}");
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
