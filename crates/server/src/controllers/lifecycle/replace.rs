//! A node that fails before its instance was handed over: the instance is
//! placed on another node, up to `provision_replacements` times.
//!
//! The failure (`fail`) sets the instance back to pending on the failed
//! node, in the failure's transaction; the failed node's handler then moves
//! it (`place_again`), in one transaction: a node planned by the placement
//! engine with the instance's constraints (a gang placed within one pod,
//! SU or rack stays in the failed node's: [`next_to`]), a new allocation on
//! it holding the instance's quota claim (the old one released), the
//! instance's network attachments moved to the new node's NICs (same ids,
//! addresses and floating IPs), the failed node's boot token and agent
//! credentials revoked, audited in the tenant's chain and the provider's.
//! A crash between the two leaves a pending instance on a failed node,
//! which the next pass moves. The failed node stays dirty for the instance: its
//! sanitization (once the provider inspects it again) writes a record the
//! tenant reads with the instance's, and frees nothing of the instance,
//! which lives on elsewhere.
//!
//! An instance that was ever ready is never moved (a rebuild's node holds
//! the tenant's data): it fails with its node, as does one past its
//! replacements, one released meanwhile, one for which no node fits, and
//! one whose move the store refused more than [`RETRY_BUDGET`] times in a
//! row (a switch plan refusing its moved attachments; logged, the tenant
//! told only that it could not be moved).

use super::{
    audit_instance, audit_node, set_instance, LifecycleController, StepError, RETRY_BUDGET,
};
use crate::network::intent;
use crate::placement::{engine_constraints, engine_group, Effect};
use neocloud_common::{new_id, Error, Result};
use neocloud_fabric::{TenantChange, TenantObject};
use neocloud_placement::{Constraints, Request, Scope, Shape, Within};
use neocloud_store::Writer;
use neocloud_store::{allocations, attachments, fabrics, instance_types, instances, vpcs, Store};
use neocloud_types::{Instance, InstanceState, Node};
use std::collections::BTreeMap;

/// The retry budget's key for a failed node's move of its instance.
const MOVE: &str = "placing_again";

/// What placing an instance again did.
enum Placed {
    /// Moved to this node.
    On { node_id: String, effects: Vec<Effect> },
    /// Failed with its node (why is on the instance).
    Failed,
    /// Nothing to do: no longer pending on this node.
    Nothing,
}

impl LifecycleController {
    /// Whether an instance whose node `node_id` just failed while
    /// provisioning it goes back to pending, to be placed on another node.
    pub(super) fn may_place_again(
        &self,
        w: &mut dyn Writer,
        i: &Instance,
        node_id: &str,
    ) -> Result<bool> {
        Ok(self.placement.is_some()
            && i.replacements < self.replacements
            && i.node_id == node_id
            && !i.release_requested
            && !instances::ever_ready(w, &i.id)?)
    }

    /// A failed node with a pending instance on it: the instance goes to
    /// another node, or fails with its node (`why`: the node's failure).
    pub(super) fn place_again(
        &self,
        store: &Store,
        n: &Node,
        i: &Instance,
        why: &str,
    ) -> Result<bool, StepError> {
        let placement = self.placement.as_ref().filter(|_| i.replacements < self.replacements);
        let placed = match self.move_instance(store, n, i, why, placement.ok_or("")) {
            Ok(p) => p,
            Err(e) => {
                let tries = self.count_attempt(&n.id, MOVE);
                tracing::warn!(instance = %i.id, node = %n.name, error = %e, tries, "placing an instance on another node failed");
                if tries <= RETRY_BUDGET {
                    return Err(StepError::Store(e));
                }
                let refused =
                    "; it could not be placed on another node (the control plane's log says why)";
                self.move_instance(store, n, i, why, Err(refused)).map_err(StepError::Store)?
            }
        };
        self.attempts.lock().unwrap_or_else(|p| p.into_inner()).remove(&(n.id.clone(), MOVE));
        match placed {
            Placed::On { node_id, effects } => {
                if let Some(p) = placement {
                    p.commit(effects);
                }
                tracing::info!(instance = %i.id, from = %n.name, to = %node_id, "instance placed on another node");
                self.placed_again("placed");
                // Its attachments and its InfiniBand partition membership
                // (the tenant's live nodes) moved.
                self.fabric_wake.notify_one();
                self.nudge(&node_id);
                Ok(false)
            }
            Placed::Failed => {
                tracing::info!(instance = %i.id, node = %n.name, "instance failed with its node");
                self.placed_again("failed");
                Ok(false)
            }
            Placed::Nothing => Ok(false),
        }
    }

    /// `place_again`'s transaction: without `placement`, the instance fails
    /// with its node, its reason ending with the error's words.
    fn move_instance(
        &self,
        store: &Store,
        n: &Node,
        i: &Instance,
        why: &str,
        placement: std::result::Result<&std::sync::Arc<crate::placement::PlacementService>, &str>,
    ) -> Result<Placed> {
        // Every placement write holds the replica's placement lock.
        let _serial = placement.ok().map(|p| p.serialize());
        store.write(|w| {
            let i = instances::by_id(w, &i.id)?;
            if i.state != InstanceState::Pending || i.node_id != n.id || i.release_requested {
                return Ok(Placed::Nothing);
            }
            let fail = |w: &mut dyn Writer, what: &str| {
                let reason = format!("its node failed before it was handed over ({why}){what}");
                set_instance(w, &i, InstanceState::Failed, Some(&reason)).map(|_| Placed::Failed)
            };
            let placement = match placement {
                Ok(p) => p,
                Err(what) => return fail(w, what),
            };
            if instances::ever_ready(w, &i.id)? {
                return fail(w, "");
            }
            let it = instance_types::get(w, &i.instance_type_id)?;
            let old = allocations::get(w, &i.tenant_id, &i.project_id, &i.allocation_id)?;
            let planned = placement.current(w)?.engine.plan(&Request {
                shape: Shape::Nodes { gpu_model: it.gpu_model.clone(), count: 1 },
                constraints: engine_constraints(&i.tenant_id, &next_to(&old.constraints, n)),
            });
            let plan = match planned {
                Ok(p) => p,
                Err(e) => {
                    let what = format!(
                        "; no other node could take it ({}: {})",
                        e.constraint, e.message
                    );
                    return fail(w, &what);
                }
            };
            let Some(to) = plan.assignments.first().map(|a| a.node_id.clone()) else {
                return fail(w, "; no other node could take it");
            };
            // Each attachment to a NIC of the new node on its fabric:
            // the same NIC name where cabled, else the first.
            let links = fabrics::links_of_node(w, &to)?;
            let mut moves: BTreeMap<String, Vec<(attachments::AttachmentRecord, String)>> =
                BTreeMap::new();
            for a in attachments::attachments_of_instance(w, &i.id)? {
                let fabric = vpcs::vpc(w, &a.vpc_id)?.fabric_id;
                let mut cabled = links.iter().filter(|l| l.fabric_id == fabric);
                let nic = match cabled.clone().find(|l| l.nic == a.nic).or(cabled.next()) {
                    Some(l) => l.nic.clone(),
                    None => {
                        return fail(
                            w,
                            "; the node placement found has no NIC on the fabric of its network attachments",
                        )
                    }
                };
                moves.entry(fabric).or_default().push((a, nic));
            }
            let (_, released) =
                allocations::release(w, &i.tenant_id, &i.project_id, &old.id)?;
            let alloc_id = new_id();
            allocations::create(
                w,
                &allocations::NewAllocation {
                    id: &alloc_id,
                    tenant_id: &i.tenant_id,
                    project_id: &i.project_id,
                    instance_type_id: &old.instance_type_id,
                    kind: old.kind,
                    reservation_id: old.reservation_id.as_deref(),
                    count: 1,
                    constraints: &old.constraints,
                    placement: &plan,
                    // The instance's quota stays claimed: it moves.
                    claim_id: &old.claim_id,
                    units: &plan.units(&it.gpu_model),
                },
            )?;
            let reason = format!(
                "its node failed before it was handed over ({why}): placed on another node ({} of {})",
                i.replacements + 1,
                self.replacements
            );
            if !instances::place_again(w, (&i.id, i.generation), &to, &alloc_id, &reason)? {
                // Another replica moved it since it was read: all of this
                // rolls back, and the next pass finds nothing to do.
                return Err(Error::conflict("the instance was placed again concurrently"));
            }
            // Nothing left on the failed node speaks for the instance: a
            // late boot of its image cannot register, nor fetch the
            // tenant's keys and user-data.
            super::end_boot(w, &n.id)?;
            // Lock order: placement row, fabric rows, audit heads.
            let g = allocations::bump_placement_generation(w)?;
            for (fabric, atts) in moves {
                let lock = fabrics::lock_intent(w, &fabric)?;
                let mut changes = Vec::new();
                for (a, nic) in atts {
                    let moved =
                        attachments::move_attachment(w, &a.id, &to, &nic, lock.generation)?;
                    changes.push(TenantChange::Put(TenantObject::Attachment(
                        intent::attachment(&moved)?,
                    )));
                }
                self.planners.change(w, &fabric, &lock, changes, false)?;
            }
            audit_instance(w, &i, "instance_placed_again", "success")?;
            audit_node(w, n, "node_instance_placed_again", "success")?;
            let mut effects = Vec::new();
            if released {
                effects.push(Effect::Release(old.id.clone()));
            }
            effects.push(Effect::Apply {
                id: alloc_id,
                placement: plan,
                group: engine_group(&i.tenant_id, &old.constraints),
            });
            effects.push(Effect::Generation(g));
            crate::placement::log(w, &effects)?;
            Ok(Placed::On { node_id: to, effects })
        })
    }
}

/// The constraints a moved instance is planned with: its own, and, where
/// it was placed as part of a gang within one pod, SU or rack (`scope`),
/// within the failed node's, so that it stays next to the nodes placed
/// with it (a narrower `within` the tenant gave stands).
fn next_to(c: &Constraints, n: &Node) -> Constraints {
    let level = |w: &Within| match w {
        Within::Pod(_) => 1,
        Within::Su(_) => 2,
        Within::Rack(_) => 3,
    };
    let at = match c.scope {
        Scope::Any => return c.clone(),
        Scope::Pod => Within::Pod(n.pod.clone()),
        Scope::Su => Within::Su(n.su.clone()),
        Scope::Rack => Within::Rack(n.rack.clone()),
    };
    match &c.within {
        Some(w) if level(w) >= level(&at) => c.clone(),
        Some(_) | None => Constraints { within: Some(at), ..c.clone() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> Node {
        serde_json::from_value(serde_json::json!({
            "id": "n", "name": "n", "site": "s", "pod": "pod-a", "su": "su-3", "rack": "r-7",
            "nvlink_domain": "", "gpu_model": "h100-80gb", "gpus": 8, "gpu_memory_gb": 80,
            "mig_capable": false, "nics": [], "availability": "schedulable",
            "lifecycle": {"state": "failed", "reason": "x", "from": "provisioning"},
            "lifecycle_since": "", "bmc_endpoint": null, "generation": 1,
            "created_at": "", "updated_at": ""
        }))
        .unwrap()
    }

    #[test]
    fn a_gang_member_moves_within_the_failed_nodes_pod_su_or_rack() {
        let n = node();
        let any = Constraints::default();
        assert_eq!(next_to(&any, &n), any, "no gang scope: anywhere it fits");
        let su = Constraints { scope: Scope::Su, ..Constraints::default() };
        assert_eq!(next_to(&su, &n).within, Some(Within::Su("su-3".into())));
        let rack = Constraints { scope: Scope::Rack, ..Constraints::default() };
        assert_eq!(next_to(&rack, &n).within, Some(Within::Rack("r-7".into())));
        // The tenant's own narrower limit stands; a wider one narrows.
        let own = Constraints { within: Some(Within::Rack("r-7".into())), ..su.clone() };
        assert_eq!(next_to(&own, &n), own);
        let wide = Constraints { within: Some(Within::Pod("pod-a".into())), ..su };
        assert_eq!(next_to(&wide, &n).within, Some(Within::Su("su-3".into())));
        assert_eq!(next_to(&wide, &n).anti_affinity, None);
    }
}
