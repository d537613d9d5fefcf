//! SONiC: CONFIG_DB tables per the reference (`VXLAN_TUNNEL`,
//! `VXLAN_EVPN_NVO`, `VXLAN_TUNNEL_MAP`, `VLAN`, `VLAN_MEMBER`, `VRF`,
//! `VLAN_INTERFACE`), plus FRR text for BGP/EVPN.
//!
//! Choices where the reference is silent or unconfirmed:
//! - BGP/EVPN is configured through FRR (split mode, `frr::render`), not
//!   the `BGP_GLOBALS*` tables (the reference leaves which one open).
//! - `VLAN_MEMBER.tagging_mode` and `VLAN_INTERFACE.vrf_name` are used as
//!   "real deployments" write them (the reference marks both unconfirmed).
//! - The loopback goes in `LOOPBACK_INTERFACE` (standard SONiC, not in the
//!   reference); port state in `PORT.admin_status` (a patch of that one
//!   field: the PORT entries' other fields are the platform's).
//! - Not rendered: the anycast gateway MAC (SONiC's SAG tables are not in
//!   the reference; every leaf answers with its own router MAC meanwhile)
//!   and provisioning port isolation. Security policies, NAT, floating
//!   IPs and the border uplink with its public links are refused
//!   (`Error::Unsupported`), never dropped.
//!
//! The output is the set of keys this crate owns, meant to be merged into
//! CONFIG_DB (`config load` / apply-patch), not to replace it.

use super::frr::{self, FrrFiles};
use crate::desired::{Object, PortMode, SegmentPurpose, SwitchConfig};
use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// table -> key -> field -> value, sorted (a stable, diffable rendering).
pub type ConfigDb = BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SonicConfig {
    pub config_db: ConfigDb,
    pub frr: FrrFiles,
}

impl SonicConfig {
    /// CONFIG_DB as pretty JSON (keys sorted).
    pub fn config_db_json(&self) -> String {
        serde_json::to_string_pretty(&self.config_db).unwrap_or_default()
    }
}

/// The reference's tunnel and NVO names.
const VTEP: &str = "vtep1";
const NVO: &str = "nvo1";

fn vlan_name(vlan: u16) -> String {
    format!("Vlan{vlan}")
}

fn put(db: &mut ConfigDb, table: &str, key: String, fields: &[(&str, String)]) {
    let entry = db.entry(table.to_string()).or_default().entry(key).or_default();
    for (f, v) in fields {
        entry.insert(f.to_string(), v.clone());
    }
}

/// VLAN + its VXLAN map (the reference's `<vtep>|map_<vni>_Vlan<id>` key).
fn map_vlan(db: &mut ConfigDb, vlan: u16, vni: u32) {
    let name = vlan_name(vlan);
    put(db, "VLAN", name.clone(), &[("vlanid", vlan.to_string())]);
    put(
        db,
        "VXLAN_TUNNEL_MAP",
        format!("{VTEP}|map_{vni}_{name}"),
        &[("vlan", name), ("vni", vni.to_string())],
    );
}

pub fn render(switch: &str, cfg: &SwitchConfig) -> Result<SonicConfig> {
    let mut db = ConfigDb::new();
    for o in cfg.objects.values() {
        let missing_vlan = || {
            Error::unsupported(
                switch,
                o.id().to_string(),
                "SONiC maps a VNI through a VLAN; none allocated",
            )
        };
        match o {
            Object::Bgp(b) => {
                put(&mut db, "LOOPBACK_INTERFACE", "Loopback0".into(), &[]);
                put(&mut db, "LOOPBACK_INTERFACE", format!("Loopback0|{}/32", b.router_id), &[]);
            }
            Object::Vtep(v) => {
                // udp_port: SONiC uses 4789 and the reference has no field.
                put(&mut db, "VXLAN_TUNNEL", VTEP.into(), &[("src_ip", v.source.to_string())]);
                put(&mut db, "VXLAN_EVPN_NVO", NVO.into(), &[("source_vtep", VTEP.to_string())]);
            }
            Object::Vrf(v) => {
                // An L3 VNI needs a mapped VLAN, VRF|vni, and FRR's vrf/vni.
                let vlan = v.local_id.ok_or_else(missing_vlan)?;
                map_vlan(&mut db, vlan, v.l3_vni);
                put(&mut db, "VRF", v.name.clone(), &[("vni", v.l3_vni.to_string())]);
                put(&mut db, "VLAN_INTERFACE", vlan_name(vlan), &[("vrf_name", v.name.clone())]);
            }
            Object::Segment(s) => {
                let vlan = s.vlan.ok_or_else(missing_vlan)?;
                map_vlan(&mut db, vlan, s.vni);
                match &s.purpose {
                    SegmentPurpose::Tenant { vrf, gateway, .. } => {
                        put(
                            &mut db,
                            "VLAN_INTERFACE",
                            vlan_name(vlan),
                            &[("vrf_name", vrf.clone())],
                        );
                        put(
                            &mut db,
                            "VLAN_INTERFACE",
                            format!("{}|{gateway}", vlan_name(vlan)),
                            &[],
                        );
                    }
                    SegmentPurpose::Provisioning => {}
                }
            }
            Object::Port(p) => match &p.mode {
                PortMode::Tenant { vlan, .. } | PortMode::Provisioning { vlan, .. } => {
                    let vlan = vlan.ok_or_else(missing_vlan)?;
                    put(
                        &mut db,
                        "VLAN_MEMBER",
                        format!("{}|{}", vlan_name(vlan), p.port),
                        &[("tagging_mode", "untagged".to_string())],
                    );
                    put(&mut db, "PORT", p.port.clone(), &[("admin_status", "up".to_string())]);
                }
                PortMode::Disabled => {
                    put(&mut db, "PORT", p.port.clone(), &[("admin_status", "down".to_string())]);
                }
            },
            Object::Policy(_)
            | Object::Nat(_)
            | Object::FloatingIp(_)
            | Object::Uplink(_)
            | Object::PublicLink(_) => {
                return Err(Error::unsupported(
                    switch,
                    o.id().to_string(),
                    "not rendered for SONiC yet (ACL/NAT tables and the north-south uplink are not in the reference)",
                ))
            }
        }
    }
    Ok(SonicConfig { config_db: db, frr: frr::render(switch, cfg) })
}
