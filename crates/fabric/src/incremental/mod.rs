//! The incremental planner: a long-lived planning context that takes one
//! tenant change at a time and validates, allocates and plans only what
//! the change can affect, with the same results as the whole-intent path
//! (`validate`, `allocate(intent, previous ledger)`, `plan`) on the
//! changed intent: the same ledger, the same objects on every switch, and
//! for a refused change the same error, the planner left as it was.
//!
//! It owns the topology, the intent, indexes over both and the ledger;
//! a change costs what it touches (its objects, their VPC's switches, the
//! nodes' ports), not the size of the fabric. The topology is fixed: a
//! topology change means a new planner.

mod change;
mod check;
mod ledger;
mod state;

pub use change::{TenantChange, TenantKey, TenantObject};

use crate::alloc::{allocate, Allocations};
use crate::desired::{DesiredState, SwitchConfig};
use crate::entries::LedgerKey;
use crate::error::{Error, Result};
use crate::intent::Intent;
use crate::model::{Fabric, Link, Switch};
use crate::plan::switch::plan_switch;
use change::{replace_ops, List, Members, Op};
use ledger::{Books, Journal};
use state::{Derived, Edit, Edits, ListUndo, Lists, Positions, StateView, Topology};
use std::collections::{BTreeMap, BTreeSet};

/// A planning context kept across changes (see the module doc).
pub struct IncrementalPlanner {
    topo: Topology,
    lists: Lists,
    d: Derived,
    books: Books,
    desired: DesiredState,
}

/// What a change did to the switches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// How many switches were planned again (those the change could
    /// affect).
    pub replanned: usize,
    /// Per switch whose desired configuration changed, by name.
    pub switches: BTreeMap<String, SwitchChange>,
    /// The ledger entries the change wrote (each now holds
    /// `allocations().entry(key)`, `None` for one released): what a store
    /// keeping the ledger entry by entry must write.
    pub ledger: BTreeSet<LedgerKey>,
}

/// One switch's desired configuration before and after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchChange {
    pub before: SwitchConfig,
    pub after: SwitchConfig,
}

/// Which side of a change.
#[derive(Clone, Copy)]
enum Side {
    Old,
    New,
}

fn pick<T>(e: &Edit<T>, side: Side) -> Option<&T> {
    match side {
        Side::Old => e.old.as_ref(),
        Side::New => e.new.as_ref(),
    }
}

impl IncrementalPlanner {
    /// Validates and allocates the whole intent against `previous` (as
    /// `allocate` does), builds the indexes and plans every switch: linear
    /// in the inputs, once.
    pub fn new(
        fabric: Fabric,
        switches: Vec<Switch>,
        links: Vec<Link>,
        intent: Intent,
        previous: &Allocations,
    ) -> Result<IncrementalPlanner> {
        let ledger = allocate(&fabric, &switches, &links, &intent, previous)?;
        let topo = Topology::new(fabric, switches, links);
        let lists = Lists { pos: Positions::of(&intent), intent };
        let mut d = Derived::new(&topo);
        let i = &lists.intent;
        i.networks.iter().for_each(|n| d.network(n, true));
        i.attachments.iter().for_each(|a| d.attachment(&topo, a, true));
        i.security_rules.iter().for_each(|r| d.rule(r, true));
        i.nat_gateways.iter().for_each(|g| d.nat(g, true));
        i.floating_ips.iter().for_each(|f| d.fip(f, true));
        let fips: BTreeSet<String> = i.floating_ips.iter().map(|f| f.id.clone()).collect();
        d.resolve_fips(&lists, &fips);
        let books = Books::new(topo.fabric.pools.provisioning.vni, &lists.intent, ledger);
        let mut desired = DesiredState::default();
        {
            let view = StateView { topo: &topo, lists: &lists, d: &d };
            for sw in &topo.switches {
                desired.switches.insert(sw.name.clone(), plan_switch(&view, &books.ledger, sw)?);
            }
        }
        Ok(IncrementalPlanner { topo, lists, d, books, desired })
    }

    pub fn fabric(&self) -> &Fabric {
        &self.topo.fabric
    }

    pub fn switches(&self) -> &[Switch] {
        &self.topo.switches
    }

    pub fn links(&self) -> &[Link] {
        &self.topo.links
    }

    /// The intent as the changes left it (see `TenantChange` for the
    /// order of its lists).
    pub fn intent(&self) -> &Intent {
        &self.lists.intent
    }

    /// The ledger, equal to `allocate(intent(), previous ledger)`.
    pub fn allocations(&self) -> &Allocations {
        &self.books.ledger
    }

    /// Every switch's desired configuration, equal to `plan`'s.
    pub fn desired(&self) -> &DesiredState {
        &self.desired
    }

    pub fn switch_config(&self, name: &str) -> Option<&SwitchConfig> {
        self.desired.switches.get(name)
    }

    /// The switches carrying anything of a VPC (as `Planner::switches_of_vpc`).
    pub fn switches_of_vpc(&self, vpc: &str) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        self.vpc_switches(vpc, &mut out);
        let mut names: BTreeSet<&str> =
            out.into_iter().map(|i| self.topo.switches[i].name.as_str()).collect();
        if self.d.is_north_south(vpc) {
            names.extend(
                self.topo.north_south_borders.iter().map(|&i| self.topo.switches[i].name.as_str()),
            );
        }
        names
    }

    /// Applies one change: validates what it can affect, brings the ledger
    /// up to date, re-plans the switches it can affect and answers those
    /// whose configuration changed. A refused change (the error `validate`
    /// or `allocate` would give for the changed intent) changes nothing.
    pub fn apply_change(&mut self, change: TenantChange) -> Result<Applied> {
        let ops = match change {
            TenantChange::Add(o) => {
                let key = o.key();
                if let Some(j) = self.lists.position(&key) {
                    let (list, k) = key.split();
                    return Err(duplicate(list, self.lists.len(list), j, k));
                }
                vec![Op::Put(o)]
            }
            TenantChange::Put(o) => vec![Op::Put(o)],
            TenantChange::Remove(k) => vec![Op::Remove(k)],
            TenantChange::ReplaceVpc { vpc, objects } => replace_ops(self.members(&vpc), &objects),
        };
        let (edits, undo) = self.lists.apply(ops);
        if edits.is_empty() {
            return Ok(Applied::default());
        }
        let mut dirty = BTreeSet::new();
        let mut north_south = self.footprint(&edits, Side::Old, &mut dirty);
        self.d.edits(&self.topo, &edits, true, false);
        self.d.edits(&self.topo, &edits, false, true);
        let fips = self.d.affected_fips(&edits);
        self.d.resolve_fips(&self.lists, &fips);
        let view = StateView { topo: &self.topo, lists: &self.lists, d: &self.d };
        if let Err(e) = check::check(&view, &edits, &fips) {
            self.revert(&edits, undo, &fips);
            return Err(e);
        }
        north_south |= self.footprint(&edits, Side::New, &mut dirty);
        if north_south {
            dirty.extend(self.topo.north_south_borders.iter().copied());
        }
        let mut journal = Journal::default();
        let view = StateView { topo: &self.topo, lists: &self.lists, d: &self.d };
        let planned = ledger::allocate(&mut self.books, &mut journal, &view, &edits, &dirty)
            .and_then(|moved| {
                if moved.iter().any(|a| self.d.fips_by_attachment.contains_key(a)) {
                    dirty.extend(self.topo.north_south_borders.iter().copied());
                }
                dirty
                    .iter()
                    .map(|&i| {
                        let sw = &self.topo.switches[i];
                        plan_switch(&view, &self.books.ledger, sw).map(|c| (i, c))
                    })
                    .collect::<Result<Vec<_>>>()
            });
        let planned = match planned {
            Ok(p) => p,
            Err(e) => {
                journal.undo(&mut self.books);
                self.revert(&edits, undo, &fips);
                return Err(e);
            }
        };
        let mut applied = Applied {
            replanned: planned.len(),
            switches: BTreeMap::new(),
            ledger: journal.touched,
        };
        for (i, after) in planned {
            let name = &self.topo.switches[i].name;
            let Some(slot) = self.desired.switches.get_mut(name) else { continue };
            if *slot != after {
                let before = std::mem::replace(slot, after.clone());
                applied.switches.insert(name.clone(), SwitchChange { before, after });
            }
        }
        Ok(applied)
    }

    /// Puts the lists and indexes back as they were before `edits`.
    fn revert(&mut self, edits: &Edits, undo: Vec<ListUndo>, fips: &BTreeSet<String>) {
        self.lists.undo(undo);
        self.d.edits(&self.topo, edits, false, false);
        self.d.edits(&self.topo, edits, true, true);
        self.d.resolve_fips(&self.lists, fips);
    }

    /// The switches (indexes) with an attachment of a VPC's networks.
    fn vpc_switches(&self, vpc: &str, out: &mut BTreeSet<usize>) {
        for n in self.d.networks_by_vpc.get(vpc).into_iter().flatten() {
            for sw in self.d.carriers.get(n).into_iter().flat_map(|c| c.keys()) {
                out.extend(self.topo.switch_index.get(sw));
            }
        }
    }

    /// The switches whose configuration one side of a change can affect,
    /// read from the indexes as they are for that side; true if the
    /// borders' north-south service can be affected too.
    ///
    /// A network's VPC, range or gateway reach every switch of its VPC
    /// (segments, ports, the VPC's policies); a rule, the switches of its
    /// destination; an attachment, its port's switch and its node's other
    /// ports (disabled or quarantined); NAT gateways and floating IPs, and
    /// the VPCs that have them, only the borders. A VPC's own fields reach
    /// no switch.
    fn footprint(&self, edits: &Edits, side: Side, dirty: &mut BTreeSet<usize>) -> bool {
        let mut north_south = !edits.nats.is_empty() || !edits.fips.is_empty();
        let vpcs: BTreeSet<&str> =
            edits.networks.values().filter_map(|e| pick(e, side)).map(|n| n.vpc.as_str()).collect();
        for vpc in vpcs {
            self.vpc_switches(vpc, dirty);
            north_south |= self.d.is_north_south(vpc);
        }
        for r in edits.rules.values().filter_map(|e| pick(e, side)) {
            for sw in self.d.carriers.get(&r.to).into_iter().flat_map(|c| c.keys()) {
                dirty.extend(self.topo.switch_index.get(sw));
            }
        }
        for (id, e) in &edits.attachments {
            north_south |= self.d.fips_by_attachment.contains_key(id);
            let Some(a) = pick(e, side) else { continue };
            for &(_, link) in self.topo.links_by_node.get(&a.node).into_iter().flatten() {
                dirty.extend(self.topo.switch_of_link(link));
            }
        }
        north_south
    }

    /// The objects that belong to a VPC (see `TenantChange::ReplaceVpc`).
    fn members(&self, vpc: &str) -> Members {
        let (pos, d) = (&self.lists.pos, &self.d);
        let mut out = Vec::new();
        let mut add = |list: List, at: Option<&usize>, key: &str| {
            if let Some(&at) = at {
                out.push((list, at, key.to_string()));
            }
        };
        add(List::Vpcs, pos.vpcs.get(vpc), vpc);
        let mut rules: BTreeSet<&str> = BTreeSet::new();
        for n in d.networks_by_vpc.get(vpc).into_iter().flatten() {
            add(List::Networks, pos.networks.get(n), n);
            for a in d.attachments_by_network.get(n).into_iter().flatten() {
                add(List::Attachments, pos.attachments.get(a), a);
                for f in d.fips_by_attachment.get(a).into_iter().flatten() {
                    add(List::FloatingIps, pos.fips.get(f), f);
                }
            }
            rules.extend(d.rules_by_to.get(n).into_iter().flatten().map(String::as_str));
            rules.extend(d.rules_by_from.get(n).into_iter().flatten().map(String::as_str));
        }
        for r in rules {
            add(List::SecurityRules, pos.rules.get(r), r);
        }
        add(List::NatGateways, pos.nats.get(vpc), vpc);
        Members(out)
    }
}

/// What `validate` says of an intent with `key` twice in `list`, the
/// second appended at `at`, the first at `first`.
fn duplicate(list: List, at: usize, first: usize, key: &str) -> Error {
    let name = list.name();
    match list {
        List::NatGateways => Error::invalid(
            format!("{name}[{at}].vpc"),
            format!("VPC {key:?} already has {name}[{first}]"),
        ),
        List::Vpcs
        | List::Networks
        | List::Attachments
        | List::SecurityRules
        | List::FloatingIps => {
            Error::invalid(format!("{name}[{at}].id"), format!("{key:?} is also {name}[{first}]"))
        }
    }
}
