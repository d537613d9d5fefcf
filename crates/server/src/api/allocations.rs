//! `/v1/tenants/{tenant}/projects/{project}/allocations`: placed capacity
//! held by a project. Creating one plans it with the placement engine,
//! commits its quota claim and its (node, GPU, slice) units in one
//! transaction; the engine learns of it only after the commit.

use super::{schema, Call, Handler, Method, Op, Reply, Resp, Scope};
use crate::placement::Effect;
use neocloud_authz::{Action, Resource};
use neocloud_common::{Error, NameOrId, Result};
use neocloud_placement::{NoFit, Placement, Request, Shape};
use neocloud_store::{allocations, instance_types, quotas, Reader, Writer};
use neocloud_types::{parse_amounts, Allocation, AllocationCreate, InstanceKind, List};
use std::collections::BTreeMap;

/// Largest gang, and most VM or MIG instances in one request.
pub const MAX_NODES: u32 = 1024;
pub const MAX_INSTANCES: u32 = 256;

pub(super) fn ops() -> Vec<Op> {
    let base = "/v1/tenants/{tenant}/projects/{project}/allocations";
    let item = "/v1/tenants/{tenant}/projects/{project}/allocations/{allocation}";
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
    vec![
        op(
            "allocation_list",
            Method::Get,
            base,
            "Allocations of a project",
            Action::List,
            None,
            Resp::Json(200, schema::<List<Allocation>>),
            Handler::Read(list),
        ),
        op(
            "allocation_create",
            Method::Post,
            base,
            "Place and hold instances of a type (a bare-metal count > 1 is an all-or-nothing gang)",
            Action::Create,
            Some(schema::<AllocationCreate>),
            Resp::Json(201, schema::<Allocation>),
            Handler::Write(create),
        ),
        op(
            "allocation_get",
            Method::Get,
            item,
            "One allocation",
            Action::Read,
            None,
            Resp::Json(200, schema::<Allocation>),
            Handler::Read(get),
        ),
        op(
            "allocation_release",
            Method::Delete,
            item,
            "Release an allocation: its units and quota return to the pool",
            Action::Delete,
            None,
            Resp::Json(200, schema::<Allocation>),
            Handler::Write(release),
        ),
    ]
}

fn ids<'a>(c: &'a Call<'_>) -> Result<(&'a str, &'a str)> {
    Ok((c.tenant()?.id.as_str(), c.project()?.id.as_str()))
}

fn allocation_id(c: &Call<'_>) -> Result<String> {
    match c.key("allocation")? {
        NameOrId::Id(id) => Ok(id),
        NameOrId::Name(n) => {
            Err(Error::invalid_request("allocation", format!("{n} is not an allocation id")))
        }
    }
}

fn list(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let (t, p) = ids(c)?;
    Reply::ok(&List { items: allocations::list(r, t, p)? })
}

fn get(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let (t, p) = ids(c)?;
    Reply::ok(&allocations::get(r, t, p, &allocation_id(c)?)?)
}

/// A request that cannot be placed is a conflict with the fleet's state:
/// the message says which constraint and what is free.
fn no_fit(e: NoFit) -> Error {
    Error::conflict(format!("cannot place ({}): {}", e.constraint, e.message))
}

fn create(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: AllocationCreate = c.body()?;
    let (tenant, project) = ids(c)?;
    let key = NameOrId::parse("instance_type", &p.instance_type).map_err(|e| match e {
        Error::InvalidRequest { message, .. } => Error::invalid_value("instance_type", message),
        other => other,
    })?;
    let it = instance_types::lookup(w, &key)?.ok_or_else(|| {
        Error::invalid_value("instance_type", format!("no instance type {}", p.instance_type))
    })?;
    let max = match it.kind {
        InstanceKind::BareMetal => MAX_NODES,
        InstanceKind::Vm | InstanceKind::Mig => MAX_INSTANCES,
    };
    if p.count == 0 || p.count > max {
        return Err(Error::invalid_value("count", format!("must be between 1 and {max}")));
    }
    let model = it.gpu_model.clone();
    let placements: Vec<Placement> = {
        let mut state = c.placement.current(w)?;
        let engine = &mut state.engine;
        match it.kind {
            InstanceKind::BareMetal => vec![engine
                .plan(&Request {
                    shape: Shape::Nodes { gpu_model: model.clone(), count: p.count },
                    constraints: p.constraints.clone(),
                })
                .map_err(no_fit)?],
            InstanceKind::Vm => engine
                .plan_many(
                    &Request {
                        shape: Shape::Gpus { gpu_model: model.clone(), count: it.gpus },
                        constraints: p.constraints.clone(),
                    },
                    p.count,
                )
                .map_err(no_fit)?,
            InstanceKind::Mig => engine
                .plan_many(
                    &Request {
                        shape: Shape::Mig {
                            gpu_model: model.clone(),
                            profile: it.mig_profile.clone().unwrap_or_default(),
                        },
                        constraints: p.constraints.clone(),
                    },
                    p.count,
                )
                .map_err(no_fit)?,
        }
    };
    let placement =
        Placement { assignments: placements.into_iter().flat_map(|p| p.assignments).collect() };
    // Quota: nodes and GPUs per model, or MIG slices per profile.
    let mut amounts: BTreeMap<String, i64> = BTreeMap::new();
    match it.kind {
        InstanceKind::BareMetal => {
            amounts.insert("nodes".into(), p.count as i64);
            amounts.insert(format!("gpu:{model}"), placement.gpu_count() as i64);
        }
        InstanceKind::Vm => {
            amounts.insert(format!("gpu:{model}"), placement.gpu_count() as i64);
        }
        InstanceKind::Mig => {
            amounts.insert(
                format!("mig:{}", it.mig_profile.clone().unwrap_or_default()),
                p.count as i64,
            );
        }
    }
    let amounts = parse_amounts("instance_type", &amounts, false)?;
    let claim = quotas::create_claim(
        w,
        tenant,
        project,
        &amounts,
        &format!("allocation of {} x {}", p.count, it.name),
    )?;
    quotas::commit_claim(w, tenant, project, &claim.id)?;
    let id = neocloud_common::new_id();
    let a = allocations::create(
        w,
        &allocations::NewAllocation {
            id: &id,
            tenant_id: tenant,
            project_id: project,
            instance_type_id: &it.id,
            count: p.count,
            constraints: &p.constraints,
            placement: &placement,
            claim_id: &claim.id,
            units: &placement.units(&model),
        },
    )?;
    let g = allocations::bump_placement_generation(w)?;
    Ok(Reply::created(&a.id, &a)?
        .with_effect(Effect::Apply {
            id: a.id.clone(),
            placement,
            group: p.constraints.anti_affinity.clone(),
        })
        .with_effect(Effect::Generation(g)))
}

fn release(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let (tenant, project) = ids(c)?;
    let (a, now) = allocations::release(w, tenant, project, &allocation_id(c)?)?;
    if !now {
        return Reply::ok(&a);
    }
    quotas::release_claim(w, tenant, project, &a.claim_id)?;
    let g = allocations::bump_placement_generation(w)?;
    Ok(Reply::ok(&a)?.with_effect(Effect::Release(a.id.clone())).with_effect(Effect::Generation(g)))
}
