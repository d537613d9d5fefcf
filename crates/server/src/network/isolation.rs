//! A node between tenants: its attachments go with its instance, and its
//! switch ports must have left the tenant's networks (back in the
//! provisioning network's quarantine) before it boots anything else.

use super::plan;
use super::planners::Planners;
use neocloud_common::Result;
use neocloud_fabric::{Object, ObjectId, PortMode};
use neocloud_store::{attachments, fabrics, vpcs, Reader, Writer};
use neocloud_types::SwitchManagement;
use std::collections::BTreeMap;

/// Removes an instance's attachments (and their floating IPs), fabric by
/// fabric under each fabric's lock, and hands each fabric's planner the
/// changes. Answers the fabrics changed.
pub fn detach_instance(
    w: &mut dyn Writer,
    planners: &Planners,
    instance_id: &str,
) -> Result<Vec<String>> {
    let atts = attachments::attachments_of_instance(w, instance_id)?;
    let mut by_fabric: BTreeMap<String, Vec<&attachments::AttachmentRecord>> = BTreeMap::new();
    for a in &atts {
        by_fabric.entry(vpcs::vpc(w, &a.vpc_id)?.fabric_id).or_default().push(a);
    }
    let mut locks = Vec::new();
    for f in by_fabric.keys() {
        locks.push(fabrics::lock_intent(w, f)?);
    }
    for ((f, atts), lock) in by_fabric.iter().zip(&locks) {
        let mut changes = Vec::new();
        for a in atts {
            changes.extend(super::intent::detach(w, &a.id)?);
        }
        planners.change(w, f, lock, changes, false)?;
    }
    Ok(by_fabric.into_keys().collect())
}

/// Why the node's ports are not yet isolated (`None`: every managed switch
/// it is cabled to has applied the fabric's current intent, which was
/// planned after the node's attachments were removed, and none of its
/// ports is in a tenant network there). Requiring the current generation,
/// not only a clean recorded config, covers a push that reached the switch
/// but whose record was lost in a crash.
pub fn ports_in_tenant_networks(r: &mut dyn Reader, node_id: &str) -> Result<Option<String>> {
    let links = fabrics::links_of_node(r, node_id)?;
    let mut waiting = Vec::new();
    // InfiniBand: no port of the node left in a tenant partition.
    for rec in fabrics::list(r)?.iter().filter(|f| f.spec.infiniband.is_some()) {
        for p in super::ib::node_partitions(r, rec, node_id)? {
            waiting.push(format!("InfiniBand {} partition {p}", rec.name));
        }
    }
    let mut fabric_ids: Vec<&str> = links.iter().map(|l| l.fabric_id.as_str()).collect();
    fabric_ids.dedup();
    for fid in fabric_ids {
        let rec = fabrics::get(r, fid)?;
        let states = fabrics::switch_states(r, fid)?;
        let applied = plan::applied(&states)?;
        for l in links.iter().filter(|l| l.fabric_id == fid) {
            let managed = rec
                .spec
                .switches
                .iter()
                .find(|s| s.name.as_str() == l.switch)
                .is_some_and(|s| !matches!(s.management, SwitchManagement::None));
            if !managed {
                continue;
            }
            let state = states.iter().find(|s| s.switch == l.switch);
            let caught_up = state.is_some_and(|s| s.applied_generation >= rec.intent_generation);
            let tenant_port = applied
                .get(&l.switch)
                .and_then(|cfg| cfg.objects.get(&ObjectId::Port(l.port.clone())))
                .is_some_and(
                    |o| matches!(o, Object::Port(p) if matches!(p.mode, PortMode::Tenant { .. })),
                );
            if tenant_port || !caught_up {
                let why = state
                    .and_then(|s| s.message.clone())
                    .map(|m| format!(" (last apply: {m})"))
                    .unwrap_or_default();
                waiting.push(format!("{} port {}{why}", l.switch, l.port));
            }
        }
    }
    Ok((!waiting.is_empty())
        .then(|| format!("switch ports still in a tenant network: {}", waiting.join(", "))))
}
