//! Redfish operations over a [`Bmc`]: discovery, power, boot override,
//! virtual media and inventory. Resource ids are always discovered from
//! collections, never assumed.

use crate::client::Bmc;
use crate::error::{RedfishError, Result};
use crate::health::{is_critical, rollup_of, Health};
use crate::security::{BmcAccount, SecureBoot};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub(crate) fn members(v: &Value) -> Vec<String> {
    ids_in(&v["Members"])
}

/// The resource paths an array of links (`[{"@odata.id": ...}]`) names:
/// a collection's `Members`, a resource's `Links.ManagedBy`.
pub(crate) fn ids_in(links: &Value) -> Vec<String> {
    links
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|x| {
                    x["@odata.id"].as_str().map(|s| s.trim_end_matches('/').to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn last_segment(path: &str) -> String {
    path.trim_end_matches('/').rsplit('/').next().unwrap_or("").to_string()
}

pub(crate) fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or("").to_string()
}

/// The `AllowableValues` of the parameter `name` of an `ActionInfo`
/// resource (`Parameters[]`); empty where it lists none.
fn allowable_values(action_info: &Value, name: &str) -> Vec<String> {
    action_info["Parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["Name"].as_str() == Some(name))
        .flat_map(|p| p["AllowableValues"].as_array().into_iter().flatten())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}

/// Power states Redfish reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PowerState {
    On,
    Off,
    PoweringOn,
    PoweringOff,
    Unknown,
}

impl PowerState {
    /// On, or on its way there: a reset restarts it, a power-off is
    /// needed to have it off.
    pub fn is_on(self) -> bool {
        match self {
            PowerState::On | PowerState::PoweringOn => true,
            PowerState::Off | PowerState::PoweringOff | PowerState::Unknown => false,
        }
    }

    fn parse(v: &str) -> PowerState {
        match v {
            "On" => PowerState::On,
            "Off" => PowerState::Off,
            "PoweringOn" => PowerState::PoweringOn,
            "PoweringOff" => PowerState::PoweringOff,
            _ => PowerState::Unknown,
        }
    }
}

/// `ComputerSystem.Reset` types neocloud uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResetType {
    On,
    ForceOff,
    GracefulShutdown,
    GracefulRestart,
    ForceRestart,
    PowerCycle,
}

impl ResetType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResetType::On => "On",
            ResetType::ForceOff => "ForceOff",
            ResetType::GracefulShutdown => "GracefulShutdown",
            ResetType::GracefulRestart => "GracefulRestart",
            ResetType::ForceRestart => "ForceRestart",
            ResetType::PowerCycle => "PowerCycle",
        }
    }
}

/// One-time boot targets neocloud uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BootTarget {
    Pxe,
    UefiHttp,
    Cd,
    Hdd,
}

impl BootTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            BootTarget::Pxe => "Pxe",
            BootTarget::UefiHttp => "UefiHttp",
            BootTarget::Cd => "Cd",
            BootTarget::Hdd => "Hdd",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemInfo {
    /// The system's resource path, e.g. `/redfish/v1/Systems/DGX`.
    pub path: String,
    pub id: String,
    pub uuid: String,
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
    pub power_state: PowerState,
    /// Reset types the BMC allows (empty: it does not say).
    pub reset_types: Vec<String>,
    pub boot_target: String,
    pub boot_enabled: String,
    pub boot_targets_allowed: Vec<String>,
    /// `Boot.HttpBootUri`: what a `UefiHttp` boot fetches, when set.
    pub http_boot_uri: Option<String>,
    /// `Status.HealthRollup` (else `Status.Health`): `OK`, `Warning`,
    /// `Critical`; `None` where the BMC says neither.
    #[serde(default)]
    pub health_rollup: Option<String>,
    /// The TPMs the BMC reports enabled (`TrustedModules`), by interface
    /// type (`TPM2_0`); the sanitizer must see each one to clear it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tpms: Vec<String>,
    /// The reset action's target as read (not serialized: a stored
    /// system's reset goes to the standard path).
    #[serde(skip)]
    pub reset_target: Option<String>,
}

impl SystemInfo {
    /// The system whose resource at `path` read `v`.
    fn read(path: &str, v: &Value) -> SystemInfo {
        let strings = |x: &Value| -> Vec<String> {
            x.as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        SystemInfo {
            path: path.to_string(),
            id: s(v, "Id"),
            uuid: s(v, "UUID"),
            manufacturer: s(v, "Manufacturer"),
            model: s(v, "Model"),
            serial: s(v, "SerialNumber"),
            power_state: PowerState::parse(v["PowerState"].as_str().unwrap_or("")),
            reset_types: strings(
                &v["Actions"]["#ComputerSystem.Reset"]["ResetType@Redfish.AllowableValues"],
            ),
            boot_target: s(&v["Boot"], "BootSourceOverrideTarget"),
            boot_enabled: s(&v["Boot"], "BootSourceOverrideEnabled"),
            http_boot_uri: v["Boot"]["HttpBootUri"]
                .as_str()
                .filter(|u| !u.is_empty())
                .map(str::to_string),
            boot_targets_allowed: strings(
                &v["Boot"]["BootSourceOverrideTarget@Redfish.AllowableValues"],
            ),
            health_rollup: rollup_of(v),
            tpms: v["TrustedModules"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| matches!(m["Status"]["State"].as_str(), None | Some("Enabled")))
                .map(|m| m["InterfaceType"].as_str().unwrap_or("TPM").to_string())
                .collect(),
            reset_target: v["Actions"]["#ComputerSystem.Reset"]["target"]
                .as_str()
                .map(str::to_string),
        }
    }

    /// Whether its health rollup is `Critical`.
    pub fn critical(&self) -> bool {
        self.health_rollup.as_deref().is_some_and(is_critical)
    }
}

/// A virtual media slot as read: what it holds and where its actions are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSlot {
    /// The slot's resource path.
    pub path: String,
    /// The image inserted, if any.
    pub image: Option<String>,
    insert_target: String,
    eject_target: String,
}

impl MediaSlot {
    fn read(path: &str, v: &Value) -> MediaSlot {
        let target = |action: &str| {
            v["Actions"][format!("#VirtualMedia.{action}")]["target"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{path}/Actions/VirtualMedia.{action}"))
        };
        let inserted = v["Inserted"].as_bool().unwrap_or(false);
        MediaSlot {
            path: path.to_string(),
            image: v["Image"].as_str().filter(|s| inserted && !s.is_empty()).map(str::to_string),
            insert_target: target("InsertMedia"),
            eject_target: target("EjectMedia"),
        }
    }
}

impl SystemInfo {
    /// Whether the next boot goes to `target`: a boot override to it is
    /// set, once or continuously. A one-time override is spent by the boot
    /// it caused (the BMC sets it back to `Disabled`).
    pub fn boots_to(&self, target: BootTarget) -> bool {
        self.boot_target == target.as_str()
            && matches!(self.boot_enabled.as_str(), "Once" | "Continuous")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpu {
    pub id: String,
    pub model: String,
    pub cores: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gpu {
    /// The processor's resource path (e.g. `.../HGX_Baseboard_0/Processors/GPU_SXM_1`).
    pub path: String,
    pub id: String,
    pub model: String,
    pub serial: String,
    pub uuid: String,
    pub memory_mib: u64,
    pub mig_enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicInfo {
    pub id: String,
    pub mac: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firmware {
    pub id: String,
    pub name: String,
    pub version: String,
    /// Its firmware inventory resource (an update's target).
    #[serde(default)]
    pub path: String,
}

/// What inspection learns about a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub system: SystemInfo,
    pub cpus: Vec<Cpu>,
    pub memory_mib: u64,
    pub nics: Vec<NicInfo>,
    pub gpus: Vec<Gpu>,
    pub firmware: Vec<Firmware>,
    /// UEFI Secure Boot; `None` when the BMC does not report it.
    pub secure_boot: Option<SecureBoot>,
    /// The BMC's local accounts; `None` without an account service.
    pub accounts: Option<Vec<BmcAccount>>,
    /// BIOS attributes in effect; `None` when the BMC does not report them.
    #[serde(default)]
    pub bios: Option<crate::bios::Bios>,
    /// The persistent boot order (option references); `None` when the BMC
    /// does not report it.
    #[serde(default)]
    pub boot_order: Option<Vec<String>>,
    /// The UEFI boot options; `None` when the BMC does not list them.
    #[serde(default)]
    pub boot_options: Option<Vec<crate::boot_options::BootOption>>,
    /// The host interfaces of the system's managers; `None` when none has
    /// a host interface collection.
    #[serde(default)]
    pub host_interfaces: Option<Vec<crate::host_interfaces::HostInterface>>,
    /// What the BMC says of the node's health.
    #[serde(default)]
    pub health: Health,
    /// The host system as this inventory read it, for what the same step
    /// does next with its links (its log services and managers) without
    /// reading it again. Not serialized.
    #[serde(skip)]
    pub system_read: Value,
}

impl Bmc {
    /// Paths of every ComputerSystem the BMC exposes.
    pub fn systems(&self) -> Result<Vec<String>> {
        Ok(members(&self.get("/redfish/v1/Systems")?))
    }

    /// The host system: the one that is not a GPU baseboard (HGX systems
    /// expose `HGX_Baseboard_*` beside the host). Discovered, never assumed.
    pub fn host_system(&self) -> Result<String> {
        let all = self.systems()?;
        all.iter()
            .find(|p| !last_segment(p).starts_with("HGX_Baseboard"))
            .or_else(|| all.first())
            .cloned()
            .ok_or_else(|| RedfishError::Protocol("the BMC lists no systems".into()))
    }

    /// The host system that has one of `macs` (a BMC, or an emulator,
    /// fronting several hosts); with no MACs given, [`Bmc::host_system`].
    pub fn host_system_with(&self, macs: &[String]) -> Result<String> {
        if macs.is_empty() {
            return self.host_system();
        }
        let hosts: Vec<String> = self
            .systems()?
            .into_iter()
            .filter(|p| !last_segment(p).starts_with("HGX_Baseboard"))
            .collect();
        for h in &hosts {
            let sys = self.get(h)?;
            if self
                .nics_of(&sys)?
                .iter()
                .any(|n| macs.iter().any(|m| m.eq_ignore_ascii_case(&n.mac)))
            {
                return Ok(h.clone());
            }
        }
        Err(RedfishError::Protocol(format!(
            "none of the BMC's {} host system(s) has MAC {}",
            hosts.len(),
            macs.join(" or ")
        )))
    }

    /// The NICs (and MACs) under a system's `EthernetInterfaces`.
    fn nics_of(&self, sys: &Value) -> Result<Vec<NicInfo>> {
        let mut nics = Vec::new();
        if let Some(coll) = sys["EthernetInterfaces"]["@odata.id"].as_str() {
            if let Some(cv) = self.get_optional(coll)? {
                for n in members(&cv) {
                    if let Some(v) = self.get_optional(&n)? {
                        let mac = v["MACAddress"]
                            .as_str()
                            .or(v["PermanentMACAddress"].as_str())
                            .unwrap_or("");
                        if !mac.is_empty() {
                            nics.push(NicInfo { id: s(&v, "Id"), mac: mac.to_lowercase() });
                        }
                    }
                }
            }
        }
        Ok(nics)
    }

    pub fn system(&self, path: &str) -> Result<SystemInfo> {
        self.system_info(path, &self.get(path)?)
    }

    /// The system whose resource at `path` read `v`, its reset types
    /// included: the reset action's `ResetType@Redfish.AllowableValues`,
    /// else the `AllowableValues` of the `ResetType` parameter of the
    /// `@Redfish.ActionInfo` it links (read once here; BMCs say it either
    /// way). An ActionInfo the BMC fails to serve (500) or lacks says
    /// nothing: the BMC judges the type when the reset is sent.
    fn system_info(&self, path: &str, v: &Value) -> Result<SystemInfo> {
        let mut info = SystemInfo::read(path, v);
        let action_info = v["Actions"]["#ComputerSystem.Reset"]["@Redfish.ActionInfo"].as_str();
        if let (true, Some(ai)) = (info.reset_types.is_empty(), action_info) {
            if let Some(av) = self.get_optional_or_failed(ai)? {
                info.reset_types = allowable_values(&av, "ResetType");
            }
        }
        Ok(info)
    }

    pub fn power_state(&self, system: &str) -> Result<PowerState> {
        Ok(self.system_as_read(system)?.power_state)
    }

    /// The system as one read of it says, without the ActionInfo read of
    /// [`Self::system`] (its reset types only where listed inline): for
    /// its power state (each poll) or its boot settings.
    fn system_as_read(&self, system: &str) -> Result<SystemInfo> {
        Ok(SystemInfo::read(system, &self.get(system)?))
    }

    /// Resets the system. A type the BMC does not list as allowed is
    /// refused here rather than sent.
    pub fn reset(&self, system: &str, t: ResetType) -> Result<()> {
        self.reset_with(system, t, false)
    }

    /// [`Self::reset`], the reset sent at most once (not again after a
    /// timeout or a lost answer: the BMC may have done it).
    pub fn reset_at_most_once(&self, system: &str, t: ResetType) -> Result<()> {
        self.reset_with(system, t, true)
    }

    /// [`Self::reset`] of the system as `info` read it (by [`Self::system`]
    /// or an inventory, in the same step): its allowed types and its reset
    /// action, without a read of its own (one BMC round trip fewer).
    pub fn reset_on(&self, info: &SystemInfo, t: ResetType) -> Result<()> {
        self.send_reset(info, t, false)
    }

    fn reset_with(&self, system: &str, t: ResetType, once: bool) -> Result<()> {
        self.send_reset(&self.system(system)?, t, once)
    }

    fn send_reset(&self, info: &SystemInfo, t: ResetType, once: bool) -> Result<()> {
        if !info.reset_types.is_empty() && !info.reset_types.iter().any(|r| r == t.as_str()) {
            return Err(RedfishError::Unsupported(format!(
                "reset type {} (allowed: {})",
                t.as_str(),
                info.reset_types.join(", ")
            )));
        }
        let target = info
            .reset_target
            .clone()
            .unwrap_or_else(|| format!("{}/Actions/ComputerSystem.Reset", info.path));
        let body = json!({"ResetType": t.as_str()});
        match once {
            true => self.request_at_most_once("POST", &target, Some(&body)).map(|_| ()),
            false => self.request("POST", &target, Some(&body)).map(|_| ()),
        }
    }

    /// Polls until the power state is `want` or the deadline passes.
    pub fn wait_power(
        &self,
        system: &str,
        want: PowerState,
        deadline: Duration,
        every: Duration,
    ) -> Result<()> {
        self.poll_power(system, want, deadline, every).map(|_| ())
    }

    /// [`Self::wait_power`] for the system `info` read: the system as the
    /// poll that saw `want` read it, with `info`'s reset types where that
    /// read lists none (a poll does not read the ActionInfo), so the step
    /// can act on it without reading it again.
    pub fn await_power(
        &self,
        info: &SystemInfo,
        want: PowerState,
        deadline: Duration,
        every: Duration,
    ) -> Result<SystemInfo> {
        let mut now = self.poll_power(&info.path, want, deadline, every)?;
        if now.reset_types.is_empty() {
            now.reset_types = info.reset_types.clone();
        }
        Ok(now)
    }

    fn poll_power(
        &self,
        system: &str,
        want: PowerState,
        deadline: Duration,
        every: Duration,
    ) -> Result<SystemInfo> {
        let start = Instant::now();
        loop {
            let read = self.system_as_read(system)?;
            let now = read.power_state;
            if now == want {
                return Ok(read);
            }
            if start.elapsed() >= deadline {
                return Err(RedfishError::Timeout(format!(
                    "{system}: power state still {now:?} after {:?}, expected {want:?}",
                    deadline
                )));
            }
            std::thread::sleep(every);
        }
    }

    /// Boots from `target` on the next boot only.
    pub fn boot_once(&self, system: &str, target: BootTarget, uefi: bool) -> Result<()> {
        self.boot_once_on(&self.system_as_read(system)?, target, uefi)
    }

    /// [`Self::boot_once`] on a system just read (`info`), saving the read.
    pub fn boot_once_on(&self, info: &SystemInfo, target: BootTarget, uefi: bool) -> Result<()> {
        let mut boot = Self::override_once(info, target)?;
        if uefi {
            boot["BootSourceOverrideMode"] = json!("UEFI");
        }
        self.request("PATCH", &info.path, Some(&json!({"Boot": boot}))).map(|_| ())
    }

    /// A one-time UEFI HTTP boot of `uri` (an EFI binary the firmware
    /// fetches and runs): `UefiHttp` with `HttpBootUri`, in UEFI mode.
    pub fn http_boot_once_on(&self, info: &SystemInfo, uri: &str) -> Result<()> {
        let mut boot = Self::override_once(info, BootTarget::UefiHttp)?;
        boot["BootSourceOverrideMode"] = json!("UEFI");
        boot["HttpBootUri"] = json!(uri);
        self.request("PATCH", &info.path, Some(&json!({"Boot": boot}))).map(|_| ())
    }

    /// A one-time override to `target`, which the BMC must allow.
    fn override_once(info: &SystemInfo, target: BootTarget) -> Result<Value> {
        if !info.boot_targets_allowed.is_empty()
            && !info.boot_targets_allowed.iter().any(|t| t == target.as_str())
        {
            return Err(RedfishError::Unsupported(format!(
                "boot target {} (allowed: {})",
                target.as_str(),
                info.boot_targets_allowed.join(", ")
            )));
        }
        Ok(
            json!({"BootSourceOverrideTarget": target.as_str(), "BootSourceOverrideEnabled": "Once"}),
        )
    }

    /// Clears any boot override (part of sanitization).
    pub fn clear_boot_override(&self, system: &str) -> Result<()> {
        self.request(
            "PATCH",
            system,
            Some(&json!({"Boot": {"BootSourceOverrideEnabled": "Disabled", "BootSourceOverrideTarget": "None"}})),
        )
        .map(|_| ())
    }

    /// The managers of the system whose resource is `sys` (as read): those
    /// it names (`Links.ManagedBy`), else every manager the BMC lists.
    pub(crate) fn managers_of(&self, sys: &Value) -> Result<Vec<String>> {
        let named = ids_in(&sys["Links"]["ManagedBy"]);
        if !named.is_empty() {
            return Ok(named);
        }
        Ok(self.get_optional("/redfish/v1/Managers")?.map(|v| members(&v)).unwrap_or_default())
    }

    /// Virtual media slots that take CDs/DVDs: under the system's managers
    /// and under the system itself (some BMCs put them there).
    pub fn cd_slots(&self, system: &str) -> Result<Vec<String>> {
        Ok(self.cd_media(system)?.into_iter().map(|m| m.path).collect())
    }

    /// [`Self::cd_slots`] with what each holds and its actions, read once:
    /// what to insert into or eject from without reading the slot again.
    pub fn cd_media(&self, system: &str) -> Result<Vec<MediaSlot>> {
        let mut collections = Vec::new();
        let sys = self.get(system)?;
        if let Some(p) = sys["VirtualMedia"]["@odata.id"].as_str() {
            collections.push(p.to_string());
        }
        for m in self.managers_of(&sys)? {
            if let Some(mv) = self.get_optional(&m)? {
                if let Some(p) = mv["VirtualMedia"]["@odata.id"].as_str() {
                    collections.push(p.to_string());
                }
            }
        }
        collections.sort();
        collections.dedup();
        let mut slots: Vec<MediaSlot> = Vec::new();
        for c in collections {
            let Some(cv) = self.get_optional(&c)? else { continue };
            for slot in members(&cv) {
                let Some(sv) = self.get_optional(&slot)? else { continue };
                let types: Vec<&str> = sv["MediaTypes"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if (types.is_empty() || types.iter().any(|t| *t == "CD" || *t == "DVD"))
                    && !slots.iter().any(|m| m.path == slot)
                {
                    slots.push(MediaSlot::read(&slot, &sv));
                }
            }
        }
        Ok(slots)
    }

    /// Inserts an image (HTTP URL) into a virtual media slot.
    pub fn insert_media(&self, slot: &str, image: &str) -> Result<()> {
        self.insert_media_in(&MediaSlot::read(slot, &self.get(slot)?), image)
    }

    /// [`Self::insert_media`] into a slot just read.
    pub fn insert_media_in(&self, slot: &MediaSlot, image: &str) -> Result<()> {
        self.request(
            "POST",
            &slot.insert_target,
            Some(&json!({"Image": image, "Inserted": true, "WriteProtected": true})),
        )
        .map(|_| ())
    }

    pub fn eject_media(&self, slot: &str) -> Result<()> {
        self.eject_media_in(&MediaSlot::read(slot, &self.get(slot)?))
    }

    /// [`Self::eject_media`] from a slot just read.
    pub fn eject_media_in(&self, slot: &MediaSlot) -> Result<()> {
        self.request("POST", &slot.eject_target, Some(&json!({}))).map(|_| ())
    }

    /// The image in a slot, if any.
    pub fn media_image(&self, slot: &str) -> Result<Option<String>> {
        Ok(MediaSlot::read(slot, &self.get(slot)?).image)
    }

    /// The systems a node's processors are on, each as read with its
    /// processors read: the host (`system`, read as `sys`) first, then the
    /// BMC's GPU baseboard systems (`HGX_Baseboard_*`).
    pub(crate) fn processor_systems(
        &self,
        system: &str,
        sys: &Value,
    ) -> Result<Vec<(Value, Vec<Value>)>> {
        let mut out =
            vec![(sys.clone(), self.linked_members(sys, "Processors", Bmc::get_optional)?)];
        for sp in self
            .systems()?
            .into_iter()
            .filter(|p| p != system && last_segment(p).starts_with("HGX_Baseboard"))
        {
            let v = self.get(&sp)?;
            let processors = self.linked_members(&v, "Processors", Bmc::get_optional)?;
            out.push((v, processors));
        }
        Ok(out)
    }

    /// The members of the collection `sys` (a system as read) links under
    /// `key`, each read with `read` (the collection too): none where it
    /// links none or the BMC has none. `read` is [`Bmc::get_optional`]
    /// where a member the BMC fails to serve must fail the read (an
    /// inventory's GPUs), [`Bmc::get_optional_or_failed`] where it is left
    /// out (diagnosis).
    pub(crate) fn linked_members(
        &self,
        sys: &Value,
        key: &str,
        read: fn(&Bmc, &str) -> Result<Option<Value>>,
    ) -> Result<Vec<Value>> {
        let Some(coll) = sys[key]["@odata.id"].as_str() else { return Ok(vec![]) };
        let Some(cv) = read(self, coll)? else { return Ok(vec![]) };
        let mut out = Vec::new();
        for p in members(&cv) {
            if let Some(v) = read(self, &p)? {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// A GPU's memory: the capacities of the system's memory resources
    /// named after it (`{gpu_id}_DRAM_0`, ...). `memory` is the system's
    /// `Memory` collection's member paths, read once per system (`None`
    /// until a GPU needs it); only the GPU's own members are read.
    fn gpu_memory_mib(
        &self,
        sys: &Value,
        memory: &mut Option<Vec<String>>,
        gpu_id: &str,
    ) -> Result<u64> {
        if memory.is_none() {
            let paths = match sys["Memory"]["@odata.id"].as_str() {
                Some(coll) => self.get_optional(coll)?.map(|cv| members(&cv)).unwrap_or_default(),
                None => Vec::new(),
            };
            *memory = Some(paths);
        }
        let prefix = format!("{gpu_id}_");
        let mut total = 0;
        for m in memory.iter().flatten().filter(|m| last_segment(m).starts_with(&prefix)) {
            if let Some(v) = self.get_optional(m)? {
                total += v["CapacityMiB"].as_u64().unwrap_or(0);
            }
        }
        Ok(total)
    }

    /// Inspects the node behind `system`: CPUs, memory, NICs, GPUs (on the
    /// host system or on GPU baseboard systems), firmware versions, Secure
    /// Boot, the BMC's accounts, the BIOS attributes, the boot order, the
    /// boot options and the BMC's host interfaces.
    /// Collections the BMC does not implement are empty, not errors. Each
    /// resource is read once (the host system, each GPU system's memory
    /// collection), so every read is one BMC round trip fewer to wait on.
    pub fn inventory(&self, system: &str) -> Result<Inventory> {
        let sys = self.get(system)?;
        let info = self.system_info(system, &sys)?;
        let mut cpus = Vec::new();
        let mut gpus = Vec::new();
        let mut health = Health { rollup: rollup_of(&sys), ..Health::default() };
        for (i, (system_read, processors)) in
            self.processor_systems(system, &sys)?.iter().enumerate()
        {
            health.note(system_read);
            let mut memory = None;
            for p in processors {
                health.note(p);
                let path = p["@odata.id"].as_str().unwrap_or("").to_string();
                match p["ProcessorType"].as_str() {
                    Some("GPU") => {
                        let id = s(p, "Id");
                        let memory_mib = self.gpu_memory_mib(system_read, &mut memory, &id)?;
                        gpus.push(Gpu {
                            path,
                            model: s(p, "Model"),
                            serial: s(p, "SerialNumber"),
                            uuid: s(p, "UUID"),
                            memory_mib,
                            mig_enabled: p["Oem"]["Nvidia"]["MIGModeEnabled"].as_bool(),
                            id,
                        });
                    }
                    Some("CPU") if i == 0 => cpus.push(Cpu {
                        id: s(p, "Id"),
                        model: s(p, "Model"),
                        cores: p["TotalCores"].as_u64().unwrap_or(0) as u32,
                    }),
                    _ => {}
                }
            }
        }
        // The chassis' parts and the BMC's log, only for a node it reports
        // unhealthy (no read for a healthy one).
        if health.unhealthy() {
            self.unhealthy_detail(&sys, &mut health);
        }
        let memory_mib = sys["MemorySummary"]["TotalSystemMemoryGiB"]
            .as_f64()
            .map(|g| (g * 1024.0) as u64)
            .unwrap_or(0);
        let nics = self.nics_of(&sys)?;
        let firmware = self.firmware()?;
        gpus.sort_by(|a, b| a.path.cmp(&b.path));
        let secure_boot = self.secure_boot_of(&sys)?;
        let accounts = self.accounts()?;
        let bios = self.bios_of(&sys)?;
        let boot_options = self.boot_options_of(&sys)?;
        let host_interfaces = self.host_interfaces_of(&sys)?;
        Ok(Inventory {
            system: info,
            cpus,
            memory_mib,
            nics,
            gpus,
            firmware,
            secure_boot,
            accounts,
            bios,
            boot_order: crate::boot_options::boot_order_of(&sys),
            boot_options,
            host_interfaces,
            health,
            system_read: sys,
        })
    }
}
