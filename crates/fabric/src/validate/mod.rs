//! Input validation: every rule answers `Error::Invalid` naming the field
//! (`switches[1].asn`, `networks[2].cidr`), so the API can point at it.
//!
//! Names that reach rendered config (switch, port, node, NIC names and ids)
//! are restricted to a safe alphabet: a newline or a quote in a port name
//! must never become a config line of its own on a switch.

pub(crate) mod intent;
mod topology;

use crate::error::{Error, Result};
use crate::intent::Intent;
use crate::model::{Fabric, Link, Switch};

pub use intent::validate_intent;
pub use topology::validate_topology;

/// Validates the topology, then the intent against it.
pub fn validate(
    fabric: &Fabric,
    switches: &[Switch],
    links: &[Link],
    intent: &Intent,
) -> Result<()> {
    validate_topology(fabric, switches, links)?;
    validate_intent(fabric, switches, links, intent)
}

/// An identifier or infrastructure name: 1-64 of `A-Za-z0-9-_./:`.
pub(crate) fn check_name(field: impl FnOnce() -> String, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:".contains(&b));
    match ok {
        true => Ok(()),
        false => Err(Error::invalid(
            field(),
            format!("{value:?}: must be 1-64 characters of A-Z a-z 0-9 - _ . / :"),
        )),
    }
}

/// A display label (tenant-chosen names): 1-128 characters, no control
/// characters. Labels never reach a switch.
pub(crate) fn check_label(field: impl FnOnce() -> String, value: &str) -> Result<()> {
    let ok = !value.is_empty() && value.len() <= 128 && !value.chars().any(char::is_control);
    match ok {
        true => Ok(()),
        false => {
            Err(Error::invalid(field(), "must be 1-128 characters without control characters"))
        }
    }
}
