//! What may pass: security rules between a VPC's networks
//! (`.../vpcs/{vpc}/rules`) and floating IPs with their allowed ingress
//! (`.../vpcs/{vpc}/floating-ips`).

use super::vpcs::{find_vpc, plan_change, API};
use super::{schema, Call, Handler, Method, Op, Reply, Resp};
use crate::network::{intent, ledger, model};
use neocloud_authz::Action;
use neocloud_common::{Error, NameOrId, Result};
use neocloud_fabric::{TenantChange, TenantKey, TenantObject};
use neocloud_store::{attachments, fabrics, vpcs, Reader, Writer};
use neocloud_types::{FloatingIp, FloatingIpCreate, List, SecurityRule, SecurityRuleCreate, Vpc};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

pub(super) fn ops() -> Vec<Op> {
    let rules = "/v1/tenants/{tenant}/projects/{project}/vpcs/{vpc}/rules";
    let rule = "/v1/tenants/{tenant}/projects/{project}/vpcs/{vpc}/rules/{rule}";
    let fips = "/v1/tenants/{tenant}/projects/{project}/vpcs/{vpc}/floating-ips";
    let fip = "/v1/tenants/{tenant}/projects/{project}/vpcs/{vpc}/floating-ips/{floating_ip}";
    vec![
        API.op("security_rule_list", Method::Get, rules, "Security rules of a VPC", Action::List,
            None, Resp::Json(200, schema::<List<SecurityRule>>), Handler::Read(list_rules)),
        API.op("security_rule_create", Method::Post, rules,
            "Allow traffic from one network of the VPC into another (a network named as `to` then admits only what its rules allow)",
            Action::Create, Some(schema::<SecurityRuleCreate>), Resp::Json(201, schema::<SecurityRule>),
            Handler::Write(create_rule)),
        API.op("security_rule_delete", Method::Delete, rule, "Delete a security rule", Action::Delete,
            None, Resp::Empty, Handler::Write(delete_rule)),
        API.op("floating_ip_list", Method::Get, fips, "Floating IPs of a VPC", Action::List, None,
            Resp::Json(200, schema::<List<FloatingIp>>), Handler::Read(list_fips)),
        API.op("floating_ip_create", Method::Post, fips,
            "Map a public address to an attachment, admitting only the allowed protocols and ports",
            Action::Create, Some(schema::<FloatingIpCreate>), Resp::Json(201, schema::<FloatingIp>),
            Handler::Write(create_fip)),
        API.op("floating_ip_get", Method::Get, fip, "One floating IP", Action::Read, None,
            Resp::Json(200, schema::<FloatingIp>), Handler::Read(get_fip)),
        API.op("floating_ip_delete", Method::Delete, fip, "Release a floating IP", Action::Delete,
            None, Resp::Empty, Handler::Write(delete_fip)),
    ]
}

fn id_param(c: &Call<'_>, name: &str, kind: &'static str) -> Result<String> {
    match c.key(name)? {
        NameOrId::Id(id) => Ok(id),
        NameOrId::Name(n) => Err(Error::not_found(kind, n.to_string())),
    }
}

fn list_rules(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let v = find_vpc(c, r)?;
    Reply::ok(&List { items: vpcs::list_rules(r, &v.id)? })
}

fn network_id(r: &mut dyn Reader, v: &Vpc, field: &str, key: &str) -> Result<String> {
    let k = NameOrId::parse(field, key)
        .map_err(|_| Error::invalid_value(field, format!("{key:?} is not a network")))?;
    vpcs::lookup_network(r, &v.id, &k)?
        .map(|n| n.id)
        .ok_or_else(|| Error::invalid_value(field, format!("no network {key:?} in this VPC")))
}

fn create_rule(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: SecurityRuleCreate = c.body()?;
    let v = find_vpc(c, w)?;
    let from = network_id(w, &v, "from", &p.from)?;
    let to = network_id(w, &v, "to", &p.to)?;
    let lock = fabrics::lock_intent(w, &v.fabric_id)?;
    let rule = vpcs::create_rule(w, &v.id, &from, &to, p.protocol, p.ports)?;
    let add = TenantChange::Add(TenantObject::SecurityRule(intent::rule(&rule)));
    plan_change(c, w, &v.fabric_id, &lock, vec![add])?;
    Reply::created(&rule.id.clone(), &rule)
}

fn delete_rule(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let v = find_vpc(c, w)?;
    let id = id_param(c, "rule", "security_rule")?;
    if vpcs::rule(w, &v.id, &id)?.is_none() {
        return Err(Error::not_found("security_rule", id));
    }
    let lock = fabrics::lock_intent(w, &v.fabric_id)?;
    vpcs::delete_rule(w, &id)?;
    let gone = TenantChange::Remove(TenantKey::SecurityRule(id.clone()));
    plan_change(c, w, &v.fabric_id, &lock, vec![gone])?;
    Reply::empty()
}

fn list_fips(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let v = find_vpc(c, r)?;
    Reply::ok(&List { items: vpcs::list_floating_ips(r, &v.id)? })
}

fn find_fip(c: &Call<'_>, r: &mut dyn Reader, v: &Vpc) -> Result<FloatingIp> {
    let id = id_param(c, "floating_ip", "floating_ip")?;
    vpcs::floating_ip(r, &v.id, &id)?.ok_or_else(|| Error::not_found("floating_ip", id))
}

fn get_fip(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let v = find_vpc(c, r)?;
    Reply::ok(&find_fip(c, r, &v)?)
}

/// The first public address of the fabric nothing holds: no NAT gateway,
/// floating IP, uplink or upstream router. Reads only what holds public
/// addresses (not the fabric's whole intent).
fn free_public_ip(r: &mut dyn Reader, fabric_id: &str) -> Result<Option<Ipv4Addr>> {
    let rec = fabrics::get(r, fabric_id)?;
    let topo = model::topology(&rec.name, &rec.spec)?;
    let mut used: BTreeSet<Ipv4Addr> = ledger::nat_addresses(r, fabric_id)?.into_iter().collect();
    for f in vpcs::floating_ips_of_fabric(r, fabric_id)? {
        used.insert(model::ipv4("public_ip", &f.public_ip)?);
    }
    for s in &topo.switches {
        if let Some(u) = &s.uplink {
            used.insert(u.address.addr());
            used.insert(u.gateway);
        }
    }
    Ok(topo.fabric.pools.public.iter().find_map(|block| {
        let (first, last) = block.host_range();
        (first..=last).map(Ipv4Addr::from).find(|ip| !used.contains(ip))
    }))
}

fn create_fip(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: FloatingIpCreate = c.body()?;
    let v = find_vpc(c, w)?;
    let att = attachments::attachment(w, &p.attachment)?.filter(|a| a.vpc_id == v.id).ok_or_else(
        || {
            Error::invalid_value(
                "attachment",
                format!("no attachment {:?} in this VPC", p.attachment),
            )
        },
    )?;
    let lock = fabrics::lock_intent(w, &v.fabric_id)?;
    let ip = free_public_ip(w, &v.fabric_id)?
        .ok_or_else(|| Error::conflict("the fabric's public address pool is exhausted"))?;
    let f = vpcs::create_floating_ip(w, &v.fabric_id, &v.id, &att.id, &ip.to_string(), &p.allow)?;
    let add = TenantChange::Add(TenantObject::FloatingIp(intent::floating_ip(&f)?));
    plan_change(c, w, &v.fabric_id, &lock, vec![add])?;
    Reply::created(&f.id.clone(), &f)
}

fn delete_fip(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let v = find_vpc(c, w)?;
    let f = find_fip(c, w, &v)?;
    let lock = fabrics::lock_intent(w, &v.fabric_id)?;
    vpcs::delete_floating_ip(w, &f.id)?;
    let gone = TenantChange::Remove(TenantKey::FloatingIp(f.id.clone()));
    plan_change(c, w, &v.fabric_id, &lock, vec![gone])?;
    Reply::empty()
}
