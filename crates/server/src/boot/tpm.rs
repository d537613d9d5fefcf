//! The agent API's TPM identity handlers: an agent proves its machine
//! holds the node's TPM endorsement key by activating a credential made
//! for it ([`crate::tpm_identity`]). A sanitizer's proof on a node with
//! none on record records it: trusted on first use, or, where the provider
//! trusts TPM makers (`tpm_ek_ca_pem`), only with the maker's certificate
//! for that key. A tenant's image proves against the record and never
//! writes one. Like every handler of the boot service, these only record.

use super::handlers::{agent_event, authenticate, parse};
use crate::dispatch::App;
use crate::ek_certificate::{EkKey, EkTrust};
use crate::tpm_identity::{self, EccPublic, EkPublic};
use neocloud_common::{Error, Result};
use neocloud_store::agents;
use neocloud_types::{
    AgentTpmChallenge, AgentTpmKeys, AgentTpmProof, AgentTpmProven, ImagePurpose,
};

/// The TPM keys an agent sent, parsed: (endorsement key, agent's key).
fn keys(ek: &str, ak: &str) -> Result<(EkPublic, EccPublic)> {
    let decode =
        |field: &str, h: &str| hex::decode(h).map_err(|_| Error::invalid_value(field, "not hex"));
    let ek = tpm_identity::parse_ek(&decode("ek_public", ek)?)
        .map_err(|why| Error::invalid_value("ek_public", why))?;
    let ak = tpm_identity::parse_ak(&decode("ak_public", ak)?)
        .map_err(|why| Error::invalid_value("ak_public", why))?;
    Ok((ek, ak))
}

/// The secret a challenge to `agent` for these keys carries.
fn secret(app: &App, agent: &agents::AgentRecord, ek: &EkPublic, ak: &EccPublic) -> Vec<u8> {
    app.secrets.mac(&[b"tpm identity challenge", agent.id.as_bytes(), ek.name(), &ak.name])
}

/// An identity refused: in the provider's trail (once per agent: its
/// image may ask again and again), then the error.
fn refused(app: &App, agent: &agents::AgentRecord, e: Error) -> Error {
    app.metrics.tpm_identity("refused");
    if agent.tpm_refused {
        return e;
    }
    let audited = app.store.write(|w| {
        if agents::note_tpm_refused(w, &agent.id)? {
            agent_event(w, &agent.node_id, "agent_tpm_identity", "failed")?;
        }
        Ok(())
    });
    if let Err(err) = audited {
        tracing::warn!(error = %err, "could not audit a refused TPM identity");
    }
    e
}

/// Where the provider trusts TPM manufacturers (`tpm_ek_ca_pem`), an
/// identity is recorded only for an endorsement key one of them
/// certified: `certificate` (hex DER) must name `ek` and be signed by one
/// of their CAs, directly or through the TPM's `chain` (hex DER each):
/// that CA's name. Refused (409, in the trail) otherwise.
fn certified(
    app: &App,
    trust: &EkTrust,
    agent: &agents::AgentRecord,
    ek: &EkPublic,
    certificate: Option<&str>,
    chain: &[String],
) -> Result<String> {
    let chain = chain
        .iter()
        .map(hex::decode)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| Error::invalid_value("ek_certificate_chain", "not hex"))?;
    let der = match certificate.map(hex::decode) {
        Some(Ok(der)) => der,
        Some(Err(_)) => return Err(Error::invalid_value("ek_certificate", "not hex")),
        None => {
            let e = Error::conflict(
                "the TPM has no endorsement key certificate: the provider records a node's TPM \
                 identity only with one from a TPM manufacturer it trusts",
            );
            return Err(refused(app, agent, e));
        }
    };
    let key = match ek {
        EkPublic::Ecc(k) => EkKey::P256 { x: &k.x, y: &k.y },
        EkPublic::Rsa { modulus, .. } => EkKey::Rsa { modulus },
    };
    trust.certifies(&der, &chain, &key, neocloud_common::time::now_micros()).map_err(|why| {
        let e = Error::conflict(format!(
            "the TPM's endorsement key certificate is not one the provider trusts: {why}"
        ));
        refused(app, agent, e)
    })
}

/// `POST /agent/v1/identity/challenge`: a credential for the agent's TPM
/// keys that only the TPM holding that endorsement key can activate.
/// Refused for a key that is not the node's, and, where the node has none
/// on record, for a tenant's image and for a key without the certificate
/// the provider asks for.
pub fn challenge(app: &App, authorization: Option<&str>, body: &[u8]) -> Result<AgentTpmChallenge> {
    let agent = authenticate(app, authorization)?;
    let p: AgentTpmKeys = parse(body)?;
    let (ek, ak) = keys(&p.ek_public, &p.ak_public)?;
    let pinned = app.store.read(|r| agents::node_tpm_identity(r, &agent.node_id))?;
    match (pinned, agent.purpose, &app.boot.tpm_ek_trust) {
        (Some(p), _, _) if p != hex::encode(ek.name()) => {
            let e = Error::conflict("the TPM's endorsement key is not the node's");
            return Err(refused(app, &agent, e));
        }
        (Some(_), _, _) | (None, ImagePurpose::Sanitizer, None) => {}
        // A tenant's image is not trusted to say which TPM is the node's.
        (None, ImagePurpose::Tenant, _) => {
            return Err(Error::conflict(
                "the node has no TPM identity on record: a sanitizer records it first",
            ));
        }
        (None, ImagePurpose::Sanitizer, Some(trust)) => {
            let (cert, chain) = (p.ek_certificate.as_deref(), &p.ek_certificate_chain);
            certified(app, trust, &agent, &ek, cert, chain)?;
        }
    }
    let secret = secret(app, &agent, &ek, &ak);
    let (blob, enc) = tpm_identity::make_credential(&ek, &ak.name, &secret)?;
    Ok(AgentTpmChallenge { credential_blob: hex::encode(blob), secret: hex::encode(enc) })
}

/// `POST /agent/v1/identity`: the activated challenge. Records that the
/// agent's machine holds the node's endorsement key; a sanitizer's proof
/// on a node with none on record pins it (a tenant's image never does).
pub fn prove(app: &App, authorization: Option<&str>, body: &[u8]) -> Result<AgentTpmProven> {
    let agent = authenticate(app, authorization)?;
    let p: AgentTpmProof = parse(body)?;
    let (ek, ak) = keys(&p.ek_public, &p.ak_public)?;
    let answer =
        hex::decode(&p.activation).map_err(|_| Error::invalid_value("activation", "not hex"))?;
    if !tpm_identity::answers(&secret(app, &agent, &ek, &ak), &answer) {
        let e = Error::invalid_value("activation", "not the challenge's credential");
        return Err(refused(app, &agent, e));
    }
    let ek_name = hex::encode(ek.name());
    if agent.tpm_ek_name.as_deref() == Some(ek_name.as_str()) {
        // Proven already (a retry after a lost answer): nothing to write.
        return Ok(AgentTpmProven { ek_name, pinned: false });
    }
    // Where the node has none on record, this proof records it: a
    // sanitizer's, with a certificate where the provider trusts TPM makers.
    // The write reads the record again: a proof whose certificate was not
    // checked (one was on record at the read) records nothing.
    let on_record = app.store.read(|r| agents::node_tpm_identity(r, &agent.node_id))?.is_some();
    let ca;
    let record = match (agent.purpose, &app.boot.tpm_ek_trust, on_record) {
        (ImagePurpose::Tenant, _, _) => agents::Record::Never,
        (ImagePurpose::Sanitizer, None, _) => agents::Record::FirstSanitizer,
        (ImagePurpose::Sanitizer, Some(_), true) => agents::Record::NeedsCertificate,
        (ImagePurpose::Sanitizer, Some(trust), false) => {
            let (cert, chain) = (p.ek_certificate.as_deref(), &p.ek_certificate_chain);
            ca = certified(app, trust, &agent, &ek, cert, chain)?;
            agents::Record::CertifiedBy(&ca)
        }
    };
    let proven = app.store.write(|w| {
        let proven = agents::prove_identity(w, &agent, &ek_name, record)?;
        let action = match proven {
            agents::Proven::Matches => "agent_tpm_identity",
            agents::Proven::Pinned => "node_tpm_identity_pinned",
        };
        agent_event(w, &agent.node_id, action, "success")?;
        Ok(proven)
    });
    let proven = proven.map_err(|e| match e {
        Error::Conflict { .. } => refused(app, &agent, e),
        e => e,
    })?;
    app.lifecycle.nudge(&agent.node_id);
    app.metrics.tpm_identity(match proven {
        agents::Proven::Matches => "proven",
        agents::Proven::Pinned => "pinned",
    });
    Ok(AgentTpmProven { ek_name, pinned: proven == agents::Proven::Pinned })
}
