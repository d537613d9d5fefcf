//! What to update: the components the provider's firmware baseline for a
//! node's model gives an image for, read at another version now, in the
//! baseline's order (`firmware` sends and follows them).

use super::{LifecycleController, StepError};
use crate::secrets::SecretBox;
use neocloud_redfish::Firmware;
use neocloud_store::{nodes, Store};
use neocloud_types::{
    FirmwareActivation, FirmwareBaseline, FirmwareUpdate, FirmwareUpdateState, ImageTransfer, Node,
};

impl LifecycleController {
    /// What to update: the components the provider's baseline for the
    /// node's model has an image for, read at another version now. `None`
    /// (nothing written) where the baseline has no image; else the plan,
    /// written (possibly empty: nothing to update this release).
    pub(super) fn plan_firmware(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
    ) -> Result<Option<Vec<FirmwareUpdate>>, StepError> {
        let model = store
            .read(|r| nodes::bmc_inventory(r, &n.id))
            .map_err(StepError::Store)?
            .map(|i| i.model)
            .unwrap_or_default();
        let Some(policy) = self.firmware_policy_of(store, &model)? else { return Ok(None) };
        if policy.images.is_empty() {
            return Ok(None);
        }
        let (bmc, _) = self.bmc_system(store, secrets, n)?;
        let now = bmc.firmware().map_err(StepError::from)?;
        let plan = plan_from(&policy, &now);
        write_plan(store, n, &plan, "before the sanitizer boots")?;
        Ok(Some(plan))
    }
}

/// Writes the node's plan (an empty one too: planned, nothing to update)
/// and logs each update, done `when`.
pub(super) fn write_plan(
    store: &Store,
    n: &Node,
    plan: &[FirmwareUpdate],
    when: &str,
) -> Result<(), StepError> {
    for u in plan {
        tracing::info!(node = %n.name, component = %u.component, from = %u.from, to = %u.to, "firmware behind the provider's baseline: updating it {when}");
    }
    store.write(|w| nodes::set_firmware_updates(w, &n.id, Some(plan))).map_err(StepError::Store)
}

/// An update for each component `policy` has an image for, read at
/// another version in `now` (a component not reported has nothing to
/// target: the check fails it); those of the policy's order first, in
/// that order, the others by id (updates are sent in the plan's order).
pub(super) fn plan_from(policy: &FirmwareBaseline, now: &[Firmware]) -> Vec<FirmwareUpdate> {
    let mut plan = plan_by_id(policy, now);
    plan.sort_by_key(|u| {
        policy.order.iter().position(|id| id == &u.component).unwrap_or(usize::MAX)
    });
    plan
}

fn plan_by_id(policy: &FirmwareBaseline, now: &[Firmware]) -> Vec<FirmwareUpdate> {
    policy
        .images
        .iter()
        .filter_map(|(id, image)| {
            // Where the BMC's task may not say what activates it.
            let activation = policy.activations.get(id).map(|r| FirmwareActivation {
                action: r.action.clone(),
                reset_type: r.reset_type.clone(),
                state: FirmwareUpdateState::Planned,
                sent_at: None,
                detail: String::new(),
            });
            let to = policy.components.get(id)?;
            let f = now.iter().find(|f| &f.id == id)?;
            (&f.version != to).then(|| FirmwareUpdate {
                component: id.clone(),
                target: f.path.clone(),
                from: f.version.clone(),
                to: to.clone(),
                image: image.clone(),
                push: policy.transfer == ImageTransfer::Push,
                state: FirmwareUpdateState::Planned,
                task: None,
                percent: None,
                sends: 0,
                sent_at: None,
                tasks_before: None,
                applied_at: None,
                detail: String::new(),
                activation,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_follows_the_baselines_order_then_the_ids() {
        let ids = ["BIOS", "BMC", "CPLD", "NIC"];
        let mut policy = FirmwareBaseline {
            id: "b".into(),
            name: "b".into(),
            model: "m".into(),
            components: ids.iter().map(|c| (c.to_string(), "2".to_string())).collect(),
            images: ids.iter().map(|c| (c.to_string(), format!("https://fw/{c}"))).collect(),
            activations: Default::default(),
            transfer: ImageTransfer::Pull,
            order: vec![],
            description: String::new(),
            generation: 1,
            created_at: String::new(),
            updated_at: String::new(),
        };
        let now: Vec<Firmware> = ids
            .iter()
            .map(|c| Firmware {
                id: c.to_string(),
                name: c.to_string(),
                version: if *c == "NIC" { "2" } else { "1" }.into(),
                path: format!("/redfish/v1/UpdateService/FirmwareInventory/{c}"),
            })
            .collect();
        let order = |p: &FirmwareBaseline| -> Vec<String> {
            plan_from(p, &now).into_iter().map(|u| u.component).collect()
        };
        assert_eq!(order(&policy), ["BIOS", "BMC", "CPLD"], "by id; NIC is at its version");
        policy.order = vec!["CPLD".into(), "BMC".into()];
        assert_eq!(order(&policy), ["CPLD", "BMC", "BIOS"]);
        policy.order = vec!["NIC".into(), "BMC".into()];
        assert_eq!(order(&policy), ["BMC", "BIOS", "CPLD"], "NIC has nothing to update");
    }
}
