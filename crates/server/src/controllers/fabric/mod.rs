//! The fabric controller: takes no input, runs periodically and when woken,
//! and is the only writer of what switches hold (`switch_states`). Per
//! fabric: read every switch's plan (from the fabric's kept planner, planned
//! afresh only when the intent changed behind it), and for each managed switch
//! push the difference from what it was last given (stamped with the
//! intent generation), or, when nothing changed, check the device for drift
//! now and then and repair it. Each switch's outcome is recorded (status,
//! message) and every push is audited.

mod drivers;
mod ib;

use crate::network::planners::Planners;
use crate::secrets::SecretBox;
use neocloud_common::{time::now_micros, Error, Result};
use neocloud_fabric::SwitchConfig;
use neocloud_store::fabrics::{self, SwitchState};
use neocloud_store::{audit, Store};
use neocloud_switch::{Apply, DriverError, SwitchDriver};
use neocloud_types::{SwitchManagement, SwitchSpec};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use drivers::Drivers;

/// Switches converged at once per fabric.
const PARALLEL_SWITCHES: usize = 16;

pub struct FabricController {
    pub wake: Arc<tokio::sync::Notify>,
    /// This controller's name in fabric leases and audit events: one
    /// replica's controller converges a fabric at a time.
    pub owner: String,
    /// How long a lease lasts unless renewed (each pass renews it).
    pub lease: Duration,
    /// How often an in-sync switch is checked for drift.
    pub check_interval: Duration,
    pub drivers: Drivers,
    /// The Ethernet fabrics' kept planners (shared with the API).
    pub planners: Arc<Planners>,
    last_check: Mutex<HashMap<(String, String), Instant>>,
    /// What each switch was last given, parsed, by (fabric, switch): kept
    /// while the stored JSON is the same (a pass parses only what changed).
    applied: Mutex<HashMap<(String, String), Parsed>>,
}

/// A stored configuration and what it parses to.
type Parsed = (String, Arc<SwitchConfig>);

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    /// Switches given a new configuration.
    pub pushed: usize,
    /// Switches found drifted and repaired.
    pub repaired: usize,
    /// Switches whose apply or check failed.
    pub failed: usize,
}

impl PassReport {
    fn add(&mut self, o: PassReport) {
        self.pushed += o.pushed;
        self.repaired += o.repaired;
        self.failed += o.failed;
    }
}

impl FabricController {
    pub fn new(drivers: Drivers) -> FabricController {
        FabricController {
            wake: Arc::new(tokio::sync::Notify::new()),
            owner: format!("fabric-controller-{}", neocloud_common::new_id()),
            lease: Duration::from_secs(60),
            check_interval: Duration::from_secs(60),
            drivers,
            planners: Arc::default(),
            last_check: Mutex::default(),
            applied: Mutex::default(),
        }
    }

    /// One pass over every Ethernet fabric.
    pub fn pass(&self, store: &Store, secrets: &SecretBox) -> Result<PassReport> {
        let mut report = PassReport::default();
        let ttl = self.lease.as_micros() as i64;
        for f in store.read(fabrics::list)? {
            // Another replica's controller converges this one.
            if !store.write(|w| fabrics::take_lease(w, &f.id, &self.owner, ttl))? {
                continue;
            }
            match f.kind.as_str() {
                "infiniband" => report.add(self.converge_ib(store, secrets, &f.id)?),
                _ => report.add(self.converge_fabric(store, secrets, &f.id)?),
            }
        }
        Ok(report)
    }

    fn converge_fabric(
        &self,
        store: &Store,
        secrets: &SecretBox,
        fabric_id: &str,
    ) -> Result<PassReport> {
        let (planned, states) = store.read(|r| {
            Ok((self.planners.desired(r, fabric_id, true)?, fabrics::switch_states(r, fabric_id)?))
        })?;
        // A write is committing: its wake-up brings the next pass.
        let Some((record, desired)) = planned else { return Ok(PassReport::default()) };
        let applied = self.applied_configs(fabric_id, &states)?;
        let by_name: HashMap<&str, &SwitchState> =
            states.iter().map(|s| (s.switch.as_str(), s)).collect();
        let generation = record.intent_generation;
        let work: Vec<Work<'_>> = record
            .spec
            .switches
            .iter()
            .map(|spec| {
                let os = crate::network::model::os(spec.os);
                let name = spec.name.as_str();
                Work {
                    fabric_id,
                    spec,
                    want: desired
                        .get(name)
                        .cloned()
                        .unwrap_or_else(|| Arc::new(SwitchConfig::new(os))),
                    have: applied.get(name).map(|c| &**c),
                    state: by_name.get(name).map(|s| (*s).clone()),
                    generation,
                }
            })
            .collect();
        let mut report = PassReport::default();
        // Unmanaged switches need no device: no thread each.
        let (unmanaged, managed): (Vec<_>, Vec<_>) =
            work.into_iter().partition(|w| w.spec.management == SwitchManagement::None);
        for w in &unmanaged {
            report.add(self.converge_switch(store, secrets, w));
        }
        for chunk in managed.chunks(PARALLEL_SWITCHES) {
            let outcomes: Vec<PassReport> = std::thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|w| s.spawn(move || self.converge_switch(store, secrets, w)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or(PassReport { failed: 1, ..Default::default() }))
                    .collect()
            });
            for o in outcomes {
                report.add(o);
            }
        }
        Ok(report)
    }

    fn converge_switch(&self, store: &Store, secrets: &SecretBox, w: &Work<'_>) -> PassReport {
        match self.try_converge(store, secrets, w) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(switch = %w.spec.name, error = %e, "fabric controller: switch step failed");
                PassReport { failed: 1, ..Default::default() }
            }
        }
    }

    fn try_converge(&self, store: &Store, secrets: &SecretBox, w: &Work<'_>) -> Result<PassReport> {
        let name = w.spec.name.as_str();
        if w.spec.management == SwitchManagement::None {
            if w.state.as_ref().map(|s| s.state.as_str()) != Some("unmanaged") {
                store
                    .write(|tx| fabrics::record_status(tx, w.fabric_id, name, "unmanaged", None))?;
            }
            return Ok(PassReport::default());
        }
        let driver = match self.drivers.get(w.fabric_id, w.spec, secrets) {
            Ok(d) => d,
            Err(e) => return self.failed(store, w, &e.to_string()),
        };
        let have = w.have.cloned().unwrap_or_else(|| SwitchConfig::new(w.want.os));
        let behind = w.state.as_ref().is_none_or(|s| s.applied_generation < w.generation);
        if have != *w.want {
            return self.push(store, w, driver.as_ref(), &have, "switch_apply");
        }
        if behind {
            // Nothing of this switch changed: it holds the new generation's
            // plan already.
            store.write(|tx| {
                fabrics::record_applied(
                    tx,
                    w.fabric_id,
                    name,
                    &to_json(&w.want)?,
                    w.generation,
                    "in_sync",
                )
            })?;
            return Ok(PassReport::default());
        }
        if !self.due(w.fabric_id, name) {
            return Ok(PassReport::default());
        }
        let checked = match driver.check(&have) {
            Ok(c) => c,
            Err(e) => return self.failed(store, w, &e.to_string()),
        };
        if checked.generation.is_some_and(|g| g > w.generation as u64) {
            // Another replica pushed a newer plan; our store read is behind.
            return Ok(PassReport::default());
        }
        if checked.drift.is_empty() {
            if w.state.as_ref().map(|s| s.state.as_str()) != Some("in_sync") {
                store.write(|tx| fabrics::record_status(tx, w.fabric_id, name, "in_sync", None))?;
            }
            return Ok(PassReport::default());
        }
        let detail: Vec<String> =
            checked.drift.iter().map(|d| format!("{:?}: {}", d.object, d.detail)).collect();
        tracing::warn!(switch = %name, drift = %detail.join("; "), "switch drifted from its configuration: repairing");
        store.write(|tx| {
            fabrics::record_status(tx, w.fabric_id, name, "drift", Some(&detail.join("; ")))
        })?;
        // What the device really has: what it was given, less what drifted.
        let mut observed = have.clone();
        for d in &checked.drift {
            observed.objects.remove(&d.object);
        }
        let mut r = self.push(store, w, driver.as_ref(), &observed, "switch_repair")?;
        if r.pushed == 1 {
            r.pushed = 0;
            r.repaired = 1;
        }
        Ok(r)
    }

    /// What each switch was last given (as `network::plan::applied`), parsing only the
    /// stored configurations that changed since the last pass.
    fn applied_configs(
        &self,
        fabric_id: &str,
        states: &[SwitchState],
    ) -> Result<HashMap<String, Arc<SwitchConfig>>> {
        let mut cache = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        let present: std::collections::HashSet<&str> =
            states.iter().map(|s| s.switch.as_str()).collect();
        cache.retain(|(f, sw), _| f != fabric_id || present.contains(sw.as_str()));
        let mut out = HashMap::new();
        for s in states {
            let Some(json) = &s.applied else { continue };
            let key = (fabric_id.to_string(), s.switch.clone());
            let cfg = match cache.get(&key) {
                Some((was, cfg)) if was == json => cfg.clone(),
                _ => {
                    let cfg = Arc::new(crate::network::plan::parse_applied(&s.switch, json)?);
                    cache.insert(key, (json.clone(), cfg.clone()));
                    cfg
                }
            };
            out.insert(s.switch.clone(), cfg);
        }
        Ok(out)
    }

    /// Whether the target's periodic check is due (and, if so, notes it).
    fn due(&self, fabric_id: &str, target: &str) -> bool {
        let key = (fabric_id.to_string(), target.to_string());
        let mut last = self.last_check.lock().unwrap_or_else(|p| p.into_inner());
        match last.get(&key) {
            Some(t) if t.elapsed() < self.check_interval => false,
            _ => {
                last.insert(key, Instant::now());
                true
            }
        }
    }

    /// Checks every switch at the next pass (tests, operators).
    pub fn check_now(&self) {
        self.last_check.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.wake.notify_one();
    }

    fn push(
        &self,
        store: &Store,
        w: &Work<'_>,
        driver: &dyn SwitchDriver,
        actual: &SwitchConfig,
        action: &str,
    ) -> Result<PassReport> {
        let name = w.spec.name.as_str();
        let apply =
            Apply { actual, desired: &w.want, generation: w.generation as u64, dry_run: false };
        match driver.apply(&apply) {
            Ok(done) => {
                tracing::info!(switch = %name, generation = w.generation, steps = done.steps.len(), "switch configured");
                store.write(|tx| {
                    let recorded = fabrics::record_applied(
                        tx,
                        w.fabric_id,
                        name,
                        &to_json(&w.want)?,
                        w.generation,
                        "in_sync",
                    )?;
                    let target = Target {
                        owner: &self.owner,
                        fabric_id: w.fabric_id,
                        kind: "switches",
                        name: w.spec.name.as_str(),
                    };
                    audit(tx, &target, action, if recorded { "success" } else { "superseded" })
                })?;
                self.last_check
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert((w.fabric_id.to_string(), name.to_string()), Instant::now());
                Ok(PassReport { pushed: 1, ..Default::default() })
            }
            Err(DriverError::Stale { device, offered }) => {
                // A newer plan reached the switch first: ours is outdated.
                tracing::info!(switch = %name, device, offered, "switch holds a newer generation");
                Ok(PassReport::default())
            }
            Err(e) => self.failed(store, w, &e.to_string()),
        }
    }

    fn failed(&self, store: &Store, w: &Work<'_>, message: &str) -> Result<PassReport> {
        let target = Target {
            owner: &self.owner,
            fabric_id: w.fabric_id,
            kind: "switches",
            name: w.spec.name.as_str(),
        };
        failed(store, &target, w.state.as_ref(), "switch_apply", message)
    }
}

struct Work<'a> {
    fabric_id: &'a str,
    spec: &'a SwitchSpec,
    /// Shared with the kept plan.
    want: Arc<SwitchConfig>,
    have: Option<&'a SwitchConfig>,
    state: Option<SwitchState>,
    generation: i64,
}

fn to_json(c: &SwitchConfig) -> Result<String> {
    serde_json::to_string(c).map_err(|e| Error::internal(format!("switch config: {e}")))
}

/// What a push goes to: a switch, or an InfiniBand subnet's manager.
struct Target<'a> {
    /// The controller acting.
    owner: &'a str,
    fabric_id: &'a str,
    /// The path segment: `switches` or `subnet-manager`.
    kind: &'a str,
    name: &'a str,
}

/// Records a failed apply or check; audited when the failure is new.
fn failed(
    store: &Store,
    t: &Target<'_>,
    was: Option<&SwitchState>,
    action: &str,
    message: &str,
) -> Result<PassReport> {
    tracing::warn!(fabric = %t.fabric_id, target = %t.name, error = %message, "apply failed");
    let was = was.map(|s| (s.state.clone(), s.message.clone()));
    let changed = was != Some(("error".to_string(), Some(message.to_string())));
    store.write(|tx| {
        fabrics::record_status(tx, t.fabric_id, t.name, "error", Some(message))?;
        match changed {
            true => audit(tx, t, action, "failure"),
            false => Ok(()),
        }
    })?;
    Ok(PassReport { failed: 1, ..Default::default() })
}

fn audit(
    tx: &mut dyn neocloud_store::Writer,
    t: &Target<'_>,
    action: &str,
    outcome: &str,
) -> Result<()> {
    let target = match t.kind {
        "switches" => format!("/v1/fabrics/{}/switches/{}", t.fabric_id, t.name),
        _ => format!("/v1/fabrics/{}/{}", t.fabric_id, t.kind),
    };
    audit::append(
        tx,
        audit::PROVIDER_CHAIN,
        &audit::NewEvent {
            time: now_micros(),
            actor: "system".into(),
            actor_name: t.owner.to_string(),
            token_id: None,
            role: None,
            tenant_id: None,
            action: action.to_string(),
            target,
            outcome: outcome.into(),
            status: 200,
            request_id: neocloud_common::new_id(),
        },
    )
    .map(|_| ())
}
