//! The netdev steps of an apply, made safe to re-run.
//!
//! `render::converge_frr` gives the steps from what the switch was last
//! given (`actual`) to `desired`. Those steps assume the switch holds
//! exactly `actual`; after an apply that stopped half-way (a crash, a lost
//! connection, a refused step) or a hand edit it does not: an object being
//! added may already be half there (a VXLAN device created but not yet
//! moved into its VRF, a port already moved), so its additions would fail.
//! So every object the apply (re)builds is first taken down with its own
//! removal steps, dependents first, and a removal step whose object is
//! already gone counts as done ([`tolerated`]). Dependents of a rebuilt
//! object are rebuilt with it (a port of a re-created bridge, everything
//! in a re-created VRF namespace): removing a namespace with a port still
//! in it would lose the port.
//!
//! The result is the same whatever state between `actual` and `desired`
//! the switch is in, which is what lets an interrupted apply be re-run
//! unchanged, and lets a drifted object be repaired by applying from a
//! state without it.

use super::transport::{shell_line, shell_quote};
use neocloud_fabric::render::converge_frr;
use neocloud_fabric::render::linux::{self, depends_on, Command, UNDERLAY_NETNS};
use neocloud_fabric::{Object, ObjectId, SegmentPurpose, SwitchConfig};
use std::collections::BTreeSet;

/// How a failed step may still have done its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tolerate {
    /// Any failure is a failure.
    Nothing,
    /// A removal: its object being absent is success.
    Absent,
    /// An address, route or rule addition: its being there is success.
    Present,
}

/// The tolerance of a rendered step, from its shape.
pub(crate) fn tolerance(argv: &[String]) -> Tolerate {
    let a: Vec<&str> = argv.iter().map(String::as_str).collect();
    // `ip netns exec NS tool...` runs `tool` in NS.
    let a = match a.as_slice() {
        ["ip", "netns", "exec", _, rest @ ..] => rest,
        other => other,
    };
    let (tool, rest) = match a {
        [tool @ ("ip" | "bridge"), "-n", _, rest @ ..] => (*tool, rest),
        [tool, rest @ ..] => (*tool, rest),
        [] => return Tolerate::Nothing,
    };
    match (tool, rest) {
        ("ip", ["link" | "netns" | "addr" | "route" | "rule", "del", ..])
        | ("ip", ["link", "set", _, "down" | "nomaster"])
        | ("ip", ["link", "set", _, "netns", UNDERLAY_NETNS])
        | ("nft", ["flush" | "delete", ..]) => Tolerate::Absent,
        ("ip", ["addr" | "route" | "rule", "add", ..]) => Tolerate::Present,
        _ => Tolerate::Nothing,
    }
}

/// What a removal prints when its object is already gone. iproute2:
/// `Cannot find device "X"`, `Cannot open network namespace "X": No such
/// file or directory`, `Cannot remove namespace file ...: No such file or
/// directory`, `Error: ipv4: Address not found.` (older kernels: `Cannot
/// assign requested address`), `RTNETLINK answers: No such process` (a
/// route), `Error: ipv4: FIB table does not exist.` (a route in a table
/// nothing was ever added to); nft: `Error: Could not process rule: No such
/// file or directory`.
const ABSENT: &[&str] = &[
    "Cannot find device",
    "No such file or directory",
    "No such device",
    "No such process",
    "Address not found",
    "Cannot assign requested address",
    "FIB table does not exist",
];

/// What an addition prints when its address, route or rule is there.
const PRESENT: &[&str] = &["Address already assigned", "File exists"];

fn messages(t: Tolerate) -> &'static [&'static str] {
    match t {
        Tolerate::Nothing => &[],
        Tolerate::Absent => ABSENT,
        Tolerate::Present => PRESENT,
    }
}

/// Whether `stderr` of a failed step means its work is already done (what
/// the batch script decides with the same messages).
#[cfg(test)]
pub(crate) fn tolerated(t: Tolerate, stderr: &str) -> bool {
    messages(t).iter().any(|m| stderr.contains(m))
}

impl Tolerate {
    fn word(self) -> &'static str {
        match self {
            Tolerate::Nothing => "strict",
            Tolerate::Absent => "absent",
            Tolerate::Present => "present",
        }
    }
}

/// The mark on standard output before a failed step's index and status.
const FAILED_MARK: &str = "neocloud-step-failed:";

/// A shell script (read by `sh -s`) that runs `steps` in order, each with
/// its tolerance (`tolerated`, the same messages), and stops at the first
/// failure: it prints `FAILED_MARK<index>:<status>` and the step's error,
/// and exits with 3. One round trip for any number of steps.
pub(crate) fn batch_script(steps: &[Command]) -> String {
    let case = |t: Tolerate| {
        let pats: Vec<String> =
            messages(t).iter().map(|m| format!("*{}*", shell_quote(m))).collect();
        format!("    {}) case \"$err\" in {}) return 0 ;; esac ;;\n", t.word(), pats.join("|"))
    };
    let mut out = String::from("step() {\n  i=$1; t=$2; shift 2\n");
    out.push_str("  err=$(\"$@\" 2>&1 >/dev/null </dev/null) && return 0\n  rc=$?\n");
    out.push_str("  case \"$t\" in\n");
    out.push_str(&case(Tolerate::Absent));
    out.push_str(&case(Tolerate::Present));
    out.push_str("  esac\n");
    out.push_str(&format!("  printf '{FAILED_MARK}%s:%s\\n' \"$i\" \"$rc\"\n"));
    out.push_str("  printf '%s\\n' \"$err\" >&2\n  exit 3\n}\n");
    for (i, c) in steps.iter().enumerate() {
        out.push_str(&format!("step {i} {} {}\n", tolerance(c).word(), shell_line(c)));
    }
    out
}

/// The failed step of a batch that did not succeed: (index, status,
/// error); `None` when the batch itself failed (no step reported).
pub(crate) fn batch_failure(stdout: &str, stderr: &str) -> Option<(usize, i32, String)> {
    let line = stdout.lines().rev().find_map(|l| l.strip_prefix(FAILED_MARK))?;
    let (i, rc) = line.split_once(':')?;
    Some((i.parse().ok()?, rc.parse().ok()?, stderr.trim().to_string()))
}

fn single(os_of: &SwitchConfig, objects: &[&Object]) -> SwitchConfig {
    let mut c = SwitchConfig::new(os_of.os);
    for o in objects {
        c.insert((*o).clone());
    }
    c
}

/// The steps that take `o` down (its renderer's removal steps).
pub(crate) fn removal(
    switch: &str,
    cfg: &SwitchConfig,
    o: &Object,
) -> neocloud_fabric::Result<Vec<Command>> {
    linux::converge(switch, &single(cfg, &[o]), &SwitchConfig::new(cfg.os))
}

/// Whether the renderer changes `from` into `to` by re-creating it (its
/// removal then its addition) rather than in place: asked of the renderer
/// itself on a switch holding just the object (and the desired VTEP, which
/// additions need).
fn recreated(
    switch: &str,
    desired: &SwitchConfig,
    from: &Object,
    to: &Object,
) -> neocloud_fabric::Result<bool> {
    let vtep = desired.get(&ObjectId::Vtep).filter(|_| to.id() != ObjectId::Vtep);
    let with = |o: Option<&Object>| {
        let mut objects: Vec<&Object> = vtep.into_iter().collect();
        objects.extend(o);
        single(desired, &objects)
    };
    let change = linux::converge(switch, &with(Some(from)), &with(Some(to)))?;
    let mut rebuild = linux::converge(switch, &with(Some(from)), &with(None))?;
    rebuild.extend(linux::converge(switch, &with(None), &with(Some(to)))?);
    Ok(change == rebuild)
}

/// The objects an apply from `actual` to `desired` builds or rebuilds:
/// the new ones, the ones the renderer re-creates, and everything built
/// on those (in either state).
pub(crate) fn rebuilt(
    switch: &str,
    actual: &SwitchConfig,
    desired: &SwitchConfig,
) -> neocloud_fabric::Result<BTreeSet<ObjectId>> {
    let mut out = BTreeSet::new();
    for (id, d) in &desired.objects {
        match actual.get(id) {
            None => {
                out.insert(id.clone());
            }
            Some(a) if a != d && recreated(switch, desired, a, d)? => {
                out.insert(id.clone());
            }
            Some(_) => {}
        }
    }
    loop {
        let before = out.len();
        for (id, o) in actual.objects.iter().chain(desired.objects.iter()) {
            if !out.contains(id) && out.iter().any(|r| depends_on(o, r)) {
                out.insert(id.clone());
            }
        }
        if out.len() == before {
            return Ok(out);
        }
    }
}

/// A tenant VNI's VXLAN device left in the switch's own namespace by an
/// interrupted addition (it is created there, then moved into the VRF):
/// the kernel refuses a second device with the same VNI.
fn stray_vxlan(o: &Object) -> Option<Command> {
    let vni = match o {
        Object::Vrf(v) => v.l3_vni,
        Object::Segment(s) => match &s.purpose {
            SegmentPurpose::Tenant { .. } => s.vni,
            SegmentPurpose::Provisioning => return None,
        },
        _ => return None,
    };
    Some(["ip", "link", "del", &linux::vxlan_name(vni)].iter().map(|s| s.to_string()).collect())
}

/// Every netdev step of an apply: the rebuilt objects taken down
/// (dependents first; both their last-given and their desired forms, so
/// whichever half of a change the switch holds goes), then the renderer's
/// convergence from `actual` without them to `desired`.
pub(crate) fn netdev_steps(
    switch: &str,
    actual: &SwitchConfig,
    desired: &SwitchConfig,
) -> neocloud_fabric::Result<Vec<Command>> {
    let rebuilt = rebuilt(switch, actual, desired)?;
    let mut out = Vec::new();
    for id in rebuilt.iter().rev() {
        let (a, d) = (actual.get(id), desired.get(id));
        if let Some(a) = a {
            out.extend(removal(switch, actual, a)?);
        }
        if let Some(d) = d {
            if a != Some(d) {
                out.extend(removal(switch, desired, d)?);
            }
            out.extend(stray_vxlan(d));
        }
    }
    let mut base = actual.clone();
    base.objects.retain(|id, _| !rebuilt.contains(id));
    out.extend(converge_frr(switch, &base, desired)?.commands);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    use super::super::testing::leaf;
    use neocloud_fabric::{PortMode, SwitchOs};

    fn lines(steps: &[Command]) -> Vec<String> {
        steps.iter().map(|c| c.join(" ")).collect()
    }

    fn pos(lines: &[String], line: &str) -> usize {
        lines.iter().position(|l| l == line).unwrap_or_else(|| panic!("no `{line}` in {lines:#?}"))
    }

    #[test]
    fn a_first_build_clears_leftovers_then_runs_the_renderers_steps() {
        let (empty, desired) = (SwitchConfig::new(SwitchOs::Frr), leaf());
        let steps = netdev_steps("leaf1", &empty, &desired).unwrap();
        let rendered = converge_frr("leaf1", &empty, &desired).unwrap().commands;
        assert!(steps.ends_with(&rendered));
        let clearing = &steps[..steps.len() - rendered.len()];
        assert!(!clearing.is_empty());
        for c in clearing {
            assert_eq!(tolerance(c), Tolerate::Absent, "{c:?}");
        }
        let l = lines(clearing);
        // Dependents first: the tenant port leaves the VRF before its
        // bridge goes, the bridge before the namespace.
        let port_out = pos(&l, "ip -n Vrf5000 link set swp2 netns underlay");
        let bridge_del = pos(&l, "ip -n Vrf5000 link del br100");
        let ns_del = pos(&l, "ip netns del Vrf5000");
        assert!(port_out < bridge_del && bridge_del < ns_del);
        // A tenant VNI's device left in the switch's namespace goes too.
        assert!(l.contains(&"ip link del vni100".to_string()));
        assert!(l.contains(&"ip link del vni5000".to_string()));
        // The provisioning VNI lives there: only its own removal deletes it.
        assert_eq!(l.iter().filter(|s| *s == "ip link del vni9000").count(), 1);
    }

    /// The batch, run by a real shell: tolerated failures pass, the first
    /// other failure stops it and is reported with its index, status and
    /// error; nothing after it runs.
    #[test]
    fn a_batch_runs_steps_in_order_and_stops_at_the_first_real_failure() {
        let dir = std::env::temp_dir().join(format!("neocloud-batch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = |n: &str| dir.join(n).to_str().unwrap().to_string();
        let run = |steps: Vec<Command>| {
            let out = std::process::Command::new("sh")
                .arg("-s")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .and_then(|mut c| {
                    use std::io::Write;
                    c.stdin.take().unwrap().write_all(batch_script(&steps).as_bytes())?;
                    c.wait_with_output()
                })
                .unwrap();
            let (o, e) =
                (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
            (out.status.code(), batch_failure(&o, &e))
        };
        // A removal of something that is not there passes (harmless: the
        // namespace does not exist).
        let removal_of_nothing =
            v(&["ip", "-n", "NoSuchNamespace-neocloud", "link", "del", "vni1"]);
        let (status, failure) = run(vec![
            removal_of_nothing.clone(),
            v(&["touch", &marker("a")]),
            v(&["sh", "-c", "echo 'it''s broken' >&2; exit 2"]),
            v(&["touch", &marker("b")]),
        ]);
        assert_eq!(status, Some(3));
        assert_eq!(failure, Some((2, 2, "its broken".to_string())));
        assert!(std::path::Path::new(&marker("a")).exists());
        assert!(!std::path::Path::new(&marker("b")).exists(), "nothing runs after a failure");
        // A removal that fails for another reason stops the batch too
        // (harmless: refused as it parses).
        let (_, failure) = run(vec![v(&["ip", "addr", "del", "300.1.1.1/32", "dev", "lo"])]);
        let (i, rc, err) = failure.unwrap();
        assert_eq!((i, rc), (0, 1));
        assert!(!err.is_empty());
        // All fine: status 0, nothing reported.
        assert_eq!(run(vec![removal_of_nothing, v(&["true"])]), (Some(0), None));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn what_is_built_on_an_object_is_rebuilt_with_it() {
        use neocloud_fabric::PublicLinkConfig;
        let cfg = leaf();
        let on = |id: &ObjectId| -> Vec<String> {
            cfg.objects.values().filter(|o| depends_on(o, id)).map(|o| o.id().to_string()).collect()
        };
        assert_eq!(on(&ObjectId::Vtep), ["vrf:Vrf5000", "segment:100", "segment:9000"]);
        assert_eq!(
            on(&ObjectId::Vrf("Vrf5000".into())),
            ["segment:100", "port:swp2", "policy:100"]
        );
        assert_eq!(on(&ObjectId::Segment(100)), ["port:swp2", "policy:100"]);
        assert_eq!(on(&ObjectId::Segment(9000)), ["port:swp4"]);
        assert!(on(&ObjectId::Bgp).is_empty());
        let link = Object::PublicLink(PublicLinkConfig {
            vrf: "Vrf5000".into(),
            l3_vni: 5000,
            public: vec![],
        });
        assert!(depends_on(&link, &ObjectId::Vrf("Vrf5000".into())));
        assert!(depends_on(&link, &ObjectId::Uplink));
        assert!(!depends_on(&link, &ObjectId::Vrf("Vrf5001".into())));
    }

    #[test]
    fn nothing_to_change_is_no_step() {
        assert!(netdev_steps("leaf1", &leaf(), &leaf()).unwrap().is_empty());
    }

    #[test]
    fn a_missing_object_is_rebuilt_with_what_is_built_on_it() {
        let desired = leaf();
        let mut observed = desired.clone();
        observed.objects.remove(&ObjectId::Segment(100));
        assert_eq!(
            rebuilt("leaf1", &observed, &desired).unwrap().into_iter().collect::<Vec<_>>(),
            [ObjectId::Segment(100), ObjectId::Port("swp2".into()), ObjectId::Policy(100)]
        );
        let l = lines(&netdev_steps("leaf1", &observed, &desired).unwrap());
        // Down: the policy chain, the port back to the switch's namespace,
        // the pair; the VRF namespace stays.
        let down = [
            "ip netns exec Vrf5000 nft delete chain inet neocloud to-100",
            "ip -n Vrf5000 link set swp2 netns underlay",
            "ip -n Vrf5000 link del vni100",
            "ip -n Vrf5000 link del br100",
        ];
        // Up: the pair, the port, the policy.
        let up = [
            "ip link add vni100 type vxlan id 100 local 10.0.0.1 dstport 4789 nolearning",
            "ip -n Vrf5000 link set vni100 master br100 addrgenmode none",
            "ip link set swp2 netns Vrf5000",
            "ip -n Vrf5000 link set swp2 master br100",
        ];
        let at: Vec<usize> = down.iter().chain(up.iter()).map(|s| pos(&l, s)).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{l:#?}");
        assert!(l.iter().any(|s| s.contains("add chain inet neocloud to-100")));
        assert!(!l.iter().any(|s| s.contains("netns del") || s.contains("netns add")), "{l:#?}");
    }

    #[test]
    fn an_in_place_change_takes_nothing_down() {
        let a = leaf();
        let mut b = a.clone();
        if let Some(Object::Segment(s)) = b.objects.get_mut(&ObjectId::Segment(100)) {
            if let SegmentPurpose::Tenant { gateway, .. } = &mut s.purpose {
                *gateway = "10.100.0.254/24".parse().unwrap();
            }
        }
        assert!(rebuilt("leaf1", &a, &b).unwrap().is_empty());
        assert_eq!(
            lines(&netdev_steps("leaf1", &a, &b).unwrap()),
            [
                "ip -n Vrf5000 addr del 10.100.0.1/24 dev br100",
                "ip -n Vrf5000 addr add 10.100.0.254/24 dev br100"
            ]
        );
    }

    #[test]
    fn a_port_changing_network_is_cleared_from_both_places_first() {
        let a = leaf();
        let mut b = a.clone();
        // The quarantined node is attached to the tenant network.
        if let Some(Object::Port(p)) = b.objects.get_mut(&ObjectId::Port("swp4".into())) {
            p.mode = PortMode::Tenant { vni: 100, vlan: None, vrf: "Vrf5000".into() };
        }
        assert_eq!(
            rebuilt("leaf1", &a, &b).unwrap().into_iter().collect::<Vec<_>>(),
            [ObjectId::Port("swp4".into())]
        );
        let l = lines(&netdev_steps("leaf1", &a, &b).unwrap());
        let first = [
            "ip link set swp4 down",
            "ip link set swp4 nomaster",
            "ip -n Vrf5000 link set swp4 down",
            "ip -n Vrf5000 link set swp4 nomaster",
            "ip -n Vrf5000 link set swp4 netns underlay",
            "ip link set swp4 netns Vrf5000",
            "ip -n Vrf5000 link set swp4 master br100",
            "ip -n Vrf5000 link set swp4 up",
        ];
        assert_eq!(l, first);
    }

    #[test]
    fn removals_tolerate_absence_additions_of_addresses_presence() {
        use Tolerate::*;
        for (argv, t) in [
            (&["ip", "-n", "Vrf5000", "link", "del", "vni100"][..], Absent),
            (&["ip", "link", "del", "vni100"], Absent),
            (&["ip", "netns", "del", "Vrf5000"], Absent),
            (&["ip", "addr", "del", "10.0.0.1/32", "dev", "lo"], Absent),
            (&["ip", "-n", "Vrf5000", "link", "set", "swp2", "down"], Absent),
            (&["ip", "-n", "Vrf5000", "link", "set", "swp2", "nomaster"], Absent),
            (&["ip", "-n", "Vrf5000", "link", "set", "swp2", "netns", "underlay"], Absent),
            (&["ip", "link", "set", "swp4", "nomaster"], Absent),
            (
                &[
                    "ip", "netns", "exec", "Vrf5000", "nft", "flush", "chain", "inet", "neocloud",
                    "to-100",
                ],
                Absent,
            ),
            (
                &[
                    "ip", "netns", "exec", "Vrf5000", "nft", "delete", "chain", "inet", "neocloud",
                    "to-100",
                ],
                Absent,
            ),
            (&["ip", "-n", "Vrf5000", "addr", "add", "10.100.0.1/24", "dev", "br100"], Present),
            (
                &["ip", "route", "del", "203.0.113.9/32", "via", "169.254.255.2", "dev", "pub5000"],
                Absent,
            ),
            (&["ip", "rule", "del", "iif", "pub5000", "lookup", "200"], Absent),
            (&["ip", "-n", "Vrf5000", "route", "add", "default", "via", "169.254.255.1"], Present),
            (&["nft", "delete", "table", "inet", "neocloud"], Absent),
            // Additions and moves into a VRF must really happen.
            (&["ip", "link", "add", "vni100", "type", "vxlan", "id", "100"], Nothing),
            (&["ip", "netns", "add", "Vrf5000"], Nothing),
            (&["ip", "link", "set", "swp2", "netns", "Vrf5000"], Nothing),
            (&["ip", "-n", "Vrf5000", "link", "set", "swp2", "master", "br100"], Nothing),
            (&["ip", "-n", "Vrf5000", "link", "set", "swp2", "up"], Nothing),
            (
                &["bridge", "-n", "Vrf5000", "link", "set", "dev", "vni100", "learning", "off"],
                Nothing,
            ),
            (
                &["ip", "netns", "exec", "Vrf5000", "nft", "add", "table", "inet", "neocloud"],
                Nothing,
            ),
            (
                &["ip", "netns", "exec", "Vrf5000", "sysctl", "-qw", "net.ipv4.ip_forward=1"],
                Nothing,
            ),
            (&["sysctl", "-qw", "net.ipv4.ip_forward=1"], Nothing),
            (&[], Nothing),
        ] {
            assert_eq!(tolerance(&v(argv)), t, "{argv:?}");
        }
    }

    /// The messages are the ones iproute2 6.1 and nft 1.0.6 print.
    #[test]
    fn only_the_absence_or_presence_messages_are_tolerated() {
        use Tolerate::*;
        for absent in [
            "Cannot find device \"vni100\"\n",
            "Cannot open network namespace \"Vrf5000\": No such file or directory\n",
            "Cannot remove namespace file \"/run/netns/Vrf5000\": No such file or directory\n",
            "Error: ipv4: Address not found.\n",
            "Error: Could not process rule: No such file or directory\nflush chain inet neocloud to-100\n",
            "RTNETLINK answers: No such process\n",
            "Error: ipv4: FIB table does not exist.\nDump terminated\n",
        ] {
            assert!(tolerated(Absent, absent), "{absent}");
            assert!(!tolerated(Nothing, absent));
            assert!(!tolerated(Present, absent));
        }
        for failure in [
            "setting the network namespace \"Vrf5000\" failed: Invalid argument\n",
            "RTNETLINK answers: Device or resource busy\n",
            "Error: Could not process rule: Device or resource busy\n",
            "",
        ] {
            assert!(!tolerated(Absent, failure), "{failure}");
            assert!(!tolerated(Present, failure), "{failure}");
        }
        assert!(tolerated(Present, "Error: ipv4: Address already assigned.\n"));
        assert!(tolerated(Present, "RTNETLINK answers: File exists\n"));
    }
}
