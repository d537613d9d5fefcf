//! nftables steps per filter object, in table `inet neocloud` of the VRF's
//! namespace: one base chain (or a pair) per object, so each is added and
//! removed without touching the others.

use super::{bridge_name, cmd, Command, NFT_TABLE};
use crate::desired::{FloatingIpConfig, NatConfig, PolicyConfig};
use crate::net::{Ipv4Net, PortAllow, PortRange, Protocol};
use std::net::Ipv4Addr;

/// `ip netns exec ns nft <words of rule>`: nft joins its arguments, so a
/// rule is passed as its words.
fn words(ns: &str, rule: &str) -> Command {
    let mut c = cmd(&["ip", "netns", "exec", ns, "nft"]);
    c.extend(rule.split_whitespace().map(str::to_string));
    c
}

/// The VRF namespace's table, created with the VRF.
pub(super) fn create_table(ns: &str) -> Command {
    words(ns, &format!("add table inet {NFT_TABLE}"))
}

/// `nft add chain` with its hook spec as one argument (braces and all).
fn base_chain(ns: &str, chain: &str, spec: &str) -> Command {
    let mut c = cmd(&["ip", "netns", "exec", ns, "nft", "add", "chain", "inet", NFT_TABLE, chain]);
    c.push(format!("{{ {spec} ; }}"));
    c
}

/// Rules first: nft refuses to delete a chain that still has rules.
fn drop_chain(ns: &str, chain: &str) -> Vec<Command> {
    vec![
        words(ns, &format!("flush chain inet {NFT_TABLE} {chain}")),
        words(ns, &format!("delete chain inet {NFT_TABLE} {chain}")),
    ]
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

pub(super) fn add_nat(n: &NatConfig) -> Vec<Command> {
    let ns = n.vrf.as_str();
    let set = prefix_set(&n.sources);
    vec![
        base_chain(ns, "snat", "type nat hook postrouting priority 100"),
        words(
            ns,
            &format!(
                "add rule inet {NFT_TABLE} snat ip saddr {set} ip daddr != {set} snat ip to {}",
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
    drop_chain(&n.vrf, "snat")
}

pub(super) fn remove_floating_ip(f: &FloatingIpConfig) -> Vec<Command> {
    let (inb, outb) = fip_chains(f.public_ip);
    let mut out = drop_chain(&f.vrf, &inb);
    out.extend(drop_chain(&f.vrf, &outb));
    out
}
