//! Allocations of placed capacity to a tenant's project, with the
//! (node, GPU, memory slice) units they hold ([`crate::allocation_holds`]:
//! a double allocation fails in the database, whichever replica placed it).

use crate::backend::{Reader, Row, Writer};
use crate::{allocation_holds, rfc, vals};
use neocloud_common::{time::now_micros, Error, Result};
use neocloud_placement::{Constraints, Placement};
use neocloud_types::{Allocation, AllocationKind, AllocationState};

const COLS: &str = "id, tenant_id, project_id, instance_type_id, count, constraints, placement, claim_id, state, generation, created_at, updated_at, kind, reservation_id";

fn json_err(e: serde_json::Error) -> Error {
    Error::internal(format!("allocation json: {e}"))
}

fn from_row(r: &Row) -> Result<Allocation> {
    let state = match r.str(8)?.as_str() {
        "active" => AllocationState::Active,
        "released" => AllocationState::Released,
        other => return Err(Error::internal(format!("bad allocation state {other:?}"))),
    };
    Ok(Allocation {
        id: r.str(0)?,
        tenant_id: r.str(1)?,
        project_id: r.str(2)?,
        instance_type_id: r.str(3)?,
        count: r.i64(4)? as u32,
        constraints: serde_json::from_str::<Constraints>(&r.str(5)?).map_err(json_err)?,
        placement: serde_json::from_str::<Placement>(&r.str(6)?).map_err(json_err)?,
        claim_id: r.str(7)?,
        state,
        generation: r.i64(9)?,
        created_at: rfc(r.i64(10)?),
        updated_at: rfc(r.i64(11)?),
        kind: match r.str(12)?.as_str() {
            "allocation" => AllocationKind::Allocation,
            "reservation" => AllocationKind::Reservation,
            other => return Err(Error::internal(format!("bad allocation kind {other:?}"))),
        },
        reservation_id: r.opt_str(13)?,
    })
}

pub struct NewAllocation<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub project_id: &'a str,
    pub instance_type_id: &'a str,
    pub kind: AllocationKind,
    pub reservation_id: Option<&'a str>,
    pub count: u32,
    pub constraints: &'a Constraints,
    pub placement: &'a Placement,
    pub claim_id: &'a str,
    /// (node id, GPU, memory slice) held.
    pub units: &'a [(String, u8, u8)],
}

/// Inserts the allocation and its units. A unit already held elsewhere is
/// `Conflict`: the caller's view of free capacity was stale.
pub fn create(w: &mut dyn Writer, a: &NewAllocation<'_>) -> Result<Allocation> {
    create_many(w, std::slice::from_ref(a))?;
    get(w, a.tenant_id, a.project_id, a.id)
}

/// Inserts allocations and their units, a multi-row `INSERT` per table. A
/// unit already held elsewhere is a conflict (nothing is written: the
/// caller's transaction rolls back).
pub fn create_many(w: &mut dyn Writer, new: &[NewAllocation<'_>]) -> Result<()> {
    let now = now_micros();
    let mut rows = Vec::with_capacity(new.len());
    for a in new {
        rows.push(vec![
            a.id.into(),
            a.tenant_id.into(),
            a.project_id.into(),
            a.instance_type_id.into(),
            (a.count as i64).into(),
            serde_json::to_string(a.constraints).map_err(json_err)?.into(),
            serde_json::to_string(a.placement).map_err(json_err)?.into(),
            a.claim_id.into(),
            "active".into(),
            1.into(),
            now.into(),
            now.into(),
            a.kind.as_str().into(),
            a.reservation_id.into(),
        ]);
    }
    crate::insert_rows(w, &format!("INSERT INTO allocations ({COLS})"), &rows)?;
    let holds: Vec<(&str, &[allocation_holds::Unit])> =
        new.iter().map(|a| (a.id, a.units)).collect();
    allocation_holds::take(w, &holds)
}

/// Shrinks a reservation to what remains after allocating from it: its
/// units are replaced, its count, placement and claim updated (or it is
/// marked released when nothing remains). Checks the generation.
pub fn shrink_reservation(
    w: &mut dyn Writer,
    r: &Allocation,
    count: u32,
    placement: &Placement,
    claim_id: &str,
    units: &[(String, u8, u8)],
) -> Result<()> {
    let n = w.execute(
        "UPDATE allocations SET count = ?, placement = ?, claim_id = ?, state = ?, generation = generation + 1, updated_at = ? \
         WHERE id = ? AND generation = ? AND state = 'active' AND kind = 'reservation'",
        vals![
            count as i64,
            serde_json::to_string(placement).map_err(json_err)?,
            claim_id,
            if count == 0 { "released" } else { "active" },
            now_micros(),
            &r.id,
            r.generation
        ],
    )?;
    if n != 1 {
        return Err(Error::conflict("the reservation changed concurrently; retry"));
    }
    allocation_holds::free(w, &r.id)?;
    allocation_holds::take(w, &[(&r.id, units)])
}

pub fn get(r: &mut dyn Reader, tenant_id: &str, project_id: &str, id: &str) -> Result<Allocation> {
    let rows = r.query(
        &format!(
            "SELECT {COLS} FROM allocations WHERE id = ? AND tenant_id = ? AND project_id = ?"
        ),
        vals![id, tenant_id, project_id],
    )?;
    rows.first().map(from_row).transpose()?.ok_or_else(|| Error::not_found("allocation", id))
}

pub fn list(
    r: &mut dyn Reader,
    tenant_id: &str,
    project_id: &str,
    kind: AllocationKind,
) -> Result<Vec<Allocation>> {
    r.query(
        &format!("SELECT {COLS} FROM allocations WHERE tenant_id = ? AND project_id = ? AND kind = ? ORDER BY created_at, id"),
        vals![tenant_id, project_id, kind.as_str()],
    )?
    .iter()
    .map(from_row)
    .collect()
}

/// Every active allocation, to load the placement engine.
pub fn list_active(r: &mut dyn Reader) -> Result<Vec<Allocation>> {
    r.query(
        &format!("SELECT {COLS} FROM allocations WHERE state = 'active' ORDER BY created_at, id"),
        &[],
    )?
    .iter()
    .map(from_row)
    .collect()
}

/// What placement needs of an active allocation (an engine rebuild):
/// the id, the tenant, its anti-affinity group and its placement.
pub struct ActivePlacement {
    pub id: String,
    pub tenant_id: String,
    pub anti_affinity: Option<String>,
    pub placement: Placement,
}

/// Every active allocation (and reservation) as placement sees it, read
/// narrowly: an engine rebuild reads every one.
pub fn list_active_placements(r: &mut dyn Reader) -> Result<Vec<ActivePlacement>> {
    r.query(
        "SELECT id, tenant_id, constraints, placement FROM allocations WHERE state = 'active' ORDER BY created_at, id",
        &[],
    )?
        .iter()
        .map(|row| {
            let c: Constraints = serde_json::from_str(&row.str(2)?).map_err(json_err)?;
            Ok(ActivePlacement {
                id: row.str(0)?,
                tenant_id: row.str(1)?,
                anti_affinity: c.anti_affinity,
                placement: serde_json::from_str(&row.str(3)?).map_err(json_err)?,
            })
        })
        .collect()
}

/// Marks an active allocation released and frees its units; releasing a
/// released one changes nothing. Returns it and whether this call released it.
pub fn release(
    w: &mut dyn Writer,
    tenant_id: &str,
    project_id: &str,
    id: &str,
) -> Result<(Allocation, bool)> {
    let n = w.execute(
        "UPDATE allocations SET state = 'released', generation = generation + 1, updated_at = ? \
         WHERE id = ? AND tenant_id = ? AND project_id = ? AND state = 'active'",
        vals![now_micros(), id, tenant_id, project_id],
    )?;
    if n == 1 {
        allocation_holds::free(w, id)?;
    }
    Ok((get(w, tenant_id, project_id, id)?, n == 1))
}

/// The generation of placement state (nodes and allocations).
pub fn placement_generation(r: &mut dyn Reader) -> Result<i64> {
    let rows = r.query("SELECT generation FROM placement_state WHERE id = 1", &[])?;
    rows.first()
        .map(|r| r.i64(0))
        .transpose()?
        .ok_or_else(|| Error::internal("placement_state row missing"))
}

/// Takes the placement row's lock without moving the generation, for a
/// write that must see what placement writes committed (image deletion:
/// instance creation checks the catalog again after it bumps the
/// generation). On PostgreSQL the later one waits, then reads what the
/// earlier one committed; SQLite serializes writers anyway. Take it last
/// among row locks in a placement write, as the generation bump is.
pub fn lock_placement(w: &mut dyn Writer) -> Result<()> {
    w.execute("UPDATE placement_state SET generation = generation WHERE id = 1", &[])?;
    Ok(())
}

/// Bumps the placement generation in this transaction; returns the new one.
/// The row lock also orders placement writes across replicas.
pub fn bump_placement_generation(w: &mut dyn Writer) -> Result<i64> {
    w.execute("UPDATE placement_state SET generation = generation + 1 WHERE id = 1", &[])?;
    placement_generation(w)
}
