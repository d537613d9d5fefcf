//! NVMe erasure that reaches every namespace. A tenant with root can create
//! a namespace, write to it and detach it: it is then no block device, so
//! a per-device wipe never sees it, and the next tenant can attach it
//! again. The NVMe Sanitize command erases the whole subsystem, attached
//! namespaces or not (crypto erase where the controller can, else block
//! erase). It is used only when every namespace attached to the controller
//! is among the disks the operator named (nothing here erases what it was
//! not told to). Without it, a controller with a namespace that is
//! allocated but not attached cannot be wiped, and the wipe fails saying
//! which.
//!
//! Through `nvme-cli` (its JSON output, read by key at any depth, since the
//! layout differs between versions); the runner is a parameter so the
//! decisions are tested without a drive.

use serde_json::Value;

/// Runs `nvme ARGS`; its standard output, or what went wrong.
pub(crate) type Run<'a> = &'a mut dyn FnMut(&[&str]) -> Result<String, String>;

/// The controller of a namespace's kernel name: `nvme0n1` and `nvme0c1n1`
/// belong to `nvme0`.
pub(crate) fn controller_of(ns: &str) -> Option<String> {
    let rest = ns.strip_prefix("nvme")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (!digits.is_empty()).then(|| format!("nvme{digits}"))
}

/// The first value of `key` in `v`, depth first.
fn find<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m.get(key).or_else(|| m.values().find_map(|x| find(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find(x, key)),
        _ => None,
    }
}

fn json(out: &str, what: &str) -> Result<Value, String> {
    serde_json::from_str(out).map_err(|e| format!("unreadable {what} output: {e}"))
}

/// The Sanitize action the controller supports that erases best, from its
/// Identify Controller SANICAP: crypto erase (action 4), else block erase
/// (action 2). Overwrite (3) is left out: it takes hours and wears flash.
fn sanitize_action(id_ctrl: &Value) -> Option<(u8, &'static str)> {
    let cap = find(id_ctrl, "sanicap")?.as_u64()?;
    if cap & 0b01 != 0 {
        Some((4, "crypto erase"))
    } else if cap & 0b10 != 0 {
        Some((2, "block erase"))
    } else {
        None
    }
}

/// Where the most recent Sanitize stands (Sanitize Status log, SSTAT bits
/// 2:0), if it is the one with action `act` (SCDW10, when reported).
#[derive(Debug, PartialEq, Eq)]
enum Sanitize {
    Done,
    InProgress,
    Failed,
    /// Another status (never sanitized, or a log of another command).
    Other(u64),
}

fn sanitize_state(log: &Value, act: u8) -> Option<Sanitize> {
    let sstat = find(log, "sstat")?.as_u64()?;
    if let Some(cdw10) = find(log, "scdw10").and_then(Value::as_u64) {
        if cdw10 & 0b111 != u64::from(act) {
            return Some(Sanitize::Other(sstat));
        }
    }
    Some(match sstat & 0b111 {
        1 | 4 => Sanitize::Done,
        2 => Sanitize::InProgress,
        3 => Sanitize::Failed,
        other => Sanitize::Other(other),
    })
}

/// Sanitizes the subsystem of controller `ctrl` (`/dev/nvme0`) and waits
/// for it, calling `pause` between reads of its progress, at most `polls`
/// times. `Err` when the controller has no Sanitize, refuses it, or it
/// fails or does not finish.
pub(crate) fn sanitize(
    ctrl: &str,
    run: Run<'_>,
    pause: &dyn Fn(),
    polls: u32,
) -> Result<String, String> {
    let id = id_ctrl(ctrl, run)?;
    let Some((act, what)) = sanitize_action(&id) else {
        return Err(format!(
            "{ctrl} has no Sanitize (SANICAP reports neither crypto nor block erase)"
        ));
    };
    run(&["sanitize", ctrl, &format!("--sanact={act}")])?;
    for _ in 0..polls {
        pause();
        let log = json(&run(&["sanitize-log", ctrl, "-o", "json"])?, "sanitize-log")?;
        match sanitize_state(&log, act) {
            Some(Sanitize::Done) => {
                return Ok(format!(
                    "nvme sanitize ({what}) of {ctrl}: every namespace, attached or not"
                ))
            }
            Some(Sanitize::Failed) => return Err(format!("the {what} of {ctrl} failed")),
            Some(Sanitize::InProgress) | Some(Sanitize::Other(_)) | None => {}
        }
    }
    Err(format!("the {what} of {ctrl} did not finish in time"))
}

/// The controller's Identify Controller data.
pub(crate) fn id_ctrl(ctrl: &str, run: Run<'_>) -> Result<Value, String> {
    json(&run(&["id-ctrl", ctrl, "-o", "json"])?, "id-ctrl")
}

/// The secure erase a Format NVM can do on this controller: a crypto
/// erase (SES 2) where its Format NVM Attributes say it supports one (FNA
/// bit 2), else a user data erase (SES 1). The method names the record.
pub(crate) fn format_erase(id_ctrl: &Value) -> (u8, &'static str) {
    let fna = find(id_ctrl, "fna").and_then(Value::as_u64).unwrap_or(0);
    match fna & 0b100 {
        0 => (1, "nvme-user-data-erase"),
        _ => (2, "nvme-crypto-erase"),
    }
}

/// Erases the namespaces `hidden` of `ctrl`, allocated but attached to no
/// controller here (a tenant's, detached to outlive a per-device wipe):
/// each is attached to this controller, formatted with secure erase `ses`
/// and detached again, so the layout stays as it was. The first failure
/// stops it; a namespace formatted is always detached again.
pub(crate) fn erase_detached(
    ctrl: &str,
    hidden: &[u64],
    id_ctrl: &Value,
    ses: u8,
    run: Run<'_>,
) -> Result<String, String> {
    let cntlid = find(id_ctrl, "cntlid")
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("{ctrl}: Identify Controller has no controller id"))?
        .to_string();
    for id in hidden {
        let ns = id.to_string();
        let on = ["--namespace-id", ns.as_str(), "--controllers", cntlid.as_str()];
        run(&[&["attach-ns", ctrl][..], &on[..]].concat())
            .map_err(|e| format!("namespace {id} of {ctrl}: attach: {e}"))?;
        let ses_arg = format!("--ses={ses}");
        let formatted = run(&["format", ctrl, "--namespace-id", &ns, &ses_arg, "--force"]);
        let detached = run(&[&["detach-ns", ctrl][..], &on[..]].concat());
        formatted.map_err(|e| format!("namespace {id} of {ctrl}: format: {e}"))?;
        detached.map_err(|e| format!("namespace {id} of {ctrl}: erased, not detached: {e}"))?;
    }
    Ok(format!(
        "namespace(s) {hidden:?} of {ctrl}, allocated but not attached, attached to controller \
         {cntlid}, formatted with secure erase {ses} and detached again"
    ))
}

/// Namespace ids in `nvme list-ns` output: JSON (`nsid` values at any
/// depth) or the text form (`[   0]:0x1`).
fn namespace_ids(out: &str) -> Vec<u64> {
    fn collect(v: &Value, ids: &mut Vec<u64>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x.as_u64()) {
                        ("nsid", Some(id)) => ids.push(id),
                        _ => collect(x, ids),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| collect(x, ids)),
            _ => {}
        }
    }
    let mut ids = Vec::new();
    match serde_json::from_str::<Value>(out) {
        Ok(v) => collect(&v, &mut ids),
        Err(_) => {
            for l in out.lines() {
                if let Some(hex) = l.split(":0x").nth(1) {
                    if let Ok(id) = u64::from_str_radix(hex.trim(), 16) {
                        ids.push(id);
                    }
                }
            }
        }
    }
    ids.retain(|id| *id != 0);
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The attached namespaces (`ids`) of controller `ctrl` (`/dev/nvme0`)
/// whose block devices (`nvme0n<id>`) are not among `names` (kernel names
/// of the disks to wipe): while there is one, the subsystem is not
/// sanitized.
pub(crate) fn unnamed(ctrl: &str, ids: &[u64], names: &[String]) -> Vec<String> {
    let c = ctrl.trim_start_matches("/dev/");
    ids.iter().map(|id| format!("{c}n{id}")).filter(|ns| !names.contains(ns)).collect()
}

/// The namespaces attached to `ctrl` (block devices `<ctrl>n<id>`).
pub(crate) fn attached_namespaces(ctrl: &str, run: Run<'_>) -> Result<Vec<u64>, String> {
    Ok(namespace_ids(&run(&["list-ns", ctrl, "-o", "json"])?))
}

/// The namespaces of `ctrl` that are allocated but attached to no
/// controller here: what a per-device wipe cannot reach.
pub(crate) fn detached_namespaces(ctrl: &str, run: Run<'_>) -> Result<Vec<u64>, String> {
    let allocated = namespace_ids(&run(&["list-ns", ctrl, "--all", "-o", "json"])?);
    let attached = attached_namespaces(ctrl, run)?;
    Ok(allocated.into_iter().filter(|id| !attached.contains(id)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cell::RefCell;

    #[test]
    fn controllers_of_namespaces() {
        assert_eq!(controller_of("nvme0n1").as_deref(), Some("nvme0"));
        assert_eq!(controller_of("nvme12c3n4").as_deref(), Some("nvme12"));
        assert_eq!(controller_of("nvmen1"), None);
        assert_eq!(controller_of("sda"), None);
    }

    #[test]
    fn the_best_sanitize_the_controller_has() {
        assert_eq!(sanitize_action(&json!({"sanicap": 0x7})), Some((4, "crypto erase")));
        assert_eq!(sanitize_action(&json!({"sanicap": 0x2})), Some((2, "block erase")));
        assert_eq!(sanitize_action(&json!({"sanicap": 0x4})), None, "overwrite only");
        assert_eq!(sanitize_action(&json!({"vid": 1})), None);
    }

    #[test]
    fn sanitize_status_by_key_at_any_depth_and_for_our_command() {
        let log = |sstat: u64, cdw10: u64| json!({"/dev/nvme0": {"sprog": 10, "sstat": sstat, "scdw10": cdw10}});
        assert_eq!(sanitize_state(&log(0x102, 4), 4), Some(Sanitize::InProgress));
        assert_eq!(sanitize_state(&log(0x101, 4), 4), Some(Sanitize::Done));
        assert_eq!(sanitize_state(&log(0x104, 4), 4), Some(Sanitize::Done));
        assert_eq!(sanitize_state(&log(0x103, 4), 4), Some(Sanitize::Failed));
        // A finished block erase from before is not our crypto erase.
        assert_eq!(sanitize_state(&log(0x101, 2), 4), Some(Sanitize::Other(0x101)));
        assert_eq!(sanitize_state(&json!({"sstat": 1}), 4), Some(Sanitize::Done));
        assert_eq!(sanitize_state(&json!({}), 4), None);
    }

    /// A scripted `nvme`: answers by subcommand, records every call.
    struct Fake {
        calls: RefCell<Vec<String>>,
        id_ctrl: String,
        logs: RefCell<Vec<String>>,
    }

    impl Fake {
        fn run(&self, args: &[&str]) -> Result<String, String> {
            self.calls.borrow_mut().push(args.join(" "));
            match args[0] {
                "id-ctrl" => Ok(self.id_ctrl.clone()),
                "sanitize" => Ok(String::new()),
                "sanitize-log" => Ok(self.logs.borrow_mut().remove(0)),
                "list-ns" if args.contains(&"--all") => {
                    Ok(r#"{"nsid_list":[{"nsid":1},{"nsid":2}]}"#.into())
                }
                "list-ns" => Ok("[   0]:0x1\n".into()),
                "attach-ns" | "detach-ns" => Ok(String::new()),
                "format" if args.contains(&"7") => Err("Invalid Format".into()),
                "format" => Ok(String::new()),
                other => Err(format!("unexpected {other}")),
            }
        }
    }

    #[test]
    fn a_sanitize_is_started_and_waited_for() {
        let f = Fake {
            calls: RefCell::default(),
            id_ctrl: json!({"vid": 5197, "sanicap": 3}).to_string(),
            logs: RefCell::new(vec![
                json!({"sstat": 0x102, "scdw10": 4, "sprog": 100}).to_string(),
                json!({"sstat": 0x101, "scdw10": 4, "sprog": 65535}).to_string(),
            ]),
        };
        let how = sanitize("/dev/nvme0", &mut |a| f.run(a), &|| {}, 10).unwrap();
        assert!(how.contains("crypto erase") && how.contains("attached or not"), "{how}");
        assert_eq!(
            *f.calls.borrow(),
            [
                "id-ctrl /dev/nvme0 -o json",
                "sanitize /dev/nvme0 --sanact=4",
                "sanitize-log /dev/nvme0 -o json",
                "sanitize-log /dev/nvme0 -o json"
            ]
        );
        let stuck = Fake {
            calls: RefCell::default(),
            id_ctrl: json!({"sanicap": 2}).to_string(),
            logs: RefCell::new(vec![json!({"sstat": 0x102}).to_string(); 3]),
        };
        let e = sanitize("/dev/nvme1", &mut |a| stuck.run(a), &|| {}, 3).unwrap_err();
        assert!(e.contains("block erase of /dev/nvme1 did not finish"), "{e}");
        let none = Fake {
            calls: RefCell::default(),
            id_ctrl: json!({"sanicap": 0}).to_string(),
            logs: RefCell::default(),
        };
        assert!(sanitize("/dev/nvme2", &mut |a| none.run(a), &|| {}, 3).is_err());
        assert_eq!(none.calls.borrow().len(), 1, "nothing started");
    }

    #[test]
    fn a_subsystem_is_sanitized_only_when_every_attached_namespace_is_named() {
        let names = ["nvme0n1".to_string(), "nvme0n2".into()];
        assert!(unnamed("/dev/nvme0", &[1, 2], &names).is_empty());
        assert_eq!(unnamed("/dev/nvme0", &[1, 2, 3], &names), ["nvme0n3"]);
        assert_eq!(unnamed("/dev/nvme1", &[1], &names), ["nvme1n1"]);
    }

    #[test]
    fn a_format_erases_by_crypto_only_where_the_controller_says_it_can() {
        assert_eq!(format_erase(&json!({"fna": 0x4})), (2, "nvme-crypto-erase"));
        assert_eq!(format_erase(&json!({"fna": 0x5})), (2, "nvme-crypto-erase"));
        assert_eq!(format_erase(&json!({"fna": 0})), (1, "nvme-user-data-erase"));
        assert_eq!(format_erase(&json!({"vid": 1})), (1, "nvme-user-data-erase"));
    }

    #[test]
    fn a_detached_namespace_is_attached_erased_and_detached_again() {
        let f =
            Fake { calls: RefCell::default(), id_ctrl: String::new(), logs: RefCell::default() };
        let id = json!({"cntlid": 3});
        let how = erase_detached("/dev/nvme0", &[2, 5], &id, 1, &mut |a| f.run(a)).unwrap();
        assert!(how.contains("[2, 5]") && how.contains("controller 3"), "{how}");
        assert_eq!(
            *f.calls.borrow(),
            [
                "attach-ns /dev/nvme0 --namespace-id 2 --controllers 3",
                "format /dev/nvme0 --namespace-id 2 --ses=1 --force",
                "detach-ns /dev/nvme0 --namespace-id 2 --controllers 3",
                "attach-ns /dev/nvme0 --namespace-id 5 --controllers 3",
                "format /dev/nvme0 --namespace-id 5 --ses=1 --force",
                "detach-ns /dev/nvme0 --namespace-id 5 --controllers 3",
            ]
        );
        // A format refused: detached again all the same, and said.
        f.calls.borrow_mut().clear();
        let e = erase_detached("/dev/nvme0", &[7, 8], &id, 2, &mut |a| f.run(a)).unwrap_err();
        assert!(e.contains("namespace 7") && e.contains("Invalid Format"), "{e}");
        assert_eq!(
            f.calls.borrow().last().unwrap(),
            "detach-ns /dev/nvme0 --namespace-id 7 --controllers 3"
        );
        assert!(erase_detached("/dev/nvme0", &[2], &json!({}), 1, &mut |a| f.run(a)).is_err());
    }

    #[test]
    fn a_namespace_allocated_but_not_attached_is_found() {
        let f =
            Fake { calls: RefCell::default(), id_ctrl: String::new(), logs: RefCell::default() };
        assert_eq!(detached_namespaces("/dev/nvme0", &mut |a| f.run(a)).unwrap(), [2]);
        assert_eq!(namespace_ids("[   0]:0x1\n[   1]:0xa\n"), [1, 10]);
    }
}
