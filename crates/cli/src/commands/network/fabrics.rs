//! `neocloud fabric ...`: the provider's fabrics. A fabric is one document
//! (pools, switches, cabling) applied as a whole; `plan` shows, per switch,
//! what applying the current intent would change and the OS-level steps.

use super::{wire, Call};
use crate::client::{self, Client};
use crate::commands::wait::one_line;
use crate::commands::{parse_key, print_done, Global};
use crate::output::{
    emit, emit_json, or_dash, parse, print_list, short_time, CliError, Format, Row, Table,
};
use neocloud_types::{Fabric, FabricPlan, SwitchSyncState};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct FabricArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: FabricCmd,
}

#[derive(clap::Subcommand)]
enum FabricCmd {
    /// List the fabrics, with how many switches hold the current intent.
    List,
    /// Show one fabric and each switch's apply status.
    Get {
        /// Fabric name or id.
        #[arg(value_parser = parse_key)]
        fabric: String,
    },
    /// Create a fabric, or replace its document (switches, cabling, pools).
    ///
    /// FILE (`-` for stdin) is the JSON document, or what `fabric get -o
    /// json` printed (its `spec` is applied). A fabric that exists is
    /// replaced at --generation, else at the generation the file was read
    /// at (`fabric get` output), else at its current one. Exit 7 names the
    /// document's field (`switches[2].asn`).
    Apply {
        /// Fabric name (or id, to replace).
        #[arg(value_parser = parse_key)]
        fabric: String,
        /// The document.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
        /// The generation being replaced (a stale one fails with exit 6).
        #[arg(long)]
        generation: Option<i64>,
    },
    /// What applying the fabric's current intent would change on each
    /// switch: object-level changes and the steps in the switch OS's terms.
    /// With --file, what replacing its document with FILE would change
    /// (nothing is written or pushed).
    Plan {
        /// Fabric name or id.
        #[arg(value_parser = parse_key)]
        fabric: String,
        /// A proposed document (as for `apply`).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Remove a fabric no VPC uses.
    Delete {
        /// Fabric name or id.
        #[arg(value_parser = parse_key)]
        fabric: String,
    },
}

fn fabric_path(fabric: &str) -> String {
    format!("/v1/fabrics/{}", client::seg(fabric))
}

impl FabricCmd {
    /// The call. `current` answers a fabric's generation (`None`: no such
    /// fabric yet); only an `apply` given none asks it.
    fn call(
        &self,
        current: impl FnOnce(&str) -> Result<Option<i64>, CliError>,
    ) -> Result<Call, CliError> {
        Ok(match self {
            FabricCmd::List => Call::Get("/v1/fabrics".into()),
            FabricCmd::Get { fabric } => Call::Get(fabric_path(fabric)),
            FabricCmd::Apply { fabric, file, generation } => {
                let (doc, read_at) = document(read_json(file)?, fabric)?;
                let generation = match generation.or(read_at) {
                    Some(g) => Some(g),
                    None => current(fabric)?,
                };
                apply_call(fabric, doc, generation)
            }
            FabricCmd::Plan { fabric, file: None } => {
                Call::Get(format!("{}/plan", fabric_path(fabric)))
            }
            FabricCmd::Plan { fabric, file: Some(file) } => {
                let (doc, _) = document(read_json(file)?, fabric)?;
                Call::Post {
                    path: format!("{}/plan", fabric_path(fabric)),
                    body: Value::Object(doc),
                    idempotency_key: None,
                }
            }
            FabricCmd::Delete { fabric } => Call::Delete(fabric_path(fabric)),
        })
    }
}

/// A file's JSON (`-`: stdin); an unreadable file is a usage error.
fn read_json(p: &Path) -> Result<Value, CliError> {
    let text = if p == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(p)
    }
    .map_err(|e| CliError::Usage(format!("--file {}: {e}", p.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("--file {}: not JSON: {e}", p.display())))
}

/// The fabric document in a file's JSON, without its generation, and that
/// generation: a document's own `generation`, or (for `fabric get -o json`
/// output of this fabric) the one it was read at.
fn document(v: Value, fabric: &str) -> Result<(Map<String, Value>, Option<i64>), CliError> {
    let bad = |m: &str| CliError::Usage(format!("--file: {m}"));
    let Value::Object(mut obj) = v else {
        return Err(bad("expected a JSON object: the fabric document"));
    };
    if obj.contains_key("spec") && !obj.contains_key("kind") {
        let this = obj.get("name").and_then(Value::as_str) == Some(fabric)
            || obj.get("id").and_then(Value::as_str) == Some(fabric);
        let read = obj.get("generation").and_then(Value::as_i64).filter(|_| this);
        let Some(Value::Object(mut spec)) = obj.remove("spec") else {
            return Err(bad("`spec` is not an object"));
        };
        spec.remove("generation");
        return Ok((spec, read));
    }
    let read = match obj.remove("generation") {
        None | Some(Value::Null) => None,
        Some(g) => Some(g.as_i64().ok_or_else(|| bad("`generation` is not a number"))?),
    };
    Ok((obj, read))
}

/// `PUT /v1/fabrics/{fabric}`: the document, at `generation` when the
/// fabric exists.
fn apply_call(fabric: &str, mut doc: Map<String, Value>, generation: Option<i64>) -> Call {
    if let Some(g) = generation {
        doc.insert("generation".into(), Value::from(g));
    }
    Call::Put { path: fabric_path(fabric), body: Value::Object(doc) }
}

/// The fabric's generation, `None` when there is no such fabric yet.
fn current_generation(c: &Client, fabric: &str) -> Result<Option<i64>, CliError> {
    match c.get(&fabric_path(fabric), &[]) {
        Ok(v) => Ok(Some(parse::<Fabric>(&v)?.generation)),
        Err(CliError::Api(a)) if a.status == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

/// How many managed switches hold the current intent: `2/3` (`-` when
/// none is managed).
fn in_sync(f: &Fabric) -> String {
    let managed = f.switches.iter().filter(|s| s.state != SwitchSyncState::Unmanaged);
    let (n, ok) = managed
        .fold((0, 0), |(n, ok), s| (n + 1, ok + usize::from(s.state == SwitchSyncState::InSync)));
    if n == 0 {
        "-".to_string()
    } else {
        format!("{ok}/{n}")
    }
}

impl Row for Fabric {
    const HEADER: &'static [&'static str] =
        &["NAME", "ID", "KIND", "SWITCHES", "IN SYNC", "INTENT", "GENERATION", "CREATED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.id.clone(),
            wire(&self.spec.kind),
            self.switches.len().to_string(),
            in_sync(self),
            self.intent_generation.to_string(),
            self.generation.to_string(),
            short_time(&self.created_at),
        ]
    }
}

/// The fabric's row, then one row per switch.
fn fabric_text(f: &Fabric) -> String {
    let mut t = Table::new(Fabric::HEADER);
    t.row(f.cells());
    let mut out = t.render();
    if f.switches.is_empty() {
        return out;
    }
    let mut t = Table::new(&["SWITCH", "ROLE", "OS", "STATE", "APPLIED", "CHECKED", "MESSAGE"]);
    for s in &f.switches {
        let spec = f.spec.switches.iter().find(|x| x.name.as_str() == s.name);
        t.row(vec![
            s.name.clone(),
            spec.map_or("-".into(), |x| wire(&x.role)),
            spec.map_or("-".into(), |x| wire(&x.os)),
            wire(&s.state),
            s.applied_generation.to_string(),
            s.checked_at.as_deref().map_or("-".into(), short_time),
            or_dash(s.message.as_deref()),
        ]);
    }
    out.push('\n');
    out.push_str(&t.render());
    out
}

fn print_fabric(format: Format, v: &Value) -> Result<(), CliError> {
    match format {
        Format::Json => emit_json(v),
        Format::Table => emit(&fabric_text(&parse::<Fabric>(v)?)),
    }
    Ok(())
}

/// The plan as text: a summary row per switch, then each changing
/// switch's changes and numbered steps (a step of several lines, such as a
/// file, indented under its number).
fn plan_text(p: &FabricPlan) -> String {
    if let Some(sm) = &p.subnet_manager {
        let mut out = match sm.changes.len() {
            0 => format!(
                "intent generation {}: no changes; the subnet manager holds the partitions\n",
                p.intent_generation
            ),
            n => format!(
                "intent generation {}: {n} subnet manager call{}\n",
                p.intent_generation,
                if n == 1 { "" } else { "s" }
            ),
        };
        for c in &sm.changes {
            out.push_str(&format!("  {}\n", one_line(c)));
        }
        out.push_str("\npartitions.conf:\n");
        for l in sm.partitions_conf.lines() {
            out.push_str(&format!("  {}\n", one_line(l)));
        }
        return out;
    }
    let changing = p.switches.iter().filter(|s| !s.changes.is_empty()).count();
    let mut out = match changing {
        0 => format!(
            "intent generation {}: no changes; the switches hold the intent\n",
            p.intent_generation
        ),
        n => format!(
            "intent generation {}: {n} of {} switches change\n",
            p.intent_generation,
            p.switches.len()
        ),
    };
    if p.switches.is_empty() {
        return out;
    }
    let mut t = Table::new(&["SWITCH", "OS", "CHANGES", "STEPS"]);
    for s in &p.switches {
        t.row(vec![
            s.name.clone(),
            wire(&s.os),
            s.changes.len().to_string(),
            s.steps.len().to_string(),
        ]);
    }
    out.push('\n');
    out.push_str(&t.render());
    for s in p.switches.iter().filter(|s| !s.changes.is_empty() || !s.steps.is_empty()) {
        out.push_str(&format!("\n{} ({})\n", one_line(&s.name), wire(&s.os)));
        out.push_str("  changes:\n");
        for c in &s.changes {
            out.push_str(&format!("    {}\n", one_line(c)));
        }
        if s.steps.is_empty() {
            continue;
        }
        out.push_str("  steps:\n");
        let width = s.steps.len().to_string().len();
        for (i, step) in s.steps.iter().enumerate() {
            let mut lines = step.lines();
            let first = lines.next().unwrap_or("");
            out.push_str(&format!("    {:>width$}. {}\n", i + 1, one_line(first).trim_end()));
            for l in lines {
                let l = one_line(l);
                let l = l.trim_end();
                if l.is_empty() {
                    out.push('\n');
                } else {
                    out.push_str(&format!("    {:width$}  {l}\n", ""));
                }
            }
        }
    }
    out
}

pub fn fabric(a: FabricArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let f = a.g.output;
    let v = a.cmd.call(|fabric| current_generation(&c, fabric))?.send(&c)?;
    match &a.cmd {
        FabricCmd::List => print_list::<Fabric>(f, &v),
        FabricCmd::Get { .. } | FabricCmd::Apply { .. } => print_fabric(f, &v),
        FabricCmd::Plan { .. } => {
            match f {
                Format::Json => emit_json(&v),
                Format::Table => emit(&plan_text(&parse::<FabricPlan>(&v)?)),
            }
            Ok(())
        }
        FabricCmd::Delete { fabric } => {
            print_done(f, &format!("fabric {fabric} deleted"));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parsed_cmd;
    use super::*;
    use crate::commands::{cli_parses as parses, Cmd};
    use serde_json::json;

    fn parsed(args: &[&str]) -> FabricCmd {
        let Cmd::Fabric(a) = parsed_cmd("fabric", args, &[]) else { panic!("not fabric") };
        a.cmd
    }

    fn spec() -> Value {
        json!({
            "kind": "ethernet",
            "pools": {"l2_vni": {"first": 10000, "last": 10999},
                      "l3_vni": {"first": 50000, "last": 50099},
                      "vlan": {"first": 100, "last": 999}, "route_target_asn": 65000,
                      "provisioning_vni": 9999, "provisioning_vlan": 4000},
            "switches": [{"name": "leaf1", "role": "leaf", "os": "frr",
                          "mgmt_address": "10.255.1.1", "asn": 65101, "loopback": "10.255.1.1",
                          "management": {"transport": "simulated"}}],
        })
    }

    fn put(body: Value) -> Call {
        Call::Put { path: "/v1/fabrics/dc1".into(), body }
    }

    /// The call, the fabric's current generation being `current`.
    fn call(args: &[&str], current: Option<i64>) -> Call {
        parsed(args).call(|_| Ok(current)).unwrap()
    }

    #[test]
    fn requests() {
        assert_eq!(call(&["list"], None), Call::Get("/v1/fabrics".into()));
        assert_eq!(call(&["get", "dc1"], None), Call::Get("/v1/fabrics/dc1".into()));
        assert_eq!(
            call(&["plan", "dc1", "-o", "json"], None),
            Call::Get("/v1/fabrics/dc1/plan".into())
        );
        assert_eq!(call(&["delete", "dc1"], None), Call::Delete("/v1/fabrics/dc1".into()));
        assert!(parses(&["fabric", "apply", "dc1", "--file", "-"]));
        assert!(!parses(&["fabric", "apply", "dc1"]));
        assert!(!parses(&["fabric", "plan"]));

        let dir = std::env::temp_dir().join(format!("neocloud-cli-apply-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("dc1.json");
        std::fs::write(&p, spec().to_string()).unwrap();
        match call(&["plan", "dc1", "-f", p.to_str().unwrap()], None) {
            Call::Post { path, body, .. } => {
                assert_eq!(path, "/v1/fabrics/dc1/plan");
                assert_eq!(body["kind"], "ethernet");
                assert!(body.get("generation").is_none(), "{body}");
            }
            other => panic!("a proposed document is posted: {other:?}"),
        }
        let file = p.to_str().unwrap();
        let at = |g: i64| {
            let mut v = spec();
            v["generation"] = json!(g);
            v
        };
        // A new fabric: no generation; one that exists: its current one,
        // unless --generation says which.
        assert_eq!(call(&["apply", "dc1", "-f", file], None), put(spec()));
        assert_eq!(call(&["apply", "dc1", "-f", file], Some(4)), put(at(4)));
        assert_eq!(call(&["apply", "dc1", "-f", file, "--generation", "3"], Some(4)), put(at(3)));
        // The current one is not read when the file says which.
        std::fs::write(&p, at(2).to_string()).unwrap();
        let asked = parsed(&["apply", "dc1", "-f", file])
            .call(|_| -> Result<Option<i64>, CliError> { panic!("read the generation") })
            .unwrap();
        assert_eq!(asked, put(at(2)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn apply_bodies() {
        // A document: as is, at the generation given, else none (a create).
        let (doc, read) = document(spec(), "dc1").unwrap();
        assert_eq!(read, None);
        assert_eq!(apply_call("dc1", doc.clone(), None), put(spec()));
        let mut at3 = spec();
        at3["generation"] = json!(3);
        assert_eq!(apply_call("dc1", doc, Some(3)), put(at3.clone()));
        // A document's own generation is the one it replaces.
        let (doc, read) = document(at3.clone(), "dc1").unwrap();
        assert_eq!(read, Some(3));
        assert_eq!(apply_call("dc1", doc, read), put(at3));
        let mut null = spec();
        null["generation"] = Value::Null;
        assert_eq!(document(null, "dc1").unwrap().1, None);
        // `fabric get -o json` output: its spec, at the generation it was read.
        let mut spec_read = spec();
        spec_read["generation"] = Value::Null;
        let got = json!({"id": "f-1", "name": "dc1", "spec": spec_read, "generation": 5,
                         "intent_generation": 9, "switches": []});
        let (doc, read) = document(got.clone(), "dc1").unwrap();
        assert_eq!(read, Some(5));
        assert_eq!(Value::Object(doc), spec());
        // ... but not another fabric's generation.
        assert_eq!(document(got.clone(), "dc2").unwrap().1, None);
        assert_eq!(document(got, "f-1").unwrap().1, Some(5));
        for bad in [json!([1]), json!({"kind": "ethernet", "generation": "x"}), json!({"spec": 1})]
        {
            assert!(matches!(document(bad, "dc1"), Err(CliError::Usage(_))));
        }
    }

    #[test]
    fn files() {
        let dir = std::env::temp_dir().join(format!("neocloud-cli-fabric-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("dc1.json");
        std::fs::write(&p, spec().to_string()).unwrap();
        match call(&["plan", "dc1", "-f", p.to_str().unwrap()], None) {
            Call::Post { path, body, .. } => {
                assert_eq!(path, "/v1/fabrics/dc1/plan");
                assert_eq!(body["kind"], "ethernet");
                assert!(body.get("generation").is_none(), "{body}");
            }
            other => panic!("a proposed document is posted: {other:?}"),
        }
        assert_eq!(read_json(&p).unwrap(), spec());
        std::fs::write(&p, "kind = 'ethernet'").unwrap();
        let e = read_json(&p).unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
        assert!(matches!(read_json(&dir.join("missing.json")), Err(CliError::Usage(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn fabric_answer() -> Fabric {
        let mut spec = spec();
        spec["switches"].as_array_mut().unwrap().push(json!({
            "name": "leaf2", "role": "leaf", "os": "sonic", "mgmt_address": "10.255.1.2",
            "asn": 65102, "loopback": "10.255.1.2", "management": {"transport": "none"}}));
        serde_json::from_value(json!({
            "id": "f-1", "name": "dc1", "spec": spec, "intent_generation": 4, "generation": 2,
            "created_at": "2026-01-02T03:04:05.000001Z", "updated_at": "2026-01-02T03:04:05.000001Z",
            "switches": [
                {"name": "leaf1", "state": "in_sync", "applied_generation": 4, "message": null,
                 "checked_at": "2026-01-02T03:05:00.000001Z"},
                {"name": "leaf2", "state": "unmanaged", "applied_generation": 0, "message": null,
                 "checked_at": null},
            ]
        }))
        .unwrap()
    }

    #[test]
    fn fabric_tables() {
        let f = fabric_answer();
        assert_eq!(
            f.cells(),
            ["dc1", "f-1", "ethernet", "2", "1/1", "4", "2", "2026-01-02T03:04:05Z"]
                .map(String::from)
        );
        let out = fabric_text(&f);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("NAME  ID   KIND      SWITCHES  IN SYNC"), "{out}");
        assert_eq!(lines[2], "");
        assert!(lines[3].starts_with("SWITCH  ROLE  OS     STATE      APPLIED"), "{out}");
        assert!(
            lines[4].starts_with("leaf1   leaf  frr    in_sync    4        2026-01-02T03:05:00Z"),
            "{out}"
        );
        assert!(lines[5].starts_with("leaf2   leaf  sonic  unmanaged  0        -"), "{out}");
    }

    #[test]
    fn plan_as_text() {
        let p: FabricPlan = serde_json::from_value(json!({
            "intent_generation": 7,
            "switches": [
                {"name": "spine1", "os": "frr", "changes": [], "steps": []},
                {"name": "leaf1", "os": "frr",
                 "changes": ["+ vrf acme-main (l3 vni 50000)", "~ bgp neighbor swp49"],
                 "steps": ["ip link add vrf-acme type vrf table 1001",
                           "write frr.conf and reload FRR:\nfrr version 10\n\nrouter bgp 65101\n"]},
            ]
        }))
        .unwrap();
        let expected = "\
intent generation 7: 1 of 2 switches change

SWITCH  OS   CHANGES  STEPS
spine1  frr  0        0
leaf1   frr  2        2

leaf1 (frr)
  changes:
    + vrf acme-main (l3 vni 50000)
    ~ bgp neighbor swp49
  steps:
    1. ip link add vrf-acme type vrf table 1001
    2. write frr.conf and reload FRR:
       frr version 10

       router bgp 65101
";
        assert_eq!(plan_text(&p), expected);
        let quiet: FabricPlan =
            serde_json::from_value(json!({"intent_generation": 7, "switches": [
                {"name": "spine1", "os": "frr", "changes": [], "steps": []}]}))
            .unwrap();
        assert!(plan_text(&quiet).starts_with("intent generation 7: no changes"));
        let ib: FabricPlan = serde_json::from_value(json!({
            "intent_generation": 3, "switches": [],
            "subnet_manager": {"changes": ["POST /ufmRest/resources/pkeys/add {\"pkey\":\"0x100\"}"],
                               "partitions_conf": "Default=0x7fff, ipoib : ALL=limited, SELF=full ;\n"}
        }))
        .unwrap();
        let text = plan_text(&ib);
        assert!(text.starts_with("intent generation 3: 1 subnet manager call\n"), "{text}");
        assert!(
            text.contains("  POST /ufmRest/resources/pkeys/add") && text.contains("ALL=limited"),
            "{text}"
        );
    }
}
