//! provisioning and active: booting a tenant's image over the network and
//! handing the node over once its agent checks in.

use super::{new_boot, set_instance, LifecycleController, StepError};
use crate::secrets::SecretBox;
use neocloud_common::time::now_micros;
use neocloud_redfish::{BootTarget, PowerState, ResetType, SystemInfo};
use neocloud_store::{agents, instances, Store};
use neocloud_types::{BootMethod, BootStep, ImagePurpose, InstanceState, Node, NodeLifecycle};

impl LifecycleController {
    pub(super) fn provisioning(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
        tenant: &str,
        instance: &str,
        (step, attempt): (BootStep, u32),
    ) -> Result<bool, StepError> {
        // Released while provisioning: whatever was written, sanitize.
        if store.read(|r| instances::release_requested(r, instance)).map_err(StepError::Store)? {
            return self.start_release(store, n, tenant, instance);
        }
        let next = |step, attempt| NodeLifecycle::Provisioning {
            tenant_id: tenant.to_string(),
            instance_id: instance.to_string(),
            step,
            attempt,
        };
        match step {
            BootStep::SetBoot | BootStep::PowerCycle => {
                let to = next(step.next(), attempt);
                self.boot_step(
                    store,
                    secrets,
                    n,
                    (step, None),
                    (ImagePurpose::Tenant, instance),
                    to,
                )
            }
            BootStep::AwaitAgent => {
                let agent = store
                    .read(|r| agents::live_agent(r, &n.id, ImagePurpose::Tenant, instance))
                    .map_err(StepError::Store)?;
                // On a node whose TPM identity is on record, only an agent
                // that proved it is the node's: the token alone may have
                // been read by another machine. Not for a rebuild: the
                // tenant's own OS may have set the endorsement hierarchy's
                // authorization, which only a sanitizer's clear resets.
                // (Read once an agent registered: a node waiting for one
                // reads no more than before.)
                let unproven = match &agent {
                    Some(a) => store
                        .read(|r| {
                            Ok(match agents::node_tpm_identity(r, &n.id)? {
                                Some(p) if a.tpm_ek_name.as_deref() != Some(p.as_str()) => {
                                    !instances::ever_ready(r, instance)?
                                }
                                Some(_) | None => false,
                            })
                        })
                        .map_err(StepError::Store)?,
                    None => false,
                };
                let whose = if unproven {
                    "an agent proving the node's TPM identity"
                } else {
                    "the image's agent"
                };
                match agent.filter(|_| !unproven) {
                    Some(_) => {
                        let to = NodeLifecycle::Active {
                            tenant_id: tenant.to_string(),
                            instance_id: instance.to_string(),
                        };
                        self.advance(store, n, to, |w| {
                            let i = instances::by_id(w, instance)?;
                            set_instance(w, &i, InstanceState::Ready, None)
                        })
                    }
                    None => match self.await_boot(n, attempt, whose)? {
                        Some(again) => {
                            self.advance(store, n, next(BootStep::SetBoot, again), |_| Ok(()))
                        }
                        None => Ok(false),
                    },
                }
            }
        }
    }

    /// An active node: start releasing when its tenant released the
    /// instance, else provision it again when the tenant asked for a
    /// rebuild, else do the power action the tenant asked, if any.
    pub(super) fn active(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
        tenant: &str,
        instance: &str,
    ) -> Result<bool, StepError> {
        let intent =
            store.read(|r| instances::active_intent(r, instance)).map_err(StepError::Store)?;
        if intent.released {
            return self.start_release(store, n, tenant, instance);
        }
        if let Some(image) = intent.rebuild_image_id {
            // The same tenant's node, provisioned again: the image's boot
            // replaces the OS; the old one's agent loses its credential.
            let to = NodeLifecycle::Provisioning {
                tenant_id: tenant.to_string(),
                instance_id: instance.to_string(),
                step: BootStep::SetBoot,
                attempt: 1,
            };
            return self.advance(store, n, to, |w| {
                instances::start_rebuild(w, instance, &image)?;
                new_boot(w, secrets, &n.id, ImagePurpose::Tenant, instance)?;
                let i = instances::by_id(w, instance)?;
                set_instance(w, &i, InstanceState::Provisioning, None)
            });
        }
        // The node stays active: nothing moved.
        self.power(store, secrets, n, instance, intent.power)?;
        Ok(false)
    }

    /// A step of booting the node from the network for `purpose`, then the
    /// move to `to`: the BMC's one-time boot override, or the power cycle
    /// (see [`Self::boot_token_for_reset`]). `read`: the system as this
    /// step read it already, if it did.
    pub(super) fn boot_step(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
        (step, read): (BootStep, Option<SystemInfo>),
        (purpose, instance): (ImagePurpose, &str),
        to: NodeLifecycle,
    ) -> Result<bool, StepError> {
        let boot = match step {
            BootStep::SetBoot => true,
            BootStep::PowerCycle => {
                self.boot_token_for_reset(store, secrets, n, purpose, instance)?
            }
            BootStep::AwaitAgent => false,
        };
        if boot {
            self.boot_bmc(store, secrets, n, (step, read), purpose)?;
        }
        self.advance(store, n, to, |_| Ok(()))
    }

    /// Before a reset: whether to reset at all, and a boot token only the
    /// boot the reset starts can use. In one transaction, the token's row
    /// locked (a registration with it in flight is waited for):
    ///
    /// - used: the image already booted and its agent registered (the step
    ///   is repeated after a crash, or after a reset that timed out but was
    ///   done): no reset, which would only kill that agent;
    /// - unused: replaced by a fresh one (the node's agents revoked). The
    ///   boot the reset kills (a repeated reset's first boot) can no longer
    ///   register, so no agent can register and then die by the reset; the
    ///   boot the reset starts gets the fresh token from its iPXE script.
    fn boot_token_for_reset(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
        purpose: ImagePurpose,
        instance: &str,
    ) -> Result<bool, StepError> {
        store
            .write(|w| match agents::boot_token_locked(w, &n.id)? {
                Some(t) if t.used_at.is_some() => Ok(false),
                Some(_) | None => {
                    new_boot(w, secrets, &n.id, purpose, instance)?;
                    Ok(true)
                }
            })
            .map_err(StepError::Store)
    }

    /// The BMC side of booting from the network: the one-time boot
    /// override, then power on (or reset a running node). Idempotent: a
    /// step repeated after a crash sets the same override or resets again
    /// (setting the override again first if a boot since spent it).
    fn boot_bmc(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
        (step, read): (BootStep, Option<SystemInfo>),
        purpose: ImagePurpose,
    ) -> Result<(), StepError> {
        let (bmc, system) = self.bmc_system(store, secrets, n)?;
        match step {
            BootStep::SetBoot => {
                let info = bmc.system(&system).map_err(StepError::from)?;
                // The last look before a tenant gets the node (it may have
                // failed since its inspection): the same read, no call of
                // its own. A sanitizer boots whatever the health: its
                // record says it.
                if purpose == ImagePurpose::Tenant && info.critical() {
                    return Err(StepError::Fail(
                        "the BMC reports the node's hardware Critical (system health rollup): not handed to a tenant".into(),
                    ));
                }
                self.set_boot_override(&bmc, &info, n)
            }
            BootStep::PowerCycle => {
                let info = match read {
                    Some(info) => info,
                    None => bmc.system(&system).map_err(StepError::from)?,
                };
                if !self.boots_as_wanted(&info, n.boot_method) {
                    // The override set_boot made was spent by a boot since:
                    // this reset is repeated (after a crash, or a timeout of
                    // one that was done) and the first one's boot used it.
                    // Without it this reset would boot the local disk, and
                    // the node would wait out `boot_timeout` for nothing.
                    tracing::warn!(node = %n.name, "the one-time boot override was spent: setting it again");
                    // (Or the node's boot method changed since set_boot.)
                    self.set_boot_override(&bmc, &info, n)?;
                } else if n.boot_method == BootMethod::VirtualMedia
                    && n.boot_network.is_some()
                    && changed_since_transition(n)
                {
                    // A node re-addressed since set_boot inserted its ISO
                    // must not boot the old address's (another node may
                    // hold it now): its current one replaces it. (A node
                    // not updated since pays no reads for it.)
                    self.insert_boot_iso(&bmc, &info.path, &self.boot_iso(n)?)?;
                }
                let allowed = |t: ResetType| {
                    info.reset_types.is_empty() || info.reset_types.iter().any(|r| r == t.as_str())
                };
                let t = match info.power_state {
                    PowerState::Off | PowerState::PoweringOff => ResetType::On,
                    PowerState::On | PowerState::PoweringOn | PowerState::Unknown => {
                        [ResetType::ForceRestart, ResetType::PowerCycle, ResetType::GracefulRestart]
                            .into_iter()
                            .find(|t| allowed(*t))
                            .ok_or_else(|| {
                                StepError::Fail(format!(
                                    "the BMC allows no restart (allowed: {})",
                                    info.reset_types.join(", ")
                                ))
                            })?
                    }
                };
                bmc.reset_on(&info, t).map_err(StepError::from)
            }
            BootStep::AwaitAgent => Ok(()),
        }
    }

    /// The one-time boot override of `method` (for virtual media, with the
    /// ISO inserted first).
    fn set_boot_override(
        &self,
        bmc: &neocloud_redfish::Bmc,
        info: &SystemInfo,
        n: &Node,
    ) -> Result<(), StepError> {
        match n.boot_method {
            BootMethod::Pxe => bmc.boot_once_on(info, BootTarget::Pxe, false),
            BootMethod::VirtualMedia => {
                self.insert_boot_iso(bmc, &info.path, &self.boot_iso(n)?)?;
                bmc.boot_once_on(info, BootTarget::Cd, false)
            }
            BootMethod::UefiHttp => bmc.http_boot_once_on(info, self.uefi_http_binary()?),
        }
        .map_err(StepError::from)
    }

    /// Whether the next boot is the one `method` needs (a UEFI HTTP boot of
    /// this server's binary, not another URI).
    fn boots_as_wanted(&self, info: &SystemInfo, method: BootMethod) -> bool {
        match method {
            BootMethod::Pxe => info.boots_to(BootTarget::Pxe),
            BootMethod::VirtualMedia => info.boots_to(BootTarget::Cd),
            BootMethod::UefiHttp => {
                info.boots_to(BootTarget::UefiHttp)
                    && info.http_boot_uri.is_some()
                    && info.http_boot_uri.as_deref() == self.uefi_http_boot.as_deref()
            }
        }
    }

    fn uefi_http_binary(&self) -> Result<&str, StepError> {
        self.uefi_http_boot.as_deref().ok_or_else(|| {
            StepError::Fail(
                "the node boots by UEFI HTTP and this server has no uefi_http_boot_url".into(),
            )
        })
    }

    /// The ISO a virtual-media boot of the node inserts: its own where it
    /// has a static provisioning address (built here, so a failed build is
    /// the node's reason, not a BMC's failed fetch), else the server's.
    fn boot_iso(&self, n: &Node) -> Result<String, StepError> {
        let Some(bn) = &n.boot_network else {
            return self.virtual_media_iso.clone().ok_or_else(|| {
                StepError::Fail(
                    "the node boots from virtual media and this server has no virtual_media_iso_url"
                        .into(),
                )
            });
        };
        let isos = self.node_isos.as_ref().ok_or_else(|| {
            StepError::Fail(
                "the node has a boot_network (a static provisioning address) and this server has no per_node_iso to boot it with"
                    .into(),
            )
        })?;
        let fail = |e: neocloud_common::Error| {
            let detail = e.internal_message().map(str::to_string);
            StepError::Fail(format!(
                "the node's ISO: {}",
                detail.unwrap_or_else(|| e.external_message())
            ))
        };
        let iso = isos.for_network(&n.id, bn).map_err(fail)?;
        isos.build(&iso).map_err(fail)?;
        Ok(iso.url)
    }

    /// Puts `iso` in the BMC's (first) virtual CD, unless it is there
    /// already: whatever else is inserted is ejected first.
    fn insert_boot_iso(
        &self,
        bmc: &neocloud_redfish::Bmc,
        system: &str,
        iso: &str,
    ) -> Result<(), StepError> {
        let slots = bmc.cd_media(system).map_err(StepError::from)?;
        let slot = slots.first().ok_or_else(|| {
            StepError::Fail(
                "the node boots from virtual media and its BMC has no virtual CD".into(),
            )
        })?;
        match &slot.image {
            Some(image) if image == iso => return Ok(()),
            Some(_) => bmc.eject_media_in(slot).map_err(StepError::from)?,
            None => {}
        }
        bmc.insert_media_in(slot, iso).map_err(StepError::from)
    }

    /// Waiting for a booted image's agent to register: nothing to do within
    /// the boot timeout; past it, `Some(next attempt)` (the node is set to
    /// boot from the network and power-cycled again: PXE and early boot
    /// are flaky, and the one-time boot override is spent by a boot that
    /// hung later), and after the last attempt the node fails.
    pub(super) fn await_boot(
        &self,
        n: &Node,
        attempt: u32,
        whose: &str,
    ) -> Result<Option<u32>, StepError> {
        if in_state(n) <= self.boot_timeout {
            return Ok(None);
        }
        if attempt < self.boot_attempts {
            tracing::warn!(node = %n.name, attempt, "{whose} did not register: booting the node again");
            return Ok(Some(attempt + 1));
        }
        Err(StepError::Fail(format!(
            "{whose} did not register within {}s, {} boot attempt{} (check the image, the boot network and the node's console)",
            self.boot_timeout.as_secs(),
            attempt,
            if attempt == 1 { "" } else { "s" }
        )))
    }

    /// Waiting for an agent: nothing to do until the deadline, then fail.
    pub(super) fn await_deadline(&self, n: &Node, what: &str) -> Result<bool, StepError> {
        if in_state(n) > self.agent_timeout {
            return Err(StepError::Fail(format!(
                "{what} within {}s (check the image, the boot network and the node's console)",
                self.agent_timeout.as_secs()
            )));
        }
        Ok(false)
    }
}

/// Whether the node's record was written since its last transition (the
/// provider updated it: a transition writes both times as one).
fn changed_since_transition(n: &Node) -> bool {
    let at = |t: &str| neocloud_common::time::from_rfc3339(t).unwrap_or(i64::MAX);
    at(&n.updated_at) > at(&n.lifecycle_since)
}

/// How long the node has been in its lifecycle state.
pub(super) fn in_state(n: &Node) -> std::time::Duration {
    let since = neocloud_common::time::from_rfc3339(&n.lifecycle_since).unwrap_or(0);
    std::time::Duration::from_micros(now_micros().saturating_sub(since).max(0) as u64)
}
