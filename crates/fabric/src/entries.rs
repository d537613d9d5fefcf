//! The ledger as entries: one per VPC, network, switch, attachment and NAT
//! gateway, and one for the search cursors. A store keeps one row per
//! entry, so a change writes what it touched (`Applied::ledger`, or
//! `Allocations::changed` for whole-intent allocation), not the whole
//! ledger, and a reader asks for the entry it needs.

use crate::alloc::{Allocations, NetworkAllocation, SwitchVlans, VpcAllocation};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// Names one entry of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LedgerKey {
    /// A VPC's L3 VNI and route target, by VPC id.
    Vpc(String),
    /// A network's L2 VNI and route target, by network id.
    Network(String),
    /// A switch's local ids, by switch name.
    Vlans(String),
    /// An attachment's address, by attachment id.
    Address(String),
    /// A NAT gateway's public address, by VPC id.
    Nat(String),
    /// Where the next VNI searches start.
    Cursors,
}

/// The cursors' entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursors {
    next_l2_vni: u32,
    next_l3_vni: u32,
}

const VPC: &str = "vpcs/";
const NETWORK: &str = "networks/";
const VLANS: &str = "vlans/";
const ADDRESS: &str = "addresses/";
const NAT: &str = "nat_addresses/";
const CURSORS: &str = "cursors";

impl LedgerKey {
    /// The prefix every key of NAT gateway addresses starts with (a store
    /// reads the fabric's public addresses in use by it).
    pub const NAT_PREFIX: &'static str = NAT;
}

impl fmt::Display for LedgerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerKey::Vpc(id) => write!(f, "{VPC}{id}"),
            LedgerKey::Network(id) => write!(f, "{NETWORK}{id}"),
            LedgerKey::Vlans(sw) => write!(f, "{VLANS}{sw}"),
            LedgerKey::Address(id) => write!(f, "{ADDRESS}{id}"),
            LedgerKey::Nat(id) => write!(f, "{NAT}{id}"),
            LedgerKey::Cursors => f.write_str(CURSORS),
        }
    }
}

impl FromStr for LedgerKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<LedgerKey> {
        let of = |prefix: &str| s.strip_prefix(prefix).map(str::to_string);
        if s == CURSORS {
            return Ok(LedgerKey::Cursors);
        }
        of(VPC)
            .map(LedgerKey::Vpc)
            .or_else(|| of(NETWORK).map(LedgerKey::Network))
            .or_else(|| of(VLANS).map(LedgerKey::Vlans))
            .or_else(|| of(ADDRESS).map(LedgerKey::Address))
            .or_else(|| of(NAT).map(LedgerKey::Nat))
            .ok_or_else(|| Error::invalid("allocations", format!("no ledger entry {s:?}")))
    }
}

fn encode<T: Serialize>(v: &T) -> String {
    // The entries are plain structs, maps and addresses: never refused.
    serde_json::to_string(v).unwrap_or_default()
}

fn decode<T: for<'de> Deserialize<'de>>(key: &LedgerKey, json: &str) -> Result<T> {
    serde_json::from_str(json)
        .map_err(|e| Error::invalid("allocations", format!("ledger entry {key}: {e}")))
}

impl Allocations {
    /// An entry's value as JSON; `None` when the ledger has no such entry.
    pub fn entry(&self, key: &LedgerKey) -> Option<String> {
        match key {
            LedgerKey::Vpc(id) => self.vpcs.get(id).map(encode),
            LedgerKey::Network(id) => self.networks.get(id).map(encode),
            LedgerKey::Vlans(sw) => self.vlans.get(sw).map(encode),
            LedgerKey::Address(id) => self.addresses.get(id).map(encode),
            LedgerKey::Nat(id) => self.nat_addresses.get(id).map(encode),
            LedgerKey::Cursors => Some(encode(&Cursors {
                next_l2_vni: self.next_l2_vni,
                next_l3_vni: self.next_l3_vni,
            })),
        }
    }

    /// Every entry, as `entry` gives them.
    pub fn entries(&self) -> Vec<(LedgerKey, String)> {
        let mut out = Vec::new();
        let mut add = |k: LedgerKey| {
            if let Some(v) = self.entry(&k) {
                out.push((k, v));
            }
        };
        self.vpcs.keys().for_each(|k| add(LedgerKey::Vpc(k.clone())));
        self.networks.keys().for_each(|k| add(LedgerKey::Network(k.clone())));
        self.vlans.keys().for_each(|k| add(LedgerKey::Vlans(k.clone())));
        self.addresses.keys().for_each(|k| add(LedgerKey::Address(k.clone())));
        self.nat_addresses.keys().for_each(|k| add(LedgerKey::Nat(k.clone())));
        add(LedgerKey::Cursors);
        out
    }

    /// Sets an entry from its JSON (as `entry` gives it).
    pub fn set_entry(&mut self, key: LedgerKey, json: &str) -> Result<()> {
        match &key {
            LedgerKey::Vpc(id) => {
                let v: VpcAllocation = decode(&key, json)?;
                self.vpcs.insert(id.clone(), v);
            }
            LedgerKey::Network(id) => {
                let v: NetworkAllocation = decode(&key, json)?;
                self.networks.insert(id.clone(), v);
            }
            LedgerKey::Vlans(sw) => {
                let v: SwitchVlans = decode(&key, json)?;
                self.vlans.insert(sw.clone(), v);
            }
            LedgerKey::Address(id) => {
                let v: Ipv4Addr = decode(&key, json)?;
                self.addresses.insert(id.clone(), v);
            }
            LedgerKey::Nat(id) => {
                let v: Ipv4Addr = decode(&key, json)?;
                self.nat_addresses.insert(id.clone(), v);
            }
            LedgerKey::Cursors => {
                let c: Cursors = decode(&key, json)?;
                self.next_l2_vni = c.next_l2_vni;
                self.next_l3_vni = c.next_l3_vni;
            }
        }
        Ok(())
    }

    /// A ledger from its entries (as `entries` gives them, any order).
    pub fn from_entries<'a>(
        rows: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Allocations> {
        let mut out = Allocations::default();
        for (key, json) in rows {
            out.set_entry(key.parse()?, json)?;
        }
        Ok(out)
    }

    /// The entries that differ between `self` and `before` (added,
    /// changed or gone).
    pub fn changed(&self, before: &Allocations) -> BTreeSet<LedgerKey> {
        let mut out = BTreeSet::new();
        differ(&self.vpcs, &before.vpcs, LedgerKey::Vpc, &mut out);
        differ(&self.networks, &before.networks, LedgerKey::Network, &mut out);
        differ(&self.vlans, &before.vlans, LedgerKey::Vlans, &mut out);
        differ(&self.addresses, &before.addresses, LedgerKey::Address, &mut out);
        differ(&self.nat_addresses, &before.nat_addresses, LedgerKey::Nat, &mut out);
        if (self.next_l2_vni, self.next_l3_vni) != (before.next_l2_vni, before.next_l3_vni) {
            out.insert(LedgerKey::Cursors);
        }
        out
    }
}

fn differ<V: PartialEq>(
    now: &BTreeMap<String, V>,
    before: &BTreeMap<String, V>,
    key: fn(String) -> LedgerKey,
    out: &mut BTreeSet<LedgerKey>,
) {
    for (k, v) in now {
        if before.get(k) != Some(v) {
            out.insert(key(k.clone()));
        }
    }
    for k in before.keys().filter(|k| !now.contains_key(*k)) {
        out.insert(key(k.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::RouteTarget;

    fn sample() -> Allocations {
        let mut a = Allocations { next_l2_vni: 10_007, next_l3_vni: 50_003, ..Default::default() };
        let rt = RouteTarget { asn: 65000, value: 50_001 };
        a.vpcs.insert("v1".into(), VpcAllocation { l3_vni: 50_001, route_target: rt });
        let rt = RouteTarget { asn: 65000, value: 10_001 };
        a.networks.insert("n/1".into(), NetworkAllocation { l2_vni: 10_001, route_target: rt });
        let vlans = SwitchVlans {
            vrfs: [("v1".to_string(), 3000)].into(),
            networks: [("n/1".to_string(), 100)].into(),
            next: 101,
        };
        a.vlans.insert("leaf1".into(), vlans);
        a.addresses.insert("a1".into(), "10.0.0.2".parse().unwrap());
        a.nat_addresses.insert("v1".into(), "198.51.100.5".parse().unwrap());
        a
    }

    #[test]
    fn entries_round_trip_with_ids_holding_slashes() {
        let a = sample();
        let rows: Vec<(String, String)> =
            a.entries().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(rows.len(), 6);
        assert!(rows.iter().any(|(k, _)| k == "networks/n/1"));
        let back =
            Allocations::from_entries(rows.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn changed_names_added_modified_and_gone_entries() {
        let before = sample();
        let mut now = before.clone();
        assert!(now.changed(&before).is_empty());
        now.addresses.insert("a1".into(), "10.0.0.3".parse().unwrap());
        now.addresses.insert("a2".into(), "10.0.0.4".parse().unwrap());
        now.nat_addresses.clear();
        now.next_l3_vni += 1;
        let keys: Vec<String> = now.changed(&before).iter().map(|k| k.to_string()).collect();
        assert_eq!(keys, ["addresses/a1", "addresses/a2", "nat_addresses/v1", "cursors"]);
    }

    #[test]
    fn unknown_or_malformed_entries_are_refused() {
        let e = Allocations::from_entries([("ports/x", "1")]).unwrap_err();
        assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
        let e = Allocations::from_entries([("addresses/a1", "\"not an ip\"")]).unwrap_err();
        assert!(format!("{e:?}").contains("addresses/a1"), "{e:?}");
    }
}
