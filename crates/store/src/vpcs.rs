//! Tenant networks: VPCs, their networks, security rules and floating IPs
//! (attachments: `attachments`). Callers lock the fabric's intent first
//! (`fabrics::lock_intent`), then change rows here, then write the ledger.

use crate::backend::{Reader, Row, Writer};
use crate::{rfc, vals};
use neocloud_common::{new_id, time::now_micros, Error, NameOrId, Result};
use neocloud_types::{Allow, FloatingIp, IpProtocol, Network, Ports, SecurityRule, Vpc};

fn count(r: &mut dyn Reader, sql: &str, id: &str) -> Result<i64> {
    Ok(r.query(sql, vals![id])?.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0))
}

// ---- VPCs ----

const VPC_COLS: &str = "id, name, tenant_id, project_id, fabric_id, nat_gateway, description, generation, created_at, updated_at";

fn vpc_row(r: &Row) -> Result<Vpc> {
    Ok(Vpc {
        id: r.str(0)?,
        name: r.str(1)?,
        tenant_id: r.str(2)?,
        project_id: r.str(3)?,
        fabric_id: r.str(4)?,
        nat_gateway: r.bool(5)?,
        nat_public_ip: None,
        description: r.str(6)?,
        generation: r.i64(7)?,
        created_at: rfc(r.i64(8)?),
        updated_at: rfc(r.i64(9)?),
    })
}

pub struct NewVpc<'a> {
    pub tenant_id: &'a str,
    pub project_id: &'a str,
    pub fabric_id: &'a str,
    pub name: &'a str,
    pub nat_gateway: bool,
    pub description: &'a str,
}

pub fn create_vpc(w: &mut dyn Writer, v: &NewVpc<'_>) -> Result<Vpc> {
    let id = new_id();
    let now = now_micros();
    w.execute(
        &format!("INSERT INTO vpcs ({VPC_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)"),
        vals![
            &id,
            v.name,
            v.tenant_id,
            v.project_id,
            v.fabric_id,
            v.nat_gateway,
            v.description,
            now,
            now
        ],
    )
    .map_err(|e| {
        e.unique_as(Error::AlreadyExists {
            kind: "vpc",
            field: "name".into(),
            value: v.name.to_string(),
        })
    })?;
    vpc(w, &id)
}

pub fn vpc(r: &mut dyn Reader, id: &str) -> Result<Vpc> {
    let rows = r.query(&format!("SELECT {VPC_COLS} FROM vpcs WHERE id = ?"), vals![id])?;
    rows.first().map(vpc_row).transpose()?.ok_or_else(|| Error::not_found("vpc", id))
}

pub fn lookup_vpc(
    r: &mut dyn Reader,
    tenant_id: &str,
    project_id: &str,
    key: &NameOrId,
) -> Result<Option<Vpc>> {
    let (col, v) = match key {
        NameOrId::Id(id) => ("id", id.as_str()),
        NameOrId::Name(n) => ("name", n.as_str()),
    };
    let rows = r.query(
        &format!(
            "SELECT {VPC_COLS} FROM vpcs WHERE {col} = ? AND tenant_id = ? AND project_id = ?"
        ),
        vals![v, tenant_id, project_id],
    )?;
    rows.first().map(vpc_row).transpose()
}

pub fn list_vpcs(r: &mut dyn Reader, tenant_id: &str, project_id: &str) -> Result<Vec<Vpc>> {
    r.query(
        &format!(
            "SELECT {VPC_COLS} FROM vpcs WHERE tenant_id = ? AND project_id = ? ORDER BY name"
        ),
        vals![tenant_id, project_id],
    )?
    .iter()
    .map(vpc_row)
    .collect()
}

pub fn vpcs_of_fabric(r: &mut dyn Reader, fabric_id: &str) -> Result<Vec<Vpc>> {
    r.query(
        &format!("SELECT {VPC_COLS} FROM vpcs WHERE fabric_id = ? ORDER BY id"),
        vals![fabric_id],
    )?
    .iter()
    .map(vpc_row)
    .collect()
}

pub fn update_vpc(
    w: &mut dyn Writer,
    id: &str,
    expected: i64,
    nat_gateway: bool,
    description: &str,
) -> Result<Vpc> {
    let n = w.execute(
        "UPDATE vpcs SET nat_gateway = ?, description = ?, generation = generation + 1, updated_at = ? WHERE id = ? AND generation = ?",
        vals![nat_gateway, description, now_micros(), id, expected],
    )?;
    crate::check_generation(w, n, "vpcs", "vpc", id, expected, None)?;
    vpc(w, id)
}

/// Deletes a VPC with no networks and no floating IPs left.
pub fn delete_vpc(w: &mut dyn Writer, id: &str) -> Result<()> {
    if count(w, "SELECT COUNT(*) FROM networks WHERE vpc_id = ?", id)? > 0 {
        return Err(Error::conflict("the VPC still has networks: delete them first"));
    }
    w.execute("DELETE FROM vpcs WHERE id = ?", vals![id])?;
    Ok(())
}

// ---- networks ----

const NET_COLS: &str = "id, name, vpc_id, cidr, gateway, generation, created_at, updated_at";

fn net_row(r: &Row) -> Result<Network> {
    Ok(Network {
        id: r.str(0)?,
        name: r.str(1)?,
        vpc_id: r.str(2)?,
        cidr: r.str(3)?,
        gateway: r.opt_str(4)?.unwrap_or_default(),
        generation: r.i64(5)?,
        created_at: rfc(r.i64(6)?),
        updated_at: rfc(r.i64(7)?),
    })
}

pub fn create_network(
    w: &mut dyn Writer,
    vpc_id: &str,
    name: &str,
    cidr: &str,
    gateway: &str,
) -> Result<Network> {
    let id = new_id();
    let now = now_micros();
    w.execute(
        &format!("INSERT INTO networks ({NET_COLS}) VALUES (?, ?, ?, ?, ?, 1, ?, ?)"),
        vals![&id, name, vpc_id, cidr, gateway, now, now],
    )
    .map_err(|e| {
        e.unique_as(Error::AlreadyExists {
            kind: "network",
            field: "name".into(),
            value: name.to_string(),
        })
    })?;
    network(w, &id)
}

pub fn network(r: &mut dyn Reader, id: &str) -> Result<Network> {
    let rows = r.query(&format!("SELECT {NET_COLS} FROM networks WHERE id = ?"), vals![id])?;
    rows.first().map(net_row).transpose()?.ok_or_else(|| Error::not_found("network", id))
}

pub fn lookup_network(r: &mut dyn Reader, vpc_id: &str, key: &NameOrId) -> Result<Option<Network>> {
    let (col, v) = match key {
        NameOrId::Id(id) => ("id", id.as_str()),
        NameOrId::Name(n) => ("name", n.as_str()),
    };
    let rows = r.query(
        &format!("SELECT {NET_COLS} FROM networks WHERE {col} = ? AND vpc_id = ?"),
        vals![v, vpc_id],
    )?;
    rows.first().map(net_row).transpose()
}

pub fn list_networks(r: &mut dyn Reader, vpc_id: &str) -> Result<Vec<Network>> {
    r.query(
        &format!("SELECT {NET_COLS} FROM networks WHERE vpc_id = ? ORDER BY name"),
        vals![vpc_id],
    )?
    .iter()
    .map(net_row)
    .collect()
}

pub fn networks_of_fabric(r: &mut dyn Reader, fabric_id: &str) -> Result<Vec<Network>> {
    r.query(
        "SELECT n.id, n.name, n.vpc_id, n.cidr, n.gateway, n.generation, n.created_at, n.updated_at \
         FROM networks n JOIN vpcs v ON v.id = n.vpc_id WHERE v.fabric_id = ? ORDER BY n.id",
        vals![fabric_id],
    )?
    .iter()
    .map(net_row)
    .collect()
}

/// Deletes a network no attachment or rule uses.
pub fn delete_network(w: &mut dyn Writer, id: &str) -> Result<()> {
    if count(w, "SELECT COUNT(*) FROM attachments WHERE network_id = ?", id)? > 0 {
        return Err(Error::conflict("instances are attached to the network: detach them first"));
    }
    let rules = w.query(
        "SELECT COUNT(*) FROM security_rules WHERE from_network_id = ? OR to_network_id = ?",
        vals![id, id],
    )?;
    if rules.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0) > 0 {
        return Err(Error::conflict("security rules name the network: delete them first"));
    }
    w.execute("DELETE FROM networks WHERE id = ?", vals![id])?;
    Ok(())
}

// ---- security rules ----

const RULE_COLS: &str = "id, vpc_id, from_network_id, to_network_id, protocol, port_first, port_last, generation, created_at, updated_at";

pub fn protocol_str(p: IpProtocol) -> &'static str {
    match p {
        IpProtocol::Tcp => "tcp",
        IpProtocol::Udp => "udp",
        IpProtocol::Icmp => "icmp",
        IpProtocol::Any => "any",
    }
}

fn parse_protocol(s: &str) -> Result<IpProtocol> {
    match s {
        "tcp" => Ok(IpProtocol::Tcp),
        "udp" => Ok(IpProtocol::Udp),
        "icmp" => Ok(IpProtocol::Icmp),
        "any" => Ok(IpProtocol::Any),
        other => Err(Error::internal(format!("stored protocol {other:?}"))),
    }
}

fn rule_row(r: &Row) -> Result<SecurityRule> {
    let ports = match (r.opt_i64(5)?, r.opt_i64(6)?) {
        (Some(a), Some(b)) => Some(Ports { first: a as u16, last: b as u16 }),
        _ => None,
    };
    Ok(SecurityRule {
        id: r.str(0)?,
        vpc_id: r.str(1)?,
        from_network_id: r.str(2)?,
        to_network_id: r.str(3)?,
        protocol: parse_protocol(&r.str(4)?)?,
        ports,
        generation: r.i64(7)?,
        created_at: rfc(r.i64(8)?),
        updated_at: rfc(r.i64(9)?),
    })
}

pub fn create_rule(
    w: &mut dyn Writer,
    vpc_id: &str,
    from: &str,
    to: &str,
    protocol: IpProtocol,
    ports: Option<Ports>,
) -> Result<SecurityRule> {
    let id = new_id();
    let now = now_micros();
    w.execute(
        &format!("INSERT INTO security_rules ({RULE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)"),
        vals![
            &id,
            vpc_id,
            from,
            to,
            protocol_str(protocol),
            ports.map(|p| p.first as i64),
            ports.map(|p| p.last as i64),
            now,
            now
        ],
    )?;
    rule(w, vpc_id, &id)?.ok_or_else(|| Error::internal("rule vanished"))
}

pub fn rule(r: &mut dyn Reader, vpc_id: &str, id: &str) -> Result<Option<SecurityRule>> {
    let rows = r.query(
        &format!("SELECT {RULE_COLS} FROM security_rules WHERE id = ? AND vpc_id = ?"),
        vals![id, vpc_id],
    )?;
    rows.first().map(rule_row).transpose()
}

pub fn list_rules(r: &mut dyn Reader, vpc_id: &str) -> Result<Vec<SecurityRule>> {
    r.query(
        &format!("SELECT {RULE_COLS} FROM security_rules WHERE vpc_id = ? ORDER BY created_at, id"),
        vals![vpc_id],
    )?
    .iter()
    .map(rule_row)
    .collect()
}

pub fn rules_of_fabric(r: &mut dyn Reader, fabric_id: &str) -> Result<Vec<SecurityRule>> {
    r.query(
        "SELECT s.id, s.vpc_id, s.from_network_id, s.to_network_id, s.protocol, s.port_first, s.port_last, \
         s.generation, s.created_at, s.updated_at FROM security_rules s JOIN vpcs v ON v.id = s.vpc_id \
         WHERE v.fabric_id = ? ORDER BY s.id",
        vals![fabric_id],
    )?
    .iter()
    .map(rule_row)
    .collect()
}

pub fn delete_rule(w: &mut dyn Writer, id: &str) -> Result<()> {
    w.execute("DELETE FROM security_rules WHERE id = ?", vals![id])?;
    Ok(())
}

// ---- floating IPs ----

const FIP_COLS: &str =
    "id, vpc_id, attachment_id, public_ip, allow, generation, created_at, updated_at";

fn fip_row(r: &Row) -> Result<FloatingIp> {
    let allow: Vec<Allow> = serde_json::from_str(&r.str(4)?)
        .map_err(|e| Error::internal(format!("stored floating IP allow: {e}")))?;
    Ok(FloatingIp {
        id: r.str(0)?,
        vpc_id: r.str(1)?,
        attachment_id: r.str(2)?,
        public_ip: r.str(3)?,
        allow,
        generation: r.i64(5)?,
        created_at: rfc(r.i64(6)?),
        updated_at: rfc(r.i64(7)?),
    })
}

pub fn create_floating_ip(
    w: &mut dyn Writer,
    fabric_id: &str,
    vpc_id: &str,
    attachment_id: &str,
    public_ip: &str,
    allow: &[Allow],
) -> Result<FloatingIp> {
    let id = new_id();
    let now = now_micros();
    let allow = serde_json::to_string(allow).map_err(|e| Error::internal(e.to_string()))?;
    w.execute(
        "INSERT INTO floating_ips (id, fabric_id, vpc_id, attachment_id, public_ip, allow, generation, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
        vals![&id, fabric_id, vpc_id, attachment_id, public_ip, allow, now, now],
    )
    .map_err(|e| {
        e.unique_as(Error::AlreadyExists {
            kind: "floating_ip",
            field: "attachment".into(),
            value: attachment_id.to_string(),
        })
    })?;
    floating_ip(w, vpc_id, &id)?.ok_or_else(|| Error::internal("floating IP vanished"))
}

pub fn floating_ip(r: &mut dyn Reader, vpc_id: &str, id: &str) -> Result<Option<FloatingIp>> {
    let rows = r.query(
        &format!("SELECT {FIP_COLS} FROM floating_ips WHERE id = ? AND vpc_id = ?"),
        vals![id, vpc_id],
    )?;
    rows.first().map(fip_row).transpose()
}

pub fn list_floating_ips(r: &mut dyn Reader, vpc_id: &str) -> Result<Vec<FloatingIp>> {
    r.query(
        &format!("SELECT {FIP_COLS} FROM floating_ips WHERE vpc_id = ? ORDER BY created_at, id"),
        vals![vpc_id],
    )?
    .iter()
    .map(fip_row)
    .collect()
}

pub fn floating_ips_of_fabric(r: &mut dyn Reader, fabric_id: &str) -> Result<Vec<FloatingIp>> {
    r.query(
        &format!("SELECT {FIP_COLS} FROM floating_ips WHERE fabric_id = ? ORDER BY id"),
        vals![fabric_id],
    )?
    .iter()
    .map(fip_row)
    .collect()
}

pub fn delete_floating_ip(w: &mut dyn Writer, id: &str) -> Result<()> {
    w.execute("DELETE FROM floating_ips WHERE id = ?", vals![id])?;
    Ok(())
}
