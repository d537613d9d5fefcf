//! releasing and sanitizing: booting the provider's sanitizer, running its
//! node-local steps, the BMC-side checks, and the signed record. The node
//! becomes available only with a complete record.

use super::firmware_check::firmware_check;
use super::health::health_check;
use super::journal::Journal;
use super::platform::item;
use super::provision::in_state;
use super::tpm::{tpm_cleared_at_boot, tpm_identity_check, tpm_unseen};
use super::{end_boot, free_instance, new_boot, set_instance, LifecycleController, StepError};
use crate::network::isolation;
use crate::secrets::SecretBox;
use neocloud_common::{new_id, time::now_micros, time::to_rfc3339, Error};
use neocloud_redfish::{PowerState, RedfishError, ResetType, SystemInfo};
use neocloud_store::nodes::BiosStaged;
use neocloud_store::{agents, images, instances, nodes, Store};
use neocloud_types::{
    AgentStepKind, BootMethod, BootStep, ImagePurpose, InstanceState, Node, NodeLifecycle,
    SanitizationBody, SanitizationCheck, SanitizeStep,
};
use std::time::Duration;

/// Where a release's power cycle stands before the sanitizer's token.
enum Off {
    /// Not read off yet: the next pass looks again.
    NotYet,
    /// The sanitizer's token was used (its boot registered): no reset.
    TokenUsed,
    /// Read off, as this read of the system says.
    Read(Box<SystemInfo>),
}

/// Whose data a sanitization removes: the tenant's instance whose release
/// it follows, or nobody's (the node's first sanitization, before it joins
/// the pool: whatever an earlier owner left on it).
#[derive(Debug, Clone, Copy)]
pub(super) struct Held<'a> {
    pub tenant: Option<&'a str>,
    pub instance: Option<&'a str>,
}

impl<'a> Held<'a> {
    pub(super) const NOBODY: Held<'static> = Held { tenant: None, instance: None };

    pub(super) fn of(tenant: &'a Option<String>, instance: &'a Option<String>) -> Self {
        Held { tenant: tenant.as_deref(), instance: instance.as_deref() }
    }

    /// The key of its boot tokens, its sanitizer's agents and its record.
    fn key(self) -> &'a str {
        agents::sanitizer_key(self.instance)
    }

    pub(super) fn releasing(self, step: BootStep, attempt: u32) -> NodeLifecycle {
        NodeLifecycle::Releasing {
            tenant_id: self.tenant.map(str::to_string),
            instance_id: self.instance.map(str::to_string),
            step,
            attempt,
        }
    }

    fn sanitizing(self, step: SanitizeStep, attempt: u32) -> NodeLifecycle {
        NodeLifecycle::Sanitizing {
            tenant_id: self.tenant.map(str::to_string),
            instance_id: self.instance.map(str::to_string),
            step,
            attempt,
        }
    }
}

impl LifecycleController {
    /// The catalog must have a sanitizer image to boot.
    pub(super) fn check_sanitizer(&self, store: &Store) -> Result<(), StepError> {
        match store.read(images::sanitizer).map_err(StepError::Store)? {
            Some(_) => Ok(()),
            None => Err(StepError::Fail(
                "no sanitizer image in the catalog: add an image with purpose `sanitizer`".into(),
            )),
        }
    }

    /// Starts releasing: the tenant's agent credentials and the node's boot
    /// token are revoked in the transition's transaction (the sanitizer's
    /// token comes with the reset that boots it).
    pub(super) fn start_release(
        &self,
        store: &Store,
        n: &Node,
        tenant: &str,
        instance: &str,
    ) -> Result<bool, StepError> {
        self.check_sanitizer(store)?;
        let to =
            Held { tenant: Some(tenant), instance: Some(instance) }.releasing(BootStep::SetBoot, 1);
        let moved = self.advance(store, n, to, |w| {
            end_boot(w, &n.id)?;
            nodes::set_firmware_updates(w, &n.id, None)?;
            // The node's ports leave the tenant's networks first (checked
            // before the sanitizer boots: `releasing`).
            isolation::detach_instance(w, &self.planners, instance)?;
            instances::drop_requests(w, instance)?;
            let i = instances::by_id(w, instance)?;
            set_instance(w, &i, InstanceState::Releasing, None)
        })?;
        self.fabric_wake.notify_one();
        Ok(moved)
    }

    /// Before the sanitizer boots: every switch the node hangs off has
    /// applied a plan without the tenant's attachments (its ports back in
    /// quarantine). Waits, then fails after `isolation_timeout`.
    fn isolated(&self, store: &Store, n: &Node) -> Result<bool, StepError> {
        let why = store
            .read(|r| isolation::ports_in_tenant_networks(r, &n.id))
            .map_err(StepError::Store)?;
        match why {
            None => Ok(true),
            Some(why) if in_state(n) > self.isolation_timeout => Err(StepError::Fail(format!(
                "{why}, {}s after release: the node is not booted while it can reach the tenant",
                self.isolation_timeout.as_secs()
            ))),
            Some(why) => {
                tracing::debug!(node = %n.name, "{why}");
                self.fabric_wake.notify_one();
                Ok(false)
            }
        }
    }

    /// Before the sanitizer's first boot: the BIOS attributes the tenant
    /// changed are staged back, so that boot applies them (checked at the
    /// end). What is staged is recorded (and audited) before it is sent,
    /// so the record has it whatever becomes of the answer; repeated after
    /// a crash, the step stages the same again (the values in effect change
    /// only at the boot). A BMC that refuses them does not stop the wipe:
    /// the check fails at the end.
    fn stage_bios(&self, store: &Store, secrets: &SecretBox, n: &Node) -> Result<(), StepError> {
        let baseline =
            store.read(|r| nodes::platform_baseline(r, &n.id)).map_err(StepError::Store)?;
        if baseline.as_ref().and_then(|b| b.bios.as_ref()).is_none() {
            return Ok(());
        }
        let (bmc, system) = self.bmc_system(store, secrets, n)?;
        // Kept for the record, and audited as requested: a change the
        // control plane makes on the node's firmware (what the BMC did with
        // it, the record's `bios` check says).
        let record = |staged: &BiosStaged| {
            store
                .write(|w| {
                    nodes::set_bios_staged(w, &n.id, Some(staged))?;
                    super::audit_node(w, n, "node_bios_staged", "requested")
                })
                .map_err(StepError::Store)
        };
        let staged = match super::platform::stage_bios(&bmc, &system, baseline.as_ref(), record) {
            Ok(s) => s,
            // Refused (an attribute the BMC will not take): the sanitizer
            // still runs, and the end of sanitization fails the `bios` check.
            Err(StepError::Fail(why)) => {
                tracing::warn!(node = %n.name, "staging the BIOS baseline failed: {why}");
                None
            }
            Err(e) => return Err(e),
        };
        if let Some((staged, held)) = staged {
            let names: Vec<&str> = staged.keys().map(String::as_str).collect();
            let taken = staged.iter().all(|(k, (_, v))| held.get(k) == Some(v));
            if taken {
                tracing::info!(node = %n.name, attributes = %names.join(", "), "BIOS attributes staged back to the baseline for the sanitizer's boot");
            } else {
                tracing::warn!(node = %n.name, attributes = %names.join(", "), "the BMC did not keep the BIOS attributes staged back to the baseline");
            }
        }
        Ok(())
    }

    pub(super) fn releasing(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
        held: Held<'_>,
        (step, attempt): (BootStep, u32),
    ) -> Result<bool, StepError> {
        let next = |step, attempt| held.releasing(step, attempt);
        match step {
            BootStep::SetBoot | BootStep::PowerCycle => {
                if step == BootStep::SetBoot && attempt == 1 {
                    if !self.isolated(store, n)? {
                        return Ok(false);
                    }
                    // Firmware first: an image may reset the BIOS settings
                    // staged next.
                    if !self.update_firmware(store, secrets, n)? {
                        return Ok(false);
                    }
                    self.stage_bios(store, secrets, n)?;
                }
                let read = match step {
                    BootStep::PowerCycle => match self.off_for_sanitizer(store, secrets, n)? {
                        Off::NotYet => return Ok(false),
                        Off::TokenUsed => None,
                        Off::Read(info) => Some(*info),
                    },
                    BootStep::SetBoot | BootStep::AwaitAgent => None,
                };
                let to = next(step.next(), attempt);
                let purpose = (ImagePurpose::Sanitizer, held.key());
                self.boot_step(store, secrets, n, (step, read), purpose, to)
            }
            BootStep::AwaitAgent => {
                let agent = store
                    .read(|r| agents::live_agent(r, &n.id, ImagePurpose::Sanitizer, held.key()))
                    .map_err(StepError::Store)?;
                match agent {
                    Some(a) => {
                        let to = held.sanitizing(SanitizeStep::AgentSteps, attempt);
                        let moved = self.advance(store, n, to, |w| {
                            agents::queue_steps(w, &a, &AgentStepKind::SANITIZE)
                        })?;
                        self.steps_queued(&a.id);
                        Ok(moved)
                    }
                    None => match self.await_boot(n, attempt, "the sanitizer's agent")? {
                        Some(again) => {
                            self.advance(store, n, next(BootStep::SetBoot, again), |_| Ok(()))
                        }
                        None => Ok(false),
                    },
                }
            }
        }
    }

    /// Whether the sanitizer's boot token may be issued: only while the
    /// BMC reads the node powered off. Until the reset, whatever runs on
    /// the node (the released tenant's system, or an earlier owner's at a
    /// first sanitization) is on the provisioning network, where the boot
    /// service hands the sanitizer's token to whoever asks for the node's
    /// script by its MAC: a token issued while it runs could be taken and
    /// registered with, and the system would then answer the sanitizer's
    /// steps itself (a reset that failed after the token was issued, and
    /// is skipped once the token is used, or a restart the system
    /// ignores). So the node is first forced off and read off; only then
    /// is a token issued and the node powered on, and only a boot after
    /// that can read it. A token already used was issued so (the boot it
    /// started registered): the reset is skipped as before. The system as
    /// last read off goes on to the reset, which need not read it again.
    fn off_for_sanitizer(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
    ) -> Result<Off, StepError> {
        let token = store.read(|r| agents::boot_token(r, &n.id)).map_err(StepError::Store)?;
        if token.is_some_and(|t| t.used_at.is_some()) {
            return Ok(Off::TokenUsed);
        }
        let (bmc, system) = self.bmc_system(store, secrets, n)?;
        let info = bmc.system(&system).map_err(StepError::from)?;
        match info.power_state {
            PowerState::Off => Ok(Off::Read(Box::new(info))),
            // Read again at the next pass.
            PowerState::PoweringOff => Ok(Off::NotYet),
            PowerState::On | PowerState::PoweringOn | PowerState::Unknown => {
                match bmc.reset_on(&info, ResetType::ForceOff) {
                    Ok(()) => {}
                    // Not a type the BMC allows (the driver's check).
                    Err(RedfishError::Unsupported(why)) => {
                        return Err(StepError::Fail(format!(
                            "the BMC allows no forced power off ({why}): the node's running \
                             system could answer for the sanitizer"
                        )))
                    }
                    Err(e) => return Err(StepError::from(e)),
                }
                // Most BMCs read it off within seconds: waited for here
                // (else read again at the next pass).
                let (within, every) = (Duration::from_secs(15), Duration::from_secs(1));
                match bmc.await_power(&info, PowerState::Off, within, every) {
                    Ok(off) => Ok(Off::Read(Box::new(off))),
                    Err(RedfishError::Timeout(_)) => Ok(Off::NotYet),
                    Err(e) => Err(StepError::from(e)),
                }
            }
        }
    }

    pub(super) fn sanitizing(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
        held: Held<'_>,
        (step, attempt): (SanitizeStep, u32),
    ) -> Result<bool, StepError> {
        match step {
            SanitizeStep::AgentSteps => {
                let agent = store
                    .read(|r| agents::live_agent(r, &n.id, ImagePurpose::Sanitizer, held.key()))
                    .map_err(StepError::Store)?
                    .ok_or_else(|| StepError::Fail("the sanitizer's agent was revoked".into()))?;
                let results =
                    store.read(|r| agents::step_results(r, &agent.id)).map_err(StepError::Store)?;
                if !results.is_empty() && results.iter().all(|(_, r)| r.is_some()) {
                    // The firmware clears the TPM at the next boot: boot the
                    // sanitizer again for a new one to verify it (within the
                    // boot attempts; the record shows the failure after).
                    if tpm_cleared_at_boot(&results) && attempt < self.boot_attempts {
                        let why = "the TPM could only be cleared by the firmware at the next boot";
                        return self.boot_sanitizer_again(store, secrets, n, held, attempt, why);
                    }
                    let to = held.sanitizing(SanitizeStep::Finish, attempt);
                    return self.advance(store, n, to, |_| Ok(()));
                }
                if let Some(silent) = self.silent_for(&agent) {
                    let why = format!(
                        "the sanitizer's agent fell silent before finishing its steps \
                         (unheard for {}s)",
                        silent.as_secs()
                    );
                    return self.boot_sanitizer_again(store, secrets, n, held, attempt, &why);
                }
                self.await_deadline(n, "the sanitizer's agent did not finish its steps")
            }
            SanitizeStep::Finish => self.finish(store, secrets, n, held),
        }
    }

    /// How long the agent has gone unheard, when that is longer than
    /// `agent_silence` (counted from this controller's start at the
    /// earliest: no agent can heartbeat while the control plane is down).
    fn silent_for(&self, agent: &agents::AgentRecord) -> Option<std::time::Duration> {
        let heard = agent.last_seen_at.max(self.started_micros);
        let silent =
            std::time::Duration::from_micros(now_micros().saturating_sub(heard).max(0) as u64);
        (silent > self.agent_silence).then_some(silent)
    }

    /// The sanitizer must boot again (`why`): its agent fell silent before
    /// its steps were done (its node reset, crashed or hung; or a boot
    /// repeated after a control-plane crash killed the agent that had
    /// registered), or the firmware clears the TPM at the next boot. Its
    /// credential is revoked, a fresh boot token issued, and the node
    /// booted again, as long as boot attempts are left; the new sanitizer
    /// runs every step again. The old agent's token is spent, so without a
    /// fresh one no later boot could register.
    fn boot_sanitizer_again(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
        held: Held<'_>,
        attempt: u32,
        why: &str,
    ) -> Result<bool, StepError> {
        if attempt >= self.boot_attempts {
            return Err(StepError::Fail(format!(
                "{why}, {attempt} boot attempts (check the node's console)"
            )));
        }
        tracing::warn!(node = %n.name, attempt, "{why}: booting the sanitizer again");
        let to = held.releasing(BootStep::SetBoot, attempt + 1);
        self.advance(store, n, to, |w| {
            new_boot(w, secrets, &n.id, ImagePurpose::Sanitizer, held.key())
        })
    }

    /// The BMC-side checks, then the signed record, the node's fate and the
    /// instance's release, in one transaction.
    fn finish(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
        held: Held<'_>,
    ) -> Result<bool, StepError> {
        let (agent, pinned, baseline, platform, own_user, bios_staged, earlier, updates) = store
            .read(|r| {
                Ok((
                    agents::live_agent(r, &n.id, ImagePurpose::Sanitizer, held.key())?,
                    agents::node_tpm_record(r, &n.id)?,
                    nodes::firmware_baseline(r, &n.id)?,
                    nodes::platform_baseline(r, &n.id)?,
                    nodes::bmc(r, &n.id)?.map(|b| b.username).unwrap_or_default(),
                    nodes::bios_staged(r, &n.id)?,
                    nodes::bmc_journal(r, &n.id)?,
                    nodes::firmware_updates(r, &n.id)?.unwrap_or_default(),
                ))
            })
            .map_err(StepError::Store)?;
        // From the sanitizer's registration (its steps ran on the node from
        // then on); without an agent, from this step's start.
        let started = match &agent {
            Some(a) => a.created_at,
            None => neocloud_common::time::from_rfc3339(&n.lifecycle_since).unwrap_or(0),
        };
        let journal = Journal::new(store, &n.id);
        let mut checks = Vec::new();
        if let Some(a) = &agent {
            for (kind, result) in
                store.read(|r| agents::step_results(r, &a.id)).map_err(StepError::Store)?
            {
                let (ok, items) = match result {
                    Some(r) => (r.ok, r.items),
                    None => (false, vec![item("agent", "step", false, "not reported")]),
                };
                checks.push(SanitizationCheck { name: kind.as_str().to_string(), ok, items });
            }
        }
        for kind in AgentStepKind::SANITIZE {
            if !checks.iter().any(|c| c.name == kind.as_str()) {
                checks.push(SanitizationCheck {
                    name: kind.as_str().into(),
                    ok: false,
                    items: vec![item("agent", "step", false, "no sanitizer agent ran it")],
                });
            }
        }
        // Over the BMC.
        let (bmc, system) = self.bmc_system(store, secrets, n)?;
        bmc.clear_boot_override(&system).map_err(StepError::from)?;
        // Any node of a server that boots nodes from virtual media: one
        // switched to PXE since its ISO was inserted has it still. Ejected
        // before the inventory is read (an inserted CD can show as a boot
        // option).
        let ejected = if n.boot_method == BootMethod::VirtualMedia
            || self.virtual_media_iso.is_some()
            || self.node_isos.is_some()
        {
            Some(eject_virtual_media(&bmc, &system)?)
        } else {
            None
        };
        let inv = bmc.inventory(&system).map_err(StepError::from)?;
        // Cleared, as the inventory's read of the system says: the override
        // is disabled, or targets nothing (BMCs that keep `Continuous`
        // report the target).
        let info = &inv.system;
        let cleared = info.boot_enabled == "Disabled" || info.boot_target == "None";
        checks.push(SanitizationCheck {
            name: "clear_boot_override".into(),
            ok: cleared,
            items: vec![item(
                &system,
                "redfish-patch",
                cleared,
                &format!(
                    "boot override reads {:?} / target {:?}",
                    info.boot_enabled, info.boot_target
                ),
            )],
        });
        checks.extend(ejected);
        // A sanitizer that cannot see every GPU the BMC shows did not reset them all.
        let seen = agent.as_ref().map(|a| a.inventory.gpus.len()).unwrap_or(0);
        if inv.gpus.len() > seen {
            if let Some(c) = checks.iter_mut().find(|c| c.name == AgentStepKind::ResetGpus.as_str())
            {
                c.ok = false;
                c.items.push(item(
                    "gpus",
                    "count",
                    false,
                    &format!("the BMC shows {} GPUs, the sanitizer saw {seen}", inv.gpus.len()),
                ));
            }
        }
        tpm_unseen(&mut checks, &inv.system.tpms);
        checks.push(tpm_identity_check(
            pinned.as_ref(),
            agent.as_ref(),
            &inv.system.tpms,
            self.tpm_ek_certified,
        ));
        // The node goes back to the pool only as healthy as its BMC says.
        checks.push(health_check(&system, &inv.health));
        let firmware_read = super::inspect::inventory_firmware(&inv.firmware);
        let health_read = super::inspect::health(&inv.health);
        let policy = self.firmware_policy_of(store, &inv.system.model)?;
        checks.push(firmware_check(
            &baseline,
            policy.as_ref().map(|p| &p.components),
            &inv.firmware,
            &updates,
        ));
        checks.extend(super::platform::restore(
            &bmc,
            &system,
            platform.as_ref(),
            &inv,
            &bios_staged,
            super::accounts::Owner { user: &own_user, policy: self.bmc_accounts },
            &journal,
        )?);
        checks.push(super::host_interfaces::check(
            &bmc,
            self.host_interfaces,
            inv.host_interfaces.as_deref(),
            &journal,
        )?);
        // What an earlier pass changed and did not live to record.
        super::journal::merge(&mut checks, &earlier);
        if info.power_state.is_on() {
            bmc.reset_on(info, ResetType::ForceOff).map_err(StepError::from)?;
        }
        checks.push(SanitizationCheck {
            name: "power_off".into(),
            ok: true,
            items: vec![item(&system, "redfish-reset", true, "ForceOff requested")],
        });
        // Off first: the host can write to its SEL no more.
        checks.push(super::sel::clear(&bmc, &system, &inv.system_read, self.sel)?);
        // Last: the BMC may end this client's session with the old password.
        if self.rotate_bmc_password {
            checks.push(self.rotate_password(store, secrets, n, &bmc, &inv)?);
        }
        checks.push(SanitizationCheck {
            name: "revoke_agent".into(),
            ok: true,
            items: vec![item("node agents", "revoke", true, "every agent credential revoked")],
        });
        let complete = checks.iter().all(|c| c.ok);
        let body = SanitizationBody {
            node_id: n.id.clone(),
            tenant_id: held.tenant.map(str::to_string),
            instance_id: held.instance.map(str::to_string),
            complete,
            checks,
            started_at: to_rfc3339(started),
            finished_at: to_rfc3339(now_micros()),
        };
        let json = serde_json::to_string(&body)
            .map_err(|e| StepError::Store(Error::internal(format!("record: {e}"))))?;
        let signature = self.signer.sign(json.as_bytes());
        let public_key = self.signer.public_key();
        let failed: Vec<&str> =
            body.checks.iter().filter(|c| !c.ok).map(|c| c.name.as_str()).collect();
        let to = if complete {
            NodeLifecycle::Available
        } else {
            NodeLifecycle::Failed {
                reason: format!("sanitization incomplete: {} failed", failed.join(", ")),
                from: "sanitizing".into(),
            }
        };
        let moved = self.advance_freeing(store, n, to, |w| {
            agents::insert_record(
                w,
                &agents::NewRecord {
                    id: &new_id(),
                    node_id: &n.id,
                    tenant_id: held.tenant.unwrap_or(agents::NO_INSTANCE),
                    instance_id: held.key(),
                    complete,
                    body: &json,
                    signature: &signature,
                    public_key: &public_key,
                },
            )?;
            agents::revoke_node_agents(w, &n.id)?;
            agents::delete_boot_token(w, &n.id)?;
            nodes::set_bios_staged(w, &n.id, None)?;
            nodes::clear_bmc_journal(w, &n.id)?;
            nodes::set_firmware_updates(w, &n.id, None)?;
            // The versions read now, for the provider's views.
            nodes::refresh_inventory_firmware(w, &n.id, &firmware_read, Some(&health_read))?;
            nodes::set_bmc_health(
                w,
                &n.id,
                health_read.rollup.as_deref(),
                &super::inspect::fault_names(&inv.health),
            )?;
            if complete {
                nodes::set_dirty(w, &n.id, None)?;
                // The first complete record's UEFI variables are the node's
                // baseline (kept once: later ones only delete).
                if let Some(keys) = uefi_kept(&body.checks) {
                    nodes::set_uefi_baseline(w, &n.id, &keys)?;
                }
                // So are its network adapters' settings, but only from a
                // sanitization before any tenant (a tenant's settings
                // never become the baseline: a node that had one before
                // its first record has its adapters reset to defaults).
                if let Some(kept) = nic_kept(&body.checks).filter(|_| held.instance.is_none()) {
                    nodes::set_nic_baseline(w, &n.id, &kept)?;
                }
                if held.instance.is_none() {
                    nodes::baselines_recorded(w, &n.id)?;
                }
            }
            // Before the node joined the pool: no instance. Sanitized
            // again after an incomplete record: the instance was freed
            // (and released) then. Placed on another node before it was
            // handed over: it lives on there.
            let Some(instance) = held.instance else { return Ok(None) };
            let i = instances::by_id(w, instance)?;
            if i.state == InstanceState::Released || i.node_id != n.id {
                return Ok(None);
            }
            free_instance(w, &self.planners, &i)
        })?;
        if moved {
            self.record_written(complete, &failed);
        }
        Ok(moved)
    }
}

/// Ejects whatever is in the BMC's virtual CDs (the boot ISO of a node
/// that boots from virtual media), and checks that nothing is left.
fn eject_virtual_media(
    bmc: &neocloud_redfish::Bmc,
    system: &str,
) -> Result<SanitizationCheck, StepError> {
    let mut items = Vec::new();
    for slot in bmc.cd_media(system).map_err(StepError::from)? {
        // Read empty: nothing to eject. Else ejected, and read again.
        let left = match &slot.image {
            None => None,
            Some(_) => {
                bmc.eject_media_in(&slot).map_err(StepError::from)?;
                bmc.media_image(&slot.path).map_err(StepError::from)?
            }
        };
        let detail = match &left {
            Some(image) => format!("still inserted: {image}"),
            None => "empty".to_string(),
        };
        items.push(item(&slot.path, "redfish-eject", left.is_none(), &detail));
    }
    Ok(SanitizationCheck {
        name: "eject_virtual_media".into(),
        ok: items.iter().all(|i| i.ok),
        items,
    })
}

/// The network adapters' baseline the sanitizer's `reset_nic_settings`
/// read: each adapter it read (`PCI-address`) and each setting it kept off
/// its default (its items of method `nic-kept`, as
/// `PCI-address/PARAMETER=value`); `None` where it read none (a simulated
/// machine, one whose settings could not be read).
fn nic_kept(checks: &[SanitizationCheck]) -> Option<Vec<String>> {
    use neocloud_types::{NIC_SETTINGS_READ, NIC_SETTING_KEPT, NO_NICS};
    let c = checks.iter().find(|c| c.name == AgentStepKind::ResetNicSettings.as_str())?;
    let read = c.ok && c.items.iter().any(|i| i.method == NIC_SETTINGS_READ || i.method == NO_NICS);
    let adapters =
        c.items.iter().filter(|i| i.method == NIC_SETTINGS_READ).map(|i| i.target.clone());
    let kept = c.items.iter().filter(|i| i.method == NIC_SETTING_KEPT);
    read.then(|| adapters.chain(kept.map(|i| format!("{}={}", i.target, i.detail))).collect())
}

/// The UEFI variables the sanitizer's `clear_uefi_variables` kept (its
/// items of method `uefi-kept`); `None` where it read none (a machine not
/// booted through UEFI, a simulated one).
fn uefi_kept(checks: &[SanitizationCheck]) -> Option<Vec<String>> {
    let c = checks.iter().find(|c| c.name == AgentStepKind::ClearUefiVariables.as_str())?;
    let keys: Vec<String> = c
        .items
        .iter()
        .filter(|i| i.method == neocloud_types::UEFI_VARIABLE_KEPT)
        .map(|i| i.target.clone())
        .collect();
    let read = c.items.iter().any(|i| i.method == neocloud_types::UEFI_VARIABLES_READ && i.ok);
    (!keys.is_empty() || read).then_some(keys)
}
