//! `/v1/tenants/{tenant}/projects/{project}/vpcs`: a tenant's VPCs and
//! their networks. Every change locks the VPC's fabric, changes rows, and
//! brings the fabric's ledger up to date in the same transaction (so a
//! change the fabric cannot carry is refused with nothing written); the
//! fabric controller pushes the result to the switches.

use super::{schema, Call, Handler, Method, Op, Reply, Resp};
use crate::network::{intent, model};
use neocloud_authz::{Action, Resource};
use neocloud_common::{Error, Result};
use neocloud_fabric::Allocations;
use neocloud_store::{fabrics, vpcs, Reader, Writer};
use neocloud_types::{check_text, List, Network, NetworkCreate, Vpc, VpcCreate, VpcUpdate};

#[allow(clippy::too_many_arguments)]
pub(super) fn op(
    id: &'static str,
    method: Method,
    path: &'static str,
    summary: &'static str,
    action: Action,
    request: Option<super::SchemaFn>,
    response: Resp,
    handler: Handler,
) -> Op {
    super::project_op(
        Resource::Vpc,
        "networking",
        id,
        method,
        path,
        summary,
        action,
        request,
        response,
        handler,
    )
}

pub(super) fn ops() -> Vec<Op> {
    let base = "/v1/tenants/{tenant}/projects/{project}/vpcs";
    let item = "/v1/tenants/{tenant}/projects/{project}/vpcs/{vpc}";
    let nets = "/v1/tenants/{tenant}/projects/{project}/vpcs/{vpc}/networks";
    let net = "/v1/tenants/{tenant}/projects/{project}/vpcs/{vpc}/networks/{network}";
    vec![
        op("vpc_list", Method::Get, base, "VPCs of a project", Action::List, None,
            Resp::Json(200, schema::<List<Vpc>>), Handler::Read(list)),
        op("vpc_create", Method::Post, base,
            "Create a VPC: a routing domain of its own on the fabric (address spaces may overlap other VPCs')",
            Action::Create, Some(schema::<VpcCreate>), Resp::Json(201, schema::<Vpc>), Handler::Write(create)),
        op("vpc_get", Method::Get, item, "One VPC", Action::Read, None,
            Resp::Json(200, schema::<Vpc>), Handler::Read(get)),
        op("vpc_update", Method::Patch, item,
            "Turn the VPC's NAT gateway on or off; carries the expected generation",
            Action::Update, Some(schema::<VpcUpdate>), Resp::Json(200, schema::<Vpc>), Handler::Write(update)),
        op("vpc_delete", Method::Delete, item, "Delete a VPC without networks", Action::Delete,
            None, Resp::Empty, Handler::Write(delete)),
        op("network_list", Method::Get, nets, "Networks of a VPC", Action::List, None,
            Resp::Json(200, schema::<List<Network>>), Handler::Read(list_networks)),
        op("network_create", Method::Post, nets,
            "Create a network (an L2 segment with its subnet and anycast gateway) in a VPC",
            Action::Create, Some(schema::<NetworkCreate>), Resp::Json(201, schema::<Network>),
            Handler::Write(create_network)),
        op("network_get", Method::Get, net, "One network", Action::Read, None,
            Resp::Json(200, schema::<Network>), Handler::Read(get_network)),
        op("network_delete", Method::Delete, net,
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

/// The fabric's ledger (addresses and ids it handed out).
pub(super) fn ledger(r: &mut dyn Reader, fabric_id: &str) -> Result<Allocations> {
    let rec = fabrics::get(r, fabric_id)?;
    serde_json::from_str(&rec.ledger)
        .map_err(|e| Error::internal(format!("stored fabric ledger: {e}")))
}

fn vpc_view(mut v: Vpc, ledger: &Allocations) -> Vpc {
    v.nat_public_ip = ledger.nat_addresses.get(&v.id).map(|ip| ip.to_string());
    v
}

fn list(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let (t, p) = ids(c)?;
    let mut items = Vec::new();
    let mut ledgers = std::collections::BTreeMap::new();
    for v in vpcs::list_vpcs(r, t, p)? {
        if !ledgers.contains_key(&v.fabric_id) {
            ledgers.insert(v.fabric_id.clone(), ledger(r, &v.fabric_id)?);
        }
        let l = &ledgers[&v.fabric_id];
        items.push(vpc_view(v, l));
    }
    Reply::ok(&List { items })
}

fn get(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let v = find_vpc(c, r)?;
    let l = ledger(r, &v.fabric_id)?;
    Reply::ok(&vpc_view(v, &l))
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
    fabrics::lock_intent(w, &fabric_id)?;
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
    let l = intent::reallocate(w, &fabric_id, true)?;
    let v = vpc_view(v, &l.ledger);
    Reply::created(&v.id.clone(), &v)
}

fn update(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: VpcUpdate = c.body()?;
    check_text("description", &p.description)?;
    let v = find_vpc(c, w)?;
    fabrics::lock_intent(w, &v.fabric_id)?;
    let v = vpcs::update_vpc(
        w,
        &v.id,
        p.generation,
        p.nat_gateway.unwrap_or(v.nat_gateway),
        p.description.as_deref().unwrap_or(&v.description),
    )?;
    let l = intent::reallocate(w, &v.fabric_id, true)?;
    Reply::ok(&vpc_view(v, &l.ledger))
}

fn delete(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let v = find_vpc(c, w)?;
    fabrics::lock_intent(w, &v.fabric_id)?;
    vpcs::delete_vpc(w, &v.id)?;
    intent::reallocate(w, &v.fabric_id, true)?;
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
    fabrics::lock_intent(w, &v.fabric_id)?;
    let n =
        vpcs::create_network(w, &v.id, p.name.as_str(), &cidr.to_string(), &gateway.to_string())?;
    intent::reallocate(w, &v.fabric_id, true)?;
    Reply::created(&n.id.clone(), &n)
}

fn delete_network(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let v = find_vpc(c, w)?;
    let n = find_network(c, w, &v)?;
    fabrics::lock_intent(w, &v.fabric_id)?;
    vpcs::delete_network(w, &n.id)?;
    intent::reallocate(w, &v.fabric_id, true)?;
    Reply::empty()
}
