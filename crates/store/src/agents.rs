//! One-time boot tokens, node agents and the node-local steps they run,
//! and the sanitization records.

use crate::backend::{Reader, Row, Writer};
use crate::vals;
use neocloud_common::{new_id, time::now_micros, Error, Result};
use neocloud_types::{
    AgentInventory, AgentStep, AgentStepKind, AgentStepResult, GpuStatus, ImagePurpose,
    TpmIdentitySource,
};

fn json_err(e: serde_json::Error) -> Error {
    Error::internal(format!("agent json: {e}"))
}

/// A node's current boot token.
#[derive(Debug, Clone)]
pub struct BootToken {
    pub node_id: String,
    pub token_sealed: String,
    pub purpose: ImagePurpose,
    pub instance_id: String,
    pub created_at: i64,
    pub used_at: Option<i64>,
}

fn token_from_row(r: &Row) -> Result<BootToken> {
    let p = r.str(2)?;
    Ok(BootToken {
        node_id: r.str(0)?,
        token_sealed: r.str(1)?,
        purpose: ImagePurpose::parse(&p)
            .ok_or_else(|| Error::internal(format!("bad token purpose {p:?}")))?,
        instance_id: r.str(3)?,
        created_at: r.i64(4)?,
        used_at: r.opt_i64(5)?,
    })
}

const TOKEN_COLS: &str = "node_id, token_sealed, purpose, instance_id, created_at, used_at";

/// Replaces the node's boot token (hashed and sealed by the caller).
pub fn issue_boot_token(
    w: &mut dyn Writer,
    node_id: &str,
    hash: &str,
    sealed: &str,
    purpose: ImagePurpose,
    instance_id: &str,
) -> Result<()> {
    w.execute("DELETE FROM boot_tokens WHERE node_id = ?", vals![node_id])?;
    w.execute(
        &format!(
            "INSERT INTO boot_tokens ({TOKEN_COLS}, token_hash) VALUES (?, ?, ?, ?, ?, NULL, ?)"
        ),
        vals![node_id, sealed, purpose.as_str(), instance_id, now_micros(), hash],
    )?;
    Ok(())
}

pub fn boot_token(r: &mut dyn Reader, node_id: &str) -> Result<Option<BootToken>> {
    node_token(r, node_id, "")
}

/// The node's boot token, its row locked until the transaction ends: a
/// registration with it in flight is waited for (and seen), and one after
/// waits for this transaction (and sees what it did).
pub fn boot_token_locked(w: &mut dyn Writer, node_id: &str) -> Result<Option<BootToken>> {
    let lock = w.kind().for_update();
    node_token(w, node_id, lock)
}

fn node_token(r: &mut dyn Reader, node_id: &str, lock: &str) -> Result<Option<BootToken>> {
    let rows = r.query(
        &format!("SELECT {TOKEN_COLS} FROM boot_tokens WHERE node_id = ?{lock}"),
        vals![node_id],
    )?;
    rows.first().map(token_from_row).transpose()
}

pub fn boot_token_by_hash(r: &mut dyn Reader, hash: &str) -> Result<Option<BootToken>> {
    let rows = r.query(
        &format!("SELECT {TOKEN_COLS} FROM boot_tokens WHERE token_hash = ?"),
        vals![hash],
    )?;
    rows.first().map(token_from_row).transpose()
}

/// Marks the token used; false when it already was (one time only).
pub fn consume_boot_token(w: &mut dyn Writer, hash: &str) -> Result<bool> {
    Ok(w.execute(
        "UPDATE boot_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL",
        vals![now_micros(), hash],
    )? == 1)
}

pub fn delete_boot_token(w: &mut dyn Writer, node_id: &str) -> Result<()> {
    w.execute("DELETE FROM boot_tokens WHERE node_id = ?", vals![node_id])?;
    Ok(())
}

/// A registered agent.
#[derive(Debug, Clone)]
pub struct AgentRecord {
    pub id: String,
    pub node_id: String,
    pub purpose: ImagePurpose,
    pub instance_id: String,
    pub inventory: AgentInventory,
    pub health: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub revoked_at: Option<i64>,
    /// The name (hex) of the TPM endorsement key the agent proved its
    /// machine holds; `None` until it did.
    pub tpm_ek_name: Option<String>,
    /// A proof of its was refused (and audited) already.
    pub tpm_refused: bool,
}

const AGENT_COLS: &str =
    "id, node_id, purpose, instance_id, inventory, health, created_at, last_seen_at, revoked_at, tpm_ek_name, tpm_refused_at";

fn agent_from_row(r: &Row) -> Result<AgentRecord> {
    let p = r.str(2)?;
    Ok(AgentRecord {
        id: r.str(0)?,
        node_id: r.str(1)?,
        purpose: ImagePurpose::parse(&p)
            .ok_or_else(|| Error::internal(format!("bad agent purpose {p:?}")))?,
        instance_id: r.str(3)?,
        inventory: serde_json::from_str(&r.str(4)?).map_err(json_err)?,
        health: r.str(5)?,
        created_at: r.i64(6)?,
        last_seen_at: r.i64(7)?,
        revoked_at: r.opt_i64(8)?,
        tpm_ek_name: r.opt_str(9)?,
        tpm_refused: r.i64(10)? != 0,
    })
}

pub fn create_agent(
    w: &mut dyn Writer,
    token: &BootToken,
    credential_hash: &str,
    inventory: &AgentInventory,
) -> Result<AgentRecord> {
    let id = new_id();
    let now = now_micros();
    w.execute(
        &format!("INSERT INTO agents ({AGENT_COLS}, credential_hash) VALUES (?, ?, ?, ?, ?, 'ok', ?, ?, NULL, NULL, 0, ?)"),
        vals![
            &id,
            &token.node_id,
            token.purpose.as_str(),
            &token.instance_id,
            serde_json::to_string(inventory).map_err(json_err)?,
            now,
            now,
            credential_hash
        ],
    )?;
    agent(w, &id)?.ok_or_else(|| Error::internal("agent vanished"))
}

pub fn agent(r: &mut dyn Reader, id: &str) -> Result<Option<AgentRecord>> {
    let rows = r.query(&format!("SELECT {AGENT_COLS} FROM agents WHERE id = ?"), vals![id])?;
    rows.first().map(agent_from_row).transpose()
}

/// The live (not revoked) agent a credential belongs to.
pub fn agent_by_credential(r: &mut dyn Reader, hash: &str) -> Result<Option<AgentRecord>> {
    let rows = r.query(
        &format!(
            "SELECT {AGENT_COLS} FROM agents WHERE credential_hash = ? AND revoked_at IS NULL"
        ),
        vals![hash],
    )?;
    rows.first().map(agent_from_row).transpose()
}

/// The node's live agent registered for `purpose` and `instance_id`.
pub fn live_agent(
    r: &mut dyn Reader,
    node_id: &str,
    purpose: ImagePurpose,
    instance_id: &str,
) -> Result<Option<AgentRecord>> {
    let rows = r.query(
        &format!("SELECT {AGENT_COLS} FROM agents WHERE node_id = ? AND purpose = ? AND instance_id = ? AND revoked_at IS NULL ORDER BY created_at DESC LIMIT 1"),
        vals![node_id, purpose.as_str(), instance_id],
    )?;
    rows.first().map(agent_from_row).transpose()
}

/// The name (hex) of the node's pinned TPM endorsement key, if any.
pub fn node_tpm_identity(r: &mut dyn Reader, node_id: &str) -> Result<Option<String>> {
    Ok(node_tpm_record(r, node_id)?.map(|t| t.ek_name))
}

/// Notes that the agent's TPM proof was refused: whether this is the
/// first time (to audit it once).
pub fn note_tpm_refused(w: &mut dyn Writer, agent_id: &str) -> Result<bool> {
    let n = w.execute(
        "UPDATE agents SET tpm_refused_at = ? WHERE id = ? AND tpm_refused_at = 0",
        vals![now_micros(), agent_id],
    )?;
    Ok(n == 1)
}

/// Records the node's TPM identity from the provider's records.
pub fn record_tpm_identity(w: &mut dyn Writer, node_id: &str, ek_name: &str) -> Result<()> {
    w.execute(
        "UPDATE nodes SET tpm_ek_name = ?, tpm_ek_recorded_by = ?, tpm_ek_certified_by = NULL \
         WHERE id = ?",
        vals![ek_name, TpmIdentitySource::Provider.as_str(), node_id],
    )?;
    Ok(())
}

/// A node's TPM identity on record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmIdentityRecord {
    /// Its endorsement key's name (hex).
    pub ek_name: String,
    /// Who recorded it (`None`: before this was kept).
    pub recorded_by: Option<TpmIdentitySource>,
    /// The TPM maker's CA that certified it (`Certificate` only).
    pub certified_by: Option<String>,
}

/// The node's TPM identity and who recorded it, if one is on record.
pub fn node_tpm_record(r: &mut dyn Reader, node_id: &str) -> Result<Option<TpmIdentityRecord>> {
    let rows = r.query(
        "SELECT tpm_ek_name, tpm_ek_recorded_by, tpm_ek_certified_by FROM nodes \
         WHERE id = ? AND tpm_ek_name IS NOT NULL",
        vals![node_id],
    )?;
    rows.first()
        .map(|row| {
            Ok(TpmIdentityRecord {
                ek_name: row.str(0)?,
                recorded_by: row.opt_str(1)?.as_deref().and_then(TpmIdentitySource::parse),
                certified_by: row.opt_str(2)?,
            })
        })
        .transpose()
}

/// Forgets the node's TPM identity (its TPM was replaced): the next
/// sanitizer's proof records the new one.
pub fn forget_tpm_identity(w: &mut dyn Writer, node_id: &str) -> Result<()> {
    w.execute(
        "UPDATE nodes SET tpm_ek_name = NULL, tpm_ek_recorded_by = NULL, \
         tpm_ek_certified_by = NULL WHERE id = ?",
        vals![node_id],
    )?;
    Ok(())
}

/// What a proof of the agent's TPM identity did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proven {
    /// The node's pinned endorsement key.
    Matches,
    /// The node had none; this one is pinned now.
    Pinned,
}

/// Whether a proof records the node's TPM identity where it has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    /// Never (a tenant's image).
    Never,
    /// As the first sanitizer's (trusted on first use).
    FirstSanitizer,
    /// As certified by this TPM maker's CA.
    CertifiedBy(&'a str),
    /// Only with a certificate, and this proof's was not checked (the node
    /// had one on record when it was read): never.
    NeedsCertificate,
}

/// Records that `agent` proved its machine's TPM holds the endorsement
/// key named `ek_name`: the node's pinned key, or, where none is on
/// record, pinned now as `record` says. `Conflict` when the node's key is
/// another, or none is on record and `record` does not record one.
pub fn prove_identity(
    w: &mut dyn Writer,
    agent: &AgentRecord,
    ek_name: &str,
    record: Record<'_>,
) -> Result<Proven> {
    let (source, certified_by) = match record {
        Record::FirstSanitizer => (Some(TpmIdentitySource::FirstSanitizer), None),
        Record::CertifiedBy(ca) => (Some(TpmIdentitySource::Certificate), Some(ca)),
        Record::Never | Record::NeedsCertificate => (None, None),
    };
    let proven = match node_tpm_identity(w, &agent.node_id)? {
        Some(p) if p == ek_name => Proven::Matches,
        Some(_) => {
            return Err(Error::conflict("the TPM's endorsement key is not the node's"));
        }
        None => {
            let Some(source) = source else {
                return Err(Error::conflict(match record {
                    Record::NeedsCertificate => {
                        "the node's TPM identity was forgotten since this proof began: prove it \
                         again, with the TPM's endorsement key certificate"
                    }
                    Record::Never | Record::FirstSanitizer | Record::CertifiedBy(_) => {
                        "the node has no TPM identity on record: a sanitizer records it first"
                    }
                }));
            };
            let n = w.execute(
                "UPDATE nodes SET tpm_ek_name = ?, tpm_ek_recorded_by = ?, \
                 tpm_ek_certified_by = ? WHERE id = ? AND tpm_ek_name IS NULL",
                vals![ek_name, source.as_str(), certified_by, &agent.node_id],
            )?;
            match n {
                1 => Proven::Pinned,
                // Another proof recorded one since the read (PostgreSQL's
                // concurrent writers): this one must be that one.
                _ if node_tpm_identity(w, &agent.node_id)?.as_deref() == Some(ek_name) => {
                    Proven::Matches
                }
                _ => return Err(Error::conflict("the TPM's endorsement key is not the node's")),
            }
        }
    };
    w.execute("UPDATE agents SET tpm_ek_name = ? WHERE id = ?", vals![ek_name, &agent.id])?;
    Ok(proven)
}

/// Records a heartbeat: the health line and each GPU's status.
pub fn heartbeat(w: &mut dyn Writer, id: &str, health: &str, gpus: &[GpuStatus]) -> Result<()> {
    w.execute(
        "UPDATE agents SET health = ?, gpu_status = ?, last_seen_at = ? WHERE id = ?",
        vals![health, serde_json::to_string(gpus).map_err(json_err)?, now_micros(), id],
    )?;
    Ok(())
}

/// Each GPU's status at the agent's last recorded heartbeat (kept out of
/// [`AgentRecord`]: every authenticated call reads that).
pub fn gpu_status(r: &mut dyn Reader, id: &str) -> Result<Vec<GpuStatus>> {
    let rows = r.query("SELECT gpu_status FROM agents WHERE id = ?", vals![id])?;
    match rows.first() {
        Some(row) => serde_json::from_str(&row.str(0)?).map_err(json_err),
        None => Ok(Vec::new()),
    }
}

/// Nodes in service (not in maintenance, failed or being enrolled) whose
/// live agent reports its health other than `ok`.
pub fn unhealthy_nodes(r: &mut dyn Reader) -> Result<i64> {
    let rows = r.query(
        "SELECT COUNT(DISTINCT a.node_id) FROM agents a JOIN nodes n ON n.id = a.node_id \
         WHERE a.revoked_at IS NULL AND a.health <> 'ok' \
         AND n.lifecycle_state NOT IN ('maintenance', 'failed', 'enrolling', 'inspecting')",
        &[],
    )?;
    rows.first().map(|r| r.i64(0)).transpose().map(|n| n.unwrap_or(0))
}

/// Active nodes whose live tenant agent was last seen before `before` (µs),
/// but for nodes the tenant powered off itself.
pub fn silent_on_active_nodes(r: &mut dyn Reader, before: i64) -> Result<i64> {
    let rows = r.query(
        "SELECT COUNT(*) FROM agents a JOIN nodes n ON n.id = a.node_id \
         WHERE n.lifecycle_state = 'active' AND a.purpose = ? AND a.revoked_at IS NULL \
         AND a.last_seen_at < ? AND NOT EXISTS (SELECT 1 FROM instances i \
         WHERE i.id = a.instance_id AND i.powered_off_at > 0)",
        vals![ImagePurpose::Tenant.as_str(), before],
    )?;
    rows.first().map(|r| r.i64(0)).transpose().map(|n| n.unwrap_or(0))
}

/// Revokes every live credential of the node's agents; returns how many.
pub fn revoke_node_agents(w: &mut dyn Writer, node_id: &str) -> Result<u64> {
    Ok(w.execute(
        "UPDATE agents SET revoked_at = ? WHERE node_id = ? AND revoked_at IS NULL",
        vals![now_micros(), node_id],
    )?)
}

/// Queues the steps for an agent (once: a second call changes nothing).
pub fn queue_steps(w: &mut dyn Writer, agent: &AgentRecord, kinds: &[AgentStepKind]) -> Result<()> {
    let now = now_micros();
    for (seq, k) in kinds.iter().enumerate() {
        // A kind already queued for the agent (a retried step) is kept.
        w.execute(
            "INSERT INTO agent_steps (id, agent_id, node_id, kind, seq, state, result, created_at, finished_at) VALUES (?, ?, ?, ?, ?, 'pending', NULL, ?, NULL) ON CONFLICT (agent_id, kind) DO NOTHING",
            vals![new_id(), &agent.id, &agent.node_id, k.as_str(), seq as i64, now],
        )?;
    }
    Ok(())
}

/// Whether any step was ever queued for the agent.
pub fn steps_queued(r: &mut dyn Reader, agent_id: &str) -> Result<bool> {
    Ok(!r
        .query("SELECT 1 FROM agent_steps WHERE agent_id = ? LIMIT 1", vals![agent_id])?
        .is_empty())
}

/// Steps waiting for the agent, in order; `clear_uefi_variables` and
/// `reset_nic_settings` with their node's baselines. A node with no NIC
/// baseline sanitized after a tenant gets an empty one (every adapter set
/// to its defaults): only a sanitization before any tenant records one.
pub fn pending_steps(r: &mut dyn Reader, agent_id: &str) -> Result<Vec<AgentStep>> {
    r.query(
        "SELECT s.id, s.kind, n.uefi_baseline, n.nic_baseline, a.instance_id FROM agent_steps s \
         JOIN nodes n ON n.id = s.node_id JOIN agents a ON a.id = s.agent_id \
         WHERE s.agent_id = ? AND s.state = 'pending' ORDER BY s.seq",
        vals![agent_id],
    )?
    .iter()
    .map(|row| {
        let k = row.str(1)?;
        let kind = AgentStepKind::parse(&k)
            .ok_or_else(|| Error::internal(format!("bad step kind {k:?}")))?;
        let baseline = |col: usize, what: &str| -> Result<Option<Vec<String>>> {
            row.opt_str(col)?
                .map(|j| serde_json::from_str(&j))
                .transpose()
                .map_err(|e| Error::internal(format!("node {what} baseline: {e}")))
        };
        let (uefi_baseline, nic_baseline) = match kind {
            AgentStepKind::ClearUefiVariables => (baseline(2, "uefi")?, None),
            AgentStepKind::ResetNicSettings => match baseline(3, "nic")? {
                None if row.str(4)? != NO_INSTANCE => (None, Some(Vec::new())),
                b => (None, b),
            },
            AgentStepKind::WipeDisks
            | AgentStepKind::ResetGpus
            | AgentStepKind::ReportFirmware
            | AgentStepKind::ClearTpm => (None, None),
        };
        Ok(AgentStep { id: row.str(0)?, kind, uefi_baseline, nic_baseline })
    })
    .collect()
}

/// Records a step's result. Returns false for a step that is not this
/// agent's or is already done (a retried report changes nothing).
pub fn complete_step(
    w: &mut dyn Writer,
    agent_id: &str,
    step_id: &str,
    result: &AgentStepResult,
) -> Result<bool> {
    Ok(w.execute(
        "UPDATE agent_steps SET state = 'done', result = ?, finished_at = ? WHERE id = ? AND agent_id = ? AND state = 'pending'",
        vals![serde_json::to_string(result).map_err(json_err)?, now_micros(), step_id, agent_id],
    )? == 1)
}

/// How many of the agent's steps still wait for their result.
pub fn steps_left(r: &mut dyn Reader, agent_id: &str) -> Result<i64> {
    let rows = r.query(
        "SELECT COUNT(*) FROM agent_steps WHERE agent_id = ? AND state = 'pending'",
        vals![agent_id],
    )?;
    Ok(rows.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0))
}

pub fn step_exists(r: &mut dyn Reader, agent_id: &str, step_id: &str) -> Result<bool> {
    let rows = r.query(
        "SELECT COUNT(*) FROM agent_steps WHERE id = ? AND agent_id = ?",
        vals![step_id, agent_id],
    )?;
    Ok(rows.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0) > 0)
}

/// Every step of an agent: kind and result (None while pending).
pub fn step_results(
    r: &mut dyn Reader,
    agent_id: &str,
) -> Result<Vec<(AgentStepKind, Option<AgentStepResult>)>> {
    r.query(
        "SELECT kind, result FROM agent_steps WHERE agent_id = ? ORDER BY seq",
        vals![agent_id],
    )?
    .iter()
    .map(|row| {
        let k = row.str(0)?;
        let kind = AgentStepKind::parse(&k)
            .ok_or_else(|| Error::internal(format!("bad step kind {k:?}")))?;
        let result = row
            .opt_str(1)?
            .map(|s| serde_json::from_str::<AgentStepResult>(&s).map_err(json_err))
            .transpose()?;
        Ok((kind, result))
    })
    .collect()
}

/// The instance (and tenant) key of a node's first sanitization, before
/// it joined the pool: its boot token, its sanitizer's agent and its
/// record belong to no instance and no tenant (no id is empty).
pub const NO_INSTANCE: &str = "";

/// The instance key of a sanitizer's boot token, agent and record: the
/// released instance's, or [`NO_INSTANCE`] for a node's first
/// sanitization.
pub fn sanitizer_key(instance: Option<&str>) -> &str {
    instance.unwrap_or(NO_INSTANCE)
}

/// Whether the node ever completed a sanitization (a complete record).
pub fn ever_sanitized(r: &mut dyn Reader, node_id: &str) -> Result<bool> {
    Ok(!r
        .query(
            "SELECT 1 FROM sanitization_records WHERE node_id = ? AND complete = ? LIMIT 1",
            vals![node_id, true],
        )?
        .is_empty())
}

/// A signed sanitization record as stored.
pub struct NewRecord<'a> {
    pub id: &'a str,
    pub node_id: &'a str,
    pub tenant_id: &'a str,
    pub instance_id: &'a str,
    pub complete: bool,
    pub body: &'a str,
    pub signature: &'a str,
    pub public_key: &'a str,
}

pub fn insert_record(w: &mut dyn Writer, r: &NewRecord<'_>) -> Result<()> {
    w.execute(
        "INSERT INTO sanitization_records (id, node_id, tenant_id, instance_id, complete, body, signature, public_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vals![r.id, r.node_id, r.tenant_id, r.instance_id, r.complete, r.body, r.signature, r.public_key, now_micros()],
    )?;
    Ok(())
}

/// (id, body JSON, signature, public key), newest first.
pub type StoredRecord = (String, String, String, String);

fn records(rows: Vec<Row>) -> Result<Vec<StoredRecord>> {
    rows.iter().map(|r| Ok((r.str(0)?, r.str(1)?, r.str(2)?, r.str(3)?))).collect()
}

pub fn records_for_node(r: &mut dyn Reader, node_id: &str) -> Result<Vec<StoredRecord>> {
    records(r.query(
        "SELECT id, body, signature, public_key FROM sanitization_records WHERE node_id = ? ORDER BY created_at DESC, id",
        vals![node_id],
    )?)
}

pub fn records_for_instance(
    r: &mut dyn Reader,
    tenant_id: &str,
    instance_id: &str,
) -> Result<Vec<StoredRecord>> {
    records(r.query(
        "SELECT id, body, signature, public_key FROM sanitization_records WHERE tenant_id = ? AND instance_id = ? ORDER BY created_at DESC, id",
        vals![tenant_id, instance_id],
    )?)
}

/// The node's most recently registered agent (live or revoked).
pub fn latest_agent(r: &mut dyn Reader, node_id: &str) -> Result<Option<AgentRecord>> {
    let rows = r.query(
        &format!("SELECT {AGENT_COLS} FROM agents WHERE node_id = ? ORDER BY created_at DESC, id LIMIT 1"),
        vals![node_id],
    )?;
    rows.first().map(agent_from_row).transpose()
}
