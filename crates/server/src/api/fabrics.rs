//! `/v1/fabrics`: the provider's fabrics. A fabric is one document (pools,
//! switches, cabling) replaced as a whole with the generation it was read
//! at; `plan` shows, per switch, what applying the current intent would
//! change. The fabric controller pushes; handlers only record.

use super::{schema, Call, Handler, Method, Op, Reply, Resp};
use crate::network::{intent, model, plan};
use neocloud_authz::{Action, Resource};
use neocloud_common::{Error, NameOrId, Result};
use neocloud_store::fabrics::{self, FabricRecord, LinkRecord};
use neocloud_store::{nodes, Reader, Writer};
use neocloud_types::{
    Fabric, FabricKindSpec, FabricPlan, FabricSpec, List, SwitchManagement, SwitchOsSpec,
    SwitchPlan, SwitchStatus, SwitchSyncState,
};

#[allow(clippy::too_many_arguments)]
fn op(
    id: &'static str,
    method: Method,
    path: &'static str,
    summary: &'static str,
    action: Action,
    request: Option<super::SchemaFn>,
    response: Resp,
    handler: Handler,
) -> Op {
    super::global_op(
        Resource::Fabric,
        "fabrics",
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
    let item = "/v1/fabrics/{fabric}";
    vec![
        op("fabric_list", Method::Get, "/v1/fabrics", "Fabrics, with each switch's apply status",
            Action::List, None, Resp::Json(200, schema::<List<Fabric>>), Handler::Read(list)),
        op("fabric_get", Method::Get, item, "One fabric: its document and each switch's apply status",
            Action::Read, None, Resp::Json(200, schema::<Fabric>), Handler::Read(get)),
        op("fabric_put", Method::Put, item,
            "Create a fabric, or replace its document (switches, cabling, pools) at the generation read",
            Action::Update, Some(schema::<FabricSpec>), Resp::Json(200, schema::<Fabric>),
            Handler::Write(put)),
        op("fabric_delete", Method::Delete, item, "Remove a fabric no VPC uses", Action::Delete,
            None, Resp::Empty, Handler::Write(delete)),
        op("fabric_plan", Method::Get, "/v1/fabrics/{fabric}/plan",
            "What applying the fabric's current intent would change on each switch, before anything is pushed",
            Action::Read, None, Resp::Json(200, schema::<FabricPlan>), Handler::Read(show_plan)),
    ]
}

fn find(c: &Call<'_>, r: &mut dyn Reader) -> Result<FabricRecord> {
    let key = c.key("fabric")?;
    fabrics::lookup(r, &key)?.ok_or_else(|| Error::not_found("fabric", key.to_string()))
}

/// The API view: the document without secrets, and every switch's status.
pub fn view(r: &mut dyn Reader, rec: &FabricRecord) -> Result<Fabric> {
    let states = fabrics::switch_states(r, &rec.id)?;
    let switches = rec
        .spec
        .switches
        .iter()
        .map(|s| {
            let st = states.iter().find(|x| x.switch == s.name.as_str());
            let state = match (&s.management, st.map(|x| x.state.as_str())) {
                (SwitchManagement::None, _) => SwitchSyncState::Unmanaged,
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
                name: s.name.to_string(),
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
        if let SwitchManagement::Https { url, password, .. } = &mut s.management {
            if !url.starts_with("https://") && !url.starts_with("http://") {
                return Err(Error::invalid_value(format!("{field}.url"), "an http(s):// URL"));
            }
            match password.take() {
                Some(p) => *password = Some(c.secrets.seal(&p)?),
                None => {
                    let kept = old
                        .and_then(|o| o.switches.iter().find(|x| x.name == s.name))
                        .and_then(|x| match &x.management {
                            SwitchManagement::Https { password, .. } => password.clone(),
                            _ => None,
                        });
                    match kept {
                        Some(p) => *password = Some(p),
                        None => {
                            return Err(Error::invalid_value(
                                format!("{field}.password"),
                                "required for a new https-managed switch",
                            ))
                        }
                    }
                }
            }
        }
    }
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
    for (i, s) in spec.pools.provisioning_servers.iter_mut().enumerate() {
        *s = resolve(format!("pools.provisioning_servers[{i}]"), s)?;
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

fn put(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let key = c.key("fabric")?;
    let mut spec: FabricSpec = c.body()?;
    let existing = fabrics::lookup(w, &key)?;
    let name = match (&existing, &key) {
        (Some(f), _) => f.name.clone(),
        (None, NameOrId::Name(n)) => n.to_string(),
        (None, NameOrId::Id(id)) => return Err(Error::not_found("fabric", id.clone())),
    };
    if spec.kind == FabricKindSpec::Infiniband {
        return Err(Error::invalid_value(
            "kind",
            "InfiniBand fabrics are partitioned through UFM, not planned here yet",
        ));
    }
    if let Some(f) = &existing {
        if model::kind_str(spec.kind) != f.kind {
            return Err(Error::invalid_value("kind", "a fabric's kind cannot change"));
        }
    }
    management(c, &mut spec, existing.as_ref().map(|f| &f.spec))?;
    let mut links = resolve_nodes(w, &mut spec)?;
    // The document alone first (addresses, then the core's topology rules),
    // so nothing is written for a bad one; tenants' intent is checked
    // against it below.
    let topo = model::topology(&name, &spec)?;
    neocloud_fabric::validate(
        &topo.fabric,
        &topo.switches,
        &topo.links,
        &neocloud_fabric::Intent::default(),
    )
    .map_err(crate::network::fabric_error)?;
    let generation = spec.generation.take();
    let id = match (&existing, generation) {
        (Some(f), Some(g)) => {
            fabrics::lock_intent(w, &f.id)?;
            fabrics::replace(w, &f.id, g, &spec)?;
            f.id.clone()
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
            let ledger = serde_json::to_string(&neocloud_fabric::Allocations::default())
                .map_err(|e| Error::internal(e.to_string()))?;
            fabrics::create(w, &name, model::kind_str(spec.kind), &spec, &ledger)?.id
        }
    };
    for l in &mut links {
        l.fabric_id = id.clone();
    }
    fabrics::set_links(w, &id, &links)?;
    let names: Vec<String> = spec.switches.iter().map(|s| s.name.to_string()).collect();
    fabrics::retain_switches(w, &id, &names)?;
    intent::reallocate(w, &id, false)?;
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
    Reply::empty()
}

fn show_plan(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let rec = find(c, r)?;
    let loaded = intent::load(r, &rec.id)?;
    let desired = plan::desired(&loaded)?;
    let applied = plan::applied(&fabrics::switch_states(r, &rec.id)?)?;
    let mut switches = Vec::new();
    for (name, want) in &desired.switches {
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
    Reply::ok(&FabricPlan { intent_generation: loaded.record.intent_generation, switches })
}
