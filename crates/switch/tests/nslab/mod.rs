//! A fabric of network namespaces on this machine, run by real FRR: each
//! switch is a network namespace with a mount namespace of its own (a
//! private `/run/netns`, so the VRF namespaces a switch's configuration
//! creates are its own, and its zebra (`-n`, the namespace VRF backend) sees
//! only them), held by a process the driver enters (`nsenter`); each node
//! is a network namespace cabled to its leaf port by a veth pair. A switch
//! has its own FRR directory (files, vty sockets, pid files, logs) and a
//! `frr-restart` script, its FRR service: it (re)starts the switch's zebra
//! and bgpd on the per-daemon files there. The lab never configures a
//! switch itself: `driver_config` says how the FRR/Linux driver reaches
//! and configures one. Everything is torn down on drop. Needs root, `ip`,
//! `unshare`, `nsenter` and FRR; see `NsLab::available`.

#![allow(dead_code)]

use neocloud_switch::frr::{FrrFileLayout, FrrLinuxConfig, Reload, Transport};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FRR: &str = "/usr/lib/frr";

/// FRR's python tools (`frr-pythontools`), for reloads without restarts.
pub const FRR_RELOAD: &str = "/usr/lib/frr/frr-reload.py";

/// How a lab switch's FRR takes up new files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrrService {
    /// Per-daemon files; the daemons restart on them (`frr-restart`).
    Restart,
    /// The daemons run from the switch's creation; an integrated file is
    /// loaded into them by `frr-reload.py`.
    Reload,
}

pub struct NsLab {
    prefix: String,
    dir: PathBuf,
    /// Switch name -> the process holding its mount namespace.
    holders: BTreeMap<String, Child>,
    netns: Vec<String>,
}

fn sh(argv: &[&str]) -> Result<String, String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", argv.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} -> {}: {}{}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Whether process `pid` is running (a zombie, killed and not yet reaped
/// by init, is not).
fn running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(')').next().and_then(|r| r.split_whitespace().next()) != Some("Z"))
        .unwrap_or(false)
}

fn must(argv: &[&str]) -> String {
    sh(argv).unwrap_or_else(|e| panic!("{e}"))
}

/// The switch's FRR service: stops its daemons (pid files) and starts
/// zebra (namespace VRFs) and bgpd on the per-daemon files in the script's
/// own directory.
const FRR_RESTART: &str = r#"#!/bin/sh
set -e
d="$(dirname "$0")"
for n in bgpd zebra; do
  if [ -f "$d/$n.pid" ]; then
    p="$(cat "$d/$n.pid")"
    kill "$p" 2>/dev/null || true
    i=0
    while [ -d "/proc/$p" ] && [ "$i" -lt 250 ]; do sleep 0.02; i=$((i+1)); done
    # One that ignores SIGTERM (zebra -n can spin once its namespace is
    # going) is killed: it would hold its sockets and a core.
    kill -9 "$p" 2>/dev/null || true
    rm -f "$d/$n.pid"
  fi
done
for n in zebra bgpd; do
  ns=""; [ "$n" = zebra ] && ns="-n"
  "FRR/$n" $ns -d -F datacenter -P 0 -u frr -g frr -z "$d/zserv.api" --vty_socket "$d" \
    -i "$d/$n.pid" -f "$d/$n.conf" --log "file:$d/$n.log"
done
"#;

impl NsLab {
    /// Whether the lab can run here: `None` (said loudly) where it cannot;
    /// with `CI` set that is a failure (the test command installs FRR and
    /// CI runs as root).
    pub fn available() -> Option<()> {
        let missing = if !Path::new("/proc/self/ns/net").exists() {
            Some("network namespaces".to_string())
        } else if sh(&["id", "-u"]).map(|u| u.trim() != "0").unwrap_or(true) {
            Some("root".to_string())
        } else if !Path::new(&format!("{FRR}/zebra")).exists() {
            Some("FRR (install frr)".to_string())
        } else {
            ["ip", "unshare", "nsenter", "ping", "nft"]
                .iter()
                .find(|t| sh(&["sh", "-c", &format!("command -v {t}")]).is_err())
                .map(|t| format!("the `{t}` command"))
        };
        match missing {
            None => Some(()),
            Some(m) => {
                let msg =
                    format!("the FRR namespace lab needs {m}: the fabric was NOT tested in a lab");
                if std::env::var_os("CI").is_some() {
                    panic!("{msg}");
                }
                eprintln!("SKIPPED: {msg}");
                None
            }
        }
    }

    pub fn new(tag: &str) -> NsLab {
        let prefix = format!("{tag}{}-", std::process::id());
        let dir = std::env::temp_dir().join(format!("neocloud-nslab-{prefix}"));
        std::fs::create_dir_all(&dir).unwrap();
        NsLab { prefix, dir, holders: BTreeMap::new(), netns: Vec::new() }
    }

    fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn add_netns(&mut self, name: &str) -> String {
        let ns = self.ns(name);
        must(&["ip", "netns", "add", &ns]);
        self.netns.push(ns.clone());
        must(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        ns
    }

    /// A switch: its network namespace, a process holding a mount
    /// namespace with a private `/run/netns` in which the switch's own
    /// namespace is also known as `underlay`, and its FRR directory with
    /// the `frr-restart` service script. With `FrrService::Reload` its
    /// daemons start now, on files that name only the host.
    pub fn switch(&mut self, name: &str, service: FrrService) {
        let ns = self.add_netns(name);
        let dir = self.dir(name);
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("frr-restart");
        std::fs::write(&script, FRR_RESTART.replace("FRR/", &format!("{FRR}/"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns, "unshare", "--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs tmpfs /run/netns && ip netns attach underlay $$ && exec sleep 100000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        self.holders.insert(name.to_string(), child);
        // Ready once the shell became `sleep` (its mounts are in place).
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim()
            != "sleep"
        {
            assert!(Instant::now() < deadline, "switch {name}: namespace holder did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        let host = format!("hostname {name}\n");
        for f in ["zebra.conf", "bgpd.conf"] {
            std::fs::write(dir.join(f), &host).unwrap();
        }
        must(&["chown", "-R", "frr:frr", dir.to_str().unwrap()]);
        if service == FrrService::Reload {
            self.run(name, &["sh".into(), script.to_str().unwrap().into()])
                .unwrap_or_else(|e| panic!("{name}: starting FRR: {e}"));
        }
    }

    /// The switch's FRR directory.
    pub fn dir(&self, switch: &str) -> PathBuf {
        self.dir.join(switch)
    }

    /// The process whose namespaces are the switch.
    pub fn pid(&self, switch: &str) -> u32 {
        self.holders[switch].id()
    }

    /// How the FRR/Linux driver reaches and configures the switch.
    pub fn driver_config(&self, switch: &str, service: FrrService) -> FrrLinuxConfig {
        let dir = self.dir(switch).to_str().unwrap().to_string();
        let mut c = FrrLinuxConfig::new(Transport::Nsenter { pid: self.pid(switch) });
        c.config_dir = dir.clone();
        c.state_dir = format!("{dir}/state");
        c.file_owner = Some("frr:frr".into());
        c.command_timeout_s = 60;
        match service {
            FrrService::Restart => {
                c.files = FrrFileLayout::PerDaemon;
                c.reload =
                    Reload::Command { argv: vec!["sh".into(), format!("{dir}/frr-restart")] };
            }
            FrrService::Reload => {
                c.files = FrrFileLayout::Integrated;
                c.reload = Reload::FrrReload {
                    script: FRR_RELOAD.into(),
                    bindir: None,
                    vty_socket: Some(dir.clone()),
                    rundir: Some(dir),
                };
            }
        }
        c
    }

    /// Runs `argv` on the switch (its network and mount namespaces): the
    /// tests' hand on the switch (drift, snapshots), never its
    /// configuration.
    pub fn run(&self, switch: &str, argv: &[String]) -> Result<String, String> {
        let pid = self.pid(switch).to_string();
        let mut full: Vec<&str> = vec!["nsenter", "-t", &pid, "-m", "-n", "--"];
        full.extend(argv.iter().map(String::as_str));
        sh(&full)
    }

    /// A cable between two switch ports (the underlay).
    pub fn cable(&mut self, a: &str, a_port: &str, b: &str, b_port: &str) {
        let (na, nb) = (self.ns(a), self.ns(b));
        must(&[
            "ip", "link", "add", a_port, "netns", &na, "mtu", "9000", "type", "veth", "peer",
            "name", b_port, "netns", &nb, "mtu", "9000",
        ]);
        for (ns, port) in [(&na, a_port), (&nb, b_port)] {
            must(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{port}.accept_dad=0"),
            ]);
            must(&["ip", "-n", ns, "link", "set", port, "up"]);
        }
    }

    /// A node's NIC cabled to a leaf port; the node's namespace is created
    /// on first use. The NIC is up, without an address.
    pub fn nic(&mut self, node: &str, nic: &str, switch: &str, port: &str) {
        let node_ns = self.ns(node);
        if !self.netns.contains(&node_ns) {
            self.add_netns(node);
        }
        let sw = self.ns(switch);
        must(&[
            "ip", "link", "add", nic, "netns", &node_ns, "type", "veth", "peer", "name", port,
            "netns", &sw,
        ]);
        must(&["ip", "-n", &node_ns, "link", "set", nic, "up"]);
    }

    /// Gives a node's NIC an address and the node a default route.
    pub fn address(&self, node: &str, nic: &str, cidr: &str, gateway: &str) {
        let ns = self.ns(node);
        must(&["ip", "-n", &ns, "addr", "add", cidr, "dev", nic]);
        let _ = sh(&["ip", "-n", &ns, "route", "replace", "default", "via", gateway]);
    }

    /// Stops the switch's daemons: SIGTERM, then SIGKILL for one still
    /// running 5 s on (a zebra that spins instead of exiting would hold a
    /// core for every test after this one).
    fn stop_frr(&self, switch: &str) {
        for d in ["bgpd", "zebra"] {
            let pid_file = self.dir(switch).join(format!("{d}.pid"));
            if let Ok(pid) = std::fs::read_to_string(&pid_file) {
                let pid = pid.trim();
                let _ = sh(&["kill", pid]);
                let deadline = Instant::now() + Duration::from_secs(5);
                while running(pid) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                if running(pid) {
                    eprintln!("{switch}: {d} ({pid}) ignored SIGTERM: killed");
                    let _ = sh(&["kill", "-9", pid]);
                }
                let _ = std::fs::remove_file(&pid_file);
            }
        }
    }

    /// Runs `argv` in a node's network namespace.
    pub fn in_node(&self, node: &str, argv: &[&str]) -> Result<String, String> {
        let ns = self.ns(node);
        let mut full: Vec<&str> = vec!["ip", "netns", "exec", &ns];
        full.extend(argv);
        sh(&full)
    }

    /// Starts `argv` in a node's network namespace in the background (a
    /// listener); killed when the returned child is dropped by the caller.
    pub fn spawn_in_node(&self, node: &str, argv: &[&str]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(node)])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{node}: {argv:?}: {e}"))
    }

    /// Whether a TCP connection from the node to `addr:port` is accepted
    /// within 2 s.
    pub fn tcp_connects(&self, node: &str, addr: &str, port: u16) -> bool {
        let probe = format!("exec 3<>/dev/tcp/{addr}/{port}");
        self.in_node(node, &["timeout", "2", "bash", "-c", &probe]).is_ok()
    }

    /// One ping from the node; true when answered.
    pub fn ping(&self, node: &str, addr: &str) -> bool {
        sh(&["ip", "netns", "exec", &self.ns(node), "ping", "-c1", "-W1", addr]).is_ok()
    }

    /// Waits until the node reaches the address (the fabric converged).
    pub fn wait_reach(&self, node: &str, addr: &str, timeout: Duration) -> Duration {
        let start = Instant::now();
        while !self.ping(node, addr) {
            assert!(
                start.elapsed() < timeout,
                "{node} never reached {addr} in {timeout:?}\n{}",
                self.diagnostics()
            );
        }
        start.elapsed()
    }

    /// What the leaves' FRR says, for failure messages.
    pub fn diagnostics(&self) -> String {
        let mut out = String::new();
        for sw in self.holders.keys() {
            let sock = self.dir(sw);
            let show = |c: &str| {
                self.run(
                    sw,
                    &["vtysh", "--vty_socket", sock.to_str().unwrap(), "-c", c].map(String::from),
                )
                .unwrap_or_else(|e| e)
            };
            out.push_str(&format!(
                "--- {sw}\n{}{}",
                show("show evpn vni"),
                show("show bgp l2vpn evpn summary")
            ));
        }
        out
    }
}

impl Drop for NsLab {
    fn drop(&mut self) {
        let switches: Vec<String> = self.holders.keys().cloned().collect();
        for sw in &switches {
            self.stop_frr(sw);
        }
        for (_, mut h) in std::mem::take(&mut self.holders) {
            let _ = h.kill();
            let _ = h.wait();
        }
        for ns in self.netns.drain(..) {
            let _ = sh(&["ip", "netns", "del", &ns]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        // zebra -n crashes when stopped on FRR 8.4 (harmless): its dumps.
        let _ = std::fs::remove_dir_all("/var/tmp/frr");
    }
}
