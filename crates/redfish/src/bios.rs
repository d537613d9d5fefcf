//! BIOS (UEFI setup) attributes: a tenant with root on the host can change
//! them in-band (vendor tools through the host interface, or by staging
//! pending settings), and they outlive the tenant. Read at inspection (the
//! baseline); before the sanitizer boots, every attribute that differs from
//! the baseline, now or in the pending settings, is staged back, so the
//! sanitizer's own boot applies it; the end of sanitization reads them
//! again.
//!
//! Redfish: `Systems/{id}` links `Bios`, whose `Attributes` are the values
//! in effect; `@Redfish.Settings.SettingsObject` names the resource that
//! holds pending values (PATCHed, applied at the next reset; BMCs without
//! one take the PATCH on `Bios` itself).

use crate::client::Bmc;
use crate::error::Result;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// BIOS attributes by name (strings, numbers, booleans as the BMC gives them).
pub type BiosAttributes = BTreeMap<String, Value>;

/// The system's BIOS resource as read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bios {
    /// The `Bios` resource.
    pub path: String,
    /// The values in effect.
    pub attributes: BiosAttributes,
    /// Where pending values are written (`@Redfish.Settings`), if apart.
    pub settings: Option<String>,
    /// Whether the BMC lists `OnReset` among its settings apply times (then
    /// a change is sent with that apply time).
    pub apply_on_reset: bool,
}

fn attributes_of(v: &Value) -> BiosAttributes {
    v["Attributes"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn bios_of(path: &str, v: &Value) -> Bios {
    let settings = &v["@Redfish.Settings"];
    Bios {
        path: path.to_string(),
        attributes: attributes_of(v),
        settings: settings["SettingsObject"]["@odata.id"]
            .as_str()
            .map(|s| s.trim_end_matches('/').to_string())
            .filter(|s| s != path),
        apply_on_reset: settings["SupportedApplyTimes"]
            .as_array()
            .is_some_and(|a| a.iter().any(|t| t == "OnReset")),
    }
}

/// The attributes to stage so that, once applied, the BIOS is back at
/// `baseline`: each baseline attribute whose value in effect or pending
/// differs from it. Attributes the BMC no longer reports are left out (the
/// end of sanitization reports them).
pub fn bios_changes(
    baseline: &BiosAttributes,
    current: &BiosAttributes,
    pending: &BiosAttributes,
) -> BiosAttributes {
    baseline
        .iter()
        .filter(|(k, want)| {
            current.get(*k).is_some_and(|now| now != *want)
                || pending.get(*k).is_some_and(|p| p != *want)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl Bmc {
    /// The BIOS of the system whose resource is `sys` (as read), or `None`
    /// when the BMC does not report one.
    pub fn bios_of(&self, sys: &Value) -> Result<Option<Bios>> {
        let Some(path) = sys["Bios"]["@odata.id"].as_str() else { return Ok(None) };
        let path = path.trim_end_matches('/');
        Ok(self.get_optional(path)?.map(|v| bios_of(path, &v)))
    }

    /// The BIOS resource at `path` (as [`Bios::path`] recorded it), or
    /// `None` when the BMC no longer has it there.
    pub fn bios_at(&self, path: &str) -> Result<Option<Bios>> {
        Ok(self.get_optional(path)?.map(|v| bios_of(path, &v)))
    }

    /// The BIOS of `system`, or `None` when the BMC does not report one.
    pub fn bios(&self, system: &str) -> Result<Option<Bios>> {
        let sys = self.get(system)?;
        self.bios_of(&sys)
    }

    /// The values pending for the next reset (empty when none are, or the
    /// BMC keeps no settings resource).
    pub fn pending_bios(&self, bios: &Bios) -> Result<BiosAttributes> {
        let Some(settings) = &bios.settings else { return Ok(BiosAttributes::new()) };
        Ok(self.get_optional(settings)?.map(|v| attributes_of(&v)).unwrap_or_default())
    }

    /// Stages `changes` for the next reset and reads the pending values
    /// back: the answer is what the BMC holds for the next reset.
    pub fn stage_bios(&self, bios: &Bios, changes: &BiosAttributes) -> Result<BiosAttributes> {
        let attrs: Map<String, Value> =
            changes.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut body = json!({ "Attributes": attrs });
        if bios.apply_on_reset {
            body["@Redfish.SettingsApplyTime"] = json!({ "ApplyTime": "OnReset" });
        }
        let target = bios.settings.as_deref().unwrap_or(&bios.path);
        self.request("PATCH", target, Some(&body))?;
        match &bios.settings {
            Some(_) => self.pending_bios(bios),
            // No settings resource: the BMC took the values on `Bios`.
            None => {
                Ok(self.get_optional(&bios.path)?.map(|v| attributes_of(&v)).unwrap_or_default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(v: Value) -> BiosAttributes {
        attributes_of(&json!({ "Attributes": v }))
    }

    #[test]
    fn the_settings_object_and_apply_times_are_read() {
        let v = json!({
            "Attributes": {"SriovGlobalEnable": "Enabled", "NumaNodesPerSocket": 4},
            "@Redfish.Settings": {"SettingsObject": {"@odata.id": "/redfish/v1/Systems/1/Bios/Settings/"},
                                  "SupportedApplyTimes": ["OnReset", "AtMaintenanceWindowStart"]}});
        let b = bios_of("/redfish/v1/Systems/1/Bios", &v);
        assert_eq!(b.settings.as_deref(), Some("/redfish/v1/Systems/1/Bios/Settings"));
        assert!(b.apply_on_reset);
        assert_eq!(b.attributes["NumaNodesPerSocket"], json!(4));
        let plain = bios_of("/b", &json!({"Attributes": {}}));
        assert_eq!((plain.settings, plain.apply_on_reset), (None, false));
    }

    #[test]
    fn changes_cover_drift_now_and_pending_and_skip_vanished_attributes() {
        let base = attrs(json!({"A": "On", "B": 1, "C": true, "Gone": "x"}));
        let now = attrs(json!({"A": "Off", "B": 1, "C": true, "New": 7}));
        let pending = attrs(json!({"C": false}));
        let c = bios_changes(&base, &now, &pending);
        assert_eq!(c, attrs(json!({"A": "On", "C": true})));
        assert!(bios_changes(&base, &base, &BiosAttributes::new()).is_empty());
    }
}
