//! Drift: where a switch differs from the objects it was given. Pure: the
//! driver gathers the observations, these functions compare.
//!
//! Linux: each object's devices where the renderer puts them (VRF
//! namespaces; bridge + VXLAN pairs with their VNI, local address, port and
//! master; gateway address and MAC; access ports with their master, state
//! and isolation; the loopback address), and its nftables chains (names,
//! hooks and rule counts as the renderer writes them). FRR: the files on
//! the switch against the rendered ones, line by line within their
//! contexts, each difference charged to the object that owns the context
//! (`vrf X` and `router bgp N vrf X` to VRF X, `vni N` under the EVPN
//! address family to segment N, the rest to BGP).

use super::observe::{Chain, Link};
use neocloud_fabric::render::linux::{
    self, bridge_name, public_link_underlay, public_link_vrf, vxlan_name, NFT_TABLE,
};
use neocloud_fabric::{
    Object, ObjectId, PortMode, SegmentPurpose, SwitchConfig, PUBLIC_LINK_UNDERLAY, PUBLIC_LINK_VRF,
};
use std::collections::{BTreeMap, BTreeSet};

/// What was read from the switch's Linux side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Observed {
    /// The switch's own namespace.
    pub underlay: BTreeMap<String, Link>,
    /// The chains of its table `inet neocloud` (a border's uplink and
    /// public links); `None`: no such table, or not read (no expected
    /// object has chains there).
    pub underlay_nft: Option<BTreeMap<String, Chain>>,
    /// Per VRF namespace named by the expected objects; `None`: no such
    /// namespace.
    pub vrfs: BTreeMap<String, Option<VrfNs>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct VrfNs {
    pub links: BTreeMap<String, Link>,
    /// The chains of table `inet neocloud`; `None`: no such table.
    pub nft: Option<BTreeMap<String, Chain>>,
}

/// Differences per object, in object order.
pub(crate) type Found = BTreeMap<ObjectId, Vec<String>>;

/// The VRF namespaces the objects of `cfg` live in.
pub(crate) fn vrf_namespaces(cfg: &SwitchConfig) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for o in cfg.objects.values() {
        let ns = match o {
            Object::Vrf(v) => Some(&v.name),
            Object::Segment(s) => match &s.purpose {
                SegmentPurpose::Tenant { vrf, .. } => Some(vrf),
                SegmentPurpose::Provisioning => None,
            },
            Object::Port(p) => match &p.mode {
                PortMode::Tenant { vrf, .. } => Some(vrf),
                PortMode::Provisioning { .. } | PortMode::Disabled => None,
            },
            Object::Policy(p) => Some(&p.vrf),
            Object::Nat(n) => Some(&n.vrf),
            Object::FloatingIp(f) => Some(&f.vrf),
            Object::PublicLink(l) => Some(&l.vrf),
            _ => None,
        };
        out.extend(ns.cloned());
    }
    out
}

/// Where an object's devices live: a namespace's devices, or why they
/// cannot be looked at.
struct Place<'a> {
    label: String,
    links: Result<&'a BTreeMap<String, Link>, String>,
}

fn place<'a>(observed: &'a Observed, vrf: Option<&str>) -> Place<'a> {
    match vrf {
        None => Place { label: "the switch's namespace".into(), links: Ok(&observed.underlay) },
        Some(v) => Place {
            label: format!("namespace {v}"),
            links: match observed.vrfs.get(v) {
                Some(Some(ns)) => Ok(&ns.links),
                Some(None) | None => Err(format!("namespace {v} is missing")),
            },
        },
    }
}

/// Where a device is, when not where expected (for the message).
fn found_elsewhere(observed: &Observed, dev: &str) -> Option<String> {
    if observed.underlay.contains_key(dev) {
        return Some("the switch's namespace".into());
    }
    observed
        .vrfs
        .iter()
        .find(|(_, ns)| ns.as_ref().is_some_and(|ns| ns.links.contains_key(dev)))
        .map(|(v, _)| format!("namespace {v}"))
}

fn missing(observed: &Observed, p: &Place<'_>, dev: &str) -> String {
    match found_elsewhere(observed, dev) {
        Some(there) => format!("{dev} is in {there}, not in {}", p.label),
        None => format!("{dev} is missing from {}", p.label),
    }
}

/// A bridge + VXLAN pair for `vni`.
#[allow(clippy::too_many_arguments)]
fn check_pair(
    out: &mut Vec<String>,
    observed: &Observed,
    p: &Place<'_>,
    vni: u32,
    vtep: Option<(String, u16)>,
) {
    let links = match &p.links {
        Ok(l) => *l,
        Err(e) => return out.push(e.clone()),
    };
    let (br, vx) = (bridge_name(vni), vxlan_name(vni));
    match links.get(&br) {
        None => out.push(missing(observed, p, &br)),
        Some(l) => {
            if l.kind.as_deref() != Some("bridge") {
                out.push(format!(
                    "{br} is not a bridge ({})",
                    l.kind.as_deref().unwrap_or("plain")
                ));
            }
            if !l.up {
                out.push(format!("{br} is down"));
            }
        }
    }
    match links.get(&vx) {
        None => out.push(missing(observed, p, &vx)),
        Some(l) => match &l.vxlan {
            None => out.push(format!("{vx} is not a VXLAN device")),
            Some(x) => {
                if x.id != vni {
                    out.push(format!("{vx} carries VNI {}, not {vni}", x.id));
                }
                if let Some((local, port)) = &vtep {
                    if x.local.as_deref() != Some(local.as_str()) {
                        out.push(format!(
                            "{vx} has local address {}, not {local}",
                            x.local.as_deref().unwrap_or("none")
                        ));
                    }
                    if x.port != Some(*port) {
                        out.push(format!("{vx} uses UDP port {:?}, not {port}", x.port));
                    }
                }
                if l.master.as_deref() != Some(br.as_str()) {
                    out.push(format!(
                        "{vx} is attached to {}, not {br}",
                        l.master.as_deref().unwrap_or("no bridge")
                    ));
                }
                if !l.up {
                    out.push(format!("{vx} is down"));
                }
            }
        },
    }
}

/// A chain by namespace (`None`: the switch's own) and name.
type ChainKey = (Option<String>, String);

/// The nftables chains (hook, rule count) the renderer writes for `o`,
/// read from its own steps.
fn rendered_chains(switch: &str, cfg: &SwitchConfig, o: &Object) -> BTreeMap<ChainKey, Chain> {
    let mut one = SwitchConfig::new(cfg.os);
    // Additions of VXLAN devices need the VTEP; it adds no chain.
    if let Some(v) = cfg.get(&ObjectId::Vtep) {
        one.insert(v.clone());
    }
    one.insert(o.clone());
    let mut out: BTreeMap<ChainKey, Chain> = BTreeMap::new();
    for c in linux::render(switch, &one).unwrap_or_default() {
        let a: Vec<&str> = c.iter().map(String::as_str).collect();
        let (ns, words) = match a.as_slice() {
            ["ip", "netns", "exec", ns, "nft", rest @ ..] => (Some(ns.to_string()), rest),
            ["nft", rest @ ..] => (None, rest),
            _ => continue,
        };
        match words {
            ["add", "chain", "inet", t, name, spec @ ..] if *t == NFT_TABLE => {
                let spec = spec.join(" ");
                let hook = spec.split_whitespace().skip_while(|w| *w != "hook").nth(1);
                let e = out.entry((ns, name.to_string())).or_default();
                e.name = name.to_string();
                e.hook = hook.map(str::to_string);
            }
            ["add", "rule", "inet", t, name, ..] if *t == NFT_TABLE => {
                out.entry((ns, name.to_string())).or_default().rules += 1;
            }
            _ => {}
        }
    }
    out
}

/// Whether any object of `cfg` has chains in the switch's own namespace.
pub(crate) fn needs_underlay_nft(switch: &str, cfg: &SwitchConfig) -> bool {
    cfg.objects.values().any(|o| rendered_chains(switch, cfg, o).keys().any(|(ns, _)| ns.is_none()))
}

fn check_chains(out: &mut Vec<String>, observed: &Observed, want: &BTreeMap<ChainKey, Chain>) {
    for ((ns, name), w) in want {
        let (have, place) = match ns {
            None => (observed.underlay_nft.as_ref(), "the switch's namespace".to_string()),
            Some(v) => match observed.vrfs.get(v) {
                Some(Some(vrf)) => (vrf.nft.as_ref(), format!("namespace {v}")),
                Some(None) | None => {
                    out.push(format!("namespace {v} is missing"));
                    continue;
                }
            },
        };
        let Some(have) = have else {
            out.push(format!("table inet {NFT_TABLE} is missing from {place}"));
            continue;
        };
        match have.get(name) {
            None => out.push(format!("chain {name} is missing")),
            Some(h) => {
                if h.hook != w.hook {
                    out.push(format!(
                        "chain {name} hooks {}, not {}",
                        h.hook.as_deref().unwrap_or("nothing"),
                        w.hook.as_deref().unwrap_or("nothing")
                    ));
                }
                if h.rules != w.rules {
                    out.push(format!("chain {name} has {} rules, not {}", h.rules, w.rules));
                }
            }
        }
    }
    out.dedup();
}

/// A device that must exist in `p`, be up and hold `addr`.
fn check_dev(out: &mut Vec<String>, observed: &Observed, p: &Place<'_>, dev: &str, addr: &str) {
    let links = match &p.links {
        Ok(l) => *l,
        Err(e) => return out.push(e.clone()),
    };
    match links.get(dev) {
        None => out.push(missing(observed, p, dev)),
        Some(l) => {
            if !l.up {
                out.push(format!("{dev} is down"));
            }
            if !l.addrs.iter().any(|a| a == addr) {
                out.push(format!("{dev} lacks {addr}"));
            }
        }
    }
}

/// Where the Linux side differs from `expected`, per object.
pub(crate) fn linux_drift(switch: &str, expected: &SwitchConfig, observed: &Observed) -> Found {
    let vtep = expected.vtep().map(|v| (v.source.to_string(), v.udp_port));
    let mut found = Found::new();
    for (id, o) in &expected.objects {
        let mut out = Vec::new();
        match o {
            Object::Bgp(b) => {
                let want = format!("{}/32", b.router_id);
                match observed.underlay.get("lo") {
                    Some(lo) if lo.addrs.contains(&want) => {}
                    Some(_) | None => out.push(format!("lo lacks {want}")),
                }
            }
            Object::Vrf(v) => {
                let p = place(observed, Some(&v.name));
                if p.links.is_ok() {
                    check_pair(&mut out, observed, &p, v.l3_vni, vtep.clone());
                    if let Some(Some(VrfNs { nft: None, .. })) = observed.vrfs.get(&v.name) {
                        out.push(format!("table inet {NFT_TABLE} is missing"));
                    }
                } else {
                    out.push(format!("namespace {} is missing", v.name));
                }
            }
            Object::Segment(s) => {
                let vrf = match &s.purpose {
                    SegmentPurpose::Tenant { vrf, .. } => Some(vrf.as_str()),
                    SegmentPurpose::Provisioning => None,
                };
                let p = place(observed, vrf);
                check_pair(&mut out, observed, &p, s.vni, vtep.clone());
                if let (SegmentPurpose::Tenant { gateway, gateway_mac, .. }, Ok(links)) =
                    (&s.purpose, &p.links)
                {
                    let br = bridge_name(s.vni);
                    if let Some(l) = links.get(&br) {
                        let gw = gateway.to_string();
                        if !l.addrs.contains(&gw) {
                            out.push(format!("{br} lacks the gateway address {gw}"));
                        }
                        let mac_ok =
                            l.mac.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(gateway_mac));
                        if !mac_ok {
                            out.push(format!(
                                "{br} has MAC {}, not the gateway MAC {gateway_mac}",
                                l.mac.as_deref().unwrap_or("none")
                            ));
                        }
                    }
                }
            }
            Object::Port(port) => {
                let (vrf, master, isolated) = match &port.mode {
                    PortMode::Tenant { vni, vrf, .. } => (Some(vrf.as_str()), Some(*vni), None),
                    PortMode::Provisioning { vni, isolated, .. } => {
                        (None, Some(*vni), Some(*isolated))
                    }
                    PortMode::Disabled => (None, None, None),
                };
                let p = place(observed, vrf);
                match &p.links {
                    Err(e) => out.push(e.clone()),
                    Ok(links) => match links.get(&port.port) {
                        None => out.push(missing(observed, &p, &port.port)),
                        Some(l) => {
                            let want = master.map(bridge_name);
                            if l.master != want {
                                out.push(format!(
                                    "{} is attached to {}, not {}",
                                    port.port,
                                    l.master.as_deref().unwrap_or("no bridge"),
                                    want.as_deref().unwrap_or("no bridge")
                                ));
                            }
                            if l.up != master.is_some() {
                                out.push(format!(
                                    "{} is {}",
                                    port.port,
                                    if l.up { "up, not disabled" } else { "down" }
                                ));
                            }
                            if let (Some(want), true) = (isolated, l.master.is_some()) {
                                if l.isolated != Some(want) {
                                    out.push(format!(
                                        "{} is {}isolated",
                                        port.port,
                                        if want { "not " } else { "" }
                                    ));
                                }
                            }
                        }
                    },
                }
            }
            Object::Uplink(u) => {
                let p = place(observed, None);
                check_dev(&mut out, observed, &p, &u.port, &u.address.to_string());
            }
            Object::PublicLink(l) => {
                let under = place(observed, None);
                let (up, ext) = (public_link_underlay(l.l3_vni), public_link_vrf(l.l3_vni));
                check_dev(&mut out, observed, &under, &up, &format!("{PUBLIC_LINK_UNDERLAY}/32"));
                let vrf = place(observed, Some(&l.vrf));
                check_dev(&mut out, observed, &vrf, &ext, &format!("{PUBLIC_LINK_VRF}/32"));
            }
            // The VTEP is the loopback address (checked with BGP) and the
            // VXLAN devices' local address (checked with each pair);
            // filters have only chains (below).
            _ => {}
        }
        check_chains(&mut out, observed, &rendered_chains(switch, expected, o));
        out.dedup();
        if !out.is_empty() {
            found.insert(id.clone(), out);
        }
    }
    found
}

/// One configuration line with the context lines it sits in.
type Keyed = Vec<String>;

/// The lines of an FRR configuration file, each with its contexts
/// (`router bgp 65101` > `address-family l2vpn evpn` > `vni 100` > the
/// line), found by indentation. Comments, `!` and the `exit...` lines that
/// close contexts are not configuration.
pub(crate) fn frr_lines(text: &str) -> BTreeSet<Keyed> {
    let mut out = BTreeSet::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim_end();
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('!') || body.starts_with('#') {
            continue;
        }
        let indent = line.len() - body.len();
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        if body == "exit" || body.starts_with("exit-") || body == "end" {
            continue;
        }
        let mut key: Keyed = stack.iter().map(|(_, l)| l.clone()).collect();
        key.push(body.to_string());
        out.insert(key);
        stack.push((indent, body.to_string()));
    }
    out
}

/// The object that owns a configuration line.
fn owner(key: &Keyed) -> ObjectId {
    let words: Vec<Vec<&str>> = key.iter().map(|l| l.split_whitespace().collect()).collect();
    match words.first().map(Vec::as_slice) {
        Some(["vrf", name]) => return ObjectId::Vrf(name.to_string()),
        Some(["router", "bgp", _, "vrf", name]) => return ObjectId::Vrf(name.to_string()),
        _ => {}
    }
    for (i, w) in words.iter().enumerate().skip(1) {
        if let (["vni", n], Some(["address-family", "l2vpn", "evpn"])) =
            (w.as_slice(), words.get(i - 1).map(Vec::as_slice))
        {
            if let Ok(n) = n.parse() {
                return ObjectId::Segment(n);
            }
        }
    }
    ObjectId::Bgp
}

/// How many differing lines a message names before it says "and N more".
const SHOWN: usize = 3;

/// Where an FRR file on the switch (`None`: absent) differs from the
/// rendered one, per owning object.
pub(crate) fn frr_drift(file: &str, rendered: &str, device: Option<&str>) -> Found {
    let mut found = Found::new();
    let Some(device) = device else {
        found.insert(ObjectId::Bgp, vec![format!("{file} is missing")]);
        return found;
    };
    let (want, have) = (frr_lines(rendered), frr_lines(device));
    let mut per: BTreeMap<ObjectId, (Vec<&Keyed>, Vec<&Keyed>)> = BTreeMap::new();
    for k in want.difference(&have) {
        per.entry(owner(k)).or_default().0.push(k);
    }
    for k in have.difference(&want) {
        per.entry(owner(k)).or_default().1.push(k);
    }
    let show = |what: &str, keys: &[&Keyed]| {
        let mut s: Vec<String> =
            keys.iter().take(SHOWN).map(|k| format!("`{}`", k.join(" > "))).collect();
        if keys.len() > SHOWN {
            s.push(format!("and {} more", keys.len() - SHOWN));
        }
        format!("{file} {what} {}", s.join(", "))
    };
    for (id, (lacks, extra)) in per {
        let mut out = Vec::new();
        if !lacks.is_empty() {
            out.push(show("lacks", &lacks));
        }
        if !extra.is_empty() {
            out.push(show("has unexpected", &extra));
        }
        found.insert(id, out);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::super::observe::{parse_links, parse_nft_table, Vxlan};
    use super::super::testing::leaf;
    use super::*;

    fn observed_from_captures() -> Observed {
        let mut o = Observed {
            underlay: parse_links(include_str!("testdata/leaf1-underlay.json")).unwrap(),
            underlay_nft: None,
            vrfs: BTreeMap::new(),
        };
        o.vrfs.insert(
            "Vrf5000".into(),
            Some(VrfNs {
                links: parse_links(include_str!("testdata/leaf1-vrf.json")).unwrap(),
                nft: Some(parse_nft_table(include_str!("testdata/nft-table.json")).unwrap()),
            }),
        );
        o
    }

    #[test]
    fn a_switch_as_given_has_no_drift() {
        let found = linux_drift("leaf1", &leaf(), &observed_from_captures());
        assert!(found.is_empty(), "{found:#?}");
    }

    #[test]
    fn each_changed_object_is_reported_once_with_what_differs() {
        let cfg = leaf();
        let mut o = observed_from_captures();
        let vrf = o.vrfs.get_mut("Vrf5000").unwrap().as_mut().unwrap();
        // The tenant network's VXLAN device deleted by hand.
        vrf.links.remove("vni100");
        // The tenant port detached from its bridge.
        vrf.links.get_mut("swp2").unwrap().master = None;
        // The L3 VNI's VXLAN device re-created with another VNI.
        vrf.links.get_mut("vni5000").unwrap().vxlan =
            Some(Vxlan { id: 5001, local: Some("10.0.0.1".into()), port: Some(4789) });
        // The policy chain lost a rule.
        vrf.nft.as_mut().unwrap().get_mut("to-100").unwrap().rules -= 1;
        // The quarantined port is no longer isolated.
        o.underlay.get_mut("swp4").unwrap().isolated = Some(false);
        // The loopback lost the router id.
        o.underlay.get_mut("lo").unwrap().addrs.retain(|a| a != "10.0.0.1/32");
        let found = linux_drift("leaf1", &cfg, &o);
        let ids: Vec<String> = found.keys().map(|k| k.to_string()).collect();
        assert_eq!(
            ids,
            ["bgp", "vrf:Vrf5000", "segment:100", "port:swp2", "port:swp4", "policy:100"]
        );
        assert_eq!(found[&ObjectId::Segment(100)], ["vni100 is missing from namespace Vrf5000"]);
        assert_eq!(
            found[&ObjectId::Port("swp2".into())],
            ["swp2 is attached to no bridge, not br100"]
        );
        assert_eq!(found[&ObjectId::Vrf("Vrf5000".into())], ["vni5000 carries VNI 5001, not 5000"]);
        assert_eq!(found[&ObjectId::Policy(100)], ["chain to-100 has 2 rules, not 3"]);
        assert_eq!(found[&ObjectId::Port("swp4".into())], ["swp4 is not isolated"]);
        assert_eq!(found[&ObjectId::Bgp], ["lo lacks 10.0.0.1/32"]);
    }

    #[test]
    fn a_missing_vrf_namespace_is_reported_on_everything_in_it() {
        let cfg = leaf();
        let mut o = observed_from_captures();
        o.vrfs.insert("Vrf5000".into(), None);
        let found = linux_drift("leaf1", &cfg, &o);
        let ids: Vec<String> = found.keys().map(|k| k.to_string()).collect();
        assert_eq!(ids, ["vrf:Vrf5000", "segment:100", "port:swp2", "policy:100"]);
        assert!(found.values().flatten().all(|d| d.contains("namespace Vrf5000 is missing")));
    }

    #[test]
    fn a_port_in_the_wrong_namespace_says_where_it_is() {
        let cfg = leaf();
        let mut o = observed_from_captures();
        let vrf = o.vrfs.get_mut("Vrf5000").unwrap().as_mut().unwrap();
        let port = vrf.links.remove("swp2").unwrap();
        o.underlay.insert("swp2".into(), port);
        let found = linux_drift("leaf1", &cfg, &o);
        assert_eq!(
            found[&ObjectId::Port("swp2".into())],
            ["swp2 is in the switch's namespace, not in namespace Vrf5000"]
        );
    }

    #[test]
    fn a_borders_uplink_and_public_links_are_checked_with_their_chains() {
        use neocloud_fabric::{PublicLinkConfig, UplinkConfig};
        let mut cfg = leaf();
        cfg.insert(Object::Uplink(UplinkConfig {
            port: "swp9".into(),
            address: "198.51.100.2/30".parse().unwrap(),
            gateway: "198.51.100.1".parse().unwrap(),
        }));
        cfg.insert(Object::PublicLink(PublicLinkConfig {
            vrf: "Vrf5000".into(),
            l3_vni: 5000,
            public: vec!["203.0.113.9".parse().unwrap()],
        }));
        assert!(needs_underlay_nft("leaf1", &cfg));
        assert!(!needs_underlay_nft("leaf1", &leaf()));
        // The captured leaf has neither.
        let found = linux_drift("leaf1", &cfg, &observed_from_captures());
        let ids: Vec<String> = found.keys().map(|k| k.to_string()).collect();
        assert_eq!(ids, ["uplink", "public_link:Vrf5000"]);
        let uplink = &found[&ObjectId::Uplink];
        assert_eq!(uplink[0], "swp9 is missing from the switch's namespace");
        assert!(
            uplink.contains(&"table inet neocloud is missing from the switch's namespace".into())
        );
        let link = &found[&ObjectId::PublicLink("Vrf5000".into())];
        assert!(
            link.contains(&"pub5000 is missing from the switch's namespace".into()),
            "{link:?}"
        );
        assert!(link.contains(&"ext5000 is missing from namespace Vrf5000".into()), "{link:?}");
    }

    #[test]
    fn frr_lines_carry_their_contexts() {
        let text = "hostname leaf1\nvrf Vrf5000\n vni 5000\nexit-vrf\nrouter bgp 65101\n address-family l2vpn evpn\n  vni 100\n   route-target import 65000:100\n  exit-vni\n exit-address-family\nexit\n!\n";
        let lines = frr_lines(text);
        let k = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(lines.contains(&k(&["hostname leaf1"])));
        assert!(lines.contains(&k(&["vrf Vrf5000", "vni 5000"])));
        assert!(lines.contains(&k(&[
            "router bgp 65101",
            "address-family l2vpn evpn",
            "vni 100",
            "route-target import 65000:100"
        ])));
        assert_eq!(lines.len(), 7, "{lines:#?}");
    }

    #[test]
    fn frr_differences_are_charged_to_their_objects() {
        let rendered = neocloud_fabric::render::frr::render("leaf1", &leaf()).integrated;
        assert!(frr_drift("frr.conf", &rendered, Some(&rendered)).is_empty());
        // Reformatted (blank lines, `!`, trailing spaces) is the same config.
        let reformatted = rendered.replace("exit\n", "exit\n!\n\n").replace('\n', "  \n");
        assert!(frr_drift("frr.conf", &rendered, Some(&reformatted)).is_empty());
        // Segment 100's import RT edited, the VRF's vni line dropped, a
        // foreign line added at the top.
        let edited = rendered
            .replace("   route-target import 65000:100\n", "   route-target import 65000:999\n")
            .replace("vrf Vrf5000\n vni 5000\n", "vrf Vrf5000\n")
            + "ip route 0.0.0.0/0 192.0.2.1\n";
        let found = frr_drift("frr.conf", &rendered, Some(&edited));
        let ids: Vec<String> = found.keys().map(|k| k.to_string()).collect();
        assert_eq!(ids, ["bgp", "vrf:Vrf5000", "segment:100"]);
        assert_eq!(
            found[&ObjectId::Segment(100)],
            [
                "frr.conf lacks `router bgp 65101 > address-family l2vpn evpn > vni 100 > route-target import 65000:100`",
                "frr.conf has unexpected `router bgp 65101 > address-family l2vpn evpn > vni 100 > route-target import 65000:999`"
            ]
        );
        assert_eq!(
            found[&ObjectId::Vrf("Vrf5000".into())],
            ["frr.conf lacks `vrf Vrf5000 > vni 5000`"]
        );
        assert_eq!(
            found[&ObjectId::Bgp],
            ["frr.conf has unexpected `ip route 0.0.0.0/0 192.0.2.1`"]
        );
        assert_eq!(frr_drift("frr.conf", &rendered, None)[&ObjectId::Bgp], ["frr.conf is missing"]);
    }

    #[test]
    fn the_vrf_bgp_instance_belongs_to_the_vrf() {
        let rendered = neocloud_fabric::render::frr::render("leaf1", &leaf()).bgpd;
        let edited = rendered.replace("  route-target export 65000:5000\n", "");
        let found = frr_drift("bgpd.conf", &rendered, Some(&edited));
        assert_eq!(
            found[&ObjectId::Vrf("Vrf5000".into())],
            ["bgpd.conf lacks `router bgp 65101 vrf Vrf5000 > address-family l2vpn evpn > route-target export 65000:5000`"]
        );
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn many_differences_are_summarised() {
        let rendered = neocloud_fabric::render::frr::render("leaf1", &leaf()).integrated;
        let found = frr_drift("frr.conf", &rendered, Some("hostname leaf1\n"));
        let bgp = &found[&ObjectId::Bgp];
        assert!(bgp[0].starts_with("frr.conf lacks `router bgp 65101`"), "{bgp:?}");
        assert!(bgp[0].contains(" more"), "{bgp:?}");
    }
}
