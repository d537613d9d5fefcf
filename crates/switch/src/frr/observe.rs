//! What a switch's Linux side holds, read from `ip -j -d addr show` and
//! `nft -j list table ...`, as plain data (parsing only: no I/O here).

use serde::Deserialize;
use std::collections::BTreeMap;

/// One network device, as far as the fabric configures it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Link {
    pub name: String,
    /// `bridge`, `vxlan`, `veth`...; `None` for a plain device (`lo`, a
    /// physical port).
    pub kind: Option<String>,
    pub master: Option<String>,
    /// Administratively up (`UP` among the flags).
    pub up: bool,
    pub mac: Option<String>,
    pub vxlan: Option<Vxlan>,
    /// As a bridge port: whether it is isolated.
    pub isolated: Option<bool>,
    /// IPv4 addresses with prefix length (`10.100.0.1/24`).
    pub addrs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Vxlan {
    pub id: u32,
    pub local: Option<String>,
    pub port: Option<u16>,
}

#[derive(Deserialize)]
struct RawLink {
    ifname: String,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    master: Option<String>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    linkinfo: Option<RawLinkInfo>,
    #[serde(default)]
    addr_info: Vec<RawAddr>,
}

#[derive(Deserialize)]
struct RawLinkInfo {
    #[serde(default)]
    info_kind: Option<String>,
    #[serde(default)]
    info_data: Option<serde_json::Value>,
    #[serde(default)]
    info_slave_kind: Option<String>,
    #[serde(default)]
    info_slave_data: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawAddr {
    #[serde(default)]
    family: String,
    #[serde(default)]
    local: Option<String>,
    #[serde(default)]
    prefixlen: Option<u8>,
}

/// Parses `ip -j -d addr show` (or `ip -j -d link show`: no addresses).
pub(crate) fn parse_links(json: &str) -> Result<BTreeMap<String, Link>, String> {
    let raw: Vec<RawLink> =
        serde_json::from_str(json).map_err(|e| format!("unexpected `ip -j` output: {e}"))?;
    let mut out = BTreeMap::new();
    for r in raw {
        let info = r.linkinfo.as_ref();
        let kind = info.and_then(|i| i.info_kind.clone());
        let vxlan = match (kind.as_deref(), info.and_then(|i| i.info_data.as_ref())) {
            (Some("vxlan"), Some(d)) => Some(Vxlan {
                id: d.get("id").and_then(|v| v.as_u64()).unwrap_or(0) as u32,
                local: d.get("local").and_then(|v| v.as_str()).map(str::to_string),
                port: d.get("port").and_then(|v| v.as_u64()).map(|p| p as u16),
            }),
            _ => None,
        };
        let isolated = info
            .filter(|i| i.info_slave_kind.as_deref() == Some("bridge"))
            .and_then(|i| i.info_slave_data.as_ref())
            .and_then(|d| d.get("isolated"))
            .and_then(|v| v.as_bool());
        let addrs = r
            .addr_info
            .iter()
            .filter(|a| a.family == "inet")
            .filter_map(|a| Some(format!("{}/{}", a.local.as_ref()?, a.prefixlen?)))
            .collect();
        out.insert(
            r.ifname.clone(),
            Link {
                up: r.flags.iter().any(|f| f == "UP"),
                name: r.ifname,
                kind,
                master: r.master,
                mac: r.address,
                vxlan,
                isolated,
                addrs,
            },
        );
    }
    Ok(out)
}

/// One nftables chain of a table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Chain {
    pub name: String,
    /// The hook of a base chain (`forward`, `postrouting`...).
    pub hook: Option<String>,
    pub rules: usize,
}

/// Parses `nft -j list table FAMILY NAME`: its chains with their rule
/// counts.
pub(crate) fn parse_nft_table(json: &str) -> Result<BTreeMap<String, Chain>, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("unexpected `nft -j` output: {e}"))?;
    let items = v
        .get("nftables")
        .and_then(|n| n.as_array())
        .ok_or_else(|| "unexpected `nft -j` output: no `nftables` list".to_string())?;
    let mut out: BTreeMap<String, Chain> = BTreeMap::new();
    for item in items {
        if let Some(c) = item.get("chain") {
            let name = c.get("name").and_then(|n| n.as_str()).unwrap_or_default().to_string();
            let hook = c.get("hook").and_then(|h| h.as_str()).map(str::to_string);
            let e = out.entry(name.clone()).or_default();
            e.name = name;
            e.hook = hook;
        } else if let Some(r) = item.get("rule") {
            let chain = r.get("chain").and_then(|n| n.as_str()).unwrap_or_default().to_string();
            let e = out.entry(chain.clone()).or_default();
            e.name = chain;
            e.rules += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ip -j -d addr show` in a lab leaf's namespace after the driver's
    /// initial apply (captured on iproute2 6.1, kernel 6.18).
    const LEAF_UNDERLAY: &str = include_str!("testdata/leaf1-underlay.json");
    /// The same in its VRF namespace `Vrf5000`.
    const LEAF_VRF: &str = include_str!("testdata/leaf1-vrf.json");
    /// `nft -j list table inet neocloud` in a VRF namespace with a policy.
    const NFT: &str = include_str!("testdata/nft-table.json");

    #[test]
    fn parses_the_underlay_of_a_leaf() {
        let links = parse_links(LEAF_UNDERLAY).unwrap();
        let lo = &links["lo"];
        assert!(lo.up && lo.kind.is_none());
        assert!(lo.addrs.contains(&"10.0.0.1/32".to_string()), "{:?}", lo.addrs);
        assert!(!lo.addrs.iter().any(|a| a.contains(':')), "IPv4 only");
        // The provisioning network lives here: bridge, VXLAN, an isolated port.
        let br = &links["br9000"];
        assert_eq!(br.kind.as_deref(), Some("bridge"));
        assert!(br.up);
        let vx = &links["vni9000"];
        assert_eq!(vx.kind.as_deref(), Some("vxlan"));
        assert_eq!(vx.master.as_deref(), Some("br9000"));
        assert_eq!(
            vx.vxlan,
            Some(Vxlan { id: 9000, local: Some("10.0.0.1".into()), port: Some(4789) })
        );
        assert_eq!(vx.isolated, Some(false));
        let c1 = &links["swp4"];
        assert_eq!(c1.master.as_deref(), Some("br9000"));
        assert_eq!(c1.isolated, Some(true));
        assert!(c1.up);
        // Tenant ports and VNIs are not here: they live in the VRFs.
        assert!(!links.contains_key("swp2"));
        assert!(!links.contains_key("vni5000"));
        // The uplink to the spine: a plain port, no master.
        assert_eq!(links["swp1"].master, None);
    }

    #[test]
    fn parses_a_vrf_namespace() {
        let links = parse_links(LEAF_VRF).unwrap();
        let l3 = &links["vni5000"];
        assert_eq!(l3.vxlan.as_ref().map(|v| v.id), Some(5000));
        assert_eq!(l3.master.as_deref(), Some("br5000"));
        let br = &links["br100"];
        assert_eq!(br.mac.as_deref(), Some("00:00:5e:00:01:01"));
        assert_eq!(br.addrs, vec!["10.100.0.1/24".to_string()]);
        let port = &links["swp2"];
        assert_eq!(port.master.as_deref(), Some("br100"));
        assert!(port.up);
        assert_eq!(port.isolated, Some(false));
    }

    #[test]
    fn parses_an_nft_table() {
        let chains = parse_nft_table(NFT).unwrap();
        let c = &chains["to-100"];
        assert_eq!(c.hook.as_deref(), Some("forward"));
        assert_eq!(c.rules, 3);
        let empty = parse_nft_table(
            r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "inet", "name": "neocloud", "handle": 1}}]}"#,
        )
        .unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn refuses_what_is_not_ip_or_nft_json() {
        assert!(parse_links("Cannot open network namespace").is_err());
        assert!(parse_links(r#"{"ifname": "lo"}"#).is_err());
        assert!(parse_nft_table("[]").is_err());
        assert!(parse_links("[]").unwrap().is_empty());
    }
}
