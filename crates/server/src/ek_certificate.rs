//! A TPM's endorsement key certificate (TCG EK Credential Profile for TPM
//! 2.0): the X.509 certificate its manufacturer wrote into the TPM's NV
//! memory (index `0x01c0000a` for the ECC NIST P-256 EK), checked against
//! the TPM manufacturers' CA certificates the provider trusts
//! (`tpm_ek_ca_pem`).
//!
//! A certificate certifies an endorsement key when it names that key (its
//! public point), is signed by one of those CA certificates (RSA PKCS #1
//! v1.5 with SHA-256/384/512, or ECDSA over P-256 or P-384 with SHA-256 or
//! SHA-384), and it and that CA are within their validity. The provider's
//! bundle is its trust store, intermediates and roots alike (a TPM's
//! certificate is usually issued by a manufacturer's intermediate; the
//! provider puts that intermediate in the bundle). Parsed here from DER:
//! the certificate's structure of RFC 5280, 4.1; its extensions (the TCG's
//! subject alternative name naming the TPM's maker and model) are not
//! interpreted.

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use ureq::rustls::pki_types::pem::PemObject;
use ureq::rustls::pki_types::CertificateDer;

/// The NV index of the ECC NIST P-256 EK certificate (EK Credential
/// Profile 2.0, 2.2.1.5.1).
pub const EK_CERT_NV_INDEX_P256: u32 = 0x01c0_000a;

// Object identifiers, their DER contents.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_RSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const OID_RSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const OID_RSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const BOOLEAN: u8 = 0x01;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0] EXPLICIT`: the version.
const VERSION: u8 = 0xa0;
/// `[3] EXPLICIT`: the extensions.
const EXTENSIONS: u8 = 0xa3;

/// Why a certificate does not certify the key.
pub type Why = String;

/// A DER reader over one level of a structure.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    /// The next element: its tag, contents and whole encoding.
    fn next(&mut self) -> Result<(u8, &'a [u8], &'a [u8]), Why> {
        let b = self.0;
        let (&tag, rest) = b.split_first().ok_or("truncated")?;
        let (&first, rest) = rest.split_first().ok_or("truncated")?;
        let (len, rest) = match first {
            n if n < 0x80 => (n as usize, rest),
            0x81..=0x83 => {
                let k = (first & 0x7f) as usize;
                if rest.len() < k {
                    return Err("truncated".into());
                }
                let len = rest[..k].iter().fold(0usize, |a, &d| (a << 8) | d as usize);
                (len, &rest[k..])
            }
            _ => return Err("a length DER does not allow".into()),
        };
        if rest.len() < len {
            return Err("truncated".into());
        }
        let head = b.len() - rest.len();
        self.0 = &rest[len..];
        Ok((tag, &rest[..len], &b[..head + len]))
    }

    /// The next element's contents, which must have `tag`.
    fn expect(&mut self, tag: u8, what: &str) -> Result<&'a [u8], Why> {
        match self.next()? {
            (t, contents, _) if t == tag => Ok(contents),
            _ => Err(format!("{what} is not where it should be")),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }
}

/// A public key a CA signs with.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    /// `RSAPublicKey`, DER.
    Rsa(Vec<u8>),
    /// An uncompressed point.
    P256(Vec<u8>),
    P384(Vec<u8>),
}

/// The parts of a certificate the checks read.
struct Cert<'a> {
    /// The signed part, its whole encoding.
    tbs: &'a [u8],
    /// The signature algorithm's OID (the outer one, equal to the inner).
    signature_algorithm: &'a [u8],
    signature: &'a [u8],
    /// The issuer's and subject's names, their whole encodings.
    issuer: &'a [u8],
    subject: &'a [u8],
    /// µs since the epoch.
    not_before: i64,
    not_after: i64,
    /// The subject's key, where it is one of [`Key`]'s.
    key: Result<Key, Why>,
    /// Version 1 (no version field, no extensions).
    v1: bool,
    /// Its basic constraints' `cA`, where it has them.
    is_ca: Option<bool>,
}

/// The contents of a BIT STRING without unused bits.
fn bits(contents: &[u8]) -> Result<&[u8], Why> {
    match contents.split_first() {
        Some((0, b)) => Ok(b),
        _ => Err("a BIT STRING with unused bits".into()),
    }
}

/// An `AlgorithmIdentifier`: its OID and its parameters' whole encoding.
fn algorithm(contents: &[u8]) -> Result<(&[u8], &[u8]), Why> {
    let mut d = Der(contents);
    let oid = d.expect(OID, "an algorithm's identifier")?;
    Ok((oid, d.0))
}

/// A UTCTime or GeneralizedTime (`Z` only, as RFC 5280 requires), µs
/// since the epoch.
fn time(tag: u8, contents: &[u8]) -> Result<i64, Why> {
    let s = std::str::from_utf8(contents).map_err(|_| "a time that is not text")?;
    let digits = s.strip_suffix('Z').filter(|d| d.bytes().all(|c| c.is_ascii_digit()));
    let full = match (tag, digits) {
        (UTC_TIME, Some(d)) if d.len() == 12 => {
            let century = if &d[..2] < "50" { "20" } else { "19" };
            format!("{century}{d}")
        }
        (GENERALIZED_TIME, Some(d)) if d.len() == 14 => d.to_string(),
        _ => return Err(format!("an unexpected time {s:?}")),
    };
    let f = |a: usize, b: usize| &full[a..b];
    let rfc3339 =
        format!("{}-{}-{}T{}:{}:{}Z", f(0, 4), f(4, 6), f(6, 8), f(8, 10), f(10, 12), f(12, 14));
    neocloud_common::time::from_rfc3339(&rfc3339)
}

fn subject_key(contents: &[u8]) -> Result<Key, Why> {
    let mut d = Der(contents);
    let (alg, params) = algorithm(d.expect(SEQUENCE, "the key's algorithm")?)?;
    let key = bits(d.expect(BIT_STRING, "the key")?)?.to_vec();
    let curve = || match Der(params).next() {
        Ok((OID, oid, _)) => Ok(oid),
        _ => Err(Why::from("an EC key without a named curve")),
    };
    match alg {
        OID_RSA => Ok(Key::Rsa(key)),
        OID_EC_PUBLIC_KEY => match curve()? {
            OID_P256 => Ok(Key::P256(key)),
            OID_P384 => Ok(Key::P384(key)),
            _ => Err("an EC key on a curve other than P-256 and P-384".into()),
        },
        _ => Err("a key neither RSA nor EC".into()),
    }
}

impl<'a> Cert<'a> {
    fn parse(der: &'a [u8]) -> Result<Cert<'a>, Why> {
        let mut outer = Der(der);
        let cert = outer.expect(SEQUENCE, "the certificate")?;
        if !outer.0.is_empty() {
            return Err("bytes after the certificate".into());
        }
        let mut c = Der(cert);
        let (tag, tbs_contents, tbs) = c.next()?;
        if tag != SEQUENCE {
            return Err("the signed part is not where it should be".into());
        }
        let (signature_algorithm, _) = algorithm(c.expect(SEQUENCE, "the signature's algorithm")?)?;
        let signature = bits(c.expect(BIT_STRING, "the signature")?)?;
        let mut t = Der(tbs_contents);
        let v1 = t.peek() != Some(VERSION);
        if !v1 {
            t.next()?;
        }
        t.expect(INTEGER, "the serial number")?;
        let (inner, _) = algorithm(t.expect(SEQUENCE, "the signed part's algorithm")?)?;
        if inner != signature_algorithm {
            return Err("its two signature algorithms differ".into());
        }
        let (_, _, issuer) = t.next()?;
        let mut validity = Der(t.expect(SEQUENCE, "the validity")?);
        let (tag, b, _) = validity.next()?;
        let not_before = time(tag, b)?;
        let (tag, a, _) = validity.next()?;
        let not_after = time(tag, a)?;
        let (_, _, subject) = t.next()?;
        let key = subject_key(t.expect(SEQUENCE, "the subject's key")?);
        let mut is_ca = None;
        while !t.0.is_empty() {
            // [1] and [2] (unique identifiers), then [3] the extensions.
            let (tag, contents, _) = t.next()?;
            if tag == EXTENSIONS {
                is_ca = basic_constraints(contents)?;
            }
        }
        Ok(Cert {
            tbs,
            signature_algorithm,
            signature,
            issuer,
            subject,
            not_before,
            not_after,
            key,
            v1,
            is_ca,
        })
    }

    /// Whether `key` made this certificate's signature.
    fn signed_by(&self, key: &Key) -> Result<(), Why> {
        let alg: &dyn VerificationAlgorithm = match (key, self.signature_algorithm) {
            (Key::Rsa(_), OID_RSA_SHA256) => &signature::RSA_PKCS1_2048_8192_SHA256,
            (Key::Rsa(_), OID_RSA_SHA384) => &signature::RSA_PKCS1_2048_8192_SHA384,
            (Key::Rsa(_), OID_RSA_SHA512) => &signature::RSA_PKCS1_2048_8192_SHA512,
            (Key::P256(_), OID_ECDSA_SHA256) => &signature::ECDSA_P256_SHA256_ASN1,
            (Key::P256(_), OID_ECDSA_SHA384) => &signature::ECDSA_P256_SHA384_ASN1,
            (Key::P384(_), OID_ECDSA_SHA256) => &signature::ECDSA_P384_SHA256_ASN1,
            (Key::P384(_), OID_ECDSA_SHA384) => &signature::ECDSA_P384_SHA384_ASN1,
            _ => return Err("its signature algorithm is not one its issuer's key makes".into()),
        };
        let (Key::Rsa(k) | Key::P256(k) | Key::P384(k)) = key;
        UnparsedPublicKey::new(alg, k)
            .verify(self.tbs, self.signature)
            .map_err(|_| "its signature does not verify with its issuer's key".into())
    }
}

/// Whether `now_micros` is within a validity period.
fn within(not_before: i64, not_after: i64, now_micros: i64) -> Result<(), Why> {
    use neocloud_common::time::to_rfc3339;
    if now_micros < not_before {
        return Err(format!("not valid before {}", to_rfc3339(not_before)));
    }
    if now_micros > not_after {
        return Err(format!("expired at {}", to_rfc3339(not_after)));
    }
    Ok(())
}

/// The `cA` of the basic constraints among `[3]`'s extensions, if there.
fn basic_constraints(explicit: &[u8]) -> Result<Option<bool>, Why> {
    let mut list = Der(Der(explicit).expect(SEQUENCE, "the extensions")?);
    while !list.0.is_empty() {
        let mut ext = Der(list.expect(SEQUENCE, "an extension")?);
        if ext.expect(OID, "an extension's identifier")? != OID_BASIC_CONSTRAINTS {
            continue;
        }
        if ext.peek() == Some(BOOLEAN) {
            ext.next()?;
        }
        let value = ext.expect(OCTET_STRING, "an extension's value")?;
        let mut bc = Der(Der(value).expect(SEQUENCE, "the basic constraints")?);
        return Ok(Some(match bc.next() {
            Ok((BOOLEAN, [v], _)) => *v != 0,
            // cA absent: FALSE (its default).
            Ok(_) | Err(_) => false,
        }));
    }
    Ok(None)
}

/// A name's common name (the first), or the name's size.
fn common_name(name: &[u8]) -> String {
    let found = (|| -> Result<Option<String>, Why> {
        let mut rdns = Der(Der(name).expect(SEQUENCE, "a name")?);
        while !rdns.0.is_empty() {
            let mut set = Der(rdns.expect(SET, "a name's part")?);
            while !set.0.is_empty() {
                let mut atv = Der(set.expect(SEQUENCE, "a name's attribute")?);
                if atv.expect(OID, "an attribute's type")? == OID_COMMON_NAME {
                    let (_, value, _) = atv.next()?;
                    return Ok(Some(String::from_utf8_lossy(value).into_owned()));
                }
            }
        }
        Ok(None)
    })();
    match found {
        Ok(Some(cn)) => format!("CN={cn}"),
        _ => format!("a name of {} bytes without a common name", name.len()),
    }
}

/// An endorsement key, as its certificate must name it.
#[derive(Debug, Clone, Copy)]
pub enum EkKey<'a> {
    /// The P-256 EK's point.
    P256 { x: &'a [u8], y: &'a [u8] },
    /// The RSA EK's modulus (big-endian; exponent 65537).
    Rsa { modulus: &'a [u8] },
}

/// An `RSAPublicKey`'s modulus and exponent, without leading zero octets.
fn rsa_key(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut k = Der(Der(der).expect(SEQUENCE, "an RSA key").ok()?);
    let n = k.expect(INTEGER, "its modulus").ok()?;
    let e = k.expect(INTEGER, "its exponent").ok()?;
    Some((unsigned(n), unsigned(e)))
}

/// An INTEGER's octets without leading zeros.
fn unsigned(v: &[u8]) -> &[u8] {
    let i = v.iter().position(|b| *b != 0).unwrap_or(v.len());
    &v[i..]
}

/// A CA certificate, parsed: the provider's, or one of the TPM's chain.
#[derive(Debug, Clone)]
struct Ca {
    subject: Vec<u8>,
    key: Key,
    not_before: i64,
    not_after: i64,
    name: String,
}

impl Ca {
    /// `c` as a CA: a key the checks can use, and a CA by its basic
    /// constraints (a version 1 certificate, which has none, where
    /// `v1_ok`: the provider's own anchors).
    fn of(c: &Cert<'_>, v1_ok: bool) -> Result<Ca, Why> {
        match (c.is_ca, c.v1) {
            (Some(true), _) => {}
            (None, true) if v1_ok => {}
            (Some(false), _) => return Err("not a CA (its basic constraints say so)".into()),
            (None, _) => return Err("not a CA (no basic constraints)".into()),
        }
        Ok(Ca {
            subject: c.subject.to_vec(),
            key: c.key.clone()?,
            not_before: c.not_before,
            not_after: c.not_after,
            name: common_name(c.subject),
        })
    }
}

/// Intermediates between an EK certificate and the provider's CAs, at
/// most (a TPM's chain in its NV memory has one or two).
const MAX_CHAIN: usize = 4;

/// The TPM manufacturers' CA certificates the provider trusts.
#[derive(Debug, Clone)]
pub struct EkTrust {
    cas: Vec<Ca>,
    /// The bundle's certificates that cannot be used, and why (the server
    /// says so at start).
    pub skipped: Vec<String>,
}

impl EkTrust {
    /// The certificates in `pem` that are CAs with a key the checks can
    /// use (each is an anchor); at least one. The others are skipped,
    /// saying why.
    pub fn from_pem(pem: &str) -> Result<EkTrust, Why> {
        let (mut cas, mut skipped) = (Vec::new(), Vec::new());
        for (i, der) in CertificateDer::pem_slice_iter(pem.as_bytes()).enumerate() {
            let der = der.map_err(|e| format!("certificate {}: {e}", i + 1))?;
            match Cert::parse(&der).and_then(|c| Ca::of(&c, true)) {
                Ok(ca) => cas.push(ca),
                Err(e) => skipped.push(format!("certificate {}: {e}", i + 1)),
            }
        }
        if cas.is_empty() {
            return Err(match skipped.is_empty() {
                true => "no PEM certificate (BEGIN CERTIFICATE) in it".into(),
                false => format!("no certificate it holds can be used: {}", skipped.join("; ")),
            });
        }
        Ok(EkTrust { cas, skipped })
    }

    /// Whether `der` certifies the endorsement key `ek` at `now_micros`,
    /// signed by one of the provider's CAs or through the TPM's own
    /// `chain` (intermediates, in any order) to one: the name of the
    /// provider's CA, or why not.
    pub fn certifies(
        &self,
        der: &[u8],
        chain: &[Vec<u8>],
        ek: &EkKey<'_>,
        now_micros: i64,
    ) -> Result<String, Why> {
        let c = Cert::parse(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let names_it = match (&c.key, ek) {
            (Ok(Key::P256(k)), EkKey::P256 { x, y }) => *k == [&[0x04][..], x, y].concat(),
            (Ok(Key::Rsa(k)), EkKey::Rsa { modulus }) => rsa_key(k) == Some((modulus, &[1, 0, 1])),
            (
                Ok(Key::P256(_) | Key::P384(_) | Key::Rsa(_)),
                EkKey::P256 { .. } | EkKey::Rsa { .. },
            ) => false,
            (Err(e), _) => return Err(format!("it certifies {e}, not this TPM's endorsement key")),
        };
        if !names_it {
            return Err("it certifies another key, not this TPM's endorsement key".into());
        }
        within(c.not_before, c.not_after, now_micros)?;
        self.issued(&c, chain, now_micros, 0)
    }

    /// The provider's CA `c` leads to, directly or through `chain`.
    fn issued(
        &self,
        c: &Cert<'_>,
        chain: &[Vec<u8>],
        now: i64,
        depth: usize,
    ) -> Result<String, Why> {
        let issuer = common_name(c.issuer);
        let mut why = format!(
            "its issuer ({issuer}) is not among the provider's TPM manufacturer CAs (tpm_ek_ca_pem)"
        );
        for ca in self.cas.iter().filter(|ca| ca.subject == c.issuer) {
            match within(ca.not_before, ca.not_after, now).and_then(|()| c.signed_by(&ca.key)) {
                Ok(()) => return Ok(ca.name.clone()),
                Err(e) => why = format!("{e} ({})", ca.name),
            }
        }
        if depth >= MAX_CHAIN {
            return Err(why);
        }
        // An intermediate of the TPM's own (its maker's, in its NV memory):
        // a CA, itself issued, in turn, by the provider's.
        for der in chain {
            let Ok((link, cert)) = Cert::parse(der).and_then(|c| Ok((Ca::of(&c, false)?, c)))
            else {
                continue;
            };
            if link.subject != c.issuer {
                continue;
            }
            let next = within(link.not_before, link.not_after, now)
                .and_then(|()| c.signed_by(&link.key))
                .map_err(|e| format!("{e} ({}, of the TPM's chain)", link.name))
                .and_then(|()| self.issued(&cert, chain, now, depth + 1));
            match next {
                Ok(name) => return Ok(name),
                Err(e) => why = e,
            }
        }
        Err(why)
    }
}
