//! Small value types shared by the model, the planner and the renderers:
//! IPv4 prefixes, route targets, protocols and port ranges.
//!
//! IPv4 only in this slice: tenant IPv6 (and dual-stack gateways) is a later
//! addition to `Network`, not a different model.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 address with a prefix length, written `10.1.0.0/24`.
///
/// Used both for prefixes (host bits zero: see `is_canonical`) and for
/// interface addresses (a gateway `10.1.0.1/24`), so the type itself does not
/// insist on zero host bits; validation does where a prefix is meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// `None` when `prefix` > 32.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Net> {
        (prefix <= 32).then_some(Ipv4Net { addr, prefix })
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        match self.prefix {
            0 => 0,
            p => u32::MAX << (32 - u32::from(p)),
        }
    }

    /// The first address (host bits zero).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The last address (host bits one).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// Host bits are zero: the value names a prefix, not an interface.
    pub fn is_canonical(&self) -> bool {
        self.addr == self.network()
    }

    /// The prefix this value lies in (host bits cleared).
    pub fn trunc(&self) -> Ipv4Net {
        Ipv4Net { addr: self.network(), prefix: self.prefix }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }

    /// Usable host addresses as a `u32` range: the network and broadcast
    /// addresses are excluded for prefixes up to /30; /31 and /32 use all.
    pub fn host_range(&self) -> (u32, u32) {
        let (first, last) = (u32::from(self.network()), u32::from(self.broadcast()));
        match self.prefix {
            0..=30 => (first + 1, last - 1),
            31..=u8::MAX => (first, last),
        }
    }

    /// `ip` is a usable host address of this prefix.
    pub fn is_host(&self, ip: Ipv4Addr) -> bool {
        let (first, last) = self.host_range();
        (first..=last).contains(&u32::from(ip))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = String;

    fn from_str(s: &str) -> Result<Ipv4Net, String> {
        let (addr, prefix) =
            s.split_once('/').ok_or_else(|| format!("{s:?}: expected a.b.c.d/len"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| format!("{s:?}: bad IPv4 address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| format!("{s:?}: bad prefix length"))?;
        Ipv4Net::new(addr, prefix).ok_or_else(|| format!("{s:?}: prefix length over 32"))
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ipv4Net, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A BGP route target `ASN:value` (type 0: 2-byte ASN, 4-byte value, so any
/// 24-bit VNI fits). The fabric derives it as `route_target_asn:VNI` and
/// records it in the ledger so a later change of the scheme never moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteTarget {
    pub asn: u16,
    pub value: u32,
}

impl fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.asn, self.value)
    }
}

impl FromStr for RouteTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<RouteTarget, String> {
        let (asn, value) = s.split_once(':').ok_or_else(|| format!("{s:?}: expected asn:value"))?;
        Ok(RouteTarget {
            asn: asn.parse().map_err(|_| format!("{s:?}: ASN must be 1-65535"))?,
            value: value.parse().map_err(|_| format!("{s:?}: bad value"))?,
        })
    }
}

impl Serialize for RouteTarget {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RouteTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RouteTarget, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The L4 protocol a rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    /// Every protocol (ports must be absent).
    Any,
}

impl Protocol {
    /// Whether the protocol has ports a rule may name.
    pub fn has_ports(self) -> bool {
        match self {
            Protocol::Tcp | Protocol::Udp => true,
            Protocol::Icmp | Protocol::Any => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::Any => "any",
        }
    }
}

/// An inclusive range of TCP/UDP ports; one port is `first == last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.first == self.last {
            true => write!(f, "{}", self.first),
            false => write!(f, "{}-{}", self.first, self.last),
        }
    }
}

/// What a floating IP lets in (and, inside a VPC, what a rule allows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortAllow {
    pub protocol: Protocol,
    /// Only for TCP and UDP; absent means every port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<PortRange>,
}

/// A unicast MAC written `aa:bb:cc:dd:ee:ff` (lowercase hex).
pub fn is_unicast_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts.iter().all(|p| {
            p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        && u8::from_str_radix(parts[0], 16).is_ok_and(|b| b & 1 == 0)
}
