//! The SONiC YANG models the RESTCONF double serves, written from
//! sonic-buildimage's `sonic-yang-models` and the reference's CONFIG_DB
//! facts (vendor-apis.md §5, N2/N3), independently of the driver's own
//! mapping: the lists, their keys and leaf types, and the constraints the
//! switch enforces on every write (leafrefs, patterns, ranges, counts).

use std::collections::BTreeMap;

/// table -> key -> field -> value, as CONFIG_DB holds it.
pub type Db = BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>;

#[derive(Debug, Clone, Copy)]
pub struct List {
    pub module: &'static str,
    pub table: &'static str,
    pub list: &'static str,
    pub keys: &'static [&'static str],
    /// Leaves and whether each is a number (`uint*`) in YANG.
    pub leaves: &'static [(&'static str, bool)],
}

pub const LISTS: &[List] = &[
    List {
        module: "sonic-loopback-interface",
        table: "LOOPBACK_INTERFACE",
        list: "LOOPBACK_INTERFACE_LIST",
        keys: &["name"],
        leaves: &[("vrf_name", false)],
    },
    List {
        module: "sonic-loopback-interface",
        table: "LOOPBACK_INTERFACE",
        list: "LOOPBACK_INTERFACE_IPPREFIX_LIST",
        keys: &["name", "ip-prefix"],
        leaves: &[],
    },
    List {
        module: "sonic-vxlan",
        table: "VXLAN_TUNNEL",
        list: "VXLAN_TUNNEL_LIST",
        keys: &["name"],
        leaves: &[("src_ip", false), ("dst_ip", false), ("ttl_mode", false)],
    },
    List {
        module: "sonic-vxlan",
        table: "VXLAN_EVPN_NVO",
        list: "VXLAN_EVPN_NVO_LIST",
        keys: &["name"],
        leaves: &[("source_vtep", false)],
    },
    List {
        module: "sonic-vxlan",
        table: "VXLAN_TUNNEL_MAP",
        list: "VXLAN_TUNNEL_MAP_LIST",
        keys: &["name", "mapname"],
        leaves: &[("vlan", false), ("vni", true)],
    },
    List {
        module: "sonic-vlan",
        table: "VLAN",
        list: "VLAN_LIST",
        keys: &["name"],
        leaves: &[("vlanid", true), ("description", false), ("mtu", true), ("admin_status", false)],
    },
    List {
        module: "sonic-vlan",
        table: "VLAN_MEMBER",
        list: "VLAN_MEMBER_LIST",
        keys: &["name", "ifname"],
        leaves: &[("tagging_mode", false)],
    },
    List {
        module: "sonic-vlan",
        table: "VLAN_INTERFACE",
        list: "VLAN_INTERFACE_LIST",
        keys: &["name"],
        leaves: &[("vrf_name", false)],
    },
    List {
        module: "sonic-vlan",
        table: "VLAN_INTERFACE",
        list: "VLAN_INTERFACE_IPPREFIX_LIST",
        keys: &["name", "ip-prefix"],
        leaves: &[],
    },
    List {
        module: "sonic-vrf",
        table: "VRF",
        list: "VRF_LIST",
        keys: &["name"],
        leaves: &[("vni", true), ("fallback", false)],
    },
    List {
        module: "sonic-port",
        table: "PORT",
        list: "PORT_LIST",
        keys: &["name"],
        leaves: &[
            ("admin_status", false),
            ("alias", false),
            ("lanes", false),
            ("speed", true),
            ("mtu", true),
            ("description", false),
        ],
    },
    List {
        module: "sonic-mgmt_port",
        table: "MGMT_PORT",
        list: "MGMT_PORT_LIST",
        keys: &["name"],
        leaves: &[
            ("admin_status", false),
            ("alias", false),
            ("description", false),
            ("speed", true),
            ("mtu", true),
        ],
    },
];

pub fn by_list(module: &str, list: &str) -> Option<&'static List> {
    LISTS.iter().find(|l| l.module == module && l.list == list)
}

pub fn by_table<'a>(module: &'a str, table: &'a str) -> impl Iterator<Item = &'static List> + 'a {
    LISTS.iter().filter(move |l| l.module == module && l.table == table)
}

fn vlan_id(name: &str) -> Option<u16> {
    name.strip_prefix("Vlan")?.parse().ok().filter(|v| (1..=4094).contains(v))
}

fn ipv4(s: &str) -> bool {
    s.parse::<std::net::Ipv4Addr>().is_ok()
}

fn vni_ok(v: &str, min: u32) -> bool {
    v.parse::<u32>().is_ok_and(|n| n >= min && n <= 16_777_215)
}

/// The constraints of the models, over the whole database (as the switch
/// validates a write): `Err` says what breaks.
pub fn validate(db: &Db) -> Result<(), String> {
    let empty = BTreeMap::new();
    let t = |name: &str| db.get(name).unwrap_or(&empty);
    let has = |table: &str, key: &str| t(table).contains_key(key);
    for (k, f) in t("VLAN") {
        let id = vlan_id(k).ok_or(format!("VLAN {k}: the name must be Vlan<1-4094>"))?;
        if f.get("vlanid").map(String::as_str) != Some(id.to_string().as_str()) {
            return Err(format!("VLAN {k}: vlanid must be {id}"));
        }
    }
    for k in t("VLAN_MEMBER").keys() {
        let (vlan, port) = k.split_once('|').unwrap_or((k, ""));
        if !has("VLAN", vlan) {
            return Err(format!("VLAN_MEMBER {k}: VLAN {vlan} does not exist"));
        }
        if !has("PORT", port) {
            return Err(format!("VLAN_MEMBER {k}: port {port} does not exist"));
        }
        let mode = t("VLAN_MEMBER")[k].get("tagging_mode").map(String::as_str);
        if !matches!(mode, Some("tagged" | "untagged") | None) {
            return Err(format!("VLAN_MEMBER {k}: tagging_mode must be tagged or untagged"));
        }
    }
    for (k, f) in t("VLAN_INTERFACE") {
        let name = k.split('|').next().unwrap_or_default();
        if !has("VLAN", name) {
            return Err(format!("VLAN_INTERFACE {k}: VLAN {name} does not exist"));
        }
        if let Some(vrf) = f.get("vrf_name") {
            if !has("VRF", vrf) {
                return Err(format!("VLAN_INTERFACE {k}: VRF {vrf} does not exist"));
            }
        }
        if k.contains('|') && !has("VLAN_INTERFACE", name) {
            return Err(format!("VLAN_INTERFACE {k}: the interface {name} does not exist"));
        }
    }
    for (k, f) in t("VRF") {
        let rest = k.strip_prefix("Vrf").unwrap_or_default();
        if rest.is_empty()
            || !rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!("VRF {k}: the name must match Vrf[a-zA-Z0-9_-]+"));
        }
        if f.get("vni").is_some_and(|v| !vni_ok(v, 0)) {
            return Err(format!("VRF {k}: vni must be 0-16777215"));
        }
    }
    if t("VXLAN_TUNNEL").len() > 2 {
        return Err("VXLAN_TUNNEL: at most 2 entries".into());
    }
    for (k, f) in t("VXLAN_TUNNEL") {
        if !f.get("src_ip").is_some_and(|ip| ipv4(ip)) {
            return Err(format!("VXLAN_TUNNEL {k}: src_ip must be an IPv4 address"));
        }
    }
    if t("VXLAN_EVPN_NVO").len() > 1 {
        return Err("VXLAN_EVPN_NVO: at most 1 entry".into());
    }
    for (k, f) in t("VXLAN_EVPN_NVO") {
        let vtep = f.get("source_vtep").cloned().unwrap_or_default();
        if !has("VXLAN_TUNNEL", &vtep) {
            return Err(format!("VXLAN_EVPN_NVO {k}: source_vtep {vtep} does not exist"));
        }
    }
    let (mut vlans, mut vnis) = (Vec::new(), Vec::new());
    for (k, f) in t("VXLAN_TUNNEL_MAP") {
        let tunnel = k.split('|').next().unwrap_or_default();
        if !has("VXLAN_TUNNEL", tunnel) {
            return Err(format!("VXLAN_TUNNEL_MAP {k}: tunnel {tunnel} does not exist"));
        }
        let vlan = f.get("vlan").cloned().unwrap_or_default();
        if vlan_id(&vlan).is_none() || !has("VLAN", &vlan) {
            return Err(format!(
                "VXLAN_TUNNEL_MAP {k}: vlan {vlan} must be an existing Vlan<1-4094>"
            ));
        }
        let vni = f.get("vni").cloned().unwrap_or_default();
        if !vni_ok(&vni, 1) {
            return Err(format!("VXLAN_TUNNEL_MAP {k}: vni must be 1-16777215"));
        }
        if vlans.contains(&vlan) || vnis.contains(&vni) {
            return Err(format!("VXLAN_TUNNEL_MAP {k}: {vlan} or VNI {vni} is already mapped"));
        }
        vlans.push(vlan);
        vnis.push(vni);
    }
    for k in t("LOOPBACK_INTERFACE").keys() {
        let name = k.split('|').next().unwrap_or_default();
        if !name
            .strip_prefix("Loopback")
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(format!("LOOPBACK_INTERFACE {k}: the name must be Loopback<n>"));
        }
    }
    for (k, f) in t("PORT") {
        if f.get("admin_status").is_some_and(|s| s != "up" && s != "down") {
            return Err(format!("PORT {k}: admin_status must be up or down"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Entry<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

    fn db(entries: &[Entry<'_>]) -> Db {
        let mut db = Db::new();
        for (t, k, f) in entries {
            let fields = f.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
            db.entry(t.to_string()).or_default().insert(k.to_string(), fields);
        }
        db
    }

    #[test]
    fn references_and_formats_are_enforced() {
        let ok = db(&[
            ("PORT", "Ethernet4", &[("admin_status", "up")]),
            ("VLAN", "Vlan12", &[("vlanid", "12")]),
            ("VLAN_MEMBER", "Vlan12|Ethernet4", &[("tagging_mode", "untagged")]),
            ("VXLAN_TUNNEL", "vtep1", &[("src_ip", "10.0.0.1")]),
            ("VXLAN_TUNNEL_MAP", "vtep1|map_100_Vlan12", &[("vlan", "Vlan12"), ("vni", "100")]),
        ]);
        assert_eq!(validate(&ok), Ok(()));
        let mut no_vlan = ok.clone();
        no_vlan.remove("VLAN");
        assert!(validate(&no_vlan).unwrap_err().contains("VLAN Vlan12 does not exist"));
        let mut twice = ok.clone();
        twice.get_mut("VXLAN_TUNNEL_MAP").unwrap().insert(
            "vtep1|map_101_Vlan12".into(),
            [("vlan".into(), "Vlan12".into()), ("vni".into(), "101".into())].into(),
        );
        assert!(validate(&twice).unwrap_err().contains("already mapped"));
        assert!(validate(&db(&[("VRF", "red", &[])])).is_err());
    }
}
