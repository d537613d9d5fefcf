//! Provider-defined instance types: `/v1/instance-types`. Every principal
//! may read the catalogue; only the provider changes it.

use super::OpGroup;
use super::{schema, Call, Handler, Method, Op, Reply, Resp};
use neocloud_authz::{Action, Resource};
use neocloud_common::{Error, Result};
use neocloud_placement::mig::GpuModel;
use neocloud_store::{instance_types, Reader, Writer};
use neocloud_types::{
    check_text, InstanceKind, InstanceType, InstanceTypeCreate, InstanceTypeUpdate, List,
};

const API: OpGroup = OpGroup::global(Resource::InstanceType, "inventory");

pub(super) fn ops() -> Vec<Op> {
    vec![
        API.op(
            "instance_type_list",
            Method::Get,
            "/v1/instance-types",
            "Instance types",
            Action::List,
            None,
            Resp::Json(200, schema::<List<InstanceType>>),
            Handler::Read(list),
        ),
        API.op(
            "instance_type_create",
            Method::Post,
            "/v1/instance-types",
            "Define an instance type: bare metal, VM (n GPUs) or MIG slice",
            Action::Create,
            Some(schema::<InstanceTypeCreate>),
            Resp::Json(201, schema::<InstanceType>),
            Handler::Write(create),
        ),
        API.op(
            "instance_type_get",
            Method::Get,
            "/v1/instance-types/{instance_type}",
            "One instance type",
            Action::Read,
            None,
            Resp::Json(200, schema::<InstanceType>),
            Handler::Read(get),
        ),
        API.op(
            "instance_type_update",
            Method::Patch,
            "/v1/instance-types/{instance_type}",
            "Update an instance type's description; carries the expected generation",
            Action::Update,
            Some(schema::<InstanceTypeUpdate>),
            Resp::Json(200, schema::<InstanceType>),
            Handler::Write(update),
        ),
        API.op(
            "instance_type_delete",
            Method::Delete,
            "/v1/instance-types/{instance_type}",
            "Delete an instance type no active allocation uses",
            Action::Delete,
            None,
            Resp::Empty,
            Handler::Write(delete),
        ),
    ]
}

pub(super) fn find(c: &Call<'_>, r: &mut dyn Reader) -> Result<InstanceType> {
    let key = c.key("instance_type")?;
    instance_types::lookup(r, &key)?
        .ok_or_else(|| Error::not_found("instance type", key.to_string()))
}

fn list(_c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    Reply::ok(&List { items: instance_types::list(r)? })
}

fn get(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    Reply::ok(&find(c, r)?)
}

fn create(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: InstanceTypeCreate = c.body()?;
    check_text("description", &p.description)?;
    let model = p.gpu_model.as_str();
    let (gpus, profile) = match p.kind {
        InstanceKind::BareMetal => {
            if p.gpus.is_some() || p.mig_profile.is_some() {
                return Err(Error::invalid_value(
                    if p.gpus.is_some() { "gpus" } else { "mig_profile" },
                    "bare-metal types take the whole node: no gpus or mig_profile",
                ));
            }
            (0, None)
        }
        InstanceKind::Vm => {
            let g =
                p.gpus.ok_or_else(|| Error::invalid_value("gpus", "VM types need a GPU count"))?;
            if g == 0 || g > 16 {
                return Err(Error::invalid_value("gpus", "must be between 1 and 16"));
            }
            if p.mig_profile.is_some() {
                return Err(Error::invalid_value("mig_profile", "VM types take whole GPUs"));
            }
            (g, None)
        }
        InstanceKind::Mig => {
            let name = p.mig_profile.as_deref().ok_or_else(|| {
                Error::invalid_value("mig_profile", "MIG types need a profile, e.g. 1g.10gb")
            })?;
            let gm = GpuModel::parse(model).ok_or_else(|| {
                Error::invalid_value("gpu_model", format!("{model} has no MIG profiles known here"))
            })?;
            if gm.profile(name).is_none() {
                let known: Vec<&str> = gm.mig_profiles().iter().map(|p| p.name).collect();
                return Err(Error::invalid_value(
                    "mig_profile",
                    format!(
                        "{name:?} is not a MIG profile of {model}; known: {}",
                        known.join(", ")
                    ),
                ));
            }
            if p.gpus.is_some() {
                return Err(Error::invalid_value("gpus", "MIG types are one slice"));
            }
            (0, Some(name))
        }
    };
    let t = instance_types::create(
        w,
        &instance_types::NewInstanceType {
            name: p.name.as_str(),
            kind: p.kind,
            gpu_model: model,
            gpus,
            mig_profile: profile,
            vcpus: p.vcpus.unwrap_or(0),
            memory_gib: p.memory_gib.unwrap_or(0),
            description: p.description.as_deref().unwrap_or(""),
        },
    )?;
    Reply::created(&t.id.clone(), &t)
}

fn update(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: InstanceTypeUpdate = c.body()?;
    check_text("description", &p.description)?;
    let t = find(c, w)?;
    Reply::ok(&instance_types::update(w, &t.id, &p)?)
}

fn delete(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let t = find(c, w)?;
    instance_types::delete(w, &t.id)?;
    Reply::empty()
}
