//! The CONFIG_DB change of one SONiC apply as an RFC 6902 JSON patch, in
//! the form SONiC's generic config updater (`config apply-patch`) takes:
//! paths `/<TABLE>/<key>[/<field>]` (RFC 6901 escaping: `/` in a key is
//! `~1`), values as CONFIG_DB holds them (strings). Pure.
//!
//! Ownership (as `neocloud_fabric::render::sonic` renders): every key of
//! the rendered tables is the driver's, whole, except `PORT`, where only
//! the fields it renders (`admin_status`) are (the entries are the
//! platform's). The patch is computed against what the switch holds:
//!
//! - a key of `desired` the switch lacks is added whole; one it holds is
//!   patched field by field (changed fields replaced, fields only `actual`
//!   had removed);
//! - a key only `actual` had is removed where the switch has it (a `PORT`
//!   is never removed: it is set `admin_status: down`, a released port must
//!   not pass traffic);
//! - removals come first, dependents first (`VLAN_MEMBER` before `VLAN`,
//!   an interface's address before the interface), then additions in
//!   dependency order (`VLAN` before its map, `VRF` before the VLAN
//!   interfaces in it).

use neocloud_fabric::render::sonic::ConfigDb;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Tables in dependency order.
pub const TABLES: &[&str] = &[
    "LOOPBACK_INTERFACE",
    "VXLAN_TUNNEL",
    "VXLAN_EVPN_NVO",
    "VLAN",
    "VXLAN_TUNNEL_MAP",
    "VRF",
    "VLAN_INTERFACE",
    "VLAN_MEMBER",
    "PORT",
    "MGMT_PORT",
];

/// Tables whose entries are the platform's: only rendered fields are owned.
const FIELD_OWNED: &[&str] = &["PORT", "MGMT_PORT"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Add,
    Remove,
    Replace,
}

/// One patch operation on a key (`field: None`) or on one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub kind: Kind,
    pub table: String,
    pub key: String,
    pub field: Option<String>,
    /// A string for a field; `{field: value}` for a whole key.
    pub value: Option<Value>,
}

impl Op {
    /// The RFC 6901 pointer.
    pub fn pointer(&self) -> String {
        let esc = |s: &str| s.replace('~', "~0").replace('/', "~1");
        let mut p = format!("/{}/{}", esc(&self.table), esc(&self.key));
        if let Some(f) = &self.field {
            p.push('/');
            p.push_str(&esc(f));
        }
        p
    }

    /// The RFC 6902 operation.
    pub fn to_json(&self) -> Value {
        let op = match self.kind {
            Kind::Add => "add",
            Kind::Remove => "remove",
            Kind::Replace => "replace",
        };
        let mut v = json!({"op": op, "path": self.pointer()});
        if let Some(value) = &self.value {
            v["value"] = value.clone();
        }
        v
    }
}

type Fields = BTreeMap<String, String>;

fn entry<'a>(db: &'a ConfigDb, table: &str, key: &str) -> Option<&'a Fields> {
    db.get(table)?.get(key)
}

fn field_op(kind: Kind, table: &str, key: &str, field: &str, value: Option<&str>) -> Op {
    Op {
        kind,
        table: table.into(),
        key: key.into(),
        field: Some(field.into()),
        value: value.map(|v| json!(v)),
    }
}

/// Sets `fields` on `key` of the switch where they differ.
fn set_fields(out: &mut Vec<Op>, table: &str, key: &str, fields: &Fields, have: Option<&Fields>) {
    for (f, v) in fields {
        match have.and_then(|h| h.get(f)) {
            Some(h) if h == v => {}
            Some(_) => out.push(field_op(Kind::Replace, table, key, f, Some(v))),
            None => out.push(field_op(Kind::Add, table, key, f, Some(v))),
        }
    }
}

/// The patch taking the switch (`device`) from `actual` to `desired`.
pub fn patch(device: &ConfigDb, actual: &ConfigDb, desired: &ConfigDb) -> Vec<Op> {
    let empty = BTreeMap::new();
    let mut tables: Vec<&str> = TABLES.to_vec();
    for t in actual.keys().chain(desired.keys()) {
        if !tables.contains(&t.as_str()) {
            tables.push(t);
        }
    }
    let (mut removals, mut additions) = (Vec::new(), Vec::new());
    for table in &tables {
        let (want, had) =
            (desired.get(*table).unwrap_or(&empty), actual.get(*table).unwrap_or(&empty));
        let field_owned = FIELD_OWNED.contains(table);
        let mut removed = Vec::new();
        for (key, fields) in want {
            let have = entry(device, table, key);
            if field_owned || have.is_some() {
                set_fields(&mut additions, table, key, fields, have);
            } else {
                let value = serde_json::to_value(fields).unwrap_or_default();
                additions.push(Op {
                    kind: Kind::Add,
                    table: table.to_string(),
                    key: key.clone(),
                    field: None,
                    value: Some(value),
                });
            }
            if let (Some(h), Some(old), false) = (have, had.get(key), field_owned) {
                for f in old.keys().filter(|f| !fields.contains_key(*f) && h.contains_key(*f)) {
                    removed.push(field_op(Kind::Remove, table, key, f, None));
                }
            }
        }
        for key in had.keys().filter(|k| !want.contains_key(*k)) {
            let Some(have) = entry(device, table, key) else { continue };
            if *table == "PORT" {
                let down: Fields = [("admin_status".to_string(), "down".to_string())].into();
                set_fields(&mut additions, table, key, &down, Some(have));
            } else if !field_owned {
                removed.push(Op {
                    kind: Kind::Remove,
                    table: table.to_string(),
                    key: key.clone(),
                    field: None,
                    value: None,
                });
            }
        }
        removed.sort_by(|a, b| b.key.cmp(&a.key));
        removals.push(removed);
    }
    removals.into_iter().rev().flatten().chain(additions).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::double::lab::Lab;
    use neocloud_fabric::render::sonic::render;
    use neocloud_fabric::SwitchOs;

    fn db(cfg: &neocloud_fabric::SwitchConfig) -> ConfigDb {
        render("leaf1", cfg).unwrap().config_db
    }

    fn ports(db: &mut ConfigDb) {
        for p in crate::double::lab::ports(SwitchOs::Sonic) {
            db.entry("PORT".into())
                .or_default()
                .insert(p, [("admin_status".to_string(), "down".to_string())].into());
        }
    }

    #[test]
    fn from_empty_adds_keys_in_dependency_order_and_only_port_fields() {
        let cfg = Lab::new(SwitchOs::Sonic).plan("leaf1");
        let mut device = ConfigDb::new();
        ports(&mut device);
        let ops = patch(&device, &ConfigDb::new(), &db(&cfg));
        assert!(ops.iter().all(|o| o.kind != Kind::Remove));
        let pointers: Vec<String> = ops.iter().map(Op::pointer).collect();
        let pos = |p: &str| {
            pointers.iter().position(|x| x == p).unwrap_or_else(|| panic!("{p} in {pointers:?}"))
        };
        assert!(pos("/VLAN/Vlan12") < pos("/VXLAN_TUNNEL_MAP/vtep1|map_100_Vlan12"));
        assert!(pos("/VRF/Vrf5000") < pos("/VLAN_INTERFACE/Vlan12"));
        assert!(pos("/VLAN_INTERFACE/Vlan12") < pos("/VLAN_INTERFACE/Vlan12|10.100.0.1~124"));
        assert_eq!(
            ops[pos("/LOOPBACK_INTERFACE/Loopback0|10.0.0.1~132")].to_json(),
            json!({
                "op": "add", "path": "/LOOPBACK_INTERFACE/Loopback0|10.0.0.1~132", "value": {}
            })
        );
        assert_eq!(
            ops[pos("/PORT/Ethernet4/admin_status")].to_json(),
            json!({
                "op": "replace", "path": "/PORT/Ethernet4/admin_status", "value": "up"
            })
        );
        // Applied, nothing is left to do.
        let mut after = db(&cfg);
        for (k, v) in device.remove("PORT").unwrap() {
            after.get_mut("PORT").unwrap().entry(k).or_insert(v);
        }
        assert!(patch(&after, &db(&cfg), &db(&cfg)).is_empty());
    }

    #[test]
    fn a_removed_network_removes_dependents_first() {
        let mut lab = Lab::new(SwitchOs::Sonic);
        let before = db(&lab.plan("leaf1"));
        lab.remove_network("net-b");
        let after = db(&lab.plan("leaf1"));
        let ops = patch(&before, &before, &after);
        let json: Vec<Value> = ops.iter().map(Op::to_json).collect();
        assert_eq!(
            json,
            [
                json!({"op": "remove", "path": "/VLAN_MEMBER/Vlan13|Ethernet8"}),
                json!({"op": "remove", "path": "/VLAN_INTERFACE/Vlan13|10.100.0.1~124"}),
                json!({"op": "remove", "path": "/VLAN_INTERFACE/Vlan13"}),
                json!({"op": "remove", "path": "/VLAN_INTERFACE/Vlan11"}),
                json!({"op": "remove", "path": "/VRF/Vrf5001"}),
                json!({"op": "remove", "path": "/VXLAN_TUNNEL_MAP/vtep1|map_5001_Vlan11"}),
                json!({"op": "remove", "path": "/VXLAN_TUNNEL_MAP/vtep1|map_101_Vlan13"}),
                json!({"op": "remove", "path": "/VLAN/Vlan13"}),
                json!({"op": "remove", "path": "/VLAN/Vlan11"}),
                json!({"op": "add", "path": "/VLAN_MEMBER/Vlan4000|Ethernet8", "value": {"tagging_mode": "untagged"}}),
            ]
        );
    }
}
