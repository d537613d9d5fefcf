//! The machine's identity, proven by its TPM: credential activation
//! (TPM 2.0 Library, Part 1, 24; Part 3, 12.5).
//!
//! A provisioning token proves only that its holder could read the node's
//! boot script. The TPM's endorsement key (EK) is the machine's own: its
//! private part never leaves the TPM, the TPM derives it from the
//! endorsement seed, which `TPM2_Clear` keeps, so it is the same key at
//! every boot and every tenant. The control plane encrypts a secret to the
//! EK's public key, bound to the name of a second key the agent made in
//! the same TPM (`TPM2_MakeCredential`'s format, computed by the control
//! plane); only that TPM, holding both, gives the secret back
//! (`TPM2_ActivateCredential`).
//!
//! The EK is the TCG EK Credential Profile's ECC NIST P-256 key (template
//! L-2): `TPM2_CreatePrimary` in the endorsement hierarchy with that
//! template gives the same key a platform's EK certificate names. Its use
//! is authorized by the profile's policy, `TPM2_PolicySecret` with the
//! endorsement hierarchy's authorization (empty unless a tenant set one:
//! then the agent cannot prove the identity until the TPM is cleared).
//! The second key is an ECC signing key in the null hierarchy (gone at the
//! next boot).

use crate::tpm::{Cursor, Session, Tpm, TpmError, TpmPath};

const CC_CREATE_PRIMARY: u32 = 0x131;
const CC_ACTIVATE_CREDENTIAL: u32 = 0x147;
const CC_POLICY_SECRET: u32 = 0x151;
const CC_FLUSH_CONTEXT: u32 = 0x165;
const CC_MAKE_CREDENTIAL: u32 = 0x168;
const CC_START_AUTH_SESSION: u32 = 0x176;
const RH_NULL: u32 = 0x4000_0007;
const RH_ENDORSEMENT: u32 = 0x4000_000b;
/// The NV index of the ECC NIST P-256 EK's certificate (EK Credential
/// Profile 2.0, 2.2.1.5.1).
pub const EK_CERT_NV_INDEX: u32 = 0x01c0_000a;
/// The NV index of the RSA 2048 EK's certificate.
pub const EK_CERT_NV_INDEX_RSA: u32 = 0x01c0_0002;
/// The EK certificate chain's NV indices (EK Credential Profile 2.5,
/// 2.2.1.5.2): intermediates between the EK's certificate and its maker's
/// root, one or more per index.
pub const EK_CHAIN_NV_FIRST: u32 = 0x01c0_0100;
pub const EK_CHAIN_NV_LAST: u32 = 0x01c0_01ff;
// Algorithm and curve ids (Part 2, 6.3 and 6.4): the control plane
// parses the public areas with the same.
pub const ALG_RSA: u16 = 0x0001;
pub const ALG_AES: u16 = 0x0006;
pub const ALG_SHA256: u16 = 0x000b;
pub const ALG_NULL: u16 = 0x0010;
pub const ALG_ECDSA: u16 = 0x0018;
pub const ALG_ECC: u16 = 0x0023;
pub const ALG_CFB: u16 = 0x0043;
pub const ECC_NIST_P256: u16 = 0x0003;
/// The RSA EK's key size (template L-1).
pub const RSA_EK_BITS: u16 = 2048;
const SE_POLICY: u8 = 0x01;

/// `PolicySecret(TPM_RH_ENDORSEMENT)`: the EK Credential Profile's
/// authorization policy for its keys.
pub const EK_POLICY: [u8; 32] = [
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
    0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
];

/// `TPMA_OBJECT` of the profile's EK: fixedTPM, fixedParent,
/// sensitiveDataOrigin, adminWithPolicy, restricted, decrypt.
pub const EK_ATTRIBUTES: u32 = 0x0003_00b2;

/// `TPMA_OBJECT` of the agent's key: fixedTPM, fixedParent,
/// sensitiveDataOrigin, userWithAuth, noDA (its authorization is empty:
/// nothing to guess, and no dictionary-attack state to update, which a
/// TPM whose last shutdown was not orderly answers with `TPM_RC_RETRY`
/// until it can write it), restricted, sign.
pub const AK_ATTRIBUTES: u32 = 0x0005_0472;

/// What both of the profile's EK templates start with: the key's type,
/// SHA-256 names, the EK's attributes and its policy.
fn ek_template_head(kind: u16) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(kind.to_be_bytes());
    t.extend(ALG_SHA256.to_be_bytes());
    t.extend(EK_ATTRIBUTES.to_be_bytes());
    t.extend((EK_POLICY.len() as u16).to_be_bytes());
    t.extend(EK_POLICY);
    t
}

/// The EK's template (`TPMT_PUBLIC`), L-2 of the EK Credential Profile.
fn ek_template() -> Vec<u8> {
    let mut t = ek_template_head(ALG_ECC);
    // TPMS_ECC_PARMS: AES-128-CFB for the children it protects, no
    // scheme, P-256, no KDF.
    for v in [ALG_AES, 128, ALG_CFB, ALG_NULL, ECC_NIST_P256, ALG_NULL] {
        t.extend(v.to_be_bytes());
    }
    // unique: x and y of 32 zero octets each.
    for _ in 0..2 {
        t.extend(32u16.to_be_bytes());
        t.extend([0u8; 32]);
    }
    t
}

/// The RSA EK's template (`TPMT_PUBLIC`), L-1 of the EK Credential
/// Profile: for TPMs without the ECC one, or whose maker certified only
/// the RSA one.
fn ek_template_rsa() -> Vec<u8> {
    let mut t = ek_template_head(ALG_RSA);
    // TPMS_RSA_PARMS: AES-128-CFB for the children it protects, no
    // scheme, 2048 bits, the default exponent (65537).
    for v in [ALG_AES, 128, ALG_CFB, ALG_NULL, RSA_EK_BITS] {
        t.extend(v.to_be_bytes());
    }
    t.extend(0u32.to_be_bytes());
    // unique: 256 zero octets.
    t.extend(256u16.to_be_bytes());
    t.extend([0u8; 256]);
    t
}

/// The agent's key's template: an ECDSA P-256 restricted signing key.
fn ak_template() -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(ALG_ECC.to_be_bytes());
    t.extend(ALG_SHA256.to_be_bytes());
    t.extend(AK_ATTRIBUTES.to_be_bytes());
    t.extend(0u16.to_be_bytes());
    for v in [ALG_NULL, ALG_ECDSA, ALG_SHA256, ECC_NIST_P256, ALG_NULL] {
        t.extend(v.to_be_bytes());
    }
    t.extend(0u32.to_be_bytes());
    t
}

fn tpm2b(out: &mut Vec<u8>, b: &[u8]) {
    out.extend((b.len() as u16).to_be_bytes());
    out.extend(b);
}

/// The EK and the agent's key, loaded in the TPM (flushed when dropped).
pub struct TpmIdentity {
    tpm: Tpm,
    ek: u32,
    ak: u32,
    /// The EK's public area (`TPMT_PUBLIC`), as the TPM gave it.
    pub ek_public: Vec<u8>,
    /// The agent's key's public area.
    pub ak_public: Vec<u8>,
    /// The agent's key's name, as the TPM computed it.
    pub ak_name: Vec<u8>,
    /// The EK's name, as the TPM computed it: the node's identity.
    pub ek_name: Vec<u8>,
    /// Which of the profile's EKs it is.
    pub ek_kind: EkKind,
    /// The EK's certificate (DER) its maker wrote into the TPM's NV
    /// memory ([`EkKind::certificate_index`]), where there is one the OS
    /// may read.
    pub ek_certificate: Option<Vec<u8>>,
    /// The intermediates its maker wrote beside it (DER each), from the
    /// EK certificate chain's indices (`0x01c00100` to `0x01c001ff`).
    pub ek_certificate_chain: Vec<Vec<u8>>,
    /// What could not be read of them (logged by the agent: without them
    /// the identity is still proven).
    pub ek_certificate_errors: Vec<String>,
}

/// The name (hex) of the endorsement key of the TPM at `path`, or why it
/// cannot be read (`--inventory`).
pub fn describe(path: &TpmPath) -> String {
    match TpmIdentity::open(path) {
        Ok(id) => crate::agent::hex(&id.ek_name),
        Err(e) => format!("{path}: {e}"),
    }
}

/// Whether the TPM at `path` holds its EK's certificate (and
/// intermediates) where the agent reads them (`--inventory`: a provider
/// that trusts TPM makers records identities only with one).
pub fn describe_certificate(path: &TpmPath) -> String {
    let id = match TpmIdentity::open(path) {
        Ok(id) => id,
        Err(e) => return format!("{path}: {e}"),
    };
    let index = id.ek_kind.certificate_index();
    let mut out = match &id.ek_certificate {
        Some(c) => format!(
            "present ({} bytes of DER at 0x{index:08x}), {} intermediate(s) beside it",
            c.len(),
            id.ek_certificate_chain.len()
        ),
        None => format!("none at 0x{index:08x}"),
    };
    for e in &id.ek_certificate_errors {
        out.push_str(&format!("; {e}"));
    }
    out
}

impl TpmIdentity {
    /// Loads the EK and makes the agent's key in the TPM at `path`: the
    /// ECC P-256 EK, or the RSA 2048 one where its maker certified only
    /// that one or the TPM has no ECC EK.
    pub fn open(path: &TpmPath) -> Result<TpmIdentity, IdentityError> {
        TpmIdentity::open_with(path, None)
    }

    /// [`Self::open`] with the EK `kind` asked for (`None`: as above).
    pub fn open_with(path: &TpmPath, kind: Option<EkKind>) -> Result<TpmIdentity, IdentityError> {
        let mut tpm = Tpm::open(path).map_err(IdentityError::Tpm)?;
        let order = match kind {
            Some(k) => vec![k],
            None => {
                if !tpm.platform_index(EK_CERT_NV_INDEX) && tpm.platform_index(EK_CERT_NV_INDEX_RSA)
                {
                    vec![EkKind::Rsa, EkKind::Ecc]
                } else {
                    vec![EkKind::Ecc, EkKind::Rsa]
                }
            }
        };
        let mut found = None;
        for kind in order {
            match create_primary(&mut tpm, RH_ENDORSEMENT, &kind.template()) {
                Ok(key) => {
                    found = Some(Ok((kind, key)));
                    break;
                }
                // The endorsement hierarchy's authorization is not empty.
                Err(TpmError::Rc(rc)) if is_auth_failure(rc) => {
                    return Err(IdentityError::EndorsementLocked)
                }
                // The first refusal says why (a TPM without either).
                Err(e) => found = found.or(Some(Err(e))),
            }
        }
        let (kind, ek) = found.expect("one kind at least").map_err(IdentityError::Tpm)?;
        let ak = match create_primary(&mut tpm, RH_NULL, &ak_template()) {
            Ok(k) => k,
            Err(e) => {
                flush(&mut tpm, ek.handle);
                return Err(IdentityError::Tpm(e));
            }
        };
        // Best effort: without them, the identity is still proven (what
        // the control plane makes of a missing certificate is its policy).
        let certificates = Certificates::read(&mut tpm, kind.certificate_index());
        Ok(TpmIdentity {
            ek_kind: kind,
            ek_certificate: certificates.ek,
            ek_certificate_chain: certificates.chain,
            ek_certificate_errors: certificates.errors,
            tpm,
            ek: ek.handle,
            ak: ak.handle,
            ek_public: ek.public,
            ak_public: ak.public,
            ak_name: ak.name,
            ek_name: ek.name,
        })
    }

    /// `TPM2_ActivateCredential`: the secret the control plane encrypted
    /// to this TPM's EK for the agent's key (`blob` and `secret` are the
    /// contents of the `TPM2B_ID_OBJECT` and `TPM2B_ENCRYPTED_SECRET`).
    pub fn activate(&mut self, blob: &[u8], secret: &[u8]) -> Result<Vec<u8>, TpmError> {
        let session = self.endorsement_policy()?;
        let mut p = Vec::new();
        tpm2b(&mut p, blob);
        tpm2b(&mut p, secret);
        let r = self.tpm.command_with(
            CC_ACTIVATE_CREDENTIAL,
            &[self.ak, self.ek],
            &[Session::Password, Session::Policy { handle: session, nonce: nonce()? }],
            &p,
        );
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                // Flushed by the TPM only when the command succeeded.
                flush(&mut self.tpm, session);
                return Err(e);
            }
        };
        let mut c = Cursor(&r);
        c.u32()?;
        Ok(c.tpm2b()?.to_vec())
    }

    /// `TPM2_MakeCredential` by this TPM with its EK: what the control
    /// plane computes, made by the TPM itself (for checks).
    pub fn make_credential(
        &mut self,
        credential: &[u8],
        name: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), TpmError> {
        let mut p = Vec::new();
        tpm2b(&mut p, credential);
        tpm2b(&mut p, name);
        let r = self.tpm.command_with(CC_MAKE_CREDENTIAL, &[self.ek], &[], &p)?;
        let mut c = Cursor(&r);
        let blob = c.tpm2b()?.to_vec();
        Ok((blob, c.tpm2b()?.to_vec()))
    }

    /// A policy session satisfying the EK's policy.
    fn endorsement_policy(&mut self) -> Result<u32, TpmError> {
        let mut p = Vec::new();
        tpm2b(&mut p, &nonce()?);
        tpm2b(&mut p, &[]);
        p.push(SE_POLICY);
        p.extend(ALG_NULL.to_be_bytes());
        p.extend(ALG_SHA256.to_be_bytes());
        let r = self.tpm.command_with(CC_START_AUTH_SESSION, &[RH_NULL, RH_NULL], &[], &p)?;
        let session = Cursor(&r).u32()?;
        // nonceTPM, cpHashA, policyRef empty; no expiration.
        let p = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let r = self.tpm.command_with(
            CC_POLICY_SECRET,
            &[RH_ENDORSEMENT, session],
            &[Session::Password],
            &p,
        );
        if let Err(e) = r {
            flush(&mut self.tpm, session);
            return Err(e);
        }
        Ok(session)
    }
}

impl Drop for TpmIdentity {
    fn drop(&mut self) {
        flush(&mut self.tpm, self.ak);
        flush(&mut self.tpm, self.ek);
    }
}

/// Which of the profile's endorsement keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EkKind {
    /// ECC NIST P-256 (template L-2).
    Ecc,
    /// RSA 2048 (template L-1).
    Rsa,
}

impl EkKind {
    fn template(self) -> Vec<u8> {
        match self {
            EkKind::Ecc => ek_template(),
            EkKind::Rsa => ek_template_rsa(),
        }
    }

    /// Where its maker writes its certificate.
    pub fn certificate_index(self) -> u32 {
        match self {
            EkKind::Ecc => EK_CERT_NV_INDEX,
            EkKind::Rsa => EK_CERT_NV_INDEX_RSA,
        }
    }
}

/// Why the identity cannot be proven.
#[derive(Debug)]
pub enum IdentityError {
    /// A tenant set the endorsement hierarchy's authorization: the EK
    /// cannot be used until the TPM is cleared.
    EndorsementLocked,
    Tpm(TpmError),
}

impl std::fmt::Display for IdentityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdentityError::EndorsementLocked => write!(
                f,
                "the endorsement hierarchy's authorization is set (by a tenant): the \
                 endorsement key cannot be used until the TPM is cleared"
            ),
            IdentityError::Tpm(e) => write!(f, "{e}"),
        }
    }
}

fn is_auth_failure(rc: u32) -> bool {
    let base = if rc & 0x80 != 0 { 0x80 | (rc & 0x3f) } else { rc & 0xfff };
    // TPM_RC_AUTH_FAIL, TPM_RC_BAD_AUTH.
    base == 0x08e || base == 0x0a2
}

fn nonce() -> Result<Vec<u8>, TpmError> {
    let mut n = vec![0u8; 32];
    getrandom::getrandom(&mut n).map_err(|e| TpmError::Io(format!("random: {e}")))?;
    Ok(n)
}

/// `TPM2_CreatePrimary` under `hierarchy` (empty authorization): the
/// object's handle and public area.
fn create_primary(tpm: &mut Tpm, hierarchy: u32, template: &[u8]) -> Result<Key, TpmError> {
    let mut p = Vec::new();
    // TPM2B_SENSITIVE_CREATE: empty userAuth and data.
    p.extend([0, 4, 0, 0, 0, 0]);
    tpm2b(&mut p, template);
    // outsideInfo empty, no creation PCRs.
    p.extend([0, 0, 0, 0, 0, 0]);
    let r = tpm.command_with(CC_CREATE_PRIMARY, &[hierarchy], &[Session::Password], &p)?;
    let mut c = Cursor(&r);
    let handle = c.u32()?;
    c.u32()?;
    let public = c.tpm2b()?.to_vec();
    // creationData, creationHash, creationTicket (tag, hierarchy, digest).
    c.tpm2b()?;
    c.tpm2b()?;
    c.u16()?;
    c.u32()?;
    c.tpm2b()?;
    let name = c.tpm2b()?.to_vec();
    Ok(Key { handle, public, name })
}

/// The EK's certificate and its chain, as read from the TPM's NV memory.
struct Certificates {
    ek: Option<Vec<u8>>,
    chain: Vec<Vec<u8>>,
    errors: Vec<String>,
}

impl Certificates {
    fn read(tpm: &mut Tpm, index: u32) -> Certificates {
        let mut errors = Vec::new();
        let ek = match tpm.nv_read(index) {
            Ok(data) => data.and_then(|d| der_elements(&d).into_iter().next()),
            Err(e) => {
                errors.push(format!("reading NV 0x{index:08x}: {e}"));
                None
            }
        };
        let mut chain = Vec::new();
        if ek.is_some() {
            match tpm.handles_in(EK_CHAIN_NV_FIRST, EK_CHAIN_NV_LAST) {
                Ok(indices) => {
                    for index in indices {
                        match tpm.nv_read(index) {
                            Ok(data) => chain.extend(der_elements(&data.unwrap_or_default())),
                            Err(e) => errors.push(format!("reading NV 0x{index:08x}: {e}")),
                        }
                    }
                }
                Err(e) => errors.push(format!("listing the certificate chain's indices: {e}")),
            }
        }
        Certificates { ek, chain, errors }
    }
}

/// The DER elements one after another at the start of `data` (an NV
/// index can hold several certificates, and be larger than what it holds,
/// padded after it); where the first one's length cannot be read, all of
/// `data` as one (the control plane says what is wrong with it).
fn der_elements(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while data.first() == Some(&0x30) {
        let len = match data.get(1..) {
            Some([n, ..]) if *n < 0x80 => 2 + *n as usize,
            Some([0x81, a, ..]) => 3 + *a as usize,
            Some([0x82, a, b, ..]) => 4 + u16::from_be_bytes([*a, *b]) as usize,
            _ => break,
        };
        if len > data.len() {
            break;
        }
        out.push(data[..len].to_vec());
        data = &data[len..];
    }
    if out.is_empty() && !data.is_empty() {
        out.push(data.to_vec());
    }
    out
}

/// A loaded object.
struct Key {
    handle: u32,
    public: Vec<u8>,
    name: Vec<u8>,
}

fn flush(tpm: &mut Tpm, handle: u32) {
    let _ = tpm.command_with(CC_FLUSH_CONTEXT, &[], &[], &handle.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_are_the_profiles() {
        // Type, name algorithm, attributes as the EK Credential Profile
        // lists them for L-2; 90 octets in all.
        let t = ek_template();
        assert_eq!(&t[..8], &[0x00, 0x23, 0x00, 0x0b, 0x00, 0x03, 0x00, 0xb2]);
        assert_eq!(t.len(), 2 + 2 + 4 + 34 + 12 + 68);
        assert_eq!(ak_template().len(), 2 + 2 + 4 + 2 + 10 + 4);
        assert!(is_auth_failure(0x9a2) && is_auth_failure(0x98e) && !is_auth_failure(0x185));
    }

    #[test]
    fn certificates_are_cut_from_their_padding() {
        let one = der_elements;
        assert_eq!(one(&[0x30, 0x82, 0, 2, 7, 7, 0, 0, 0xff]), [vec![0x30, 0x82, 0, 2, 7, 7]]);
        assert_eq!(one(&[0x30, 0x81, 1, 9, 0]), [vec![0x30, 0x81, 1, 9]]);
        // Two in one index.
        assert_eq!(one(&[0x30, 1, 5, 0x30, 0, 0xff]), [vec![0x30, 1, 5], vec![0x30, 0]]);
        // A length beyond the data: left whole (the control plane says why).
        assert_eq!(one(&[0x30, 0x82, 9, 9, 1]), [vec![0x30, 0x82, 9, 9, 1]]);
        assert!(one(&[]).is_empty());
    }
}
