//! Secrets at rest (BMC passwords): sealed with ChaCha20-Poly1305 under a
//! 256-bit key the server holds in `<data-dir>/secrets.key` (mode 0600),
//! created on first start. Replicas share the key file. Sealed values are
//! `v1:` + hex(nonce || ciphertext+tag); the plaintext never reaches the
//! store, the API or the logs.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use neocloud_common::{Error, Result};
use std::io::Write;
use std::path::Path;

pub const KEY_FILE: &str = "secrets.key";

pub struct SecretBox {
    cipher: ChaCha20Poly1305,
    /// For MACs the control plane checks later (any replica): derived
    /// from the key, never the key itself.
    mac_key: ring::hmac::Key,
}

impl SecretBox {
    /// Loads `<data_dir>/secrets.key`, creating it (0600) when absent.
    pub fn load_or_create(data_dir: &Path) -> Result<SecretBox> {
        Self::load_or_create_at(&data_dir.join(KEY_FILE))
    }

    /// Loads the key at `path`, creating it (0600) when absent. Replicas
    /// sharing a store must share this file.
    pub fn load_or_create_at(path: &Path) -> Result<SecretBox> {
        let path = path.to_path_buf();
        let data_dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let key = match std::fs::read(&path) {
            Ok(k) if k.len() == 32 => k,
            Ok(_) => return Err(Error::internal(format!("{}: not a 32-byte key", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&data_dir)
                    .map_err(|e| Error::internal(format!("create {}: {e}", data_dir.display())))?;
                let mut k = vec![0u8; 32];
                getrandom::getrandom(&mut k)
                    .map_err(|e| Error::internal(format!("getrandom: {e}")))?;
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut f = opts
                    .open(&path)
                    .map_err(|e| Error::internal(format!("create {}: {e}", path.display())))?;
                f.write_all(&k)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| Error::internal(format!("write key: {e}")))?;
                k
            }
            Err(e) => return Err(Error::internal(format!("read {}: {e}", path.display()))),
        };
        let derived = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
            b"neocloud mac key v1",
        );
        Ok(SecretBox {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
            mac_key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref()),
        })
    }

    /// HMAC-SHA-256 of `parts` (each length-prefixed) under the derived
    /// MAC key: a value only the control plane makes, checked by any
    /// replica sharing the key file.
    pub fn mac(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut c = ring::hmac::Context::with_key(&self.mac_key);
        for p in parts {
            c.update(&(p.len() as u64).to_be_bytes());
            c.update(p);
        }
        c.sign().as_ref().to_vec()
    }

    pub fn seal(&self, plaintext: &str) -> Result<String> {
        let mut n = [0u8; 12];
        getrandom::getrandom(&mut n).map_err(|e| Error::internal(format!("getrandom: {e}")))?;
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&n), plaintext.as_bytes())
            .map_err(|_| Error::internal("seal failed"))?;
        Ok(format!("v1:{}{}", hex::encode(n), hex::encode(ct)))
    }

    pub fn open(&self, sealed: &str) -> Result<String> {
        let raw = sealed
            .strip_prefix("v1:")
            .and_then(|h| hex::decode(h).ok())
            .filter(|b| b.len() > 12)
            .ok_or_else(|| Error::internal("sealed secret is malformed"))?;
        let (n, ct) = raw.split_at(12);
        let pt = self
            .cipher
            .decrypt(Nonce::from_slice(n), ct)
            .map_err(|_| Error::internal("sealed secret does not open with this key"))?;
        String::from_utf8(pt).map_err(|_| Error::internal("sealed secret is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let dir = std::env::temp_dir().join(format!("nc-secrets-{}", neocloud_common::new_id()));
        let b = SecretBox::load_or_create(&dir).unwrap();
        let s1 = b.seal("hunter2").unwrap();
        let s2 = b.seal("hunter2").unwrap();
        assert_ne!(s1, s2, "random nonces");
        assert!(!s1.contains("hunter2"));
        assert_eq!(b.open(&s1).unwrap(), "hunter2");
        // The same key file opens it again; a flipped byte does not.
        let again = SecretBox::load_or_create(&dir).unwrap();
        assert_eq!(again.open(&s2).unwrap(), "hunter2");
        let mut bad = s1.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == '0' { '1' } else { '0' });
        assert!(b.open(&bad).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = SecretBox::load_or_create(&dir.join("other")).unwrap();
        assert!(other.open(&s1).is_err(), "another key cannot open it");
        // MACs: the same under the same key file, another under another
        // key, and the parts' boundaries count.
        assert_eq!(b.mac(&[b"ab", b"c"]), again.mac(&[b"ab", b"c"]));
        assert_ne!(b.mac(&[b"ab", b"c"]), other.mac(&[b"ab", b"c"]));
        assert_ne!(b.mac(&[b"ab", b"c"]), b.mac(&[b"a", b"bc"]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
