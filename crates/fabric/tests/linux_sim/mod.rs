//! A strict model of the Linux state the FRR/Linux renderer's commands act
//! on (namespaces, bridges, VXLAN devices, veth pairs, ports, addresses,
//! routes and rules, nftables tables, chains and sets). Every command is
//! checked against the state (a device must exist where a command addresses
//! it, a bridge and its port share a namespace, a namespace is deleted only
//! once empty of ports, a route needs its device up and its gateway on a
//! connected prefix unless `onlink`...), and the kernel's side effects are
//! modelled (deleting one veth end deletes both and the routes through
//! them, a device leaving a namespace or going down loses its routes, a
//! device moved to another namespace loses its addresses, a rule outlives
//! its device), so a mis-ordered convergence fails here rather than on a
//! switch.

use neocloud_fabric::Ipv4Net;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// The switch's own namespace.
const ROOT: &str = "";

/// Words nft's parser takes as keywords: refused as chain or set names
/// (`nft add chain inet t snat {...}` is a syntax error).
const NFT_KEYWORDS: &[&str] = &[
    "accept",
    "chain",
    "counter",
    "dnat",
    "drop",
    "element",
    "filter",
    "hook",
    "icmp",
    "inet",
    "input",
    "ip",
    "ip6",
    "log",
    "masquerade",
    "nat",
    "output",
    "policy",
    "priority",
    "redirect",
    "reject",
    "route",
    "rule",
    "set",
    "snat",
    "table",
    "tcp",
    "type",
    "udp",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Port,
    Bridge,
    Vxlan {
        id: String,
        local: String,
        port: String,
    },
    /// One end of a veth pair.
    Veth {
        peer: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dev {
    pub kind: Kind,
    pub ns: String,
    pub master: Option<String>,
    pub up: bool,
    pub mac: Option<String>,
    pub addrs: BTreeSet<String>,
    /// Bridge-port flags (`learning off`, `isolated on`...).
    pub flags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sim {
    pub devs: BTreeMap<String, Dev>,
    pub netns: BTreeSet<String>,
    /// Addresses on each namespace's `lo`.
    pub lo: BTreeMap<String, BTreeSet<String>>,
    /// Namespaces with table `inet neocloud`, and its chains' rules.
    pub tables: BTreeSet<String>,
    pub chains: BTreeMap<(String, String), Vec<String>>,
    /// nftables sets of table `inet neocloud` per (namespace, set), with
    /// their elements.
    pub sets: BTreeMap<(String, String), BTreeSet<String>>,
    /// Routes per (namespace, table): destination -> `via G dev D [onlink]`.
    pub routes: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// Policy routing rules per namespace, as written.
    pub rules: BTreeSet<(String, String)>,
}

impl Sim {
    /// A switch with these physical ports, all down in its own namespace.
    pub fn with_ports<'a>(ports: impl IntoIterator<Item = &'a str>) -> Sim {
        let mut s = Sim::default();
        for p in ports {
            s.devs.insert(
                p.to_string(),
                Dev {
                    kind: Kind::Port,
                    ns: ROOT.into(),
                    master: None,
                    up: false,
                    mac: None,
                    addrs: BTreeSet::new(),
                    flags: BTreeMap::new(),
                },
            );
        }
        s
    }

    pub fn run_all(&mut self, cmds: &[Vec<String>]) {
        for c in cmds {
            if let Err(e) = self.run(c) {
                panic!("`{}`: {e}\nstate: {self:#?}", c.join(" "));
            }
        }
    }

    fn dev(&mut self, ns: &str, name: &str) -> Result<&mut Dev, String> {
        match self.devs.get_mut(name) {
            Some(d) if d.ns == ns => Ok(d),
            Some(d) => Err(format!("{name} is in namespace {:?}, not {ns:?}", d.ns)),
            None => Err(format!("no device {name}")),
        }
    }

    fn check_ns(&self, ns: &str) -> Result<(), String> {
        match ns == ROOT || self.netns.contains(ns) {
            true => Ok(()),
            false => Err(format!("no namespace {ns}")),
        }
    }

    pub fn run(&mut self, c: &[String]) -> Result<(), String> {
        let c: Vec<&str> = c.iter().map(String::as_str).collect();
        match c.as_slice() {
            ["sysctl", "-qw", _] => Ok(()),
            ["ip", "netns", "add", ns] => match self.netns.insert(ns.to_string()) {
                true => Ok(()),
                false => Err("namespace exists".into()),
            },
            ["ip", "netns", "del", ns] => self.del_netns(ns),
            ["ip", "netns", "exec", ns, "sysctl", ..] => self.check_ns(ns),
            ["ip", "netns", "exec", ns, "nft", rest @ ..] => {
                self.check_ns(ns)?;
                self.nft(ns, rest)
            }
            ["ip", "-n", ns, rest @ ..] => {
                self.check_ns(ns)?;
                self.ip(ns, rest)
            }
            ["ip", rest @ ..] => self.ip(ROOT, rest),
            ["nft", rest @ ..] => self.nft(ROOT, rest),
            ["bridge", "-n", ns, "link", "set", "dev", dev, flags @ ..] => {
                self.check_ns(ns)?;
                self.bridge_flags(ns, dev, flags)
            }
            ["bridge", "link", "set", "dev", dev, flags @ ..] => {
                self.bridge_flags(ROOT, dev, flags)
            }
            _ => Err("unknown command".into()),
        }
    }

    fn del_netns(&mut self, ns: &str) -> Result<(), String> {
        if !self.netns.remove(ns) {
            return Err("no such namespace".into());
        }
        if let Some(p) = self.devs.iter().find(|(_, d)| d.ns == ns && d.kind == Kind::Port) {
            return Err(format!("port {} would fall back to the init namespace", p.0));
        }
        // A veth end destroyed with its namespace takes its peer along.
        let peers: Vec<String> = self
            .devs
            .values()
            .filter(|d| d.ns == ns)
            .filter_map(|d| match &d.kind {
                Kind::Veth { peer } => Some(peer.clone()),
                Kind::Port | Kind::Bridge | Kind::Vxlan { .. } => None,
            })
            .collect();
        for p in peers {
            if let Some(d) = self.devs.remove(&p) {
                self.flush_routes(&d.ns, &p);
            }
        }
        self.devs.retain(|_, d| d.ns != ns);
        self.lo.remove(ns);
        self.tables.remove(ns);
        self.chains.retain(|(n, _), _| n != ns);
        self.sets.retain(|(n, _), _| n != ns);
        self.routes.retain(|(n, _), _| n != ns);
        self.rules.retain(|(n, _)| n != ns);
        Ok(())
    }

    /// The kernel drops the IPv4 routes through a device that goes down,
    /// leaves the namespace, loses its last address or is deleted.
    fn flush_routes(&mut self, ns: &str, dev: &str) {
        for ((n, _), routes) in self.routes.iter_mut() {
            if n == ns {
                routes.retain(|_, spec| {
                    let w: Vec<&str> = spec.split_whitespace().collect();
                    !w.windows(2).any(|p| p[0] == "dev" && p[1] == dev)
                });
            }
        }
        self.routes.retain(|_, r| !r.is_empty());
    }

    /// `ip route add|replace|del DST [via G] dev D [onlink] [table T]`.
    fn route(&mut self, ns: &str, op: &str, args: &[&str]) -> Result<(), String> {
        let [dst, rest @ ..] = args else { return Err("route without destination".into()) };
        let (mut via, mut dev, mut onlink, mut table) = (None, None, false, "main");
        let mut i = 0;
        while i < rest.len() {
            match (rest[i], rest.get(i + 1)) {
                ("via", Some(v)) => via = Some(*v),
                ("dev", Some(d)) => dev = Some(*d),
                ("table", Some(t)) => table = t,
                ("onlink", _) => {
                    onlink = true;
                    i += 1;
                    continue;
                }
                (other, _) => return Err(format!("unexpected route argument {other:?}")),
            }
            i += 2;
        }
        let dev = dev.ok_or("route without dev")?;
        let spec = match via {
            Some(g) => format!("via {g} dev {dev}{}", if onlink { " onlink" } else { "" }),
            None => format!("dev {dev}"),
        };
        let key = (ns.to_string(), table.to_string());
        match op {
            "add" | "replace" => {
                let d = self.dev(ns, dev)?;
                if !d.up {
                    return Err(format!("nexthop device {dev} is not up"));
                }
                if let (Some(g), false) = (via, onlink) {
                    let g: Ipv4Addr = g.parse().map_err(|_| "bad gateway")?;
                    let on_link = d.addrs.iter().any(|a| {
                        a.parse::<Ipv4Net>().is_ok_and(|n| n.trunc().contains(g) && n.addr() != g)
                    });
                    if !on_link {
                        return Err(format!("nexthop {g} has no connected prefix on {dev}"));
                    }
                }
                let routes = self.routes.entry(key).or_default();
                if op == "add" && routes.contains_key(*dst) {
                    return Err(format!("route {dst} exists"));
                }
                routes.insert(dst.to_string(), spec);
                Ok(())
            }
            "del" => {
                let routes = self.routes.get_mut(&key).ok_or("no such route")?;
                match routes.get(*dst) {
                    Some(s) if *s == spec => {
                        routes.remove(*dst);
                    }
                    _ => return Err(format!("no route {dst} {spec}")),
                }
                self.routes.retain(|_, r| !r.is_empty());
                Ok(())
            }
            _ => Err("unknown route operation".into()),
        }
    }

    fn ip(&mut self, ns: &str, args: &[&str]) -> Result<(), String> {
        match args {
            ["link", "add", name, "type", "bridge"] => self.add_dev(ns, name, Kind::Bridge),
            ["link", "add", name, "type", "veth", "peer", "name", peer] => {
                if self.devs.contains_key(*peer) || name == peer {
                    return Err(format!("{peer} exists"));
                }
                self.add_dev(ns, name, Kind::Veth { peer: peer.to_string() })?;
                self.add_dev(ns, peer, Kind::Veth { peer: name.to_string() })
            }
            ["route", op, rest @ ..] => self.route(ns, op, rest),
            ["rule", op, rest @ ..] => {
                let rule = (ns.to_string(), rest.join(" "));
                match *op {
                    "add" if self.rules.insert(rule.clone()) => Ok(()),
                    "add" => Err("rule exists".into()),
                    "del" if self.rules.remove(&rule) => Ok(()),
                    _ => Err("no such rule".into()),
                }
            }
            ["link", "add", name, "type", "vxlan", "id", id, "local", local, "dstport", port, "nolearning"] =>
            {
                let kind = Kind::Vxlan {
                    id: id.to_string(),
                    local: local.to_string(),
                    port: port.to_string(),
                };
                self.add_dev(ns, name, kind)
            }
            ["link", "set", "lo", "up"] => Ok(()),
            ["link", "set", name, "netns", target] => {
                let target = match *target {
                    "underlay" => ROOT,
                    t => t,
                };
                self.check_ns(target)?;
                let d = self.dev(ns, name)?;
                if d.master.is_some() {
                    return Err("moving an enslaved device".into());
                }
                d.ns = target.to_string();
                d.up = false;
                d.addrs.clear();
                self.flush_routes(ns, name);
                Ok(())
            }
            ["link", "set", name, "master", bridge, rest @ ..] => {
                if !matches!(rest, [] | ["addrgenmode", "none"]) {
                    return Err("unexpected arguments".into());
                }
                match self.devs.get(*bridge) {
                    Some(b) if b.ns == ns && b.kind == Kind::Bridge => {}
                    _ => return Err(format!("no bridge {bridge} in {ns:?}")),
                }
                let d = self.dev(ns, name)?;
                if d.master.is_some() {
                    return Err("already enslaved".into());
                }
                d.master = Some(bridge.to_string());
                Ok(())
            }
            ["link", "set", name, "nomaster"] => {
                let d = self.dev(ns, name)?;
                d.master = None;
                d.flags.clear();
                Ok(())
            }
            ["link", "set", name, "up"] => self.dev(ns, name).map(|d| d.up = true),
            ["link", "set", name, "down"] => {
                self.dev(ns, name)?.up = false;
                self.flush_routes(ns, name);
                Ok(())
            }
            ["link", "set", name, "addrgenmode", "none"] => self.dev(ns, name).map(|_| ()),
            ["link", "set", name, "address", mac] => {
                self.dev(ns, name).map(|d| d.mac = Some(mac.to_string()))
            }
            ["link", "del", name] => {
                let d = self.dev(ns, name)?.clone();
                if d.kind == Kind::Port {
                    return Err("deleting a physical port".into());
                }
                self.devs.remove(*name);
                self.flush_routes(ns, name);
                if let Kind::Veth { peer } = &d.kind {
                    if let Some(p) = self.devs.remove(peer) {
                        self.flush_routes(&p.ns, peer);
                    }
                }
                for other in self.devs.values_mut() {
                    if other.master.as_deref() == Some(*name) {
                        other.master = None;
                        other.flags.clear();
                    }
                }
                Ok(())
            }
            ["addr", "add", a, "dev", "lo"] => {
                match self.lo.entry(ns.to_string()).or_default().insert(a.to_string()) {
                    true => Ok(()),
                    false => Err("address exists".into()),
                }
            }
            ["addr", "del", a, "dev", "lo"] => {
                let set = self.lo.entry(ns.to_string()).or_default();
                let found = set.remove(*a);
                if set.is_empty() {
                    self.lo.remove(ns);
                }
                match found {
                    true => Ok(()),
                    false => Err("no such address".into()),
                }
            }
            ["addr", "add", a, "dev", name] => {
                match self.dev(ns, name)?.addrs.insert(a.to_string()) {
                    true => Ok(()),
                    false => Err("address exists".into()),
                }
            }
            ["addr", "del", a, "dev", name] => {
                let d = self.dev(ns, name)?;
                if !d.addrs.remove(*a) {
                    return Err("no such address".into());
                }
                if d.addrs.is_empty() {
                    self.flush_routes(ns, name);
                }
                Ok(())
            }
            _ => Err("unknown ip command".into()),
        }
    }

    fn add_dev(&mut self, ns: &str, name: &str, kind: Kind) -> Result<(), String> {
        if self.devs.contains_key(name) {
            return Err(format!("{name} exists"));
        }
        let dev = Dev {
            kind,
            ns: ns.to_string(),
            master: None,
            up: false,
            mac: None,
            addrs: BTreeSet::new(),
            flags: BTreeMap::new(),
        };
        self.devs.insert(name.to_string(), dev);
        Ok(())
    }

    fn bridge_flags(&mut self, ns: &str, dev: &str, flags: &[&str]) -> Result<(), String> {
        let d = self.dev(ns, dev)?;
        if d.master.is_none() {
            return Err("bridge port flags on a device without a bridge".into());
        }
        if flags.is_empty() || !flags.chunks_exact(2).remainder().is_empty() {
            return Err("flags come in pairs".into());
        }
        for f in flags.chunks(2) {
            d.flags.insert(f[0].to_string(), f[1].to_string());
        }
        Ok(())
    }

    fn nft(&mut self, ns: &str, words: &[&str]) -> Result<(), String> {
        let line = words.join(" ");
        let key = |chain: &str| (ns.to_string(), chain.to_string());
        match words {
            ["add", "table", "inet", "neocloud"] => match self.tables.insert(ns.to_string()) {
                true => Ok(()),
                false => Err("table exists".into()),
            },
            ["add", "chain", "inet", "neocloud", chain, spec] if spec.starts_with('{') => {
                if !self.tables.contains(ns) {
                    return Err("no table".into());
                }
                if NFT_KEYWORDS.contains(chain) {
                    return Err(format!("nft refuses the keyword {chain:?} as a chain name"));
                }
                match self.chains.insert(key(chain), Vec::new()) {
                    None => Ok(()),
                    Some(_) => Err("chain exists".into()),
                }
            }
            ["add", "set", "inet", "neocloud", set, spec] if spec.starts_with('{') => {
                if !self.tables.contains(ns) {
                    return Err("no table".into());
                }
                if NFT_KEYWORDS.contains(set) {
                    return Err(format!("nft refuses the keyword {set:?} as a set name"));
                }
                match self.sets.insert(key(set), BTreeSet::new()) {
                    None => Ok(()),
                    Some(_) => Err("set exists".into()),
                }
            }
            ["add" | "delete", "element", "inet", "neocloud", set, "{", elems @ .., "}"] => {
                let add = words[0] == "add";
                let Some(members) = self.sets.get_mut(&key(set)) else {
                    return Err(format!("no set: {line}"));
                };
                for e in elems {
                    let e = e.trim_end_matches(',').to_string();
                    let ok = match add {
                        true => members.insert(e),
                        false => members.remove(&e),
                    };
                    if !ok {
                        return Err(format!("element already there / not there: {line}"));
                    }
                }
                Ok(())
            }
            ["delete", "table", "inet", "neocloud"] => {
                if !self.tables.remove(ns) {
                    return Err("no table".into());
                }
                self.chains.retain(|(n, _), _| n != ns);
                self.sets.retain(|(n, _), _| n != ns);
                Ok(())
            }
            ["add", "rule", "inet", "neocloud", chain, rule @ ..] => {
                for r in rule.iter().filter_map(|w| w.strip_prefix('@')) {
                    if !self.sets.contains_key(&key(r)) {
                        return Err(format!("no set {r}: {line}"));
                    }
                }
                match self.chains.get_mut(&key(chain)) {
                    Some(rules) => {
                        rules.push(rule.join(" "));
                        Ok(())
                    }
                    None => Err(format!("no chain: {line}")),
                }
            }
            ["flush", "chain", "inet", "neocloud", chain] => match self.chains.get_mut(&key(chain))
            {
                Some(rules) => {
                    rules.clear();
                    Ok(())
                }
                None => Err("no chain".into()),
            },
            ["delete", "chain", "inet", "neocloud", chain] => match self.chains.get(&key(chain)) {
                Some(rules) if rules.is_empty() => {
                    self.chains.remove(&key(chain));
                    Ok(())
                }
                Some(_) => Err("chain not empty".into()),
                None => Err("no chain".into()),
            },
            _ => Err(format!("unknown nft command: {line}")),
        }
    }
}
