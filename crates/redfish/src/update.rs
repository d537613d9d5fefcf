//! Firmware updates over the BMC: the firmware inventory,
//! `UpdateService.SimpleUpdate` (the BMC fetches the image from a URL) and
//! the task it starts (DSP0268 `Task`), polled until it ends.

use crate::client::Bmc;
use crate::error::{RedfishError, Result};
use crate::ops::{members, Firmware};
use serde_json::{json, Value};

/// The firmware inventory collection (DSP0268: fixed under the update
/// service).
const FIRMWARE_INVENTORY: &str = "/redfish/v1/UpdateService/FirmwareInventory";

/// Where a BMC task stands, as far as waiting for it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskProgress {
    /// `New`, `Starting`, `Running`, `Pending`, `Stopping`, `Suspended`,
    /// `Interrupted`, `Service`, `Cancelling` (and states a later schema
    /// adds): still to wait for.
    Running,
    /// `Completed` with a `TaskStatus` other than `Critical`.
    Completed,
    /// `Exception`, `Killed`, `Cancelled`, or `Completed` with `TaskStatus`
    /// `Critical`.
    Failed,
}

/// A BMC task, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub progress: TaskProgress,
    /// `TaskState` as the BMC wrote it.
    pub state: String,
    /// `PercentComplete`, where reported.
    pub percent: Option<u32>,
    /// The `Messages` the BMC attached, in order.
    pub messages: Vec<String>,
}

impl Task {
    pub(crate) fn read(v: &Value) -> Task {
        let state = v["TaskState"].as_str().unwrap_or("").to_string();
        let status = v["TaskStatus"].as_str().unwrap_or("");
        let progress = match state.as_str() {
            "Completed" if status == "Critical" => TaskProgress::Failed,
            "Completed" => TaskProgress::Completed,
            "Exception" | "Killed" | "Cancelled" => TaskProgress::Failed,
            _ => TaskProgress::Running,
        };
        let messages = v["Messages"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|x| x["Message"].as_str().or_else(|| x["MessageId"].as_str()))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let percent = v["PercentComplete"].as_u64().map(|p| p.min(100) as u32);
        Task { progress, state, percent, messages }
    }
}

impl Bmc {
    /// The firmware inventory: each component's id, name, version and
    /// path. Members are read on the slow lane (slow on real BMCs); one
    /// that cannot be read is left out. A BMC without one: empty.
    pub fn firmware(&self) -> Result<Vec<Firmware>> {
        let mut out = Vec::new();
        if let Some(fw) = self.get_optional(FIRMWARE_INVENTORY)? {
            for path in members(&fw) {
                if let Ok(v) = self.slow_get(&path) {
                    out.push(Firmware {
                        id: v["Id"].as_str().unwrap_or("").to_string(),
                        name: v["Name"].as_str().unwrap_or("").to_string(),
                        version: v["Version"].as_str().unwrap_or("").to_string(),
                        path,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Asks the BMC to update `targets` (firmware inventory paths) from
    /// `image` (a URL it fetches). The path of the task it started, where
    /// its answer names one (a `Task` body, or a `Location`; a task
    /// monitor's is read as its task's); `None` where it names none.
    pub fn simple_update(&self, image: &str, targets: &[&str]) -> Result<Option<String>> {
        let service = self.get("/redfish/v1/UpdateService")?;
        let action = &service["Actions"]["#UpdateService.SimpleUpdate"];
        let Some(target) = action["target"].as_str() else {
            return Err(RedfishError::Unsupported(
                "UpdateService.SimpleUpdate (the update service lists no such action)".into(),
            ));
        };
        let mut body = json!({"ImageURI": image, "Targets": targets});
        // `TransferProtocol` only where the BMC lists the values it takes
        // (newer services read the scheme from the URI and may refuse it).
        let scheme = image.split("://").next().unwrap_or("").to_ascii_uppercase();
        if let Some(allowed) = action["TransferProtocol@Redfish.AllowableValues"].as_array() {
            if allowed.iter().any(|a| a.as_str() == Some(scheme.as_str())) {
                body["TransferProtocol"] = json!(scheme);
            }
        }
        let a = self.request("POST", target, Some(&body))?;
        let from_body = a.body["@odata.id"]
            .as_str()
            .filter(|_| a.body.get("TaskState").is_some())
            .map(str::to_string);
        Ok(from_body.or_else(|| a.location.map(|l| task_of(&l))))
    }

    /// Reads a task.
    pub fn task(&self, path: &str) -> Result<Task> {
        let v = self.get(path)?;
        if v.get("TaskState").is_none() {
            return Err(RedfishError::Protocol(format!("{path}: no TaskState in the task")));
        }
        Ok(Task::read(&v))
    }
}

/// The task behind a `Location`: a task monitor (`…/Tasks/{id}/Monitor`,
/// which answers with the operation's result once done) is read as its
/// task; an absolute URL as its path.
fn task_of(location: &str) -> String {
    let path = match location.split_once("://") {
        Some((_, rest)) => rest.find('/').map(|i| &rest[i..]).unwrap_or("/"),
        None => location,
    };
    path.trim_end_matches('/').trim_end_matches("/Monitor").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_states_read_as_progress() {
        let t = |state: &str, status: &str| {
            Task::read(&json!({"TaskState": state, "TaskStatus": status})).progress
        };
        assert_eq!(t("Running", "OK"), TaskProgress::Running);
        assert_eq!(t("New", "OK"), TaskProgress::Running);
        assert_eq!(t("SomethingNew", "OK"), TaskProgress::Running);
        assert_eq!(t("Completed", "OK"), TaskProgress::Completed);
        assert_eq!(t("Completed", "Warning"), TaskProgress::Completed);
        assert_eq!(t("Completed", "Critical"), TaskProgress::Failed);
        assert_eq!(t("Exception", "Critical"), TaskProgress::Failed);
        assert_eq!(t("Killed", "OK"), TaskProgress::Failed);
        assert_eq!(t("Cancelled", "OK"), TaskProgress::Failed);
        let task = Task::read(&json!({"TaskState": "Exception", "PercentComplete": 140,
            "Messages": [{"Message": "image download failed"}, {"MessageId": "Update.1.0.ApplyFailed"}]}));
        assert_eq!(task.percent, Some(100));
        assert_eq!(task.messages, ["image download failed", "Update.1.0.ApplyFailed"]);
    }

    #[test]
    fn a_location_names_its_task() {
        assert_eq!(task_of("/redfish/v1/TaskService/Tasks/42"), "/redfish/v1/TaskService/Tasks/42");
        assert_eq!(
            task_of("/redfish/v1/TaskService/Tasks/5/Monitor"),
            "/redfish/v1/TaskService/Tasks/5"
        );
        assert_eq!(
            task_of("https://10.0.0.9/redfish/v1/TaskService/Tasks/7/"),
            "/redfish/v1/TaskService/Tasks/7"
        );
    }
}
