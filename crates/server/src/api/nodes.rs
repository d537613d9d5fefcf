//! Provider inventory: `/v1/nodes` and the capacity view `/v1/capacity`.

use super::OpGroup;
use super::{schema, Call, Handler, Method, Op, QueryKind, QueryParam, Reply, Resp, Scope};
use crate::placement::Effect;
use neocloud_authz::{Action, Resource};
use neocloud_common::{Error, Result};
use neocloud_placement::capacity::Capacity;
use neocloud_store::{allocations, images, nodes, provisioning_networks, Reader, Writer};
use neocloud_types::{
    AgentReport, BmcCredentials, BootMethod, BootNetwork, List, Node, NodeCreate, NodeHardware,
    NodeInspect, NodeUpdate, SanitizationRecord,
};

const API: OpGroup = OpGroup::global(Resource::Node, "inventory");

const GPU_MODEL: QueryParam =
    QueryParam { name: "gpu_model", kind: QueryKind::String, description: "Only this GPU model." };

pub(super) fn ops() -> Vec<Op> {
    vec![
        API.op("node_list", Method::Get, "/v1/nodes", "GPU nodes", Action::List, None,
            Resp::Json(200, schema::<List<Node>>), Handler::Read(list)),
        API.op("node_create", Method::Post, "/v1/nodes", "Register a node's placement inventory",
            Action::Create, Some(schema::<NodeCreate>), Resp::Json(201, schema::<Node>), Handler::Write(create)),
        API.op("node_get", Method::Get, "/v1/nodes/{node}", "One node", Action::Read, None,
            Resp::Json(200, schema::<Node>), Handler::Read(get)),
        API.op("node_update", Method::Patch, "/v1/nodes/{node}",
            "Take a node in or out of scheduling (maintenance, failed); carries the expected generation",
            Action::Update, Some(schema::<NodeUpdate>), Resp::Json(200, schema::<Node>), Handler::Write(update)),
        API.op("node_inspect", Method::Post, "/v1/nodes/{node}/inspect",
            "Inspect the node again through its BMC (optionally with new credentials); the lifecycle controller acts on it",
            Action::Update, Some(schema::<NodeInspect>), Resp::Json(202, schema::<Node>), Handler::Write(inspect)),
        API.op("node_delete", Method::Delete, "/v1/nodes/{node}", "Remove a node that holds no allocation",
            Action::Delete, None, Resp::Empty, Handler::Write(delete)),
        API.op("node_hardware", Method::Get, "/v1/nodes/{node}/hardware",
            "What is known of the node's hardware: the BMC's inventory at the last inspection (CPUs, memory, NICs and MACs, GPUs, firmware) and its latest agent's report (GPUs through NVML, disks, health)",
            Action::Read, None, Resp::Json(200, schema::<NodeHardware>), Handler::Read(hardware)),
        API.op("node_sanitizations", Method::Get, "/v1/nodes/{node}/sanitizations",
            "The node's signed sanitization records, newest first", Action::Read, None,
            Resp::Json(200, schema::<List<SanitizationRecord>>), Handler::Read(sanitizations)),
        Op {
            id: "capacity_get",
            method: Method::Get,
            path: "/v1/capacity",
            summary: "Free and used capacity per GPU model, SU and rack, with fragmentation",
            tag: "inventory",
            resource: Resource::Capacity,
            action: Action::Read,
            scope: Scope::Global,
            query: &[GPU_MODEL],
            request: None,
            response: Resp::Json(200, schema::<Capacity>),
            idempotent: false,
            handler: Handler::Read(capacity),
        },
    ]
}

fn find(c: &Call<'_>, r: &mut dyn Reader) -> Result<Node> {
    let key = c.key("node")?;
    nodes::lookup(r, &key)?.ok_or_else(|| Error::not_found("node", key.to_string()))
}

fn list(_c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    Reply::ok(&List { items: nodes::list(r)? })
}

fn hardware(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let n = find(c, r)?;
    let agent = match neocloud_store::agents::latest_agent(r, &n.id)? {
        Some(a) => Some(AgentReport {
            gpu_status: neocloud_store::agents::gpu_status(r, &a.id)?,
            agent_id: a.id,
            purpose: a.purpose,
            registered_at: neocloud_common::time::to_rfc3339(a.created_at),
            last_seen_at: neocloud_common::time::to_rfc3339(a.last_seen_at),
            health: a.health,
            revoked: a.revoked_at.is_some(),
            inventory: a.inventory,
            tpm_identity: a.tpm_ek_name,
        }),
        None => None,
    };
    let tpm = neocloud_store::agents::node_tpm_record(r, &n.id)?;
    Reply::ok(&NodeHardware {
        bmc: nodes::bmc_inventory(r, &n.id)?,
        agent,
        tpm_identity_recorded_by: tpm.as_ref().and_then(|t| t.recorded_by),
        tpm_identity_certified_by: tpm.as_ref().and_then(|t| t.certified_by.clone()),
        tpm_identity: tpm.map(|t| t.ek_name),
        firmware_updates: nodes::firmware_updates(r, &n.id)?.unwrap_or_default(),
    })
}

fn sanitizations(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let n = find(c, r)?;
    let rows = neocloud_store::agents::records_for_node(r, &n.id)?;
    Reply::ok(&List { items: super::instances::records(rows)? })
}

fn get(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    Reply::ok(&find(c, r)?)
}

fn create(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let mut p: NodeCreate = c.body()?;
    if let Some(bn) = &p.boot_network {
        p.boot_network = Some(draw_boot_address(w, bn, None)?);
    }
    if p.boot_method.is_some() || p.boot_network.is_some() {
        check_boot_method(c, p.boot_method.unwrap_or_default(), p.boot_network.is_some())?;
    }
    // Its first sanitization needs the sanitizer: refused now rather than
    // failed after its inspection.
    if p.bmc.is_some() && c.sanitize_before_first_use && images::sanitizer(w)?.is_none() {
        return Err(Error::conflict(
            "no sanitizer image in the catalog: a new node is sanitized before it joins the \
             pool (sanitize_before_first_use); add an image with purpose `sanitizer` first",
        ));
    }
    let tpm_identity = p.tpm_identity.as_deref().map(tpm_identity).transpose()?;
    let sealed = p.bmc.as_ref().map(|b| seal_bmc(c, b)).transpose()?;
    let n = nodes::create(w, &p, sealed.as_deref())?;
    if let Some(ek) = &tpm_identity {
        neocloud_store::agents::record_tpm_identity(w, &n.id, ek)?;
    }
    let g = allocations::bump_placement_generation(w)?;
    Ok(Reply::created(&n.id.clone(), &n)?
        .with_nudge(&n.id)
        .with_iso_prebuild(n.boot_network.is_some())
        .with_effect(Effect::AddNode(nodes::spec(&n)))
        .with_effect(Effect::Generation(g)))
}

/// A TPM endorsement key's name as given: SHA-256 names (`000b` and 32
/// octets), hex, lowercased.
fn tpm_identity(given: &str) -> Result<String> {
    let name = given.trim().to_ascii_lowercase();
    let hex = name.len() == 68 && name.chars().all(|c| c.is_ascii_hexdigit());
    if !hex || !name.starts_with("000b") {
        return Err(Error::invalid_value(
            "tpm_identity",
            "an endorsement key's name: 000b and its SHA-256 digest, 68 hex digits \
             (neocloud-agent --inventory prints it)",
        ));
    }
    Ok(name)
}

/// Virtual-media boots insert the server's iPXE ISO (or, for a node with
/// a static provisioning address, one of its own built by the server), UEFI
/// HTTP boots point the firmware at its iPXE EFI binary: the server must
/// have what the node's boot needs. (A boot method that cannot set a
/// static address is the store's to refuse.)
fn check_boot_method(c: &Call<'_>, m: BootMethod, static_address: bool) -> Result<()> {
    let missing = match (m, static_address) {
        (BootMethod::Pxe, _) => None,
        (BootMethod::VirtualMedia, false) => c
            .boot
            .virtual_media_iso_url
            .is_none()
            .then_some(("boot_method", "virtual_media needs the server's virtual_media_iso_url (an iPXE ISO that chains to the boot service), and this server has none")),
        (BootMethod::VirtualMedia, true) => c
            .boot
            .node_isos
            .is_none()
            .then_some(("boot_network", "a static provisioning address needs the server's per_node_iso (the iPXE binaries its ISOs are built from), and this server has none")),
        (BootMethod::UefiHttp, _) => c
            .boot
            .uefi_http_boot_url
            .is_none()
            .then_some(("boot_method", "uefi_http needs the server's uefi_http_boot_url (an iPXE EFI binary that chains to the boot service), and this server has none")),
    };
    match missing {
        Some((field, why)) => Err(Error::invalid_value(field, why)),
        None => Ok(()),
    }
}

/// A static address in a provisioning network (`network` given): the
/// node's own while it stays in that network and none was asked, else the
/// one asked (a host of the subnet) or the lowest free one of the range
/// (409 when none is left); always the network's gateway and name
/// servers. Without `network`, as given.
fn draw_boot_address(
    w: &mut dyn Writer,
    bn: &BootNetwork,
    node: Option<&Node>,
) -> Result<BootNetwork> {
    let Some(name) = &bn.network else {
        // A static address of its own: checked (a 422 names the field
        // before a network's address is looked for), and not a
        // provisioning network's gateway or name server.
        let a = bn.check()?;
        if let Some((net, role)) = provisioning_networks::reserving(w, a.address)? {
            return Err(Error::conflict(format!(
                "boot_network.address {} is provisioning network {net}'s {role}",
                a.address
            )));
        }
        return Ok(bn.clone());
    };
    let range = provisioning_networks::for_draw(w, name)?.map_err(|known| {
        Error::invalid_value(
            "boot_network.network",
            format!(
                "no provisioning network {name:?} (there are: {})",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ),
        )
    })?;
    for (field, given) in [("gateway", bn.gateway.is_some()), ("dns", !bn.dns.is_empty())] {
        if given {
            return Err(Error::invalid_value(
                format!("boot_network.{field}"),
                format!(
                    "comes from provisioning network {name} (change it there, or give no network)"
                ),
            ));
        }
    }
    let kept = node
        .and_then(|n| n.boot_network.as_ref())
        .filter(|cur| cur.network.as_ref() == Some(name))
        .and_then(|cur| cur.check().ok())
        .map(|a| a.address)
        .filter(|a| range.subnet.has_host(*a));
    let address = match (&bn.address, kept) {
        (Some(asked), _) => {
            let a = asked.split_once('/').map(|(a, _)| a).unwrap_or(asked);
            match a.parse::<std::net::Ipv4Addr>() {
                Ok(ip)
                    if range.subnet.has_host(ip)
                        && Some(ip) != range.gateway
                        && !range.dns.contains(&ip) =>
                {
                    ip
                }
                _ => {
                    return Err(Error::invalid_value(
                        "boot_network.address",
                        format!(
                            "must be a host of provisioning network {name} ({}), not its gateway or a name server",
                            range.subnet
                        ),
                    ))
                }
            }
        }
        (None, Some(kept)) => kept,
        (None, None) => nodes::free_boot_address(w, &range, node.map(|n| n.id.as_str()))?
            .ok_or_else(|| {
                Error::conflict(format!(
                    "provisioning network {name} has no free address left ({} to {})",
                    range.first, range.last
                ))
            })?,
    };
    Ok(range.boot_network(&bn.mac, address))
}

/// A BMC's address: `http(s)://host[:port]`, with at most a path prefix
/// (a proxy's) before the `/redfish/v1` the driver adds. No credentials in
/// it (they would be used without being sealed, and the address is shown
/// to the provider's readers and in errors), no query or fragment (the
/// driver appends paths to it).
fn check_bmc_endpoint(e: &str) -> Result<()> {
    let field = "bmc.endpoint";
    let rest = e.strip_prefix("https://").or_else(|| e.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Err(Error::invalid_value(field, "must be an http:// or https:// URL"));
    };
    if e.len() > 256 || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid_value(field, "must be at most 256 characters, without spaces"));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() {
        return Err(Error::invalid_value(field, "must name the BMC's host"));
    }
    if authority.contains('@') {
        return Err(Error::invalid_value(
            field,
            "must not carry credentials (give them as bmc.username and bmc.password)",
        ));
    }
    if e.contains(['?', '#']) {
        return Err(Error::invalid_value(field, "must not have a query or a fragment"));
    }
    if path.trim_end_matches('/').split('/').any(|seg| seg == "redfish") {
        return Err(Error::invalid_value(
            field,
            "must be the BMC's address without /redfish/v1 (the driver adds it)",
        ));
    }
    Ok(())
}

/// Checks BMC credentials and seals the password.
fn seal_bmc(c: &Call<'_>, b: &BmcCredentials) -> Result<String> {
    check_bmc_endpoint(&b.endpoint)?;
    if b.username.is_empty() || b.username.len() > 128 {
        return Err(Error::invalid_value("bmc.username", "must be 1 to 128 characters"));
    }
    if b.password.is_empty() || b.password.len() > 256 {
        return Err(Error::invalid_value("bmc.password", "must be 1 to 256 characters"));
    }
    c.secrets.seal(&b.password)
}

/// Records the intent to inspect again; the lifecycle controller acts on it.
fn inspect(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: NodeInspect = c.body()?;
    let n = find(c, w)?;
    let sealed = p.bmc.as_ref().map(|b| seal_bmc(c, b)).transpose()?;
    let creds = match (&p.bmc, &sealed) {
        (Some(b), Some(s)) => Some((b.endpoint.as_str(), b.username.as_str(), s.as_str())),
        _ => None,
    };
    if p.forget_tpm_identity {
        neocloud_store::agents::forget_tpm_identity(w, &n.id)?;
    }
    if p.forget_baselines {
        nodes::forget_baselines(w, &n.id)?;
    }
    let n = nodes::request_inspection(w, &n.id, creds)?;
    let mut r = Reply::ok(&n)?.with_nudge(&n.id);
    r.status = 202;
    Ok(r)
}

fn update(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: NodeUpdate = c.body()?;
    let n = find(c, w)?;
    if p.boot_method.is_some() || p.boot_network.is_some() {
        let method = p.boot_method.unwrap_or(n.boot_method);
        let static_address = match &p.boot_network {
            Some(b) => b.is_some(),
            None => n.boot_network.is_some(),
        };
        check_boot_method(c, method, static_address)?;
    }
    let drawn = match &p.boot_network {
        Some(Some(bn)) => Some(Some(draw_boot_address(w, bn, Some(&n))?)),
        Some(None) => Some(None),
        None => None,
    };
    let network = drawn.as_ref().map(Option::as_ref);
    let n = nodes::update(w, &n.id, p.generation, p.availability, p.boot_method, network)?;
    let readdressed = n.boot_network.is_some() && p.boot_network.is_some();
    let g = allocations::bump_placement_generation(w)?;
    Ok(Reply::ok(&n)?
        .with_nudge(&n.id)
        .with_iso_prebuild(readdressed)
        // What placement sees: the store's view (a node enrolling or
        // being sanitized stays unschedulable whatever its availability),
        // never the availability alone.
        .with_effect(Effect::SetAvailability(n.id.clone(), nodes::spec(&n).availability))
        .with_effect(Effect::Generation(g)))
}

fn delete(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let n = find(c, w)?;
    nodes::delete(w, &n.id)?;
    allocations::bump_placement_generation(w)?;
    // The controller finds it gone and ends its BMC login.
    Ok(Reply::empty()?.with_effect(Effect::Reload).with_nudge(&n.id))
}

fn capacity(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let mut cap = c.placement.current(r)?.engine.capacity();
    if let Some(m) = c.query_str("gpu_model") {
        cap.models.retain(|x| x.gpu_model == m);
    }
    Reply::ok(&cap)
}
