//! Attachments: instance NICs in tenant networks. Callers lock the
//! fabric's intent first (`fabrics::lock_intent`), like every change to
//! tenant networks.

use crate::backend::{Reader, Row, Writer};
use crate::{rfc, vals};
use neocloud_common::{new_id, time::now_micros, Error, Result};

/// An attachment as stored; the address the tenant sees is the ledger's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRecord {
    pub id: String,
    pub network_id: String,
    pub vpc_id: String,
    pub instance_id: String,
    pub node_id: String,
    pub nic: String,
    /// The address the tenant asked for, if any.
    pub ip: Option<String>,
    pub intent_generation: i64,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

const ATT_COLS: &str = "a.id, a.network_id, a.vpc_id, a.instance_id, a.node_id, a.nic, a.ip, a.intent_generation, a.generation, a.created_at, a.updated_at";

fn att_row(r: &Row) -> Result<AttachmentRecord> {
    Ok(AttachmentRecord {
        id: r.str(0)?,
        network_id: r.str(1)?,
        vpc_id: r.str(2)?,
        instance_id: r.str(3)?,
        node_id: r.str(4)?,
        nic: r.str(5)?,
        ip: r.opt_str(6)?,
        intent_generation: r.i64(7)?,
        generation: r.i64(8)?,
        created_at: rfc(r.i64(9)?),
        updated_at: rfc(r.i64(10)?),
    })
}

pub struct NewAttachment<'a> {
    pub network_id: &'a str,
    pub vpc_id: &'a str,
    pub instance_id: &'a str,
    pub node_id: &'a str,
    pub nic: &'a str,
    pub ip: Option<&'a str>,
    pub intent_generation: i64,
}

pub fn create_attachment(w: &mut dyn Writer, a: &NewAttachment<'_>) -> Result<AttachmentRecord> {
    let id = new_id();
    let now = now_micros();
    w.execute(
        "INSERT INTO attachments (id, network_id, vpc_id, instance_id, node_id, nic, ip, intent_generation, generation, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
        vals![&id, a.network_id, a.vpc_id, a.instance_id, a.node_id, a.nic, a.ip, a.intent_generation, now, now],
    )
    .map_err(|e| {
        e.unique_as(Error::AlreadyExists {
            kind: "attachment",
            field: "nic".into(),
            value: a.nic.to_string(),
        })
    })?;
    attachment(w, &id)?.ok_or_else(|| Error::internal("attachment vanished"))
}

/// Moves an attachment to another node's NIC (its instance was placed
/// again): the same id, network and address, the new port, recorded at
/// the fabric intent generation `intent_generation`.
pub fn move_attachment(
    w: &mut dyn Writer,
    id: &str,
    node_id: &str,
    nic: &str,
    intent_generation: i64,
) -> Result<AttachmentRecord> {
    w.execute(
        "UPDATE attachments SET node_id = ?, nic = ?, intent_generation = ?, \
         generation = generation + 1, updated_at = ? WHERE id = ?",
        vals![node_id, nic, intent_generation, now_micros(), id],
    )?;
    attachment(w, id)?.ok_or_else(|| Error::internal("attachment vanished"))
}

pub fn attachment(r: &mut dyn Reader, id: &str) -> Result<Option<AttachmentRecord>> {
    let rows =
        r.query(&format!("SELECT {ATT_COLS} FROM attachments a WHERE a.id = ?"), vals![id])?;
    rows.first().map(att_row).transpose()
}

pub fn attachments_of_network(
    r: &mut dyn Reader,
    network_id: &str,
) -> Result<Vec<AttachmentRecord>> {
    r.query(
        &format!("SELECT {ATT_COLS} FROM attachments a WHERE a.network_id = ? ORDER BY a.created_at, a.id"),
        vals![network_id],
    )?
    .iter()
    .map(att_row)
    .collect()
}

pub fn attachments_of_instance(
    r: &mut dyn Reader,
    instance_id: &str,
) -> Result<Vec<AttachmentRecord>> {
    r.query(
        &format!("SELECT {ATT_COLS} FROM attachments a WHERE a.instance_id = ? ORDER BY a.id"),
        vals![instance_id],
    )?
    .iter()
    .map(att_row)
    .collect()
}

pub fn attachments_of_fabric(r: &mut dyn Reader, fabric_id: &str) -> Result<Vec<AttachmentRecord>> {
    r.query(
        &format!("SELECT {ATT_COLS} FROM attachments a JOIN vpcs v ON v.id = a.vpc_id WHERE v.fabric_id = ? ORDER BY a.id"),
        vals![fabric_id],
    )?
    .iter()
    .map(att_row)
    .collect()
}

/// Deletes an attachment and the floating IPs mapped to it; answers their
/// ids.
pub fn delete_attachment(w: &mut dyn Writer, id: &str) -> Result<Vec<String>> {
    let fips = w
        .query("SELECT id FROM floating_ips WHERE attachment_id = ? ORDER BY id", vals![id])?
        .iter()
        .map(|r| r.str(0))
        .collect::<Result<Vec<_>>>()?;
    w.execute("DELETE FROM floating_ips WHERE attachment_id = ?", vals![id])?;
    w.execute("DELETE FROM attachments WHERE id = ?", vals![id])?;
    Ok(fips)
}
