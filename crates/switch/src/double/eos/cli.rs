//! The EOS configuration model behind the eAPI double: a tree of sections
//! edited one command at a time in a stack of modes, as the EOS CLI does.
//!
//! What it models (a subset of the EOS grammar: the sections and lines the
//! fabric renders, plus the management interface):
//! - modes: `interface X`, `vlan N` (1-4094), `vrf instance X`, `router bgp
//!   N` and, inside it, `vlan N`, `vrf X`, `address-family X`; `exit` leaves
//!   one. Anything else is a line of the current mode, checked against what
//!   that mode accepts; a command a mode does not take is tried in the
//!   enclosing ones, and one no mode takes is "Invalid input". Physical
//!   interfaces (`Ethernet*`, `Management*`) exist only if the switch has
//!   them.
//! - a line replaces the line of the same setting (`description`,
//!   `switchport access vlan`, `vxlan vlan 10`, `rd`, ...); `no X` removes
//!   it (or a section); `default interface X` resets an interface.
//! - defaults are not shown: `no shutdown` and `switchport` store nothing,
//!   while the non-default `no switchport` and `no bgp default
//!   ipv4-unicast` are kept, as in EOS's running-config.

/// A line and the lines under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub line: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn new(line: &str) -> Node {
        Node { line: line.into(), children: Vec::new() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Interface,
    Vlan,
    VrfInstance,
    RouterBgp,
    BgpVlan,
    BgpVrf,
    BgpAddressFamily,
    /// A section the double shows but does not edit (e.g. `management api
    /// http-commands`).
    Other,
}

/// Forms EOS does not show (the default).
const DEFAULT_FORMS: &[&str] = &["no shutdown", "switchport", "bgp default ipv4-unicast"];

/// What a line of each mode may start with.
fn accepts(mode: Option<Mode>, line: &str) -> bool {
    let ok: &[&str] = match mode {
        None => &[
            "hostname ",
            "service routing protocols model ",
            "ip routing",
            "ipv6 unicast-routing",
            "ip virtual-router mac-address ",
        ],
        Some(Mode::Interface) => &[
            "description ",
            "switchport",
            "shutdown",
            "ipv6 enable",
            "ip address ",
            "vrf ",
            "mtu ",
            "vxlan source-interface ",
            "vxlan udp-port ",
            "vxlan vlan ",
            "vxlan vrf ",
        ],
        Some(Mode::Vlan) => &["name "],
        Some(Mode::VrfInstance) => &["description "],
        Some(Mode::RouterBgp) => {
            &["router-id ", "bgp default ipv4-unicast", "neighbor ", "maximum-paths "]
        }
        Some(Mode::BgpVlan) => &["rd ", "route-target ", "redistribute "],
        Some(Mode::BgpVrf) => &["rd ", "route-target ", "redistribute ", "router-id "],
        Some(Mode::BgpAddressFamily) => &["neighbor ", "network "],
        Some(Mode::Other) => &[],
    };
    ok.iter().any(|p| line == p.trim_end() || line.starts_with(p))
}

/// The mode a header line enters from `mode`, if it is one.
fn enters(mode: Option<Mode>, line: &str) -> Option<Mode> {
    let w: Vec<&str> = line.split(' ').collect();
    match (mode, w.as_slice()) {
        (None, ["interface", _]) => Some(Mode::Interface),
        (None, ["vlan", _]) => Some(Mode::Vlan),
        (None, ["vrf", "instance", _]) => Some(Mode::VrfInstance),
        (None, ["router", "bgp", _]) => Some(Mode::RouterBgp),
        (Some(Mode::RouterBgp), ["vlan", _]) => Some(Mode::BgpVlan),
        (Some(Mode::RouterBgp), ["vrf", _]) => Some(Mode::BgpVrf),
        (Some(Mode::RouterBgp), ["address-family", _]) => Some(Mode::BgpAddressFamily),
        _ => None,
    }
}

/// The setting a line sets: a new line replaces the old line of the same
/// setting.
fn setting(line: &str) -> String {
    let w: Vec<&str> = line.split(' ').collect();
    let n = match w.as_slice() {
        ["no", rest @ ..] => return setting(&rest.join(" ")),
        ["switchport", "access", "vlan", ..] => 3,
        ["vxlan", "vlan" | "vrf", ..] => 3,
        ["vxlan", ..] => 2,
        ["ip", "address", "virtual", ..] => 3,
        ["ip", "virtual-router", "mac-address", ..] => 3,
        ["ip", "address", ..] => 2,
        ["service", "routing", "protocols", "model", ..] => 4,
        ["neighbor", "interface", ..] => 3,
        ["neighbor", _, "peer", "group", ..] => 4,
        ["neighbor", _, ..] if w.len() > 2 => 3,
        ["description" | "router-id" | "rd" | "name" | "vrf" | "hostname" | "mtu", ..] => 1,
        _ => w.len(),
    };
    w[..n.min(w.len())].join(" ")
}

fn physical(name: &str) -> bool {
    name.starts_with("Ethernet") || name.starts_with("Management")
}

/// The children list at `stack` (header lines from the top).
pub fn at<'a>(nodes: &'a mut Vec<Node>, stack: &[String]) -> &'a mut Vec<Node> {
    let mut at = nodes;
    for h in stack {
        let i = at.iter().position(|n| n.line == *h).expect("an open section exists");
        at = &mut at[i].children;
    }
    at
}

/// The mode of the innermost open section.
pub fn mode_of(stack: &[String]) -> Option<Mode> {
    let mut mode = None;
    for h in stack {
        mode = Some(enters(mode, h).unwrap_or(Mode::Other));
    }
    mode
}

/// Runs one configuration command with `stack` the open sections; a
/// header pushes onto it. `ports` are the switch's physical interfaces. A
/// command the current mode does not take is tried in the enclosing modes,
/// as EOS does (`vrf instance B` right after `vrf instance A` leaves A).
pub fn configure(
    nodes: &mut Vec<Node>,
    stack: &mut Vec<String>,
    cmd: &str,
    ports: &[String],
) -> Result<(), String> {
    let mut open = stack.clone();
    loop {
        match configure_here(nodes, &mut open, cmd, ports) {
            Ok(()) => {
                *stack = open;
                return Ok(());
            }
            Err(e) if open.is_empty() => return Err(e),
            Err(_) => {
                open.pop();
            }
        }
    }
}

fn configure_here(
    nodes: &mut Vec<Node>,
    stack: &mut Vec<String>,
    cmd: &str,
    ports: &[String],
) -> Result<(), String> {
    let line = cmd.split_whitespace().collect::<Vec<_>>().join(" ");
    let mode = mode_of(stack);
    let invalid = || Err("Invalid input".to_string());
    if let Some(rest) = line.strip_prefix("default interface ").filter(|_| mode.is_none()) {
        let here = at(nodes, stack);
        if let Some(n) = here.iter_mut().find(|n| n.line == format!("interface {rest}")) {
            n.children.clear();
            return Ok(());
        }
        return invalid();
    }
    if let Some(rest) = line.strip_prefix("no ") {
        if let Some(m) = enters(mode, rest) {
            let here = at(nodes, stack);
            let name = rest.strip_prefix("interface ");
            match (m, name) {
                (Mode::Interface, Some(n)) if physical(n) => {
                    if let Some(node) = here.iter_mut().find(|x| x.line == rest) {
                        node.children.clear();
                    }
                }
                _ => here.retain(|n| n.line != rest),
            }
            return Ok(());
        }
        if !accepts(mode, rest) {
            return invalid();
        }
        let here = at(nodes, stack);
        if DEFAULT_FORMS.contains(&line.as_str())
            || ["no switchport", "no bgp default ipv4-unicast"].contains(&line.as_str())
        {
            set(here, &line);
        } else {
            let key = setting(rest);
            here.retain(|n| {
                !(n.children.is_empty() && (setting(&n.line) == key || n.line == rest))
            });
        }
        return Ok(());
    }
    if let Some(m) = enters(mode, &line) {
        if m == Mode::Interface {
            let name = &line["interface ".len()..];
            if physical(name) && !ports.iter().any(|p| p == name) {
                return invalid();
            }
        }
        if m == Mode::Vlan || m == Mode::BgpVlan {
            let ok = line[5..].parse::<u16>().is_ok_and(|v| (1..=4094).contains(&v));
            if !ok {
                return invalid();
            }
        }
        let here = at(nodes, stack);
        if !here.iter().any(|n| n.line == line) {
            here.push(Node::new(&line));
        }
        stack.push(line);
        return Ok(());
    }
    if !accepts(mode, &line) {
        return invalid();
    }
    set(at(nodes, stack), &line);
    Ok(())
}

fn set(here: &mut Vec<Node>, line: &str) {
    let key = setting(line);
    here.retain(|n| !(n.children.is_empty() && setting(&n.line) == key));
    if !DEFAULT_FORMS.contains(&line) {
        here.push(Node::new(line));
    }
}

/// The configuration as EOS prints it (`show running-config`).
pub fn text(nodes: &[Node]) -> String {
    fn walk(nodes: &[Node], depth: usize, out: &mut String) {
        for n in nodes {
            out.push_str(&format!("{}{}\n", "   ".repeat(depth), n.line));
            walk(&n.children, depth + 1, out);
            if !n.children.is_empty() || depth == 0 {
                out.push_str(&format!("{}!\n", "   ".repeat(depth)));
            }
        }
    }
    let mut out = String::from(
        "! Command: show running-config\n! device: double (vEOS-lab, EOS-4.31.0F)\n!\n",
    );
    walk(nodes, 0, &mut out);
    out.push_str("end\n");
    out
}

/// The configuration as eAPI's JSON form of `show running-config`.
pub fn json(nodes: &[Node]) -> serde_json::Value {
    fn walk(nodes: &[Node]) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for n in nodes {
            let v = if n.children.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::json!({"cmds": walk(&n.children), "comments": []})
            };
            m.insert(n.line.clone(), v);
        }
        serde_json::Value::Object(m)
    }
    serde_json::json!({"cmds": walk(nodes), "comments": [], "header": ["! device: double (vEOS-lab, EOS-4.31.0F)"]})
}

/// A line diff of two texts (` `, `-`, `+` prefixes), like `show
/// session-config diffs` without hunk headers.
pub fn diff(from: &str, to: &str, from_name: &str, to_name: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (from.lines().collect(), to.lines().collect());
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] =
                if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let mut out = format!("--- {from_name}\n+++ {to_name}\n");
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!(" {}\n", a[i]));
            (i, j) = (i + 1, j + 1);
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+{}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("-{}\n", a[i]));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(nodes: &mut Vec<Node>, cmds: &[&str]) -> Result<(), String> {
        let ports = vec!["Ethernet1".to_string()];
        let mut stack = Vec::new();
        for c in cmds {
            if *c == "exit" {
                stack.pop();
                continue;
            }
            configure(nodes, &mut stack, c, &ports)?;
        }
        Ok(())
    }

    #[test]
    fn lines_replace_their_setting_and_defaults_are_not_shown() {
        let mut n = vec![Node::new("interface Ethernet1")];
        run(
            &mut n,
            &[
                "interface Ethernet1",
                "description a",
                "switchport access vlan 10",
                "shutdown",
                "exit",
            ],
        )
        .unwrap();
        run(
            &mut n,
            &[
                "interface Ethernet1",
                "description b",
                "switchport access vlan 11",
                "no shutdown",
                "exit",
            ],
        )
        .unwrap();
        assert_eq!(
            text(&n).lines().skip(3).collect::<Vec<_>>(),
            ["interface Ethernet1", "   description b", "   switchport access vlan 11", "!", "end"]
        );
        run(&mut n, &["default interface Ethernet1"]).unwrap();
        assert!(n[0].children.is_empty());
    }

    #[test]
    fn sections_nest_and_invalid_input_is_refused() {
        let mut n = Vec::new();
        run(
            &mut n,
            &[
                "router bgp 65101",
                "vlan 10",
                "rd 10.0.0.1:10",
                "exit",
                "no bgp default ipv4-unicast",
                "exit",
            ],
        )
        .unwrap();
        assert_eq!(n[0].children.len(), 2);
        assert_eq!(run(&mut n, &["interface Ethernet9"]), Err("Invalid input".into()));
        assert_eq!(run(&mut n, &["vlan 5000"]), Err("Invalid input".into()));
        assert_eq!(run(&mut n, &["router bgp 65101", "rd 1:1"]), Err("Invalid input".into()));
        // Leaving a mode implicitly, as EOS does.
        run(
            &mut n,
            &[
                "vrf instance A",
                "vrf instance B",
                "router bgp 65101",
                "vlan 10",
                "vlan 11",
                "rd 1:11",
            ],
        )
        .unwrap();
        assert_eq!(n.iter().filter(|x| x.line.starts_with("vrf instance")).count(), 2);
        assert_eq!(n[0].children.iter().filter(|x| x.line.starts_with("vlan")).count(), 2);
        run(&mut n, &["no router bgp 65101"]).unwrap();
        assert!(n.iter().all(|x| !x.line.starts_with("router bgp")));
    }

    #[test]
    fn diffs_mark_added_and_removed_lines() {
        assert_eq!(diff("a\nb\n", "a\nc\n", "x", "y"), "--- x\n+++ y\n a\n+c\n-b\n");
    }
}
