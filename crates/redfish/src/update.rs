//! Firmware updates over the BMC: the firmware inventory,
//! `UpdateService.SimpleUpdate` (the BMC fetches the image from a URL), the
//! task it starts (DSP0268 `Task`), polled until it ends, and the reset
//! its task may say the update needs to take effect (the Base registry's
//! `ResetRequired`: an AC power cycle of a chassis, a restart of the BMC).

use crate::client::{Answer, Bmc};
use crate::error::{RedfishError, Result};
use crate::ops::{members, Firmware};
use serde_json::{json, Value};

/// The firmware inventory collection (DSP0268: fixed under the update
/// service).
const FIRMWARE_INVENTORY: &str = "/redfish/v1/UpdateService/FirmwareInventory";

/// The task collection (DSP0268: fixed under the task service).
const TASKS: &str = "/redfish/v1/TaskService/Tasks";

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
    /// The resets its messages say are required for what it did to take
    /// effect (`ResetRequired`), in order, each once.
    pub resets: Vec<RequiredReset>,
    /// The request that started it (`Payload`: `TargetUri`, then
    /// `JsonBody`), where the BMC keeps it.
    pub payload: Option<(String, String)>,
}

/// A reset a BMC says is required for a change to take effect (DSP0268
/// Base registry `ResetRequired`, its `MessageArgs`: the reset action's
/// URI and the `ResetType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredReset {
    /// The reset action's path on the BMC.
    pub action: String,
    pub reset_type: String,
}

/// What a required reset resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetScope {
    /// `ComputerSystem.Reset`: a host.
    System,
    /// `Chassis.Reset`: a chassis (an AC power cycle of what it holds).
    Chassis,
    /// `Manager.Reset`: a BMC.
    Manager,
}

impl RequiredReset {
    /// What the action resets; `None` for one that is not a reset action
    /// of this BMC's (another host, not an `…/Actions/*.Reset`, a
    /// `ResetType` that is not one word): never sent.
    pub fn scope(&self) -> Option<ResetScope> {
        let word = !self.reset_type.is_empty()
            && self.reset_type.chars().all(|c| c.is_ascii_alphanumeric());
        if !word || !self.action.starts_with("/redfish/v1/") || self.action.contains("..") {
            return None;
        }
        let (_, action) = self.action.rsplit_once("/Actions/")?;
        match action {
            "ComputerSystem.Reset" => Some(ResetScope::System),
            "Chassis.Reset" => Some(ResetScope::Chassis),
            "Manager.Reset" => Some(ResetScope::Manager),
            _ => None,
        }
    }

    /// The resource it resets (the action's path up to `/Actions/`).
    pub fn resource(&self) -> &str {
        self.action.rsplit_once("/Actions/").map(|(r, _)| r).unwrap_or(&self.action)
    }
}

impl std::fmt::Display for RequiredReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.action, self.reset_type)
    }
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
        let mut resets: Vec<RequiredReset> = Vec::new();
        for m in v["Messages"].as_array().into_iter().flatten() {
            let id = m["MessageId"].as_str().unwrap_or("");
            if id.rsplit('.').next() != Some("ResetRequired") {
                continue;
            }
            let args: Vec<&str> = m["MessageArgs"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let [action, reset_type] = args.as_slice() {
                let r =
                    RequiredReset { action: path_of(action), reset_type: reset_type.to_string() };
                if !resets.contains(&r) {
                    resets.push(r);
                }
            }
        }
        let percent = v["PercentComplete"].as_u64().map(|p| p.min(100) as u32);
        let p = &v["Payload"];
        let payload = p["TargetUri"].as_str().map(|target| {
            let body = match &p["JsonBody"] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (path_of(target), body)
        });
        Task { progress, state, percent, messages, resets, payload }
    }

    /// Whether it is an upload (to the update service, not its
    /// `SimpleUpdate`), by its payload; `None` where the BMC kept none.
    pub fn uploads(&self) -> Option<bool> {
        let (uri, _) = self.payload.as_ref()?;
        Some(uri.contains("/UpdateService") && !uri.ends_with("/UpdateService.SimpleUpdate"))
    }

    /// Whether it is a `SimpleUpdate` of `targets` from `image`, by its
    /// payload; `None` where the BMC kept none.
    pub fn updates(&self, image: &str, targets: &[&str]) -> Option<bool> {
        let (uri, body) = self.payload.as_ref()?;
        let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let named: Vec<&str> = body["Targets"]
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        Some(
            uri.ends_with("/UpdateService.SimpleUpdate")
                && body["ImageURI"].as_str() == Some(image)
                && targets.iter().all(|t| named.contains(t)),
        )
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
        Ok(task_in(a))
    }

    /// Uploads an image (`len` bytes read from `image`, named `filename`)
    /// to the BMC for `targets`: DSP0268 `MultipartHttpPushUri`, a
    /// `multipart/form-data` POST of the `UpdateParameters` JSON part
    /// (`Targets`) and the `UpdateFile` part, for a BMC that cannot fetch
    /// the image itself. Sent once, within `timeout` (a streamed body is
    /// not sent again). The task it started, as [`Self::simple_update`].
    pub fn push_update(
        &self,
        image: impl std::io::Read,
        len: u64,
        filename: &str,
        targets: &[&str],
        timeout: std::time::Duration,
    ) -> Result<Option<String>> {
        use std::io::{Cursor, Read};
        let service = self.get("/redfish/v1/UpdateService")?;
        let Some(uri) = service["MultipartHttpPushUri"].as_str() else {
            return Err(RedfishError::Unsupported(
                "UpdateService.MultipartHttpPushUri (the update service lists none)".into(),
            ));
        };
        let b = format!("neocloud{}", neocloud_common::new_id().replace('-', ""));
        let params = json!({"Targets": targets}).to_string();
        let name: String =
            filename.chars().filter(|c| !matches!(c, '"' | '\\' | '\r' | '\n')).collect();
        let head = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"UpdateParameters\"\r\n\
             Content-Type: application/json\r\n\r\n{params}\r\n--{b}\r\n\
             Content-Disposition: form-data; name=\"UpdateFile\"; filename=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        );
        let tail = format!("\r\n--{b}--\r\n");
        let total = head.len() as u64 + len + tail.len() as u64;
        let body = Cursor::new(head).chain(image.take(len)).chain(Cursor::new(tail));
        let content_type = format!("multipart/form-data; boundary={b}");
        let a = self.upload(&path_of(uri), &content_type, body, total, timeout)?;
        Ok(task_in(a))
    }

    /// Sends a reset a BMC said is required ([`RequiredReset`]), at most
    /// once (not again after a timeout or a lost answer: the BMC may have
    /// done it, and an AC power cycle sent twice cuts the power twice).
    /// Refused, unsent, for an action that is not one of this BMC's resets.
    pub fn required_reset(&self, r: &RequiredReset) -> Result<()> {
        if r.scope().is_none() {
            return Err(RedfishError::Unsupported(format!("the required reset {r}")));
        }
        let body = json!({"ResetType": r.reset_type});
        self.request_at_most_once("POST", &r.action, Some(&body)).map(|_| ())
    }

    /// The BMC's tasks (their paths, as its collection lists them); none
    /// where it has no task collection.
    pub fn tasks(&self) -> Result<Vec<String>> {
        Ok(self.get_optional(TASKS)?.map(|v| members(&v)).unwrap_or_default())
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

/// The task an update's answer names: a `Task` body, or a `Location`.
fn task_in(a: Answer) -> Option<String> {
    let from_body = a.body["@odata.id"]
        .as_str()
        .filter(|_| a.body.get("TaskState").is_some())
        .map(str::to_string);
    from_body.or_else(|| a.location.map(|l| task_of(&l)))
}

/// The task behind a `Location`: a task monitor (`…/Tasks/{id}/Monitor`,
/// which answers with the operation's result once done) is read as its
/// task; an absolute URL as its path.
fn task_of(location: &str) -> String {
    path_of(location).trim_end_matches("/Monitor").to_string()
}

/// A BMC URI's path (an absolute URL's, or as it is), without a trailing
/// `/`.
fn path_of(uri: &str) -> String {
    crate::client::path_of(uri).trim_end_matches('/').to_string()
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
    fn a_task_says_what_started_it() {
        let body = json!({"ImageURI": "http://fw/b.bin", "Targets": ["/redfish/v1/UpdateService/FirmwareInventory/BIOS"]});
        let t = Task::read(&json!({"TaskState": "Running", "Payload": {
            "HttpOperation": "POST",
            "TargetUri": "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
            "JsonBody": body.to_string()}}));
        let bios = "/redfish/v1/UpdateService/FirmwareInventory/BIOS";
        assert_eq!(t.updates("http://fw/b.bin", &[bios]), Some(true));
        assert_eq!(t.updates("http://fw/other.bin", &[bios]), Some(false));
        assert_eq!(
            t.updates("http://fw/b.bin", &["/redfish/v1/UpdateService/FirmwareInventory/BMC"]),
            Some(false)
        );
        // A body kept as an object reads the same.
        let t = Task::read(&json!({"TaskState": "Running", "Payload": {
            "TargetUri": "https://10.0.0.9/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
            "JsonBody": body}}));
        assert_eq!(t.updates("http://fw/b.bin", &[bios]), Some(true));
        let t = Task::read(&json!({"TaskState": "Running"}));
        assert_eq!(t.updates("http://fw/b.bin", &[bios]), None, "no payload kept");
    }

    #[test]
    fn a_task_says_which_resets_it_needs() {
        let t = Task::read(&json!({"TaskState": "Completed", "TaskStatus": "OK", "Messages": [
            {"MessageId": "Update.1.0.UpdateSuccessful", "MessageArgs": ["HGX_FW_GPU_SXM_1"]},
            {"MessageId": "Base.1.16.0.ResetRequired",
             "MessageArgs": ["https://10.0.0.9/redfish/v1/Chassis/DGX/Actions/Chassis.Reset", "PowerCycle"]},
            {"MessageId": "Base.1.16.0.ResetRequired",
             "MessageArgs": ["/redfish/v1/Chassis/DGX/Actions/Chassis.Reset", "PowerCycle"]},
            {"MessageId": "Base.1.11.ResetRequired", "MessageArgs": ["/redfish/v1/Managers/bmc"]},
            {"MessageId": "Base.1.16.0.ResetRecommended",
             "MessageArgs": ["/redfish/v1/Managers/bmc/Actions/Manager.Reset", "GracefulRestart"]}
        ]}));
        let chassis = RequiredReset {
            action: "/redfish/v1/Chassis/DGX/Actions/Chassis.Reset".into(),
            reset_type: "PowerCycle".into(),
        };
        assert_eq!(
            t.resets,
            std::slice::from_ref(&chassis),
            "one each, required ones with both arguments"
        );
        assert_eq!(chassis.scope(), Some(ResetScope::Chassis));
        assert_eq!(chassis.resource(), "/redfish/v1/Chassis/DGX");
        let r = |action: &str, t: &str| {
            RequiredReset { action: action.into(), reset_type: t.into() }.scope()
        };
        assert_eq!(
            r("/redfish/v1/Managers/bmc/Actions/Manager.Reset", "ForceRestart"),
            Some(ResetScope::Manager)
        );
        assert_eq!(
            r("/redfish/v1/Systems/s/Actions/ComputerSystem.Reset", "ForceRestart"),
            Some(ResetScope::System)
        );
        assert_eq!(r("/redfish/v1/Chassis/DGX/Actions/Chassis.Reset", "Power Cycle"), None);
        assert_eq!(r("/redfish/v1/Chassis/DGX/Actions/Chassis.Reset", ""), None);
        assert_eq!(r("/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate", "On"), None);
        assert_eq!(r("/other/Actions/Chassis.Reset", "PowerCycle"), None);
        assert_eq!(r("/redfish/v1/../x/Actions/Chassis.Reset", "PowerCycle"), None);
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
