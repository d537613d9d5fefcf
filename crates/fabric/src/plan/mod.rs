//! The planner: tenant intent + topology + ledger -> the objects each switch
//! must have.
//!
//! Placement rules:
//! - Spines: underlay BGP and the EVPN address family only; never tenant
//!   config (they relay EVPN routes and forward VXLAN as plain IP).
//! - A leaf gets a tenant network's segment (and its VPC's VRF + L3 VNI)
//!   only when one of its ports has an attachment of that network: a leaf
//!   without a tenant's nodes carries nothing of that tenant.
//! - A border with an uplink also gets the VRF of every VPC with
//!   north-south service (originating a default route into it), with its
//!   NAT, floating IP and public link objects, and the uplink itself. A
//!   border without an uplink is planned as a leaf.
//! - Ports: an attached NIC is an access port of its network; a node with
//!   no attachment at all is quarantined (its ports in the provisioning
//!   network); an unattached NIC of an attached node is disabled.

mod north_south;
pub(crate) mod switch;

use crate::alloc::Allocations;
use crate::desired::{DesiredState, SwitchConfig};
use crate::error::Result;
use crate::index::{Index, View};
use crate::intent::Intent;
use crate::model::{Fabric, Link, Switch};
use crate::validate::validate;
use std::collections::BTreeSet;

/// Plans every switch of the fabric.
pub fn plan(
    fabric: &Fabric,
    switches: &[Switch],
    links: &[Link],
    intent: &Intent,
    allocations: &Allocations,
) -> Result<DesiredState> {
    Planner::new(fabric, switches, links, intent, allocations)?.plan()
}

/// A validated, indexed planning context: plan everything, or only the
/// switches a change touches (a one-tenant change plans only its leaves).
pub struct Planner<'a> {
    ix: Index<'a>,
    alloc: &'a Allocations,
}

impl<'a> Planner<'a> {
    /// Validates the inputs and builds the indexes (linear in the inputs).
    pub fn new(
        fabric: &'a Fabric,
        switches: &'a [Switch],
        links: &'a [Link],
        intent: &'a Intent,
        allocations: &'a Allocations,
    ) -> Result<Planner<'a>> {
        validate(fabric, switches, links, intent)?;
        Ok(Planner { ix: Index::new(fabric, switches, links, intent), alloc: allocations })
    }

    pub fn plan(&self) -> Result<DesiredState> {
        let mut out = DesiredState::default();
        for sw in self.ix.switches {
            out.switches.insert(sw.name.clone(), switch::plan_switch(&self.ix, self.alloc, sw)?);
        }
        Ok(out)
    }

    /// One switch's objects; `None` for a switch not in the fabric.
    pub fn plan_switch(&self, name: &str) -> Result<Option<SwitchConfig>> {
        match self.ix.switch_by_name.get(name) {
            Some(sw) => switch::plan_switch(&self.ix, self.alloc, sw).map(Some),
            None => Ok(None),
        }
    }

    /// The switches carrying anything of a VPC (its leaves, plus every
    /// border with an uplink when it has north-south service): what a
    /// change to that VPC can touch.
    pub fn switches_of_vpc(&self, vpc: &str) -> BTreeSet<&'a str> {
        self.ix
            .switches
            .iter()
            .filter(|sw| self.ix.switch_vpcs(sw).contains(vpc))
            .map(|sw| sw.name.as_str())
            .collect()
    }
}
