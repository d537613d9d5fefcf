//! `--wait` for instances: until each is where it was asked to go (ready,
//! released) or cannot get there (the polling itself is
//! [`crate::commands::wait`]).

use super::{instance_path, instances_path};
use crate::client::Client;
use crate::commands::inventory::InProject;
use crate::commands::wait::{self, one_line, Verdict, Waited, Watched};
use crate::output::{self, parse, CliError};
use neocloud_types::{Instance, InstanceState, List};
use serde_json::Value;
use std::time::Duration;

fn reason_or(i: &Instance, default: &str) -> String {
    i.reason.clone().filter(|r| !r.is_empty()).unwrap_or_else(|| default.to_string())
}

/// `instance create --wait`: ready, or failed.
pub(super) fn created_verdict(i: &Instance) -> Verdict {
    match i.state {
        InstanceState::Ready => Verdict::Done,
        InstanceState::Failed => Verdict::Failed(reason_or(i, "failed")),
        InstanceState::Releasing | InstanceState::Released => {
            Verdict::Failed(format!("{} before it was ready", i.state.as_str()))
        }
        InstanceState::Pending | InstanceState::Provisioning => Verdict::Waiting,
    }
}

/// `instance rebuild --wait`: as a create, once the controller took the
/// rebuild up (until then the instance still reads ready).
pub(super) fn rebuilt_verdict(i: &Instance) -> Verdict {
    match &i.rebuild_image_id {
        Some(_) => Verdict::Waiting,
        None => created_verdict(i),
    }
}

/// `instance release --wait`: released, or failed. A failed instance
/// stays `failed` until the controller starts its release, so `failed`
/// counts only once it has moved. A release that fails leaves the instance
/// `releasing` with a reason: the node is failed and waits for the
/// provider, so that ends the wait too.
pub(super) struct ReleaseWatch {
    started_failed: bool,
    moved: bool,
}

impl ReleaseWatch {
    pub(super) fn new(first: &Instance) -> ReleaseWatch {
        ReleaseWatch { started_failed: first.state == InstanceState::Failed, moved: false }
    }

    pub(super) fn verdict(&mut self, i: &Instance) -> Verdict {
        match i.state {
            InstanceState::Released => Verdict::Done,
            InstanceState::Failed if self.started_failed && !self.moved => Verdict::Waiting,
            InstanceState::Failed => Verdict::Failed(reason_or(i, "failed")),
            InstanceState::Releasing if i.reason.as_deref().is_some_and(|r| !r.is_empty()) => {
                self.moved = true;
                Verdict::Failed(format!(
                    "the release stalled: {} (the provider must repair the node and inspect it again)",
                    reason_or(i, "")
                ))
            }
            InstanceState::Pending
            | InstanceState::Provisioning
            | InstanceState::Ready
            | InstanceState::Releasing => {
                self.moved = true;
                Verdict::Waiting
            }
        }
    }
}

/// One line per change: `job-0: provisioning (power_cycle 1/3)`, with the
/// reason when there is one.
fn progress_line(i: &Instance) -> String {
    let mut s = format!("{}: {}", i.name, i.state.as_str());
    if let Some(p) = &i.progress {
        s.push_str(&format!(" ({})", output::step(p)));
    }
    if let Some(r) = i.reason.as_deref().filter(|r| !r.is_empty()) {
        s.push_str(&format!(": {r}"));
    }
    one_line(&s)
}

impl Watched for Instance {
    fn id(&self) -> &str {
        &self.id
    }

    fn label(&self) -> String {
        self.name.clone()
    }

    fn progress_line(&self) -> String {
        progress_line(self)
    }
}

/// Polls the instances until none is [`Verdict::Waiting`] or the time runs
/// out, printing each change of state, step or reason to stderr.
pub(super) fn wait_for(
    c: &Client,
    at: &InProject,
    first: Vec<Value>,
    timeout: Duration,
    verdict: impl FnMut(&Instance) -> Verdict,
) -> Result<Waited, CliError> {
    wait::wait_for(first, timeout, |ids| poll(c, at, ids), verdict)
}

/// The instances by id (by name they are not found once released): one
/// GET for one, else the project's list.
fn poll(c: &Client, at: &InProject, ids: &[String]) -> Result<Vec<Value>, CliError> {
    if let [id] = ids {
        return Ok(vec![c.get(&instance_path(at, id), &[])?]);
    }
    let v = c.get(&instances_path(at), &[])?;
    let all: List<Value> = parse(&v)?;
    ids.iter()
        .map(|id| {
            all.items.iter().find(|x| x["id"] == id.as_str()).cloned().ok_or_else(|| {
                CliError::Other(format!("instance {id} is no longer listed by the server"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Table;
    use neocloud_types::Progress;

    fn instance(state: InstanceState, reason: Option<&str>) -> Instance {
        Instance {
            id: "i-1".into(),
            name: "job-0".into(),
            tenant_id: "t".into(),
            project_id: "p".into(),
            instance_type_id: "bm".into(),
            image_id: "img".into(),
            allocation_id: "a".into(),
            node_id: "n".into(),
            state,
            release_requested: false,
            reason: reason.map(str::to_string),
            progress: None,
            health: None,
            power: None,
            rebuild_image_id: None,
            hardware_health: None,
            hardware_faults: vec![],
            replacements: 0,
            ssh_keys: vec![],
            generation: 1,
            created_at: "2026-01-02T03:04:05.000001Z".into(),
            updated_at: "2026-01-02T03:04:05.000001Z".into(),
        }
    }

    #[test]
    fn the_health_cell_shows_the_bmcs_word_where_it_is_not_ok() {
        let mut i = instance(InstanceState::Ready, None);
        let cell = |i: &Instance| crate::output::Row::cells(i)[4].clone();
        assert_eq!(cell(&i), "-");
        i.health = Some("degraded: GPU 0 lost".into());
        i.hardware_health = Some("OK".into());
        assert_eq!(cell(&i), "degraded");
        i.hardware_health = Some("Critical".into());
        assert_eq!(cell(&i), "degraded (BMC Critical)");
        i.health = None;
        assert_eq!(cell(&i), "- (BMC Critical)");
        // The part it names (all of them in the JSON).
        i.hardware_faults = vec!["GPU_SXM_3 Critical".into()];
        assert_eq!(cell(&i), "- (BMC Critical GPU_SXM_3)");
        i.hardware_faults.push("GPU_SXM_5 Warning".into());
        assert_eq!(cell(&i), "- (BMC Critical GPU_SXM_3 +1)");
    }

    #[test]
    fn progress_lines_and_table() {
        let mut i = instance(InstanceState::Provisioning, None);
        i.progress = Some(Progress {
            step: "power_cycle".into(),
            done: 1,
            total: 3,
            since: "2026-01-02T03:04:05Z".into(),
        });
        assert_eq!(progress_line(&i), "job-0: provisioning (power_cycle 1/3)");
        let f = instance(InstanceState::Failed, Some("no BMC\nrecorded"));
        assert_eq!(progress_line(&f), "job-0: failed: no BMC recorded");
        let mut t = Table::new(<Instance as output::Row>::HEADER);
        t.row(output::Row::cells(&i));
        let out = t.render();
        assert!(
            out.starts_with("NAME   ID   STATE         STEP             HEALTH  NODE  REASON  AGE"),
            "{out}"
        );
        assert!(out.contains("power_cycle 1/3"), "{out}");
    }

    #[test]
    fn verdicts() {
        use InstanceState::*;
        assert_eq!(created_verdict(&instance(Pending, None)), Verdict::Waiting);
        assert_eq!(created_verdict(&instance(Provisioning, None)), Verdict::Waiting);
        assert_eq!(created_verdict(&instance(Ready, None)), Verdict::Done);
        assert_eq!(
            created_verdict(&instance(Failed, Some("no BMC"))),
            Verdict::Failed("no BMC".into())
        );
        assert!(matches!(created_verdict(&instance(Released, None)), Verdict::Failed(_)));

        // A rebuild: ready until the controller takes it up.
        let mut asked = instance(Ready, None);
        asked.rebuild_image_id = Some("img-2".into());
        assert_eq!(rebuilt_verdict(&asked), Verdict::Waiting);
        assert_eq!(rebuilt_verdict(&instance(Provisioning, None)), Verdict::Waiting);
        assert_eq!(rebuilt_verdict(&instance(Ready, None)), Verdict::Done);

        // Released from ready: releasing, then released.
        let mut w = ReleaseWatch::new(&instance(Ready, None));
        assert_eq!(w.verdict(&instance(Releasing, None)), Verdict::Waiting);
        assert_eq!(w.verdict(&instance(Released, None)), Verdict::Done);
        // Released from failed: `failed` until the controller starts it.
        let failed = instance(Failed, Some("no BMC"));
        let mut w = ReleaseWatch::new(&failed);
        assert_eq!(w.verdict(&failed), Verdict::Waiting);
        assert_eq!(w.verdict(&instance(Releasing, None)), Verdict::Waiting);
        assert!(matches!(w.verdict(&failed), Verdict::Failed(_)));
        // A release that failed: `releasing` with a reason.
        let mut w = ReleaseWatch::new(&instance(Ready, None));
        let Verdict::Failed(why) = w.verdict(&instance(Releasing, Some("BMC gone"))) else {
            panic!("a stalled release ends the wait")
        };
        assert!(why.contains("stalled: BMC gone"), "{why}");
    }
}
