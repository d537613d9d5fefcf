//! The provider's fabric document (API types) <-> the fabric core's model.
//! Addresses are parsed here, naming the document's field on error.

use neocloud_common::{Error, Result};
use neocloud_fabric::{
    Fabric, FabricKind, FabricPort, IdRange, Ipv4Net, Link, Pools, Provisioning, Switch, SwitchOs,
    SwitchRole,
};
use neocloud_types::{
    FabricKindSpec, FabricSpec, Ports32, SwitchManagement, SwitchOsSpec, SwitchRoleSpec,
};
use std::net::{IpAddr, Ipv4Addr};

/// The core's view of a document (links and provisioning servers already
/// name node ids).
pub struct Topology {
    pub fabric: Fabric,
    pub switches: Vec<Switch>,
    pub links: Vec<Link>,
}

fn range(r: Ports32) -> IdRange {
    IdRange { first: r.first, last: r.last }
}

pub fn kind(k: FabricKindSpec) -> FabricKind {
    match k {
        FabricKindSpec::Ethernet => FabricKind::Ethernet,
        FabricKindSpec::Infiniband => FabricKind::Infiniband,
    }
}

pub fn kind_str(k: FabricKindSpec) -> &'static str {
    match k {
        FabricKindSpec::Ethernet => "ethernet",
        FabricKindSpec::Infiniband => "infiniband",
    }
}

pub fn os(o: SwitchOsSpec) -> SwitchOs {
    match o {
        SwitchOsSpec::Frr => SwitchOs::Frr,
        SwitchOsSpec::Sonic => SwitchOs::Sonic,
        SwitchOsSpec::CumulusNvue => SwitchOs::CumulusNvue,
        SwitchOsSpec::AristaEos => SwitchOs::AristaEos,
    }
}

pub fn os_spec(o: SwitchOs) -> SwitchOsSpec {
    match o {
        SwitchOs::Frr => SwitchOsSpec::Frr,
        SwitchOs::Sonic => SwitchOsSpec::Sonic,
        SwitchOs::CumulusNvue => SwitchOsSpec::CumulusNvue,
        SwitchOs::AristaEos => SwitchOsSpec::AristaEos,
    }
}

fn role(r: SwitchRoleSpec) -> SwitchRole {
    match r {
        SwitchRoleSpec::Leaf => SwitchRole::Leaf,
        SwitchRoleSpec::Spine => SwitchRole::Spine,
        SwitchRoleSpec::Border => SwitchRole::Border,
    }
}

pub fn ipv4(field: impl Into<String>, s: &str) -> Result<Ipv4Addr> {
    s.parse().map_err(|_| Error::invalid_value(field, format!("{s:?} is not an IPv4 address")))
}

pub fn ipv4_net(field: impl Into<String>, s: &str) -> Result<Ipv4Net> {
    s.parse().map_err(|e: String| Error::invalid_value(field, e))
}

/// Converts a document whose node references are already ids.
pub fn topology(name: &str, spec: &FabricSpec) -> Result<Topology> {
    let p = spec
        .pools
        .as_ref()
        .ok_or_else(|| Error::invalid_value("pools", "required for an Ethernet fabric"))?;
    let public = p
        .public
        .iter()
        .enumerate()
        .map(|(i, s)| ipv4_net(format!("pools.public[{i}]"), s))
        .collect::<Result<Vec<_>>>()?;
    let fabric = Fabric {
        name: name.to_string(),
        kind: kind(spec.kind),
        pools: Pools {
            l2_vni: range(p.l2_vni),
            l3_vni: range(p.l3_vni),
            vlan: range(p.vlan),
            route_target_asn: p.route_target_asn,
            provisioning: Provisioning {
                vni: p.provisioning_vni,
                vlan: p.provisioning_vlan,
                servers: p.provisioning_servers.clone(),
            },
            public,
        },
        gateway_mac: spec
            .gateway_mac
            .clone()
            .unwrap_or_else(neocloud_fabric::model::default_gateway_mac),
    };
    let mut switches = Vec::with_capacity(spec.switches.len());
    for (i, s) in spec.switches.iter().enumerate() {
        let f = |n: &str| format!("switches[{i}].{n}");
        let mgmt_address: IpAddr = s.mgmt_address.parse().map_err(|_| {
            Error::invalid_value(
                f("mgmt_address"),
                format!("{:?} is not an IP address", s.mgmt_address),
            )
        })?;
        let uplink = match &s.uplink {
            None => None,
            Some(u) => Some(neocloud_fabric::Uplink {
                port: u.port.clone(),
                address: ipv4_net(f("uplink.address"), &u.address)?,
                gateway: ipv4(f("uplink.gateway"), &u.gateway)?,
            }),
        };
        switches.push(Switch {
            name: s.name.to_string(),
            role: role(s.role),
            os: os(s.os),
            mgmt_address,
            asn: s.asn,
            loopback: ipv4(f("loopback"), &s.loopback)?,
            fabric_ports: s
                .fabric_ports
                .iter()
                .map(|fp| FabricPort { port: fp.port.clone(), peer: fp.peer.clone() })
                .collect(),
            uplink,
        });
    }
    let links = spec
        .links
        .iter()
        .map(|l| Link {
            node: l.node.clone(),
            nic: l.nic.clone(),
            switch: l.switch.clone(),
            port: l.port.clone(),
        })
        .collect();
    Ok(Topology { fabric, switches, links })
}

/// The document as answered: write-only secrets left out.
pub fn redacted(spec: &FabricSpec) -> FabricSpec {
    let mut out = spec.clone();
    for s in &mut out.switches {
        if let SwitchManagement::Https { password, .. } = &mut s.management {
            *password = None;
        }
    }
    if let Some(ib) = &mut out.infiniband {
        if let neocloud_types::SubnetManager::Ufm { password, .. } = &mut ib.subnet_manager {
            *password = None;
        }
    }
    out
}
