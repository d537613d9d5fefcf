//! The platform settings sanitization restores: UEFI Secure Boot, the
//! BMC's local accounts, the BIOS attributes, the UEFI boot options and
//! boot order, all of which a tenant with root on the host can change
//! in-band (the host's IPMI or Redfish host interface, vendor tools,
//! `efibootmgr`, the UEFI setup). The node's first clean
//! inspection is the baseline ([`PlatformBaseline`]). Before the sanitizer
//! boots, every BIOS attribute that differs from it (in effect or pending)
//! is staged back, so the sanitizer's own boot applies it. At the end,
//! each sanitization turns Secure Boot back, disables every enabled
//! account the policy does not keep (`accounts`), disables every boot
//! option the baseline does not have and sets the boot order back, reads
//! all of it back, and records what it did. What it cannot restore (Secure
//! Boot keys in another mode, the control plane's own account changed, a
//! BIOS attribute the BMC did not apply) fails the record, so the node goes
//! to no one.

use super::accounts::Owner;
use super::journal::Journal;
use super::StepError;
use neocloud_redfish::{bios_changes, BiosAttributes, Bmc, BootOption, Inventory, RedfishError};
use neocloud_store::nodes::BiosStaged;
use neocloud_types::{
    InventoryBootOption, InventorySecureBoot, PlatformBaseline, SanitizationCheck, StepItem,
};

pub(super) fn item(target: &str, method: &str, ok: bool, detail: &str) -> StepItem {
    StepItem { target: target.into(), method: method.into(), ok, detail: detail.into() }
}

pub(super) fn check(name: &str, items: Vec<StepItem>) -> SanitizationCheck {
    SanitizationCheck { name: name.into(), ok: items.iter().all(|i| i.ok), items }
}

/// What Secure Boot needs, from the baseline and what the BMC reports now.
#[derive(Debug, PartialEq, Eq)]
enum SecureBootPlan {
    /// No baseline to hold it to (the BMC did not report it at inspection).
    NoBaseline,
    /// Reported at inspection, not now.
    Vanished,
    /// The mode (which keys are enrolled) differs: not restorable here.
    ModeChanged { now: String, want: String },
    /// As in the baseline.
    Keep,
    /// `SecureBootEnable` to be set back.
    Set(bool),
}

fn plan_secure_boot(
    base: Option<&InventorySecureBoot>,
    now: Option<&InventorySecureBoot>,
) -> SecureBootPlan {
    match (base, now) {
        (None, _) => SecureBootPlan::NoBaseline,
        (Some(_), None) => SecureBootPlan::Vanished,
        (Some(b), Some(n)) => match (&b.mode, &n.mode) {
            (Some(want), Some(now)) if want != now => {
                SecureBootPlan::ModeChanged { now: now.clone(), want: want.clone() }
            }
            (Some(want), None) => {
                SecureBootPlan::ModeChanged { now: "not reported".into(), want: want.clone() }
            }
            _ if b.enable == n.enable => SecureBootPlan::Keep,
            _ => SecureBootPlan::Set(b.enable),
        },
    }
}

/// Restores Secure Boot and the BMC accounts to the baseline and checks
/// them: the `secure_boot` and `bmc_accounts` checks of the record.
pub(super) fn restore(
    bmc: &Bmc,
    system: &str,
    baseline: Option<&PlatformBaseline>,
    inv: &Inventory,
    bios_staged: &BiosStaged,
    owner: Owner,
    journal: &Journal,
) -> Result<Vec<SanitizationCheck>, StepError> {
    let Some(base) = baseline else {
        let why = "no baseline: the node was last inspected clean before Secure Boot and BMC \
                   accounts were recorded (inspect it again while available)";
        return Ok(vec![
            check("secure_boot", vec![item(system, "baseline", true, why)]),
            check("bmc_accounts", vec![item("accounts", "baseline", true, why)]),
            check("bios", vec![item("bios", "baseline", true, why)]),
            check("boot_order", vec![item(system, "baseline", true, why)]),
        ]);
    };
    Ok(vec![
        secure_boot(bmc, system, base, inv, journal)?,
        super::accounts::sanitize(bmc, owner, base, inv, journal)?,
        bios(base, inv, bios_staged),
        boot_order(bmc, system, base, inv, journal)?,
    ])
}

/// A BMC's refusal becomes the item's failure (with its answer); what may
/// pass is retried.
pub(super) fn soft<T>(r: Result<T, RedfishError>) -> Result<Result<T, String>, StepError> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.is_transient() => Err(StepError::Retry(e)),
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// Whether `o` is one of the baseline's options: the same reference,
/// name and device path (a tenant can point an existing option elsewhere).
fn known_option(base: &[InventoryBootOption], o: &BootOption) -> bool {
    base.iter().any(|b| {
        b.reference == o.reference
            && b.display_name == o.display_name
            && b.device_path == o.device_path
    })
}

/// The boot options and the persistent boot order, which live in the
/// firmware's NVRAM and steer every reboot the next tenant makes: every
/// enabled option the baseline does not have is disabled, and the order set
/// back to the baseline's; both read back. The `boot_order` check.
fn boot_order(
    bmc: &Bmc,
    system: &str,
    base: &PlatformBaseline,
    inv: &Inventory,
    journal: &Journal,
) -> Result<SanitizationCheck, StepError> {
    let mut items = Vec::new();
    match (&base.boot_options, &inv.boot_options) {
        (None, _) => items.push(item("boot options", "redfish", true, "not listed at inspection")),
        (Some(_), None) => {
            items.push(item("boot options", "redfish", false, "listed at inspection, not now"))
        }
        (Some(want), Some(now)) => {
            // A baseline option the tenant disabled (the PXE one: the next
            // provision's network boot would find nothing to boot).
            for o in now.iter().filter(|o| !o.enabled && known_option(want, o)) {
                let what = format!("{} {:?}, disabled", o.reference, o.display_name);
                journal.before("boot_order", &o.path, &format!("enable {what}"))?;
                items.push(match soft(bmc.set_boot_option_enabled(o, true))? {
                    Ok(after) if after.enabled => {
                        item(&o.path, "redfish-patch", true, &format!("{what}: enabled again"))
                    }
                    Ok(_) => item(
                        &o.path,
                        "redfish-patch",
                        false,
                        &format!("{what}: still disabled after enabling it"),
                    ),
                    Err(why) => item(
                        &o.path,
                        "redfish-patch",
                        false,
                        &format!("{what}: the BMC refused to enable it: {why}"),
                    ),
                });
            }
            for o in now.iter().filter(|o| o.enabled && !known_option(want, o)) {
                let what = format!(
                    "{} {:?} ({}), not in the baseline",
                    o.reference,
                    o.display_name,
                    o.device_path.as_deref().unwrap_or("no device path")
                );
                journal.before("boot_order", &o.path, &format!("disable {what}"))?;
                items.push(match soft(bmc.disable_boot_option(o))? {
                    Ok(after) if !after.enabled => {
                        item(&o.path, "redfish-patch", true, &format!("{what}: disabled"))
                    }
                    Ok(_) => item(
                        &o.path,
                        "redfish-patch",
                        false,
                        &format!("{what}: still enabled after disabling it"),
                    ),
                    Err(why) => item(
                        &o.path,
                        "redfish-patch",
                        false,
                        &format!("{what}: the BMC refused to disable it: {why}"),
                    ),
                });
            }
        }
    }
    let list = |o: &[String]| o.join(", ");
    items.push(match (&base.boot_order, &inv.boot_order) {
        (None, _) => item(system, "redfish", true, "boot order not reported at inspection"),
        (Some(_), None) => {
            item(system, "redfish", false, "boot order reported at inspection, not now")
        }
        (Some(want), Some(now)) if want == now => {
            item(system, "redfish", true, &format!("boot order {} as in the baseline", list(want)))
        }
        (Some(want), Some(now)) => set_boot_order(bmc, system, now, want, journal)?,
    });
    Ok(check("boot_order", items))
}

/// Sets the boot order back to the baseline's (journaled first), read back.
fn set_boot_order(
    bmc: &Bmc,
    system: &str,
    now: &[String],
    want: &[String],
    journal: &Journal,
) -> Result<StepItem, StepError> {
    let list = |o: &[String]| o.join(", ");
    let what = format!("set the boot order {} back to {}", list(now), list(want));
    journal.before("boot_order", system, &what)?;
    Ok(match soft(bmc.set_boot_order(system, want))? {
        Ok(after) if after == want => item(
            system,
            "redfish-patch",
            true,
            &format!("boot order was {}, set back to {}", list(now), list(want)),
        ),
        Ok(after) => item(
            system,
            "redfish-patch",
            false,
            &format!(
                "boot order was {}, reads {} after setting it to {}",
                list(now),
                list(&after),
                list(want)
            ),
        ),
        Err(why) => item(
            system,
            "redfish-patch",
            false,
            &format!(
                "boot order {}, baseline {}: the BMC refused it: {why}",
                list(now),
                list(want)
            ),
        ),
    })
}

/// Before the sanitizer's boot: stages every BIOS attribute that differs
/// from the baseline, in effect or pending, for the next reset (that boot),
/// and answers what it staged (each with the value found: in effect, or
/// the one pending where only that differed) and what the BMC then holds
/// pending. What it is about to stage goes to `before` first, which records
/// it: a control plane killed before it hears the BMC's answer still has
/// it for the record. Nothing without a BIOS baseline or a BIOS on the BMC
/// now (the end of sanitization reports the latter).
pub(super) fn stage_bios(
    bmc: &Bmc,
    system: &str,
    baseline: Option<&PlatformBaseline>,
    before: impl FnOnce(&BiosStaged) -> Result<(), StepError>,
) -> Result<Option<(BiosStaged, BiosAttributes)>, StepError> {
    let Some(want) = baseline.and_then(|b| b.bios.as_ref()) else { return Ok(None) };
    // Where inspection found it (one read fewer), else through the system.
    let known = match baseline.and_then(|b| b.bios_path.as_deref()) {
        Some(path) => bmc.bios_at(path).map_err(StepError::from)?,
        None => None,
    };
    let bios = match known {
        Some(b) => b,
        None => match bmc.bios(system).map_err(StepError::from)? {
            Some(b) => b,
            None => return Ok(None),
        },
    };
    let pending = bmc.pending_bios(&bios).map_err(StepError::from)?;
    let changes = bios_changes(want, &bios.attributes, &pending);
    if changes.is_empty() {
        return Ok(None);
    }
    let staged: BiosStaged = changes
        .iter()
        .map(|(k, v)| {
            let now = bios.attributes.get(k).filter(|now| *now != v);
            let found = now.or_else(|| pending.get(k)).cloned().unwrap_or_default();
            (k.clone(), (found, v.clone()))
        })
        .collect();
    before(&staged)?;
    let held = bmc.stage_bios(&bios, &changes).map_err(StepError::from)?;
    Ok(Some((staged, held)))
}

/// The BIOS attributes in effect after the sanitizer's boot, against the
/// baseline: the `bios` check, with an item for each attribute staged back
/// at the release (`staged`). Attributes the BMC reports beyond the
/// baseline (a BIOS update adds some) are not judged.
fn bios(base: &PlatformBaseline, inv: &Inventory, staged: &BiosStaged) -> SanitizationCheck {
    let Some(want) = &base.bios else {
        return check("bios", vec![item("bios", "redfish", true, "not reported at inspection")]);
    };
    let Some(now) = &inv.bios else {
        return check(
            "bios",
            vec![item("bios", "redfish", false, "reported at inspection, no longer reported")],
        );
    };
    let mut items: Vec<StepItem> = want
        .iter()
        .filter_map(|(k, w)| match now.attributes.get(k) {
            Some(v) if v == w => None,
            Some(v) => Some(item(
                k,
                "redfish",
                false,
                &format!("{v}, baseline {w}: staged before the sanitizer's boot, not applied"),
            )),
            None => Some(item(k, "redfish", false, "no longer reported")),
        })
        .collect();
    for (k, (found, want)) in staged {
        if now.attributes.get(k) == Some(want) {
            items.push(item(
                k,
                "redfish-patch",
                true,
                &format!("was {found}, staged back to {want} before the sanitizer's boot: applied"),
            ));
        }
    }
    if items.iter().all(|i| i.ok) {
        items.push(item(
            &now.path,
            "redfish",
            true,
            &format!("{} attribute(s) as in the baseline", want.len()),
        ));
    }
    check("bios", items)
}

fn secure_boot(
    bmc: &Bmc,
    system: &str,
    base: &PlatformBaseline,
    inv: &Inventory,
    journal: &Journal,
) -> Result<SanitizationCheck, StepError> {
    let now = inv.secure_boot.as_ref().map(super::inspect::secure_boot);
    let target = inv.secure_boot.as_ref().map(|s| s.path.as_str()).unwrap_or(system);
    let on = |b: bool| if b { "on" } else { "off" };
    let it = match plan_secure_boot(base.secure_boot.as_ref(), now.as_ref()) {
        SecureBootPlan::NoBaseline => {
            item(target, "redfish", true, "not reported by the BMC at inspection")
        }
        SecureBootPlan::Vanished => {
            item(target, "redfish", false, "reported at inspection, no longer reported by the BMC")
        }
        SecureBootPlan::ModeChanged { now, want } => item(
            target,
            "redfish",
            false,
            &format!(
                "mode {now}, baseline {want}: the Secure Boot keys changed; restore them on the \
                 BMC, then inspect the node again"
            ),
        ),
        SecureBootPlan::Keep => item(
            target,
            "redfish",
            true,
            &format!("{} as in the baseline", on(now.as_ref().is_some_and(|n| n.enable))),
        ),
        SecureBootPlan::Set(want) => {
            let sb = inv.secure_boot.as_ref().expect("planned from a reported Secure Boot");
            let what = format!("set Secure Boot back {} (was {})", on(want), on(!want));
            journal.before("secure_boot", target, &what)?;
            let after = bmc.set_secure_boot(sb, want).map_err(StepError::from)?;
            let ok = after.enable == want;
            let detail = if ok {
                format!(
                    "was {}, set back {} (the baseline; from the next boot)",
                    on(!want),
                    on(want)
                )
            } else {
                format!(
                    "was {}, still {} after setting it {}",
                    on(!want),
                    on(after.enable),
                    on(want)
                )
            };
            item(target, "redfish-patch", ok, &detail)
        }
    };
    Ok(check("secure_boot", vec![it]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sb(enable: bool, mode: &str) -> InventorySecureBoot {
        InventorySecureBoot { enable, mode: Some(mode.into()) }
    }

    #[test]
    fn secure_boot_goes_back_to_the_baseline() {
        let d = "DeployedMode";
        assert_eq!(plan_secure_boot(None, Some(&sb(false, d))), SecureBootPlan::NoBaseline);
        assert_eq!(plan_secure_boot(Some(&sb(true, d)), None), SecureBootPlan::Vanished);
        assert_eq!(plan_secure_boot(Some(&sb(true, d)), Some(&sb(true, d))), SecureBootPlan::Keep);
        assert_eq!(
            plan_secure_boot(Some(&sb(true, d)), Some(&sb(false, d))),
            SecureBootPlan::Set(true)
        );
        assert_eq!(
            plan_secure_boot(Some(&sb(false, d)), Some(&sb(true, d))),
            SecureBootPlan::Set(false)
        );
        assert_eq!(
            plan_secure_boot(Some(&sb(true, d)), Some(&sb(true, "SetupMode"))),
            SecureBootPlan::ModeChanged { now: "SetupMode".into(), want: d.into() }
        );
        let no_mode = InventorySecureBoot { enable: true, mode: None };
        assert_eq!(plan_secure_boot(Some(&no_mode), Some(&sb(true, d))), SecureBootPlan::Keep);
    }
}
