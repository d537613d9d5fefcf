//! The provider's firmware baselines, one per system model.

use crate::backend::{DbError, Reader, Row, Writer};
use crate::{check_generation, rfc, vals};
use neocloud_common::{new_id, time::now_micros, Error, NameOrId, Result};
use neocloud_types::{
    FirmwareBaseline, FirmwareBaselineCreate, FirmwareBaselineUpdate, FirmwareReset, ImageTransfer,
};
use std::collections::BTreeMap;

const COLS: &str = "id, name, model, components, description, generation, created_at, updated_at, images, activations, image_transfer, update_order";

fn from_row(r: &Row) -> Result<FirmwareBaseline> {
    let components: BTreeMap<String, String> = serde_json::from_str(&r.str(3)?)
        .map_err(|e| Error::internal(format!("firmware baseline components: {e}")))?;
    let images: BTreeMap<String, String> = serde_json::from_str(&r.str(8)?)
        .map_err(|e| Error::internal(format!("firmware baseline images: {e}")))?;
    let activations: BTreeMap<String, FirmwareReset> = serde_json::from_str(&r.str(9)?)
        .map_err(|e| Error::internal(format!("firmware baseline activations: {e}")))?;
    let transfer = r.str(10)?;
    let transfer = ImageTransfer::parse(&transfer)
        .ok_or_else(|| Error::internal(format!("firmware baseline transfer {transfer:?}")))?;
    let order: Vec<String> = serde_json::from_str(&r.str(11)?)
        .map_err(|e| Error::internal(format!("firmware baseline order: {e}")))?;
    Ok(FirmwareBaseline {
        id: r.str(0)?,
        name: r.str(1)?,
        model: r.str(2)?,
        components,
        images,
        activations,
        transfer,
        order,
        description: r.str(4)?,
        generation: r.i64(5)?,
        created_at: rfc(r.i64(6)?),
        updated_at: rfc(r.i64(7)?),
    })
}

fn json<T: serde::Serialize>(map: &BTreeMap<String, T>) -> Result<String> {
    serde_json::to_string(map).map_err(|e| Error::internal(format!("firmware baseline: {e}")))
}

fn order_json(order: &[String]) -> Result<String> {
    serde_json::to_string(order).map_err(|e| Error::internal(format!("firmware baseline: {e}")))
}

pub fn lookup(r: &mut dyn Reader, key: &NameOrId) -> Result<Option<FirmwareBaseline>> {
    let (col, v) = match key {
        NameOrId::Id(id) => ("id", id.as_str()),
        NameOrId::Name(n) => ("name", n.as_str()),
    };
    r.query(&format!("SELECT {COLS} FROM firmware_baselines WHERE {col} = ?"), vals![v])?
        .first()
        .map(from_row)
        .transpose()
}

pub fn get(r: &mut dyn Reader, id: &str) -> Result<FirmwareBaseline> {
    lookup(r, &NameOrId::Id(id.to_string()))?
        .ok_or_else(|| Error::not_found("firmware baseline", id))
}

pub fn list(r: &mut dyn Reader) -> Result<Vec<FirmwareBaseline>> {
    r.query(&format!("SELECT {COLS} FROM firmware_baselines ORDER BY name"), &[])?
        .iter()
        .map(from_row)
        .collect()
}

/// The baseline for a system model, if the provider has one.
pub fn for_model(r: &mut dyn Reader, model: &str) -> Result<Option<FirmwareBaseline>> {
    r.query(&format!("SELECT {COLS} FROM firmware_baselines WHERE model = ?"), vals![model])?
        .first()
        .map(from_row)
        .transpose()
}

/// Which of the two unique columns a violation hit, as the database's
/// message says (SQLite names the column, PostgreSQL the constraint).
fn taken(e: DbError, p: &FirmwareBaselineCreate) -> Error {
    let on_model = matches!(&e, DbError::Unique(m) if m.contains("model"));
    let (field, value) =
        if on_model { ("model", p.model.clone()) } else { ("name", p.name.to_string()) };
    e.unique_as(Error::AlreadyExists { kind: "firmware baseline", field: field.into(), value })
}

/// Creates a baseline (validated by the caller).
pub fn create(w: &mut dyn Writer, p: &FirmwareBaselineCreate) -> Result<FirmwareBaseline> {
    // Which field is taken, named (a concurrent create that wins the race
    // is told apart by the database's message, which names the column or
    // its constraint).
    if for_model(w, &p.model)?.is_some() {
        return Err(Error::AlreadyExists {
            kind: "firmware baseline",
            field: "model".into(),
            value: p.model.clone(),
        });
    }
    let id = new_id();
    let now = now_micros();
    w.execute(
        &format!(
            "INSERT INTO firmware_baselines ({COLS}) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)"
        ),
        vals![
            &id,
            p.name.as_str(),
            p.model.as_str(),
            json(&p.components)?,
            p.description.as_str(),
            now,
            now,
            json(&p.images)?,
            json(&p.activations)?,
            p.transfer.as_str(),
            order_json(&p.order)?
        ],
    )
    .map_err(|e| taken(e, p))?;
    get(w, &id)
}

/// Replaces the versions and/or the description, at the expected
/// generation.
pub fn update(
    w: &mut dyn Writer,
    id: &str,
    p: &FirmwareBaselineUpdate,
) -> Result<FirmwareBaseline> {
    let components = p.components.as_ref().map(json).transpose()?;
    let images = p.images.as_ref().map(json).transpose()?;
    let activations = p.activations.as_ref().map(json).transpose()?;
    let transfer = p.transfer.map(|t| t.as_str().to_string());
    let order = p.order.as_deref().map(order_json).transpose()?;
    let n = w.execute(
        "UPDATE firmware_baselines SET components = COALESCE(?, components), images = COALESCE(?, images), activations = COALESCE(?, activations), image_transfer = COALESCE(?, image_transfer), update_order = COALESCE(?, update_order), description = COALESCE(?, description), generation = generation + 1, updated_at = ? WHERE id = ? AND generation = ?",
        vals![&components, &images, &activations, &transfer, &order, &p.description, now_micros(), id, p.generation],
    )?;
    check_generation(w, n, "firmware_baselines", "firmware baseline", id, p.generation, None)?;
    get(w, id)
}

pub fn delete(w: &mut dyn Writer, id: &str) -> Result<()> {
    if w.execute("DELETE FROM firmware_baselines WHERE id = ?", vals![id])? == 0 {
        return Err(Error::not_found("firmware baseline", id));
    }
    Ok(())
}
