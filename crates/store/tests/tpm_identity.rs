//! A node's TPM identity on record: who records it, when a proof may, and
//! forgetting it. On both backends.

mod common;

use common::*;
use neocloud_common::Error;
use neocloud_store::agents::{self, Proven, Record};
use neocloud_types::TpmIdentitySource;

const EK: &str = "000baa";

fn message(e: Error) -> String {
    match e {
        Error::Conflict { message } => message,
        other => panic!("a conflict, not {other:?}"),
    }
}

#[test]
fn a_proof_records_an_identity_only_as_the_provider_allows() {
    each_backend(|store, b| {
        let (node, agent) = node_with_sanitizer(store, "n1", "credential-hash");
        let prove = |ek: &str, record: Record<'_>| {
            store.write(|w| agents::prove_identity(w, &agent, ek, record))
        };
        let on_record = || store.read(|r| agents::node_tpm_record(r, &node.id)).unwrap();

        // None on record: a tenant's image never records one, nor a proof
        // whose certificate was not checked where the provider asks for one
        // (the identity was forgotten after the proof read it).
        let e = message(prove(EK, Record::Never).unwrap_err());
        assert!(e.contains("a sanitizer records it first"), "[{b}] {e}");
        let e = message(prove(EK, Record::NeedsCertificate).unwrap_err());
        assert!(
            e.contains("prove it again, with the TPM's endorsement key certificate"),
            "[{b}] {e}"
        );
        assert_eq!(on_record(), None, "[{b}]");

        // Certified: recorded with its CA; then any proof of the same key
        // matches, and another key is refused.
        assert_eq!(prove(EK, Record::CertifiedBy("CN=maker")).unwrap(), Proven::Pinned);
        let rec = on_record().expect("recorded");
        assert_eq!(rec.ek_name, EK, "[{b}]");
        assert_eq!(rec.recorded_by, Some(TpmIdentitySource::Certificate), "[{b}]");
        assert_eq!(rec.certified_by.as_deref(), Some("CN=maker"), "[{b}]");
        assert_eq!(prove(EK, Record::NeedsCertificate).unwrap(), Proven::Matches, "[{b}]");
        assert_eq!(prove(EK, Record::Never).unwrap(), Proven::Matches, "[{b}]");
        let e = message(prove("000bbb", Record::CertifiedBy("CN=maker")).unwrap_err());
        assert!(e.contains("not the node's"), "[{b}] {e}");

        // Forgotten: all of it; then trusted on first use, or from the
        // provider's records.
        store.write(|w| agents::forget_tpm_identity(w, &node.id)).unwrap();
        assert_eq!(on_record(), None, "[{b}]");
        assert_eq!(prove(EK, Record::FirstSanitizer).unwrap(), Proven::Pinned, "[{b}]");
        let rec = on_record().expect("recorded");
        assert_eq!(rec.recorded_by, Some(TpmIdentitySource::FirstSanitizer), "[{b}]");
        assert_eq!(rec.certified_by, None, "[{b}]");
        store.write(|w| agents::record_tpm_identity(w, &node.id, "000bcc")).unwrap();
        let rec = on_record().expect("recorded");
        assert_eq!(rec.ek_name, "000bcc", "[{b}]");
        assert_eq!(rec.recorded_by, Some(TpmIdentitySource::Provider), "[{b}]");
    });
}
