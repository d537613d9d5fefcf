//! The OpenSM `partitions.conf` renderer (the path without UFM).
//!
//! Layout: the Default partition first, with every port a limited member
//! (limited members cannot talk to each other, so tenants cannot meet over
//! Default) and the SM's own port full (so every port can still reach the
//! SM); then one line per tenant partition, sorted by PKey, members full.

use super::{normalize_guid, partition_name, IbDesired, MAX_TENANT_PKEY};
use crate::error::{Error, Result};
use std::fmt::Write;

/// The Default rule: written out rather than relying on OpenSM's implicit
/// one, so the file says what isolation it gives.
pub const DEFAULT_LINE: &str = "Default=0x7fff, ipoib : ALL=limited, SELF=full ;";

/// Renders `partitions.conf`. Partitions without members are omitted (an
/// empty member list is not a useful rule). Names are re-sanitized and GUIDs
/// re-checked here, since `IbDesired` can be built by hand: nothing in it
/// can inject syntax into the file.
pub fn render(desired: &IbDesired) -> Result<String> {
    let mut out = String::new();
    out.push_str(DEFAULT_LINE);
    out.push('\n');
    for (pkey, p) in &desired.partitions {
        let field = format!("desired.partitions[{pkey:#06x}]");
        if *pkey == 0 || *pkey > MAX_TENANT_PKEY {
            return Err(Error::invalid(field, format!("{pkey:#06x} is not a tenant PKey")));
        }
        if p.members.is_empty() {
            continue;
        }
        let mut guids = Vec::with_capacity(p.members.len());
        for g in &p.members {
            guids.push(normalize_guid(g, &format!("{field}.members"))?);
        }
        guids.sort();
        guids.dedup();
        let members: Vec<String> = guids.iter().map(|g| format!("0x{g}=full")).collect();
        let name = match partition_name(&p.name) {
            n if n.is_empty() || n.eq_ignore_ascii_case("default") => format!("p{pkey:04x}"),
            n => n,
        };
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{name}=0x{pkey:04x}, ipoib : {} ;", members.join(", "));
    }
    Ok(out)
}
