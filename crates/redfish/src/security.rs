//! The BMC's security settings a tenant with root on the host can change
//! in-band (through the host's IPMI or Redfish host interface, or the UEFI
//! setup): UEFI Secure Boot and the BMC's local accounts. Read at inspection
//! (the baseline) and at the end of sanitization (restored to it).

use crate::client::Bmc;
use crate::error::{RedfishError, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// UEFI Secure Boot as the BMC reports it (`Systems/{id}/SecureBoot`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecureBoot {
    /// The resource's path (where a change is PATCHed).
    pub path: String,
    /// `SecureBootEnable`: whether Secure Boot is on from the next boot.
    pub enable: bool,
    /// `SecureBootCurrentBoot`: `Enabled` or `Disabled` in the running boot.
    pub current_boot: Option<String>,
    /// `SecureBootMode`: `SetupMode`, `UserMode`, `AuditMode` or `DeployedMode`.
    pub mode: Option<String>,
}

/// One of the BMC's local accounts (`AccountService/Accounts/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BmcAccount {
    /// The account's resource path (where it is disabled).
    pub path: String,
    pub user_name: String,
    pub role_id: String,
    pub enabled: bool,
}

fn secure_boot_of(path: &str, v: &Value) -> Option<SecureBoot> {
    Some(SecureBoot {
        path: path.to_string(),
        enable: v["SecureBootEnable"].as_bool()?,
        current_boot: v["SecureBootCurrentBoot"].as_str().map(str::to_string),
        mode: v["SecureBootMode"].as_str().map(str::to_string),
    })
}

fn account_of(path: &str, v: &Value) -> BmcAccount {
    BmcAccount {
        path: path.to_string(),
        user_name: v["UserName"].as_str().unwrap_or("").to_string(),
        role_id: v["RoleId"].as_str().unwrap_or("").to_string(),
        // An account that does not say is taken as enabled: it is checked.
        enabled: v["Enabled"].as_bool().unwrap_or(true),
    }
}

impl Bmc {
    /// Secure Boot of the system whose resource is `sys` (as read), or
    /// `None` when the BMC does not report it.
    pub fn secure_boot_of(&self, sys: &Value) -> Result<Option<SecureBoot>> {
        let Some(path) = sys["SecureBoot"]["@odata.id"].as_str() else { return Ok(None) };
        let path = path.trim_end_matches('/');
        Ok(self.get_optional(path)?.and_then(|v| secure_boot_of(path, &v)))
    }

    /// Secure Boot of `system`, or `None` when the BMC does not report it.
    pub fn secure_boot(&self, system: &str) -> Result<Option<SecureBoot>> {
        let sys = self.get(system)?;
        self.secure_boot_of(&sys)
    }

    /// Turns Secure Boot on or off (from the next boot) and reads it back:
    /// the answer is what the BMC reports after the change.
    pub fn set_secure_boot(&self, sb: &SecureBoot, enable: bool) -> Result<SecureBoot> {
        self.request("PATCH", &sb.path, Some(&json!({ "SecureBootEnable": enable })))?;
        let v = self.get(&sb.path)?;
        secure_boot_of(&sb.path, &v).ok_or_else(|| RedfishError::Status {
            status: 200,
            path: sb.path.clone(),
            message: "SecureBootEnable missing after the change".into(),
        })
    }

    /// The BMC's local accounts that have a user name (vendors list unused
    /// slots with an empty one), or `None` when the BMC has no account
    /// service.
    pub fn accounts(&self) -> Result<Option<Vec<BmcAccount>>> {
        let Some(root) = self.get_optional("/redfish/v1")? else { return Ok(None) };
        let Some(service) = root["AccountService"]["@odata.id"].as_str() else { return Ok(None) };
        let Some(sv) = self.get_optional(service.trim_end_matches('/'))? else { return Ok(None) };
        let Some(coll) = sv["Accounts"]["@odata.id"].as_str() else { return Ok(None) };
        let Some(cv) = self.get_optional(coll.trim_end_matches('/'))? else { return Ok(None) };
        let mut out = Vec::new();
        for m in crate::ops::members(&cv) {
            if let Some(v) = self.get_optional(&m)? {
                let a = account_of(&m, &v);
                if !a.user_name.is_empty() {
                    out.push(a);
                }
            }
        }
        out.sort_by(|a, b| a.user_name.cmp(&b.user_name).then(a.path.cmp(&b.path)));
        Ok(Some(out))
    }

    /// Sets an account's password (write-only: the BMC never shows it; a
    /// login with it is the check). Sent at most once: after a lost answer
    /// the BMC may hold the new password, and a second PATCH, sent with
    /// the credentials it no longer takes, is refused (401) and makes a
    /// change that was done look failed.
    pub fn set_account_password(&self, a: &BmcAccount, password: &str) -> Result<()> {
        self.request_at_most_once("PATCH", &a.path, Some(&json!({ "Password": password })))
            .map(|_| ())
    }

    /// Disables an account and reads it back: the answer is the account as
    /// the BMC reports it after the change.
    pub fn disable_account(&self, a: &BmcAccount) -> Result<BmcAccount> {
        self.request("PATCH", &a.path, Some(&json!({ "Enabled": false })))?;
        Ok(account_of(&a.path, &self.get(&a.path)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_boot_needs_its_enable_flag() {
        let v = json!({"SecureBootEnable": true, "SecureBootMode": "DeployedMode"});
        let sb = secure_boot_of("/sb", &v).expect("read");
        assert!(sb.enable);
        assert_eq!(sb.mode.as_deref(), Some("DeployedMode"));
        assert_eq!(sb.current_boot, None);
        assert_eq!(secure_boot_of("/sb", &json!({"SecureBootMode": "UserMode"})), None);
    }

    #[test]
    fn an_account_that_does_not_say_is_enabled() {
        let a = account_of("/a/1", &json!({"UserName": "root", "RoleId": "Administrator"}));
        assert!(a.enabled);
        let b = account_of("/a/2", &json!({"UserName": "", "Enabled": false}));
        assert!(!b.enabled && b.user_name.is_empty());
    }
}
