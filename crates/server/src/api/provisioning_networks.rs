//! The provider's provisioning networks: `/v1/provisioning-networks`, the
//! subnets and ranges nodes' static provisioning addresses are drawn from
//! (`boot_network.network`), with the gateway and name servers their
//! nodes take. Provider only (the node policy's resource). A change of
//! gateway or name servers reaches the network's nodes at once: their
//! ISOs are built again ahead of their next boot.

use super::OpGroup;
use super::{schema, Call, Handler, Method, Op, Reply, Resp};
use neocloud_authz::{Action, Resource};
use neocloud_common::{Error, Result};
use neocloud_store::{provisioning_networks, Reader, Writer};
use neocloud_types::{
    List, ProvisioningNetwork, ProvisioningNetworkCreate, ProvisioningNetworkUpdate,
};

const API: OpGroup = OpGroup::global(Resource::Node, "provisioning-networks");

const ITEM: &str = "/v1/provisioning-networks/{provisioning_network}";

pub(super) fn ops() -> Vec<Op> {
    vec![
        API.op(
            "provisioning_network_list",
            Method::Get,
            "/v1/provisioning-networks",
            "The networks static provisioning addresses are drawn from, with their nodes and free addresses",
            Action::List,
            None,
            Resp::Json(200, schema::<List<ProvisioningNetwork>>),
            Handler::Read(list),
        ),
        API.op(
            "provisioning_network_create",
            Method::Post,
            "/v1/provisioning-networks",
            "Add a provisioning network: a subnet (overlapping no other's), the range drawn, \
             the gateway and name servers its nodes take",
            Action::Create,
            Some(schema::<ProvisioningNetworkCreate>),
            Resp::Json(201, schema::<ProvisioningNetwork>),
            Handler::Write(create),
        ),
        API.op(
            "provisioning_network_get",
            Method::Get,
            ITEM,
            "One provisioning network",
            Action::Read,
            None,
            Resp::Json(200, schema::<ProvisioningNetwork>),
            Handler::Read(get),
        ),
        API.op(
            "provisioning_network_update",
            Method::Patch,
            ITEM,
            "Change a provisioning network's range, gateway or name servers (its nodes take the \
             gateway and name servers at once)",
            Action::Update,
            Some(schema::<ProvisioningNetworkUpdate>),
            Resp::Json(200, schema::<ProvisioningNetwork>),
            Handler::Write(update),
        ),
        API.op(
            "provisioning_network_delete",
            Method::Delete,
            ITEM,
            "Remove a provisioning network no node holds an address of",
            Action::Delete,
            None,
            Resp::Empty,
            Handler::Write(delete),
        ),
    ]
}

fn find(c: &Call<'_>, r: &mut dyn Reader) -> Result<ProvisioningNetwork> {
    let key = c.key("provisioning_network")?;
    provisioning_networks::lookup(r, &key)?
        .ok_or_else(|| Error::not_found("provisioning network", key.to_string()))
}

fn list(_c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    Reply::ok(&List { items: provisioning_networks::list(r)? })
}

fn get(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    Reply::ok(&find(c, r)?)
}

fn create(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: ProvisioningNetworkCreate = c.body()?;
    let n = provisioning_networks::create(w, &p)?;
    Reply::created(&n.id.clone(), &n)
}

fn update(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: ProvisioningNetworkUpdate = c.body()?;
    let n = find(c, w)?;
    let (n, moved) = provisioning_networks::update(w, &n.id, &p)?;
    // Nodes whose gateway or name servers changed boot a new ISO: built
    // ahead, and a node between its boot override and its reset reads its
    // virtual CD again (its record changed since).
    Ok(Reply::ok(&n)?.with_iso_prebuild(!moved.is_empty()))
}

fn delete(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let n = find(c, w)?;
    provisioning_networks::delete(w, &n.id)?;
    Reply::empty()
}
