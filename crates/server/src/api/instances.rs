//! `/v1/tenants/{tenant}/projects/{project}/instances`: bare-metal
//! instances. Creating them places whole nodes (all or nothing), holds each
//! node with its own allocation and quota claim, and records instances in
//! `pending`; the lifecycle controller provisions them. Releasing records
//! the intent; the controller sanitizes the node and then frees it.

use super::allocations::{amounts, check_count, instance_type, plan};
use super::OpGroup;
use super::{schema, Call, Handler, Method, Op, Reply, Resp};
use crate::placement::Effect;
use neocloud_authz::{Action, Resource};
use neocloud_common::{Error, NameOrId, Result};
use neocloud_placement::Placement;
use neocloud_store::{agents, allocations, images, instances, quotas, Reader, Writer};
use neocloud_types::{
    AllocationKind, Image, ImagePurpose, Instance, InstanceCreate, InstanceKind,
    InstancePowerRequest, InstanceRebuild, InstanceReleaseMany, InstanceState, List, PowerPending,
    SanitizationRecord,
};

/// Most SSH keys per instance, and the largest user-data.
pub const MAX_SSH_KEYS: usize = 32;
pub const MAX_USER_DATA: usize = 64 * 1024;
/// Most instances one release call names.
pub const MAX_RELEASED_AT_ONCE: usize = 1000;

const API: OpGroup = OpGroup::project(Resource::Instance, "instances");

pub(super) fn ops() -> Vec<Op> {
    let base = "/v1/tenants/{tenant}/projects/{project}/instances";
    let item = "/v1/tenants/{tenant}/projects/{project}/instances/{instance}";
    let record = "/v1/tenants/{tenant}/projects/{project}/instances/{instance}/sanitization";
    let power = "/v1/tenants/{tenant}/projects/{project}/instances/{instance}/power";
    let rebuild = "/v1/tenants/{tenant}/projects/{project}/instances/{instance}/rebuild";
    let releases = "/v1/tenants/{tenant}/projects/{project}/instance-releases";
    vec![
        API.op("instance_list", Method::Get, base, "Bare-metal instances of a project, with progress",
            Action::List, None, Resp::Json(200, schema::<List<Instance>>), Handler::Read(list)),
        API.op("instance_create", Method::Post, base,
            "Create bare-metal instances: whole nodes placed together (all or nothing), provisioned with an image",
            Action::Create, Some(schema::<InstanceCreate>), Resp::Json(201, schema::<List<Instance>>),
            Handler::Write(create)),
        API.op("instance_get", Method::Get, item, "One instance, with its progress", Action::Read, None,
            Resp::Json(200, schema::<Instance>), Handler::Read(get)),
        API.op("instance_release", Method::Delete, item,
            "Release an instance: its node is sanitized, then returns to the pool with a signed record",
            Action::Delete, None, Resp::Json(202, schema::<Instance>), Handler::Write(release)),
        API.op("instance_release_many", Method::Post, releases,
            "Release several instances of the project at once (all or none): each node is sanitized, then returns to the pool with a signed record",
            Action::Delete, Some(schema::<InstanceReleaseMany>), Resp::Json(202, schema::<List<Instance>>),
            Handler::Write(release_many)),
        // Actions: a retry with the request's Idempotency-Key answers the
        // first result instead of acting twice.
        Op { idempotent: true, ..API.op("instance_power", Method::Post, power,
            "Power a ready instance's node on or off, or reboot it (recorded; the lifecycle controller does it over the BMC and records the outcome in `power.last`)",
            Action::Update, Some(schema::<InstancePowerRequest>), Resp::Json(202, schema::<Instance>),
            Handler::Write(power_action)) },
        Op { idempotent: true, ..API.op("instance_rebuild", Method::Post, rebuild,
            "Provision a ready instance's node again for its tenant, with another tenant image or its own (the OS is replaced; the node is not sanitized, it stays the tenant's)",
            Action::Update, Some(schema::<InstanceRebuild>), Resp::Json(202, schema::<Instance>),
            Handler::Write(rebuild_action)) },
        API.op("instance_sanitization", Method::Get, record,
            "The signed sanitization records of a released instance's node",
            Action::Read, None, Resp::Json(200, schema::<List<SanitizationRecord>>),
            Handler::Read(sanitization)),
    ]
}

fn ids<'a>(c: &'a Call<'_>) -> Result<(&'a str, &'a str)> {
    Ok((c.tenant()?.id.as_str(), c.project()?.id.as_str()))
}

fn find(c: &Call<'_>, r: &mut dyn Reader) -> Result<Instance> {
    let (t, p) = ids(c)?;
    let key = c.key("instance")?;
    instances::lookup(r, t, p, &key)?.ok_or_else(|| Error::not_found("instance", key.to_string()))
}

fn list(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let (t, p) = ids(c)?;
    Reply::ok(&List { items: instances::list(r, t, p)? })
}

fn get(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    Reply::ok(&find(c, r)?)
}

fn check_ssh_keys(keys: &[String]) -> Result<()> {
    if keys.len() > MAX_SSH_KEYS {
        return Err(Error::invalid_value("ssh_keys", format!("at most {MAX_SSH_KEYS} keys")));
    }
    const TYPES: [&str; 4] = ["ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-"];
    for (i, k) in keys.iter().enumerate() {
        let field = format!("ssh_keys[{i}]");
        if k.len() > 8192 || k.chars().any(|c| c.is_control()) {
            return Err(Error::invalid_value(field, "one line of at most 8192 characters"));
        }
        let mut parts = k.split_whitespace();
        let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
            return Err(Error::invalid_value(
                field,
                "an OpenSSH public key: `<type> <base64> [comment]`",
            ));
        };
        if !TYPES.iter().any(|t| kind.starts_with(t))
            || !blob.chars().all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
        {
            return Err(Error::invalid_value(
                field,
                "an OpenSSH public key: `<type> <base64> [comment]`",
            ));
        }
    }
    Ok(())
}

fn check_user_data(u: Option<&str>) -> Result<()> {
    match u {
        Some(u) if u.len() > MAX_USER_DATA => {
            Err(Error::invalid_value("user_data", format!("at most {MAX_USER_DATA} bytes")))
        }
        Some(_) | None => Ok(()),
    }
}

/// The tenant image named, with a sanitizer in the catalog to hand nodes
/// back.
fn catalog(w: &mut dyn Writer, name: &str) -> Result<Image> {
    let key = NameOrId::parse("image", name)
        .map_err(|_| Error::invalid_value("image", format!("no image {name}")))?;
    let image = images::lookup(w, &key)?
        .filter(|i| i.purpose == ImagePurpose::Tenant)
        .ok_or_else(|| Error::invalid_value("image", format!("no tenant image {name}")))?;
    if images::sanitizer(w)?.is_none() {
        return Err(Error::conflict(
            "the provider has not registered a sanitizer image: nodes could not be handed back safely, so none are handed out",
        ));
    }
    Ok(image)
}

fn create(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: InstanceCreate = c.body()?;
    let (tenant, project) = ids(c)?;
    check_ssh_keys(&p.ssh_keys)?;
    check_user_data(p.user_data.as_deref())?;
    let it = instance_type(w, &p.instance_type)?;
    match it.kind {
        InstanceKind::BareMetal => {}
        InstanceKind::Vm | InstanceKind::Mig => {
            return Err(Error::invalid_value(
                "instance_type",
                format!("{} is a {} type: instances are bare metal (use allocations for VM and MIG capacity)", it.name, it.kind.as_str()),
            ))
        }
    }
    check_count(&it, p.count)?;
    let names: Vec<String> = if p.count == 1 {
        vec![p.name.to_string()]
    } else {
        (0..p.count).map(|i| format!("{}-{i}", p.name)).collect()
    };
    if names.iter().any(|n| n.len() > 63) {
        return Err(Error::invalid_value("name", "too long for the numbered names of this count"));
    }
    let image = catalog(w, &p.image)?;
    for n in &names {
        neocloud_common::Name::parse(n).map_err(|e| Error::invalid_value("name", e))?;
    }
    if let Some(n) = instances::live_names(w, tenant, project, &names)?.into_iter().next() {
        return Err(Error::AlreadyExists { kind: "instance", field: "name".into(), value: n });
    }
    let placement = plan(c, w, &it, p.count, &p.constraints)?;
    let group = crate::placement::engine_group(tenant, &p.constraints);
    // One placement, quota claim and allocation per instance (each is
    // released on its own), written a statement per table for the call.
    let ones: Vec<Placement> =
        placement.assignments.iter().map(|a| Placement { assignments: vec![a.clone()] }).collect();
    let claims = names
        .iter()
        .zip(&ones)
        .map(|(name, one)| Ok((amounts(&it, 1, one)?, format!("instance {name} ({})", it.name))))
        .collect::<Result<Vec<_>>>()?;
    let claim_ids = quotas::create_committed_claims(w, tenant, project, &claims)?;
    let alloc_ids: Vec<String> = ones.iter().map(|_| neocloud_common::new_id()).collect();
    let units: Vec<_> = ones.iter().map(|one| one.units(&it.gpu_model)).collect();
    let allocs: Vec<allocations::NewAllocation<'_>> = ones
        .iter()
        .enumerate()
        .map(|(i, one)| allocations::NewAllocation {
            id: &alloc_ids[i],
            tenant_id: tenant,
            project_id: project,
            instance_type_id: &it.id,
            kind: AllocationKind::Allocation,
            reservation_id: None,
            count: 1,
            constraints: &p.constraints,
            placement: one,
            claim_id: &claim_ids[i],
            units: &units[i],
        })
        .collect();
    allocations::create_many(w, &allocs)?;
    let inst_ids: Vec<String> = ones.iter().map(|_| neocloud_common::new_id()).collect();
    let new: Vec<instances::NewInstance<'_>> = ones
        .iter()
        .enumerate()
        .map(|(i, one)| instances::NewInstance {
            id: &inst_ids[i],
            name: &names[i],
            tenant_id: tenant,
            project_id: project,
            instance_type_id: &it.id,
            image_id: &image.id,
            allocation_id: &alloc_ids[i],
            node_id: &one.assignments[0].node_id,
            ssh_keys: &p.ssh_keys,
            user_data: p.user_data.as_deref(),
        })
        .collect();
    let reply_items = instances::create_many(w, &new)?;
    let effects: Vec<Effect> = alloc_ids
        .iter()
        .zip(&ones)
        .map(|(id, one)| Effect::Apply {
            id: id.clone(),
            placement: one.clone(),
            group: group.clone(),
        })
        .collect();
    let g = allocations::bump_placement_generation(w)?;
    // Checked again now that the placement row is locked (last, as every
    // placement write takes it): image deletion takes it first, so on
    // PostgreSQL's concurrent writers one of the two sees the other's
    // commit and no instance outlives its image or the last sanitizer.
    catalog(w, &p.image)?;
    let first = reply_items.first().map(|i| i.id.clone()).unwrap_or_default();
    let nodes: Vec<String> = reply_items.iter().map(|i| i.node_id.clone()).collect();
    let mut reply = Reply::created(&first, &List { items: reply_items })?;
    for n in &nodes {
        reply = reply.with_nudge(n);
    }
    for e in effects {
        reply = reply.with_effect(e);
    }
    Ok(reply.with_effect(Effect::Generation(g)))
}

/// Records the intent; the controller does the rest. Releasing a released
/// instance changes nothing.
fn release(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let i = find(c, w)?;
    if i.state != InstanceState::Released {
        instances::request_release(w, &i.id)?;
    }
    accepted(w, &i)
}

/// Records the release of every instance named, or of none: each must be
/// the project's (404 naming it otherwise) and named once. Those released
/// already change nothing. 202 with the instances as recorded, in the
/// order named.
fn release_many(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let req: InstanceReleaseMany = c.body()?;
    if req.instances.is_empty() || req.instances.len() > MAX_RELEASED_AT_ONCE {
        return Err(Error::invalid_value(
            "instances",
            format!("1 to {MAX_RELEASED_AT_ONCE} instance names or ids"),
        ));
    }
    let (t, p) = ids(c)?;
    let mut named = std::collections::HashSet::with_capacity(req.instances.len());
    let mut found = Vec::with_capacity(req.instances.len());
    for (k, key) in req.instances.iter().enumerate() {
        let field = format!("instances[{k}]");
        let key = NameOrId::parse(&field, key)?;
        let i = instances::lookup(w, t, p, &key)?
            .ok_or_else(|| Error::not_found("instance", key.to_string()))?;
        if !named.insert(i.id.clone()) {
            return Err(Error::invalid_value(field, "names an instance named before it"));
        }
        found.push(i);
    }
    let nodes: Vec<String> = found.iter().map(|i| i.node_id.clone()).collect();
    let mut items = Vec::with_capacity(found.len());
    for i in found {
        // A released one is answered as read; the others as recorded.
        if i.state == InstanceState::Released {
            items.push(i);
        } else {
            instances::request_release(w, &i.id)?;
            items.push(instances::by_id(w, &i.id)?);
        }
    }
    let mut r = Reply::ok(&List { items })?;
    r.status = 202;
    for n in &nodes {
        r = r.with_nudge(n);
    }
    Ok(r)
}

/// 202 with the instance as recorded, its node nudged: the lifecycle
/// controller acts on what was asked.
fn accepted(w: &mut dyn Writer, i: &Instance) -> Result<Reply> {
    let mut r = Reply::ok(&instances::by_id(w, &i.id)?)?;
    r.status = 202;
    Ok(r.with_nudge(&i.node_id))
}

pub(super) fn records(rows: Vec<agents::StoredRecord>) -> Result<Vec<SanitizationRecord>> {
    rows.into_iter()
        .map(|(id, signed_json, signature, public_key)| {
            Ok(SanitizationRecord {
                id,
                body: serde_json::from_str(&signed_json)
                    .map_err(|e| Error::internal(format!("sanitization record: {e}")))?,
                signed_json,
                signature,
                public_key,
            })
        })
        .collect()
}

/// Records a power action for the lifecycle controller, which does it over
/// the node's BMC. Only a ready instance's node, and one action at a time:
/// a request not yet sent to the BMC is replaced by the next; one sent is
/// finished first (409).
fn power_action(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let req: InstancePowerRequest = c.body()?;
    let i = find(c, w)?;
    ready(&i, "power actions")?;
    if i.rebuild_image_id.is_some() {
        return Err(Error::conflict(format!(
            "instance {} is to be rebuilt: ask again once it is ready",
            i.name
        )));
    }
    let mut power = i.power.clone().unwrap_or_default();
    if let Some(p) = power.pending.as_ref().filter(|p| p.sent_at.is_some()) {
        return Err(Error::conflict(format!(
            "a power action ({}) is being done on instance {}: ask again once `power.last` shows it",
            p.action.as_str(),
            i.name
        )));
    }
    power.pending = Some(PowerPending {
        action: req.action,
        force: req.force,
        requested_at: neocloud_common::time::to_rfc3339(neocloud_common::time::now_micros()),
        sent_at: None,
    });
    if !instances::request_power(w, &i.id, i.power.as_ref(), &power)? {
        return Err(Error::conflict(format!(
            "instance {}'s power actions changed meanwhile: ask again",
            i.name
        )));
    }
    accepted(w, &i)
}

/// Refuses what is only for a ready instance (`what`) on any other.
fn ready(i: &Instance, what: &str) -> Result<()> {
    if i.state == InstanceState::Ready && !i.release_requested {
        return Ok(());
    }
    let state = if i.release_requested { "released" } else { i.state.as_str() };
    Err(Error::conflict(format!("instance {} is {state}: {what} are for ready instances", i.name)))
}

/// Records a rebuild for the lifecycle controller, which takes the node
/// back to provisioning with the image (checked here: a tenant image of
/// the catalog). Asked again before it starts, the last image counts.
fn rebuild_action(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let req: InstanceRebuild = c.body()?;
    if let Some(keys) = &req.ssh_keys {
        check_ssh_keys(keys)?;
    }
    check_user_data(req.user_data.as_deref())?;
    let i = find(c, w)?;
    ready(&i, "rebuilds")?;
    let image_id = match &req.image {
        Some(name) => catalog(w, name)?.id,
        None => i.image_id.clone(),
    };
    instances::request_rebuild(
        w,
        &i.id,
        &image_id,
        req.ssh_keys.as_deref(),
        req.user_data.as_deref(),
    )?;
    accepted(w, &i)
}

fn sanitization(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let i = find(c, r)?;
    Reply::ok(&List { items: records(agents::records_for_instance(r, &i.tenant_id, &i.id)?)? })
}
