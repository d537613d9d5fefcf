//! `/v1/fabrics`: the provider's fabrics. A fabric is one document (pools,
//! switches, cabling) replaced as a whole with the generation it was read
//! at; `plan` shows, per switch, what applying the current intent would
//! change. The fabric controller pushes; handlers only record.

use super::OpGroup;
use super::{schema, Call, Handler, Method, Op, Reply, Resp};
use crate::network::{ib, intent, model, plan};
use neocloud_authz::{Action, Resource};
use neocloud_common::{Error, NameOrId, Result};
use neocloud_store::fabrics::{self, FabricRecord, LinkRecord};
use neocloud_store::{nodes, Reader, Writer};
use neocloud_types::{
    Fabric, FabricKindSpec, FabricPlan, FabricSpec, List, SubnetManager, SubnetManagerPlan,
    SwitchManagement, SwitchOsSpec, SwitchPlan, SwitchStatus, SwitchSyncState,
};

const API: OpGroup = OpGroup::global(Resource::Fabric, "fabrics");

pub(super) fn ops() -> Vec<Op> {
    let item = "/v1/fabrics/{fabric}";
    vec![
        API.op("fabric_list", Method::Get, "/v1/fabrics", "Fabrics, with each switch's apply status",
            Action::List, None, Resp::Json(200, schema::<List<Fabric>>), Handler::Read(list)),
        API.op("fabric_get", Method::Get, item, "One fabric: its document and each switch's apply status",
            Action::Read, None, Resp::Json(200, schema::<Fabric>), Handler::Read(get)),
        API.op("fabric_put", Method::Put, item,
            "Create a fabric, or replace its document (switches, cabling, pools) at the generation read",
            Action::Update, Some(schema::<FabricSpec>), Resp::Json(200, schema::<Fabric>),
            Handler::Write(put)),
        API.op("fabric_delete", Method::Delete, item, "Remove a fabric no VPC uses", Action::Delete,
            None, Resp::Empty, Handler::Write(delete)),
        API.op("fabric_plan", Method::Get, "/v1/fabrics/{fabric}/plan",
            "What applying the fabric's current intent would change on each switch, before anything is pushed",
            Action::Read, None, Resp::Json(200, schema::<FabricPlan>), Handler::Read(show_plan)),
        API.op("fabric_plan_proposed", Method::Post, "/v1/fabrics/{fabric}/plan",
            "What replacing the fabric's document with this one would change on each switch; nothing is written or pushed",
            Action::Update, Some(schema::<FabricSpec>), Resp::Json(200, schema::<FabricPlan>),
            Handler::Write(plan_proposed)),
    ]
}

fn find(c: &Call<'_>, r: &mut dyn Reader) -> Result<FabricRecord> {
    let key = c.key("fabric")?;
    fabrics::lookup(r, &key)?.ok_or_else(|| Error::not_found("fabric", key.to_string()))
}

/// The API view: the document without secrets, and every switch's status.
pub fn view(r: &mut dyn Reader, rec: &FabricRecord) -> Result<Fabric> {
    let states = fabrics::switch_states(r, &rec.id)?;
    // What is pushed to: each switch, or an InfiniBand subnet's manager.
    let targets: Vec<(String, bool)> = match &rec.spec.infiniband {
        Some(ib) => {
            vec![(ib::SUBNET_MANAGER.to_string(), ib.subnet_manager == SubnetManager::None)]
        }
        None => rec
            .spec
            .switches
            .iter()
            .map(|s| (s.name.to_string(), s.management == SwitchManagement::None))
            .collect(),
    };
    let switches = targets
        .iter()
        .map(|(name, unmanaged)| {
            let st = states.iter().find(|x| &x.switch == name);
            let state = match (unmanaged, st.map(|x| x.state.as_str())) {
                (true, _) => SwitchSyncState::Unmanaged,
                (_, Some("in_sync")) => SwitchSyncState::InSync,
                (_, Some("drift")) => SwitchSyncState::Drift,
                (_, Some("error")) => SwitchSyncState::Error,
                (_, _) => SwitchSyncState::Pending,
            };
            // Behind the intent reads as pending whatever was recorded.
            let applied = st.map_or(0, |x| x.applied_generation);
            let state = match state {
                SwitchSyncState::InSync if applied < rec.intent_generation => {
                    SwitchSyncState::Pending
                }
                other => other,
            };
            SwitchStatus {
                name: name.clone(),
                state,
                applied_generation: applied,
                message: st.and_then(|x| x.message.clone()),
                checked_at: st.and_then(|x| x.checked_at).map(neocloud_common::time::to_rfc3339),
            }
        })
        .collect();
    Ok(Fabric {
        id: rec.id.clone(),
        name: rec.name.clone(),
        spec: model::redacted(&rec.spec),
        intent_generation: rec.intent_generation,
        switches,
        generation: rec.generation,
        created_at: rec.created_at.clone(),
        updated_at: rec.updated_at.clone(),
    })
}

fn list(_c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let mut items = Vec::new();
    for rec in fabrics::list(r)? {
        items.push(view(r, &rec)?);
    }
    Reply::ok(&List { items })
}

fn get(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let rec = find(c, r)?;
    Reply::ok(&view(r, &rec)?)
}

/// Checks each switch's management against its OS, seals new passwords and
/// keeps the stored one where a replacement leaves it out.
fn management(c: &Call<'_>, spec: &mut FabricSpec, old: Option<&FabricSpec>) -> Result<()> {
    for (i, s) in spec.switches.iter_mut().enumerate() {
        let field = format!("switches[{i}].management");
        let fits = match (&s.management, s.os) {
            (SwitchManagement::None | SwitchManagement::Simulated, _) => true,
            (SwitchManagement::Ssh { .. } | SwitchManagement::Nsenter { .. }, os) => {
                os == SwitchOsSpec::Frr
            }
            (SwitchManagement::Https { .. }, os) => os != SwitchOsSpec::Frr,
        };
        if !fits {
            return Err(Error::invalid_value(
                field,
                "FRR switches are managed over ssh (or nsenter in a lab); SONiC, NVUE and EOS over https",
            ));
        }
        if let SwitchManagement::Https { url, password, tls, .. } = &mut s.management {
            if !url.starts_with("https://") && !url.starts_with("http://") {
                return Err(Error::invalid_value(format!("{field}.url"), "an http(s):// URL"));
            }
            tls.validate()
                .map_err(|e| Error::invalid_value(format!("{field}.tls.ca_pem"), e.to_string()))?;
            let kept = old.and_then(|o| o.switches.iter().find(|x| x.name == s.name)).and_then(
                |x| match &x.management {
                    SwitchManagement::Https { password, .. } => password.clone(),
                    _ => None,
                },
            );
            seal_or_keep(c, password, kept, &format!("{field}.password"))?;
        }
    }
    if let Some(ib) = &mut spec.infiniband {
        if let SubnetManager::Ufm { url, password, tls, .. } = &mut ib.subnet_manager {
            if !url.starts_with("https://") && !url.starts_with("http://") {
                return Err(Error::invalid_value(
                    "infiniband.subnet_manager.url",
                    "an http(s):// URL",
                ));
            }
            tls.validate().map_err(|e| {
                Error::invalid_value("infiniband.subnet_manager.tls.ca_pem", e.to_string())
            })?;
            let kept =
                old.and_then(|o| o.infiniband.as_ref()).and_then(|x| match &x.subnet_manager {
                    SubnetManager::Ufm { password, .. } => password.clone(),
                    SubnetManager::None | SubnetManager::Simulated => None,
                });
            seal_or_keep(c, password, kept, "infiniband.subnet_manager.password")?;
        }
    }
    Ok(())
}

/// A given password is sealed; a left-out one keeps the stored (sealed)
/// one, which must exist.
fn seal_or_keep(
    c: &Call<'_>,
    password: &mut Option<String>,
    kept: Option<String>,
    field: &str,
) -> Result<()> {
    *password = match (password.take(), kept) {
        (Some(p), _) => Some(c.secrets.seal(&p)?),
        (None, Some(sealed)) => Some(sealed),
        (None, None) => {
            return Err(Error::invalid_value(field, "required for a new managed endpoint"))
        }
    };
    Ok(())
}

/// Node names in the cabling and provisioning servers become node ids.
fn resolve_nodes(w: &mut dyn Reader, spec: &mut FabricSpec) -> Result<Vec<LinkRecord>> {
    let mut resolve = |field: String, key: &str| -> Result<String> {
        let k = NameOrId::parse("node", key).map_err(|_| {
            Error::invalid_value(field.clone(), format!("{key:?} is not a node name or id"))
        })?;
        nodes::lookup(w, &k)?
            .map(|n| n.id)
            .ok_or_else(|| Error::invalid_value(field, format!("no node {key:?}")))
    };
    if let Some(pools) = &mut spec.pools {
        for (i, s) in pools.provisioning_servers.iter_mut().enumerate() {
            *s = resolve(format!("pools.provisioning_servers[{i}]"), s)?;
        }
    }
    if let Some(ib) = &mut spec.infiniband {
        for (i, p) in ib.ports.iter_mut().enumerate() {
            p.node = resolve(format!("infiniband.ports[{i}].node"), &p.node)?;
        }
    }
    let mut out = Vec::new();
    for (i, l) in spec.links.iter_mut().enumerate() {
        l.node = resolve(format!("links[{i}].node"), &l.node)?;
        out.push(LinkRecord {
            fabric_id: String::new(),
            node_id: l.node.clone(),
            nic: l.nic.clone(),
            switch: l.switch.clone(),
            port: l.port.clone(),
        });
    }
    Ok(out)
}

/// A document checked on its own (nothing written): the fabric's name,
/// the document with node ids and sealed passwords, its cabling, and the
/// fabric it replaces.
struct Prepared {
    name: String,
    spec: FabricSpec,
    links: Vec<LinkRecord>,
    existing: Option<FabricRecord>,
}

fn prepare(c: &Call<'_>, w: &mut dyn Reader) -> Result<Prepared> {
    let key = c.key("fabric")?;
    let mut spec: FabricSpec = c.body()?;
    let existing = fabrics::lookup(w, &key)?;
    let name = match (&existing, &key) {
        (Some(f), _) => f.name.clone(),
        (None, NameOrId::Name(n)) => n.to_string(),
        (None, NameOrId::Id(id)) => return Err(Error::not_found("fabric", id.clone())),
    };
    match spec.kind {
        FabricKindSpec::Ethernet if spec.infiniband.is_some() => {
            return Err(Error::invalid_value("infiniband", "only for an InfiniBand fabric"))
        }
        FabricKindSpec::Infiniband
            if spec.pools.is_some() || !spec.switches.is_empty() || !spec.links.is_empty() =>
        {
            return Err(Error::invalid_value(
                "kind",
                "an InfiniBand fabric has a subnet manager, not pools, switches or links",
            ))
        }
        FabricKindSpec::Ethernet | FabricKindSpec::Infiniband => {}
    }
    if let Some(f) = &existing {
        if model::kind_str(spec.kind) != f.kind {
            return Err(Error::invalid_value("kind", "a fabric's kind cannot change"));
        }
    }
    management(c, &mut spec, existing.as_ref().map(|f| &f.spec))?;
    let links = resolve_nodes(w, &mut spec)?;
    // The document alone first (addresses, then the core's topology rules),
    // so nothing is written for a bad one; tenants' intent is checked
    // against it below.
    match spec.kind {
        FabricKindSpec::Ethernet => {
            let topo = model::topology(&name, &spec)?;
            neocloud_fabric::validate(
                &topo.fabric,
                &topo.switches,
                &topo.links,
                &neocloud_fabric::Intent::default(),
            )
            .map_err(crate::network::fabric_error)?;
        }
        FabricKindSpec::Infiniband => ib::check(&name, &spec)?,
    }
    Ok(Prepared { name, spec, links, existing })
}

fn put(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let Prepared { name, mut spec, mut links, existing } = prepare(c, w)?;
    let generation = spec.generation.take();
    let (id, lock) = match (&existing, generation) {
        (Some(f), Some(g)) => {
            let lock = fabrics::lock_intent(w, &f.id)?;
            fabrics::replace(w, &f.id, g, &spec)?;
            (f.id.clone(), Some(lock))
        }
        (Some(_), None) => {
            return Err(Error::invalid_value(
                "generation",
                "the fabric exists: give the generation you read to replace it",
            ))
        }
        (None, Some(_)) => {
            return Err(Error::invalid_value(
                "generation",
                "the fabric does not exist: leave generation out to create it",
            ))
        }
        (None, None) => {
            // An Ethernet fabric's ledger is kept by entry
            // (`network::ledger`); the column holds InfiniBand's.
            let ledger = match spec.kind {
                FabricKindSpec::Ethernet => String::new(),
                FabricKindSpec::Infiniband => {
                    serde_json::to_string(&neocloud_fabric::ib::PkeyLedger::default())
                        .map_err(|e| Error::internal(e.to_string()))?
                }
            };
            let f = fabrics::create(w, &name, model::kind_str(spec.kind), &spec, &ledger)?;
            // Taken so the planner built below is kept under a token.
            let lock = match spec.kind {
                FabricKindSpec::Ethernet => Some(fabrics::lock_intent(w, &f.id)?),
                FabricKindSpec::Infiniband => None,
            };
            (f.id, lock)
        }
    };
    for l in &mut links {
        l.fabric_id = id.clone();
    }
    fabrics::set_links(w, &id, &links)?;
    match spec.kind {
        FabricKindSpec::Ethernet => {
            let names: Vec<String> = spec.switches.iter().map(|s| s.name.to_string()).collect();
            fabrics::retain_switches(w, &id, &names)?;
            // The topology changed: the fabric's planner is built afresh
            // (validating every tenant's intent against the new document).
            if let Some(lock) = &lock {
                c.planners.rebuild(w, &id, lock)?;
            }
        }
        // Partitions (and PKeys) follow the tenants' nodes: the controller's.
        FabricKindSpec::Infiniband => {}
    }
    let rec = fabrics::get(w, &id)?;
    let v = view(w, &rec)?;
    match existing {
        Some(_) => Reply::ok(&v),
        None => Reply::created(&id, &v),
    }
}

fn delete(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let rec = find(c, w)?;
    fabrics::delete(w, &rec.id)?;
    c.planners.forget(&rec.id);
    Reply::empty()
}

/// What applying a proposed document would change, with the tenants'
/// current intent; nothing is written or pushed.
fn plan_proposed(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p = prepare(c, w)?;
    if p.spec.kind == FabricKindSpec::Infiniband {
        let (fabric, desired) = ib::preview(w, &p.name, &p.spec, p.existing.as_ref())?;
        let applied = match &p.existing {
            Some(f) => ib::applied(w, &f.id)?,
            None => Default::default(),
        };
        return Reply::ok(&ib_plan(0, &fabric, &desired, &applied)?);
    }
    let topo = model::topology(&p.name, &p.spec)?;
    let (intent, ledger, generation, states) = match &p.existing {
        Some(f) => {
            let l = intent::load(w, &f.id)?;
            (l.intent, l.ledger, l.record.intent_generation, fabrics::switch_states(w, &f.id)?)
        }
        None => Default::default(),
    };
    let next =
        neocloud_fabric::allocate(&topo.fabric, &topo.switches, &topo.links, &intent, &ledger)
            .map_err(crate::network::fabric_error)?;
    let desired = neocloud_fabric::plan(&topo.fabric, &topo.switches, &topo.links, &intent, &next)
        .map_err(crate::network::fabric_error)?;
    let applied = plan::applied(&states)?;
    Reply::ok(&FabricPlan {
        intent_generation: generation,
        switches: switch_plans(&desired.switches, &applied)?,
        subnet_manager: None,
    })
}

fn ib_plan(
    generation: i64,
    fabric: &neocloud_fabric::ib::IbFabric,
    desired: &neocloud_fabric::ib::IbDesired,
    applied: &neocloud_fabric::ib::IbDesired,
) -> Result<FabricPlan> {
    let changes = neocloud_fabric::ib::ufm_changes(fabric, desired, applied)
        .iter()
        .map(|c| {
            let body = c.body.as_ref().map(|b| format!(" {b}")).unwrap_or_default();
            format!("{} {}{body}", c.method.as_str(), c.path)
        })
        .collect();
    let partitions_conf =
        neocloud_fabric::ib::render_opensm(desired).map_err(crate::network::fabric_error)?;
    Ok(FabricPlan {
        intent_generation: generation,
        switches: Vec::new(),
        subnet_manager: Some(SubnetManagerPlan { changes, partitions_conf }),
    })
}

/// Per switch: the changes from what it holds to what it must have.
fn switch_plans<'a>(
    desired: impl IntoIterator<Item = (&'a String, &'a neocloud_fabric::SwitchConfig)>,
    applied: &std::collections::BTreeMap<String, neocloud_fabric::SwitchConfig>,
) -> Result<Vec<SwitchPlan>> {
    let mut switches = Vec::new();
    for (name, want) in desired {
        let empty = neocloud_fabric::SwitchConfig::new(want.os);
        let have = applied.get(name).unwrap_or(&empty);
        let (changes, steps) = plan::switch_plan(name, have, want)?;
        switches.push(SwitchPlan {
            name: name.clone(),
            os: model::os_spec(want.os),
            changes,
            steps,
        });
    }
    Ok(switches)
}

fn show_plan(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let rec = find(c, r)?;
    if rec.spec.infiniband.is_some() {
        let (fabric, desired) = ib::preview(r, &rec.name, &rec.spec, Some(&rec))?;
        let applied = ib::applied(r, &rec.id)?;
        return Reply::ok(&ib_plan(rec.intent_generation, &fabric, &desired, &applied)?);
    }
    let (record, desired) = c
        .planners
        .desired(r, &rec.id, false)?
        .ok_or_else(|| Error::internal("a plan deferred without being asked to"))?;
    let applied = plan::applied(&fabrics::switch_states(r, &rec.id)?)?;
    let switches = switch_plans(desired.iter().map(|(n, c)| (n, &**c)), &applied)?;
    Reply::ok(&FabricPlan {
        intent_generation: record.intent_generation,
        switches,
        subnet_manager: None,
    })
}
