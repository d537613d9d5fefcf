//! The agent's TPM identity (credential activation) against a real TPM
//! 2.0: swtpm over its TCP command port, with tpm2-tools making the
//! profile's EK independently and playing the tenant. The control plane's
//! side of it (its own `TPM2_MakeCredential`) is checked against the same
//! TPM in crates/server/tests/tpm_identity.rs. Skipped loudly where swtpm
//! or tpm2-tools is missing; CI fails instead.

mod swtpm;

use neocloud_agent::tpm::clear_tpm;
use neocloud_agent::tpm_identity::{EkKind, IdentityError, TpmIdentity};
use swtpm::Swtpm;

#[test]
fn the_tpm_gives_back_only_a_credential_made_for_its_own_endorsement_key() {
    let Some(tpm) = Swtpm::start() else { return };
    // The profile's ECC EK, as tpm2-tools makes it from its own template
    // (first: swtpm serves one connection at a time).
    tpm.tool("createek", &["-Q", "-G", "ecc", "-c", "ek.ctx", "-u", "ek.pub"]);
    tpm.tool("flushcontext", &["-t"]);
    let ek_pub = std::fs::read(tpm.dir.join("ek.pub")).unwrap();
    let mut id = TpmIdentity::open(&tpm.path()).unwrap();
    assert_eq!(&ek_pub[2..], &id.ek_public[..], "tpm2_createek's EK is the agent's");

    // The TPM's own MakeCredential with its EK, for the agent's key.
    let ak_name = id.ak_name.clone();
    let (blob, secret) = id.make_credential(b"0123456789abcdef", &ak_name).unwrap();
    assert_eq!(id.activate(&blob, &secret).unwrap(), b"0123456789abcdef");
    // Activated twice: the same blob is not single-use in the TPM (the
    // control plane's challenge is, per token).
    assert_eq!(id.activate(&blob, &secret).unwrap(), b"0123456789abcdef");

    // Bound to the key's name: made for another name, it is refused.
    let mut other_name = ak_name.clone();
    *other_name.last_mut().unwrap() ^= 1;
    let (blob, secret) = id.make_credential(b"0123456789abcdef", &other_name).unwrap();
    assert!(id.activate(&blob, &secret).is_err());

    // Another TPM's EK (another machine): refused.
    let Some(elsewhere) = Swtpm::start() else { return };
    let mut other = TpmIdentity::open(&elsewhere.path()).unwrap();
    assert_ne!(other.ek_public, id.ek_public);
    let (blob, secret) = other.make_credential(b"0123456789abcdef", &ak_name).unwrap();
    assert!(id.activate(&blob, &secret).is_err());

    // `--inventory` prints the EK's name, as the TPM computes it (the
    // provider records it at enrollment).
    let want: String = id.ek_name.iter().map(|b| format!("{b:02x}")).collect();
    assert!(want.starts_with("000b") && want.len() == 68, "{want}");
    drop(id);
    let v = tpm.agent_inventory(env!("CARGO_BIN_EXE_neocloud-agent"));
    assert_eq!(v["tpm_identity"], want.as_str(), "{v}");
    let id = TpmIdentity::open(&tpm.path()).unwrap();

    // The EK is the same at the next open; the agent's key is not (the
    // null hierarchy's seed is new at every restart, and so is the key).
    let ek = id.ek_public.clone();
    drop(id);
    let id = TpmIdentity::open(&tpm.path()).unwrap();
    assert_eq!(id.ek_public, ek);
    drop(id);
    assert_eq!(tpm.handles("transient"), Vec::<String>::new(), "the keys were flushed");
}

#[test]
fn a_tenants_endorsement_authorization_stops_the_proof_until_the_tpm_is_cleared() {
    let Some(tpm) = Swtpm::start() else { return };
    let ek = TpmIdentity::open(&tpm.path()).unwrap().ek_public.clone();
    tpm.tenant_takes_it();
    let e = TpmIdentity::open(&tpm.path()).err().expect("refused");
    assert!(matches!(e, IdentityError::EndorsementLocked), "{e}");
    assert!(e.to_string().contains("until the TPM is cleared"), "{e}");
    // The sanitizer's clear resets the authorization, not the EK.
    assert!(clear_tpm(&tpm.path(), None).ok);
    assert_eq!(TpmIdentity::open(&tpm.path()).unwrap().ek_public, ek);
}

/// The EK's public point (x, y): the last 68 octets of its public area.
fn point(ek_public: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let u = &ek_public[ek_public.len() - 68..];
    (u[2..34].to_vec(), u[36..].to_vec())
}

#[test]
fn the_certificate_its_maker_wrote_is_read_and_outlives_the_sanitizers_clear() {
    let Some(tpm) = Swtpm::start() else { return };
    let v = tpm.agent_inventory(env!("CARGO_BIN_EXE_neocloud-agent"));
    assert_eq!(v["tpm_ek_certificate"], "none at 0x01c0000a", "{v}");
    let id = TpmIdentity::open(&tpm.path()).unwrap();
    assert_eq!(id.ek_certificate, None, "none written yet");
    let (x, y) = point(&id.ek_public);
    drop(id);
    let maker = swtpm::Manufacturer::new("maker");
    let cert = maker.certify(&tpm, &x, &y);
    assert_eq!(cert[0], 0x30, "a DER certificate");
    // Read back without the index's padding.
    let id = TpmIdentity::open(&tpm.path()).unwrap();
    assert_eq!(id.ek_certificate.as_deref(), Some(&cert[..]));
    assert!(id.ek_certificate_chain.is_empty() && id.ek_certificate_errors.is_empty());
    drop(id);
    // With the maker's intermediate in the chain's first index.
    let intermediate = maker.write_chain(&tpm);
    let id = TpmIdentity::open(&tpm.path()).unwrap();
    assert_eq!(id.ek_certificate_chain, vec![intermediate.clone()]);
    drop(id);
    // A tenant takes the TPM, the sanitizer clears it: the maker's
    // certificate (a platform index) is still there, and nothing the
    // clear must remove is left.
    tpm.tenant_takes_it();
    let cleared = clear_tpm(&tpm.path(), None);
    assert!(cleared.ok, "{cleared:?}");
    let id = TpmIdentity::open(&tpm.path()).unwrap();
    assert_eq!(id.ek_certificate, Some(cert.clone()));
    assert_eq!(id.ek_certificate_chain, vec![intermediate]);
    drop(id);
    // `--inventory` says so (a provider that trusts TPM makers needs it).
    let v = tpm.agent_inventory(env!("CARGO_BIN_EXE_neocloud-agent"));
    let want = format!("present ({} bytes of DER at 0x01c0000a), 1 intermediate(s)", cert.len());
    assert!(v["tpm_ek_certificate"].as_str().unwrap().starts_with(&want), "{v}");
}

#[test]
fn a_tpm_whose_maker_certified_only_its_rsa_key_is_known_by_that_one() {
    let Some(tpm) = Swtpm::start() else { return };
    // The profile's RSA EK, as tpm2-tools makes it from its own template.
    tpm.tool("createek", &["-Q", "-G", "rsa", "-c", "ek.ctx", "-u", "ek.pub"]);
    tpm.tool("flushcontext", &["-t"]);
    let ek_pub = std::fs::read(tpm.dir.join("ek.pub")).unwrap();
    let rsa = TpmIdentity::open_with(&tpm.path(), Some(EkKind::Rsa)).unwrap();
    assert_eq!(&ek_pub[2..], &rsa.ek_public[..], "tpm2_createek's RSA EK is the agent's");
    assert_eq!(rsa.ek_kind, EkKind::Rsa);
    let modulus = rsa.ek_public[rsa.ek_public.len() - 256..].to_vec();
    drop(rsa);
    // No certificate at all: the ECC EK.
    assert_eq!(TpmIdentity::open(&tpm.path()).unwrap().ek_kind, EkKind::Ecc);
    // Its maker certified the RSA EK only: that one, with its certificate.
    let maker = swtpm::Manufacturer::new("rsa-maker");
    let cert = maker.certify_rsa(&tpm, &modulus);
    let id = TpmIdentity::open(&tpm.path()).unwrap();
    assert_eq!(id.ek_kind, EkKind::Rsa);
    assert_eq!(id.ek_certificate, Some(cert.clone()));
    drop(id);
    // A tenant (the owner) defines an index at the ECC certificate's
    // handle: not the maker's, so neither read nor taken for a
    // certificate of the ECC EK.
    tpm.tool(
        "nvdefine",
        &["-Q", "0x1c0000a", "-C", "o", "-s", "8", "-a", "ownerread|ownerwrite|authread"],
    );
    std::fs::write(tpm.dir.join("fake"), [0x30, 6, 0, 0, 0, 0, 0, 0]).unwrap();
    tpm.tool("nvwrite", &["-Q", "0x1c0000a", "-C", "o", "-i", "fake"]);
    let id = TpmIdentity::open(&tpm.path()).unwrap();
    assert_eq!((id.ek_kind, id.ek_certificate.as_ref()), (EkKind::Rsa, Some(&cert)));
    drop(id);
    // (One connection at a time to swtpm.)
    let ecc = TpmIdentity::open_with(&tpm.path(), Some(EkKind::Ecc)).unwrap();
    assert_eq!(ecc.ek_certificate, None, "the tenant's index is no certificate");
    drop(ecc);
    let v = tpm.agent_inventory(env!("CARGO_BIN_EXE_neocloud-agent"));
    assert!(v["tpm_ek_certificate"].as_str().unwrap().contains("at 0x01c00002"), "{v}");
}
