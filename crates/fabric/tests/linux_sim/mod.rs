//! A strict model of the Linux state the FRR/Linux renderer's commands act
//! on (namespaces, bridges, VXLAN devices, ports, addresses, nftables
//! chains). Every command is checked against the state (a device must exist
//! where a command addresses it, a bridge and its port share a namespace,
//! a namespace is deleted only once empty of ports...), so a mis-ordered
//! convergence fails here rather than on a switch.

use std::collections::{BTreeMap, BTreeSet};

/// The switch's own namespace.
const ROOT: &str = "";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Port,
    Bridge,
    Vxlan { id: String, local: String, port: String },
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
        self.devs.retain(|_, d| d.ns != ns);
        self.lo.remove(ns);
        self.tables.remove(ns);
        self.chains.retain(|(n, _), _| n != ns);
        Ok(())
    }

    fn ip(&mut self, ns: &str, args: &[&str]) -> Result<(), String> {
        match args {
            ["link", "add", name, "type", "bridge"] => self.add_dev(ns, name, Kind::Bridge),
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
            ["link", "set", name, "down"] => self.dev(ns, name).map(|d| d.up = false),
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
            ["addr", "del", a, "dev", name] => match self.dev(ns, name)?.addrs.remove(*a) {
                true => Ok(()),
                false => Err("no such address".into()),
            },
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
                match self.chains.insert(key(chain), Vec::new()) {
                    None => Ok(()),
                    Some(_) => Err("chain exists".into()),
                }
            }
            ["add", "rule", "inet", "neocloud", chain, rule @ ..] => {
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
