//! A node's TPM identity: the control plane's `TPM2_MakeCredential`
//! against a real TPM 2.0 (swtpm), which alone can activate it. Skipped
//! loudly where swtpm or tpm2-tools is missing; CI fails instead.

#[path = "../../agent/tests/swtpm/mod.rs"]
mod swtpm;

use neocloud_agent::tpm_identity::TpmIdentity;
use neocloud_server::tpm_identity::{make_credential, name_of, parse_ak, parse_ek};
use swtpm::Swtpm;

#[test]
fn the_control_planes_credential_is_activated_by_that_tpm_alone() {
    let Some(tpm) = Swtpm::start() else { return };
    let Some(elsewhere) = Swtpm::start() else { return };
    let mut id = TpmIdentity::open(&tpm.path()).unwrap();
    let ek = parse_ek(&id.ek_public).unwrap();
    let ak = parse_ak(&id.ak_public).unwrap();
    // The names the control plane computes are the TPM's.
    assert_eq!(ak.name, id.ak_name);
    assert_eq!(name_of(&id.ak_public), id.ak_name);
    for round in 0..3 {
        let secret = [round as u8 + 1; 32];
        let (blob, enc) = make_credential(&ek, &ak.name, &secret).unwrap();
        assert_eq!(id.activate(&blob, &enc).unwrap(), secret, "round {round}");
    }
    // A credential for another machine's EK, or another key's name, or
    // one whose blob was changed in transit: refused by the TPM.
    let other = TpmIdentity::open(&elsewhere.path()).unwrap();
    let other_ek = parse_ek(&other.ek_public).unwrap();
    let (blob, enc) = make_credential(&other_ek, &ak.name, b"secret").unwrap();
    assert!(id.activate(&blob, &enc).is_err());
    let (blob, enc) = make_credential(&ek, &other.ak_name, b"secret").unwrap();
    assert!(id.activate(&blob, &enc).is_err());
    let (mut blob, enc) = make_credential(&ek, &ak.name, b"secret").unwrap();
    *blob.last_mut().unwrap() ^= 1;
    assert!(id.activate(&blob, &enc).is_err());

    // Public areas that are not the profile's EK or a fixed signing key
    // are refused before anything is made.
    assert!(parse_ek(&id.ak_public).is_err());
    assert!(parse_ak(&id.ek_public).is_err());
    let mut truncated = id.ek_public.clone();
    truncated.pop();
    assert!(parse_ek(&truncated).is_err());
}
