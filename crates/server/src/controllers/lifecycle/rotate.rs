//! BMC password rotation (`bmc_password_rotation`): at the end of every
//! sanitization the account the control plane enrolled the node with gets
//! a new random password, so one that reached a tenant (the host
//! interface's credential bootstrapping, a leaked inventory) opens nothing
//! after it.
//!
//! Crash-safe in three writes: the new password is recorded (sealed) as
//! the node's *next* before it is sent; a login with it makes it the
//! password; a refusal drops it. A control plane killed in between finds
//! the next password on its next step and keeps whichever one logs in
//! ([`LifecycleController::settle_password`]).

use super::{open_password, LifecycleController, StepError};
use crate::secrets::SecretBox;
use neocloud_redfish::{Bmc, BmcAccount, Inventory, RedfishError};
use neocloud_store::{nodes, Store};
use neocloud_types::{Node, SanitizationCheck, StepItem};

/// Characters of a new password: letters and digits only (every BMC's
/// password policy takes them; some refuse symbols).
const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// 20 characters (iDRAC's most) with an upper-case letter, a lower-case
/// letter and a digit in fixed places, the rest uniformly random: about 107
/// bits.
fn new_password() -> Result<String, StepError> {
    let mut b = [0u8; 20];
    getrandom::getrandom(&mut b).map_err(|e| {
        StepError::Store(neocloud_common::Error::internal(format!("getrandom: {e}")))
    })?;
    let pick = |set: &[u8], x: u8| set[x as usize % set.len()] as char;
    let mut out: String = b[3..].iter().map(|x| pick(ALPHABET, *x)).collect();
    out.insert(0, pick(b"ABCDEFGHJKLMNPQRSTUVWXYZ", b[0]));
    out.insert(1, pick(b"abcdefghijkmnopqrstuvwxyz", b[1]));
    out.insert(2, pick(b"23456789", b[2]));
    Ok(out)
}

fn item(target: &str, ok: bool, detail: &str) -> StepItem {
    StepItem { target: target.into(), method: "redfish-patch".into(), ok, detail: detail.into() }
}

fn check(it: StepItem) -> SanitizationCheck {
    SanitizationCheck { name: "bmc_password".into(), ok: it.ok, items: vec![it] }
}

/// Whether `password` logs in to the node's BMC (an authenticated read):
/// refused credentials are `false`; a BMC that does not answer is retried.
fn logs_in(cfg: neocloud_redfish::BmcConfig) -> Result<bool, StepError> {
    match Bmc::new(cfg).systems() {
        Ok(_) => Ok(true),
        Err(RedfishError::Auth(_)) => Ok(false),
        Err(e) => Err(StepError::from(e)),
    }
}

impl LifecycleController {
    /// A rotation cut short: the new password was recorded and perhaps
    /// sent. Whichever logs in is the node's password from now on; its
    /// sealed form is the answer.
    pub(super) fn settle_password(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
        rec: &nodes::BmcRecord,
        next: &str,
    ) -> Result<String, StepError> {
        let password = open_password(secrets, n, next)?;
        if logs_in(self.bmc_config(rec, &password))? {
            tracing::warn!(node = %n.name, "a BMC password rotation was cut short after the BMC took it: keeping the new password");
            store
                .write(|w| nodes::promote_bmc_password(w, &n.id, next))
                .map_err(StepError::Store)?;
            return Ok(next.to_string());
        }
        tracing::warn!(node = %n.name, "a BMC password rotation was cut short before the BMC took it: keeping the old password");
        store.write(|w| nodes::drop_bmc_password(w, &n.id, next)).map_err(StepError::Store)?;
        Ok(rec.password_sealed.clone())
    }

    /// The last BMC call of a sanitization: a new password on the control
    /// plane's own account, checked by a login. The `bmc_password` check.
    pub(super) fn rotate_password(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
        bmc: &Bmc,
        inv: &Inventory,
    ) -> Result<SanitizationCheck, StepError> {
        let rec = store
            .read(|r| nodes::bmc(r, &n.id))
            .map_err(StepError::Store)?
            .ok_or_else(|| StepError::Fail("no BMC recorded for this node".into()))?;
        let own: Option<&BmcAccount> =
            inv.accounts.iter().flatten().find(|a| a.user_name == rec.username);
        let Some(account) = own else {
            let why = match &inv.accounts {
                None => "the BMC has no account service: the password cannot be rotated",
                Some(_) => "the control plane's account is not in the BMC's account service",
            };
            return Ok(check(item(&rec.username, false, why)));
        };
        let password = new_password()?;
        let sealed = secrets.seal(&password).map_err(StepError::Store)?;
        let staged = store
            .write(|w| nodes::stage_bmc_password(w, &n.id, &sealed))
            .map_err(StepError::Store)?;
        if !staged {
            // Another replica's rotation, staged since this step's client
            // settled any: the next step settles it by a login.
            return Err(StepError::Store(neocloud_common::Error::conflict(
                "a BMC password rotation is in flight on another replica",
            )));
        }
        let sent = bmc.set_account_password(account, &password);
        // The BMC refused the value itself (its password policy): it kept
        // the old one.
        if let Err(e @ RedfishError::Status { status: 400..=499, .. }) = &sent {
            store
                .write(|w| nodes::drop_bmc_password(w, &n.id, &sealed))
                .map_err(StepError::Store)?;
            return Ok(check(item(&account.path, false, &format!("refused: {e}"))));
        }
        // Sent, or perhaps taken whatever the answer (one lost, or a
        // refusal of the old credentials once the new one was set): a
        // login with the new password says.
        if logs_in(self.bmc_config(&rec, &password))? {
            let promoted = store
                .write(|w| nodes::promote_bmc_password(w, &n.id, &sealed))
                .map_err(StepError::Store)?;
            if !promoted {
                return Err(StepError::Fail(
                    "the BMC took a new password that another replica's write displaced: \
                     inspect the node with its BMC credentials"
                        .into(),
                ));
            }
            return Ok(check(item(
                &account.path,
                true,
                &format!("{:?}: a new password, checked by a login", rec.username),
            )));
        }
        let detail = match sent {
            // Perhaps not taken yet: settled by the next step's login.
            Err(e) if e.is_transient() => return Err(StepError::from(e)),
            Err(e) => format!("refused: {e}"),
            Ok(()) => {
                format!("{:?}: the BMC took the change but refuses a login with it", rec.username)
            }
        };
        store.write(|w| nodes::drop_bmc_password(w, &n.id, &sealed)).map_err(StepError::Store)?;
        Ok(check(item(&account.path, false, &detail)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passwords_have_every_class_and_differ() {
        let new = || new_password().unwrap_or_else(|_| panic!("getrandom"));
        let a = new();
        assert_eq!(a.len(), 20);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert!(a.chars().any(|c| c.is_ascii_uppercase()), "{a}");
        assert!(a.chars().any(|c| c.is_ascii_lowercase()), "{a}");
        assert!(a.chars().any(|c| c.is_ascii_digit()), "{a}");
        assert_ne!(a, new());
    }
}
