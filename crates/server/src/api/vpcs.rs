//! `/v1/tenants/{tenant}/projects/{project}/vpcs`: a tenant's VPCs and
//! their networks. Every change locks the VPC's fabric, changes rows, and
//! hands the same change to the fabric's kept planner, which validates it,
//! brings the fabric's ledger up to date and re-plans what it reaches, in
//! the same transaction (so a change the fabric cannot carry is refused
//! with nothing written); the fabric controller pushes the result to the
//! switches.

use super::OpGroup;
use super::{schema, Call, Handler, Method, Op, Reply, Resp};
use crate::network::{intent, ledger, model};
use neocloud_authz::{Action, Resource};
use neocloud_common::{Error, Result};
use neocloud_fabric::{TenantChange, TenantKey, TenantObject};
use neocloud_store::fabrics::IntentLock;
use neocloud_store::{fabrics, vpcs, Reader, Writer};
use neocloud_types::{check_text, List, Network, NetworkCreate, Vpc, VpcCreate, VpcUpdate};

pub(super) const API: OpGroup = OpGroup::project(Resource::Vpc, "networking");

pub(super) fn ops() -> Vec<Op> {
    let base = "/v1/tenants/{tenant}/projects/{project}/vpcs";
    let item = "/v1/tenants/{tenant}/projects/{project}/vpcs/{vpc}";
    let nets = "/v1/tenants/{tenant}/projects/{project}/vpcs/{vpc}/networks";
    let net = "/v1/tenants/{tenant}/projects/{project}/vpcs/{vpc}/networks/{network}";
    vec![
        API.op("vpc_list", Method::Get, base, "VPCs of a project", Action::List, None,
            Resp::Json(200, schema::<List<Vpc>>), Handler::Read(list)),
        API.op("vpc_create", Method::Post, base,
            "Create a VPC: a routing domain of its own on the fabric (address spaces may overlap other VPCs')",
            Action::Create, Some(schema::<VpcCreate>), Resp::Json(201, schema::<Vpc>), Handler::Write(create)),
        API.op("vpc_get", Method::Get, item, "One VPC", Action::Read, None,
            Resp::Json(200, schema::<Vpc>), Handler::Read(get)),
        API.op("vpc_update", Method::Patch, item,
            "Turn the VPC's NAT gateway on or off; carries the expected generation",
            Action::Update, Some(schema::<VpcUpdate>), Resp::Json(200, schema::<Vpc>), Handler::Write(update)),
        API.op("vpc_delete", Method::Delete, item, "Delete a VPC without networks", Action::Delete,
            None, Resp::Empty, Handler::Write(delete)),
        API.op("network_list", Method::Get, nets, "Networks of a VPC", Action::List, None,
            Resp::Json(200, schema::<List<Network>>), Handler::Read(list_networks)),
        API.op("network_create", Method::Post, nets,
            "Create a network (an L2 segment with its subnet and anycast gateway) in a VPC",
            Action::Create, Some(schema::<NetworkCreate>), Resp::Json(201, schema::<Network>),
            Handler::Write(create_network)),
        API.op("network_get", Method::Get, net, "One network", Action::Read, None,
            Resp::Json(200, schema::<Network>), Handler::Read(get_network)),
        API.op("network_delete", Method::Delete, net,
            "Delete a network no instance is attached to and no rule names", Action::Delete, None,
            Resp::Empty, Handler::Write(delete_network)),
    ]
}

pub(super) fn ids<'a>(c: &'a Call<'_>) -> Result<(&'a str, &'a str)> {
    Ok((c.tenant()?.id.as_str(), c.project()?.id.as_str()))
}

/// The path's VPC, within the path's project.
pub(super) fn find_vpc(c: &Call<'_>, r: &mut dyn Reader) -> Result<Vpc> {
    let (t, p) = ids(c)?;
    let key = c.key("vpc")?;
    vpcs::lookup_vpc(r, t, p, &key)?.ok_or_else(|| Error::not_found("vpc", key.to_string()))
}

/// The path's network, within the path's VPC.
pub(super) fn find_network(c: &Call<'_>, r: &mut dyn Reader, vpc: &Vpc) -> Result<Network> {
    let key = c.key("network")?;
    vpcs::lookup_network(r, &vpc.id, &key)?
        .ok_or_else(|| Error::not_found("network", key.to_string()))
}

/// Hands the tenant changes this transaction wrote to the fabric's kept
/// planner (see `network::planners`).
pub(super) fn plan_change(
    c: &Call<'_>,
    w: &mut dyn Writer,
    fabric_id: &str,
    lock: &IntentLock,
    changes: Vec<TenantChange>,
) -> Result<()> {
    c.planners.change(w, fabric_id, lock, changes, true)
}

/// A VPC with its NAT gateway's address (from the fabric's ledger).
fn vpc_view(r: &mut dyn Reader, mut v: Vpc) -> Result<Vpc> {
    v.nat_public_ip = ledger::nat_address(r, &v.fabric_id, &v.id)?.map(|ip| ip.to_string());
    Ok(v)
}

fn list(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let (t, p) = ids(c)?;
    let mut items = Vec::new();
    for v in vpcs::list_vpcs(r, t, p)? {
        items.push(vpc_view(r, v)?);
    }
    Reply::ok(&List { items })
}

fn get(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let v = find_vpc(c, r)?;
    Reply::ok(&vpc_view(r, v)?)
}

/// The VPC's objects as the fabric core has them: the VPC, and its NAT
/// gateway (`None`: it has none).
fn vpc_changes(v: &Vpc, put: bool) -> Vec<TenantChange> {
    let (vpc, nat) = intent::vpc(v);
    let wrap = |o: TenantObject| if put { TenantChange::Put(o) } else { TenantChange::Add(o) };
    let mut out = vec![wrap(TenantObject::Vpc(vpc))];
    match nat {
        Some(n) => out.push(wrap(TenantObject::NatGateway(n))),
        None if put => out.push(TenantChange::Remove(TenantKey::NatGateway(v.id.clone()))),
        None => {}
    }
    out
}

/// The fabric a new VPC goes on: the named one, or the only Ethernet one.
fn pick_fabric(r: &mut dyn Reader, key: Option<&str>) -> Result<String> {
    if let Some(k) = key {
        let key = neocloud_common::NameOrId::parse("fabric", k)
            .map_err(|_| Error::invalid_value("fabric", format!("{k:?} is not a fabric")))?;
        let f = fabrics::lookup(r, &key)?
            .ok_or_else(|| Error::invalid_value("fabric", format!("no fabric {k:?}")))?;
        if f.kind != "ethernet" {
            return Err(Error::invalid_value("fabric", "VPCs live on Ethernet fabrics"));
        }
        return Ok(f.id);
    }
    let eth: Vec<_> = fabrics::list(r)?.into_iter().filter(|f| f.kind == "ethernet").collect();
    match eth.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(Error::invalid_value("fabric", "the provider runs no Ethernet fabric yet")),
        _ => Err(Error::invalid_value("fabric", "several fabrics: name one")),
    }
}

fn create(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: VpcCreate = c.body()?;
    check_text("description", &Some(p.description.clone()))?;
    let (t, pr) = ids(c)?;
    let fabric_id = pick_fabric(w, p.fabric.as_deref())?;
    let lock = fabrics::lock_intent(w, &fabric_id)?;
    let v = vpcs::create_vpc(
        w,
        &vpcs::NewVpc {
            tenant_id: t,
            project_id: pr,
            fabric_id: &fabric_id,
            name: p.name.as_str(),
            nat_gateway: p.nat_gateway,
            description: &p.description,
        },
    )?;
    plan_change(c, w, &fabric_id, &lock, vpc_changes(&v, false))?;
    let v = vpc_view(w, v)?;
    Reply::created(&v.id.clone(), &v)
}

fn update(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: VpcUpdate = c.body()?;
    check_text("description", &p.description)?;
    let v = find_vpc(c, w)?;
    let lock = fabrics::lock_intent(w, &v.fabric_id)?;
    let v = vpcs::update_vpc(
        w,
        &v.id,
        p.generation,
        p.nat_gateway.unwrap_or(v.nat_gateway),
        p.description.as_deref().unwrap_or(&v.description),
    )?;
    plan_change(c, w, &v.fabric_id, &lock, vpc_changes(&v, true))?;
    Reply::ok(&vpc_view(w, v)?)
}

fn delete(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let v = find_vpc(c, w)?;
    let lock = fabrics::lock_intent(w, &v.fabric_id)?;
    vpcs::delete_vpc(w, &v.id)?;
    // Nothing but the VPC and its NAT gateway is left of it.
    let gone = TenantChange::ReplaceVpc { vpc: v.id.clone(), objects: Default::default() };
    plan_change(c, w, &v.fabric_id, &lock, vec![gone])?;
    Reply::empty()
}

fn list_networks(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let v = find_vpc(c, r)?;
    Reply::ok(&List { items: vpcs::list_networks(r, &v.id)? })
}

fn get_network(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let v = find_vpc(c, r)?;
    Reply::ok(&find_network(c, r, &v)?)
}

fn create_network(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: NetworkCreate = c.body()?;
    let v = find_vpc(c, w)?;
    let cidr = model::ipv4_net("cidr", &p.cidr)?;
    let gateway = match &p.gateway {
        Some(g) => model::ipv4("gateway", g)?,
        None => neocloud_fabric::Network {
            id: String::new(),
            vpc: String::new(),
            name: String::new(),
            cidr,
            gateway: None,
        }
        .gateway_ip(),
    };
    let lock = fabrics::lock_intent(w, &v.fabric_id)?;
    let n =
        vpcs::create_network(w, &v.id, p.name.as_str(), &cidr.to_string(), &gateway.to_string())?;
    let add = TenantChange::Add(TenantObject::Network(intent::network(&n)?));
    plan_change(c, w, &v.fabric_id, &lock, vec![add])?;
    Reply::created(&n.id.clone(), &n)
}

fn delete_network(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let v = find_vpc(c, w)?;
    let n = find_network(c, w, &v)?;
    let lock = fabrics::lock_intent(w, &v.fabric_id)?;
    vpcs::delete_network(w, &n.id)?;
    let gone = TenantChange::Remove(TenantKey::Network(n.id.clone()));
    plan_change(c, w, &v.fabric_id, &lock, vec![gone])?;
    Reply::empty()
}
