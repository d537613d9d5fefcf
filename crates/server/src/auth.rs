//! Bearer-token authentication: secrets are 256 random bits, shown once and
//! stored only as a SHA-256 hash. Last-used times are batched in memory and
//! flushed by a background task, so reads never write.

use neocloud_authz::Principal;
use neocloud_common::{Error, Result};
use neocloud_store::{memberships, tokens, users, Reader, Store};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

/// Secrets look like `nc_` + 64 hex digits.
pub const SECRET_PREFIX: &str = "nc_";
/// How many characters of a secret are stored in clear, to recognise it.
pub const SHOWN_PREFIX_LEN: usize = 10;

/// A new random secret.
pub fn new_secret() -> Result<String> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).map_err(|e| Error::internal(format!("getrandom: {e}")))?;
    Ok(format!("{SECRET_PREFIX}{}", hex::encode(b)))
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub fn shown_prefix(secret: &str) -> String {
    secret.chars().take(SHOWN_PREFIX_LEN).collect()
}

/// Extracts the bearer token from an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Result<&str> {
    let h = header.ok_or_else(|| Error::unauthenticated("no Authorization header"))?;
    let (scheme, rest) = h
        .split_once(' ')
        .ok_or_else(|| Error::unauthenticated("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Error::unauthenticated("Authorization scheme is not Bearer"));
    }
    let t = rest.trim();
    if t.is_empty() || t.len() > 256 {
        return Err(Error::unauthenticated("empty or oversized bearer token"));
    }
    Ok(t)
}

/// Resolves a secret to a principal with its grants.
pub fn principal(r: &mut dyn Reader, secret: &str, now: i64) -> Result<Principal> {
    let (token_id, user_id) = tokens::authenticate(r, &hash_secret(secret), now)?
        .ok_or_else(|| Error::unauthenticated("unknown, expired or revoked token"))?;
    let user = users::get_any(r, &user_id)?;
    let grants = memberships::grants_for_user(r, &user_id)?;
    Ok(Principal { user_id, user_name: user.name, tenant_id: user.tenant_id, token_id, grants })
}

/// Last-used times waiting to be written.
#[derive(Default)]
pub struct TokenUsage {
    pending: Mutex<HashMap<String, i64>>,
}

impl TokenUsage {
    pub fn record(&self, token_id: &str, now: i64) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.insert(token_id.to_string(), now);
    }

    /// Writes what is pending; returns how many tokens were touched.
    pub fn flush(&self, store: &Store) -> Result<usize> {
        let batch: Vec<(String, i64)> = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.drain().collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        let n = batch.len();
        store.write(|w| tokens::touch(w, &batch))?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_256_bit_and_distinct() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), SECRET_PREFIX.len() + 64);
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), hash_secret(&b));
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer(Some("Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer(Some("bearer abc")).unwrap(), "abc");
        assert!(bearer(None).is_err());
        assert!(bearer(Some("Basic abc")).is_err());
        assert!(bearer(Some("Bearer ")).is_err());
        assert!(bearer(Some("Bearer")).is_err());
    }
}
