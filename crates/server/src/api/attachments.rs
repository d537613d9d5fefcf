//! `.../vpcs/{vpc}/networks/{network}/attachments`: instance NICs in a
//! network. An attachment is `configuring` until every switch its port
//! hangs off has applied the fabric generation that added it.

use super::vpcs::{find_network, find_vpc, ids, plan_change, API};
use super::{schema, Call, Handler, Method, Op, Reply, Resp};
use crate::network::{intent, ledger, model};
use neocloud_authz::Action;
use neocloud_common::{Error, NameOrId, Result};
use neocloud_fabric::{TenantChange, TenantObject};
use neocloud_store::attachments::{self, AttachmentRecord};
use neocloud_store::{fabrics, instances, Reader, Writer};
use neocloud_types::{Attachment, AttachmentCreate, AttachmentState, InstanceState, List};

pub(super) fn ops() -> Vec<Op> {
    let base = "/v1/tenants/{tenant}/projects/{project}/vpcs/{vpc}/networks/{network}/attachments";
    let item = "/v1/tenants/{tenant}/projects/{project}/vpcs/{vpc}/networks/{network}/attachments/{attachment}";
    vec![
        API.op("attachment_list", Method::Get, base, "Instance NICs attached to a network",
            Action::List, None, Resp::Json(200, schema::<List<Attachment>>), Handler::Read(list)),
        API.op("attachment_create", Method::Post, base,
            "Attach an instance's NIC: its switch port joins the network and IPAM gives it an address",
            Action::Create, Some(schema::<AttachmentCreate>), Resp::Json(201, schema::<Attachment>),
            Handler::Write(create)),
        API.op("attachment_get", Method::Get, item, "One attachment, with whether the switches carry it",
            Action::Read, None, Resp::Json(200, schema::<Attachment>), Handler::Read(get)),
        API.op("attachment_delete", Method::Delete, item,
            "Detach: the port leaves the network (and its floating IP goes)", Action::Delete, None,
            Resp::Empty, Handler::Write(delete)),
    ]
}

/// The API view of a stored attachment.
pub(super) fn view(
    r: &mut dyn Reader,
    a: &AttachmentRecord,
    fabric_id: &str,
) -> Result<Attachment> {
    let applied = fabrics::node_applied_generation(r, &a.node_id, fabric_id)?.unwrap_or(0);
    let ip = ledger::address(r, fabric_id, &a.id)?;
    Ok(Attachment {
        id: a.id.clone(),
        network_id: a.network_id.clone(),
        instance_id: a.instance_id.clone(),
        nic: a.nic.clone(),
        ip: ip.map(|ip| ip.to_string()).unwrap_or_default(),
        state: if applied >= a.intent_generation {
            AttachmentState::Ready
        } else {
            AttachmentState::Configuring
        },
        generation: a.generation,
        created_at: a.created_at.clone(),
        updated_at: a.updated_at.clone(),
    })
}

fn find(c: &Call<'_>, r: &mut dyn Reader, network_id: &str) -> Result<AttachmentRecord> {
    let key = c.key("attachment")?;
    let id = match &key {
        NameOrId::Id(id) => id.clone(),
        NameOrId::Name(n) => return Err(Error::not_found("attachment", n.to_string())),
    };
    match attachments::attachment(r, &id)? {
        Some(a) if a.network_id == network_id => Ok(a),
        _ => Err(Error::not_found("attachment", id)),
    }
}

fn list(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let v = find_vpc(c, r)?;
    let n = find_network(c, r, &v)?;
    let mut items = Vec::new();
    for a in attachments::attachments_of_network(r, &n.id)? {
        items.push(view(r, &a, &v.fabric_id)?);
    }
    Reply::ok(&List { items })
}

fn get(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let v = find_vpc(c, r)?;
    let n = find_network(c, r, &v)?;
    let a = find(c, r, &n.id)?;
    Reply::ok(&view(r, &a, &v.fabric_id)?)
}

fn create(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: AttachmentCreate = c.body()?;
    let (t, pr) = ids(c)?;
    let v = find_vpc(c, w)?;
    let n = find_network(c, w, &v)?;
    let key = NameOrId::parse("instance", &p.instance)
        .map_err(|_| Error::invalid_value("instance", "not an instance name or id"))?;
    let inst = instances::lookup(w, t, pr, &key)?
        .ok_or_else(|| Error::invalid_value("instance", format!("no instance {:?}", p.instance)))?;
    match inst.state {
        InstanceState::Pending | InstanceState::Provisioning | InstanceState::Ready
            if !inst.release_requested => {}
        InstanceState::Pending
        | InstanceState::Provisioning
        | InstanceState::Ready
        | InstanceState::Releasing
        | InstanceState::Released
        | InstanceState::Failed => {
            return Err(Error::conflict(format!(
                "instance {} is {} and cannot be attached",
                inst.name,
                if inst.release_requested { "being released" } else { inst.state.as_str() }
            )))
        }
    }
    let cabled: Vec<_> = fabrics::links_of_node(w, &inst.node_id)?
        .into_iter()
        .filter(|l| l.fabric_id == v.fabric_id)
        .collect();
    let nic = match &p.nic {
        Some(nic) => {
            cabled.iter().find(|l| &l.nic == nic).map(|l| l.nic.clone()).ok_or_else(|| {
                Error::invalid_value(
                    "nic",
                    format!("the instance has no NIC {nic:?} on this VPC's fabric"),
                )
            })?
        }
        None => cabled.first().map(|l| l.nic.clone()).ok_or_else(|| {
            Error::invalid_value("instance", "the instance's node has no NIC on this VPC's fabric")
        })?,
    };
    if let Some(ip) = &p.ip {
        model::ipv4("ip", ip)?;
    }
    let lock = fabrics::lock_intent(w, &v.fabric_id)?;
    let a = attachments::create_attachment(
        w,
        &attachments::NewAttachment {
            network_id: &n.id,
            vpc_id: &v.id,
            instance_id: &inst.id,
            node_id: &inst.node_id,
            nic: &nic,
            ip: p.ip.as_deref(),
            intent_generation: lock.generation,
        },
    )?;
    let add = TenantChange::Add(TenantObject::Attachment(intent::attachment(&a)?));
    plan_change(c, w, &v.fabric_id, &lock, vec![add])?;
    let view = view(w, &a, &v.fabric_id)?;
    Reply::created(&a.id, &view)
}

fn delete(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let v = find_vpc(c, w)?;
    let n = find_network(c, w, &v)?;
    let a = find(c, w, &n.id)?;
    let lock = fabrics::lock_intent(w, &v.fabric_id)?;
    let changes = intent::detach(w, &a.id)?;
    plan_change(c, w, &v.fabric_id, &lock, changes)?;
    Reply::empty()
}
