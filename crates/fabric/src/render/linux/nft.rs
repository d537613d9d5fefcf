//! nftables steps per filter object, in table `inet neocloud` of the VRF's
//! namespace (the uplink's and the public links' filters: of the switch's
//! own namespace): one base chain (or a pair) per object, so each is added
//! and removed without touching the others.

use super::{bridge_name, cmd, public_link_underlay, public_link_vrf, Command, NFT_TABLE};
use crate::desired::{FloatingIpConfig, NatConfig, PolicyConfig, PublicLinkConfig, UplinkConfig};
use crate::net::{Ipv4Net, PortAllow, PortRange, Protocol};
use std::net::Ipv4Addr;

/// `nft`, in namespace `ns` (`ip netns exec ns nft`) or in the switch's own.
fn nft(ns: Option<&str>) -> Command {
    match ns {
        Some(ns) => cmd(&["ip", "netns", "exec", ns, "nft"]),
        None => cmd(&["nft"]),
    }
}

/// `[ip netns exec ns] nft <words of rule>`: nft joins its arguments, so a
/// rule is passed as its words.
fn words_in(ns: Option<&str>, rule: &str) -> Command {
    let mut c = nft(ns);
    c.extend(rule.split_whitespace().map(str::to_string));
    c
}

fn words(ns: &str, rule: &str) -> Command {
    words_in(Some(ns), rule)
}

/// The namespace's table: a VRF's, created with the VRF; the switch's own,
/// created with the uplink.
pub(super) fn create_table(ns: Option<&str>) -> Command {
    words_in(ns, &format!("add table inet {NFT_TABLE}"))
}

/// `nft add chain` with its hook spec as one argument (braces and all).
fn base_chain_in(ns: Option<&str>, chain: &str, spec: &str) -> Command {
    let mut c = nft(ns);
    c.extend(["add", "chain", "inet", NFT_TABLE, chain].map(str::to_string));
    c.push(format!("{{ {spec} ; }}"));
    c
}

fn base_chain(ns: &str, chain: &str, spec: &str) -> Command {
    base_chain_in(Some(ns), chain, spec)
}

/// Rules first: nft refuses to delete a chain that still has rules.
fn drop_chain_in(ns: Option<&str>, chain: &str) -> Vec<Command> {
    vec![
        words_in(ns, &format!("flush chain inet {NFT_TABLE} {chain}")),
        words_in(ns, &format!("delete chain inet {NFT_TABLE} {chain}")),
    ]
}

fn drop_chain(ns: &str, chain: &str) -> Vec<Command> {
    drop_chain_in(Some(ns), chain)
}

fn policy_chain(vni: u32) -> String {
    format!("to-{vni}")
}

/// The nft match for a protocol/ports pair ("" for any protocol).
fn l4_match(protocol: Protocol, ports: Option<PortRange>) -> String {
    match (protocol, ports) {
        (Protocol::Tcp | Protocol::Udp, Some(p)) => format!("{} dport {p}", protocol.as_str()),
        (Protocol::Tcp | Protocol::Udp | Protocol::Icmp, None) => {
            format!("meta l4proto {}", protocol.as_str())
        }
        // Validation refuses ports on ICMP; ignore them if present.
        (Protocol::Icmp, Some(_)) => "meta l4proto icmp".to_string(),
        (Protocol::Any, Some(_) | None) => String::new(),
    }
}

pub(super) fn add_policy(p: &PolicyConfig) -> Vec<Command> {
    let (ns, chain, br) = (p.vrf.as_str(), policy_chain(p.vni), bridge_name(p.vni));
    let rule = |expr: String| {
        words(ns, &format!("add rule inet {NFT_TABLE} {chain} oifname \"{br}\" {expr}"))
    };
    let mut out = vec![
        base_chain(ns, &chain, "type filter hook forward priority 0 ; policy accept"),
        rule("ct state established,related accept".to_string()),
    ];
    for a in &p.allow {
        out.push(rule(format!("ip saddr {} {} accept", a.from, l4_match(a.protocol, a.ports))));
    }
    for d in &p.deny_from {
        out.push(rule(format!("ip saddr {d} drop")));
    }
    out
}

fn prefix_set(prefixes: &[Ipv4Net]) -> String {
    let items: Vec<String> = prefixes.iter().map(|p| p.to_string()).collect();
    format!("{{ {} }}", items.join(", "))
}

/// The NAT gateway's chain (not `snat`: that is an nft keyword, refused as
/// a chain name).
const NAT_CHAIN: &str = "nat-egress";

pub(super) fn add_nat(n: &NatConfig) -> Vec<Command> {
    let ns = n.vrf.as_str();
    let set = prefix_set(&n.sources);
    vec![
        base_chain(ns, NAT_CHAIN, "type nat hook postrouting priority 100"),
        words(
            ns,
            &format!(
                "add rule inet {NFT_TABLE} {NAT_CHAIN} ip saddr {set} ip daddr != {set} snat ip to {}",
                n.public_ip
            ),
        ),
    ]
}

/// The inbound (DNAT) and outbound (SNAT) chains of a floating IP.
fn fip_chains(public: Ipv4Addr) -> (String, String) {
    let key = public.to_string().replace('.', "-");
    (format!("fip-in-{key}"), format!("fip-out-{key}"))
}

pub(super) fn add_floating_ip(f: &FloatingIpConfig) -> Vec<Command> {
    let ns = f.vrf.as_str();
    let (inb, outb) = fip_chains(f.public_ip);
    let mut out = vec![base_chain(ns, &inb, "type nat hook prerouting priority -100")];
    for PortAllow { protocol, ports } in &f.allow {
        out.push(words(
            ns,
            &format!(
                "add rule inet {NFT_TABLE} {inb} ip daddr {} {} dnat ip to {}",
                f.public_ip,
                l4_match(*protocol, *ports),
                f.private_ip
            ),
        ));
    }
    // Priority 90: before the VPC's NAT gateway chain (100), so the
    // attachment's egress leaves from its own floating address.
    out.push(base_chain(ns, &outb, "type nat hook postrouting priority 90"));
    out.push(words(
        ns,
        &format!(
            "add rule inet {NFT_TABLE} {outb} ip saddr {} snat ip to {}",
            f.private_ip, f.public_ip
        ),
    ));
    out
}

pub(super) fn remove_policy(p: &PolicyConfig) -> Vec<Command> {
    drop_chain(&p.vrf, &policy_chain(p.vni))
}

pub(super) fn remove_nat(n: &NatConfig) -> Vec<Command> {
    drop_chain(&n.vrf, NAT_CHAIN)
}

pub(super) fn remove_floating_ip(f: &FloatingIpConfig) -> Vec<Command> {
    let (inb, outb) = fip_chains(f.public_ip);
    let mut out = drop_chain(&f.vrf, &inb);
    out.extend(drop_chain(&f.vrf, &outb));
    out
}

/// The set of the public links' underlay ends, in the switch's own table.
const PUBLIC_LINKS_SET: &str = "public-links";

/// A filter chain (forward hook, accepting what its rules do not drop).
const FORWARD: &str = "type filter hook forward priority 0 ; policy accept";

/// The uplink's filters, in the switch's own namespace: the uplink and the
/// public links forward only to each other (the fabric underlay never
/// reaches the outside nor the outside the underlay, and IPv6 crosses
/// neither way), and the switch itself accepts from the uplink only replies
/// and pings to the uplink address, from a public link nothing.
pub(super) fn add_uplink(u: &UplinkConfig) -> Vec<Command> {
    let p = format!("\"{}\"", u.port);
    let set = format!("@{PUBLIC_LINKS_SET}");
    let rule = |chain: &str, expr: String| {
        words_in(None, &format!("add rule inet {NFT_TABLE} {chain} {expr}"))
    };
    let mut set_cmd = nft(None);
    set_cmd.extend(["add", "set", "inet", NFT_TABLE, PUBLIC_LINKS_SET].map(str::to_string));
    set_cmd.push("{ type ifname ; }".to_string());
    vec![
        create_table(None),
        set_cmd,
        base_chain_in(None, "uplink-in", "type filter hook input priority 0 ; policy accept"),
        rule("uplink-in", format!("iifname {p} ct state established,related accept")),
        rule(
            "uplink-in",
            format!("iifname {p} ip daddr {} icmp type echo-request accept", u.address.addr()),
        ),
        rule("uplink-in", format!("iifname {p} drop")),
        rule("uplink-in", format!("iifname {set} drop")),
        base_chain_in(None, "uplink-fwd", FORWARD),
        rule("uplink-fwd", format!("iifname {p} oifname != {set} drop")),
        rule("uplink-fwd", format!("oifname {p} iifname != {set} drop")),
        rule("uplink-fwd", format!("iifname {set} oifname != {p} drop")),
        rule("uplink-fwd", format!("oifname {set} iifname != {p} drop")),
        rule("uplink-fwd", format!("iifname {set} meta nfproto != ipv4 drop")),
        rule("uplink-fwd", format!("oifname {set} meta nfproto != ipv4 drop")),
    ]
}

/// The switch's own table goes with the uplink (the public links' chains
/// and set elements are removed before it).
pub(super) fn remove_uplink() -> Vec<Command> {
    vec![words_in(None, &format!("delete table inet {NFT_TABLE}"))]
}

fn public_chain(l: &PublicLinkConfig) -> String {
    format!("public-{}", l.l3_vni)
}

/// The VRF's chain for what comes in through its public link.
const PUBLIC_IN: &str = "public-in";

/// The rules of a public link's underlay chain: only the VPC's public
/// addresses go to the VRF, and only they come out of it.
fn public_rules(l: &PublicLinkConfig) -> Vec<Command> {
    let (chain, dev) = (public_chain(l), format!("\"{}\"", public_link_underlay(l.l3_vni)));
    let rule = |expr: String| words_in(None, &format!("add rule inet {NFT_TABLE} {chain} {expr}"));
    if l.public.is_empty() {
        return vec![rule(format!("oifname {dev} drop")), rule(format!("iifname {dev} drop"))];
    }
    let items: Vec<String> = l.public.iter().map(Ipv4Addr::to_string).collect();
    let set = format!("{{ {} }}", items.join(", "));
    vec![
        rule(format!("oifname {dev} ip daddr != {set} drop")),
        rule(format!("iifname {dev} ip saddr != {set} drop")),
    ]
}

/// A public link's filters: its underlay end joins the uplink's set, its
/// own chain pins the VPC's public addresses, and in the VRF only replies
/// and translated (floating IP) connections come in from it.
pub(super) fn add_public_link(l: &PublicLinkConfig) -> Vec<Command> {
    let ns = l.vrf.as_str();
    let ext = format!("\"{}\"", public_link_vrf(l.l3_vni));
    let mut out = vec![words_in(
        None,
        &format!(
            "add element inet {NFT_TABLE} {PUBLIC_LINKS_SET} {{ \"{}\" }}",
            public_link_underlay(l.l3_vni)
        ),
    )];
    out.push(base_chain_in(None, &public_chain(l), FORWARD));
    out.extend(public_rules(l));
    let rule = |expr: String| words(ns, &format!("add rule inet {NFT_TABLE} {PUBLIC_IN} {expr}"));
    out.push(base_chain(ns, PUBLIC_IN, FORWARD));
    out.push(rule(format!("iifname {ext} ct state established,related accept")));
    out.push(rule(format!("iifname {ext} ct status dnat accept")));
    out.push(rule(format!("iifname {ext} drop")));
    out
}

pub(super) fn remove_public_link(l: &PublicLinkConfig) -> Vec<Command> {
    let mut out = drop_chain(&l.vrf, PUBLIC_IN);
    out.extend(drop_chain_in(None, &public_chain(l)));
    out.push(words_in(
        None,
        &format!(
            "delete element inet {NFT_TABLE} {PUBLIC_LINKS_SET} {{ \"{}\" }}",
            public_link_underlay(l.l3_vni)
        ),
    ));
    out
}

/// The public addresses changed: the underlay chain's rules anew.
pub(super) fn public_link_in_place(l: &PublicLinkConfig) -> Vec<Command> {
    let mut out =
        vec![words_in(None, &format!("flush chain inet {NFT_TABLE} {}", public_chain(l)))];
    out.extend(public_rules(l));
    out
}
