//! Unit-test support: a leaf's configuration as the planner makes it, and
//! a runner that records commands and answers them from a small model of
//! the switch's files.

use super::steps::{tolerance, tolerated};
use super::transport::{Output, Runner};
use crate::{DriverError, Result};
use neocloud_fabric::{
    BgpConfig, BgpPeer, Object, PolicyAllow, PolicyConfig, PortConfig, PortMode, Protocol,
    SegmentConfig, SegmentPurpose, SwitchConfig, SwitchOs, VrfConfig, VtepConfig,
};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The lab's leaf1 for tenant A (VRF Vrf5000, network 10.100.0.0/24 on
/// VNI 100, node a1 on swp2 with its second NIC disabled on swp5), an idle
/// node quarantined on swp4, and an allow-list into VNI 100 from a second
/// network of the VPC.
pub(crate) fn leaf() -> SwitchConfig {
    let mut c = SwitchConfig::new(SwitchOs::Frr);
    let rt = |v: u32| format!("65000:{v}").parse().unwrap();
    c.insert(Object::Bgp(BgpConfig {
        asn: 65101,
        router_id: "10.0.0.1".parse().unwrap(),
        peers: vec![BgpPeer {
            port: "swp1".into(),
            peer: "spine".into(),
            peer_asn: 65000,
            peer_loopback: "10.0.0.254".parse().unwrap(),
        }],
        vtep: true,
    }));
    c.insert(Object::Vtep(VtepConfig { source: "10.0.0.1".parse().unwrap(), udp_port: 4789 }));
    c.insert(Object::Vrf(VrfConfig {
        name: "Vrf5000".into(),
        vpc: "vpc-a".into(),
        l3_vni: 5000,
        route_target: rt(5000),
        local_id: None,
        default_originate: false,
    }));
    c.insert(Object::Segment(SegmentConfig {
        vni: 100,
        vlan: None,
        route_target: rt(100),
        purpose: SegmentPurpose::Tenant {
            network: "net-a".into(),
            vrf: "Vrf5000".into(),
            gateway: "10.100.0.1/24".parse().unwrap(),
            gateway_mac: "00:00:5e:00:01:01".into(),
        },
    }));
    c.insert(Object::Segment(SegmentConfig {
        vni: 9000,
        vlan: None,
        route_target: rt(9000),
        purpose: SegmentPurpose::Provisioning,
    }));
    let port = |port: &str, node: &str, nic: &str, mode| {
        Object::Port(PortConfig { port: port.into(), node: node.into(), nic: nic.into(), mode })
    };
    c.insert(port(
        "swp2",
        "a1",
        "eth0",
        PortMode::Tenant { vni: 100, vlan: None, vrf: "Vrf5000".into() },
    ));
    c.insert(port(
        "swp4",
        "c1",
        "eth0",
        PortMode::Provisioning { vni: 9000, vlan: None, isolated: true },
    ));
    c.insert(port("swp5", "a1", "eth1", PortMode::Disabled));
    c.insert(Object::Policy(PolicyConfig {
        vni: 100,
        vrf: "Vrf5000".into(),
        allow: vec![PolicyAllow {
            from: "10.101.0.0/24".parse().unwrap(),
            protocol: Protocol::Tcp,
            ports: Some(neocloud_fabric::PortRange { first: 22, last: 22 }),
        }],
        deny_from: vec!["10.101.0.0/24".parse().unwrap()],
    }));
    c
}

#[test]
fn shell_words_reads_back_shell_line() {
    use super::transport::shell_line;
    for a in [
        argv(&["ip", "-n", "Vrf5000", "link", "del", "vni100"]),
        argv(&["nft", "add", "chain", "inet", "neocloud", "to-1", "{ type filter ; }"]),
        argv(&["it's", "", "a\\b", "\"br100\""]),
    ] {
        assert_eq!(shell_words(&shell_line(&a)), a);
    }
}

pub(crate) fn argv(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

type Answer = Box<dyn Fn(&[String]) -> Option<Output> + Send + Sync>;

/// Records every command; keeps the files the driver writes and reads
/// (its `sh -c` helpers) in a map; runs a batch of steps (`sh -s`) step by
/// step as its script would, each step recorded as a call; answers other
/// commands with `answer` (default: success, no output); fails with
/// `Unreachable` from call number `cut_at` on (a connection lost
/// mid-apply).
pub(crate) struct Recorder {
    pub calls: Mutex<Vec<Vec<String>>>,
    pub files: Mutex<BTreeMap<String, String>>,
    pub answer: Answer,
    pub cut_at: Option<usize>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            calls: Mutex::new(Vec::new()),
            files: Mutex::new(BTreeMap::new()),
            answer: Box::new(|_| None),
            cut_at: None,
        }
    }

    pub fn calls(&self) -> Vec<Vec<String>> {
        self.calls.lock().unwrap().clone()
    }

    /// The calls that are not the driver reading a file.
    pub fn changes(&self) -> Vec<Vec<String>> {
        self.calls().into_iter().filter(|c| !is_read(c)).collect()
    }
}

fn is_read(c: &[String]) -> bool {
    c.first().is_some_and(|a| a == "sh") && c.get(2).is_some_and(|s| s.contains("echo present"))
}

fn is_write(c: &[String]) -> bool {
    c.first().is_some_and(|a| a == "sh") && c.get(2).is_some_and(|s| s.contains("cat >"))
}

/// The words of a line as a POSIX shell splits them, for what
/// `shell_line` writes (bare words, single quotes, backslash escapes).
pub(crate) fn shell_words(line: &str) -> Vec<String> {
    let (mut out, mut word, mut quoted, mut in_word) = (Vec::new(), String::new(), false, false);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '\'') => quoted = false,
            (true, c) => word.push(c),
            (false, '\'') => (quoted, in_word) = (true, true),
            (false, '\\') => {
                word.extend(chars.next());
                in_word = true;
            }
            (false, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (false, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

impl Recorder {
    fn batch(&self, script: &str) -> Result<Output> {
        for line in script.lines().filter(|l| l.starts_with("step ")) {
            let words = shell_words(line);
            let (i, argv) = (&words[1], &words[3..]);
            let out = self.run(argv, None)?;
            if !out.success() && !tolerated(tolerance(argv), &out.stderr) {
                return Ok(Output {
                    status: 3,
                    stdout: format!("neocloud-step-failed:{i}:{}\n", out.status),
                    stderr: out.stderr,
                });
            }
        }
        Ok(Output::ok(""))
    }
}

impl Runner for Recorder {
    fn run(&self, argv: &[String], stdin: Option<&[u8]>) -> Result<Output> {
        if argv == ["sh", "-s"] {
            return self.batch(std::str::from_utf8(stdin.unwrap_or_default()).unwrap());
        }
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(argv.to_vec());
            calls.len()
        };
        if self.cut_at.is_some_and(|k| n >= k) {
            return Err(DriverError::Unreachable("connection lost".into()));
        }
        if is_read(argv) {
            let files = self.files.lock().unwrap();
            return Ok(match files.get(&argv[4]) {
                Some(text) => Output::ok(format!("present\n{text}")),
                None => Output::ok("absent\n"),
            });
        }
        if is_write(argv) {
            let text = String::from_utf8(stdin.unwrap_or_default().to_vec()).unwrap();
            self.files.lock().unwrap().insert(argv[4].clone(), text);
            return Ok(Output::ok(""));
        }
        Ok((self.answer)(argv).unwrap_or_else(|| Output::ok("")))
    }
}
