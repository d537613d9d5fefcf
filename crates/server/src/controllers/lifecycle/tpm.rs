//! The sanitization record's TPM checks: the sanitizer's reports count as
//! the node's only where its machine proved it holds the node's TPM
//! endorsement key (`tpm_identity`), a TPM the BMC shows must have been seen
//! and cleared (`clear_tpm`), and a clear the firmware was asked to do at
//! the next boot sends the sanitizer round once more.

use super::platform::item;
use neocloud_store::agents;
use neocloud_types::{AgentStepKind, SanitizationCheck, TpmIdentitySource};

/// Whether the sanitizer's `clear_tpm` failed having asked the firmware
/// to clear the TPM at the next boot.
pub(super) fn tpm_cleared_at_boot(
    results: &[(AgentStepKind, Option<neocloud_types::AgentStepResult>)],
) -> bool {
    results.iter().any(|(k, r)| {
        *k == AgentStepKind::ClearTpm
            && r.as_ref().is_some_and(|r| {
                !r.ok && r.items.iter().any(|i| i.method == neocloud_types::TPM_PPI_REQUESTED)
            })
    })
}

/// The steps' reports are the node's only where the sanitizer proved its
/// machine holds the node's TPM endorsement key, when one is on record
/// (the provider's, or the first sanitizer's that proved one). `tpms`:
/// the TPMs the BMC shows. `pinned`: the identity on record.
/// `certified_only`: identities count only from the provider's records or
/// with a certificate from a TPM maker the provider trusts, and a node
/// whose BMC shows a TPM needs one on record.
pub(super) fn tpm_identity_check(
    pinned: Option<&agents::TpmIdentityRecord>,
    agent: Option<&agents::AgentRecord>,
    tpms: &[String],
    certified_only: bool,
) -> SanitizationCheck {
    let proved = agent.and_then(|a| a.tpm_ek_name.as_deref());
    let (ok, detail) = match (pinned, proved) {
        (Some(rec), Some(a)) if rec.ek_name == a => {
            let p = &rec.ek_name;
            let (how, trusted) = match (rec.recorded_by, &rec.certified_by) {
                (Some(TpmIdentitySource::Certificate), Some(ca)) => {
                    (format!("certified by the TPM maker's {ca}"), true)
                }
                (Some(TpmIdentitySource::Provider), _) => {
                    ("from the provider's records".to_string(), true)
                }
                (Some(TpmIdentitySource::FirstSanitizer), _) => {
                    ("recorded by the first sanitizer that proved it".to_string(), false)
                }
                (Some(TpmIdentitySource::Certificate), None) | (None, _) => {
                    ("recorded before its source was kept".to_string(), false)
                }
            };
            if certified_only && !trusted {
                (
                    false,
                    format!(
                        "the sanitizer's machine proved it holds the node's endorsement key {p}, \
                         {how}, without a certificate: the provider trusts only TPM makers' \
                         certificates now (tpm_ek_ca_pem); forget it (inspect with \
                         forget_tpm_identity) for the next sanitizer to record a certified one"
                    ),
                )
            } else {
                (
                    true,
                    format!(
                        "the sanitizer's machine proved it holds the node's endorsement key {p} \
                         ({how})"
                    ),
                )
            }
        }
        (Some(rec), _) => (
            false,
            format!(
                "the sanitizer did not prove it ran on the machine holding the node's endorsement \
                 key {}: its reports may not be the node's",
                rec.ek_name
            ),
        ),
        (None, _) if tpms.is_empty() => (
            true,
            "no TPM identity on record (no TPM): the sanitizer is known by its one-time token"
                .to_string(),
        ),
        (None, _) if certified_only => (
            false,
            format!(
                "no TPM identity on record, though the BMC shows a TPM ({}): the sanitizer did \
                 not prove one certified by a TPM manufacturer the provider trusts \
                 (tpm_ek_ca_pem), so its reports may not be the node's",
                tpms.join(", ")
            ),
        ),
        (None, _) => (
            true,
            format!(
                "no TPM identity on record, though the BMC shows a TPM ({}): the sanitizer could \
                 not prove one (no ECC endorsement key?) and is known by its one-time token",
                tpms.join(", ")
            ),
        ),
    };
    SanitizationCheck {
        name: "tpm_identity".into(),
        ok,
        items: vec![item("tpm", "tpm2-activate-credential", ok, &detail)],
    }
}

/// A sanitizer that saw no TPM (its `clear_tpm` item's method `none`)
/// where the BMC shows one enabled did not clear it: fails the check.
pub(super) fn tpm_unseen(checks: &mut [SanitizationCheck], tpms: &[String]) {
    let Some(c) = checks.iter_mut().find(|c| c.name == AgentStepKind::ClearTpm.as_str()) else {
        return;
    };
    if !tpms.is_empty() && c.items.iter().any(|i| i.method == "none") {
        c.ok = false;
        c.items.push(item(
            "tpm",
            "count",
            false,
            &format!("the BMC shows a TPM ({}), the sanitizer saw none", tpms.join(", ")),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tpm_the_bmc_shows_and_the_sanitizer_did_not_see_fails_its_check() {
        let tpm_check = |method: &str| {
            vec![SanitizationCheck {
                name: "clear_tpm".into(),
                ok: true,
                items: vec![item("tpm", method, true, "")],
            }]
        };
        let mut unseen = tpm_check("none");
        tpm_unseen(&mut unseen, &["TPM2_0".into()]);
        assert!(!unseen[0].ok);
        assert_eq!(
            unseen[0].items[1].detail,
            "the BMC shows a TPM (TPM2_0), the sanitizer saw none"
        );
        // Cleared, or no TPM on either side: unchanged.
        let mut cleared = tpm_check("tpm2-clear-lockout");
        tpm_unseen(&mut cleared, &["TPM2_0".into()]);
        let mut none = tpm_check("none");
        tpm_unseen(&mut none, &[]);
        assert!(
            cleared[0].ok && none[0].ok && cleared[0].items.len() == 1 && none[0].items.len() == 1
        );
    }

    #[test]
    fn a_tpm_the_bmc_shows_needs_a_certified_identity_where_the_provider_asks_for_one() {
        let tpm = ["TPM2_0".to_string()];
        let detail = |c: &SanitizationCheck| c.items[0].detail.clone();
        // Trusted on first use: known by its token.
        let c = tpm_identity_check(None, None, &tpm, false);
        assert!(c.ok && detail(&c).contains("known by its one-time token"), "{c:?}");
        // Only certified identities are recorded: none on record fails.
        let c = tpm_identity_check(None, None, &tpm, true);
        assert!(!c.ok && detail(&c).contains("tpm_ek_ca_pem"), "{c:?}");
        // No TPM shown: the token, either way.
        assert!(tpm_identity_check(None, None, &[], true).ok);
        // One on record and no proof: fails, either way.
        let rec = |recorded_by, certified_by: Option<&str>| agents::TpmIdentityRecord {
            ek_name: "000b00".into(),
            recorded_by,
            certified_by: certified_by.map(str::to_string),
        };
        let certified = rec(Some(TpmIdentitySource::Certificate), Some("CN=ca"));
        assert!(!tpm_identity_check(Some(&certified), None, &tpm, true).ok);
        assert!(!tpm_identity_check(Some(&certified), None, &[], false).ok);
        // Proven: where the provider trusts only certificates, an identity
        // trusted on first use (or of unknown source) no longer counts.
        let agent = agents::AgentRecord {
            id: "a".into(),
            node_id: "n".into(),
            purpose: neocloud_types::ImagePurpose::Sanitizer,
            instance_id: "i".into(),
            inventory: Default::default(),
            health: "ok".into(),
            created_at: 0,
            last_seen_at: 0,
            revoked_at: None,
            tpm_ek_name: Some("000b00".into()),
            tpm_refused: false,
        };
        for (r, certified_only, ok, says) in [
            (&certified, true, true, "certified by the TPM maker's CN=ca"),
            (&certified, false, true, "certified by the TPM maker's CN=ca"),
            (&rec(Some(TpmIdentitySource::Provider), None), true, true, "provider's records"),
            (&rec(Some(TpmIdentitySource::FirstSanitizer), None), false, true, "first sanitizer"),
            (&rec(Some(TpmIdentitySource::FirstSanitizer), None), true, false, "forget it"),
            (&rec(None, None), true, false, "before its source was kept"),
            (&rec(None, None), false, true, "before its source was kept"),
        ] {
            let c = tpm_identity_check(Some(r), Some(&agent), &tpm, certified_only);
            assert_eq!(c.ok, ok, "{r:?} {certified_only}: {c:?}");
            assert!(detail(&c).contains(says), "{says:?} in {c:?}");
        }
    }
}
