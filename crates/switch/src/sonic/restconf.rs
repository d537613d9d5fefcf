//! CONFIG_DB through the SONiC management framework's RESTCONF server
//! (RFC 8040; `/restconf/data/<module>:<module>/<TABLE>/<TABLE>_LIST=<keys>`
//! over the SONiC YANG models, which mirror CONFIG_DB tables one to one).
//! Pure: the table-to-YANG mapping, requests for patch operations, and
//! CONFIG_DB read back from module documents.
//!
//! Unverified against a switch: the module and list names below follow
//! sonic-buildimage's `sonic-yang-models` as the reference names them
//! (`sonic-vxlan.yang`, `sonic-vrf.yang`) and by the same convention for the
//! others; numeric leaves are JSON numbers (RFC 7951), strings otherwise.

use super::patch::{Kind, Op};
use crate::http::encode;
use neocloud_fabric::render::sonic::ConfigDb;
use serde_json::{json, Map, Value};

/// One YANG list holding a CONFIG_DB table's entries (a table whose keys
/// come in two shapes, like `Vlan10` and `Vlan10|10.0.0.1/24`, has a list
/// per shape).
#[derive(Debug, Clone, Copy)]
pub struct List {
    pub table: &'static str,
    pub module: &'static str,
    pub list: &'static str,
    /// The key leaves, in CONFIG_DB key order (`|`-separated).
    pub keys: &'static [&'static str],
    /// Leaves that are numbers in YANG.
    pub numbers: &'static [&'static str],
}

const fn list(
    table: &'static str,
    module: &'static str,
    list: &'static str,
    keys: &'static [&'static str],
    numbers: &'static [&'static str],
) -> List {
    List { table, module, list, keys, numbers }
}

pub const LISTS: &[List] = &[
    list(
        "LOOPBACK_INTERFACE",
        "sonic-loopback-interface",
        "LOOPBACK_INTERFACE_LIST",
        &["name"],
        &[],
    ),
    list(
        "LOOPBACK_INTERFACE",
        "sonic-loopback-interface",
        "LOOPBACK_INTERFACE_IPPREFIX_LIST",
        &["name", "ip-prefix"],
        &[],
    ),
    list("VXLAN_TUNNEL", "sonic-vxlan", "VXLAN_TUNNEL_LIST", &["name"], &[]),
    list("VXLAN_EVPN_NVO", "sonic-vxlan", "VXLAN_EVPN_NVO_LIST", &["name"], &[]),
    list(
        "VXLAN_TUNNEL_MAP",
        "sonic-vxlan",
        "VXLAN_TUNNEL_MAP_LIST",
        &["name", "mapname"],
        &["vni"],
    ),
    list("VLAN", "sonic-vlan", "VLAN_LIST", &["name"], &["vlanid", "mtu"]),
    list("VLAN_MEMBER", "sonic-vlan", "VLAN_MEMBER_LIST", &["name", "ifname"], &[]),
    list("VLAN_INTERFACE", "sonic-vlan", "VLAN_INTERFACE_LIST", &["name"], &[]),
    list(
        "VLAN_INTERFACE",
        "sonic-vlan",
        "VLAN_INTERFACE_IPPREFIX_LIST",
        &["name", "ip-prefix"],
        &[],
    ),
    list("VRF", "sonic-vrf", "VRF_LIST", &["name"], &["vni"]),
    list("PORT", "sonic-port", "PORT_LIST", &["name"], &["speed", "mtu", "index"]),
    list("MGMT_PORT", "sonic-mgmt_port", "MGMT_PORT_LIST", &["name"], &["speed", "mtu"]),
];

/// The modules holding the tables, each read once.
pub fn modules() -> Vec<&'static str> {
    let mut out: Vec<&str> = Vec::new();
    for l in LISTS {
        if !out.contains(&l.module) {
            out.push(l.module);
        }
    }
    out
}

/// The list a CONFIG_DB key belongs to.
pub fn list_of(table: &str, key: &str) -> Option<&'static List> {
    let parts = key.split('|').count();
    LISTS.iter().find(|l| l.table == table && l.keys.len() == parts)
}

/// `/restconf/data/<module>:<module>` (a whole module).
pub fn module_path(module: &str) -> String {
    format!("/restconf/data/{module}:{module}")
}

/// The URL of one entry: `.../<TABLE>/<LIST>=<k1>,<k2>`.
fn entry_path(l: &List, key: &str) -> String {
    let keys: Vec<String> = key.split('|').map(encode).collect();
    format!("{}/{}/{}={}", module_path(l.module), l.table, l.list, keys.join(","))
}

fn leaf(l: &List, field: &str, value: &str) -> Value {
    match (l.numbers.contains(&field), value.parse::<u64>()) {
        (true, Ok(n)) => json!(n),
        _ => json!(value),
    }
}

/// One entry as its list's JSON member: key leaves then fields.
fn entry(l: &List, key: &str, fields: &Map<String, Value>) -> Value {
    let mut e = Map::new();
    for (k, v) in l.keys.iter().zip(key.split('|')) {
        e.insert(k.to_string(), json!(v));
    }
    for (f, v) in fields {
        e.insert(f.clone(), leaf(l, f, v.as_str().unwrap_or_default()));
    }
    json!({format!("{}:{}", l.module, l.list): [e]})
}

/// An HTTP request: method, path, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    pub path: String,
    pub body: Option<Value>,
}

/// The request carrying one patch operation: a whole key is `PUT` (create
/// or replace) or `DELETE`d; a field is merged into its (existing) entry
/// with `PATCH`, or its leaf `DELETE`d.
pub fn request(op: &Op) -> Result<Request, String> {
    let l = list_of(&op.table, &op.key)
        .ok_or_else(|| format!("{}|{}: no SONiC YANG list known for it", op.table, op.key))?;
    let path = entry_path(l, &op.key);
    Ok(match (op.kind, &op.field) {
        (Kind::Remove, None) => Request { method: "DELETE", path, body: None },
        (Kind::Remove, Some(f)) => {
            Request { method: "DELETE", path: format!("{path}/{}", encode(f)), body: None }
        }
        (Kind::Add | Kind::Replace, None) => {
            let fields = op.value.as_ref().and_then(Value::as_object).cloned().unwrap_or_default();
            Request { method: "PUT", path, body: Some(entry(l, &op.key, &fields)) }
        }
        (Kind::Add | Kind::Replace, Some(f)) => {
            let mut fields = Map::new();
            fields.insert(f.clone(), op.value.clone().unwrap_or(Value::Null));
            Request { method: "PATCH", path, body: Some(entry(l, &op.key, &fields)) }
        }
    })
}

/// Adds a module document (`{"<module>:<module>": {TABLE: {LIST: [...]}}}`)
/// to `db`, as CONFIG_DB holds it (numbers as strings).
pub fn read_module(db: &mut ConfigDb, module: &str, doc: &Value) {
    let top = &doc[format!("{module}:{module}")];
    for l in LISTS.iter().filter(|l| l.module == module) {
        let Some(entries) = top[l.table][l.list].as_array() else { continue };
        for e in entries {
            let Some(m) = e.as_object() else { continue };
            let key: Vec<String> =
                l.keys.iter().map(|k| text(&m.get(*k).cloned().unwrap_or_default())).collect();
            let fields = m
                .iter()
                .filter(|(k, _)| !l.keys.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), text(v)))
                .collect();
            db.entry(l.table.to_string()).or_default().insert(key.join("|"), fields);
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The messages of an RFC 8040 error document, or the body as it came.
pub fn error_message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let msgs: Vec<String> = v["ietf-restconf:errors"]["error"]
        .as_array()
        .map(|errs| {
            errs.iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e["error-tag"].as_str().unwrap_or("error"),
                        e["error-message"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if msgs.is_empty() {
        body.trim().to_string()
    } else {
        msgs.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: Kind, table: &str, key: &str, field: Option<&str>, value: Option<Value>) -> Op {
        Op { kind, table: table.into(), key: key.into(), field: field.map(String::from), value }
    }

    #[test]
    fn operations_map_to_restconf_requests() {
        let add = op(
            Kind::Add,
            "VXLAN_TUNNEL_MAP",
            "vtep1|map_100_Vlan12",
            None,
            Some(json!({"vlan": "Vlan12", "vni": "100"})),
        );
        assert_eq!(request(&add).unwrap(), Request {
            method: "PUT",
            path: "/restconf/data/sonic-vxlan:sonic-vxlan/VXLAN_TUNNEL_MAP/VXLAN_TUNNEL_MAP_LIST=vtep1,map_100_Vlan12".into(),
            body: Some(json!({"sonic-vxlan:VXLAN_TUNNEL_MAP_LIST": [
                {"name": "vtep1", "mapname": "map_100_Vlan12", "vlan": "Vlan12", "vni": 100}
            ]})),
        });
        let ip = op(Kind::Remove, "VLAN_INTERFACE", "Vlan12|10.100.0.1/24", None, None);
        assert_eq!(
            request(&ip).unwrap().path,
            "/restconf/data/sonic-vlan:sonic-vlan/VLAN_INTERFACE/VLAN_INTERFACE_IPPREFIX_LIST=Vlan12,10.100.0.1%2F24"
        );
        let port = op(Kind::Replace, "PORT", "Ethernet4", Some("admin_status"), Some(json!("up")));
        assert_eq!(
            request(&port).unwrap(),
            Request {
                method: "PATCH",
                path: "/restconf/data/sonic-port:sonic-port/PORT/PORT_LIST=Ethernet4".into(),
                body: Some(
                    json!({"sonic-port:PORT_LIST": [{"name": "Ethernet4", "admin_status": "up"}]})
                ),
            }
        );
        assert!(request(&op(Kind::Remove, "ACL_RULE", "x|y", None, None)).is_err());
    }

    #[test]
    fn module_documents_read_back_as_config_db() {
        let mut db = ConfigDb::new();
        read_module(
            &mut db,
            "sonic-vlan",
            &json!({"sonic-vlan:sonic-vlan": {
                "VLAN": {"VLAN_LIST": [{"name": "Vlan12", "vlanid": 12}]},
                "VLAN_INTERFACE": {"VLAN_INTERFACE_IPPREFIX_LIST": [{"name": "Vlan12", "ip-prefix": "10.100.0.1/24"}]},
            }}),
        );
        assert_eq!(db["VLAN"]["Vlan12"]["vlanid"], "12");
        assert!(db["VLAN_INTERFACE"]["Vlan12|10.100.0.1/24"].is_empty());
    }

    #[test]
    fn restconf_errors_are_read() {
        let body = r#"{"ietf-restconf:errors":{"error":[{"error-type":"application","error-tag":"invalid-value","error-message":"VLAN Vlan9 does not exist"}]}}"#;
        assert_eq!(error_message(body), "invalid-value: VLAN Vlan9 does not exist");
        assert_eq!(error_message("oops"), "oops");
    }
}
