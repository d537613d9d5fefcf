//! A node's TPM identity, the control plane's side: `TPM2_MakeCredential`
//! computed here (TPM 2.0 Library, Part 1, 24 "Credential Protection",
//! with the ECC secret sharing of Annex C.6, or the RSA OAEP of Annex
//! B.10.3, [`rsa`]) for the node's endorsement key, which only that TPM
//! can undo (the agent's side is `neocloud_agent::tpm_identity`).
//!
//! The endorsement key (EK) is the EK Credential Profile's ECC NIST P-256
//! key; the object the credential is bound to is the agent's restricted
//! signing key in the same TPM. The secret is a MAC of what it answers
//! (the agent, its keys) under a key the control plane keeps
//! ([`crate::secrets::SecretBox::mac`]), so any replica checks the answer
//! without storing the challenge.

pub mod rsa;

use neocloud_agent::tpm_identity::{
    AK_ATTRIBUTES, ALG_AES, ALG_CFB, ALG_ECC, ALG_ECDSA, ALG_NULL, ALG_RSA, ALG_SHA256,
    ECC_NIST_P256, EK_ATTRIBUTES, EK_POLICY, RSA_EK_BITS,
};
use neocloud_common::{Error, Result};
use ring::{agreement, hmac, rand};
use sha2::{Digest, Sha256};

/// What is wrong with a public area the agent sent.
pub type Invalid = &'static str;

/// An ECC P-256 public area (`TPMT_PUBLIC`), parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EccPublic {
    pub attributes: u32,
    pub auth_policy: Vec<u8>,
    /// (algorithm, key bits, mode) protecting children, or NULL.
    pub symmetric: (u16, u16, u16),
    /// (scheme, its hash), or NULL.
    pub scheme: (u16, u16),
    pub x: Vec<u8>,
    pub y: Vec<u8>,
    /// `nameAlg` ‖ SHA-256 of the public area.
    pub name: Vec<u8>,
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> std::result::Result<&[u8], Invalid> {
        if self.0.len() < n {
            return Err("truncated");
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u16(&mut self) -> std::result::Result<u16, Invalid> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> std::result::Result<u32, Invalid> {
        self.take(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn tpm2b(&mut self) -> std::result::Result<Vec<u8>, Invalid> {
        let n = self.u16()? as usize;
        self.take(n).map(<[u8]>::to_vec)
    }
}

/// Parses an ECC P-256 public area with SHA-256 names.
pub fn parse_ecc(public: &[u8]) -> std::result::Result<EccPublic, Invalid> {
    let mut r = Reader(public);
    if r.u16()? != ALG_ECC {
        return Err("not an ECC key");
    }
    if r.u16()? != ALG_SHA256 {
        return Err("its name algorithm is not SHA-256");
    }
    let attributes = r.u32()?;
    let auth_policy = r.tpm2b()?;
    let symmetric = match r.u16()? {
        ALG_NULL => (ALG_NULL, 0, 0),
        alg => (alg, r.u16()?, r.u16()?),
    };
    let scheme = match r.u16()? {
        ALG_NULL => (ALG_NULL, 0),
        alg => (alg, r.u16()?),
    };
    if r.u16()? != ECC_NIST_P256 {
        return Err("not on the NIST P-256 curve");
    }
    if r.u16()? != ALG_NULL {
        return Err("has a KDF");
    }
    let (x, y) = (r.tpm2b()?, r.tpm2b()?);
    if x.len() != 32 || y.len() != 32 {
        return Err("its point is not 32 + 32 octets");
    }
    if !r.0.is_empty() {
        return Err("has octets after its public area");
    }
    let name = name_of(public);
    Ok(EccPublic { attributes, auth_policy, symmetric, scheme, x, y, name })
}

/// The name of a public area with SHA-256 names.
pub fn name_of(public: &[u8]) -> Vec<u8> {
    let mut n = ALG_SHA256.to_be_bytes().to_vec();
    n.extend(Sha256::digest(public));
    n
}

/// An endorsement key, parsed: the profile's P-256 or RSA 2048 EK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EkPublic {
    Ecc(EccPublic),
    Rsa {
        /// Its modulus, big-endian (256 octets); the exponent is 65537.
        modulus: Vec<u8>,
        /// `nameAlg` ‖ SHA-256 of the public area.
        name: Vec<u8>,
    },
}

impl EkPublic {
    /// Its name: the node's TPM identity.
    pub fn name(&self) -> &[u8] {
        match self {
            EkPublic::Ecc(k) => &k.name,
            EkPublic::Rsa { name, .. } => name,
        }
    }
}

/// An endorsement key: the profile's P-256 (template L-2) or RSA 2048
/// (L-1) EK (restricted decryption, fixed to its TPM, used under the
/// profile's policy).
pub fn parse_ek(public: &[u8]) -> std::result::Result<EkPublic, Invalid> {
    let mut r = Reader(public);
    let kind = r.u16()?;
    if kind == ALG_RSA {
        return parse_rsa_ek(public);
    }
    let ek = parse_ecc(public)?;
    if ek.attributes != EK_ATTRIBUTES || ek.auth_policy != EK_POLICY {
        return Err("not the EK Credential Profile's endorsement key (attributes or policy)");
    }
    if ek.symmetric != (ALG_AES, 128, ALG_CFB) || ek.scheme != (ALG_NULL, 0) {
        return Err("not the EK Credential Profile's endorsement key (parameters)");
    }
    Ok(EkPublic::Ecc(ek))
}

/// The profile's RSA 2048 EK (template L-1).
fn parse_rsa_ek(public: &[u8]) -> std::result::Result<EkPublic, Invalid> {
    let mut r = Reader(public);
    r.u16()?;
    if r.u16()? != ALG_SHA256 {
        return Err("its name algorithm is not SHA-256");
    }
    if r.u32()? != EK_ATTRIBUTES || r.tpm2b()? != EK_POLICY {
        return Err("not the EK Credential Profile's endorsement key (attributes or policy)");
    }
    // AES-128-CFB, no scheme, 2048 bits, the default exponent.
    let params = [r.u16()?, r.u16()?, r.u16()?, r.u16()?, r.u16()?];
    if params != [ALG_AES, 128, ALG_CFB, ALG_NULL, RSA_EK_BITS] || r.u32()? != 0 {
        return Err("not the EK Credential Profile's endorsement key (parameters)");
    }
    let modulus = r.tpm2b()?;
    if modulus.len() != usize::from(RSA_EK_BITS / 8) || modulus[0] & 0x80 == 0 {
        return Err("its modulus is not 2048 bits");
    }
    if !r.0.is_empty() {
        return Err("has octets after its public area");
    }
    Ok(EkPublic::Rsa { modulus, name: name_of(public) })
}

/// The agent's key: a restricted ECDSA signing key fixed to its TPM.
pub fn parse_ak(public: &[u8]) -> std::result::Result<EccPublic, Invalid> {
    let ak = parse_ecc(public)?;
    if ak.attributes != AK_ATTRIBUTES || ak.scheme != (ALG_ECDSA, ALG_SHA256) {
        return Err("not a restricted signing key fixed to its TPM");
    }
    Ok(ak)
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut c = hmac::Context::with_key(&k);
    for p in parts {
        c.update(p);
    }
    c.sign().as_ref().to_vec()
}

/// The counter-mode KDFs' frame: `block(i, label)` for i = 1, 2, ...
/// (the label with its zero octet) until `bits` are out, cut to them.
fn counter_kdf(label: &str, bits: u32, block: impl Fn(&[u8; 4], &[u8]) -> Vec<u8>) -> Vec<u8> {
    let mut label = label.as_bytes().to_vec();
    label.push(0);
    let mut out = Vec::new();
    let mut i = 1u32;
    while out.len() * 8 < bits as usize {
        out.extend(block(&i.to_be_bytes(), &label));
        i += 1;
    }
    out.truncate(bits as usize / 8);
    out
}

/// KDFa with SHA-256 (Part 1, 11.4.10.2).
fn kdfa(key: &[u8], label: &str, u: &[u8], v: &[u8], bits: u32) -> Vec<u8> {
    counter_kdf(label, bits, |i, label| hmac_sha256(key, &[i, label, u, v, &bits.to_be_bytes()]))
}

/// KDFe with SHA-256 (Part 1, 11.4.10.3): the ECDH seed.
fn kdfe(z: &[u8], usage: &str, u: &[u8], v: &[u8], bits: u32) -> Vec<u8> {
    counter_kdf(usage, bits, |i, usage| {
        let mut h = Sha256::new();
        for p in [&i[..], z, usage, u, v] {
            h.update(p);
        }
        h.finalize().to_vec()
    })
}

/// AES-128 in CFB mode with a zero IV, as the TPM protects a credential.
fn aes128_cfb(key: &[u8], data: &[u8]) -> Vec<u8> {
    use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
    let cipher = aes::Aes128::new(GenericArray::from_slice(key));
    let mut feedback = [0u8; 16];
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks(16) {
        let mut block = GenericArray::from(feedback);
        cipher.encrypt_block(&mut block);
        let c: Vec<u8> = chunk.iter().zip(block.iter()).map(|(p, k)| p ^ k).collect();
        feedback[..c.len()].copy_from_slice(&c);
        out.extend(c);
    }
    out
}

/// `TPM2_MakeCredential` for `ek`: `credential` (at most 32 octets)
/// protected for the object named `name` in that TPM. Answers the
/// contents of the `TPM2B_ID_OBJECT` and of the `TPM2B_ENCRYPTED_SECRET`.
/// An endorsement key whose point is not on the curve is the caller's
/// error (`ek_public`); the rest are the control plane's.
pub fn make_credential(
    ek: &EkPublic,
    name: &[u8],
    credential: &[u8],
) -> Result<(Vec<u8>, Vec<u8>)> {
    if credential.len() > 32 {
        return Err(Error::internal("a TPM credential is at most a digest"));
    }
    let (seed, secret) = match ek {
        EkPublic::Ecc(ek) => ecc_seed(ek)?,
        EkPublic::Rsa { modulus, .. } => {
            // A seed the size of the name algorithm's digest, encrypted to
            // the EK (the label with its zero octet, Annex B.10.3).
            let mut seed = vec![0u8; 32];
            rand::SecureRandom::fill(&rand::SystemRandom::new(), &mut seed)
                .map_err(|_| Error::internal("no randomness for a credential's seed"))?;
            let secret = rsa::encrypt(modulus, b"IDENTITY\0", &seed)
                .map_err(|why| Error::invalid_value("ek_public", why))?;
            (seed, secret)
        }
    };
    let sym = kdfa(&seed, "STORAGE", name, &[], 128);
    let mut plain = (credential.len() as u16).to_be_bytes().to_vec();
    plain.extend(credential);
    let enc_identity = aes128_cfb(&sym, &plain);
    let hmac_key = kdfa(&seed, "INTEGRITY", &[], &[], 256);
    let integrity = hmac_sha256(&hmac_key, &[&enc_identity, name]);
    let mut blob = (integrity.len() as u16).to_be_bytes().to_vec();
    blob.extend(integrity);
    blob.extend(enc_identity);
    Ok((blob, secret))
}

/// The seed shared with an ECC EK by ECDH (Annex C.6), and the
/// `TPM2B_ENCRYPTED_SECRET`'s contents (the ephemeral point).
fn ecc_seed(ek: &EccPublic) -> Result<(Vec<u8>, Vec<u8>)> {
    let rng = rand::SystemRandom::new();
    let ephemeral = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng)
        .map_err(|_| Error::internal("no randomness for an ephemeral ECDH key"))?;
    let public = ephemeral
        .compute_public_key()
        .map_err(|_| Error::internal("no ephemeral ECDH public key"))?;
    // Uncompressed: 04 ‖ x ‖ y.
    let (qx, qy) = (&public.as_ref()[1..33], &public.as_ref()[33..65]);
    let mut peer = vec![4u8];
    peer.extend(&ek.x);
    peer.extend(&ek.y);
    let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, peer);
    // Z is the shared point's x coordinate; the seed is the size of the
    // name algorithm's digest.
    let seed =
        agreement::agree_ephemeral(ephemeral, &peer, |z| kdfe(z, "IDENTITY", qx, &ek.x, 256))
            .map_err(|_| {
                Error::invalid_value("ek_public", "its point is not on the P-256 curve")
            })?;
    let mut secret = Vec::new();
    for c in [qx, qy] {
        secret.extend((c.len() as u16).to_be_bytes());
        secret.extend(c);
    }
    Ok((seed, secret))
}

/// Whether `answer` is the secret, in constant time.
pub fn answers(secret: &[u8], answer: &[u8]) -> bool {
    secret.len() == answer.len()
        && secret.iter().zip(answer).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// KDFa against the TCG's published test vector would need its
    /// inputs; instead the counter, label octet and length are checked
    /// against a hand-built HMAC chain.
    #[test]
    fn kdfa_chains_counters_and_truncates() {
        let k = b"key";
        let one =
            hmac_sha256(k, &[&1u32.to_be_bytes(), b"STORAGE\0", b"u", b"v", &384u32.to_be_bytes()]);
        let two =
            hmac_sha256(k, &[&2u32.to_be_bytes(), b"STORAGE\0", b"u", b"v", &384u32.to_be_bytes()]);
        let out = kdfa(k, "STORAGE", b"u", b"v", 384);
        assert_eq!(out.len(), 48);
        assert_eq!(&out[..32], &one[..]);
        assert_eq!(&out[32..], &two[..16]);
    }

    #[test]
    fn cfb_is_its_own_inverse_with_the_keystream() {
        // CFB encryption of zeros gives the keystream; XOR undoes it.
        let key = [7u8; 16];
        let data: Vec<u8> = (0..40).collect();
        let enc = aes128_cfb(&key, &data);
        assert_eq!(enc.len(), 40);
        assert_ne!(enc, data);
        // The first block's keystream is AES(0): the same for any data.
        let zeros = aes128_cfb(&key, &[0u8; 16]);
        let first: Vec<u8> = data[..16].iter().zip(&zeros).map(|(a, b)| a ^ b).collect();
        assert_eq!(&enc[..16], &first[..]);
    }

    #[test]
    fn answers_compare_whole_secrets() {
        let s = [3u8; 32];
        assert!(answers(&s, &s));
        assert!(!answers(&s, &s[..31]));
        assert!(!answers(&s, &[3u8; 33]));
        assert!(!answers(&s, &[4u8; 32]));
    }
}
