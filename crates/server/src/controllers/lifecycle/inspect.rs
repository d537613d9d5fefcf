//! enrolling, inspecting, available: reaching the BMC, reading the
//! inventory, and picking up a placed instance or maintenance.

use super::{declared_macs, issue_token, set_instance, Held, LifecycleController, StepError};
use crate::config::BmcAccountPolicy;
use crate::secrets::SecretBox;
use neocloud_placement::Availability;
use neocloud_redfish::Inventory;
use neocloud_store::{agents, firmware_baselines, instances, nodes, Store};
use neocloud_types::{
    BmcInventory, BootStep, FirmwareBaseline, ImagePurpose, InstanceState, InventoryBmcAccount,
    InventoryBootOption, InventoryCpu, InventoryFirmware, InventoryGpu, InventoryHealth,
    InventoryHealthEvent, InventoryHealthFault, InventoryNic, InventorySecureBoot, Node,
    NodeLifecycle, PlatformBaseline,
};

impl LifecycleController {
    pub(super) fn enrolling(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
    ) -> Result<bool, StepError> {
        let (bmc, _) = self.bmc(store, secrets, n)?;
        let system = bmc.host_system_with(&declared_macs(n)).map_err(StepError::from)?;
        self.advance(store, n, NodeLifecycle::Inspecting, |w| {
            nodes::set_system_path(w, &n.id, &system)
        })
    }

    /// Reads the inventory. A clean node becomes available (a node never
    /// sanitized is sanitized first, with `sanitize_before_first_use`); a
    /// dirty one (it held a tenant and was not sanitized) goes to be
    /// sanitized.
    pub(super) fn inspecting(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
    ) -> Result<bool, StepError> {
        let dirty = store.read(|r| nodes::dirty(r, &n.id)).map_err(StepError::Store)?;
        // Firmware updates an earlier pass planned: done first.
        if dirty.is_none() && !self.onboarding_updates(store, secrets, n)? {
            return Ok(false);
        }
        let (bmc, system) = self.bmc_system(store, secrets, n)?;
        let mut inv = bmc.inventory(&system).map_err(StepError::from)?;
        let firmware: Vec<(String, String)> =
            inv.firmware.iter().map(|f| (f.id.clone(), f.version.clone())).collect();
        // A clean node joins the pool only as the provider's policies want
        // it; a dirty one is put right by its sanitization.
        let admission = match dirty {
            Some(_) => Ok(()),
            None => match self.admit(store, &bmc, n, &mut inv, &firmware)? {
                Admission::Join => Ok(()),
                Admission::Refused(why) => Err(why),
                // Its firmware first (the next passes), then inspected again.
                Admission::UpdateFirmware => return Ok(false),
            },
        };
        // Audited with the transition: the BMC changes this pass made, and
        // any an earlier pass journaled and did not live to record.
        let changed = match (&dirty, &admission) {
            (None, Ok(())) => {
                store.read(|r| nodes::bmc_journal(r, &n.id)).map_err(StepError::Store)?
            }
            _ => Vec::new(),
        };
        let audits: Vec<&str> = [
            (super::host_interfaces::CHECK, "node_host_interfaces_disabled"),
            (super::accounts::CHECK, "node_bmc_accounts_disabled"),
        ]
        .into_iter()
        .filter(|(check, _)| changed.iter().any(|e| e.check == *check))
        .map(|(_, action)| action)
        .collect();
        let found = gpus_found(&inv);
        let macs: Vec<String> = inv.nics.iter().map(|m| m.mac.to_ascii_lowercase()).collect();
        // The boot service finds a node by the MAC it boots from: a MAC of
        // another node's (the same BMC enrolled twice, or a copied MAC)
        // would have each boot the other's scripts.
        let taken = store
            .read(|r| {
                for mac in &macs {
                    if let Some(other) = nodes::mac_owner(r, mac, &n.id)? {
                        return Ok(Some((mac, other)));
                    }
                }
                Ok(None)
            })
            .map_err(StepError::Store)?;
        if let Some((mac, other)) = taken {
            return Err(StepError::Fail(format!(
                "the BMC reports MAC {mac}, which is node {other}'s: the same BMC enrolled \
                 twice, or a MAC copied"
            )));
        }
        let report = bmc_inventory(&inv);
        let rollup = inv.health.rollup.as_deref();
        let faults = fault_names(&inv.health);
        let platform = platform_baseline(&report, inv.bios.as_ref().map(|b| b.path.as_str()));
        let record = |w: &mut dyn neocloud_store::Writer| {
            nodes::record_inventory(
                w,
                &n.id,
                &nodes::Inspected {
                    gpus: found.as_ref().map(|(m, c, g)| (m.as_str(), *c, *g)),
                    macs: &macs,
                    firmware: &firmware,
                    platform: &platform,
                    inventory: &report,
                },
            )?;
            // Changes the control plane made on the node's BMC.
            for action in &audits {
                super::audit_node(w, n, action, "success")?;
            }
            if !changed.is_empty() {
                nodes::clear_bmc_journal(w, &n.id)?;
            }
            // Done with: an inspection asked again plans afresh.
            nodes::set_firmware_updates(w, &n.id, None)?;
            nodes::set_bmc_health(w, &n.id, rollup, &faults)?;
            Ok(())
        };
        match dirty {
            None => match admission {
                Err(reason) => {
                    let to = NodeLifecycle::Failed { reason, from: "inspecting".into() };
                    self.advance(store, n, to, record)
                }
                Ok(()) if self.sanitized_first(store, n)? => {
                    // Its first sanitization (or one to record its
                    // baselines anew): nobody's data, whatever an earlier
                    // owner left on it.
                    self.check_sanitizer(store)?;
                    let to = Held::NOBODY.releasing(BootStep::SetBoot, 1);
                    self.advance(store, n, to, |w| {
                        record(w)?;
                        super::end_boot(w, &n.id)
                    })
                }
                Ok(()) => self.advance(store, n, NodeLifecycle::Available, record),
            },
            Some((tenant, instance)) => {
                self.check_sanitizer(store)?;
                let to = NodeLifecycle::Releasing {
                    tenant_id: Some(tenant),
                    instance_id: Some(instance.clone()),
                    step: BootStep::SetBoot,
                    attempt: 1,
                };
                self.advance(store, n, to, |w| {
                    record(w)?;
                    // As when a release starts: whatever ran on the node
                    // loses its credentials (and its boot token), and an
                    // instance not released yet shows it is being released
                    // (unless it was placed on another node meanwhile).
                    super::end_boot(w, &n.id)?;
                    nodes::set_firmware_updates(w, &n.id, None)?;
                    let i = instances::by_id(w, &instance)?;
                    if i.state != InstanceState::Released && i.node_id == n.id {
                        set_instance(w, &i, InstanceState::Releasing, None)?;
                    }
                    Ok(())
                })
            }
        }
    }

    /// Whether the node goes through a sanitization before it joins the
    /// pool: its first (`sanitize_before_first_use`), or one to record the
    /// baselines the provider had forgotten.
    fn sanitized_first(&self, store: &Store, n: &Node) -> Result<bool, StepError> {
        let forgotten =
            store.read(|r| nodes::baselines_forgotten(r, &n.id)).map_err(StepError::Store)?;
        Ok(forgotten || (self.sanitize_before_first_use && !self.ever_sanitized(store, n)?))
    }

    fn ever_sanitized(&self, store: &Store, n: &Node) -> Result<bool, StepError> {
        store.read(|r| agents::ever_sanitized(r, &n.id)).map_err(StepError::Store)
    }

    /// An available node: inspect again, provision a placed instance (or
    /// free one released before it started), or go into maintenance.
    pub(super) fn available(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
    ) -> Result<bool, StepError> {
        let inst = store.read(|r| instances::live_on_node(r, &n.id)).map_err(StepError::Store)?;
        match inst {
            Some(i) if matches!(i.state, InstanceState::Pending | InstanceState::Failed) => {
                let (released, bmc) = store
                    .read(|r| Ok((instances::release_requested(r, &i.id)?, nodes::bmc(r, &n.id)?)))
                    .map_err(StepError::Store)?;
                if released {
                    // Never started: nothing of the tenant's is on the node.
                    return self.advance_freeing(store, n, NodeLifecycle::Available, |w| {
                        super::free_instance(w, &self.planners, &i)
                    });
                }
                if i.state == InstanceState::Failed {
                    return Ok(false);
                }
                if bmc.is_none() {
                    // Registered for placement only: nothing can boot it.
                    // The node stays clean; the tenant sees why and releases.
                    return self.advance(store, n, NodeLifecycle::Available, |w| {
                        set_instance(
                            w,
                            &i,
                            InstanceState::Failed,
                            Some("the node was registered without a BMC and cannot be provisioned; release the instance"),
                        )
                    });
                }
                let to = NodeLifecycle::Provisioning {
                    tenant_id: i.tenant_id.clone(),
                    instance_id: i.id.clone(),
                    step: BootStep::SetBoot,
                    attempt: 1,
                };
                self.advance(store, n, to, |w| {
                    // From here on the node may hold the tenant's data.
                    nodes::set_dirty(w, &n.id, Some((&i.tenant_id, &i.id)))?;
                    issue_token(w, secrets, &n.id, ImagePurpose::Tenant, &i.id)?;
                    set_instance(w, &i, InstanceState::Provisioning, None)
                })
            }
            Some(_) => Ok(false),
            None if Self::inspect_requested(store, n)? => {
                self.advance(store, n, NodeLifecycle::Enrolling, |_| Ok(()))
            }
            None if n.availability == Availability::Maintenance => {
                self.advance(store, n, NodeLifecycle::Maintenance, |_| Ok(()))
            }
            None => Ok(false),
        }
    }
}

/// GPU model key, count and memory per GPU (GB) from an inventory.
fn gpus_found(inv: &Inventory) -> Option<(String, u8, u32)> {
    let first = inv.gpus.first()?;
    let model = super::gpu_model_key(&first.model);
    let count =
        inv.gpus.iter().filter(|g| super::gpu_model_key(&g.model) == model).count().min(16) as u8;
    let mem_gb = ((first.memory_mib as f64) / 1024.0).round() as u32;
    Some((model, count, mem_gb.max(1)))
}

impl LifecycleController {
    /// The provider's baseline for a system model, if it has one
    /// (`/v1/firmware-baselines`, read at each use: a change applies from
    /// the next inspection or sanitization).
    pub(super) fn firmware_policy_of(
        &self,
        store: &Store,
        model: &str,
    ) -> Result<Option<FirmwareBaseline>, StepError> {
        store.read(|r| firmware_baselines::for_model(r, model)).map_err(StepError::Store)
    }

    /// Whether a clean node may join the pool: its firmware as the
    /// provider's baseline for its model wants it (updated from the
    /// baseline's images first, where it has them: once per inspection),
    /// its BMC's host interfaces turned off (here, under the `disabled`
    /// policy) and its accounts other than the control plane's disabled
    /// (under `exclusive`), each change journaled.
    fn admit(
        &self,
        store: &Store,
        bmc: &neocloud_redfish::Bmc,
        n: &Node,
        inv: &mut Inventory,
        firmware: &[(String, String)],
    ) -> Result<Admission, StepError> {
        // A node its BMC reports failing goes to no tenant (a person looks
        // at it, then inspects it again).
        if inv.health.critical() {
            return Ok(Admission::Refused(format!(
                "the BMC reports the node's hardware Critical: {}",
                inv.health.describe()
            )));
        }
        let policy = self.firmware_policy_of(store, &inv.system.model)?;
        if let Some(why) = policy_mismatches(policy.as_ref(), firmware) {
            // Updated from the baseline's images once per inspection.
            let tried =
                store.read(|r| nodes::firmware_updates(r, &n.id)).map_err(StepError::Store)?;
            if let (None, Some(p)) = (&tried, &policy) {
                if self.plan_onboarding(store, n, p, &inv.firmware)? {
                    return Ok(Admission::UpdateFirmware);
                }
            }
            let tried = tried
                .filter(|u| !u.is_empty())
                .map(|u| format!("; updated from its images: {}", super::firmware::summary(&u)))
                .unwrap_or_default();
            return Ok(Admission::Refused(format!(
                "firmware differs from the provider's baseline: {why}{tried}"
            )));
        }
        let journal = super::journal::Journal::new(store, &n.id);
        let off = match super::host_interfaces::lock(
            bmc,
            self.host_interfaces,
            &mut inv.host_interfaces,
            &journal,
        )? {
            Ok(off) => off,
            Err(why) => return Ok(Admission::Refused(why)),
        };
        if !off.is_empty() {
            tracing::info!(node = %n.name, interfaces = %off.join(", "), "BMC host interfaces turned off");
        }
        let own_user = match self.bmc_accounts {
            BmcAccountPolicy::Baseline => String::new(),
            BmcAccountPolicy::Exclusive => store
                .read(|r| nodes::bmc(r, &n.id))
                .map_err(StepError::Store)?
                .map(|b| b.username)
                .unwrap_or_default(),
        };
        let off = match super::accounts::lock(
            bmc,
            super::accounts::Owner { user: &own_user, policy: self.bmc_accounts },
            &mut inv.accounts,
            &journal,
        )? {
            Ok(off) => off,
            Err(why) => return Ok(Admission::Refused(why)),
        };
        if !off.is_empty() {
            tracing::info!(node = %n.name, accounts = %off.join(", "), "BMC accounts other than the control plane's disabled");
        }
        Ok(Admission::Join)
    }
}

/// What a clean node's inspection makes of it.
enum Admission {
    /// It joins the pool.
    Join,
    /// It does not: why.
    Refused(String),
    /// Its firmware is updated from the provider's images first, then it
    /// is inspected again.
    UpdateFirmware,
}

/// What of the provider's baseline the firmware read does not match, or
/// `None` when it all does (or there is no baseline).
fn policy_mismatches(
    policy: Option<&FirmwareBaseline>,
    firmware: &[(String, String)],
) -> Option<String> {
    let policy = policy?;
    let off: Vec<String> = policy
        .components
        .iter()
        .filter_map(|(id, want)| match firmware.iter().find(|(f, _)| f == id) {
            Some((_, have)) if have == want => None,
            Some((_, have)) => Some(format!("{id} {have} (want {want})")),
            None => Some(format!("{id} not reported (want {want})")),
        })
        .collect();
    (!off.is_empty()).then(|| format!("{} ({}): {}", policy.model, policy.name, off.join(", ")))
}

/// The firmware versions as the node's inventory records them.
pub(super) fn inventory_firmware(read: &[neocloud_redfish::Firmware]) -> Vec<InventoryFirmware> {
    read.iter()
        .map(|f| InventoryFirmware {
            id: f.id.clone(),
            name: f.name.clone(),
            version: f.version.clone(),
        })
        .collect()
}

/// The inventory as operators read it.
fn bmc_inventory(inv: &Inventory) -> BmcInventory {
    BmcInventory {
        inspected_at: neocloud_common::time::to_rfc3339(neocloud_common::time::now_micros()),
        firmware_read_at: None,
        system_id: inv.system.id.clone(),
        uuid: inv.system.uuid.clone(),
        manufacturer: inv.system.manufacturer.clone(),
        model: inv.system.model.clone(),
        serial: inv.system.serial.clone(),
        tpms: inv.system.tpms.clone(),
        cpus: inv
            .cpus
            .iter()
            .map(|c| InventoryCpu { id: c.id.clone(), model: c.model.clone(), cores: c.cores })
            .collect(),
        memory_mib: inv.memory_mib,
        nics: inv
            .nics
            .iter()
            .map(|n| InventoryNic { id: n.id.clone(), mac: n.mac.clone() })
            .collect(),
        gpus: inv
            .gpus
            .iter()
            .map(|g| InventoryGpu {
                id: g.id.clone(),
                model: g.model.clone(),
                serial: g.serial.clone(),
                uuid: g.uuid.clone(),
                memory_mib: g.memory_mib,
                mig_enabled: g.mig_enabled,
            })
            .collect(),
        firmware: inventory_firmware(&inv.firmware),
        secure_boot: inv.secure_boot.as_ref().map(secure_boot),
        bmc_accounts: inv.accounts.as_ref().map(|a| a.iter().map(account).collect()),
        bios: inv.bios.as_ref().map(|b| b.attributes.clone()),
        boot_order: inv.boot_order.clone(),
        boot_options: inv.boot_options.as_ref().map(|o| o.iter().map(boot_option).collect()),
        host_interfaces: inv
            .host_interfaces
            .as_ref()
            .map(|h| h.iter().map(super::host_interfaces::inventory).collect()),
        health: Some(health(&inv.health)),
    }
}

/// The BMC's word on the node's health, as operators read it.
pub(super) fn health(h: &neocloud_redfish::Health) -> InventoryHealth {
    InventoryHealth {
        rollup: h.rollup.clone(),
        faults: h
            .faults
            .iter()
            .map(|f| InventoryHealthFault {
                path: f.path.clone(),
                name: f.name.clone(),
                health: f.health.clone(),
            })
            .collect(),
        events: h
            .events
            .iter()
            .map(|e| InventoryHealthEvent {
                path: e.path.clone(),
                created: e.created.clone(),
                severity: e.severity.clone(),
                message: e.message.clone(),
            })
            .collect(),
        unread: h.unread.clone(),
    }
}

/// The parts `h` reports other than healthy, as a node and its tenant see
/// them (`GPU_SXM_3 Critical`).
pub(super) fn fault_names(h: &neocloud_redfish::Health) -> Vec<String> {
    h.faults.iter().map(|f| f.short()).collect()
}

pub(super) fn boot_option(o: &neocloud_redfish::BootOption) -> InventoryBootOption {
    InventoryBootOption {
        reference: o.reference.clone(),
        display_name: o.display_name.clone(),
        device_path: o.device_path.clone(),
        enabled: o.enabled,
    }
}

pub(super) fn secure_boot(sb: &neocloud_redfish::SecureBoot) -> InventorySecureBoot {
    InventorySecureBoot { enable: sb.enable, mode: sb.mode.clone() }
}

pub(super) fn account(a: &neocloud_redfish::BmcAccount) -> InventoryBmcAccount {
    InventoryBmcAccount {
        user_name: a.user_name.clone(),
        role_id: a.role_id.clone(),
        enabled: a.enabled,
    }
}

/// What a clean inspection records as the node's platform baseline: Secure
/// Boot, the BIOS attributes and the boot order as they are, and the
/// accounts and boot options enabled.
pub(super) fn platform_baseline(inv: &BmcInventory, bios_path: Option<&str>) -> PlatformBaseline {
    PlatformBaseline {
        bios_path: bios_path.map(str::to_string),
        bios: inv.bios.clone(),
        boot_order: inv.boot_order.clone(),
        boot_options: inv
            .boot_options
            .as_ref()
            .map(|o| o.iter().filter(|o| o.enabled).cloned().collect()),
        secure_boot: inv.secure_boot.clone(),
        bmc_accounts: inv
            .bmc_accounts
            .as_ref()
            .map(|a| a.iter().filter(|a| a.enabled).cloned().collect()),
    }
}
