//! The benchmark's phases against the server's store and the fleet.

use super::report::Phase;
use super::BaremetalArgs;
use crate::bench_api::{parallel, Api};
use crate::bench_fleet::Fleet;
use neocloud_common::time::process_and_children_cpu_secs;
use neocloud_common::time::{from_rfc3339, now_micros};
use neocloud_server::simbmc::{self, Stats};
use neocloud_store::{agents, instances, nodes, Store};
use neocloud_types::{Instance, InstanceState};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counters of the simulated fleet and the CPU used, at one moment.
#[derive(Clone, Copy)]
pub(super) struct Counters {
    pub(super) fleet: Stats,
    /// This process: the server and the clients (and the fleet when it
    /// runs in process).
    pub(super) cpu: Option<f64>,
    /// The server's placement engine rebuilds from the store so far.
    pub(super) reloads: u64,
}

impl Counters {
    pub(super) fn cpu_since(&self, before: &Counters) -> (Option<f64>, Option<f64>) {
        let d = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a - b);
        (d(self.cpu, before.cpu), d(self.fleet.cpu_secs, before.fleet.cpu_secs))
    }
}

pub(super) fn secs_between(from: i64, to: i64) -> f64 {
    (to - from) as f64 / 1e6
}

fn micros(s: &str) -> i64 {
    from_rfc3339(s).unwrap_or(0)
}

/// Polls `f` until it answers `Some`, an error, or `timeout` passes.
fn wait<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<Option<T>, String>,
) -> Result<T, String> {
    let start = Instant::now();
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn node_counts(store: &Store) -> Result<std::collections::HashMap<String, i64>, String> {
    store.read(nodes::lifecycle_counts).map(|v| v.into_iter().collect()).map_err(|e| e.to_string())
}

fn project_instances(store: &Store, t: &str, p: &str) -> Result<Vec<Instance>, String> {
    store.read(|r| instances::list(r, t, p)).map_err(|e| e.to_string())
}

/// How many of the project's instances are in `state`; the instances
/// themselves once one failed (polled every 100 ms: a count, so the
/// harness's polling costs the control plane's cores next to nothing).
fn count_in(store: &Store, t: &str, p: &str, state: InstanceState) -> Result<usize, String> {
    let counts = store.read(|r| instances::state_counts(r, t, p)).map_err(|e| e.to_string())?;
    let of = |s: InstanceState| counts.iter().find(|(x, _)| *x == s).map_or(0, |(_, n)| *n);
    if of(InstanceState::Failed) > 0 {
        let all = project_instances(store, t, p)?;
        let why: Vec<_> = all.iter().filter_map(|i| i.reason.clone()).take(3).collect();
        return Err(format!("{} instance(s) failed: {why:?}", of(InstanceState::Failed)));
    }
    Ok(of(state) as usize)
}

pub(super) struct Env {
    pub(super) args: BaremetalArgs,
    pub(super) base: String,
    pub(super) token: String,
    pub(super) store: Store,
    pub(super) fleet: Fleet,
    /// The fleet's latency, simulated boot and jitter (it says, wherever
    /// it runs).
    pub(super) latency: Duration,
    pub(super) boot_delay: Duration,
    pub(super) jitter: f64,
}

/// Each node's simulated waiting at one moment (with a jitter only).
type Waits = Option<Vec<(usize, f64)>>;

/// A phase's start or end: the fleet's counters, the CPU used, and (with a
/// jitter) each node's waits.
struct Mark {
    counters: Counters,
    waits: Waits,
}

/// What tells one phase from another; the rest is measured between its
/// marks.
struct Spec {
    name: &'static str,
    nodes: usize,
    api_calls: usize,
    api: Duration,
    wall_secs: f64,
    each: Vec<f64>,
    /// The phase boots nodes (its ideal includes the simulated boot).
    boots: bool,
    /// Instances placed on another node (their first node hung at boot).
    placed_again: u32,
}

impl Env {
    /// The phase's ideal: its BMC waits alone, `--parallel` nodes at once.
    /// Without a jitter every node waits the same; with one, in a single
    /// wave, the slowest node's own waits (from the fleet's accounts).
    fn ideal(&self, nodes: usize, chain: f64, boots: bool, waits: (Waits, Waits)) -> (usize, f64) {
        let waves = nodes.div_ceil(self.args.parallel.max(1));
        if let (1, (Some(before), Some(after))) = (waves, waits) {
            let before: std::collections::HashMap<usize, f64> = before.into_iter().collect();
            let slowest = after
                .iter()
                .map(|(i, w)| w - before.get(i).copied().unwrap_or(0.0))
                .fold(0.0, f64::max);
            return (waves, slowest);
        }
        let mut ideal = waves as f64 * chain * self.latency.as_secs_f64();
        if boots {
            ideal += self.boot_delay.as_secs_f64();
        }
        (waves, ideal)
    }

    fn waits(&self) -> Result<Waits, String> {
        if self.jitter > 0.0 {
            self.fleet.waits().map(Some)
        } else {
            Ok(None)
        }
    }

    pub(super) fn counters(&self) -> Result<Counters, String> {
        Ok(Counters {
            fleet: self.fleet.stats()?,
            cpu: process_and_children_cpu_secs(),
            reloads: self.reloads(),
        })
    }

    /// `neocloud_placement_engine_reloads_total` as the server says.
    fn reloads(&self) -> u64 {
        let text = Api::new(&self.base, &self.token).text("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix("neocloud_placement_engine_reloads_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    fn mark(&self) -> Result<Mark, String> {
        Ok(Mark { counters: self.counters()?, waits: self.waits()? })
    }

    /// The phase's figures: `s`, and what the fleet and the CPU counted
    /// from `start` to `end`.
    fn phase(&self, start: Mark, end: Mark, s: Spec) -> Result<Phase, String> {
        let (cpu_secs, fleet_cpu_secs) = end.counters.cpu_since(&start.counters);
        let (before, after) = (start.counters.fleet, end.counters.fleet);
        let unread = after.media_failures - before.media_failures;
        if unread > 0 {
            return Err(format!(
                "{}: {unread} SIMULATED BMC(s) could not read their node's virtual media (the fleet's log says why)",
                s.name
            ));
        }
        let chain = (after.delayed - before.delayed) as f64 / s.nodes.max(1) as f64;
        let (waves, ideal) = self.ideal(s.nodes, chain, s.boots, (start.waits, end.waits));
        Ok(Phase {
            name: s.name,
            nodes: s.nodes,
            api_calls: s.api_calls,
            api_secs: s.api.as_secs_f64(),
            wall_secs: s.wall_secs,
            bmc_requests: after.requests - before.requests,
            chain,
            boots: after.boots - before.boots,
            media_bytes: after.media_bytes - before.media_bytes,
            waves,
            ideal_secs: ideal,
            each: s.each,
            placed_again: s.placed_again,
            cpu_secs,
            fleet_cpu_secs,
            reloads: end.counters.reloads - start.counters.reloads,
        })
    }

    pub(super) fn enroll(&self) -> Result<Phase, String> {
        let n = self.args.nodes;
        let start = self.mark()?;
        let t0 = now_micros();
        let fleet_base = self.fleet.base().to_string();
        let boot = neocloud_types::BootMethod::from(self.args.boot_method);
        let static_addresses = self.args.static_addresses.is_some();
        let (res, api) = parallel(&self.base, &self.token, self.args.clients, n, move |a, i| {
            let mut body = json!({
                "name": format!("bm-{i:05}"), "site": "bench",
                "pod": format!("pod-{}", i / 128), "su": format!("su-{}", i / 32),
                "rack": format!("rack-{}", i / 4), "gpu_model": "h100-80gb", "gpus": 8,
                "bmc": {"endpoint": simbmc::endpoint(&fleet_base, i),
                        "username": simbmc::USER, "password": simbmc::PASSWORD},
                "boot_method": boot,
            });
            if static_addresses {
                let host = i + 10;
                body["boot_network"] = json!({
                    "mac": simbmc::mac(i),
                    "address": format!("10.64.{}.{}/16", host >> 8, host & 0xff),
                });
            }
            a.must("POST", "/v1/nodes", &body).map(|_| ())
        });
        if let Some(Err(e)) = res.into_iter().find(|r| r.is_err()) {
            return Err(format!("enroll: {e}"));
        }
        wait("every node to be available", self.args.timeout, || {
            let c = node_counts(&self.store)?;
            if let Some(f) = c.get("failed").filter(|f| **f > 0) {
                return Err(format!("{f} node(s) failed enrolling or inspecting: {c:?}"));
            }
            Ok((c.get("available").copied().unwrap_or(0) as usize >= n).then_some(()))
        })?;
        let end = self.mark()?;
        let all = self.store.read(nodes::list).map_err(|e| e.to_string())?;
        let done = all.iter().map(|x| micros(&x.lifecycle_since)).max().unwrap_or(t0);
        let each =
            all.iter().map(|x| secs_between(micros(&x.created_at), micros(&x.lifecycle_since)));
        self.phase(
            start,
            end,
            Spec {
                name: "enroll + inspect",
                nodes: n,
                api_calls: n,
                api,
                wall_secs: secs_between(t0, done),
                each: each.collect(),
                boots: false,
                placed_again: 0,
            },
        )
    }

    /// Tenant, quota, project, instance type and images.
    pub(super) fn setup(&self) -> Result<(), String> {
        let a = Api::new(&self.base, &self.token);
        crate::bench_api::tenant(&a, "bench", self.args.provisions)?;
        crate::bench_api::catalog(&a, "bm-h100", ["bench-os", "bench-sanitizer"])
    }

    /// Creates the instances; their tenant and project ids and the phase.
    pub(super) fn provision(&self) -> Result<(String, String, Phase), String> {
        let k = self.args.provisions;
        let batch = self.args.batch.clamp(1, 1024) as usize;
        let requests = k.div_ceil(batch);
        let start = self.mark()?;
        let t0 = now_micros();
        let (res, api) =
            parallel(&self.base, &self.token, self.args.clients, requests, move |a, r| {
                let count = batch.min(k - r * batch);
                a.must(
                    "POST",
                    "/v1/tenants/bench/projects/p/instances",
                    &json!({"name": format!("b{r}"), "instance_type": "bm-h100",
                            "count": count, "image": "bench-os"}),
                )
            });
        let mut ids = None;
        for r in res {
            let v = r.map_err(|e| format!("provision: {e}"))?;
            let first = &v["items"][0];
            ids = Some((
                first["tenant_id"].as_str().unwrap_or_default().to_string(),
                first["project_id"].as_str().unwrap_or_default().to_string(),
            ));
        }
        let (t, p) = ids.ok_or("provision: no instance created")?;
        wait("every instance to be ready", self.args.timeout, || {
            Ok((count_in(&self.store, &t, &p, InstanceState::Ready)? >= k).then_some(()))
        })?;
        let done = project_instances(&self.store, &t, &p)?;
        let end = self.mark()?;
        let last = done.iter().map(|i| micros(&i.updated_at)).max().unwrap_or(t0);
        let each = done.iter().map(|i| secs_between(micros(&i.created_at), micros(&i.updated_at)));
        let phase = self.phase(
            start,
            end,
            Spec {
                name: "provision",
                nodes: k,
                api_calls: requests,
                api,
                wall_secs: secs_between(t0, last),
                each: each.collect(),
                boots: true,
                placed_again: done.iter().map(|i| i.replacements).sum(),
            },
        )?;
        Ok((t, p, phase))
    }

    /// Releases every instance, `--batch` per request (as they were
    /// created); the phase and the complete records found.
    pub(super) fn release(&self, t: &str, p: &str) -> Result<(Phase, usize), String> {
        let k = self.args.provisions;
        let batch = self.args.batch.clamp(1, 1000) as usize;
        let names: Vec<String> =
            project_instances(&self.store, t, p)?.into_iter().map(|i| i.name).collect();
        let requests = names.len().div_ceil(batch);
        let start = self.mark()?;
        let t0 = now_micros();
        let names = Arc::new(names);
        let n2 = names.clone();
        let (res, api) =
            parallel(&self.base, &self.token, self.args.clients, requests, move |a, r| {
                let these = &n2[r * batch..((r + 1) * batch).min(n2.len())];
                let v = a
                    .must(
                        "POST",
                        "/v1/tenants/bench/projects/p/instance-releases",
                        &json!({ "instances": these }),
                    )
                    .map_err(|e| format!("release: {e}"))?;
                let items = v["items"].as_array().cloned().unwrap_or_default();
                Ok::<_, String>(
                    items
                        .iter()
                        .map(|i| {
                            let name = i["name"].as_str().unwrap_or_default().to_string();
                            (name, micros(i["updated_at"].as_str().unwrap_or_default()))
                        })
                        .collect::<Vec<_>>(),
                )
            });
        let mut requested = std::collections::HashMap::with_capacity(k);
        for r in res {
            requested.extend(r?);
        }
        // The nodes that hung at boot stay failed (nobody inspects them).
        let dead = self.fleet.stats()?.dead_nodes as i64;
        wait("every instance to be released and sanitized", self.args.timeout, || {
            let c = node_counts(&self.store)?;
            if let Some(f) = c.get("failed").filter(|f| **f > dead) {
                let all = project_instances(&self.store, t, p)?;
                let why: Vec<_> = all.iter().filter_map(|i| i.reason.clone()).take(3).collect();
                return Err(format!("{f} node(s) failed releasing or sanitizing: {why:?}"));
            }
            let released = count_in(&self.store, t, p, InstanceState::Released)?;
            let available = c.get("available").copied().unwrap_or(0) as usize;
            Ok((released >= k && available + dead as usize >= self.args.nodes).then_some(()))
        })?;
        let done = project_instances(&self.store, t, p)?;
        let end = self.mark()?;
        let last = done.iter().map(|i| micros(&i.updated_at)).max().unwrap_or(t0);
        let complete = self
            .store
            .read(|r| {
                let mut n = 0;
                for i in &done {
                    let recs = agents::records_for_instance(r, t, &i.id)?;
                    if recs.iter().any(|(_, body, _, _)| {
                        serde_json::from_str::<Value>(body)
                            .map(|b| b["complete"] == json!(true))
                            .unwrap_or(false)
                    }) {
                        n += 1;
                    }
                }
                Ok(n)
            })
            .map_err(|e| e.to_string())?;
        // Per instance: from its release request to its record.
        let each = done.iter().map(|i| {
            secs_between(requested.get(&i.name).copied().unwrap_or(t0), micros(&i.updated_at))
        });
        let phase = self.phase(
            start,
            end,
            Spec {
                name: "release + sanitize",
                nodes: k,
                api_calls: requests,
                api,
                wall_secs: secs_between(t0, last),
                each: each.collect(),
                boots: true,
                placed_again: 0,
            },
        )?;
        Ok((phase, complete))
    }
}
