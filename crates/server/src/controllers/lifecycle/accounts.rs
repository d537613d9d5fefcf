//! The BMC's local accounts (`bmc_accounts`). A tenant with root on the
//! host reaches the BMC's user table in-band (the host's IPMI), so it can
//! add an account, enable one, change a role or a password, and keep a way
//! into the BMC after its tenancy. Every sanitization disables each enabled
//! account that the node's baseline does not have in that role (the
//! `bmc_accounts` check). Under the `exclusive` policy the baseline is the
//! control plane's account alone: a clean inspection disables every other
//! enabled account before the node joins the pool, and every sanitization
//! any found enabled again, so no password a tenant could have set on a
//! provider's account opens the BMC afterwards. Each change is journaled
//! before it is sent and read back.

use super::journal::Journal;
use super::platform::{check, item, soft};
use super::StepError;
use crate::config::BmcAccountPolicy;
use neocloud_redfish::{Bmc, BmcAccount, Inventory};
use neocloud_types::{InventoryBmcAccount, PlatformBaseline, SanitizationCheck};

/// The record's check, and the journal's name for its changes.
pub(super) const CHECK: &str = "bmc_accounts";

/// Whose the BMC is: the account the control plane logs in with, and the
/// policy for the others.
#[derive(Debug, Clone, Copy)]
pub(super) struct Owner<'a> {
    pub user: &'a str,
    pub policy: BmcAccountPolicy,
}

/// What to do with one enabled account.
#[derive(Debug, PartialEq, Eq)]
enum AccountPlan {
    Keep,
    /// Not in the baseline, in another role, or (exclusive) not the
    /// control plane's: disable it.
    Disable(String),
    /// The control plane's own account in another role: it cannot disable
    /// itself, and must not keep a changed role.
    Refuse(String),
}

fn plan_account(base: &[InventoryBmcAccount], owner: Owner, a: &BmcAccount) -> AccountPlan {
    let mine = a.user_name == owner.user;
    match owner.policy {
        BmcAccountPolicy::Exclusive if !mine => {
            return AccountPlan::Disable(format!(
                "role {:?}, not the control plane's (bmc_accounts = exclusive)",
                a.role_id
            ))
        }
        BmcAccountPolicy::Exclusive | BmcAccountPolicy::Baseline => {}
    }
    let known = base.iter().find(|b| b.user_name == a.user_name);
    match known {
        Some(b) if b.role_id == a.role_id => AccountPlan::Keep,
        Some(b) if mine => AccountPlan::Refuse(format!(
            "the control plane's own account has role {:?}, baseline {:?}",
            a.role_id, b.role_id
        )),
        Some(b) => AccountPlan::Disable(format!("role {:?}, baseline {:?}", a.role_id, b.role_id)),
        // The control plane's own account, missing from a baseline taken
        // before it was created: it is the one making these calls.
        None if mine => AccountPlan::Keep,
        None => AccountPlan::Disable(format!("role {:?}, not in the baseline", a.role_id)),
    }
}

/// Disables `a` (journaled first) and reads it back: what the BMC reports
/// after, or its refusal. What may pass is retried.
fn disable(
    bmc: &Bmc,
    a: &BmcAccount,
    why: &str,
    journal: &Journal,
) -> Result<Result<BmcAccount, String>, StepError> {
    journal.before(CHECK, &a.path, &format!("disable {:?} ({why})", a.user_name))?;
    soft(bmc.disable_account(a))
}

/// At a clean node's inspection, under the `exclusive` policy: disables
/// every enabled account but the control plane's and puts what the BMC
/// reports after into `found` (the baseline is taken from it). Answers the
/// accounts disabled, or why the node cannot join the pool.
pub(super) fn lock(
    bmc: &Bmc,
    owner: Owner,
    found: &mut Option<Vec<BmcAccount>>,
    journal: &Journal,
) -> Result<Result<Vec<String>, String>, StepError> {
    let own_user = owner.user;
    match owner.policy {
        BmcAccountPolicy::Baseline => return Ok(Ok(Vec::new())),
        BmcAccountPolicy::Exclusive => {}
    }
    let Some(list) = found.as_mut() else {
        return Ok(Err("the BMC reports no account service, so it cannot be shown to hold the \
                       control plane's account alone (bmc_accounts = exclusive)"
            .into()));
    };
    if !list.iter().any(|a| a.enabled && a.user_name == own_user) {
        return Ok(Err(format!(
            "the control plane's account {own_user:?} is not among the BMC's enabled accounts \
             (bmc_accounts = exclusive)"
        )));
    }
    let mut off = Vec::new();
    let mut refused = Vec::new();
    for a in list.iter_mut().filter(|a| a.enabled && a.user_name != own_user) {
        match plan_account(&[], owner, a) {
            AccountPlan::Disable(why) => match disable(bmc, a, &why, journal)? {
                Ok(after) if !after.enabled => {
                    off.push(a.user_name.clone());
                    *a = after;
                }
                Ok(after) => {
                    refused.push(format!("{:?} still enabled after disabling it", a.user_name));
                    *a = after;
                }
                Err(e) => {
                    refused.push(format!("{:?}: the BMC refused to disable it: {e}", a.user_name))
                }
            },
            AccountPlan::Keep | AccountPlan::Refuse(_) => {}
        }
    }
    if refused.is_empty() {
        Ok(Ok(off))
    } else {
        Ok(Err(format!(
            "the BMC keeps an account other than the control plane's enabled (bmc_accounts = \
             exclusive): {}",
            refused.join("; ")
        )))
    }
}

/// At the end of sanitization: the `bmc_accounts` check. Every enabled
/// account the policy does not keep is disabled and read back.
pub(super) fn sanitize(
    bmc: &Bmc,
    owner: Owner,
    base: &PlatformBaseline,
    inv: &Inventory,
    journal: &Journal,
) -> Result<SanitizationCheck, StepError> {
    let Some(want) = &base.bmc_accounts else {
        return Ok(check(
            CHECK,
            vec![item("accounts", "redfish", true, "no account service at inspection")],
        ));
    };
    let Some(now) = &inv.accounts else {
        return Ok(check(
            CHECK,
            vec![item(
                "accounts",
                "redfish",
                false,
                "the account service was reported at inspection, not now",
            )],
        ));
    };
    let mut items = Vec::new();
    let mut kept = 0;
    for a in now.iter().filter(|a| a.enabled) {
        match plan_account(want, owner, a) {
            AccountPlan::Keep => kept += 1,
            AccountPlan::Refuse(why) => items.push(item(&a.path, "redfish", false, &why)),
            AccountPlan::Disable(why) => {
                let (ok, detail) = match disable(bmc, a, &why, journal)? {
                    Ok(after) if !after.enabled => {
                        (true, format!("{:?} ({why}) disabled", a.user_name))
                    }
                    Ok(_) => (
                        false,
                        format!("{:?} ({why}) still enabled after disabling it", a.user_name),
                    ),
                    Err(e) => (
                        false,
                        format!("{:?} ({why}): the BMC refused to disable it: {e}", a.user_name),
                    ),
                };
                items.push(item(&a.path, "redfish-patch", ok, &detail));
            }
        }
    }
    let kept = match owner.policy {
        BmcAccountPolicy::Baseline => format!("{kept} enabled account(s) as in the baseline"),
        BmcAccountPolicy::Exclusive => {
            format!("{kept} enabled account(s): the control plane's (bmc_accounts = exclusive)")
        }
    };
    items.push(item("accounts", "redfish", true, &kept));
    Ok(check(CHECK, items))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(user: &str, role: &str) -> InventoryBmcAccount {
        InventoryBmcAccount { user_name: user.into(), role_id: role.into(), enabled: true }
    }

    fn now(user: &str, role: &str) -> BmcAccount {
        BmcAccount {
            path: format!("/a/{user}"),
            user_name: user.into(),
            role_id: role.into(),
            enabled: true,
        }
    }

    #[test]
    fn accounts_not_in_the_baseline_are_disabled() {
        let b = [base("root", "Administrator"), base("neocloud", "Administrator")];
        let owner = Owner { user: "neocloud", policy: BmcAccountPolicy::Baseline };
        let plan = |a: &BmcAccount| plan_account(&b, owner, a);
        assert_eq!(plan(&now("root", "Administrator")), AccountPlan::Keep);
        assert!(matches!(
            plan(&now("eve", "Administrator")),
            AccountPlan::Disable(w) if w.contains("not in the baseline")
        ));
        assert!(matches!(
            plan(&now("root", "Operator")),
            AccountPlan::Disable(w) if w.contains("baseline \"Administrator\"")
        ));
        assert!(matches!(plan(&now("neocloud", "ReadOnly")), AccountPlan::Refuse(_)));
        // Its own account, created after the baseline was taken: kept.
        assert_eq!(
            plan_account(&b[..1], owner, &now("neocloud", "Administrator")),
            AccountPlan::Keep
        );
    }

    #[test]
    fn exclusive_keeps_the_control_planes_account_alone() {
        // A baseline taken before the policy changed still lists root.
        let b = [base("root", "Administrator"), base("neocloud", "Administrator")];
        let owner = Owner { user: "neocloud", policy: BmcAccountPolicy::Exclusive };
        let plan = |a: &BmcAccount| plan_account(&b, owner, a);
        assert!(matches!(
            plan(&now("root", "Administrator")),
            AccountPlan::Disable(w) if w.contains("not the control plane's (bmc_accounts = exclusive)")
        ));
        assert_eq!(plan(&now("neocloud", "Administrator")), AccountPlan::Keep);
        assert!(matches!(plan(&now("neocloud", "ReadOnly")), AccountPlan::Refuse(_)));
    }
}
