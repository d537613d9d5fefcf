//! The control plane's ed25519 signing key: it signs sanitization records
//! so a tenant (or an auditor) can verify, with the public key alone, what
//! was done to a node after its release. The 32-byte seed lives in
//! `<data-dir>/signing.key` (mode 0600, created on first start) or
//! `signing_key_file`; replicas share it.

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use neocloud_common::{Error, Result};
use std::io::Write;
use std::path::Path;

pub const KEY_FILE: &str = "signing.key";

pub struct Signer {
    key: SigningKey,
}

impl Signer {
    pub fn load_or_create(data_dir: &Path) -> Result<Signer> {
        Self::load_or_create_at(&data_dir.join(KEY_FILE))
    }

    pub fn load_or_create_at(path: &Path) -> Result<Signer> {
        let seed: [u8; 32] = match std::fs::read(path) {
            Ok(k) => k.try_into().map_err(|_| {
                Error::internal(format!("{}: not a 32-byte ed25519 seed", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = path.parent().unwrap_or(Path::new("."));
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::internal(format!("create {}: {e}", dir.display())))?;
                let mut k = [0u8; 32];
                getrandom::getrandom(&mut k)
                    .map_err(|e| Error::internal(format!("getrandom: {e}")))?;
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                match opts.open(path) {
                    Ok(mut f) => {
                        f.write_all(&k)
                            .and_then(|()| f.sync_all())
                            .map_err(|e| Error::internal(format!("write signing key: {e}")))?;
                        k
                    }
                    // Another replica created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return Self::load_or_create_at(path)
                    }
                    Err(e) => {
                        return Err(Error::internal(format!("create {}: {e}", path.display())))
                    }
                }
            }
            Err(e) => return Err(Error::internal(format!("read {}: {e}", path.display()))),
        };
        Ok(Signer { key: SigningKey::from_bytes(&seed) })
    }

    /// A signer from a fixed seed (tests, benchmarks).
    pub fn from_seed(seed: [u8; 32]) -> Signer {
        Signer { key: SigningKey::from_bytes(&seed) }
    }

    /// Hex public key.
    pub fn public_key(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    /// Hex signature of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.key.sign(message).to_bytes())
    }
}

/// Checks a hex signature of `message` against a hex public key.
pub fn verify(public_key: &str, message: &[u8], signature: &str) -> bool {
    let Some(pk) = hex::decode(public_key).ok().and_then(|b| <[u8; 32]>::try_from(b).ok()) else {
        return false;
    };
    let Some(sig) = hex::decode(signature).ok().and_then(|b| <[u8; 64]>::try_from(b).ok()) else {
        return false;
    };
    let Ok(vk) = VerifyingKey::from_bytes(&pk) else { return false };
    vk.verify(message, &Signature::from_bytes(&sig)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_and_detects_tampering() {
        let dir = std::env::temp_dir().join(format!("neocloud-sign-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let s = Signer::load_or_create(&dir).unwrap();
        let again = Signer::load_or_create(&dir).unwrap();
        assert_eq!(s.public_key(), again.public_key(), "the key persists");
        let sig = s.sign(b"wiped");
        assert!(verify(&s.public_key(), b"wiped", &sig));
        assert!(!verify(&s.public_key(), b"wipeD", &sig));
        let other = Signer::from_seed([7; 32]);
        assert!(!verify(&other.public_key(), b"wiped", &sig));
        assert!(!verify("zz", b"wiped", &sig));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
