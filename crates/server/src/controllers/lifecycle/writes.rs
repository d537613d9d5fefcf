//! What a transition writes beside the node: its audit events (the
//! provider's chain, and the tenant's for its instance), the instance's
//! state, what an instance holds freed, and the node's boot tokens.

use crate::network::planners::Planners;
use crate::secrets::SecretBox;
use neocloud_common::{time::now_micros, Result};
use neocloud_store::{agents, allocations, audit, instances, quotas, Writer};
use neocloud_types::{ImagePurpose, Instance, InstanceState, Node, NodeLifecycle};

pub(super) fn record(
    w: &mut dyn neocloud_store::Writer,
    n: &Node,
    to: &NodeLifecycle,
    outcome: &str,
) -> Result<()> {
    audit_node(w, n, &format!("node_{}", to.name()), outcome)
}

/// An event of the controller's on node `n`, in the provider's chain.
pub(super) fn audit_node(w: &mut dyn Writer, n: &Node, action: &str, outcome: &str) -> Result<()> {
    let target = format!("/v1/nodes/{}", n.id);
    controller_event(w, audit::PROVIDER_CHAIN, None, action, target, outcome)
}

/// An event of the controller's in `chain` (a tenant's: `tenant_id` set).
fn controller_event(
    w: &mut dyn Writer,
    chain: &str,
    tenant_id: Option<&str>,
    action: &str,
    target: String,
    outcome: &str,
) -> Result<()> {
    audit::append(
        w,
        chain,
        &audit::NewEvent {
            time: now_micros(),
            actor: "system".into(),
            actor_name: "lifecycle-controller".into(),
            token_id: None,
            role: None,
            tenant_id: tenant_id.map(str::to_string),
            action: action.into(),
            target,
            outcome: outcome.into(),
            status: 200,
            request_id: neocloud_common::new_id(),
        },
    )
    .map(|_| ())
}

/// Sets an instance's state, audited in its tenant's chain. A reason is
/// the tenant's to read: the addresses of the provider's machines in it
/// (a BMC's, in a driver's error) are taken out.
pub(super) fn set_instance(
    w: &mut dyn Writer,
    i: &Instance,
    state: InstanceState,
    reason: Option<&str>,
) -> Result<()> {
    let reason = reason.map(without_addresses);
    instances::set_state(w, &i.id, state, reason.as_deref())?;
    let outcome = if reason.is_some() { "failed" } else { "success" };
    audit_instance(w, i, &format!("instance_{}", state.as_str()), outcome)
}

/// `text` with the scheme and host of every `http(s)://` URL in it taken
/// out (its path kept: `/redfish/v1/Systems/1` says what failed, not
/// where the provider's BMC is).
pub(super) fn without_addresses(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = ["http://", "https://"].iter().filter_map(|p| rest.find(p)).min() {
        out.push_str(&rest[..at]);
        let url = &rest[at..];
        let after_scheme = url.find("://").map_or(0, |x| x + 3);
        let host_end = url[after_scheme..]
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'')
            .map_or(url.len(), |x| after_scheme + x);
        out.push_str("<BMC>");
        rest = &url[host_end..];
    }
    out.push_str(rest);
    out
}

/// An event of the controller's on an instance, in its tenant's chain.
pub(super) fn audit_instance(
    w: &mut dyn Writer,
    i: &Instance,
    action: &str,
    outcome: &str,
) -> Result<()> {
    let target =
        format!("/v1/tenants/{}/projects/{}/instances/{}", i.tenant_id, i.project_id, i.id);
    controller_event(w, &i.tenant_id, Some(&i.tenant_id), action, target, outcome)
}

/// Frees what an instance holds (its allocation and quota) and marks it
/// released; the allocation, where this call freed it. The node is clean
/// (never provisioned, or sanitized) or stays dirty: either way the caller
/// decides the node's state.
pub(super) fn free_instance(
    w: &mut dyn Writer,
    planners: &Planners,
    i: &Instance,
) -> Result<Option<String>> {
    free_instance_saying(w, planners, i, None)
}

/// Releases the instance (allocation and quota freed) with a reason; the
/// allocation, where this call freed it.
pub(super) fn free_instance_saying(
    w: &mut dyn Writer,
    planners: &Planners,
    i: &Instance,
    reason: Option<&str>,
) -> Result<Option<String>> {
    let (a, now) = allocations::release(w, &i.tenant_id, &i.project_id, &i.allocation_id)?;
    if now {
        quotas::release_claim(w, &i.tenant_id, &i.project_id, &a.claim_id)?;
        allocations::bump_placement_generation(w)?;
    }
    // Lock order: quota rows, placement row, fabric rows, audit heads.
    crate::network::isolation::detach_instance(w, planners, &i.id)?;
    set_instance(w, i, InstanceState::Released, reason)?;
    Ok(now.then_some(a.id))
}

/// A new boot of the node for `purpose`: every agent credential of the
/// node is revoked and a fresh one-time boot token issued (whatever ran
/// there before, its spent token included, is done with).
pub(super) fn new_boot(
    w: &mut dyn Writer,
    secrets: &SecretBox,
    node_id: &str,
    purpose: ImagePurpose,
    instance_id: &str,
) -> Result<()> {
    agents::revoke_node_agents(w, node_id)?;
    issue_token(w, secrets, node_id, purpose, instance_id)
}

/// A release's start: whatever ran on the node loses its credentials, and
/// no boot token is left. The sanitizer's token is issued by the reset
/// that boots it (its `power_cycle` step): a boot started before (a
/// provisioning boot still in flight) gets no token, so it cannot run the
/// sanitizer ahead of what is done for the sanitizer's boot (firmware
/// updates, BIOS settings staged), which only that reset applies.
pub(super) fn end_boot(w: &mut dyn Writer, node_id: &str) -> Result<()> {
    // The token first, its row locked: a registration with it in flight
    // (its agent inserted, not yet committed) is waited for, so the
    // revocation after sees its agent (at READ COMMITTED a revocation
    // first would miss it and leave it live).
    agents::boot_token_locked(w, node_id)?;
    agents::revoke_node_agents(w, node_id)?;
    agents::delete_boot_token(w, node_id)
}

/// Issues the node's one-time boot token for `purpose`.
pub(super) fn issue_token(
    w: &mut dyn Writer,
    secrets: &SecretBox,
    node_id: &str,
    purpose: ImagePurpose,
    instance_id: &str,
) -> Result<()> {
    let token = crate::boot::new_secret()?;
    agents::issue_boot_token(
        w,
        node_id,
        &crate::boot::hash(&token),
        &secrets.seal(&token)?,
        purpose,
        instance_id,
    )
}
