//! The BMC's host interfaces (DMTF DSP0270, `Managers/{id}/HostInterfaces`):
//! a channel from the host's OS to its BMC's Redfish service (usually a
//! USB network device). With credential bootstrapping on, software on the
//! host obtains BMC credentials without knowing any; even without it, a
//! tenant with root on the host reaches the BMC's API from inside the
//! tenancy. The control plane keeps them off while a tenant holds a node.

use crate::client::Bmc;
use crate::error::Result;
use crate::ops::members;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// One host interface as the BMC reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInterface {
    /// The resource's path (where it is turned off).
    pub path: String,
    pub id: String,
    /// `HostInterfaceType` (`NetworkHostInterface`), when reported.
    pub kind: Option<String>,
    /// `InterfaceEnabled` (an interface that does not say is taken as on:
    /// it is checked).
    pub enabled: bool,
    /// `CredentialBootstrapping.Enabled`, when the BMC implements it.
    pub credential_bootstrapping: Option<bool>,
}

fn host_interface_of(path: &str, v: &Value) -> HostInterface {
    HostInterface {
        path: path.to_string(),
        id: v["Id"].as_str().unwrap_or_else(|| path.rsplit('/').next().unwrap_or("")).to_string(),
        kind: v["HostInterfaceType"].as_str().map(str::to_string),
        enabled: v["InterfaceEnabled"].as_bool().unwrap_or(true),
        credential_bootstrapping: v["CredentialBootstrapping"]["Enabled"].as_bool(),
    }
}

/// What turns `hi` off: the interface, and credential bootstrapping where
/// it is on (a BMC that keeps the interface would still hand out no
/// credentials over it).
fn disable_body(hi: &HostInterface) -> Value {
    let mut body = Map::new();
    body.insert("InterfaceEnabled".into(), json!(false));
    if hi.credential_bootstrapping == Some(true) {
        body.insert("CredentialBootstrapping".into(), json!({ "Enabled": false }));
    }
    Value::Object(body)
}

impl Bmc {
    /// The host interfaces of the managers of the system whose resource is
    /// `sys` (as read; every manager when it names none), or `None` when
    /// none of them has a host interface collection.
    pub fn host_interfaces_of(&self, sys: &Value) -> Result<Option<Vec<HostInterface>>> {
        let mut found: Option<Vec<HostInterface>> = None;
        for m in self.managers_of(sys)? {
            let Some(mv) = self.get_optional(m.trim_end_matches('/'))? else { continue };
            let Some(coll) = mv["HostInterfaces"]["@odata.id"].as_str() else { continue };
            let Some(cv) = self.get_optional(coll.trim_end_matches('/'))? else { continue };
            let list = found.get_or_insert_with(Vec::new);
            for hi in members(&cv) {
                if let Some(v) = self.get_optional(&hi)? {
                    list.push(host_interface_of(&hi, &v));
                }
            }
        }
        if let Some(list) = found.as_mut() {
            list.sort_by(|a, b| a.path.cmp(&b.path));
        }
        Ok(found)
    }

    /// Turns a host interface off (and its credential bootstrapping, where
    /// on) and reads it back: the answer is the interface as the BMC
    /// reports it after the change.
    pub fn disable_host_interface(&self, hi: &HostInterface) -> Result<HostInterface> {
        self.request("PATCH", &hi.path, Some(&disable_body(hi)))?;
        Ok(host_interface_of(&hi.path, &self.get(&hi.path)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interface_that_does_not_say_is_on() {
        let hi = host_interface_of("/m/HostInterfaces/1", &json!({"Id": "1"}));
        assert!(hi.enabled);
        assert_eq!(hi.credential_bootstrapping, None);
        assert_eq!(hi.kind, None);
        let hi = host_interface_of(
            "/m/HostInterfaces/Self",
            &json!({"HostInterfaceType": "NetworkHostInterface", "InterfaceEnabled": false,
                    "CredentialBootstrapping": {"Enabled": true, "EnableAfterReset": true}}),
        );
        assert_eq!(hi.id, "Self");
        assert!(!hi.enabled);
        assert_eq!(hi.credential_bootstrapping, Some(true));
    }

    #[test]
    fn turning_off_includes_credential_bootstrapping_only_where_it_is_on() {
        let mut hi = host_interface_of("/h", &json!({"InterfaceEnabled": true}));
        assert_eq!(disable_body(&hi), json!({"InterfaceEnabled": false}));
        hi.credential_bootstrapping = Some(false);
        assert_eq!(disable_body(&hi), json!({"InterfaceEnabled": false}));
        hi.credential_bootstrapping = Some(true);
        assert_eq!(
            disable_body(&hi),
            json!({"InterfaceEnabled": false, "CredentialBootstrapping": {"Enabled": false}})
        );
    }
}
