//! What one NVUE apply changes, computed from what the switch shows
//! (its applied tree), what it was last given (`actual`) and `desired`.
//! Pure.
//!
//! - An object of `desired` whose claims the switch already holds is left
//!   alone (a re-apply changes nothing).
//! - Otherwise its old paths (from `actual`) and its new ones are unset
//!   where the switch has them, then its claims are set: a changed object
//!   is rewritten, not merged into what it was.
//! - An object only in `actual` is unset where the switch has it, leaving
//!   what [`tree::leftovers`] says (a released port stays down).
//! - The hostname and the generation marker are set when they differ.
//!
//! Unsets go in one PATCH of `null`s, sets in a second, both in the same
//! revision, so the switch applies them at once.

use super::tree::{self, Claim};
use crate::http::marker;
use neocloud_fabric::{Error, SwitchConfig};
use serde_json::{json, Value};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// Paths to unset (a PATCH body of `null`s).
    pub unset: Vec<Vec<String>>,
    /// Claims to set (a PATCH body).
    pub set: Vec<Claim>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.unset.is_empty() && self.set.is_empty()
    }

    /// The first PATCH body (`None` when nothing is unset).
    pub fn unset_body(&self) -> Option<Value> {
        if self.unset.is_empty() {
            return None;
        }
        let mut root = json!({});
        for p in &self.unset {
            tree::put(&mut root, p, Value::Null);
        }
        Some(root)
    }

    /// The second PATCH body (`None` when nothing is set).
    pub fn set_body(&self) -> Option<Value> {
        (!self.set.is_empty()).then(|| tree::merge(&self.set))
    }
}

/// The interface whose description carries the generation marker.
pub fn marker_claim(interface: &str, generation: u64) -> Claim {
    Claim {
        path: vec!["interface".into(), interface.into(), "description".into()],
        value: json!(marker(generation)),
    }
}

pub fn plan(
    switch: &str,
    device: &Value,
    actual: &SwitchConfig,
    desired: &SwitchConfig,
    marker: &Claim,
) -> Result<Change, Error> {
    let mut out = Change::default();
    let unset = |out: &mut Change, claims: &[Claim]| {
        for c in claims {
            if tree::get(device, &c.path).is_some() && !out.unset.contains(&c.path) {
                out.unset.push(c.path.clone());
            }
        }
    };
    for (id, o) in &desired.objects {
        let want = tree::claims(switch, o)?;
        if want.iter().all(|c| tree::holds(device, c).is_ok()) {
            continue;
        }
        if let Some(old) = actual.objects.get(id) {
            // What `actual` had was rendered before; a renderer that now
            // refuses it wrote nothing of it.
            unset(&mut out, &tree::claims(switch, old).unwrap_or_default());
        }
        unset(&mut out, &want);
        out.set.extend(want);
    }
    for (id, o) in actual.objects.iter().rev() {
        if desired.objects.contains_key(id) {
            continue;
        }
        unset(&mut out, &tree::claims(switch, o).unwrap_or_default());
        out.set.extend(tree::leftovers(o).into_iter().filter(|c| tree::holds(device, c).is_err()));
    }
    for c in [tree::hostname(switch), marker.clone()] {
        if tree::holds(device, &c).is_err() {
            out.set.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::double::lab::Lab;
    use neocloud_fabric::SwitchOs;

    fn full(switch: &str, cfg: &SwitchConfig, generation: u64) -> Value {
        let mut all = vec![tree::hostname(switch), marker_claim("eth0", generation)];
        for o in cfg.objects.values() {
            all.extend(tree::claims(switch, o).unwrap());
        }
        tree::merge(&all)
    }

    #[test]
    fn from_empty_sets_everything_and_unsets_nothing() {
        let cfg = Lab::new(SwitchOs::CumulusNvue).plan("leaf1");
        let empty = SwitchConfig::new(SwitchOs::CumulusNvue);
        let c = plan("leaf1", &json!({}), &empty, &cfg, &marker_claim("eth0", 1)).unwrap();
        assert!(c.unset.is_empty());
        assert_eq!(c.set_body().unwrap(), full("leaf1", &cfg, 1));
    }

    #[test]
    fn in_sync_is_empty_and_a_new_generation_only_moves_the_marker() {
        let cfg = Lab::new(SwitchOs::CumulusNvue).plan("leaf1");
        let device = full("leaf1", &cfg, 1);
        assert!(plan("leaf1", &device, &cfg, &cfg, &marker_claim("eth0", 1)).unwrap().is_empty());
        let c = plan("leaf1", &device, &cfg, &cfg, &marker_claim("eth0", 2)).unwrap();
        assert_eq!(
            c.set_body(),
            Some(json!({"interface": {"eth0": {"description": "neocloud generation 2"}}}))
        );
        assert!(c.unset.is_empty());
    }

    #[test]
    fn a_removed_network_unsets_its_objects_and_rewrites_the_port() {
        let mut lab = Lab::new(SwitchOs::CumulusNvue);
        let before = lab.plan("leaf1");
        lab.remove_network("net-b");
        let after = lab.plan("leaf1");
        let device = full("leaf1", &before, 1);
        let c = plan("leaf1", &device, &before, &after, &marker_claim("eth0", 2)).unwrap();
        assert_eq!(
            c.unset_body().unwrap(),
            json!({
                "vrf": {"Vrf5001": null},
                "bridge": {"domain": {"br_default": {"vlan": {"11": null}}}},
                "evpn": {"vni": {"101": null}},
                "interface": {
                    "vlan11": null,
                    "swp3": {"bridge": {"domain": {"br_default": null}}, "link": {"state": null}},
                },
            })
        );
        // b1's port is quarantined now: in the provisioning VLAN.
        assert_eq!(
            c.set_body().unwrap(),
            json!({"interface": {
                "swp3": {"bridge": {"domain": {"br_default": {"access": 4000}}}, "link": {"state": {"up": {}}}},
                "eth0": {"description": "neocloud generation 2"},
            }})
        );
    }
}
