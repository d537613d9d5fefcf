//! Signed sanitization records (`instance sanitization`, `node
//! sanitizations`): a row per check, and `--verify` to check signatures.

use crate::output::{self, emit, emit_json, parse, CliError, Format, Table};
use neocloud_types::{List, SanitizationBody, SanitizationRecord, StepItem};
use serde_json::Value;

/// `--verify` and `--public-key`: checking signed sanitization records.
#[derive(clap::Args, Debug, Default)]
pub(in crate::commands) struct VerifyFlags {
    /// Check each record's ed25519 signature over its signed JSON, that the
    /// record shown is what was signed, and that it is about this
    /// instance (node); exit 10 when one does not verify, 1 when there is
    /// no record yet.
    #[arg(long)]
    verify: bool,
    /// The control plane's public key (64 hex digits) the records must be
    /// signed with, e.g. one published by the provider; implies --verify.
    #[arg(long, value_name = "HEX", value_parser = parse_public_key)]
    public_key: Option<String>,
}

impl VerifyFlags {
    pub(in crate::commands) fn enabled(&self) -> bool {
        self.verify || self.public_key.is_some()
    }
}

/// `--public-key`: 64 hex digits, compared case-insensitively.
fn parse_public_key(s: &str) -> Result<String, String> {
    if s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err("expected an ed25519 public key: 64 hex digits".into())
    }
}

/// Checks one record: signed by `pinned` (when given), the signature of
/// `signed_json` verifies with the record's key, and `body` is what was
/// signed. Returns the signed body.
fn verify_record(r: &SanitizationRecord, pinned: Option<&str>) -> Result<SanitizationBody, String> {
    if let Some(k) = pinned {
        if !k.eq_ignore_ascii_case(&r.public_key) {
            return Err(format!("it is signed with key {}, not the expected {k}", r.public_key));
        }
    }
    if !neocloud_server::signing::verify(&r.public_key, r.signed_json.as_bytes(), &r.signature) {
        return Err(format!(
            "the signature does not verify with key {}: the record was altered or not signed with that key",
            r.public_key
        ));
    }
    let body: SanitizationBody = serde_json::from_str(&r.signed_json)
        .map_err(|e| format!("what was signed is not a sanitization record: {e}"))?;
    if body != r.body {
        return Err("the record shown differs from what was signed".into());
    }
    Ok(body)
}

/// Prints a list of records (a row per check, or the API's JSON). With
/// `--verify`, every record must verify and satisfy `about` (it is about
/// the instance or node asked for) before anything is printed.
pub(in crate::commands) fn print_records(
    f: Format,
    v: &Value,
    flags: &VerifyFlags,
    about: impl Fn(&SanitizationBody) -> Result<(), String>,
) -> Result<(), CliError> {
    let list: List<SanitizationRecord> = parse(v)?;
    check_records(&list.items, flags, about)?;
    match f {
        Format::Json => emit_json(v),
        Format::Table => {
            let mut out = records_table(&list.items);
            if flags.enabled() {
                for r in &list.items {
                    out.push_str(&format!(
                        "verified: record {} signed by {}\n",
                        r.id, r.public_key
                    ));
                }
            }
            emit(&out);
        }
    }
    Ok(())
}

/// With `--verify`: every record verifies and is about what was asked for.
fn check_records(
    records: &[SanitizationRecord],
    flags: &VerifyFlags,
    about: impl Fn(&SanitizationBody) -> Result<(), String>,
) -> Result<(), CliError> {
    if flags.enabled() {
        if records.is_empty() {
            return Err(CliError::Other(
                "no sanitization record to verify yet: one is signed once the released node has been sanitized"
                    .into(),
            ));
        }
        let problems: Vec<String> = records
            .iter()
            .filter_map(|r| {
                verify_record(r, flags.public_key.as_deref())
                    .and_then(|b| about(&b))
                    .err()
                    .map(|e| format!("record {}: {e}", r.id))
            })
            .collect();
        if !problems.is_empty() {
            return Err(CliError::Verify(format!(
                "{} of {} sanitization record(s) do not verify:\n  {}",
                problems.len(),
                records.len(),
                problems.join("\n  ")
            )));
        }
    }
    Ok(())
}

/// One row per check of each record.
fn records_table(records: &[SanitizationRecord]) -> String {
    let mut t = Table::new(&["RECORD", "FINISHED", "COMPLETE", "CHECK", "OK", "ITEMS"]);
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    for r in records {
        let b = &r.body;
        let head = || vec![r.id.clone(), output::short_time(&b.finished_at), yes_no(b.complete)];
        if b.checks.is_empty() {
            t.row([head(), vec!["-".into(), "-".into(), "-".into()]].concat());
        }
        for c in &b.checks {
            t.row([head(), vec![c.name.clone(), yes_no(c.ok), items_cell(&c.items)]].concat());
        }
    }
    t.render()
}

/// `3 ok (nvme-crypto-erase)`, or the first failure:
/// `1 of 3 failed: /dev/nvme1n1 timeout`.
fn items_cell(items: &[StepItem]) -> String {
    if items.is_empty() {
        return "-".into();
    }
    let failed: Vec<&StepItem> = items.iter().filter(|i| !i.ok).collect();
    match failed.first() {
        None => {
            let mut methods: Vec<&str> = Vec::new();
            for i in items {
                if !i.method.is_empty() && !methods.contains(&i.method.as_str()) {
                    methods.push(&i.method);
                }
            }
            match methods.is_empty() {
                true => format!("{} ok", items.len()),
                false => format!("{} ok ({})", items.len(), methods.join(",")),
            }
        }
        Some(first) => {
            format!("{} of {} failed: {} {}", failed.len(), items.len(), first.target, first.detail)
                .trim_end()
                .to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use neocloud_server::signing::Signer;
    use neocloud_types::SanitizationCheck;

    fn item(target: &str, method: &str, ok: bool, detail: &str) -> StepItem {
        StepItem { target: target.into(), method: method.into(), ok, detail: detail.into() }
    }

    /// A record as the lifecycle controller signs it.
    fn signed(signer: &Signer, node: &str, instance: &str) -> SanitizationRecord {
        let body = SanitizationBody {
            node_id: node.into(),
            tenant_id: Some("t".into()),
            instance_id: Some(instance.into()),
            complete: true,
            checks: vec![
                SanitizationCheck {
                    name: "wipe_disks".into(),
                    ok: true,
                    items: vec![
                        item("/dev/nvme0n1", "nvme-crypto-erase", true, ""),
                        item("/dev/nvme1n1", "nvme-crypto-erase", true, ""),
                    ],
                },
                SanitizationCheck { name: "power_off".into(), ok: true, items: vec![] },
            ],
            started_at: "2026-01-02T03:04:05.000001Z".into(),
            finished_at: "2026-01-02T03:14:05.000001Z".into(),
        };
        let signed_json = serde_json::to_string(&body).unwrap();
        SanitizationRecord {
            id: "rec-1".into(),
            signature: signer.sign(signed_json.as_bytes()),
            public_key: signer.public_key(),
            body,
            signed_json,
        }
    }

    #[test]
    fn verifies_signed_records() {
        let signer = Signer::from_seed([42; 32]);
        let rec = signed(&signer, "node-1", "inst-1");
        let body = verify_record(&rec, None).expect("a valid record verifies");
        assert_eq!(body.instance_id.as_deref(), Some("inst-1"));
        // Pinned to its own key, in either case.
        assert!(verify_record(&rec, Some(&signer.public_key())).is_ok());
        assert!(verify_record(&rec, Some(&signer.public_key().to_ascii_uppercase())).is_ok());

        // What was signed, altered.
        let mut tampered = rec.clone();
        tampered.signed_json =
            tampered.signed_json.replace("\"complete\":true", "\"complete\":false");
        assert_ne!(tampered.signed_json, rec.signed_json);
        let e = verify_record(&tampered, None).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        // The record shown differs from what was signed.
        let mut shown = rec.clone();
        shown.body.checks[0].ok = false;
        assert!(verify_record(&shown, None).unwrap_err().contains("differs"));
        // Re-signed by another key: valid, but not the key pinned.
        let other = Signer::from_seed([7; 32]);
        let forged = signed(&other, "node-1", "inst-1");
        assert!(verify_record(&forged, None).is_ok());
        let e = verify_record(&forged, Some(&signer.public_key())).unwrap_err();
        assert!(e.contains("not the expected"), "{e}");
        // Another key claimed for this signature.
        let mut swapped = rec.clone();
        swapped.public_key = other.public_key();
        assert!(verify_record(&swapped, None).is_err());
        // Garbage.
        let mut bad = rec;
        bad.signature = "zz".into();
        assert!(verify_record(&bad, None).is_err());
    }

    #[test]
    fn every_record_is_checked() {
        let signer = Signer::from_seed([42; 32]);
        let good = signed(&signer, "node-1", "inst-1");
        let mut bad = signed(&signer, "node-1", "inst-1");
        bad.id = "rec-2".into();
        bad.signature = Signer::from_seed([7; 32]).sign(bad.signed_json.as_bytes());
        let list = |r: Vec<SanitizationRecord>| r;
        let verify = VerifyFlags { verify: true, public_key: None };
        let anything = |_: &SanitizationBody| Ok(());
        assert!(check_records(&list(vec![good.clone()]), &verify, anything).is_ok());
        let e = check_records(&list(vec![good.clone(), bad]), &verify, anything).unwrap_err();
        assert_eq!(e.exit_code(), output::EXIT_VERIFY_FAILED);
        assert!(e.to_string().starts_with("1 of 2 sanitization record(s) do not verify"), "{e}");
        assert!(e.to_string().contains("record rec-2: the signature does not verify"), "{e}");
        // About another instance.
        let e = check_records(&list(vec![good.clone()]), &verify, |b| {
            Err(format!("it is about instance {:?}, not inst-9", b.instance_id))
        })
        .unwrap_err();
        assert!(e.to_string().contains("about instance Some(\"inst-1\"), not inst-9"), "{e}");
        // Pinned to another key.
        let pinned = VerifyFlags { verify: false, public_key: Some("ab".repeat(32)) };
        assert!(pinned.enabled());
        let e = check_records(&list(vec![good]), &pinned, anything).unwrap_err();
        assert_eq!(e.exit_code(), output::EXIT_VERIFY_FAILED);
        // Nothing to verify is not a pass.
        let e = check_records(&list(vec![]), &verify, anything).unwrap_err();
        assert_eq!(e.exit_code(), output::EXIT_OTHER);
        // Without --verify, nothing is checked.
        assert!(check_records(&list(vec![]), &VerifyFlags::default(), anything).is_ok());
    }

    #[test]
    fn record_rows() {
        let signer = Signer::from_seed([1; 32]);
        let mut rec = signed(&signer, "node-1", "inst-1");
        let out = records_table(std::slice::from_ref(&rec));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].starts_with("RECORD  FINISHED"), "{out}");
        assert!(lines[1].contains("2026-01-02T03:14:05Z"), "{out}");
        assert!(lines[1].contains("wipe_disks  yes  2 ok (nvme-crypto-erase)"), "{out}");
        assert!(lines[2].trim_end().ends_with("power_off   yes  -"), "{out}");
        rec.body.checks[0].items[1] = item("/dev/nvme1n1", "blkdiscard", false, "I/O error");
        assert_eq!(items_cell(&rec.body.checks[0].items), "1 of 2 failed: /dev/nvme1n1 I/O error");
        rec.body.checks.clear();
        assert_eq!(records_table(&[rec]).lines().count(), 2);
        assert_eq!(records_table(&[]).lines().count(), 1);
    }
}
