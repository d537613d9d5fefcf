//! The NVUE configuration tree (the JSON the NVUE REST API takes and
//! shows) derived from the planner's objects: the same configuration as
//! `neocloud_fabric::render::nvue`'s `nv set` commands, one claim per
//! `nv set` subtree, as `{path: value}`. Pure.
//!
//! An `nv set a b c v` command is the tree `{"a": {"b": {"c": v}}}`; keyed
//! collections (VLANs, VNIs, addresses, route targets) are objects keyed by
//! the id with `{}` as the value (`interface lo ip address X/32` is
//! `{"interface": {"lo": {"ip": {"address": {"X/32": {}}}}}}`), and enum
//! leaves whose CLI form is a keyword (`link state up`) are keyed too
//! (`{"state": {"up": {}}}`), as NVUE shows them.
//!
//! Unverified against a switch (the reference gives the CLI only): the
//! JSON spelling of each leaf follows the NVUE object model as the NVUE
//! API guide and `nv config show -o json` present it; `type` on SVIs and
//! `type: unnumbered` on interface neighbors are written explicitly because
//! the REST API does not infer them from the name as the CLI does.
//!
//! Each object owns its claims' paths: to remove an object, or to rewrite a
//! changed one, its paths are unset (`null` in a PATCH) and set again. Paths
//! never overlap between objects, so unsetting one object never touches
//! another (unlike `nv unset evpn`, which would take the segments' route
//! targets with the VTEP).

use neocloud_fabric::{Error, Object, PortMode, SegmentPurpose};
use serde_json::{json, Map, Value};

pub const BRIDGE: &str = "br_default";
pub const PEER_GROUP: &str = "underlay";

/// One path into the configuration tree and what an object sets there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub path: Vec<String>,
    pub value: Value,
}

fn claim(path: &[&str], value: Value) -> Claim {
    Claim { path: path.iter().map(|s| s.to_string()).collect(), value }
}

/// `{"k": {}}`: a keyed collection with one member.
fn key(k: impl ToString) -> Value {
    let mut m = Map::new();
    m.insert(k.to_string(), json!({}));
    Value::Object(m)
}

/// The claims of one object (`Error::Unsupported` for what NVUE cannot
/// express yet, as the CLI renderer refuses it).
pub fn claims(switch: &str, o: &Object) -> Result<Vec<Claim>, Error> {
    let missing_vlan = || {
        Error::unsupported(
            switch,
            o.id().to_string(),
            "NVUE maps a VNI through a VLAN; none allocated",
        )
    };
    Ok(match o {
        Object::Bgp(b) => {
            let lo = format!("{}/32", b.router_id);
            let mut neighbors = Map::new();
            for p in &b.peers {
                neighbors.insert(
                    p.port.clone(),
                    json!({"peer-group": PEER_GROUP, "type": "unnumbered"}),
                );
            }
            vec![
                claim(&["interface", "lo", "ip", "address", &lo], json!({})),
                claim(
                    &["router", "bgp"],
                    json!({"autonomous-system": b.asn, "router-id": b.router_id.to_string()}),
                ),
                claim(
                    &["vrf", "default", "router", "bgp"],
                    json!({
                        "peer-group": {PEER_GROUP: {
                            "remote-as": "external",
                            "address-family": {"l2vpn-evpn": {"enable": "on"}},
                        }},
                        "neighbor": neighbors,
                        "address-family": {"ipv4-unicast": {"network": key(&lo)}},
                    }),
                ),
            ]
        }
        // udp_port: NVUE's default is 4789 (not set explicitly).
        Object::Vtep(v) => vec![
            claim(
                &["nve", "vxlan"],
                json!({"source": {"address": v.source.to_string()}, "arp-nd-suppress": "on"}),
            ),
            claim(&["evpn", "enable"], json!("on")),
        ],
        Object::Vrf(v) => {
            let rt = key(v.route_target);
            vec![claim(
                &["vrf", &v.name],
                json!({
                    "evpn": {"vni": key(v.l3_vni)},
                    "router": {"bgp": {
                        "address-family": {"ipv4-unicast": {
                            "redistribute": {"connected": {"enable": "on"}},
                            "route-export": {"to-evpn": {"enable": "on"}},
                        }},
                        "route-import": {"from-evpn": {"route-target": rt.clone()}},
                        "route-export": {"to-evpn": {"route-target": rt}},
                    }},
                }),
            )]
        }
        Object::Segment(s) => {
            let vlan = s.vlan.ok_or_else(missing_vlan)?.to_string();
            let rt = key(s.route_target);
            let mut out = vec![
                claim(&["bridge", "domain", BRIDGE, "vlan", &vlan], json!({"vni": key(s.vni)})),
                claim(
                    &["evpn", "vni", &s.vni.to_string()],
                    json!({"route-target": {"import": rt.clone(), "export": rt}}),
                ),
            ];
            match &s.purpose {
                SegmentPurpose::Tenant { vrf, gateway, gateway_mac, .. } => out.push(claim(
                    &["interface", &format!("vlan{vlan}")],
                    json!({
                        "type": "svi",
                        "ip": {
                            "vrf": vrf,
                            "vrr": {
                                "address": key(gateway),
                                "mac-address": gateway_mac,
                                "state": key("up"),
                            },
                        },
                    }),
                )),
                SegmentPurpose::Provisioning => {}
            }
            out
        }
        Object::Port(p) => match &p.mode {
            PortMode::Tenant { vlan, .. } | PortMode::Provisioning { vlan, .. } => {
                let vlan = vlan.ok_or_else(missing_vlan)?;
                vec![
                    claim(
                        &["interface", &p.port, "bridge", "domain", BRIDGE],
                        json!({"access": vlan}),
                    ),
                    claim(&["interface", &p.port, "link", "state"], key("up")),
                ]
            }
            PortMode::Disabled => {
                vec![claim(&["interface", &p.port, "link", "state"], key("down"))]
            }
        },
        Object::Policy(_)
        | Object::Nat(_)
        | Object::FloatingIp(_)
        | Object::Uplink(_)
        | Object::PublicLink(_) => {
            return Err(Error::unsupported(switch, o.id().to_string(), "not rendered for NVUE yet"))
        }
    })
}

/// What stays set once an object is removed: a port the plan no longer
/// manages is left down (it must not pass traffic), as the CLI renderer
/// leaves it.
pub fn leftovers(o: &Object) -> Vec<Claim> {
    match o {
        Object::Port(p) => vec![claim(&["interface", &p.port, "link", "state"], key("down"))],
        Object::Bgp(_)
        | Object::Vtep(_)
        | Object::Vrf(_)
        | Object::Segment(_)
        | Object::Policy(_)
        | Object::Nat(_)
        | Object::FloatingIp(_)
        | Object::Uplink(_)
        | Object::PublicLink(_) => Vec::new(),
    }
}

/// The switch-level claim every full tree carries (not an object).
pub fn hostname(switch: &str) -> Claim {
    claim(&["system", "hostname"], json!(switch))
}

/// Merges claims into one tree (a PATCH body).
pub fn merge(claims: &[Claim]) -> Value {
    let mut root = Value::Object(Map::new());
    for c in claims {
        put(&mut root, &c.path, c.value.clone());
    }
    root
}

/// Sets `path` in `tree` to `value`, merging objects (a `null` stays a
/// `null`: in a PATCH body it unsets).
pub fn put(tree: &mut Value, path: &[String], value: Value) {
    let mut at = tree;
    for p in path {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        at = at.as_object_mut().expect("an object").entry(p.clone()).or_insert(Value::Null);
        if at.is_null() {
            *at = Value::Object(Map::new());
        }
    }
    deep_merge(at, value);
}

fn deep_merge(at: &mut Value, value: Value) {
    match (at, value) {
        (Value::Object(a), Value::Object(b)) if !b.is_empty() => {
            for (k, v) in b {
                deep_merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (Value::Object(a), Value::Object(_)) if !a.is_empty() => {}
        (at, value) => *at = value,
    }
}

/// The value at `path`, where there is one (a `null` is none).
pub fn get<'a>(tree: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut at = tree;
    for p in path {
        at = at.get(p)?;
    }
    (!at.is_null()).then_some(at)
}

/// Whether `device` holds `want` at `path`: every leaf of `want` present
/// with the same value (what else the device has there is not judged).
/// `Err` says where the first difference is.
pub fn holds(device: &Value, c: &Claim) -> Result<(), String> {
    let Some(at) = get(device, &c.path) else {
        return Err(format!("{} is missing", c.path.join(".")));
    };
    contains(at, &c.value, &c.path.join("."))
}

fn contains(have: &Value, want: &Value, at: &str) -> Result<(), String> {
    match want {
        Value::Object(w) => {
            let Some(h) = have.as_object() else {
                return Err(format!("{at}: the switch has {have}, expected an object"));
            };
            for (k, v) in w {
                let here = format!("{at}.{k}");
                match h.get(k) {
                    Some(hv) if !hv.is_null() => contains(hv, v, &here)?,
                    Some(_) | None => return Err(format!("{here} is missing")),
                }
            }
            Ok(())
        }
        // Numbers and strings compare by their text (NVUE shows some
        // numbers as strings and the reverse, depending on the leaf).
        _ if scalar(have) == scalar(want) && !have.is_object() => Ok(()),
        _ => Err(format!("{at}: the switch has {have}, expected {want}")),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::double::lab::Lab;
    use neocloud_fabric::SwitchOs;

    /// The tree of leaf1 in the lab: every `nv set` of the CLI renderer's
    /// snapshot (crates/fabric/tests/snapshots/nvue.txt) has its leaf here.
    #[test]
    fn leaf_tree_snapshot() {
        let cfg = Lab::new(SwitchOs::CumulusNvue).plan("leaf1");
        let mut all = vec![hostname("leaf1")];
        for o in cfg.objects.values() {
            all.extend(claims("leaf1", o).unwrap());
        }
        let expected = json!({
            "system": {"hostname": "leaf1"},
            "interface": {
                "lo": {"ip": {"address": {"10.0.0.1/32": {}}}},
                "vlan10": {"type": "svi", "ip": {"vrf": "Vrf5000", "vrr": {
                    "address": {"10.100.0.1/24": {}},
                    "mac-address": "00:00:5e:00:01:01",
                    "state": {"up": {}}}}},
                "vlan11": {"type": "svi", "ip": {"vrf": "Vrf5001", "vrr": {
                    "address": {"10.100.0.1/24": {}},
                    "mac-address": "00:00:5e:00:01:01",
                    "state": {"up": {}}}}},
                "swp2": {"bridge": {"domain": {"br_default": {"access": 10}}}, "link": {"state": {"up": {}}}},
                "swp3": {"bridge": {"domain": {"br_default": {"access": 11}}}, "link": {"state": {"up": {}}}},
                "swp4": {"bridge": {"domain": {"br_default": {"access": 4000}}}, "link": {"state": {"up": {}}}},
                "swp5": {"link": {"state": {"down": {}}}},
            },
            "router": {"bgp": {"autonomous-system": 65101, "router-id": "10.0.0.1"}},
            "vrf": {
                "default": {"router": {"bgp": {
                    "peer-group": {"underlay": {
                        "remote-as": "external",
                        "address-family": {"l2vpn-evpn": {"enable": "on"}}}},
                    "neighbor": {"swp1": {"peer-group": "underlay", "type": "unnumbered"}},
                    "address-family": {"ipv4-unicast": {"network": {"10.0.0.1/32": {}}}}}}},
                "Vrf5000": vrf_tree(5000),
                "Vrf5001": vrf_tree(5001),
            },
            "nve": {"vxlan": {"source": {"address": "10.0.0.1"}, "arp-nd-suppress": "on"}},
            "evpn": {
                "enable": "on",
                "vni": {
                    "100": rts("65000:100"),
                    "101": rts("65000:101"),
                    "9000": rts("65000:9000"),
                },
            },
            "bridge": {"domain": {"br_default": {"vlan": {
                "10": {"vni": {"100": {}}},
                "11": {"vni": {"101": {}}},
                "4000": {"vni": {"9000": {}}},
            }}}},
        });
        assert_eq!(merge(&all), expected);
    }

    fn vrf_tree(vni: u32) -> Value {
        let rt = key(format!("65000:{vni}"));
        json!({
            "evpn": {"vni": {vni.to_string(): {}}},
            "router": {"bgp": {
                "address-family": {"ipv4-unicast": {
                    "redistribute": {"connected": {"enable": "on"}},
                    "route-export": {"to-evpn": {"enable": "on"}}}},
                "route-import": {"from-evpn": {"route-target": rt.clone()}},
                "route-export": {"to-evpn": {"route-target": rt}},
            }},
        })
    }

    fn rts(rt: &str) -> Value {
        json!({"route-target": {"import": {rt: {}}, "export": {rt: {}}}})
    }

    #[test]
    fn claims_never_overlap_between_objects() {
        let cfg = Lab::new(SwitchOs::CumulusNvue).plan("leaf1");
        let mut seen: Vec<(Vec<String>, String)> = Vec::new();
        for o in cfg.objects.values() {
            for c in claims("leaf1", o).unwrap() {
                for (p, owner) in &seen {
                    let prefix =
                        |a: &[String], b: &[String]| a.len() <= b.len() && b[..a.len()] == *a;
                    assert!(
                        !prefix(p, &c.path) && !prefix(&c.path, p),
                        "{} ({owner}) and {} ({}) overlap",
                        p.join("."),
                        c.path.join("."),
                        o.id()
                    );
                }
                seen.push((c.path, o.id().to_string()));
            }
        }
    }

    #[test]
    fn holds_compares_leaves_and_tolerates_number_spelling() {
        let c =
            claim(&["interface", "swp2", "bridge", "domain", "br_default"], json!({"access": 10}));
        let mut device = json!({"interface": {"swp2": {"bridge": {"domain": {"br_default": {"access": "10", "stp": {}}}}}}});
        assert_eq!(holds(&device, &c), Ok(()));
        device["interface"]["swp2"]["bridge"]["domain"]["br_default"]["access"] = json!(11);
        assert_eq!(
            holds(&device, &c),
            Err("interface.swp2.bridge.domain.br_default.access: the switch has 11, expected 10"
                .into())
        );
        assert_eq!(
            holds(&json!({}), &c),
            Err("interface.swp2.bridge.domain.br_default is missing".into())
        );
    }

    #[test]
    fn put_merges_and_keeps_nulls() {
        let mut t = json!({});
        put(&mut t, &["a".into(), "b".into()], json!({"x": 1}));
        put(&mut t, &["a".into(), "b".into()], json!({"y": 2}));
        put(&mut t, &["a".into(), "c".into()], Value::Null);
        assert_eq!(t, json!({"a": {"b": {"x": 1, "y": 2}, "c": null}}));
    }

    #[test]
    fn unsupported_objects_are_refused() {
        let o = Object::Nat(neocloud_fabric::NatConfig {
            vrf: "Vrf5000".into(),
            public_ip: "203.0.113.1".parse().unwrap(),
            sources: vec![],
        });
        assert!(matches!(claims("leaf1", &o), Err(Error::Unsupported { .. })));
    }
}
