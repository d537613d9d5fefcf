//! Tenants' bare-metal instances: one node each, held by one allocation.
//! The lifecycle controller moves an instance's state with its node's.

use crate::backend::{Reader, Row, Value, Writer};
use crate::{rfc, vals};
use neocloud_common::{time::now_micros, Error, NameOrId, Result};
use neocloud_types::{
    Instance, InstancePower, InstanceState, NodeLifecycle, Progress, SanitizeStep,
};

const COLS: &str = "i.id, i.name, i.tenant_id, i.project_id, i.instance_type_id, i.image_id, i.allocation_id, i.node_id, i.ssh_keys, i.state, i.reason, i.generation, i.created_at, i.updated_at, n.lifecycle, n.lifecycle_since, i.release_requested_at, \
    (SELECT a.health FROM agents a WHERE a.node_id = i.node_id AND a.instance_id = i.id \
     AND a.purpose = 'tenant' AND a.revoked_at IS NULL ORDER BY a.created_at DESC LIMIT 1), i.power, \
    i.rebuild_image_id, n.bmc_health, n.bmc_health_faults, i.replacements";
const FROM: &str = "FROM instances i JOIN nodes n ON n.id = i.node_id";

fn json_err(e: serde_json::Error) -> Error {
    Error::internal(format!("instance json: {e}"))
}

fn from_row(r: &Row) -> Result<Instance> {
    let state = r.str(9)?;
    let state = InstanceState::parse(&state)
        .ok_or_else(|| Error::internal(format!("bad instance state {state:?}")))?;
    let id = r.str(0)?;
    let node: NodeLifecycle = serde_json::from_str(&r.str(14)?).map_err(json_err)?;
    let since = rfc(r.i64(15)?);
    Ok(Instance {
        progress: progress(state, &id, &node, since),
        id,
        name: r.str(1)?,
        tenant_id: r.str(2)?,
        project_id: r.str(3)?,
        instance_type_id: r.str(4)?,
        image_id: r.str(5)?,
        allocation_id: r.str(6)?,
        node_id: r.str(7)?,
        ssh_keys: serde_json::from_str(&r.str(8)?).map_err(json_err)?,
        state,
        release_requested: r.i64(16)? > 0,
        reason: r.opt_str(10)?,
        health: r.opt_str(17)?,
        power: power_of(r.opt_str(18)?)?,
        rebuild_image_id: r.opt_str(19)?,
        // The node's, while the tenant holds it.
        hardware_health: if state == InstanceState::Released { None } else { r.opt_str(20)? },
        hardware_faults: if state == InstanceState::Released {
            Vec::new()
        } else {
            crate::nodes::faults_of(r.opt_str(21)?)?
        },
        replacements: r.i64(22)? as u32,
        generation: r.i64(11)?,
        created_at: rfc(r.i64(12)?),
        updated_at: rfc(r.i64(13)?),
    })
}

/// The phase's progress, from the node's lifecycle while the node works
/// for this instance. Provisioning: set_boot, power_cycle, await_agent.
/// Releasing: the same three to boot the sanitizer, then agent_steps and
/// finish.
fn progress(
    state: InstanceState,
    id: &str,
    node: &NodeLifecycle,
    since: String,
) -> Option<Progress> {
    let p = |step: &str, done: u32, total: u32| {
        Some(Progress { step: step.to_string(), done, total, since: since.clone() })
    };
    match (state, node) {
        (InstanceState::Pending, _) => p("waiting_for_node", 0, 3),
        (InstanceState::Provisioning, NodeLifecycle::Provisioning { instance_id, step, .. })
            if instance_id == id =>
        {
            p(step.name(), step.ordinal() - 1, 3)
        }
        (InstanceState::Releasing, NodeLifecycle::Releasing { instance_id, step, .. })
            if instance_id.as_deref() == Some(id) =>
        {
            p(step.name(), step.ordinal() - 1, 5)
        }
        (InstanceState::Releasing, NodeLifecycle::Sanitizing { instance_id, step, .. })
            if instance_id.as_deref() == Some(id) =>
        {
            match step {
                SanitizeStep::AgentSteps => p(step.name(), 3, 5),
                SanitizeStep::Finish => p(step.name(), 4, 5),
            }
        }
        (InstanceState::Releasing, NodeLifecycle::Active { .. } | NodeLifecycle::Failed { .. }) => {
            p("release_requested", 0, 5)
        }
        _ => None,
    }
}

pub struct NewInstance<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub tenant_id: &'a str,
    pub project_id: &'a str,
    pub instance_type_id: &'a str,
    pub image_id: &'a str,
    pub allocation_id: &'a str,
    pub node_id: &'a str,
    pub ssh_keys: &'a [String],
    pub user_data: Option<&'a str>,
}

pub fn create(w: &mut dyn Writer, n: &NewInstance<'_>) -> Result<Instance> {
    create_many(w, std::slice::from_ref(n))?
        .pop()
        .ok_or_else(|| Error::internal("instance vanished"))
}

/// Inserts instances in `pending`, a multi-row `INSERT` at a time, and
/// returns them in the order given. A live instance of the same name is
/// `AlreadyExists` (nothing is written: the caller's transaction rolls
/// back).
pub fn create_many(w: &mut dyn Writer, new: &[NewInstance<'_>]) -> Result<Vec<Instance>> {
    let now = now_micros();
    let mut rows = Vec::with_capacity(new.len());
    for n in new {
        rows.push(vec![
            n.id.into(),
            n.tenant_id.into(),
            n.project_id.into(),
            n.name.into(),
            n.instance_type_id.into(),
            n.image_id.into(),
            n.allocation_id.into(),
            n.node_id.into(),
            serde_json::to_string(n.ssh_keys).map_err(json_err)?.into(),
            n.user_data.into(),
            "pending".into(),
            Value::Null,
            0.into(),
            1.into(),
            now.into(),
            now.into(),
        ]);
    }
    crate::insert_rows(
        w,
        "INSERT INTO instances (id, tenant_id, project_id, name, instance_type_id, image_id, allocation_id, node_id, ssh_keys, user_data, state, reason, release_requested_at, generation, created_at, updated_at)",
        &rows,
    )
    .map_err(|e| {
        let value = match new {
            [one] => one.name.to_string(),
            [first, .., last] => format!("one of {} .. {}", first.name, last.name),
            [] => String::new(),
        };
        e.unique_as(Error::AlreadyExists { kind: "instance", field: "name".into(), value })
    })?;
    let ids: Vec<&str> = new.iter().map(|n| n.id).collect();
    let mut found = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let params: Vec<Value> = chunk.iter().map(|id| (*id).into()).collect();
        for row in w.query(
            &format!("SELECT {COLS} {FROM} WHERE i.id IN {}", crate::placeholders(chunk.len())),
            &params,
        )? {
            let i = from_row(&row)?;
            found.insert(i.id.clone(), i);
        }
    }
    ids.iter()
        .map(|id| found.remove(*id).ok_or_else(|| Error::internal("instance vanished")))
        .collect()
}

/// Which of `names` a live (not released) instance of the project holds.
pub fn live_names(
    r: &mut dyn Reader,
    tenant_id: &str,
    project_id: &str,
    names: &[String],
) -> Result<Vec<String>> {
    let mut taken = Vec::new();
    for chunk in names.chunks(500) {
        let mut params: Vec<Value> = vec![tenant_id.into(), project_id.into()];
        params.extend(chunk.iter().map(Value::from));
        for row in r.query(
            &format!(
                "SELECT name FROM instances WHERE tenant_id = ? AND project_id = ? AND state <> 'released' AND name IN {} ORDER BY name",
                crate::placeholders(chunk.len())
            ),
            &params,
        )? {
            taken.push(row.str(0)?);
        }
    }
    Ok(taken)
}

/// Any instance by id (the controller's and the boot service's view).
pub fn by_id(r: &mut dyn Reader, id: &str) -> Result<Instance> {
    let rows = r.query(&format!("SELECT {COLS} {FROM} WHERE i.id = ?"), vals![id])?;
    rows.first().map(from_row).transpose()?.ok_or_else(|| Error::not_found("instance", id))
}

/// An instance of a project by name (a live one) or id.
pub fn lookup(
    r: &mut dyn Reader,
    tenant_id: &str,
    project_id: &str,
    key: &NameOrId,
) -> Result<Option<Instance>> {
    let rows = match key {
        NameOrId::Id(id) => r.query(
            &format!("SELECT {COLS} {FROM} WHERE i.id = ? AND i.tenant_id = ? AND i.project_id = ?"),
            vals![id, tenant_id, project_id],
        )?,
        // The live instance of that name, else the one released last (its
        // sanitization record stays readable by name).
        NameOrId::Name(n) => r.query(
            &format!(
                "SELECT {COLS} {FROM} WHERE i.name = ? AND i.tenant_id = ? AND i.project_id = ? \
                 ORDER BY CASE WHEN i.state = 'released' THEN 1 ELSE 0 END, i.updated_at DESC LIMIT 1"
            ),
            vals![n.as_str(), tenant_id, project_id],
        )?,
    };
    rows.first().map(from_row).transpose()
}

/// How many of a project's instances are in each state (cheap to poll).
pub fn state_counts(
    r: &mut dyn Reader,
    tenant_id: &str,
    project_id: &str,
) -> Result<Vec<(InstanceState, i64)>> {
    r.query(
        "SELECT state, COUNT(*) FROM instances WHERE tenant_id = ? AND project_id = ? GROUP BY state ORDER BY state",
        vals![tenant_id, project_id],
    )?
    .iter()
    .map(|row| {
        let state = row.str(0)?;
        let state = InstanceState::parse(&state)
            .ok_or_else(|| Error::internal(format!("bad instance state {state:?}")))?;
        Ok((state, row.i64(1)?))
    })
    .collect()
}

pub fn list(r: &mut dyn Reader, tenant_id: &str, project_id: &str) -> Result<Vec<Instance>> {
    r.query(
        &format!("SELECT {COLS} {FROM} WHERE i.tenant_id = ? AND i.project_id = ? ORDER BY i.created_at, i.name"),
        vals![tenant_id, project_id],
    )?
    .iter()
    .map(from_row)
    .collect()
}

/// The instance a node is working for: pending or live, not released.
pub fn live_on_node(r: &mut dyn Reader, node_id: &str) -> Result<Option<Instance>> {
    let rows = r.query(
        &format!("SELECT {COLS} {FROM} WHERE i.node_id = ? AND i.state <> 'released' ORDER BY i.created_at LIMIT 1"),
        vals![node_id],
    )?;
    rows.first().map(from_row).transpose()
}

/// The nodes with a live (not released) instance on them.
pub fn nodes_with_live_instances(r: &mut dyn Reader) -> Result<std::collections::HashSet<String>> {
    r.query(
        "SELECT DISTINCT node_id FROM instances WHERE node_id IS NOT NULL AND state <> 'released'",
        &[],
    )?
    .iter()
    .map(|row| row.str(0))
    .collect()
}

/// Every node a tenant holds through a live instance it has not asked to
/// release, as (tenant id, node id), ordered: the members of the tenants'
/// InfiniBand partitions.
pub fn tenant_nodes(r: &mut dyn Reader) -> Result<Vec<(String, String)>> {
    r.query(
        "SELECT tenant_id, node_id FROM instances \
         WHERE state IN ('pending', 'provisioning', 'ready') AND release_requested_at = 0 \
         ORDER BY tenant_id, node_id",
        &[],
    )?
    .iter()
    .map(|r| Ok((r.str(0)?, r.str(1)?)))
    .collect()
}

/// Whether the tenant asked to release it.
pub fn release_requested(r: &mut dyn Reader, id: &str) -> Result<bool> {
    let rows = r.query("SELECT release_requested_at FROM instances WHERE id = ?", vals![id])?;
    Ok(rows.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0) > 0)
}

/// The user-data the tenant gave.
pub fn user_data(r: &mut dyn Reader, id: &str) -> Result<Option<String>> {
    let rows = r.query("SELECT user_data FROM instances WHERE id = ?", vals![id])?;
    rows.first().map(|r| r.opt_str(0)).transpose().map(Option::flatten)
}

fn power_of(json: Option<String>) -> Result<Option<InstancePower>> {
    json.map(|s| serde_json::from_str(&s).map_err(json_err)).transpose()
}

/// What an active node's step acts on, in one read.
pub struct ActiveIntent {
    /// The tenant released the instance.
    pub released: bool,
    /// A rebuild asked: the image to provision.
    pub rebuild_image_id: Option<String>,
    /// Its power actions (empty when none).
    pub power: InstancePower,
}

pub fn active_intent(r: &mut dyn Reader, id: &str) -> Result<ActiveIntent> {
    let rows = r.query(
        "SELECT release_requested_at, power, rebuild_image_id FROM instances WHERE id = ?",
        vals![id],
    )?;
    let Some(row) = rows.first() else { return Err(Error::not_found("instance", id)) };
    Ok(ActiveIntent {
        released: row.i64(0)? > 0,
        power: power_of(row.opt_str(1)?)?.unwrap_or_default(),
        rebuild_image_id: row.opt_str(2)?,
    })
}

/// Records whether the tenant's own power action left the node off (an
/// `off` done) or on (`on`, `reboot` done, a rebuild started).
pub fn set_powered_off(w: &mut dyn Writer, id: &str, off: bool) -> Result<()> {
    let at = if off { now_micros() } else { 0 };
    w.execute("UPDATE instances SET powered_off_at = ? WHERE id = ?", vals![at, id])?;
    Ok(())
}

/// Records a rebuild of the instance with `image_id`, and new SSH keys
/// and user-data where given (the API).
pub fn request_rebuild(
    w: &mut dyn Writer,
    id: &str,
    image_id: &str,
    ssh_keys: Option<&[String]>,
    user_data: Option<&str>,
) -> Result<()> {
    let keys = ssh_keys.map(serde_json::to_string).transpose().map_err(json_err)?;
    w.execute(
        "UPDATE instances SET rebuild_image_id = ?, rebuild_ssh_keys = ?, rebuild_user_data = ?, \
         generation = generation + 1, updated_at = ? WHERE id = ?",
        vals![image_id, keys, user_data, now_micros(), id],
    )?;
    Ok(())
}

/// Starts the rebuild (the lifecycle controller, in the transition that
/// takes the node back to provisioning): the instance's image, SSH keys
/// and user-data become the ones asked, the request is cleared, and a
/// power action not sent yet is dropped (the rebuild resets the node
/// anyway).
pub fn start_rebuild(w: &mut dyn Writer, id: &str, image_id: &str) -> Result<()> {
    let power = active_intent(w, id)?.power;
    let power = InstancePower { pending: power.pending.filter(|p| p.sent_at.is_some()), ..power };
    let json = serde_json::to_string(&power).map_err(json_err)?;
    // The image, keys and user-data from the row as it is now (one
    // statement): a rebuild asked again since the caller read `image_id`
    // boots its own image with its own keys.
    w.execute(
        "UPDATE instances SET image_id = COALESCE(rebuild_image_id, ?), rebuild_image_id = NULL, \
         power = ?, power_pending = ?, \
         powered_off_at = 0, ssh_keys = COALESCE(rebuild_ssh_keys, ssh_keys), \
         user_data = CASE WHEN rebuild_user_data IS NULL THEN user_data \
         ELSE NULLIF(rebuild_user_data, '') END, rebuild_ssh_keys = NULL, \
         rebuild_user_data = NULL, generation = generation + 1, updated_at = ? WHERE id = ?",
        vals![image_id, json, i64::from(power.pending.is_some()), now_micros(), id],
    )?;
    Ok(())
}

/// Writes an instance's power actions (the conditions follow).
const SET_POWER: &str = "UPDATE instances SET power = ?, power_pending = ?, \
                         generation = generation + 1, updated_at = ? WHERE id = ?";

/// Sets the instance's power actions (the API records a request; a
/// release drops it).
pub fn set_power(w: &mut dyn Writer, id: &str, power: &InstancePower) -> Result<()> {
    let json = serde_json::to_string(power).map_err(json_err)?;
    let pending = i64::from(power.pending.is_some());
    w.execute(SET_POWER, vals![json, pending, now_micros(), id])?;
    Ok(())
}

/// Records a tenant's power request `new` if the instance's power actions
/// are still `seen` (`None`: none yet), as the API read them: a request
/// the controller marked sent meanwhile is not overwritten (at READ
/// COMMITTED the API's read would not have seen it). Whether it did.
pub fn request_power(
    w: &mut dyn Writer,
    id: &str,
    seen: Option<&InstancePower>,
    new: &InstancePower,
) -> Result<bool> {
    let json = serde_json::to_string(new).map_err(json_err)?;
    let pending = i64::from(new.pending.is_some());
    let n = match seen {
        Some(seen) => {
            let seen = serde_json::to_string(seen).map_err(json_err)?;
            w.execute(
                &format!("{SET_POWER} AND power = ?"),
                vals![json, pending, now_micros(), id, seen],
            )?
        }
        None => w.execute(
            &format!("{SET_POWER} AND power IS NULL"),
            vals![json, pending, now_micros(), id],
        )?,
    };
    Ok(n == 1)
}

/// Sets the instance's power actions to `new` if they are still `seen`
/// (the lifecycle controller marks a request sent, then records it done;
/// a request the tenant replaced in between is not overwritten). Whether
/// it did.
pub fn swap_power(
    w: &mut dyn Writer,
    id: &str,
    seen: &InstancePower,
    new: &InstancePower,
) -> Result<bool> {
    request_power(w, id, Some(seen), new)
}

/// Drops what the tenant asked of its node and no longer applies once the
/// release starts: a rebuild, a power action (sent or not: the release
/// resets the node). The last power action done stays.
pub fn drop_requests(w: &mut dyn Writer, id: &str) -> Result<()> {
    w.execute(
        "UPDATE instances SET rebuild_image_id = NULL, rebuild_ssh_keys = NULL, \
         rebuild_user_data = NULL WHERE id = ? AND rebuild_image_id IS NOT NULL",
        vals![id],
    )?;
    let rows =
        w.query("SELECT power FROM instances WHERE id = ? AND power_pending = 1", vals![id])?;
    let Some(row) = rows.first() else { return Ok(()) };
    let power = power_of(row.opt_str(0)?)?.unwrap_or_default();
    set_power(w, id, &InstancePower { pending: None, ..power })
}

/// Records the tenant's intent to release (idempotent: the first time counts).
pub fn request_release(w: &mut dyn Writer, id: &str) -> Result<()> {
    let now = now_micros();
    w.execute(
        "UPDATE instances SET release_requested_at = ?, generation = generation + 1, updated_at = ? WHERE id = ? AND release_requested_at = 0",
        vals![now, now, id],
    )?;
    Ok(())
}

/// Sets the state (the lifecycle controller's write path). The first
/// `ready` is remembered (`ever_ready`).
pub fn set_state(
    w: &mut dyn Writer,
    id: &str,
    state: InstanceState,
    reason: Option<&str>,
) -> Result<()> {
    let now = now_micros();
    let ready = i64::from(state == InstanceState::Ready);
    w.execute(
        "UPDATE instances SET state = ?, reason = ?, generation = generation + 1, updated_at = ?, \
         ready_at = CASE WHEN ? = 1 AND ready_at = 0 THEN ? ELSE ready_at END WHERE id = ?",
        vals![state.as_str(), reason, now, ready, now, id],
    )?;
    Ok(())
}

/// Whether the instance was ever handed over (ready): its node may hold
/// the tenant's data, so it is never placed on another node.
pub fn ever_ready(r: &mut dyn Reader, id: &str) -> Result<bool> {
    let rows = r.query("SELECT ready_at FROM instances WHERE id = ?", vals![id])?;
    Ok(rows.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0) > 0)
}

/// Moves a pending instance to another node and allocation (its node failed
/// before it was handed over), counted in `replacements`, if it is still
/// at `generation` (as read): whether it moved. Two replicas' controllers
/// moving it at once: one moves it, the other's transaction must roll back.
pub fn place_again(
    w: &mut dyn Writer,
    (id, generation): (&str, i64),
    node_id: &str,
    allocation_id: &str,
    reason: &str,
) -> Result<bool> {
    let n = w.execute(
        "UPDATE instances SET node_id = ?, allocation_id = ?, reason = ?, \
         replacements = replacements + 1, generation = generation + 1, updated_at = ? \
         WHERE id = ? AND generation = ? AND state = 'pending'",
        vals![node_id, allocation_id, reason, now_micros(), id, generation],
    )?;
    Ok(n == 1)
}

/// The name of the live instance an allocation backs, if any.
pub fn live_for_allocation(r: &mut dyn Reader, allocation_id: &str) -> Result<Option<String>> {
    let rows = r.query(
        "SELECT name FROM instances WHERE allocation_id = ? AND state <> 'released'",
        vals![allocation_id],
    )?;
    rows.first().map(|r| r.str(0)).transpose()
}
