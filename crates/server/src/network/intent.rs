//! A fabric's whole intent, loaded from the store in the fabric core's
//! terms, and the ledger brought up to date under the fabric's lock.

use super::model::{self, Topology};
use neocloud_common::{Error, Result};
use neocloud_fabric::{
    allocate, Allocations, Attachment, FloatingIp, Intent, NatGateway, Network, PortAllow,
    PortRange, Protocol, SecurityRule, TenantChange, TenantKey, Vpc,
};
use neocloud_store::fabrics::{self, FabricRecord};
use neocloud_store::{attachments, vpcs, Reader, Writer};
use neocloud_types::{IpProtocol, Ports};

/// Everything needed to plan a fabric.
pub struct Loaded {
    pub record: FabricRecord,
    pub topo: Topology,
    pub intent: Intent,
    pub ledger: Allocations,
}

pub fn protocol(p: IpProtocol) -> Protocol {
    match p {
        IpProtocol::Tcp => Protocol::Tcp,
        IpProtocol::Udp => Protocol::Udp,
        IpProtocol::Icmp => Protocol::Icmp,
        IpProtocol::Any => Protocol::Any,
    }
}

pub fn ports(p: Option<Ports>) -> Option<PortRange> {
    p.map(|p| PortRange { first: p.first, last: p.last })
}

fn stored<T>(what: &str, v: std::result::Result<T, Error>) -> Result<T> {
    v.map_err(|e| Error::internal(format!("stored {what}: {e:?}")))
}

/// A VPC as the fabric core sees it, and its NAT gateway if it has one.
pub fn vpc(v: &neocloud_types::Vpc) -> (Vpc, Option<NatGateway>) {
    let nat = v.nat_gateway.then(|| NatGateway { vpc: v.id.clone(), public_ip: None });
    let vpc = Vpc {
        id: v.id.clone(),
        tenant: v.tenant_id.clone(),
        name: v.name.clone(),
        generation: v.generation as u64,
    };
    (vpc, nat)
}

pub fn network(n: &neocloud_types::Network) -> Result<Network> {
    Ok(Network {
        cidr: stored("network cidr", model::ipv4_net("cidr", &n.cidr))?,
        gateway: Some(stored("network gateway", model::ipv4("gateway", &n.gateway))?),
        id: n.id.clone(),
        vpc: n.vpc_id.clone(),
        name: n.name.clone(),
    })
}

pub fn attachment(a: &attachments::AttachmentRecord) -> Result<Attachment> {
    let ip = match &a.ip {
        Some(ip) => Some(stored("attachment ip", model::ipv4("ip", ip))?),
        None => None,
    };
    Ok(Attachment {
        id: a.id.clone(),
        network: a.network_id.clone(),
        node: a.node_id.clone(),
        nic: a.nic.clone(),
        ip,
    })
}

pub fn rule(s: &neocloud_types::SecurityRule) -> SecurityRule {
    SecurityRule {
        id: s.id.clone(),
        from: s.from_network_id.clone(),
        to: s.to_network_id.clone(),
        protocol: protocol(s.protocol),
        ports: ports(s.ports),
    }
}

pub fn floating_ip(f: &neocloud_types::FloatingIp) -> Result<FloatingIp> {
    Ok(FloatingIp {
        public_ip: stored("floating ip", model::ipv4("public_ip", &f.public_ip))?,
        id: f.id.clone(),
        attachment: f.attachment_id.clone(),
        allow: f
            .allow
            .iter()
            .map(|a| PortAllow { protocol: protocol(a.protocol), ports: ports(a.ports) })
            .collect(),
    })
}

/// Deletes an attachment (and the floating IPs mapped to it): answers the
/// changes that makes to the fabric's intent.
pub fn detach(w: &mut dyn Writer, attachment_id: &str) -> Result<Vec<TenantChange>> {
    let fips = attachments::delete_attachment(w, attachment_id)?;
    let mut out: Vec<TenantChange> =
        fips.into_iter().map(|f| TenantChange::Remove(TenantKey::FloatingIp(f))).collect();
    out.push(TenantChange::Remove(TenantKey::Attachment(attachment_id.to_string())));
    Ok(out)
}

/// Loads a fabric and everything its tenants asked of it.
pub fn load(r: &mut dyn Reader, fabric_id: &str) -> Result<Loaded> {
    let record = fabrics::get(r, fabric_id)?;
    let topo = stored("fabric document", model::topology(&record.name, &record.spec))?;
    let ledger = super::ledger::load(r, fabric_id)?;
    let mut intent = Intent::default();
    for v in vpcs::vpcs_of_fabric(r, fabric_id)? {
        let (v, nat) = vpc(&v);
        intent.nat_gateways.extend(nat);
        intent.vpcs.push(v);
    }
    for n in vpcs::networks_of_fabric(r, fabric_id)? {
        intent.networks.push(network(&n)?);
    }
    for a in attachments::attachments_of_fabric(r, fabric_id)? {
        intent.attachments.push(attachment(&a)?);
    }
    for s in vpcs::rules_of_fabric(r, fabric_id)? {
        intent.security_rules.push(rule(&s));
    }
    for f in vpcs::floating_ips_of_fabric(r, fabric_id)? {
        intent.floating_ips.push(floating_ip(&f)?);
    }
    Ok(Loaded { record, topo, intent, ledger })
}

/// Validates the fabric's intent as it now stands in this transaction and
/// brings its ledger up to date, the whole intent at once (the caller holds
/// the fabric's lock: `fabrics::lock_intent`). Tenant writes go through
/// the fabric's kept planner instead (`planners`), which falls back on
/// this. For a tenant's request, errors about tenant objects name the
/// request's own field and the objects by name, not by their place in the
/// fabric's whole intent (which would also hint at other tenants').
pub fn reallocate(w: &mut dyn Writer, fabric_id: &str, tenant_request: bool) -> Result<Loaded> {
    let mut l = load(w, fabric_id)?;
    let next = allocate(&l.topo.fabric, &l.topo.switches, &l.topo.links, &l.intent, &l.ledger)
        .map_err(|e| tenant_terms(e, &l.intent, tenant_request))?;
    super::ledger::write(w, fabric_id, &next, &next.changed(&l.ledger))?;
    l.ledger = next;
    Ok(l)
}

/// Lists of the intent a tenant's request is about.
const TENANT_LISTS: [&str; 6] =
    ["vpcs", "networks", "attachments", "security_rules", "nat_gateways", "floating_ips"];

/// The core's error in the request's terms: `networks[4].cidr` becomes
/// `cidr`, and `networks[1]` in the message the network's name.
pub fn tenant_terms(e: neocloud_fabric::Error, intent: &Intent, tenant_request: bool) -> Error {
    use neocloud_fabric::Error as F;
    if !tenant_request {
        return super::fabric_error(e);
    }
    match e {
        F::Invalid { field, reason } => {
            let field = match field.split_once("].") {
                Some((head, rest))
                    if TENANT_LISTS.iter().any(|l| head.starts_with(&format!("{l}["))) =>
                {
                    rest.to_string()
                }
                _ => field,
            };
            Error::invalid_value(field, name_objects(&reason, intent))
        }
        other => super::fabric_error(other),
    }
}

/// Replaces `networks[3]` and `vpcs[1]` in a message by the objects' names.
fn name_objects(msg: &str, intent: &Intent) -> String {
    let mut out = String::new();
    let mut rest = msg;
    while let Some(open) = rest.find('[') {
        let (before, after) = rest.split_at(open);
        let list_start =
            before.rfind(|c: char| !(c.is_ascii_lowercase() || c == '_')).map_or(0, |i| i + 1);
        let list = &before[list_start..];
        let close = after.find(']');
        let index = close.and_then(|c| after[1..c].parse::<usize>().ok());
        let name = match (list, index) {
            ("networks", Some(i)) => {
                intent.networks.get(i).map(|n| format!("network {:?}", n.name))
            }
            ("vpcs", Some(i)) => intent.vpcs.get(i).map(|v| format!("VPC {:?}", v.name)),
            ("attachments", Some(i)) => {
                intent.attachments.get(i).map(|a| format!("attachment {}", a.id))
            }
            ("floating_ips", Some(i)) => {
                intent.floating_ips.get(i).map(|f| format!("floating IP {}", f.public_ip))
            }
            ("security_rules", Some(i)) => {
                intent.security_rules.get(i).map(|r| format!("rule {}", r.id))
            }
            _ => None,
        };
        match (name, close) {
            (Some(n), Some(c)) => {
                out.push_str(&before[..list_start]);
                out.push_str(&n);
                rest = &after[c + 1..];
            }
            _ => {
                out.push_str(before);
                out.push('[');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
