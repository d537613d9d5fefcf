//! The boot service's and the agent API's request handlers. Synchronous
//! (the transport runs them on blocking threads); they record what nodes
//! report and never change a node's lifecycle state.

use super::{hash, new_secret, render};
use crate::dispatch::App;
use neocloud_common::{time::now_micros, Error, Result};
use neocloud_store::{agents, audit, images, instances, nodes, Writer};
use neocloud_types::{
    AgentHeartbeat, AgentHeartbeatReply, AgentRegister, AgentRegistered, AgentStepResult,
    GpuStatus, ImagePurpose, NodeLifecycle,
};

/// The longest heartbeat interval a sanitizer agent is given.
pub const SANITIZER_HEARTBEAT_MS: u64 = 1000;

/// An agent's `last_seen_at` is written at most this often (unless its
/// health changed).
pub const LAST_SEEN_GRANULARITY_MICROS: i64 = 5_000_000;

/// How long a tenant agent may go unheard before the metrics count it
/// silent: three heartbeats missed, on top of how stale `last_seen_at` may
/// be.
pub fn tenant_agent_silence(cfg: &BootConfig) -> std::time::Duration {
    std::time::Duration::from_micros(LAST_SEEN_GRANULARITY_MICROS as u64)
        + std::time::Duration::from_millis(cfg.heartbeat_interval_ms.saturating_mul(3))
}

/// Where nodes reach the control plane, and how often agents report.
#[derive(Debug, Clone)]
pub struct BootConfig {
    pub base_url: String,
    /// Where agents reach the agent API (`agent_api_url`, else `base_url`).
    pub agent_api_url: String,
    pub heartbeat_interval_ms: u64,
    /// The iPXE ISO virtual-media boots insert (its embedded script chains
    /// to `{base_url}/boot/ipxe?mac=...`); none: nodes boot by PXE only.
    pub virtual_media_iso_url: Option<String>,
    /// The iPXE EFI binary UEFI HTTP boots fetch (the same embedded script).
    pub uefi_http_boot_url: Option<String>,
    /// Per-node ISOs (`per_node_iso`), for nodes with a `boot_network`.
    pub node_isos: Option<super::iso::NodeIsos>,
    /// The TPM manufacturers' CAs (`tpm_ek_ca_pem`): a sanitizer records
    /// a node's TPM identity only with an EK certificate from one of them.
    pub tpm_ek_trust: Option<std::sync::Arc<crate::ek_certificate::EkTrust>>,
}

/// A plain-text answer (iPXE script or cloud-init document).
pub struct Text {
    pub status: u16,
    pub body: String,
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T> {
    crate::api::parse_body(body)
}

/// The node's boot token, opened, while the node works for that token's
/// instance and purpose; `None` when it has nothing to boot.
fn current_boot(
    app: &App,
    r: &mut dyn neocloud_store::Reader,
    node: &neocloud_types::Node,
) -> Result<Option<(agents::BootToken, String)>> {
    let Some(tok) = agents::boot_token(r, &node.id)? else { return Ok(None) };
    let live = match (&node.lifecycle, tok.purpose) {
        (NodeLifecycle::Provisioning { instance_id, .. }, ImagePurpose::Tenant) => {
            instance_id == &tok.instance_id
        }
        (NodeLifecycle::Releasing { instance_id, .. }, ImagePurpose::Sanitizer) => {
            agents::sanitizer_key(instance_id.as_deref()) == tok.instance_id
        }
        (
            NodeLifecycle::Enrolling
            | NodeLifecycle::Inspecting
            | NodeLifecycle::Available
            | NodeLifecycle::Provisioning { .. }
            | NodeLifecycle::Active { .. }
            | NodeLifecycle::Releasing { .. }
            | NodeLifecycle::Sanitizing { .. }
            | NodeLifecycle::Maintenance
            | NodeLifecycle::Failed { .. },
            ImagePurpose::Tenant | ImagePurpose::Sanitizer,
        ) => false,
    };
    if !live {
        return Ok(None);
    }
    let token = app.secrets.open(&tok.token_sealed)?;
    Ok(Some((tok, token)))
}

/// `GET /boot/ipxe?mac=`: the script for the node owning the MAC.
pub fn ipxe(app: &App, cfg: &BootConfig, mac: Option<&str>) -> Result<Text> {
    let mac = mac.filter(|m| neocloud_types::mac_octets(m).is_some()).ok_or_else(|| {
        Error::invalid_request("mac", "a MAC address (aa:bb:cc:dd:ee:ff) is required")
    })?;
    app.store.read(|r| {
        let Some(node) = nodes::by_mac(r, mac)? else {
            return Ok(Text { status: 404, body: render::ipxe_local("unknown MAC address") });
        };
        let Some((tok, token)) = current_boot(app, r, &node)? else {
            return Ok(Text {
                status: 200,
                body: render::ipxe_local(
                    "no network boot for this node now: booting the local disk",
                ),
            });
        };
        let image = match tok.purpose {
            ImagePurpose::Tenant => {
                let i = instances::by_id(r, &tok.instance_id)?;
                images::get(r, &i.image_id)?
            }
            ImagePurpose::Sanitizer => images::sanitizer(r)?
                .ok_or_else(|| Error::conflict("no sanitizer image in the catalog"))?,
        };
        // A node with a static provisioning address: its image's kernel
        // gets it too (a stored one was checked when it was set).
        let address = node.boot_network.as_ref().and_then(|b| b.check().ok());
        Ok(Text {
            status: 200,
            body: render::ipxe(&render::Boot {
                base_url: &cfg.base_url,
                api_url: &cfg.agent_api_url,
                token: &token,
                image: &image,
                address: address.as_ref(),
            }),
        })
    })
}

/// Whether the node still works for the token's instance and purpose:
/// cloud-init may read its metadata again on every boot of the instance
/// (tenant token), or of the sanitizer (sanitizer token). A release
/// replaces the tenant's token; a finished sanitization deletes the token.
fn serves_metadata(l: &NodeLifecycle, tok: &agents::BootToken) -> bool {
    match (l, tok.purpose) {
        (
            NodeLifecycle::Provisioning { instance_id, .. }
            | NodeLifecycle::Active { instance_id, .. },
            ImagePurpose::Tenant,
        ) => instance_id == &tok.instance_id,
        (
            NodeLifecycle::Releasing { instance_id, .. }
            | NodeLifecycle::Sanitizing { instance_id, .. },
            ImagePurpose::Sanitizer,
        ) => agents::sanitizer_key(instance_id.as_deref()) == tok.instance_id,
        (
            NodeLifecycle::Enrolling
            | NodeLifecycle::Inspecting
            | NodeLifecycle::Available
            | NodeLifecycle::Provisioning { .. }
            | NodeLifecycle::Active { .. }
            | NodeLifecycle::Releasing { .. }
            | NodeLifecycle::Sanitizing { .. }
            | NodeLifecycle::Maintenance
            | NodeLifecycle::Failed { .. },
            ImagePurpose::Tenant | ImagePurpose::Sanitizer,
        ) => false,
    }
}

/// `GET /boot/vmedia/{node}/{key}.iso`: the node's own ISO (its static
/// provisioning address), built on first use. Only the current key is
/// served: an ISO of an address the node no longer has is not found. It
/// holds no secret (the address, the MAC, the boot service's URL).
pub fn node_iso(
    app: &App,
    cfg: &BootConfig,
    node_id: &str,
    file: &str,
) -> Result<std::path::PathBuf> {
    let not_found = || Error::not_found("boot ISO", file);
    let isos = cfg.node_isos.as_ref().ok_or_else(not_found)?;
    let key = file.strip_suffix(".iso").ok_or_else(not_found)?;
    let node = app.store.read(|r| {
        match nodes::lookup(r, &neocloud_common::NameOrId::Id(node_id.to_string()))? {
            Some(n) => Ok(n),
            None => Err(not_found()),
        }
    })?;
    let iso = isos.for_network(&node.id, node.boot_network.as_ref().ok_or_else(not_found)?)?;
    if iso.key != key || node.id != node_id {
        return Err(not_found());
    }
    isos.build(&iso)
}

/// The node's ISO, or the part of it a `Range` header asks (read from the
/// file alone: a BMC reads a 2 MB ISO in tens of ranges): what was asked,
/// the ISO's length, the bytes.
pub fn node_iso_part(
    app: &App,
    cfg: &BootConfig,
    node_id: &str,
    file: &str,
    range: Option<&str>,
) -> Result<(ByteRange, u64, Vec<u8>)> {
    use std::io::{Read, Seek, SeekFrom};
    let path = node_iso(app, cfg, node_id, file)?;
    let io = |e: std::io::Error| Error::internal(format!("{}: {e}", path.display()));
    let mut f = std::fs::File::open(&path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let asked = byte_range(range, len);
    let bytes = match asked {
        ByteRange::Whole => {
            let mut b = Vec::with_capacity(len as usize);
            f.read_to_end(&mut b).map_err(io)?;
            b
        }
        ByteRange::Part(first, last) => {
            let mut b = vec![0; (last - first + 1) as usize];
            f.seek(SeekFrom::Start(first)).map_err(io)?;
            f.read_exact(&mut b).map_err(io)?;
            b
        }
        ByteRange::Unsatisfiable => Vec::new(),
    };
    Ok((asked, len, bytes))
}

/// What a `Range` header asks of a body (RFC 9110 14.2). BMCs read
/// virtual media in ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// The whole body: no header, or one this server ignores (several
    /// ranges, another unit, malformed).
    Whole,
    /// Bytes `first..=last`.
    Part(u64, u64),
    /// Nothing the body has (416).
    Unsatisfiable,
}

/// The range a `Range` header asks of a body of `len` bytes.
pub fn byte_range(header: Option<&str>, len: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return ByteRange::Whole };
    let (a, b) = (a.trim(), b.trim());
    let parsed = |s: &str| s.parse::<u64>().ok();
    match (a.is_empty(), b.is_empty()) {
        // The last n bytes.
        (true, false) => match parsed(b) {
            Some(n) if n > 0 && len > 0 => ByteRange::Part(len - n.min(len), len - 1),
            Some(_) => ByteRange::Unsatisfiable,
            None => ByteRange::Whole,
        },
        (false, _) => {
            let Some(first) = parsed(a) else { return ByteRange::Whole };
            let last = if b.is_empty() { Some(u64::MAX) } else { parsed(b) };
            match last {
                None => ByteRange::Whole,
                Some(last) if last < first => ByteRange::Whole,
                Some(_) if first >= len => ByteRange::Unsatisfiable,
                Some(last) => ByteRange::Part(first, last.min(len - 1)),
            }
        }
        (true, true) => ByteRange::Whole,
    }
}

/// `GET /boot/nocloud/{token}/{doc}`.
pub fn nocloud(app: &App, cfg: &BootConfig, token: &str, doc: &str) -> Result<Text> {
    app.store.read(|r| {
        let tok = agents::boot_token_by_hash(r, &hash(token))?
            .ok_or_else(|| Error::not_found("boot token", "(given)"))?;
        let node = nodes::get(r, &tok.node_id)?;
        if !serves_metadata(&node.lifecycle, &tok) {
            return Err(Error::not_found("boot token", "(given)"));
        }
        let body = match (doc, tok.purpose) {
            ("meta-data", ImagePurpose::Tenant) => {
                let inst = instances::by_id(r, &tok.instance_id)?;
                render::meta_data(&inst.id, &inst.name, &inst.ssh_keys)
            }
            // The sanitizer gets no tenant data at all. Its instance id
            // changes with every sanitization (cloud-init runs afresh).
            ("meta-data", ImagePurpose::Sanitizer) => {
                let key = if tok.instance_id == agents::NO_INSTANCE {
                    format!("first-{}", node.id)
                } else {
                    tok.instance_id.clone()
                };
                render::meta_data(&format!("sanitize-{key}"), &format!("sanitize-{}", node.id), &[])
            }
            ("user-data", ImagePurpose::Tenant) => {
                render::user_data(instances::user_data(r, &tok.instance_id)?.as_deref())
            }
            ("user-data", ImagePurpose::Sanitizer) => render::user_data(None),
            ("vendor-data", ImagePurpose::Tenant | ImagePurpose::Sanitizer) => {
                render::vendor_data(&cfg.agent_api_url, token)
            }
            // Only a node with a static provisioning address has one (the
            // others keep what DHCP gives them).
            ("network-config", ImagePurpose::Tenant | ImagePurpose::Sanitizer) => {
                match node.boot_network.as_ref().map(|b| b.check()).transpose()? {
                    Some(a) => render::network_config(&a),
                    None => return Err(Error::not_found("nocloud document", doc)),
                }
            }
            (other, _) => return Err(Error::not_found("nocloud document", other)),
        };
        Ok(Text { status: 200, body })
    })
}

pub(super) fn agent_event(
    w: &mut dyn Writer,
    node_id: &str,
    action: &str,
    outcome: &str,
) -> Result<()> {
    audit::append(
        w,
        audit::PROVIDER_CHAIN,
        &audit::NewEvent {
            time: now_micros(),
            actor: "agent".into(),
            actor_name: format!("agent@{node_id}"),
            token_id: None,
            role: None,
            tenant_id: None,
            action: action.into(),
            target: format!("/v1/nodes/{node_id}"),
            outcome: outcome.into(),
            status: 200,
            request_id: neocloud_common::new_id(),
        },
    )
    .map(|_| ())
}

/// `POST /agent/v1/register`: the one-time token for the agent's own
/// credential. The token must be the node's current one, unused, and the
/// node must be booting for it. The agent may propose its credential; the
/// same agent asking again with it (its answer was lost) gets the same
/// answer, while anyone else presenting the used token is refused.
pub fn register(app: &App, cfg: &BootConfig, peer: &str, body: &[u8]) -> Result<AgentRegistered> {
    let p: AgentRegister = parse(body)?;
    app.anonymous_limiter.check(peer)?;
    let credential = match &p.credential {
        Some(c) if c.len() == 64 && c.chars().all(|c| c.is_ascii_hexdigit()) => c.clone(),
        Some(_) => {
            return Err(Error::invalid_request(
                "credential",
                "64 hex digits from a secure random source",
            ))
        }
        None => new_secret()?,
    };
    let credential_hash = hash(&credential);
    let refused =
        || Error::Unauthenticated { internal: "boot token unknown, used or stale".into() };
    let (rec, new) = app.store.write(|w| {
        let h = hash(&p.token);
        let Some(tok) = agents::boot_token_by_hash(w, &h)? else { return Err(refused()) };
        if tok.used_at.is_some() {
            // A retry by the agent that registered (it proves it with the
            // credential it proposed); its node may have moved on since.
            return match agents::agent_by_credential(w, &credential_hash)? {
                Some(a)
                    if p.credential.is_some()
                        && a.node_id == tok.node_id
                        && a.instance_id == tok.instance_id
                        && a.purpose == tok.purpose =>
                {
                    Ok((a, false))
                }
                Some(_) | None => Err(refused()),
            };
        }
        let node = nodes::get(w, &tok.node_id)?;
        if current_boot(app, w, &node)?.is_none() || !agents::consume_boot_token(w, &h)? {
            return Err(refused());
        }
        if agents::agent_by_credential(w, &credential_hash)?.is_some() {
            // Another agent's (a copied image's fixed value): refused before
            // the insert its uniqueness would fail.
            return Err(Error::invalid_request(
                "credential",
                "is another agent's: propose 64 hex digits from a secure random source",
            ));
        }
        let rec = agents::create_agent(w, &tok, &credential_hash, &p.inventory)?;
        agent_event(w, &node.id, &format!("agent_register_{}", tok.purpose.as_str()), "success")?;
        Ok((rec, true))
    })?;
    if new {
        app.lifecycle.nudge(&rec.node_id);
    }
    Ok(AgentRegistered {
        agent_id: rec.id,
        node_id: rec.node_id,
        credential,
        // The sanitizer is a short-lived worker waiting for its steps: it polls often.
        heartbeat_interval_ms: match rec.purpose {
            ImagePurpose::Sanitizer => cfg.heartbeat_interval_ms.min(SANITIZER_HEARTBEAT_MS),
            ImagePurpose::Tenant => cfg.heartbeat_interval_ms,
        },
    })
}

pub(super) fn authenticate(app: &App, authorization: Option<&str>) -> Result<agents::AgentRecord> {
    let cred = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| Error::Unauthenticated { internal: "no agent credential".into() })?;
    app.store.read(|r| agents::agent_by_credential(r, &hash(cred.trim())))?.ok_or_else(|| {
        Error::Unauthenticated { internal: "agent credential unknown or revoked".into() }
    })
}

/// A heartbeat's answer, and whether to hold it: a sanitizer whose steps
/// are not queued yet gets them with the controller's next step for its
/// node, so its heartbeat waits for them (a long poll) rather than have a
/// thousand sanitizers poll.
pub struct Heartbeat {
    pub reply: AgentHeartbeatReply,
    /// The agent whose steps to wait for, and the signal that they were
    /// queued (see
    /// [`crate::controllers::lifecycle::LifecycleController::steps_signal`]).
    pub await_steps: Option<(String, std::sync::Arc<tokio::sync::Notify>)>,
}

/// How long a sanitizer's heartbeat waits for its steps to be queued.
pub const AWAIT_STEPS_MS: u64 = SANITIZER_HEARTBEAT_MS;

/// `POST /agent/v1/heartbeat`: records health; answers the steps waiting.
pub fn heartbeat(app: &App, authorization: Option<&str>, body: &[u8]) -> Result<Heartbeat> {
    let p: AgentHeartbeat = parse(body)?;
    let agent = authenticate(app, authorization)?;
    let health: String = p.health.chars().take(512).collect();
    let gpu_status = bounded_gpu_status(p.gpu_status);
    // Taken before reading: steps queued from now on signal it.
    let signal = match agent.purpose {
        ImagePurpose::Sanitizer => Some(app.lifecycle.steps_signal(&agent.id)),
        ImagePurpose::Tenant => None,
    };
    // Nothing new to record (same health, seen lately): a read. A thousand
    // sanitizers polling each second must not queue on the store's writer.
    let fresh = now_micros() - agent.last_seen_at < LAST_SEEN_GRANULARITY_MICROS;
    // The steps waiting, and (for a sanitizer with none) whether any were
    // queued at all: a tenant agent's heartbeat needs only the first.
    let steps_of = |r: &mut dyn neocloud_store::Reader| {
        let steps = agents::pending_steps(r, &agent.id)?;
        let queued = !steps.is_empty() || (signal.is_some() && agents::steps_queued(r, &agent.id)?);
        Ok((steps, queued))
    };
    let read = if fresh && health == agent.health {
        app.store.read(steps_of)
    } else {
        app.store.write(|w| {
            agents::heartbeat(w, &agent.id, &health, &gpu_status)?;
            if health != agent.health {
                // The node turned unhealthy, or well again: the provider's
                // trail shows when.
                let outcome = if health == "ok" { "success" } else { "failed" };
                agent_event(w, &agent.node_id, "agent_health", outcome)?;
            }
            steps_of(w)
        })
    };
    let (steps, queued) = read.inspect_err(|_| app.lifecycle.forget_steps_signal(&agent.id))?;
    let (await_steps, next_heartbeat_ms) = match signal {
        Some(signal) if !queued => (Some((agent.id.clone(), signal)), None),
        Some(_) => {
            app.lifecycle.forget_steps_signal(&agent.id);
            // Every step reported: nothing more will come for this
            // sanitizer while the controller finishes over the BMC, so it
            // heartbeats at the tenants' pace (a thousand of them each
            // second cost more than the rest of the release).
            (None, steps.is_empty().then_some(app.boot.heartbeat_interval_ms))
        }
        None => (None, None),
    };
    Ok(Heartbeat { reply: AgentHeartbeatReply { steps, next_heartbeat_ms }, await_steps })
}

/// At most 64 GPUs, each with at most 8 problems of at most 256
/// characters and a uuid of at most 96: what an agent reports is stored
/// and shown, so its size is the server's to bound.
fn bounded_gpu_status(mut gpus: Vec<GpuStatus>) -> Vec<GpuStatus> {
    gpus.truncate(64);
    for g in &mut gpus {
        g.uuid = g.uuid.chars().take(96).collect();
        g.problems.truncate(8);
        for p in &mut g.problems {
            *p = p.chars().take(256).collect();
        }
    }
    gpus
}

/// The steps waiting for an authenticated agent (the end of a held heartbeat).
pub fn pending_steps(app: &App, agent_id: &str) -> Result<AgentHeartbeatReply> {
    let steps = app.store.read(|r| agents::pending_steps(r, agent_id))?;
    Ok(AgentHeartbeatReply { steps, next_heartbeat_ms: None })
}

/// `POST /agent/v1/steps/{id}`: records a step's result (once; a retried
/// report of a done step is accepted and changes nothing).
pub fn step_result(
    app: &App,
    authorization: Option<&str>,
    step_id: &str,
    body: &[u8],
) -> Result<()> {
    let p: AgentStepResult = parse(body)?;
    let agent = authenticate(app, authorization)?;
    let last = app.store.write(|w| {
        if agents::complete_step(w, &agent.id, step_id, &p)? {
            agent_event(w, &agent.node_id, "agent_step", if p.ok { "success" } else { "failed" })?;
        } else if !agents::step_exists(w, &agent.id, step_id)? {
            return Err(Error::not_found("step", step_id));
        }
        Ok(agents::steps_left(w, &agent.id)? == 0)
    })?;
    // The controller acts only once every step is reported (the agent runs
    // them all whatever each one's outcome): a report with steps still to
    // come wakes nothing.
    if last {
        app.lifecycle.nudge(&agent.node_id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{byte_range, ByteRange};

    #[test]
    fn byte_ranges_as_bmcs_ask_them() {
        use ByteRange::{Part, Unsatisfiable, Whole};
        assert_eq!(byte_range(None, 100), Whole);
        assert_eq!(byte_range(Some("bytes=0-9"), 100), Part(0, 9));
        assert_eq!(byte_range(Some("bytes=90-200"), 100), Part(90, 99));
        assert_eq!(byte_range(Some("bytes=50-"), 100), Part(50, 99));
        assert_eq!(byte_range(Some("bytes=-10"), 100), Part(90, 99));
        assert_eq!(byte_range(Some("bytes=-500"), 100), Part(0, 99));
        // Nothing it has: 416.
        assert_eq!(byte_range(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=0-"), 0), Unsatisfiable);
        // Ignored (the whole body): several ranges, other units, malformed.
        for h in ["bytes=0-1,5-6", "items=0-1", "bytes=9-1", "bytes=a-b", "bytes=-", "bytes"] {
            assert_eq!(byte_range(Some(h), 100), Whole, "{h}");
        }
    }
}
