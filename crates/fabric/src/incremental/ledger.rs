//! The ledger kept up to date change by change, with the same result as
//! `allocate(whole intent, previous ledger)`: entries of objects that
//! remain never move (but for the cases where `allocate` moves them too:
//! an address no longer in its network, one kept by an earlier
//! attachment), those of removed objects are released, new objects are
//! served in the same order from the same cursors and free values.
//!
//! Every write goes through a journal, so a change refused half way
//! (a pool exhausted, an address taken) leaves the ledger as it was.

use super::state::{Edits, Lists, StateView};
use crate::alloc::{switch_vlans, wanted_vlans, Allocations, NetworkAllocation, VpcAllocation};
use crate::entries::LedgerKey;
use crate::error::{Error, Result};
use crate::intent::{Attachment, Intent};
use crate::net::RouteTarget;
use crate::pool::{first_free_of, next_cursor, take_after};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

/// Who holds an address of a network.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Holder {
    Gateway,
    Attachment(String),
}

/// Who holds a public address.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PublicUse {
    /// A NAT gateway's address (given or allocated), by VPC.
    Nat(String),
    /// A floating IP's, by id.
    Fip(String),
}

/// The ledger and what is in use, for the allocator's searches.
pub(crate) struct Books {
    pub ledger: Allocations,
    /// Every VNI in use (both pools and the provisioning VNI).
    vnis: BTreeSet<u32>,
    /// Per network: the gateway and every attachment's address.
    addrs: HashMap<String, BTreeMap<u32, Holder>>,
    /// Every NAT address and floating IP.
    public: BTreeMap<u32, PublicUse>,
}

type Undo = Box<dyn FnOnce(&mut Books)>;

/// How to undo the writes of one change, newest last, and the ledger
/// entries they touched.
#[derive(Default)]
pub(crate) struct Journal {
    undo: Vec<Undo>,
    pub touched: BTreeSet<LedgerKey>,
}

impl Journal {
    pub fn undo(self, books: &mut Books) {
        for u in self.undo.into_iter().rev() {
            u(books);
        }
    }

    fn push(&mut self, u: impl FnOnce(&mut Books) + 'static) {
        self.undo.push(Box::new(u));
    }
}

type Sel<K, V> = fn(&mut Books) -> &mut BTreeMap<K, V>;

impl Books {
    pub fn new(fabric_vni: u32, intent: &Intent, ledger: Allocations) -> Books {
        let mut vnis: BTreeSet<u32> = BTreeSet::from([fabric_vni]);
        vnis.extend(ledger.vpcs.values().map(|a| a.l3_vni));
        vnis.extend(ledger.networks.values().map(|a| a.l2_vni));
        let mut addrs: HashMap<String, BTreeMap<u32, Holder>> = HashMap::new();
        for n in &intent.networks {
            addrs
                .entry(n.id.clone())
                .or_default()
                .insert(u32::from(n.gateway_ip()), Holder::Gateway);
        }
        for a in &intent.attachments {
            if let Some(&ip) = ledger.addresses.get(&a.id) {
                let m = addrs.entry(a.network.clone()).or_default();
                m.insert(u32::from(ip), Holder::Attachment(a.id.clone()));
            }
        }
        let mut public: BTreeMap<u32, PublicUse> = BTreeMap::new();
        for (vpc, &ip) in &ledger.nat_addresses {
            public.insert(u32::from(ip), PublicUse::Nat(vpc.clone()));
        }
        for f in &intent.floating_ips {
            public.insert(u32::from(f.public_ip), PublicUse::Fip(f.id.clone()));
        }
        Books { ledger, vnis, addrs, public }
    }

    fn set<K: Ord + Clone + 'static, V: 'static>(
        &mut self,
        j: &mut Journal,
        sel: Sel<K, V>,
        key: K,
        value: Option<V>,
    ) {
        let old = match value {
            Some(v) => sel(self).insert(key.clone(), v),
            None => sel(self).remove(&key),
        };
        j.push(move |b: &mut Books| {
            match old {
                Some(o) => sel(b).insert(key, o),
                None => sel(b).remove(&key),
            };
        });
    }

    fn vni(&mut self, j: &mut Journal, vni: u32, used: bool) {
        let changed = match used {
            true => self.vnis.insert(vni),
            false => self.vnis.remove(&vni),
        };
        if changed {
            j.push(move |b: &mut Books| {
                match used {
                    true => b.vnis.remove(&vni),
                    false => b.vnis.insert(vni),
                };
            });
        }
    }

    fn addr(&mut self, j: &mut Journal, network: &str, ip: u32, holder: Option<Holder>) {
        let m = self.addrs.entry(network.to_string()).or_default();
        let old = match holder {
            Some(h) => m.insert(ip, h),
            None => m.remove(&ip),
        };
        if m.is_empty() {
            self.addrs.remove(network);
        }
        let network = network.to_string();
        j.push(move |b: &mut Books| {
            let m = b.addrs.entry(network.clone()).or_default();
            match old {
                Some(o) => {
                    m.insert(ip, o);
                }
                None => {
                    m.remove(&ip);
                }
            }
            if m.is_empty() {
                b.addrs.remove(&network);
            }
        });
    }

    fn holder(&self, network: &str, ip: Ipv4Addr) -> Option<&Holder> {
        self.addrs.get(network)?.get(&u32::from(ip))
    }

    /// Records an attachment's address (or its release) in both places.
    fn assign(&mut self, j: &mut Journal, a: &str, network: &str, ip: Option<Ipv4Addr>) {
        match ip {
            Some(ip) => self.addr(j, network, u32::from(ip), Some(Holder::Attachment(a.into()))),
            None => {
                let held = self.ledger.addresses.get(a).copied();
                if let Some(ip) = held {
                    if self.holder(network, ip) == Some(&Holder::Attachment(a.into())) {
                        self.addr(j, network, u32::from(ip), None);
                    }
                }
            }
        }
        j.touched.insert(LedgerKey::Address(a.to_string()));
        self.set(j, |b| &mut b.ledger.addresses, a.to_string(), ip);
    }
}

/// Brings the ledger up to date with a validated change. `dirty`: the
/// switches (indexes, ascending) whose local ids the change can affect.
/// Returns the attachments whose address changed.
pub(crate) fn allocate(
    b: &mut Books,
    j: &mut Journal,
    v: &StateView,
    edits: &Edits,
    dirty: &BTreeSet<usize>,
) -> Result<BTreeSet<String>> {
    vnis(b, j, v, edits)?;
    for &i in dirty {
        let sw = &v.topo.switches[i];
        let (want_vrfs, want_networks) = wanted_vlans(v, sw);
        let prev = b.ledger.vlans.get(&sw.name);
        let mine = switch_vlans(&v.topo.fabric, sw, &want_vrfs, &want_networks, prev)?;
        if mine.as_ref() != prev {
            j.touched.insert(LedgerKey::Vlans(sw.name.clone()));
            b.set(j, |b| &mut b.ledger.vlans, sw.name.clone(), mine);
        }
    }
    let moved = addresses(b, j, v.lists, v.d, edits)?;
    nat_addresses(b, j, v, edits)?;
    Ok(moved)
}

fn vnis(b: &mut Books, j: &mut Journal, v: &StateView, edits: &Edits) -> Result<()> {
    let pools = &v.topo.fabric.pools;
    for (id, e) in edits.vpcs.iter().filter(|(_, e)| e.new.is_none()) {
        if let (Some(_), Some(a)) = (&e.old, b.ledger.vpcs.get(id).cloned()) {
            b.vni(j, a.l3_vni, false);
            j.touched.insert(LedgerKey::Vpc(id.clone()));
            b.set(j, |b| &mut b.ledger.vpcs, id.clone(), None);
        }
    }
    for (id, e) in edits.networks.iter().filter(|(_, e)| e.new.is_none()) {
        if let (Some(_), Some(a)) = (&e.old, b.ledger.networks.get(id).cloned()) {
            b.vni(j, a.l2_vni, false);
            j.touched.insert(LedgerKey::Network(id.clone()));
            b.set(j, |b| &mut b.ledger.networks, id.clone(), None);
        }
    }
    let (l2, l3) = (b.ledger.next_l2_vni, b.ledger.next_l3_vni);
    j.push(move |b: &mut Books| {
        b.ledger.next_l2_vni = l2;
        b.ledger.next_l3_vni = l3;
    });
    let rt = |vni: u32| RouteTarget { asn: pools.route_target_asn, value: vni };
    // New objects in id order (the edits are keyed, hence sorted, by id).
    let (first, last) = (pools.l3_vni.first, pools.l3_vni.last);
    for id in edits.vpcs.keys() {
        if b.ledger.vpcs.contains_key(id) || !v.lists.pos.vpcs.contains_key(id) {
            continue;
        }
        let vni = take_after(&b.vnis, first, last, b.ledger.next_l3_vni).ok_or_else(|| {
            Error::exhausted("fabric.pools.l3_vni", format!("no free L3 VNI for VPC {id:?}"))
        })?;
        b.vni(j, vni, true);
        b.ledger.next_l3_vni = next_cursor(vni, first, last);
        j.touched.insert(LedgerKey::Cursors);
        let a = VpcAllocation { l3_vni: vni, route_target: rt(vni) };
        j.touched.insert(LedgerKey::Vpc(id.clone()));
        b.set(j, |b| &mut b.ledger.vpcs, id.clone(), Some(a));
    }
    let (first, last) = (pools.l2_vni.first, pools.l2_vni.last);
    for id in edits.networks.keys() {
        if b.ledger.networks.contains_key(id) || !v.lists.pos.networks.contains_key(id) {
            continue;
        }
        let vni = take_after(&b.vnis, first, last, b.ledger.next_l2_vni).ok_or_else(|| {
            Error::exhausted("fabric.pools.l2_vni", format!("no free L2 VNI for network {id:?}"))
        })?;
        b.vni(j, vni, true);
        b.ledger.next_l2_vni = next_cursor(vni, first, last);
        j.touched.insert(LedgerKey::Cursors);
        let a = NetworkAllocation { l2_vni: vni, route_target: rt(vni) };
        j.touched.insert(LedgerKey::Network(id.clone()));
        b.set(j, |b| &mut b.ledger.networks, id.clone(), Some(a));
    }
    Ok(())
}

/// Attachment addresses, as `ipam::assign_addresses` would give them.
/// Re-examined: the edited attachments and all those of edited networks
/// (their range or gateway may have changed). Their addresses are
/// released, then, in intent order, kept again where still valid and
/// free; a kept address held by a later untouched attachment is taken
/// from it (it gets a new one), as `allocate` keeps the earlier one.
fn addresses(
    b: &mut Books,
    j: &mut Journal,
    lists: &Lists,
    d: &super::state::Derived,
    edits: &Edits,
) -> Result<BTreeSet<String>> {
    let pos = &lists.pos;
    let mut again: BTreeSet<&str> = edits
        .attachments
        .iter()
        .filter(|(_, e)| e.new.is_some())
        .map(|(k, _)| k.as_str())
        .collect();
    for (n, _) in edits.networks.iter().filter(|(_, e)| e.new.is_some()) {
        again.extend(d.attachments_by_network.get(n).into_iter().flatten().map(String::as_str));
    }
    // Where each address was recorded: the attachment's network before.
    let old_network = |id: &str| -> Option<String> {
        match edits.attachments.get(id) {
            Some(e) => e.old.as_ref().map(|a| a.network.clone()),
            None => lists.attachment(id).map(|a| a.network.clone()),
        }
    };
    let gone = edits.attachments.iter().filter(|(_, e)| e.new.is_none()).map(|(k, _)| k.as_str());
    let mut before: HashMap<String, Option<Ipv4Addr>> = HashMap::new();
    for id in gone.chain(again.iter().copied()) {
        let ip = b.ledger.addresses.get(id).copied();
        before.insert(id.to_string(), ip);
        if ip.is_some() {
            let network = old_network(id).unwrap_or_default();
            b.assign(j, id, &network, None);
        }
    }
    for (id, e) in &edits.networks {
        if let Some(old) = &e.old {
            let gw = u32::from(old.gateway_ip());
            if b.addrs.get(id).and_then(|m| m.get(&gw)) == Some(&Holder::Gateway) {
                b.addr(j, id, gw, None);
            }
        }
        if let Some(new) = &e.new {
            b.addr(j, id, u32::from(new.gateway_ip()), Some(Holder::Gateway));
        }
    }

    let mut order: Vec<(usize, &Attachment)> = again
        .iter()
        .filter_map(|id| pos.attachments.get(*id).map(|&p| (p, &lists.intent.attachments[p])))
        .collect();
    order.sort_by_key(|(p, _)| *p);
    let mut fresh: Vec<String> = Vec::new();
    // (position, address, holder) of given addresses an address kept
    // by another attachment takes.
    let mut taken: Vec<(usize, Ipv4Addr, String)> = Vec::new();
    for &(p, a) in order.iter().filter(|(_, a)| a.ip.is_none()) {
        let Some(Some(ip)) = before.get(&a.id).copied() else {
            fresh.push(a.id.clone());
            continue;
        };
        let Some(n) = lists.network(&a.network) else { continue };
        if !n.cidr.is_host(ip) || ip == n.gateway_ip() {
            fresh.push(a.id.clone());
            continue;
        }
        match b.holder(&n.id, ip).cloned() {
            None => b.assign(j, &a.id, &n.id, Some(ip)),
            Some(Holder::Gateway) => fresh.push(a.id.clone()),
            Some(Holder::Attachment(x)) if again.contains(x.as_str()) => fresh.push(a.id.clone()),
            Some(Holder::Attachment(x)) => {
                let at = pos.attachments.get(&x).copied().unwrap_or(usize::MAX);
                let given = lists.attachment(&x).is_some_and(|o| o.ip.is_some());
                if given {
                    // Kept addresses are served before given ones: the
                    // given one is refused below.
                    taken.push((at, ip, a.id.clone()));
                    b.assign(j, &a.id, &n.id, Some(ip));
                } else if at < p {
                    fresh.push(a.id.clone());
                } else {
                    before.entry(x.clone()).or_insert(Some(ip));
                    j.touched.insert(LedgerKey::Address(x.clone()));
                    b.set(j, |b| &mut b.ledger.addresses, x.clone(), None);
                    b.assign(j, &a.id, &n.id, Some(ip));
                    fresh.push(x);
                }
            }
        }
    }
    for &(p, a) in &order {
        let Some(ip) = a.ip else { continue };
        if let Some(Holder::Attachment(x)) = b.holder(&a.network, ip) {
            if *x != a.id && lists.attachment(x).is_some_and(|o| o.ip.is_none()) {
                taken.push((p, ip, x.clone()));
                continue;
            }
        }
        b.assign(j, &a.id, &a.network, Some(ip));
    }
    if let Some((p, ip, other)) = taken.into_iter().min_by_key(|t| t.0) {
        return Err(Error::invalid(
            format!("attachments[{p}].ip"),
            format!("{ip} is assigned to attachment {other:?}"),
        ));
    }
    fresh.sort_unstable();
    fresh.dedup();
    for id in &fresh {
        let Some(a) = lists.attachment(id) else { continue };
        let Some(n) = lists.network(&a.network) else { continue };
        let (first, last) = n.cidr.host_range();
        let used =
            b.addrs.get(&n.id).into_iter().flat_map(|m| m.range(first..=last).map(|(k, _)| *k));
        let ip = first_free_of(used, first, last).ok_or_else(|| {
            Error::exhausted(
                format!("networks[{}].cidr", pos.networks.get(&n.id).copied().unwrap_or_default()),
                format!("no free address in {} for attachment {:?}", n.cidr, a.id),
            )
        })?;
        b.assign(j, id, &n.id, Some(Ipv4Addr::from(ip)));
    }
    Ok(before
        .into_iter()
        .filter(|(id, ip)| b.ledger.addresses.get(id) != ip.as_ref())
        .map(|(id, _)| id)
        .collect())
}

/// NAT addresses, as `ipam::assign_nat_addresses` would give them.
fn nat_addresses(b: &mut Books, j: &mut Journal, v: &StateView, edits: &Edits) -> Result<()> {
    let lists = v.lists;
    let blocks = &v.topo.fabric.pools.public;
    let mut before: HashMap<&str, Ipv4Addr> = HashMap::new();
    for (vpc, e) in &edits.nats {
        let Some(&ip) = b.ledger.nat_addresses.get(vpc) else { continue };
        if b.public.get(&u32::from(ip)) == Some(&PublicUse::Nat(vpc.clone())) {
            b.set(j, |b| &mut b.public, u32::from(ip), None);
        }
        j.touched.insert(LedgerKey::Nat(vpc.clone()));
        b.set(j, |b| &mut b.ledger.nat_addresses, vpc.clone(), None);
        if e.new.is_some() {
            before.insert(vpc, ip);
        }
    }
    for (id, e) in &edits.fips {
        let Some(old) = &e.old else { continue };
        let ip = u32::from(old.public_ip);
        if b.public.get(&ip) == Some(&PublicUse::Fip(id.clone())) {
            b.set(j, |b| &mut b.public, ip, None);
        }
    }
    // Kept addresses first: they never move.
    for (vpc, g) in edits.nats.iter().filter_map(|(k, e)| Some((k, e.new.as_ref()?))) {
        let Some(&ip) = before.get(vpc.as_str()) else { continue };
        if g.public_ip.is_some() || !blocks.iter().any(|bl| bl.contains(ip)) {
            continue;
        }
        b.set(j, |b| &mut b.public, u32::from(ip), Some(PublicUse::Nat(vpc.clone())));
        j.touched.insert(LedgerKey::Nat(vpc.clone()));
        b.set(j, |b| &mut b.ledger.nat_addresses, vpc.clone(), Some(ip));
    }
    // A given address (NAT gateways' first, then floating IPs', each in
    // intent order) must not take a kept NAT address.
    let kept_nat = |b: &Books, ip: Ipv4Addr| match b.public.get(&u32::from(ip)) {
        Some(PublicUse::Nat(vpc)) if lists.nat(vpc).is_some_and(|g| g.public_ip.is_none()) => {
            Some(vpc.clone())
        }
        Some(_) | None => None,
    };
    let mut nats: Vec<(usize, &str, Ipv4Addr)> = edits
        .nats
        .iter()
        .filter_map(|(k, e)| {
            Some((lists.pos.nats.get(k).copied()?, k.as_str(), e.new.as_ref()?.public_ip?))
        })
        .collect();
    nats.sort_unstable();
    let mut fips: Vec<(usize, &str, Ipv4Addr)> = edits
        .fips
        .iter()
        .filter_map(|(k, e)| {
            Some((lists.pos.fips.get(k).copied()?, k.as_str(), e.new.as_ref()?.public_ip))
        })
        .collect();
    fips.sort_unstable();
    for (list, given) in [("nat_gateways", &nats), ("floating_ips", &fips)] {
        for &(p, _, ip) in given {
            if let Some(vpc) = kept_nat(b, ip) {
                return Err(Error::invalid(
                    format!("{list}[{p}].public_ip"),
                    format!("{ip} is the NAT address of VPC {vpc:?}"),
                ));
            }
        }
    }
    for &(_, vpc, ip) in &nats {
        b.set(j, |b| &mut b.public, u32::from(ip), Some(PublicUse::Nat(vpc.to_string())));
        j.touched.insert(LedgerKey::Nat(vpc.to_string()));
        b.set(j, |b| &mut b.ledger.nat_addresses, vpc.to_string(), Some(ip));
    }
    for &(_, id, ip) in &fips {
        b.set(j, |b| &mut b.public, u32::from(ip), Some(PublicUse::Fip(id.to_string())));
    }
    // New gateways, in VPC order.
    for (vpc, _) in edits.nats.iter().filter(|(_, e)| e.new.is_some()) {
        if b.ledger.nat_addresses.contains_key(vpc) {
            continue;
        }
        let ip = blocks
            .iter()
            .find_map(|bl| {
                let (first, last) = bl.host_range();
                first_free_of(b.public.range(first..=last).map(|(k, _)| *k), first, last)
            })
            .ok_or_else(|| {
                Error::exhausted(
                    "fabric.pools.public",
                    format!("no free address for VPC {vpc:?}'s NAT gateway"),
                )
            })?;
        let ip = Ipv4Addr::from(ip);
        b.set(j, |b| &mut b.public, u32::from(ip), Some(PublicUse::Nat(vpc.clone())));
        j.touched.insert(LedgerKey::Nat(vpc.clone()));
        b.set(j, |b| &mut b.ledger.nat_addresses, vpc.clone(), Some(ip));
    }
    Ok(())
}
