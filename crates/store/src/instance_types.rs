//! Provider-defined instance types.

use crate::backend::{Reader, Row, Writer};
use crate::{check_generation, rfc, vals};
use neocloud_common::{new_id, time::now_micros, Error, NameOrId, Result};
use neocloud_types::{InstanceKind, InstanceType, InstanceTypeUpdate};

const COLS: &str = "id, name, kind, gpu_model, gpus, mig_profile, vcpus, memory_gib, description, generation, created_at, updated_at";

fn from_row(r: &Row) -> Result<InstanceType> {
    let kind = r.str(2)?;
    Ok(InstanceType {
        id: r.str(0)?,
        name: r.str(1)?,
        kind: InstanceKind::parse(&kind)
            .ok_or_else(|| Error::internal(format!("bad kind {kind:?}")))?,
        gpu_model: r.str(3)?,
        gpus: r.i64(4)? as u8,
        mig_profile: r.opt_str(5)?,
        vcpus: r.i64(6)? as u32,
        memory_gib: r.i64(7)? as u32,
        description: r.str(8)?,
        generation: r.i64(9)?,
        created_at: rfc(r.i64(10)?),
        updated_at: rfc(r.i64(11)?),
    })
}

/// A validated new type (the server checks the shape against the MIG table).
pub struct NewInstanceType<'a> {
    pub name: &'a str,
    pub kind: InstanceKind,
    pub gpu_model: &'a str,
    pub gpus: u8,
    pub mig_profile: Option<&'a str>,
    pub vcpus: u32,
    pub memory_gib: u32,
    pub description: &'a str,
}

pub fn lookup(r: &mut dyn Reader, key: &NameOrId) -> Result<Option<InstanceType>> {
    let rows = match key {
        NameOrId::Id(id) => {
            r.query(&format!("SELECT {COLS} FROM instance_types WHERE id = ?"), vals![id])?
        }
        NameOrId::Name(n) => r.query(
            &format!("SELECT {COLS} FROM instance_types WHERE name = ?"),
            vals![n.as_str()],
        )?,
    };
    rows.first().map(from_row).transpose()
}

pub fn get(r: &mut dyn Reader, id: &str) -> Result<InstanceType> {
    lookup(r, &NameOrId::Id(id.to_string()))?.ok_or_else(|| Error::not_found("instance type", id))
}

pub fn list(r: &mut dyn Reader) -> Result<Vec<InstanceType>> {
    r.query(&format!("SELECT {COLS} FROM instance_types ORDER BY name"), &[])?
        .iter()
        .map(from_row)
        .collect()
}

pub fn create(w: &mut dyn Writer, t: &NewInstanceType<'_>) -> Result<InstanceType> {
    let id = new_id();
    let now = now_micros();
    w.execute(
        &format!("INSERT INTO instance_types ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)"),
        vals![
            &id,
            t.name,
            t.kind.as_str(),
            t.gpu_model,
            t.gpus as i64,
            t.mig_profile,
            t.vcpus as i64,
            t.memory_gib as i64,
            t.description,
            now,
            now
        ],
    )
    .map_err(|e| {
        e.unique_as(Error::AlreadyExists {
            kind: "instance type",
            field: "name".into(),
            value: t.name.into(),
        })
    })?;
    get(w, &id)
}

pub fn update(w: &mut dyn Writer, id: &str, p: &InstanceTypeUpdate) -> Result<InstanceType> {
    let n = w.execute(
        "UPDATE instance_types SET description = COALESCE(?, description), generation = generation + 1, updated_at = ? WHERE id = ? AND generation = ?",
        vals![&p.description, now_micros(), id, p.generation],
    )?;
    check_generation(w, n, "instance_types", "instance type", id, p.generation, None)?;
    get(w, id)
}

/// Deletes a type no allocation (active or past) refers to: allocation
/// history keeps naming its type.
pub fn delete(w: &mut dyn Writer, id: &str) -> Result<()> {
    let rows = w.query(
        "SELECT COALESCE(SUM(CASE WHEN state = 'active' THEN 1 ELSE 0 END), 0), COUNT(*) FROM allocations WHERE instance_type_id = ?",
        vals![id],
    )?;
    let (active, all) =
        rows.first().map(|r| Ok::<_, Error>((r.i64(0)?, r.i64(1)?))).transpose()?.unwrap_or((0, 0));
    if active > 0 {
        return Err(Error::conflict(format!(
            "instance type is in use by {active} active allocation(s)"
        )));
    }
    if all > 0 {
        return Err(Error::conflict(format!(
            "instance type is referenced by {all} past allocation(s) and stays in the catalogue"
        )));
    }
    if w.execute("DELETE FROM instance_types WHERE id = ?", vals![id])? == 0 {
        return Err(Error::not_found("instance type", id));
    }
    Ok(())
}
