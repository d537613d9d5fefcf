//! The incremental planner's long-lived data: the topology with its
//! lookups (built once), the intent with each object's position, and the
//! indexes derived from the intent, kept up to date object by object.
//!
//! The derived indexes hold every object, even while a change under test
//! makes the intent invalid (two attachments on one NIC, a network of a
//! VPC that is gone): validation reads them, and a refused change takes
//! its objects out again.

use super::change::{Keyed, List, Op, TenantKey, TenantObject};
use crate::index::View;
use crate::intent::{Attachment, FloatingIp, Intent, NatGateway, Network, SecurityRule, Vpc};
use crate::model::{Fabric, Link, Switch};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::Hash;
use std::net::Ipv4Addr;

/// The provider's side, fixed for the planner's life.
pub(crate) struct Topology {
    pub fabric: Fabric,
    pub switches: Vec<Switch>,
    pub links: Vec<Link>,
    pub switch_index: HashMap<String, usize>,
    /// Link indexes per switch, sorted by port.
    pub links_by_switch: HashMap<String, Vec<usize>>,
    /// Per node: (NIC, link index).
    pub links_by_node: HashMap<String, Vec<(String, usize)>>,
    pub servers: HashSet<String>,
    /// Switches carrying north-south service (borders with an uplink).
    pub north_south_borders: Vec<usize>,
}

impl Topology {
    pub fn new(fabric: Fabric, switches: Vec<Switch>, links: Vec<Link>) -> Topology {
        let switch_index = switches.iter().enumerate().map(|(i, s)| (s.name.clone(), i)).collect();
        let mut links_by_switch: HashMap<String, Vec<usize>> = HashMap::new();
        let mut links_by_node: HashMap<String, Vec<(String, usize)>> = HashMap::new();
        for (i, l) in links.iter().enumerate() {
            links_by_switch.entry(l.switch.clone()).or_default().push(i);
            links_by_node.entry(l.node.clone()).or_default().push((l.nic.clone(), i));
        }
        for v in links_by_switch.values_mut() {
            v.sort_by(|&a, &b| links[a].port.cmp(&links[b].port));
        }
        let servers = fabric.pools.provisioning.servers.iter().cloned().collect();
        let north_south_borders = switches
            .iter()
            .enumerate()
            .filter(|(_, s)| s.carries_north_south())
            .map(|(i, _)| i)
            .collect();
        Topology {
            fabric,
            switches,
            links,
            switch_index,
            links_by_switch,
            links_by_node,
            servers,
            north_south_borders,
        }
    }

    /// The link of a node NIC.
    pub fn link_of(&self, node: &str, nic: &str) -> Option<usize> {
        self.links_by_node.get(node)?.iter().find(|(n, _)| n == nic).map(|&(_, i)| i)
    }

    /// The switch (index) of a link.
    pub fn switch_of_link(&self, link: usize) -> Option<usize> {
        self.switch_index.get(&self.links[link].switch).copied()
    }

    pub fn has_uplink(&self) -> bool {
        !self.north_south_borders.is_empty()
    }
}

/// Where each object is in its list.
#[derive(Default)]
pub(crate) struct Positions {
    pub vpcs: HashMap<String, usize>,
    pub networks: HashMap<String, usize>,
    pub attachments: HashMap<String, usize>,
    pub rules: HashMap<String, usize>,
    /// By VPC id.
    pub nats: HashMap<String, usize>,
    pub fips: HashMap<String, usize>,
}

fn positions<T: Keyed>(list: &[T]) -> HashMap<String, usize> {
    list.iter().enumerate().map(|(i, o)| (o.key().to_string(), i)).collect()
}

impl Positions {
    pub fn of(intent: &Intent) -> Positions {
        Positions {
            vpcs: positions(&intent.vpcs),
            networks: positions(&intent.networks),
            attachments: positions(&intent.attachments),
            rules: positions(&intent.security_rules),
            nats: positions(&intent.nat_gateways),
            fips: positions(&intent.floating_ips),
        }
    }
}

/// The intent and its positions.
pub(crate) struct Lists {
    pub intent: Intent,
    pub pos: Positions,
}

/// How to undo one list edit.
pub(crate) enum ListUndo {
    /// The object at `at` replaced `old`.
    Replaced { at: usize, old: TenantObject },
    /// An object was appended to `list`.
    Pushed { list: List },
    /// `old` was swap-removed from `at`.
    Removed { at: usize, old: TenantObject },
}

/// One list's vector and position map, typed.
struct Slots<'a, T> {
    items: &'a mut Vec<T>,
    pos: &'a mut HashMap<String, usize>,
}

impl<T: Keyed> Slots<'_, T> {
    /// Replaces in place or appends: (position, replaced object).
    fn put(&mut self, obj: T) -> (usize, Option<T>) {
        match self.pos.get(obj.key()) {
            Some(&at) => (at, Some(std::mem::replace(&mut self.items[at], obj))),
            None => {
                self.pos.insert(obj.key().to_string(), self.items.len());
                self.items.push(obj);
                (self.items.len() - 1, None)
            }
        }
    }

    fn remove(&mut self, key: &str) -> Option<(usize, T)> {
        let at = self.pos.remove(key)?;
        let old = self.items.swap_remove(at);
        if let Some(moved) = self.items.get(at) {
            self.pos.insert(moved.key().to_string(), at);
        }
        Some((at, old))
    }

    fn undo_replace(&mut self, at: usize, old: T) {
        self.items[at] = old;
    }

    fn undo_push(&mut self) {
        if let Some(o) = self.items.pop() {
            self.pos.remove(o.key());
        }
    }

    fn undo_remove(&mut self, at: usize, old: T) {
        self.pos.insert(old.key().to_string(), self.items.len());
        self.items.push(old);
        let last = self.items.len() - 1;
        self.items.swap(at, last);
        for i in [at, last] {
            let k = self.items[i].key().to_string();
            self.pos.insert(k, i);
        }
    }
}

/// Runs `$body` with `$slots` bound to the typed list of `$list`, and
/// `$wrap` to its `TenantObject` constructor.
macro_rules! with_list {
    ($lists:expr, $list:expr, |$slots:ident, $wrap:ident| $body:expr) => {
        match $list {
            List::Vpcs => {
                let mut $slots =
                    Slots { items: &mut $lists.intent.vpcs, pos: &mut $lists.pos.vpcs };
                let $wrap = TenantObject::Vpc;
                $body
            }
            List::Networks => {
                let mut $slots =
                    Slots { items: &mut $lists.intent.networks, pos: &mut $lists.pos.networks };
                let $wrap = TenantObject::Network;
                $body
            }
            List::Attachments => {
                let mut $slots = Slots {
                    items: &mut $lists.intent.attachments,
                    pos: &mut $lists.pos.attachments,
                };
                let $wrap = TenantObject::Attachment;
                $body
            }
            List::SecurityRules => {
                let mut $slots =
                    Slots { items: &mut $lists.intent.security_rules, pos: &mut $lists.pos.rules };
                let $wrap = TenantObject::SecurityRule;
                $body
            }
            List::NatGateways => {
                let mut $slots =
                    Slots { items: &mut $lists.intent.nat_gateways, pos: &mut $lists.pos.nats };
                let $wrap = TenantObject::NatGateway;
                $body
            }
            List::FloatingIps => {
                let mut $slots =
                    Slots { items: &mut $lists.intent.floating_ips, pos: &mut $lists.pos.fips };
                let $wrap = TenantObject::FloatingIp;
                $body
            }
        }
    };
}

fn list_of(o: &TenantObject) -> List {
    match o {
        TenantObject::Vpc(_) => List::Vpcs,
        TenantObject::Network(_) => List::Networks,
        TenantObject::Attachment(_) => List::Attachments,
        TenantObject::SecurityRule(_) => List::SecurityRules,
        TenantObject::NatGateway(_) => List::NatGateways,
        TenantObject::FloatingIp(_) => List::FloatingIps,
    }
}

/// Unwraps a `TenantObject` known to be of the list's type.
trait FromObject: Sized {
    fn from_object(o: TenantObject) -> Option<Self>;
}

macro_rules! from_object {
    ($t:ty, $v:ident) => {
        impl FromObject for $t {
            fn from_object(o: TenantObject) -> Option<$t> {
                match o {
                    TenantObject::$v(x) => Some(x),
                    _ => None,
                }
            }
        }
    };
}
from_object!(Vpc, Vpc);
from_object!(Network, Network);
from_object!(Attachment, Attachment);
from_object!(SecurityRule, SecurityRule);
from_object!(NatGateway, NatGateway);
from_object!(FloatingIp, FloatingIp);

/// The net effect of a change on one object: before and after.
#[derive(Debug, Clone)]
pub(crate) struct Edit<T> {
    pub old: Option<T>,
    pub new: Option<T>,
}

/// A change's net effect, per list, by key (objects that end as they
/// began are left out).
#[derive(Debug, Default)]
pub(crate) struct Edits {
    pub vpcs: BTreeMap<String, Edit<Vpc>>,
    pub networks: BTreeMap<String, Edit<Network>>,
    pub attachments: BTreeMap<String, Edit<Attachment>>,
    pub rules: BTreeMap<String, Edit<SecurityRule>>,
    pub nats: BTreeMap<String, Edit<NatGateway>>,
    pub fips: BTreeMap<String, Edit<FloatingIp>>,
}

impl Edits {
    pub fn is_empty(&self) -> bool {
        self.vpcs.is_empty()
            && self.networks.is_empty()
            && self.attachments.is_empty()
            && self.rules.is_empty()
            && self.nats.is_empty()
            && self.fips.is_empty()
    }

    fn record(&mut self, key: &str, old: Option<TenantObject>, new: Option<TenantObject>) {
        fn rec<T: FromObject>(
            m: &mut BTreeMap<String, Edit<T>>,
            key: &str,
            old: Option<TenantObject>,
            new: Option<TenantObject>,
        ) {
            let e = m
                .entry(key.to_string())
                .or_insert_with(|| Edit { old: old.and_then(T::from_object), new: None });
            e.new = new.and_then(T::from_object);
        }
        let list = match (&old, &new) {
            (Some(o), _) | (None, Some(o)) => list_of(o),
            (None, None) => return,
        };
        match list {
            List::Vpcs => rec(&mut self.vpcs, key, old, new),
            List::Networks => rec(&mut self.networks, key, old, new),
            List::Attachments => rec(&mut self.attachments, key, old, new),
            List::SecurityRules => rec(&mut self.rules, key, old, new),
            List::NatGateways => rec(&mut self.nats, key, old, new),
            List::FloatingIps => rec(&mut self.fips, key, old, new),
        }
    }

    /// Drops the objects that end as they began.
    fn settle(&mut self) {
        fn keep<T: PartialEq>(m: &mut BTreeMap<String, Edit<T>>) {
            m.retain(|_, e| e.old != e.new);
        }
        keep(&mut self.vpcs);
        keep(&mut self.networks);
        keep(&mut self.attachments);
        keep(&mut self.rules);
        keep(&mut self.nats);
        keep(&mut self.fips);
    }
}

impl Lists {
    /// Applies the edits to the lists: the net effect, and how to undo it.
    pub fn apply(&mut self, ops: Vec<Op>) -> (Edits, Vec<ListUndo>) {
        let mut edits = Edits::default();
        let mut undo = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                Op::Push(obj) | Op::Put(obj) => {
                    let list = list_of(&obj);
                    let key = obj.key();
                    let (_, key) = key.split();
                    let new = Some(obj.clone());
                    let (at, old) = with_list!(self, list, |slots, wrap| {
                        let typed = FromObject::from_object(obj).expect("the list's type");
                        let (at, old) = slots.put(typed);
                        (at, old.map(wrap))
                    });
                    edits.record(key, old.clone(), new);
                    undo.push(match old {
                        Some(old) => ListUndo::Replaced { at, old },
                        None => ListUndo::Pushed { list },
                    });
                }
                Op::Remove(k) => {
                    let (list, key) = k.split();
                    let removed = with_list!(self, list, |slots, wrap| {
                        slots.remove(key).map(|(at, o)| (at, wrap(o)))
                    });
                    if let Some((at, old)) = removed {
                        edits.record(key, Some(old.clone()), None);
                        undo.push(ListUndo::Removed { at, old });
                    }
                }
            }
        }
        edits.settle();
        (edits, undo)
    }

    /// Undoes `apply`.
    pub fn undo(&mut self, undo: Vec<ListUndo>) {
        for u in undo.into_iter().rev() {
            match u {
                ListUndo::Replaced { at, old } => {
                    let list = list_of(&old);
                    with_list!(self, list, |slots, _wrap| {
                        if let Some(o) = FromObject::from_object(old) {
                            slots.undo_replace(at, o);
                        }
                    })
                }
                ListUndo::Pushed { list } => with_list!(self, list, |slots, _wrap| {
                    slots.undo_push();
                }),
                ListUndo::Removed { at, old } => {
                    let list = list_of(&old);
                    with_list!(self, list, |slots, _wrap| {
                        if let Some(o) = FromObject::from_object(old) {
                            slots.undo_remove(at, o);
                        }
                    })
                }
            }
        }
    }

    pub fn network(&self, id: &str) -> Option<&Network> {
        self.pos.networks.get(id).map(|&i| &self.intent.networks[i])
    }

    pub fn attachment(&self, id: &str) -> Option<&Attachment> {
        self.pos.attachments.get(id).map(|&i| &self.intent.attachments[i])
    }

    pub fn rule(&self, id: &str) -> Option<&SecurityRule> {
        self.pos.rules.get(id).map(|&i| &self.intent.security_rules[i])
    }

    pub fn fip(&self, id: &str) -> Option<&FloatingIp> {
        self.pos.fips.get(id).map(|&i| &self.intent.floating_ips[i])
    }

    pub fn nat(&self, vpc: &str) -> Option<&NatGateway> {
        self.pos.nats.get(vpc).map(|&i| &self.intent.nat_gateways[i])
    }

    /// The VPC a floating IP serves (through its attachment's network).
    pub fn fip_vpc(&self, f: &FloatingIp) -> Option<&str> {
        let a = self.attachment(&f.attachment)?;
        self.network(&a.network).map(|n| n.vpc.as_str())
    }

    /// Whether an object with this key exists, and where.
    pub fn position(&self, key: &TenantKey) -> Option<usize> {
        let (list, k) = key.split();
        let pos = &self.pos;
        match list {
            List::Vpcs => pos.vpcs.get(k),
            List::Networks => pos.networks.get(k),
            List::Attachments => pos.attachments.get(k),
            List::SecurityRules => pos.rules.get(k),
            List::NatGateways => pos.nats.get(k),
            List::FloatingIps => pos.fips.get(k),
        }
        .copied()
    }

    pub fn len(&self, list: List) -> usize {
        let i = &self.intent;
        match list {
            List::Vpcs => i.vpcs.len(),
            List::Networks => i.networks.len(),
            List::Attachments => i.attachments.len(),
            List::SecurityRules => i.security_rules.len(),
            List::NatGateways => i.nat_gateways.len(),
            List::FloatingIps => i.floating_ips.len(),
        }
    }
}

/// Who gave a public address (validation's view: given addresses only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicGiven {
    /// A NAT gateway's `public_ip`, by VPC.
    Nat(String),
    /// A floating IP, by id.
    Fip(String),
}

/// A multimap: usually one value per key; more only while a change under
/// test makes the intent invalid.
pub(crate) struct Multi<K, V>(HashMap<K, Vec<V>>);

impl<K, V> Default for Multi<K, V> {
    fn default() -> Self {
        Multi(HashMap::new())
    }
}

impl<K: Hash + Eq, V: PartialEq> Multi<K, V> {
    fn add(&mut self, k: K, v: V) {
        self.0.entry(k).or_default().push(v);
    }

    fn remove(&mut self, k: &K, v: &V) {
        if let Some(vs) = self.0.get_mut(k) {
            if let Some(i) = vs.iter().position(|x| x == v) {
                vs.swap_remove(i);
            }
            if vs.is_empty() {
                self.0.remove(k);
            }
        }
    }

    pub fn get(&self, k: &K) -> &[V] {
        self.0.get(k).map_or(&[], Vec::as_slice)
    }
}

fn set_add(m: &mut HashMap<String, BTreeSet<String>>, k: &str, v: &str) {
    m.entry(k.to_string()).or_default().insert(v.to_string());
}

fn set_remove(m: &mut HashMap<String, BTreeSet<String>>, k: &str, v: &str) {
    if let Some(s) = m.get_mut(k) {
        s.remove(v);
        if s.is_empty() {
            m.remove(k);
        }
    }
}

fn count<K: Hash + Eq>(m: &mut HashMap<K, u32>, k: K, add: bool) {
    let c = m.entry(k).or_insert(0);
    match add {
        true => *c += 1,
        false => *c = c.saturating_sub(1),
    }
}

fn count_in(m: &mut HashMap<String, BTreeMap<String, u32>>, k: &str, k2: &str, add: bool) {
    let inner = m.entry(k.to_string()).or_default();
    let c = inner.entry(k2.to_string()).or_insert(0);
    match add {
        true => *c += 1,
        false => *c = c.saturating_sub(1),
    }
    if *c == 0 {
        inner.remove(k2);
        if inner.is_empty() {
            m.remove(k);
        }
    }
}

/// Indexes derived from the intent.
#[derive(Default)]
pub(crate) struct Derived {
    pub networks_by_vpc: HashMap<String, BTreeSet<String>>,
    pub attachments_by_network: HashMap<String, BTreeSet<String>>,
    /// Attachments per link (node NIC), by link index.
    pub nic_holders: Vec<Vec<String>>,
    /// Attachments per node.
    pub attached_nodes: HashMap<String, u32>,
    /// Per network, the switches with an attachment of it behind a port
    /// (and how many).
    pub carriers: HashMap<String, BTreeMap<String, u32>>,
    /// Per switch, the networks with an attachment behind a port.
    pub switch_networks: HashMap<String, BTreeMap<String, u32>>,
    /// Given attachment addresses, per network.
    pub given_ips: HashMap<String, Multi<Ipv4Addr, String>>,
    pub rules_by_to: HashMap<String, BTreeSet<String>>,
    pub rules_by_from: HashMap<String, BTreeSet<String>>,
    pub fips_by_attachment: HashMap<String, BTreeSet<String>>,
    /// Given public addresses (NAT gateways and floating IPs).
    pub public_given: Multi<Ipv4Addr, PublicGiven>,
    /// The VPC each floating IP serves, where its references resolve.
    pub fip_vpc: HashMap<String, String>,
    pub fips_by_vpc: HashMap<String, BTreeSet<String>>,
    /// North-south VPCs: a NAT gateway counts one, each floating IP one.
    pub north_south: BTreeMap<String, u32>,
}

impl Derived {
    pub fn new(topo: &Topology) -> Derived {
        Derived { nic_holders: vec![Vec::new(); topo.links.len()], ..Derived::default() }
    }

    fn north_south(&mut self, vpc: &str, add: bool) {
        let c = self.north_south.entry(vpc.to_string()).or_insert(0);
        match add {
            true => *c += 1,
            false => *c = c.saturating_sub(1),
        }
        if *c == 0 {
            self.north_south.remove(vpc);
        }
    }

    pub fn network(&mut self, n: &Network, add: bool) {
        match add {
            true => set_add(&mut self.networks_by_vpc, &n.vpc, &n.id),
            false => set_remove(&mut self.networks_by_vpc, &n.vpc, &n.id),
        }
    }

    pub fn attachment(&mut self, topo: &Topology, a: &Attachment, add: bool) {
        match add {
            true => set_add(&mut self.attachments_by_network, &a.network, &a.id),
            false => set_remove(&mut self.attachments_by_network, &a.network, &a.id),
        }
        count(&mut self.attached_nodes, a.node.clone(), add);
        if self.attached_nodes.get(&a.node) == Some(&0) {
            self.attached_nodes.remove(&a.node);
        }
        if let Some(link) = topo.link_of(&a.node, &a.nic) {
            let holders = &mut self.nic_holders[link];
            match add {
                true => holders.push(a.id.clone()),
                false => {
                    if let Some(i) = holders.iter().position(|x| *x == a.id) {
                        holders.remove(i);
                    }
                }
            }
            let switch = &topo.links[link].switch;
            count_in(&mut self.carriers, &a.network, switch, add);
            count_in(&mut self.switch_networks, switch, &a.network, add);
        }
        if let Some(ip) = a.ip {
            let m = self.given_ips.entry(a.network.clone()).or_default();
            match add {
                true => m.add(ip, a.id.clone()),
                false => m.remove(&ip, &a.id),
            }
            if m.0.is_empty() {
                self.given_ips.remove(&a.network);
            }
        }
    }

    pub fn rule(&mut self, r: &SecurityRule, add: bool) {
        match add {
            true => {
                set_add(&mut self.rules_by_to, &r.to, &r.id);
                set_add(&mut self.rules_by_from, &r.from, &r.id);
            }
            false => {
                set_remove(&mut self.rules_by_to, &r.to, &r.id);
                set_remove(&mut self.rules_by_from, &r.from, &r.id);
            }
        }
    }

    pub fn nat(&mut self, g: &NatGateway, add: bool) {
        self.north_south(&g.vpc, add);
        if let Some(ip) = g.public_ip {
            let holder = PublicGiven::Nat(g.vpc.clone());
            match add {
                true => self.public_given.add(ip, holder),
                false => self.public_given.remove(&ip, &holder),
            }
        }
    }

    pub fn fip(&mut self, f: &FloatingIp, add: bool) {
        match add {
            true => set_add(&mut self.fips_by_attachment, &f.attachment, &f.id),
            false => set_remove(&mut self.fips_by_attachment, &f.attachment, &f.id),
        }
        let holder = PublicGiven::Fip(f.id.clone());
        match add {
            true => self.public_given.add(f.public_ip, holder),
            false => self.public_given.remove(&f.public_ip, &holder),
        }
    }

    /// Adds (or takes out) every version of the edits: `old` ones when
    /// `old`, else the new ones.
    pub fn edits(&mut self, topo: &Topology, edits: &Edits, old: bool, add: bool) {
        fn pick<T>(e: &Edit<T>, old: bool) -> Option<&T> {
            match old {
                true => e.old.as_ref(),
                false => e.new.as_ref(),
            }
        }
        for e in edits.networks.values() {
            if let Some(n) = pick(e, old) {
                self.network(n, add);
            }
        }
        for e in edits.attachments.values() {
            if let Some(a) = pick(e, old) {
                self.attachment(topo, a, add);
            }
        }
        for e in edits.rules.values() {
            if let Some(r) = pick(e, old) {
                self.rule(r, add);
            }
        }
        for e in edits.nats.values() {
            if let Some(g) = pick(e, old) {
                self.nat(g, add);
            }
        }
        for e in edits.fips.values() {
            if let Some(f) = pick(e, old) {
                self.fip(f, add);
            }
        }
    }

    /// Re-resolves which VPC each of `fips` serves, against the lists as
    /// they are now.
    pub fn resolve_fips(&mut self, lists: &Lists, fips: &BTreeSet<String>) {
        for id in fips {
            if let Some(vpc) = self.fip_vpc.remove(id) {
                set_remove(&mut self.fips_by_vpc, &vpc, id);
                self.north_south(&vpc, false);
            }
            let Some(vpc) = lists.fip(id).and_then(|f| lists.fip_vpc(f)) else { continue };
            let vpc = vpc.to_string();
            set_add(&mut self.fips_by_vpc, &vpc, id);
            self.north_south(&vpc, true);
            self.fip_vpc.insert(id.clone(), vpc);
        }
    }

    /// The floating IPs whose VPC an edit can change: those edited, those
    /// of edited attachments and of the attachments of edited networks.
    pub fn affected_fips(&self, edits: &Edits) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = edits.fips.keys().cloned().collect();
        let mut of_attachment = |a: &str| {
            out.extend(self.fips_by_attachment.get(a).into_iter().flatten().cloned());
        };
        for a in edits.attachments.keys() {
            of_attachment(a);
        }
        for n in edits.networks.keys() {
            for a in self.attachments_by_network.get(n).into_iter().flatten() {
                of_attachment(a);
            }
        }
        out
    }

    pub fn is_north_south(&self, vpc: &str) -> bool {
        self.north_south.contains_key(vpc)
    }
}

/// The planner's view of the incremental state.
pub(crate) struct StateView<'s> {
    pub topo: &'s Topology,
    pub lists: &'s Lists,
    pub d: &'s Derived,
}

impl View for StateView<'_> {
    fn fabric(&self) -> &Fabric {
        &self.topo.fabric
    }

    fn switch(&self, name: &str) -> Option<&Switch> {
        self.topo.switch_index.get(name).map(|&i| &self.topo.switches[i])
    }

    fn ports(&self, switch: &str) -> impl Iterator<Item = (&Link, Option<&Attachment>)> {
        self.topo.links_by_switch.get(switch).into_iter().flatten().map(|&i| {
            let a = self.d.nic_holders[i].first().and_then(|id| self.lists.attachment(id));
            (&self.topo.links[i], a)
        })
    }

    fn node_attached(&self, node: &str) -> bool {
        self.d.attached_nodes.contains_key(node)
    }

    fn provisioning_server(&self, node: &str) -> bool {
        self.topo.servers.contains(node)
    }

    fn network(&self, id: &str) -> Option<&Network> {
        self.lists.network(id)
    }

    fn vpc_networks(&self, vpc: &str) -> impl Iterator<Item = &Network> {
        self.d
            .networks_by_vpc
            .get(vpc)
            .into_iter()
            .flatten()
            .filter_map(|id| self.lists.network(id))
    }

    fn switch_networks(&self, switch: &str) -> impl Iterator<Item = &Network> {
        self.d
            .switch_networks
            .get(switch)
            .into_iter()
            .flatten()
            .filter_map(|(id, _)| self.lists.network(id))
    }

    fn rules_to(&self, network: &str) -> impl Iterator<Item = &SecurityRule> {
        self.d.rules_by_to.get(network).into_iter().flatten().filter_map(|id| self.lists.rule(id))
    }

    fn nat(&self, vpc: &str) -> Option<&NatGateway> {
        self.lists.nat(vpc)
    }

    fn vpc_floating_ips(&self, vpc: &str) -> impl Iterator<Item = &FloatingIp> {
        self.d.fips_by_vpc.get(vpc).into_iter().flatten().filter_map(|id| self.lists.fip(id))
    }

    fn north_south(&self) -> impl Iterator<Item = &str> {
        self.d.north_south.keys().map(String::as_str)
    }

    fn is_north_south(&self, vpc: &str) -> bool {
        self.d.is_north_south(vpc)
    }
}
