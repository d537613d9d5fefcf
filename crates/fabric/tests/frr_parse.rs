//! Every FRR configuration the renderer writes is accepted by FRR's own
//! parser (`vtysh -C -f FILE`: the real command grammar, no daemons): the
//! lab fabric, with north-south objects, and a fabric of FRR leaves under
//! many tenants. A typo in a rendered command fails here, not on a switch.
//! Skips loudly where FRR is not installed (the test command installs it;
//! with `CI` set a missing FRR fails instead).

mod common;

use common::*;
use neocloud_fabric::render::frr;
use neocloud_fabric::*;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

fn vtysh() -> Option<&'static str> {
    for p in ["/usr/bin/vtysh", "/usr/local/bin/vtysh"] {
        if Path::new(p).exists() {
            return Some(p);
        }
    }
    let msg = "FRR (vtysh) missing: the rendered FRR configurations were NOT checked against FRR's parser (install frr)";
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// Checks one file with FRR's parser; the error names the switch, file and
/// line FRR refused.
fn check(vtysh: &str, dir: &Path, switch: &str, file: &str, text: &str) {
    let path = dir.join(format!("{switch}-{file}"));
    std::fs::write(&path, text).unwrap();
    let out = Command::new(vtysh).arg("-C").arg("-f").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "FRR refuses {switch} {file}: {}{}\n--- {file}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn check_all(vtysh: &str, d: &DesiredState) -> usize {
    // One directory per call: the tests run in parallel in one process.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("neocloud-frr-parse-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut n = 0;
    for (name, cfg) in &d.switches {
        let files = frr::render(name, cfg);
        check(vtysh, &dir, name, "zebra.conf", &files.zebra);
        check(vtysh, &dir, name, "bgpd.conf", &files.bgpd);
        check(vtysh, &dir, name, "frr.conf", &files.integrated);
        n += 1;
    }
    let _ = std::fs::remove_dir_all(&dir);
    n
}

#[test]
fn the_frr_parser_accepts_every_rendered_configuration() {
    let Some(vtysh) = vtysh() else { return };
    let d = Lab::new(SwitchOs::Frr).plan();
    assert_eq!(check_all(vtysh, &d), d.switches.len());
    assert!(d.switches.len() >= 3, "spine and leaves: {:?}", d.switches.keys());
}

/// A border with an uplink carrying north-south service (default
/// origination into the VRFs), and a second border without one.
#[test]
fn the_frr_parser_accepts_north_south_configurations() {
    let Some(vtysh) = vtysh() else { return };
    let mut intent = intent();
    intent.nat_gateways.push(NatGateway { vpc: "vpc-a".into(), public_ip: None });
    intent.floating_ips.push(FloatingIp {
        id: "fip".into(),
        attachment: "att-b2".into(),
        public_ip: ip("203.0.113.9"),
        allow: vec![PortAllow { protocol: Protocol::Tcp, ports: None }],
    });
    let os = SwitchOs::Frr;
    let (fabric, mut switches, links) = (fabric(), switches(os), links(os));
    make_border(&mut switches[2]);
    switches[1].role = SwitchRole::Border;
    let alloc = allocate(&fabric, &switches, &links, &intent, &Allocations::default()).unwrap();
    let d = plan(&fabric, &switches, &links, &intent, &alloc).unwrap();
    let border = frr::render("leaf2", &d.switches["leaf2"]);
    assert_eq!(border.bgpd.matches("  default-originate ipv4\n").count(), 2);
    assert_eq!(check_all(vtysh, &d), d.switches.len());
}

/// A rejected line makes the check fail (the check itself is not a no-op).
#[test]
fn the_check_notices_a_line_frr_does_not_know() {
    let Some(vtysh) = vtysh() else { return };
    let d = Lab::new(SwitchOs::Frr).plan();
    let (name, cfg) = d.switches.iter().next().unwrap();
    let mut files = frr::render(name, cfg);
    files.bgpd.push_str("router bgp 65999\n neighbor fabric activate-everything\n");
    let res = std::panic::catch_unwind(|| {
        let dir = std::env::temp_dir().join(format!("neocloud-frr-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        check(vtysh, &dir, name, "bgpd.conf", &files.bgpd);
    });
    assert!(res.is_err(), "a bad line must be refused");
}
