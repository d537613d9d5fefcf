//! EOS configuration text as a tree of sections, and what one apply sends
//! in its configure session. Pure.
//!
//! EOS configuration is additive: a line is removed only by its negation
//! (`no ...`, `default interface ...`). The driver owns the top-level
//! sections `neocloud_fabric::render::eos` writes (VLANs, VRFs, the ports
//! it manages, `Loopback0`, SVIs, `Vxlan1`, `router bgp`, single lines like
//! `ip routing vrf X`), so an apply:
//!
//! 1. negates the sections of `actual` that `desired` no longer has, in
//!    reverse rendering order (dependents first: `router bgp` and SVIs
//!    before VRFs and VLANs); a physical port is reset (`default
//!    interface`) and left shut down;
//! 2. rewrites each section of `desired` the switch does not hold as
//!    rendered (a line missing, or a line `actual` had and `desired` does
//!    not): the section is negated and written again, so what is left is
//!    exactly the rendering; inside one session EOS commits only the net
//!    difference (unverified on hardware: whether an unchanged BGP peer in a
//!    rewritten `router bgp` keeps its session);
//! 3. leaves sections that match alone (a re-apply sends nothing).
//!
//! Sections are compared as sets of paths (a line with its headers), so
//! the order EOS prints its running-config in does not matter, and a
//! rendered default (`no shutdown`) is held when the switch shows no
//! `shutdown` (EOS does not print defaults).

use neocloud_fabric::render::eos::render;
use neocloud_fabric::{Error, Object, ObjectId, SwitchConfig};
use std::collections::BTreeSet;

/// A configuration line and the lines indented under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub line: String,
    pub children: Vec<Node>,
}

/// A line with its headers, outermost first.
pub type Path = Vec<String>;

/// Parses EOS configuration text (`show running-config`, a rendering):
/// indentation nests, `!` comments and `end` are dropped, whitespace inside
/// a line is collapsed.
pub fn parse(text: &str) -> Vec<Node> {
    let mut root: Vec<Node> = Vec::new();
    // (indent, index path into the tree) of the open sections.
    let mut open: Vec<(usize, Vec<usize>)> = Vec::new();
    for raw in text.lines() {
        let line = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() || line.starts_with('!') || line == "end" {
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        while open.last().is_some_and(|(i, _)| *i >= indent) {
            open.pop();
        }
        let node = Node { line, children: Vec::new() };
        let mut at = &mut root;
        let mut index = Vec::new();
        if let Some((_, parent)) = open.last() {
            for &i in parent {
                at = &mut at[i].children;
                index.push(i);
            }
        }
        at.push(node);
        index.push(at.len() - 1);
        open.push((indent, index));
    }
    root
}

/// Every line of `nodes` as a path.
pub fn paths(nodes: &[Node]) -> BTreeSet<Path> {
    fn walk(nodes: &[Node], prefix: &mut Path, out: &mut BTreeSet<Path>) {
        for n in nodes {
            prefix.push(n.line.clone());
            out.insert(prefix.clone());
            walk(&n.children, prefix, out);
            prefix.pop();
        }
    }
    let mut out = BTreeSet::new();
    walk(nodes, &mut Vec::new(), &mut out);
    out
}

/// The rendering of `cfg`, parsed.
pub fn rendered(switch: &str, cfg: &SwitchConfig) -> Result<Vec<Node>, Error> {
    Ok(parse(&render(switch, cfg)?))
}

/// The lines one object of `cfg` contributes: the rendering with it minus
/// the rendering without it (the BGP object stays in both, for the RDs).
/// The switch-wide lines (`hostname`, `ip routing`, `service routing
/// protocols model multi-agent`) count as the BGP object's: without them
/// nothing is routed.
pub fn object_paths(switch: &str, cfg: &SwitchConfig, o: &Object) -> Result<BTreeSet<Path>, Error> {
    let mut base = SwitchConfig::new(cfg.os);
    let without = match (o.id(), cfg.get(&ObjectId::Bgp)) {
        (ObjectId::Bgp, _) => BTreeSet::new(),
        (_, Some(b)) => {
            base.insert(b.clone());
            paths(&rendered(switch, &base)?)
        }
        (_, None) => paths(&rendered(switch, &base)?),
    };
    base.insert(o.clone());
    let with = paths(&rendered(switch, &base)?);
    Ok(with.difference(&without).cloned().collect())
}

/// The rendered lines that are EOS defaults, which its running-config does
/// not show.
const DEFAULTS: &[&str] = &["no shutdown"];

/// Whether the switch's lines hold `p` (see the module doc for `no X`).
pub fn holds(device: &BTreeSet<Path>, p: &[String]) -> bool {
    if device.contains(p) {
        return true;
    }
    let Some((last, parents)) = p.split_last() else { return true };
    match last.strip_prefix("no ").filter(|_| DEFAULTS.contains(&last.as_str())) {
        Some(positive) => {
            let mut q = parents.to_vec();
            q.push(positive.to_string());
            !device.contains(&q)
        }
        None => false,
    }
}

fn physical(line: &str) -> bool {
    line.starts_with("interface Ethernet") || line.starts_with("interface Management")
}

/// The command that removes a top-level section (or line).
fn negate(line: &str) -> String {
    if physical(line) {
        format!("default {line}")
    } else if let Some(positive) = line.strip_prefix("no ") {
        positive.to_string()
    } else {
        format!("no {line}")
    }
}

/// Whether a top-level line opens a configuration mode.
fn opens_mode(line: &str) -> bool {
    ["interface ", "vlan ", "vrf instance ", "router bgp "].iter().any(|p| line.starts_with(p))
}

/// A section as commands, with explicit `exit`s (no reliance on EOS
/// leaving a mode implicitly), also after a mode opened with nothing in it
/// (`vrf instance X`).
fn block(n: &Node, top: bool, out: &mut Vec<String>) {
    out.push(n.line.clone());
    for c in &n.children {
        block(c, false, out);
    }
    if !n.children.is_empty() || (top && opens_mode(&n.line)) {
        out.push("exit".into());
    }
}

/// The session's configuration commands taking the switch (`device`) from
/// `actual` to `desired` (empty when it already holds `desired`).
pub fn commands(device: &[Node], actual: &[Node], desired: &[Node]) -> Vec<String> {
    let dev = paths(device);
    let mut out = Vec::new();
    let find = |nodes: &[Node], line: &str| nodes.iter().find(|n| n.line == line).cloned();
    for n in actual.iter().rev() {
        if find(desired, &n.line).is_some() || !dev.contains(&vec![n.line.clone()]) {
            continue;
        }
        out.push(negate(&n.line));
        if physical(&n.line) {
            out.extend([n.line.clone(), "shutdown".into(), "exit".into()]);
        }
    }
    for n in desired {
        let want = paths(std::slice::from_ref(n));
        let was = find(actual, &n.line).map(|a| paths(&[a])).unwrap_or_default();
        let stale = was.difference(&want).any(|p| dev.contains(p));
        if !stale && want.iter().all(|p| holds(&dev, p)) {
            continue;
        }
        if !n.children.is_empty() && dev.contains(&vec![n.line.clone()]) {
            out.push(negate(&n.line));
        }
        block(n, true, &mut out);
    }
    out
}

/// The description line of `interface` on the switch, where there is one.
pub fn description(device: &[Node], interface: &str) -> Option<String> {
    let header = format!("interface {interface}");
    let n = device.iter().find(|n| n.line == header)?;
    n.children.iter().find_map(|c| c.line.strip_prefix("description ").map(String::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::double::lab::Lab;
    use neocloud_fabric::SwitchOs;

    const OS: SwitchOs = SwitchOs::AristaEos;

    #[test]
    fn parses_sections_and_drops_comments() {
        let t = "! Command: show running-config\nhostname a\n!\nrouter bgp 1\n   vlan 10\n      rd 1:10\n   !\n   router-id  1.1.1.1\n!\nend\n";
        let n = parse(t);
        assert_eq!(n.len(), 2);
        assert_eq!(n[1].line, "router bgp 1");
        assert_eq!(n[1].children[0].children[0].line, "rd 1:10");
        assert_eq!(n[1].children[1].line, "router-id 1.1.1.1");
        assert!(paths(&n).contains(&vec![
            "router bgp 1".into(),
            "vlan 10".into(),
            "rd 1:10".into()
        ]));
    }

    #[test]
    fn no_lines_are_held_by_absence() {
        let dev = paths(&parse("interface Ethernet2\n   description x\n"));
        let p = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(holds(&dev, &p(&["interface Ethernet2", "no shutdown"])));
        // `no switchport` is not a default: EOS shows it.
        assert!(!holds(&dev, &p(&["interface Ethernet2", "no switchport"])));
        let shut = paths(&parse("interface Ethernet2\n   shutdown\n"));
        assert!(!holds(&shut, &p(&["interface Ethernet2", "no shutdown"])));
    }

    #[test]
    fn from_empty_writes_every_section_with_exits() {
        let cfg = Lab::new(OS).plan("leaf1");
        let want = rendered("leaf1", &cfg).unwrap();
        let cmds = commands(&[], &[], &want);
        assert_eq!(cmds[0], "hostname leaf1");
        let i = cmds.iter().position(|c| c == "interface Ethernet2").unwrap();
        assert_eq!(
            cmds[i..i + 5],
            [
                "interface Ethernet2",
                "description node a1 nic eth0",
                "switchport access vlan 12",
                "no shutdown",
                "exit"
            ]
        );
        assert_eq!(cmds.last().unwrap(), "exit", "router bgp closes last");
        // Applying them to nothing gives the rendering back, and then
        // nothing is left to send.
        assert!(commands(&want, &want, &want).is_empty());
    }

    #[test]
    fn a_removed_network_negates_its_sections_and_rewrites_bgp() {
        let mut lab = Lab::new(OS);
        let before = rendered("leaf1", &lab.plan("leaf1")).unwrap();
        lab.remove_network("net-b");
        let after = rendered("leaf1", &lab.plan("leaf1")).unwrap();
        let cmds = commands(&before, &before, &after);
        // VLANs 10 and 11 are the VRFs' RD indexes; the segments are 12 and 13.
        for c in [
            "no ip routing vrf Vrf5001",
            "no interface Vlan13",
            "no vrf instance Vrf5001",
            "no vlan 13",
        ] {
            assert!(cmds.contains(&c.to_string()), "{c} in {cmds:?}");
        }
        let pos = |c: &str| cmds.iter().position(|x| x == c).unwrap();
        assert!(pos("no interface Vlan13") < pos("no vrf instance Vrf5001"), "dependents first");
        // Sections that changed inside are rewritten whole.
        assert!(pos("no router bgp 65101") < pos("router bgp 65101"));
        assert!(pos("default interface Ethernet3") < pos("interface Ethernet3"));
        assert!(
            !cmds.contains(&"interface Ethernet2".to_string()),
            "an unchanged port is left alone"
        );
    }

    #[test]
    fn object_paths_attribute_lines_to_their_object() {
        let cfg = Lab::new(OS).plan("leaf1");
        let seg = cfg.get(&ObjectId::Segment(100)).unwrap();
        let p = object_paths("leaf1", &cfg, seg).unwrap();
        let has = |s: &[&str]| p.contains(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert!(has(&["vlan 12", "name vni100"]));
        assert!(has(&["interface Vxlan1", "vxlan vlan 12 vni 100"]));
        assert!(has(&["router bgp 65101", "vlan 12", "rd 10.0.0.1:12"]));
        assert!(!has(&["router bgp 65101", "router-id 10.0.0.1"]), "BGP's own lines are BGP's");
        assert!(!has(&["ip routing"]));
        let bgp = object_paths("leaf1", &cfg, cfg.get(&ObjectId::Bgp).unwrap()).unwrap();
        assert!(bgp.contains(&vec!["ip routing".to_string()]), "switch-wide lines are BGP's");
        assert!(
            bgp.contains(&vec!["router bgp 65101".to_string(), "router-id 10.0.0.1".to_string()])
        );
    }
}
