//! Tenant changes, and how they edit the intent's lists.
//!
//! The order of the lists matters (validation errors name positions, and
//! an address kept by two attachments goes to the earlier one), so a
//! change edits them the same way whether applied to a whole `Intent`
//! (`TenantChange::apply_to`) or by the incremental planner: a new object
//! is appended, a replaced one keeps its position, a removed one is
//! swapped with the last of its list (`Vec::swap_remove`).

use crate::intent::{Attachment, FloatingIp, Intent, NatGateway, Network, SecurityRule, Vpc};
use std::collections::{BTreeSet, HashSet};

/// One tenant object of any kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantObject {
    Vpc(Vpc),
    Network(Network),
    Attachment(Attachment),
    SecurityRule(SecurityRule),
    NatGateway(NatGateway),
    FloatingIp(FloatingIp),
}

/// What identifies a tenant object: its id; a NAT gateway's VPC id (one
/// gateway per VPC).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TenantKey {
    Vpc(String),
    Network(String),
    Attachment(String),
    SecurityRule(String),
    NatGateway(String),
    FloatingIp(String),
}

/// One change to the tenants' intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantChange {
    /// A new object. An object with the same key already there makes the
    /// intent invalid (a duplicate id, a second NAT gateway for a VPC): the
    /// change is refused as `validate` would refuse the intent.
    Add(TenantObject),
    /// Adds the object, or replaces the one with the same key in place.
    Put(TenantObject),
    /// Removes the object with this key; nothing if there is none.
    Remove(TenantKey),
    /// Replaces a VPC and everything that belongs to it with `objects`:
    /// its networks, their attachments, the rules from or to them, its NAT
    /// gateway and the floating IPs of its attachments. Objects of the VPC
    /// whose key is not in `objects` are removed (highest position first),
    /// then every object of `objects` is put, list by list in `Intent`
    /// order, each list in its order (a key listed twice keeps the last).
    /// Empty `objects` removes the VPC and all of it.
    ReplaceVpc { vpc: String, objects: Intent },
}

/// The six lists of an intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum List {
    Vpcs,
    Networks,
    Attachments,
    SecurityRules,
    NatGateways,
    FloatingIps,
}

impl List {
    pub(crate) fn name(self) -> &'static str {
        match self {
            List::Vpcs => "vpcs",
            List::Networks => "networks",
            List::Attachments => "attachments",
            List::SecurityRules => "security_rules",
            List::NatGateways => "nat_gateways",
            List::FloatingIps => "floating_ips",
        }
    }
}

/// An object's key within its list.
pub(crate) trait Keyed {
    fn key(&self) -> &str;
}

impl Keyed for Vpc {
    fn key(&self) -> &str {
        &self.id
    }
}

impl Keyed for Network {
    fn key(&self) -> &str {
        &self.id
    }
}

impl Keyed for Attachment {
    fn key(&self) -> &str {
        &self.id
    }
}

impl Keyed for SecurityRule {
    fn key(&self) -> &str {
        &self.id
    }
}

impl Keyed for NatGateway {
    fn key(&self) -> &str {
        &self.vpc
    }
}

impl Keyed for FloatingIp {
    fn key(&self) -> &str {
        &self.id
    }
}

impl TenantObject {
    pub fn key(&self) -> TenantKey {
        match self {
            TenantObject::Vpc(o) => TenantKey::Vpc(o.id.clone()),
            TenantObject::Network(o) => TenantKey::Network(o.id.clone()),
            TenantObject::Attachment(o) => TenantKey::Attachment(o.id.clone()),
            TenantObject::SecurityRule(o) => TenantKey::SecurityRule(o.id.clone()),
            TenantObject::NatGateway(o) => TenantKey::NatGateway(o.vpc.clone()),
            TenantObject::FloatingIp(o) => TenantKey::FloatingIp(o.id.clone()),
        }
    }
}

impl TenantKey {
    pub(crate) fn split(&self) -> (List, &str) {
        match self {
            TenantKey::Vpc(k) => (List::Vpcs, k),
            TenantKey::Network(k) => (List::Networks, k),
            TenantKey::Attachment(k) => (List::Attachments, k),
            TenantKey::SecurityRule(k) => (List::SecurityRules, k),
            TenantKey::NatGateway(k) => (List::NatGateways, k),
            TenantKey::FloatingIp(k) => (List::FloatingIps, k),
        }
    }

    fn of(list: List, key: &str) -> TenantKey {
        let key = key.to_string();
        match list {
            List::Vpcs => TenantKey::Vpc(key),
            List::Networks => TenantKey::Network(key),
            List::Attachments => TenantKey::Attachment(key),
            List::SecurityRules => TenantKey::SecurityRule(key),
            List::NatGateways => TenantKey::NatGateway(key),
            List::FloatingIps => TenantKey::FloatingIp(key),
        }
    }
}

/// One edit of a list: what a change comes down to.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Append, even if the key is there (only `Add`, which is refused
    /// then).
    Push(TenantObject),
    /// Replace in place, or append.
    Put(TenantObject),
    Remove(TenantKey),
}

/// The objects that belong to a VPC, by list: (position, key).
#[derive(Debug, Default)]
pub(crate) struct Members(pub Vec<(List, usize, String)>);

/// The edits of `ReplaceVpc`: removals of the members whose key is not
/// put again (highest position first within each list), then the puts.
pub(crate) fn replace_ops(members: Members, objects: &Intent) -> Vec<Op> {
    let mut kept: HashSet<(List, &str)> = HashSet::new();
    kept.extend(objects.vpcs.iter().map(|o| (List::Vpcs, o.key())));
    kept.extend(objects.networks.iter().map(|o| (List::Networks, o.key())));
    kept.extend(objects.attachments.iter().map(|o| (List::Attachments, o.key())));
    kept.extend(objects.security_rules.iter().map(|o| (List::SecurityRules, o.key())));
    kept.extend(objects.nat_gateways.iter().map(|o| (List::NatGateways, o.key())));
    kept.extend(objects.floating_ips.iter().map(|o| (List::FloatingIps, o.key())));
    let mut gone: Vec<(List, usize, String)> =
        members.0.into_iter().filter(|(l, _, k)| !kept.contains(&(*l, k.as_str()))).collect();
    gone.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut ops: Vec<Op> =
        gone.into_iter().map(|(l, _, k)| Op::Remove(TenantKey::of(l, &k))).collect();
    ops.extend(objects.vpcs.iter().cloned().map(|o| Op::Put(TenantObject::Vpc(o))));
    ops.extend(objects.networks.iter().cloned().map(|o| Op::Put(TenantObject::Network(o))));
    ops.extend(objects.attachments.iter().cloned().map(|o| Op::Put(TenantObject::Attachment(o))));
    ops.extend(
        objects.security_rules.iter().cloned().map(|o| Op::Put(TenantObject::SecurityRule(o))),
    );
    ops.extend(objects.nat_gateways.iter().cloned().map(|o| Op::Put(TenantObject::NatGateway(o))));
    ops.extend(objects.floating_ips.iter().cloned().map(|o| Op::Put(TenantObject::FloatingIp(o))));
    ops
}

/// The members of a VPC in a whole intent (a linear scan).
fn members_of(intent: &Intent, vpc: &str) -> Members {
    let mut out = Vec::new();
    let mut push = |l: List, i: usize, k: &str| out.push((l, i, k.to_string()));
    for (i, v) in intent.vpcs.iter().enumerate().filter(|(_, v)| v.id == vpc) {
        push(List::Vpcs, i, &v.id);
    }
    let mut networks: BTreeSet<&str> = BTreeSet::new();
    for (i, n) in intent.networks.iter().enumerate().filter(|(_, n)| n.vpc == vpc) {
        push(List::Networks, i, &n.id);
        networks.insert(&n.id);
    }
    let mut attachments: BTreeSet<&str> = BTreeSet::new();
    for (i, a) in intent.attachments.iter().enumerate() {
        if networks.contains(a.network.as_str()) {
            push(List::Attachments, i, &a.id);
            attachments.insert(&a.id);
        }
    }
    for (i, r) in intent.security_rules.iter().enumerate() {
        if networks.contains(r.from.as_str()) || networks.contains(r.to.as_str()) {
            push(List::SecurityRules, i, &r.id);
        }
    }
    for (i, g) in intent.nat_gateways.iter().enumerate().filter(|(_, g)| g.vpc == vpc) {
        push(List::NatGateways, i, &g.vpc);
    }
    for (i, f) in intent.floating_ips.iter().enumerate() {
        if attachments.contains(f.attachment.as_str()) {
            push(List::FloatingIps, i, &f.id);
        }
    }
    Members(out)
}

fn plain_put<T: Keyed>(list: &mut Vec<T>, obj: T, replace: bool) {
    match list.iter().position(|o| o.key() == obj.key()).filter(|_| replace) {
        Some(i) => list[i] = obj,
        None => list.push(obj),
    }
}

fn plain_remove<T: Keyed>(list: &mut Vec<T>, key: &str) {
    if let Some(i) = list.iter().position(|o| o.key() == key) {
        list.swap_remove(i);
    }
}

fn plain_apply(intent: &mut Intent, op: Op) {
    let (obj, replace) = match op {
        Op::Push(o) => (o, false),
        Op::Put(o) => (o, true),
        Op::Remove(k) => {
            let (list, key) = k.split();
            match list {
                List::Vpcs => plain_remove(&mut intent.vpcs, key),
                List::Networks => plain_remove(&mut intent.networks, key),
                List::Attachments => plain_remove(&mut intent.attachments, key),
                List::SecurityRules => plain_remove(&mut intent.security_rules, key),
                List::NatGateways => plain_remove(&mut intent.nat_gateways, key),
                List::FloatingIps => plain_remove(&mut intent.floating_ips, key),
            }
            return;
        }
    };
    match obj {
        TenantObject::Vpc(o) => plain_put(&mut intent.vpcs, o, replace),
        TenantObject::Network(o) => plain_put(&mut intent.networks, o, replace),
        TenantObject::Attachment(o) => plain_put(&mut intent.attachments, o, replace),
        TenantObject::SecurityRule(o) => plain_put(&mut intent.security_rules, o, replace),
        TenantObject::NatGateway(o) => plain_put(&mut intent.nat_gateways, o, replace),
        TenantObject::FloatingIp(o) => plain_put(&mut intent.floating_ips, o, replace),
    }
}

impl TenantChange {
    /// Applies the change to a whole intent, editing its lists exactly as
    /// the incremental planner does (linear in the intent: for tests and
    /// tools; `IncrementalPlanner::apply_change` is the fast path). An
    /// `Add` of a key already there appends a duplicate, which `validate`
    /// then refuses.
    pub fn apply_to(&self, intent: &mut Intent) {
        let ops = match self {
            TenantChange::Add(o) => vec![Op::Push(o.clone())],
            TenantChange::Put(o) => vec![Op::Put(o.clone())],
            TenantChange::Remove(k) => vec![Op::Remove(k.clone())],
            TenantChange::ReplaceVpc { vpc, objects } => {
                replace_ops(members_of(intent, vpc), objects)
            }
        };
        for op in ops {
            plain_apply(intent, op);
        }
    }
}
