//! The PKey ledger: which partition holds which PKey.
//!
//! Same rules as the VNI ledger (`alloc`): an entry whose partition still
//! exists never moves (even if the fabric's range is later narrowed); entries
//! of removed partitions are released; new PKeys are taken after a cursor,
//! so a released PKey is reused only once the range wraps (a port that has
//! not yet dropped an old tenant's PKey never meets a new tenant on it);
//! new partitions are served in id order, so the result does not depend on
//! the order of the intent.

use super::{validate_fabric, validate_intent, IbFabric, IbIntent, MAX_TENANT_PKEY};
use crate::error::{Error, Result};
use crate::pool::{next_cursor, take_after};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// PKeys handed out, by partition id, and where the next search starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PkeyLedger {
    pub pkeys: BTreeMap<String, u16>,
    pub next: u16,
}

/// Brings the ledger up to date with the intent (previous in, new out).
pub fn allocate_pkeys(
    fabric: &IbFabric,
    intent: &IbIntent,
    previous: &PkeyLedger,
) -> Result<PkeyLedger> {
    validate_fabric(fabric)?;
    validate_intent(intent)?;
    let wanted: BTreeSet<&str> = intent.partitions.iter().map(|p| p.id.as_str()).collect();
    let mut out = PkeyLedger { next: previous.next, ..PkeyLedger::default() };
    let mut used: BTreeSet<u32> = BTreeSet::new();
    for (id, &pkey) in &previous.pkeys {
        if !wanted.contains(id.as_str()) {
            continue;
        }
        let field = format!("ledger.pkeys[{id}]");
        // A kept entry is never moved, but a corrupt one (0, Default, or
        // beyond 15 bits) must not be carried forward either.
        if pkey == 0 || pkey > MAX_TENANT_PKEY {
            return Err(Error::invalid(field, format!("{pkey:#06x} is not a tenant PKey")));
        }
        if !used.insert(u32::from(pkey)) {
            return Err(Error::invalid(field, format!("PKey {pkey:#06x} is held twice")));
        }
        out.pkeys.insert(id.clone(), pkey);
    }
    let (first, last) = (u32::from(fabric.pkey_range.first), u32::from(fabric.pkey_range.last));
    for id in wanted {
        if out.pkeys.contains_key(id) {
            continue;
        }
        let Some(v) = take_after(&used, first, last, u32::from(out.next)) else {
            return Err(Error::exhausted(
                "fabric.pkey_range",
                format!("no free PKey in {first:#06x}..={last:#06x} for partition {id:?}"),
            ));
        };
        used.insert(v);
        // Both fit in u16: the range was validated to lie within 0x7ffe.
        let (pkey, next) = match (u16::try_from(v), u16::try_from(next_cursor(v, first, last))) {
            (Ok(p), Ok(n)) => (p, n),
            (Err(_), _) | (_, Err(_)) => {
                return Err(Error::invalid("fabric.pkey_range", "range beyond 16 bits"))
            }
        };
        out.pkeys.insert(id.to_string(), pkey);
        out.next = next;
    }
    Ok(out)
}
