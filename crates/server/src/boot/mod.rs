//! The boot service and the agent endpoints, served by `neocloud serve`
//! outside the `/v1` API (nodes are not API principals):
//!
//! - `GET /boot/ipxe?mac=MAC`: the iPXE script for the node owning MAC:
//!   while it is provisioning (or releasing), its image (the tenant's, or
//!   the provider's sanitizer) with the one-time token; otherwise `exit`
//!   (boot the local disk).
//! - `GET /boot/vmedia/{node}/{key}.iso`: the virtual-media ISO of a node
//!   with a static provisioning address (`iso`); byte ranges as BMCs read.
//! - `GET /boot/nocloud/{token}/{meta-data,user-data,vendor-data,network-config}`:
//!   cloud-init NoCloud documents (hostname, the tenant's SSH keys and
//!   user-data; the provider's vendor-data starts the agent).
//! - `POST /agent/v1/register`: the agent trades the one-time token for its
//!   own credential; `POST /agent/v1/heartbeat` and
//!   `POST /agent/v1/steps/{id}` authenticate with that credential.
//!
//! Handlers here only record (registration, heartbeats, step results);
//! the lifecycle controller acts on them.

pub mod handlers;
pub mod iso;
pub mod render;
pub mod tpm;

use neocloud_common::{Error, Result};
use sha2::{Digest, Sha256};

/// A new random secret (boot token or agent credential): 32 random bytes, hex.
pub fn new_secret() -> Result<String> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).map_err(|e| Error::internal(format!("getrandom: {e}")))?;
    Ok(hex::encode(b))
}

/// How secrets are stored: SHA-256, hex.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}
