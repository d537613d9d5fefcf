//! UEFI boot options and the persistent boot order: a tenant with root on
//! the host can add a boot option (`efibootmgr`: a network path of its own
//! choosing) and put it first, and both live in the firmware's NVRAM, not
//! on the disks sanitization wipes. The control plane's own boots use a
//! one-time override, but the next tenant's reboots follow the persistent
//! order. Read at inspection (the baseline) and restored at the end of
//! sanitization.
//!
//! Redfish: `Systems/{id}.Boot.BootOrder` (option references, PATCHable)
//! and `Boot.BootOptions` (or the system's `BootOptions`), a collection of
//! `BootOption`s with `BootOptionReference`, `DisplayName`,
//! `UefiDevicePath` and `BootOptionEnabled` (PATCHable where the BMC
//! allows).

use crate::client::Bmc;
use crate::error::{RedfishError, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// One UEFI boot option as the BMC reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootOption {
    /// The option's resource path (where it is disabled).
    pub path: String,
    /// `BootOptionReference`, e.g. `Boot0001` (what `BootOrder` lists).
    pub reference: String,
    pub display_name: String,
    /// `UefiDevicePath`: what the option boots.
    pub device_path: Option<String>,
    /// `BootOptionEnabled` (an option that does not say is enabled).
    pub enabled: bool,
}

fn boot_option_of(path: &str, v: &Value) -> Option<BootOption> {
    Some(BootOption {
        path: path.to_string(),
        reference: v["BootOptionReference"].as_str()?.to_string(),
        display_name: v["DisplayName"].as_str().unwrap_or("").to_string(),
        device_path: v["UefiDevicePath"].as_str().map(str::to_string),
        enabled: v["BootOptionEnabled"].as_bool().unwrap_or(true),
    })
}

/// The persistent boot order of a system as read, if it reports one.
pub fn boot_order_of(sys: &Value) -> Option<Vec<String>> {
    sys["Boot"]["BootOrder"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_string)).collect())
}

impl Bmc {
    /// The boot options of the system whose resource is `sys` (as read), or
    /// `None` when the BMC does not list them.
    pub fn boot_options_of(&self, sys: &Value) -> Result<Option<Vec<BootOption>>> {
        let link = sys["Boot"]["BootOptions"]["@odata.id"]
            .as_str()
            .or_else(|| sys["BootOptions"]["@odata.id"].as_str());
        let Some(coll) = link else { return Ok(None) };
        let Some(cv) = self.get_optional(coll.trim_end_matches('/'))? else { return Ok(None) };
        let mut out = Vec::new();
        for m in crate::ops::members(&cv) {
            if let Some(o) = self.get_optional(&m)?.and_then(|v| boot_option_of(&m, &v)) {
                out.push(o);
            }
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(Some(out))
    }

    /// Disables a boot option and reads it back: the answer is the option
    /// as the BMC reports it after the change.
    pub fn disable_boot_option(&self, o: &BootOption) -> Result<BootOption> {
        self.set_boot_option_enabled(o, false)
    }

    /// Enables or disables a boot option and reads it back.
    pub fn set_boot_option_enabled(&self, o: &BootOption, enabled: bool) -> Result<BootOption> {
        self.request("PATCH", &o.path, Some(&json!({ "BootOptionEnabled": enabled })))?;
        boot_option_of(&o.path, &self.get(&o.path)?).ok_or_else(|| RedfishError::Status {
            status: 200,
            path: o.path.clone(),
            message: "BootOptionReference missing after the change".into(),
        })
    }

    /// Sets the system's persistent boot order and reads it back: the
    /// answer is the order the BMC reports after the change.
    pub fn set_boot_order(&self, system: &str, order: &[String]) -> Result<Vec<String>> {
        self.request("PATCH", system, Some(&json!({ "Boot": { "BootOrder": order } })))?;
        Ok(boot_order_of(&self.get(system)?).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_option_needs_its_reference_and_the_order_lists_references() {
        let v = json!({"BootOptionReference": "Boot0003", "DisplayName": "UEFI HTTP",
                       "UefiDevicePath": "MAC(5cff350d7a10,0x1)/IPv4(0.0.0.0)/Uri(http://x/y.efi)"});
        let o = boot_option_of("/o/3", &v).expect("read");
        assert!(o.enabled, "an option that does not say is enabled");
        assert_eq!(
            o.device_path.as_deref(),
            Some("MAC(5cff350d7a10,0x1)/IPv4(0.0.0.0)/Uri(http://x/y.efi)")
        );
        assert_eq!(boot_option_of("/o/4", &json!({"DisplayName": "x"})), None);
        let sys = json!({"Boot": {"BootOrder": ["Boot0001", "Boot0002"]}});
        assert_eq!(boot_order_of(&sys), Some(vec!["Boot0001".into(), "Boot0002".into()]));
        assert_eq!(boot_order_of(&json!({"Boot": {}})), None);
    }
}
