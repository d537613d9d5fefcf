//! Static provisioning addresses, for provisioning networks without DHCP:
//! a node's boot network, and the provider's provisioning networks its
//! addresses are drawn from (`/v1/provisioning-networks`).

use neocloud_common::{Error, Name, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;

/// A MAC address's six octets, from its colon-separated form
/// (`52:54:00:12:34:56`, either case); `None` for anything else.
pub fn mac_octets(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for o in &mut out {
        let p = parts.next()?;
        if p.len() != 2 || !p.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        *o = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// A node's static address on its provisioning network, for networks
/// without DHCP. Its virtual-media boots insert an ISO of its own whose
/// iPXE sets the address on the NIC with `mac` and asks the boot service
/// for that MAC's script; the image's kernel gets it too (`ip=`,
/// `BOOTIF=`) and cloud-init a NoCloud `network-config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BootNetwork {
    /// The MAC of the NIC the node boots from, e.g. `52:54:00:12:34:56`.
    pub mac: String,
    /// Its IPv4 address and prefix length, e.g. `10.0.0.5/24`. Absent on
    /// input with `network`: the lowest free address of that network's
    /// range is drawn (and kept while the node stays in that network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// A provisioning network (`/v1/provisioning-networks`) the address
    /// belongs to: its gateway and name servers apply (and follow the
    /// network's changes); an address not given is drawn from its range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// The default gateway, inside the address's subnet (none: the boot
    /// service is on the same subnet). Not given with `network`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Up to two name servers (the first is iPXE's): needed where the
    /// server's `boot_url` names a host. Not given with `network`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
}

/// An IPv4 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    /// The prefix length, 8 to 30.
    pub prefix: u8,
}

impl Subnet {
    /// The netmask, as bits.
    fn mask(&self) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(self.prefix.min(32))).unwrap_or(0)
    }

    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.mask())
    }

    /// Whether `a` is inside it.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == u32::from(self.network)
    }

    /// Whether `a` is one of its hosts: inside, neither its network nor its
    /// broadcast address.
    pub fn has_host(&self, a: Ipv4Addr) -> bool {
        let host = u32::from(a) & !self.mask();
        self.contains(a) && host != 0 && host != !self.mask()
    }

    /// Whether the two share an address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// The subnet of `address/prefix`.
    fn of(address: Ipv4Addr, prefix: u8) -> Subnet {
        let s = Subnet { network: address, prefix };
        Subnet { network: Ipv4Addr::from(u32::from(address) & s.mask()), prefix }
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A [`BootNetwork`], checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticAddress {
    /// Lower case, colon-separated (as iPXE prints `${netX/mac}`).
    pub mac: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
}

impl StaticAddress {
    pub fn subnet(&self) -> Subnet {
        Subnet::of(self.address, self.prefix)
    }

    /// The subnet's netmask.
    pub fn netmask(&self) -> Ipv4Addr {
        self.subnet().netmask()
    }

    /// Its boot network in canonical form (the address with its prefix
    /// length), in `network` where it belongs to one.
    pub fn boot_network(&self, network: Option<String>) -> BootNetwork {
        BootNetwork {
            mac: self.mac.clone(),
            address: Some(format!("{}/{}", self.address, self.prefix)),
            network,
            gateway: self.gateway.map(|g| g.to_string()),
            dns: self.dns.iter().map(ToString::to_string).collect(),
        }
    }
}

/// A unicast IPv4 address.
fn host_address(field: &str, s: &str) -> Result<Ipv4Addr> {
    let a: Ipv4Addr = s.parse().map_err(|_| {
        let why = if s.parse::<std::net::Ipv6Addr>().is_ok() {
            "must be an IPv4 address (iPXE's static configuration is IPv4)"
        } else {
            "must be an IPv4 address like 10.0.0.5"
        };
        Error::invalid_value(field, why)
    })?;
    if a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast() {
        return Err(Error::invalid_value(field, "must be a unicast host address"));
    }
    Ok(a)
}

/// A host of `subnet`.
fn host_of(field: &str, s: &str, subnet: &Subnet) -> Result<Ipv4Addr> {
    let a = host_address(field, s)?;
    if !subnet.has_host(a) {
        return Err(Error::invalid_value(field, format!("must be a host of {subnet}")));
    }
    Ok(a)
}

/// At most two name servers, each a unicast address.
fn name_servers(field: &str, dns: &[String]) -> Result<Vec<Ipv4Addr>> {
    if dns.len() > 2 {
        return Err(Error::invalid_value(field, "at most two name servers"));
    }
    dns.iter().enumerate().map(|(i, d)| host_address(&format!("{field}[{i}]"), d)).collect()
}

/// A prefix length a static address takes, 8 to 30.
fn prefix_length(field: &str, s: &str) -> Result<u8> {
    s.parse()
        .ok()
        .filter(|p| (8..=30).contains(p))
        .ok_or_else(|| Error::invalid_value(field, "the prefix length must be 8 to 30"))
}

impl BootNetwork {
    /// Checks every field (a 422 names the first wrong one).
    pub fn check(&self) -> Result<StaticAddress> {
        let Some(bytes) = mac_octets(&self.mac) else {
            return Err(Error::invalid_value(
                "boot_network.mac",
                "must be a MAC address like 52:54:00:12:34:56",
            ));
        };
        if bytes[0] & 1 == 1 || bytes.iter().all(|b| *b == 0) {
            return Err(Error::invalid_value("boot_network.mac", "must be a unicast MAC address"));
        }
        let Some(address) = &self.address else {
            return Err(Error::invalid_value(
                "boot_network.address",
                "required (or a network to draw it from)",
            ));
        };
        let (addr, prefix) = address.split_once('/').ok_or_else(|| {
            Error::invalid_value(
                "boot_network.address",
                "must be an address and prefix length like 10.0.0.5/24",
            )
        })?;
        let address = host_address("boot_network.address", addr)?;
        let prefix = prefix_length("boot_network.address", prefix)?;
        let subnet = Subnet::of(address, prefix);
        if !subnet.has_host(address) {
            return Err(Error::invalid_value(
                "boot_network.address",
                "is its subnet's network or broadcast address",
            ));
        }
        let gateway = match &self.gateway {
            None => None,
            Some(g) => {
                let g = host_of("boot_network.gateway", g, &subnet)?;
                if g == address {
                    return Err(Error::invalid_value(
                        "boot_network.gateway",
                        "is the node's own address",
                    ));
                }
                Some(g)
            }
        };
        let dns = name_servers("boot_network.dns", &self.dns)?;
        Ok(StaticAddress { mac: self.mac.to_ascii_lowercase(), address, prefix, gateway, dns })
    }
}

/// A provisioning network nodes' static addresses are drawn from: its
/// subnet, the range handed out, the gateway and name servers its nodes
/// take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProvisioningNetwork {
    pub id: String,
    pub name: String,
    /// The subnet, e.g. `10.0.8.0/22`.
    pub subnet: String,
    /// The first and last addresses drawn (the gateway and name servers
    /// among them are skipped).
    pub first: String,
    pub last: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    /// Nodes holding an address of it.
    pub nodes: u32,
    /// Addresses of the range not held by a node, nor the gateway's or a
    /// name server's.
    pub free: u32,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// A new provisioning network (provider).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningNetworkCreate {
    pub name: Name,
    /// The subnet, e.g. `10.0.8.0/22` (prefix length 8 to 30); it cannot
    /// change, nor overlap another provisioning network's.
    pub subnet: String,
    /// The first and last addresses drawn, hosts of the subnet.
    pub first: String,
    pub last: String,
    /// The default gateway its nodes take, a host of the subnet (none:
    /// the boot service is on the same subnet).
    #[serde(default)]
    pub gateway: Option<String>,
    /// Up to two name servers its nodes take (the first is iPXE's).
    #[serde(default)]
    pub dns: Vec<String>,
}

/// Changes a provisioning network at the expected generation; its nodes
/// take a new gateway or name servers at once (their ISOs are rebuilt),
/// and keep their addresses where the range narrows.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningNetworkUpdate {
    pub generation: i64,
    #[serde(default)]
    pub first: Option<String>,
    #[serde(default)]
    pub last: Option<String>,
    /// `null` removes it.
    #[serde(
        default,
        deserialize_with = "crate::some_or_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway: Option<Option<String>>,
    #[serde(default)]
    pub dns: Option<Vec<String>>,
}

/// A provisioning network, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRange {
    pub name: String,
    pub subnet: Subnet,
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
}

impl AddressRange {
    /// Whether `a` is one the range hands out.
    pub fn hands_out(&self, a: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&a) && Some(a) != self.gateway && !self.dns.contains(&a)
    }

    /// The addresses it hands out, in order.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        (u32::from(self.first)..=u32::from(self.last))
            .map(Ipv4Addr::from)
            .filter(|a| self.hands_out(*a))
    }

    /// A node's boot network in it, at `address`: the network's gateway
    /// and name servers.
    pub fn boot_network(&self, mac: &str, address: Ipv4Addr) -> BootNetwork {
        StaticAddress {
            mac: mac.to_string(),
            address,
            prefix: self.subnet.prefix,
            gateway: self.gateway,
            dns: self.dns.clone(),
        }
        .boot_network(Some(self.name.clone()))
    }
}

impl ProvisioningNetworkCreate {
    /// Checks it (a 422 names the first wrong field).
    pub fn check(&self) -> Result<AddressRange> {
        let (net, prefix) = self
            .subnet
            .split_once('/')
            .ok_or_else(|| Error::invalid_value("subnet", "must be a subnet like 10.0.8.0/22"))?;
        let prefix = prefix_length("subnet", prefix)?;
        let network: Ipv4Addr = net.parse().map_err(|_| {
            Error::invalid_value("subnet", "must be an IPv4 subnet like 10.0.8.0/22")
        })?;
        let subnet = Subnet { network, prefix };
        if Subnet::of(network, prefix) != subnet {
            return Err(Error::invalid_value("subnet", "has host bits set"));
        }
        let first = host_of("first", &self.first, &subnet)?;
        let last = host_of("last", &self.last, &subnet)?;
        if last < first {
            return Err(Error::invalid_value("last", "comes before first"));
        }
        let gateway =
            self.gateway.as_deref().map(|g| host_of("gateway", g, &subnet)).transpose()?;
        let dns = name_servers("dns", &self.dns)?;
        Ok(AddressRange { name: self.name.to_string(), subnet, first, last, gateway, dns })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(mac: &str, address: &str, gateway: Option<&str>, dns: &[&str]) -> BootNetwork {
        BootNetwork {
            mac: mac.into(),
            address: Some(address.into()),
            network: None,
            gateway: gateway.map(Into::into),
            dns: dns.iter().map(|d| d.to_string()).collect(),
        }
    }

    /// The field a refusal names.
    fn refused(b: BootNetwork) -> String {
        b.check().unwrap_err().field().expect("a field").to_string()
    }

    #[test]
    fn macs_are_six_colon_separated_octets() {
        assert_eq!(mac_octets("52:54:00:AB:cd:0f"), Some([0x52, 0x54, 0, 0xab, 0xcd, 0x0f]));
        for bad in [
            "",
            "52:54:00:ab:cd",
            "52:54:00:ab:cd:0f:00",
            "52-54-00-ab-cd-0f",
            "5:54:00:ab:cd:0f0",
            "+2:54:00:ab:cd:0f",
            "52:54:00:ab:cd:0g",
        ] {
            assert_eq!(mac_octets(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_boot_network_is_checked_and_canonical() {
        let a = net("52:54:00:AB:CD:EF", "10.1.2.3/20", Some("10.1.0.1"), &["10.1.0.2"])
            .check()
            .unwrap();
        assert_eq!(a.mac, "52:54:00:ab:cd:ef");
        assert_eq!((a.address, a.prefix), (Ipv4Addr::new(10, 1, 2, 3), 20));
        assert_eq!(a.netmask(), Ipv4Addr::new(255, 255, 240, 0));
        assert_eq!(a.subnet().to_string(), "10.1.0.0/20");
        assert_eq!(a.gateway, Some(Ipv4Addr::new(10, 1, 0, 1)));
        assert_eq!(a.dns, vec![Ipv4Addr::new(10, 1, 0, 2)]);
        let ok = |p| StaticAddress {
            mac: String::new(),
            address: Ipv4Addr::new(1, 2, 3, 4),
            prefix: p,
            gateway: None,
            dns: vec![],
        };
        assert_eq!(ok(8).netmask(), Ipv4Addr::new(255, 0, 0, 0));
        assert_eq!(ok(30).netmask(), Ipv4Addr::new(255, 255, 255, 252));
    }

    #[test]
    fn a_wrong_boot_network_names_its_field() {
        let mac = "52:54:00:12:34:56";
        for bad in [
            "52:54:00:12:34",
            "52-54-00-12-34-56",
            "52:54:00:12:34:5g",
            "01:00:5e:00:00:01",
            "00:00:00:00:00:00",
        ] {
            assert_eq!(refused(net(bad, "10.0.0.5/24", None, &[])), "boot_network.mac", "{bad}");
        }
        for bad in [
            "10.0.0.5",
            "10.0.0.5/33",
            "10.0.0.5/31",
            "10.0.0.5/4",
            "fd00::5/64",
            "10.0.0.0/24",
            "10.0.0.255/24",
            "127.0.0.1/8",
            "224.0.0.5/24",
            "x/24",
        ] {
            assert_eq!(refused(net(mac, bad, None, &[])), "boot_network.address", "{bad}");
        }
        for bad in ["10.0.1.1", "10.0.0.5", "10.0.0.0", "10.0.0.255", "fd00::1", "nope"] {
            assert_eq!(
                refused(net(mac, "10.0.0.5/24", Some(bad), &[])),
                "boot_network.gateway",
                "{bad}"
            );
        }
        assert_eq!(
            refused(net(mac, "10.0.0.5/24", None, &["1.1.1.1", "bad"])),
            "boot_network.dns[1]"
        );
        assert_eq!(
            refused(net(mac, "10.0.0.5/24", None, &["1.1.1.1", "8.8.8.8", "9.9.9.9"])),
            "boot_network.dns"
        );
    }

    fn pn(
        subnet: &str,
        first: &str,
        last: &str,
        gw: Option<&str>,
        dns: &[&str],
    ) -> ProvisioningNetworkCreate {
        ProvisioningNetworkCreate {
            name: Name::parse("pod1").unwrap(),
            subnet: subnet.into(),
            first: first.into(),
            last: last.into(),
            gateway: gw.map(Into::into),
            dns: dns.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn a_provisioning_network_is_checked_field_by_field() {
        let r = pn("10.0.8.0/22", "10.0.8.10", "10.0.8.14", Some("10.0.8.1"), &["10.0.8.12"])
            .check()
            .unwrap();
        assert_eq!(r.subnet.to_string(), "10.0.8.0/22");
        let drawn: Vec<String> = r.addresses().map(|a| a.to_string()).collect();
        assert_eq!(
            drawn,
            ["10.0.8.10", "10.0.8.11", "10.0.8.13", "10.0.8.14"],
            "the name server skipped"
        );
        let b = r.boot_network("52:54:00:00:00:01", Ipv4Addr::new(10, 0, 9, 1));
        assert_eq!(b.address.as_deref(), Some("10.0.9.1/22"));
        assert_eq!(
            (b.gateway.as_deref(), b.dns.as_slice()),
            (Some("10.0.8.1"), &["10.0.8.12".to_string()][..])
        );
        b.check().unwrap();
        let field =
            |p: ProvisioningNetworkCreate| p.check().unwrap_err().field().unwrap().to_string();
        for (p, f) in [
            (pn("10.0.8.0", "10.0.8.10", "10.0.8.20", None, &[]), "subnet"),
            (pn("10.0.8.0/31", "10.0.8.10", "10.0.8.20", None, &[]), "subnet"),
            (pn("10.0.9.0/22", "10.0.8.10", "10.0.8.20", None, &[]), "subnet"),
            (pn("fd00::/64", "10.0.8.10", "10.0.8.20", None, &[]), "subnet"),
            (pn("10.0.8.0/22", "10.0.8.0", "10.0.8.20", None, &[]), "first"),
            (pn("10.0.8.0/22", "10.0.8.10", "10.0.12.1", None, &[]), "last"),
            (pn("10.0.8.0/22", "10.0.8.10", "10.0.11.255", None, &[]), "last"),
            (pn("10.0.8.0/22", "10.0.8.20", "10.0.8.10", None, &[]), "last"),
            (pn("10.0.8.0/22", "10.0.8.10", "10.0.8.20", Some("10.0.12.1"), &[]), "gateway"),
            (pn("10.0.8.0/22", "10.0.8.10", "10.0.8.20", None, &["x"]), "dns[0]"),
            (
                pn(
                    "10.0.8.0/22",
                    "10.0.8.10",
                    "10.0.8.20",
                    None,
                    &["1.1.1.1", "1.0.0.1", "9.9.9.9"],
                ),
                "dns",
            ),
        ] {
            assert_eq!(field(p.clone()), f, "{p:?}");
        }
    }

    #[test]
    fn subnets_overlap_when_they_share_an_address() {
        let s = |n: &str, p| Subnet { network: n.parse().unwrap(), prefix: p };
        assert!(s("10.0.8.0", 22).overlaps(&s("10.0.9.0", 24)));
        assert!(s("10.0.9.0", 24).overlaps(&s("10.0.8.0", 22)));
        assert!(!s("10.0.8.0", 22).overlaps(&s("10.0.12.0", 24)));
        assert!(s("10.0.8.0", 22).has_host("10.0.11.254".parse().unwrap()));
        assert!(!s("10.0.8.0", 22).has_host("10.0.11.255".parse().unwrap()));
    }
}
