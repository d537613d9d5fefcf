//! GPU nodes as placement sees them (provider scope).

use crate::backend::{Reader, Row, Writer};
use crate::{check_generation, rfc, vals};
use neocloud_common::{new_id, time::now_micros, Error, NameOrId, Result};
use neocloud_placement::{Availability, NodeSpec};
use neocloud_types::{Node, NodeCreate};

const COLS: &str = "id, name, site, pod, su, rack, nvlink_domain, gpu_model, gpus, mig_capable, availability, generation, created_at, updated_at, gpu_memory_gb, nics";

pub fn availability_str(a: Availability) -> &'static str {
    match a {
        Availability::Schedulable => "schedulable",
        Availability::Maintenance => "maintenance",
        Availability::Failed => "failed",
    }
}

fn parse_availability(s: &str) -> Result<Availability> {
    match s {
        "schedulable" => Ok(Availability::Schedulable),
        "maintenance" => Ok(Availability::Maintenance),
        "failed" => Ok(Availability::Failed),
        other => Err(Error::internal(format!("bad node availability {other:?}"))),
    }
}

fn from_row(r: &Row) -> Result<Node> {
    Ok(Node {
        id: r.str(0)?,
        name: r.str(1)?,
        site: r.str(2)?,
        pod: r.str(3)?,
        su: r.str(4)?,
        rack: r.str(5)?,
        nvlink_domain: r.str(6)?,
        gpu_model: r.str(7)?,
        gpus: r.i64(8)? as u8,
        mig_capable: r.bool(9)?,
        availability: parse_availability(&r.str(10)?)?,
        generation: r.i64(11)?,
        created_at: rfc(r.i64(12)?),
        updated_at: rfc(r.i64(13)?),
        gpu_memory_gb: r.i64(14)? as u32,
        nics: serde_json::from_str(&r.str(15)?)
            .map_err(|e| Error::internal(format!("node nics: {e}")))?,
    })
}

/// The placement view of a node.
pub fn spec(n: &Node) -> NodeSpec {
    NodeSpec {
        id: n.id.clone(),
        name: n.name.clone(),
        site: n.site.clone(),
        pod: n.pod.clone(),
        su: n.su.clone(),
        rack: n.rack.clone(),
        nvlink_domain: n.nvlink_domain.clone(),
        gpu_model: n.gpu_model.clone(),
        gpus: n.gpus,
        mig_capable: n.mig_capable,
        availability: n.availability,
    }
}

pub fn lookup(r: &mut dyn Reader, key: &NameOrId) -> Result<Option<Node>> {
    let rows = match key {
        NameOrId::Id(id) => {
            r.query(&format!("SELECT {COLS} FROM nodes WHERE id = ?"), vals![id])?
        }
        NameOrId::Name(n) => {
            r.query(&format!("SELECT {COLS} FROM nodes WHERE name = ?"), vals![n.as_str()])?
        }
    };
    rows.first().map(from_row).transpose()
}

pub fn get(r: &mut dyn Reader, id: &str) -> Result<Node> {
    lookup(r, &NameOrId::Id(id.to_string()))?.ok_or_else(|| Error::not_found("node", id))
}

pub fn list(r: &mut dyn Reader) -> Result<Vec<Node>> {
    r.query(&format!("SELECT {COLS} FROM nodes ORDER BY name"), &[])?.iter().map(from_row).collect()
}

pub fn create(w: &mut dyn Writer, p: &NodeCreate) -> Result<Node> {
    if p.gpus == 0 || p.gpus > 16 {
        return Err(Error::invalid_value("gpus", "must be between 1 and 16"));
    }
    let id = new_id();
    let now = now_micros();
    let domain = p.nvlink_domain.as_ref().unwrap_or(&p.name);
    let memory =
        match (p.gpu_memory_gb, neocloud_placement::mig::GpuModel::parse(p.gpu_model.as_str())) {
            (Some(0), _) => return Err(Error::invalid_value("gpu_memory_gb", "must be positive")),
            (Some(m), _) => m,
            (None, Some(model)) => model.memory_gb(),
            (None, None) => {
                return Err(Error::invalid_value(
                    "gpu_memory_gb",
                    format!("required: the memory of a {} GPU is not known here", p.gpu_model),
                ))
            }
        };
    let mut rails = std::collections::BTreeSet::new();
    for (i, n) in p.nics.iter().enumerate() {
        if n.rail > 15 {
            return Err(Error::invalid_value(
                format!("nics[{i}].rail"),
                "must be between 0 and 15",
            ));
        }
        if !rails.insert((n.fabric.clone(), n.rail)) {
            return Err(Error::invalid_value(
                format!("nics[{i}].rail"),
                "two NICs on one rail of one fabric",
            ));
        }
        for (field, v) in
            [("name", &n.name), ("fabric", &n.fabric), ("switch", &n.switch), ("port", &n.port)]
        {
            if v.is_empty() || v.len() > 64 || v.chars().any(|c| c.is_control()) {
                return Err(Error::invalid_value(
                    format!("nics[{i}].{field}"),
                    "must be 1 to 64 printable characters",
                ));
            }
        }
    }
    let nics = serde_json::to_string(&p.nics).map_err(|e| Error::internal(e.to_string()))?;
    w.execute(
        &format!("INSERT INTO nodes ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'schedulable', 1, ?, ?, ?, ?)"),
        vals![
            &id,
            p.name.as_str(),
            p.site.as_str(),
            p.pod.as_str(),
            p.su.as_str(),
            p.rack.as_str(),
            domain.as_str(),
            p.gpu_model.as_str(),
            p.gpus as i64,
            p.mig_capable,
            now,
            now,
            memory as i64,
            nics
        ],
    )
    .map_err(|e| {
        e.unique_as(Error::AlreadyExists { kind: "node", field: "name".into(), value: p.name.to_string() })
    })?;
    get(w, &id)
}

pub fn set_availability(
    w: &mut dyn Writer,
    id: &str,
    generation: i64,
    a: Availability,
) -> Result<Node> {
    let n = w.execute(
        "UPDATE nodes SET availability = ?, generation = generation + 1, updated_at = ? WHERE id = ? AND generation = ?",
        vals![availability_str(a), now_micros(), id, generation],
    )?;
    check_generation(w, n, "nodes", "node", id, generation, None)?;
    get(w, id)
}

/// Deletes a node that holds no allocation.
pub fn delete(w: &mut dyn Writer, id: &str) -> Result<()> {
    let rows = w.query("SELECT COUNT(*) FROM allocation_units WHERE node_id = ?", vals![id])?;
    if rows.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0) > 0 {
        return Err(Error::conflict("node holds allocations: release them first"));
    }
    if w.execute("DELETE FROM nodes WHERE id = ?", vals![id])? == 0 {
        return Err(Error::not_found("node", id));
    }
    Ok(())
}
