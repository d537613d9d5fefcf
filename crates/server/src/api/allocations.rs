//! `/v1/tenants/{tenant}/projects/{project}/allocations`: placed capacity
//! held by a project. Creating one plans it with the placement engine,
//! commits its quota claim and its (node, GPU, slice) units in one
//! transaction; the engine learns of it only after the commit.

use super::{schema, Call, Handler, Method, Op, Reply, Resp, Scope};
use crate::placement::Effect;
use neocloud_authz::{Action, Resource};
use neocloud_common::{Error, NameOrId, Result};
use neocloud_placement::{Constraints, NoFit, Placement, Request, Shape};
use neocloud_store::{allocations, instance_types, quotas, Reader, Writer};
use neocloud_types::{
    parse_amounts, Allocation, AllocationCreate, AllocationKind, AllocationState, InstanceKind,
    InstanceType, List, QuotaResource, ReservationCreate,
};
use std::collections::BTreeMap;

/// Largest gang, and most VM or MIG instances in one request.
pub const MAX_NODES: u32 = 1024;
pub const MAX_INSTANCES: u32 = 256;

pub(super) fn ops() -> Vec<Op> {
    let op = |id, method, path, summary, action, request, response, handler| Op {
        id,
        method,
        path,
        summary,
        tag: "allocations",
        resource: Resource::Allocation,
        action,
        scope: Scope::Project,
        query: &[],
        request,
        response,
        idempotent: action == Action::Create,
        handler,
    };
    let base = "/v1/tenants/{tenant}/projects/{project}/allocations";
    let item = "/v1/tenants/{tenant}/projects/{project}/allocations/{allocation}";
    let rbase = "/v1/tenants/{tenant}/projects/{project}/reservations";
    let ritem = "/v1/tenants/{tenant}/projects/{project}/reservations/{reservation}";
    vec![
        op("allocation_list", Method::Get, base, "Allocations of a project", Action::List, None,
            Resp::Json(200, schema::<List<Allocation>>), Handler::Read(|c, r| list(c, r, AllocationKind::Allocation))),
        op("allocation_create", Method::Post, base,
            "Place and hold instances of a type (a bare-metal count > 1 is an all-or-nothing gang), from free capacity or from a reservation",
            Action::Create, Some(schema::<AllocationCreate>), Resp::Json(201, schema::<Allocation>),
            Handler::Write(create)),
        op("allocation_get", Method::Get, item, "One allocation", Action::Read, None,
            Resp::Json(200, schema::<Allocation>), Handler::Read(|c, r| get(c, r, AllocationKind::Allocation))),
        op("allocation_release", Method::Delete, item,
            "Release an allocation: its units and quota return to the pool", Action::Delete, None,
            Resp::Json(200, schema::<Allocation>), Handler::Write(|c, w| release(c, w, AllocationKind::Allocation))),
        op("reservation_list", Method::Get, rbase, "Reservations of a project", Action::List, None,
            Resp::Json(200, schema::<List<Allocation>>), Handler::Read(|c, r| list(c, r, AllocationKind::Reservation))),
        op("reservation_create", Method::Post, rbase,
            "Hold capacity (count, shape, topology scope) now, to allocate against later; counts against quota",
            Action::Create, Some(schema::<ReservationCreate>), Resp::Json(201, schema::<Allocation>),
            Handler::Write(create_reservation)),
        op("reservation_get", Method::Get, ritem, "One reservation", Action::Read, None,
            Resp::Json(200, schema::<Allocation>), Handler::Read(|c, r| get(c, r, AllocationKind::Reservation))),
        op("reservation_release", Method::Delete, ritem,
            "Release what remains of a reservation", Action::Delete, None,
            Resp::Json(200, schema::<Allocation>), Handler::Write(|c, w| release(c, w, AllocationKind::Reservation))),
    ]
}

fn ids<'a>(c: &'a Call<'_>) -> Result<(&'a str, &'a str)> {
    Ok((c.tenant()?.id.as_str(), c.project()?.id.as_str()))
}

fn object_id(c: &Call<'_>, kind: AllocationKind) -> Result<String> {
    let param = match kind {
        AllocationKind::Allocation => "allocation",
        AllocationKind::Reservation => "reservation",
    };
    match c.key(param)? {
        NameOrId::Id(id) => Ok(id),
        NameOrId::Name(n) => Err(Error::invalid_request(param, format!("{n} is not an id"))),
    }
}

/// An allocation or reservation of this project, of the route's kind.
fn find(c: &Call<'_>, r: &mut dyn Reader, kind: AllocationKind) -> Result<Allocation> {
    let (t, p) = ids(c)?;
    let id = object_id(c, kind)?;
    match allocations::get(r, t, p, &id) {
        Ok(a) if a.kind == kind => Ok(a),
        Ok(_) => Err(Error::not_found(kind.as_str(), id)),
        Err(e) => Err(e),
    }
}

fn list(c: &Call<'_>, r: &mut dyn Reader, kind: AllocationKind) -> Result<Reply> {
    let (t, p) = ids(c)?;
    Reply::ok(&List { items: allocations::list(r, t, p, kind)? })
}

fn get(c: &Call<'_>, r: &mut dyn Reader, kind: AllocationKind) -> Result<Reply> {
    Reply::ok(&find(c, r, kind)?)
}

/// A request that cannot be placed is a conflict with the fleet's state:
/// the message says which constraint and what is free.
fn no_fit(e: NoFit) -> Error {
    Error::conflict(format!("cannot place ({}): {}", e.constraint, e.message))
}

pub(super) fn instance_type(w: &mut dyn Reader, name: &str) -> Result<InstanceType> {
    let key = NameOrId::parse("instance_type", name).map_err(|e| match e {
        Error::InvalidRequest { message, .. } => Error::invalid_value("instance_type", message),
        other => other,
    })?;
    instance_types::lookup(w, &key)?
        .ok_or_else(|| Error::invalid_value("instance_type", format!("no instance type {name}")))
}

pub(super) fn check_count(it: &InstanceType, count: u32) -> Result<()> {
    let max = match it.kind {
        InstanceKind::BareMetal => MAX_NODES,
        InstanceKind::Vm | InstanceKind::Mig => MAX_INSTANCES,
    };
    if count == 0 || count > max {
        return Err(Error::invalid_value("count", format!("must be between 1 and {max}")));
    }
    Ok(())
}

/// The quota a placement of `count` instances of `it` consumes.
pub(super) fn amounts(
    it: &InstanceType,
    count: u32,
    placement: &Placement,
) -> Result<Vec<(QuotaResource, i64)>> {
    let mut m: BTreeMap<String, i64> = BTreeMap::new();
    match it.kind {
        InstanceKind::BareMetal => {
            m.insert("nodes".into(), count as i64);
            m.insert(format!("gpu:{}", it.gpu_model), placement.gpu_count() as i64);
        }
        InstanceKind::Vm => {
            m.insert(format!("gpu:{}", it.gpu_model), placement.gpu_count() as i64);
        }
        InstanceKind::Mig => {
            m.insert(format!("mig:{}", it.mig_profile.clone().unwrap_or_default()), count as i64);
        }
    }
    parse_amounts("instance_type", &m, false)
}

/// Creates and commits a quota claim in this transaction.
pub(super) fn claim(
    c: &Call<'_>,
    w: &mut dyn Writer,
    amounts: &[(QuotaResource, i64)],
    what: &str,
) -> Result<String> {
    let (t, p) = ids(c)?;
    Ok(quotas::create_committed_claim(w, t, p, amounts, what)?.id)
}

/// Plans `count` instances of `it` on free capacity.
pub(super) fn plan(
    c: &Call<'_>,
    w: &mut dyn Writer,
    it: &InstanceType,
    count: u32,
    cons: &Constraints,
) -> Result<Placement> {
    let (tenant, _) = ids(c)?;
    let cons = &crate::placement::engine_constraints(tenant, cons);
    let mut state = c.placement.current(w)?;
    let engine = &mut state.engine;
    let model = it.gpu_model.clone();
    let placements = match it.kind {
        InstanceKind::BareMetal => vec![engine
            .plan(&Request {
                shape: Shape::Nodes { gpu_model: model, count },
                constraints: cons.clone(),
            })
            .map_err(no_fit)?],
        InstanceKind::Vm => engine
            .plan_many(
                &Request {
                    shape: Shape::Gpus { gpu_model: model, count: it.gpus },
                    constraints: cons.clone(),
                },
                count,
            )
            .map_err(no_fit)?,
        InstanceKind::Mig => engine
            .plan_many(
                &Request {
                    shape: Shape::Mig {
                        gpu_model: model,
                        profile: it.mig_profile.clone().unwrap_or_default(),
                    },
                    constraints: cons.clone(),
                },
                count,
            )
            .map_err(no_fit)?,
    };
    Ok(Placement { assignments: placements.into_iter().flat_map(|p| p.assignments).collect() })
}

/// Places new capacity as an allocation or a reservation.
fn place_new(
    c: &Call<'_>,
    w: &mut dyn Writer,
    it: &InstanceType,
    count: u32,
    cons: &Constraints,
    kind: AllocationKind,
) -> Result<Reply> {
    check_count(it, count)?;
    let (tenant, project) = ids(c)?;
    let placement = plan(c, w, it, count, cons)?;
    let claim_id = claim(
        c,
        w,
        &amounts(it, count, &placement)?,
        &format!("{} of {count} x {}", kind.as_str(), it.name),
    )?;
    let id = neocloud_common::new_id();
    let a = allocations::create(
        w,
        &allocations::NewAllocation {
            id: &id,
            tenant_id: tenant,
            project_id: project,
            instance_type_id: &it.id,
            kind,
            reservation_id: None,
            count,
            constraints: cons,
            placement: &placement,
            claim_id: &claim_id,
            units: &placement.units(&it.gpu_model),
        },
    )?;
    let g = allocations::bump_placement_generation(w)?;
    Ok(Reply::created(&a.id, &a)?
        .with_effect(Effect::Apply {
            id: a.id.clone(),
            placement,
            group: crate::placement::engine_group(tenant, cons),
        })
        .with_effect(Effect::Generation(g)))
}

fn create(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: AllocationCreate = c.body()?;
    let it = instance_type(w, &p.instance_type)?;
    match &p.reservation {
        None => place_new(c, w, &it, p.count, &p.constraints, AllocationKind::Allocation),
        Some(rid) => from_reservation(c, w, &it, p.count, &p.constraints, rid),
    }
}

fn create_reservation(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: ReservationCreate = c.body()?;
    let it = instance_type(w, &p.instance_type)?;
    place_new(c, w, &it, p.count, &p.constraints, AllocationKind::Reservation)
}

/// Moves `count` instances out of a reservation into a new allocation: the
/// units change hands, the quota moves from the reservation's claim to the
/// allocation's (net zero), all in this transaction.
fn from_reservation(
    c: &Call<'_>,
    w: &mut dyn Writer,
    it: &InstanceType,
    count: u32,
    cons: &Constraints,
    rid: &str,
) -> Result<Reply> {
    check_count(it, count)?;
    if cons != &Constraints::default() {
        return Err(Error::invalid_value(
            "constraints",
            "an allocation from a reservation takes the reservation's placement",
        ));
    }
    let (tenant, project) = ids(c)?;
    let res = match allocations::get(w, tenant, project, rid) {
        Ok(r) if r.kind == AllocationKind::Reservation && r.state == AllocationState::Active => r,
        Ok(_) | Err(Error::NotFound { .. }) => {
            return Err(Error::invalid_value(
                "reservation",
                format!("no active reservation {rid} in this project"),
            ))
        }
        Err(e) => return Err(e),
    };
    if res.instance_type_id != it.id {
        return Err(Error::invalid_value(
            "instance_type",
            "must be the reservation's instance type",
        ));
    }
    // One assignment per instance (whole nodes, single-node VMs, MIG slices).
    if res.placement.assignments.len() != res.count as usize {
        return Err(Error::invalid_value(
            "reservation",
            "this reservation's instances span nodes and cannot be split",
        ));
    }
    if count > res.count {
        return Err(Error::invalid_value(
            "count",
            format!("the reservation holds {} instance(s)", res.count),
        ));
    }
    let taken = Placement { assignments: res.placement.assignments[..count as usize].to_vec() };
    let rest = Placement { assignments: res.placement.assignments[count as usize..].to_vec() };
    quotas::release_claim(w, tenant, project, &res.claim_id)?;
    let rest_claim = if rest.assignments.is_empty() {
        res.claim_id.clone()
    } else {
        claim(
            c,
            w,
            &amounts(it, res.count - count, &rest)?,
            &format!("reservation of {} x {}", res.count - count, it.name),
        )?
    };
    allocations::shrink_reservation(
        w,
        &res,
        res.count - count,
        &rest,
        &rest_claim,
        &rest.units(&it.gpu_model),
    )?;
    let claim_id = claim(
        c,
        w,
        &amounts(it, count, &taken)?,
        &format!("allocation of {count} x {} from reservation {rid}", it.name),
    )?;
    let id = neocloud_common::new_id();
    let a = allocations::create(
        w,
        &allocations::NewAllocation {
            id: &id,
            tenant_id: tenant,
            project_id: project,
            instance_type_id: &it.id,
            kind: AllocationKind::Allocation,
            reservation_id: Some(rid),
            count,
            constraints: &res.constraints,
            placement: &taken,
            claim_id: &claim_id,
            units: &taken.units(&it.gpu_model),
        },
    )?;
    let g = allocations::bump_placement_generation(w)?;
    let group = crate::placement::engine_group(tenant, &res.constraints);
    let mut reply = Reply::created(&a.id, &a)?.with_effect(Effect::Release(res.id.clone()));
    if !rest.assignments.is_empty() {
        reply = reply.with_effect(Effect::Apply {
            id: res.id.clone(),
            placement: rest,
            group: group.clone(),
        });
    }
    Ok(reply
        .with_effect(Effect::Apply { id: a.id.clone(), placement: taken, group })
        .with_effect(Effect::Generation(g)))
}

fn release(c: &Call<'_>, w: &mut dyn Writer, kind: AllocationKind) -> Result<Reply> {
    let (tenant, project) = ids(c)?;
    let found = find(c, w, kind)?;
    if let Some(i) = neocloud_store::instances::live_for_allocation(w, &found.id)? {
        return Err(Error::conflict(format!(
            "this allocation holds the node of instance {}: release the instance",
            i
        )));
    }
    let (a, now) = allocations::release(w, tenant, project, &found.id)?;
    if !now {
        return Reply::ok(&a);
    }
    quotas::release_claim(w, tenant, project, &a.claim_id)?;
    let g = allocations::bump_placement_generation(w)?;
    Ok(Reply::ok(&a)?.with_effect(Effect::Release(a.id.clone())).with_effect(Effect::Generation(g)))
}
