//! The audit trail: append-only (triggers refuse UPDATE and DELETE) and
//! hash-chained per tenant. Each event's hash covers the previous hash and
//! the event's canonical content; `audit_heads` holds each chain's last seq
//! and hash, so edited, deleted and truncated rows are all detected by
//! [`verify`].

use crate::backend::{Reader, Row, Writer};
use crate::{rfc, vals};
use neocloud_common::{new_id, Error, Result};
use neocloud_types::AuditEvent;
use sha2::{Digest, Sha256};

pub use crate::migrations::PROVIDER as PROVIDER_CHAIN;

/// The hash before the first event of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What the caller records; the store adds id, chain position and hashes.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub time: i64,
    pub actor: String,
    pub actor_name: String,
    pub token_id: Option<String>,
    pub role: Option<String>,
    pub tenant_id: Option<String>,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub status: u16,
    pub request_id: String,
}

const COLS: &str = "chain, seq, id, time, actor, actor_name, token_id, role, tenant_id, action, target, outcome, status, request_id, prev_hash, hash";

struct Stored {
    chain: String,
    seq: i64,
    id: String,
    time: i64,
    ev: NewEvent,
    prev_hash: String,
    hash: String,
}

fn from_row(r: &Row) -> Result<Stored> {
    Ok(Stored {
        chain: r.str(0)?,
        seq: r.i64(1)?,
        id: r.str(2)?,
        time: r.i64(3)?,
        ev: NewEvent {
            time: r.i64(3)?,
            actor: r.str(4)?,
            actor_name: r.str(5)?,
            token_id: r.opt_str(6)?,
            role: r.opt_str(7)?,
            tenant_id: r.opt_str(8)?,
            action: r.str(9)?,
            target: r.str(10)?,
            outcome: r.str(11)?,
            status: r.i64(12)? as u16,
            request_id: r.str(13)?,
        },
        prev_hash: r.str(14)?,
        hash: r.str(15)?,
    })
}

fn view(s: Stored) -> AuditEvent {
    AuditEvent {
        id: s.id,
        chain: s.chain,
        seq: s.seq,
        time: rfc(s.time),
        actor: s.ev.actor,
        actor_name: s.ev.actor_name,
        token_id: s.ev.token_id,
        role: s.ev.role,
        tenant_id: s.ev.tenant_id,
        action: s.ev.action,
        target: s.ev.target,
        outcome: s.ev.outcome,
        status: s.ev.status,
        request_id: s.ev.request_id,
        prev_hash: s.prev_hash,
        hash: s.hash,
    }
}

/// The hash of an event: SHA-256 over the previous hash and the event's
/// fields as a JSON array in a fixed order.
fn event_hash(chain: &str, seq: i64, id: &str, ev: &NewEvent, prev_hash: &str) -> String {
    let canonical = serde_json::json!([
        chain,
        seq,
        id,
        ev.time,
        ev.actor,
        ev.actor_name,
        ev.token_id,
        ev.role,
        ev.tenant_id,
        ev.action,
        ev.target,
        ev.outcome,
        ev.status,
        ev.request_id
    ]);
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(canonical.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// Appends an event to `chain` (`provider` or a tenant id), in the caller's
/// transaction. The chain head is locked until commit, so appends to one
/// chain are serialized and the chain never forks.
pub fn append(w: &mut dyn Writer, chain: &str, ev: &NewEvent) -> Result<AuditEvent> {
    w.execute(
        "INSERT INTO audit_heads (chain, seq, hash) VALUES (?, 0, ?) ON CONFLICT (chain) DO NOTHING",
        vals![chain, GENESIS],
    )?;
    let head = w.query(
        &format!("SELECT seq, hash FROM audit_heads WHERE chain = ?{}", w.kind().for_update()),
        vals![chain],
    )?;
    let head = head.first().ok_or_else(|| Error::internal("audit head vanished"))?;
    let (seq, prev) = (head.i64(0)? + 1, head.str(1)?);
    let id = new_id();
    let hash = event_hash(chain, seq, &id, ev, &prev);
    w.execute(
        &format!("INSERT INTO audit_events ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        vals![
            chain, seq, &id, ev.time, &ev.actor, &ev.actor_name, &ev.token_id, &ev.role, &ev.tenant_id,
            &ev.action, &ev.target, &ev.outcome, ev.status as i64, &ev.request_id, &prev, &hash
        ],
    )?;
    w.execute(
        "UPDATE audit_heads SET seq = ?, hash = ? WHERE chain = ?",
        vals![seq, &hash, chain],
    )?;
    Ok(view(Stored {
        chain: chain.into(),
        seq,
        id,
        time: ev.time,
        ev: ev.clone(),
        prev_hash: prev,
        hash,
    }))
}

/// Events of one chain after `after_seq`, in order.
pub fn list_chain(
    r: &mut dyn Reader,
    chain: &str,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<AuditEvent>> {
    r.query(
        &format!(
            "SELECT {COLS} FROM audit_events WHERE chain = ? AND seq > ? ORDER BY seq LIMIT ?"
        ),
        vals![chain, after_seq, limit],
    )?
    .iter()
    .map(|r| from_row(r).map(view))
    .collect()
}

/// Events of every chain, ordered by time then id, after the cursor.
pub fn list_all(
    r: &mut dyn Reader,
    after: Option<(i64, &str)>,
    limit: i64,
) -> Result<Vec<AuditEvent>> {
    let rows = match after {
        None => r.query(&format!("SELECT {COLS} FROM audit_events ORDER BY time, id LIMIT ?"), vals![limit])?,
        Some((t, id)) => r.query(
            &format!("SELECT {COLS} FROM audit_events WHERE time > ? OR (time = ? AND id > ?) ORDER BY time, id LIMIT ?"),
            vals![t, t, id, limit],
        )?,
    };
    rows.iter().map(|r| from_row(r).map(view)).collect()
}

/// The result of [`verify`].
#[derive(Debug, Clone, Default)]
pub struct Verification {
    pub chains: usize,
    pub events: usize,
    /// Empty when every chain is intact.
    pub problems: Vec<String>,
}

/// Recomputes every chain: detects edited rows (hash mismatch), deleted
/// rows (seq gaps, broken links) and a truncated tail (head mismatch).
pub fn verify(r: &mut dyn Reader) -> Result<Verification> {
    let mut out = Verification::default();
    let mut chains: Vec<(String, Option<(i64, String)>)> = vec![];
    for row in r.query("SELECT chain, seq, hash FROM audit_heads ORDER BY chain", &[])? {
        chains.push((row.str(0)?, Some((row.i64(1)?, row.str(2)?))));
    }
    for row in r.query("SELECT DISTINCT chain FROM audit_events ORDER BY chain", &[])? {
        let c = row.str(0)?;
        if !chains.iter().any(|(x, _)| *x == c) {
            chains.push((c, None));
        }
    }
    for (chain, head) in chains {
        out.chains += 1;
        let (mut last_seq, mut last_hash) = (0i64, GENESIS.to_string());
        loop {
            let page = r.query(
                &format!("SELECT {COLS} FROM audit_events WHERE chain = ? AND seq > ? ORDER BY seq LIMIT 1000"),
                vals![&chain, last_seq],
            )?;
            if page.is_empty() {
                break;
            }
            for row in &page {
                let s = from_row(row)?;
                out.events += 1;
                if s.seq != last_seq + 1 {
                    out.problems.push(format!(
                        "chain {chain}: events {}..{} are missing (deleted)",
                        last_seq + 1,
                        s.seq - 1
                    ));
                }
                if s.prev_hash != last_hash {
                    out.problems.push(format!(
                        "chain {chain} seq {}: link to the previous event is broken",
                        s.seq
                    ));
                }
                let expect = event_hash(&chain, s.seq, &s.id, &s.ev, &s.prev_hash);
                if expect != s.hash {
                    out.problems.push(format!(
                        "chain {chain} seq {}: content does not match its hash (edited)",
                        s.seq
                    ));
                }
                last_seq = s.seq;
                last_hash = s.hash;
            }
        }
        match head {
            None => out.problems.push(format!("chain {chain}: head record is missing")),
            Some((seq, hash)) => {
                if seq != last_seq || hash != last_hash {
                    out.problems.push(format!(
                        "chain {chain}: head says seq {seq} but the trail ends at seq {last_seq} (events deleted at the end)"
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// The time of an event, for the provider's paging cursor.
pub fn event_time(r: &mut dyn Reader, id: &str) -> Result<Option<i64>> {
    let rows = r.query("SELECT time FROM audit_events WHERE id = ?", vals![id])?;
    rows.first().map(|row| row.i64(0)).transpose()
}
