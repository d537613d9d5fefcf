use neocloud_common::{Error, Name};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A quota-governed resource, written as a string key:
/// `nodes`, `networks`, `public_ips`, `storage_bytes`,
/// `gpu:<model>` (e.g. `gpu:h100-80gb`), `mig:<profile>` (e.g. `mig:1g.10gb`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum QuotaResource {
    Nodes,
    Networks,
    PublicIps,
    StorageBytes,
    Gpus(Name),
    MigSlices(String),
}

impl QuotaResource {
    pub fn parse(s: &str) -> Result<QuotaResource, String> {
        match s {
            "nodes" => return Ok(QuotaResource::Nodes),
            "networks" => return Ok(QuotaResource::Networks),
            "public_ips" => return Ok(QuotaResource::PublicIps),
            "storage_bytes" => return Ok(QuotaResource::StorageBytes),
            _ => {}
        }
        if let Some(model) = s.strip_prefix("gpu:") {
            return Name::parse(model)
                .map(QuotaResource::Gpus)
                .map_err(|e| format!("GPU model in {s:?} {e}"));
        }
        if let Some(profile) = s.strip_prefix("mig:") {
            return if valid_mig_profile(profile) {
                Ok(QuotaResource::MigSlices(profile.to_string()))
            } else {
                Err(format!("MIG profile in {s:?} must look like 1g.10gb, 3g.40gb or 1g.10gb+me"))
            };
        }
        Err(format!(
            "unknown quota resource {s:?}: expected nodes, networks, public_ips, storage_bytes, gpu:<model> or mig:<profile>"
        ))
    }

    pub fn key(&self) -> String {
        match self {
            QuotaResource::Nodes => "nodes".into(),
            QuotaResource::Networks => "networks".into(),
            QuotaResource::PublicIps => "public_ips".into(),
            QuotaResource::StorageBytes => "storage_bytes".into(),
            QuotaResource::Gpus(m) => format!("gpu:{m}"),
            QuotaResource::MigSlices(p) => format!("mig:{p}"),
        }
    }
}

/// `<n>g.<m>gb` with an optional `+me` or `+gfx` suffix.
fn valid_mig_profile(p: &str) -> bool {
    let base = p.strip_suffix("+me").or_else(|| p.strip_suffix("+gfx")).unwrap_or(p);
    let Some((g, mem)) = base.split_once('.') else { return false };
    let Some(g) = g.strip_suffix('g') else { return false };
    let Some(mem) = mem.strip_suffix("gb") else { return false };
    matches!(g.parse::<u8>(), Ok(1..=8))
        && !mem.is_empty()
        && mem.len() <= 4
        && mem.bytes().all(|b| b.is_ascii_digit())
}

/// Validates a map of resource key -> amount; `field` prefixes the error path.
pub fn parse_amounts(
    field: &str,
    m: &BTreeMap<String, i64>,
    allow_zero: bool,
) -> Result<Vec<(QuotaResource, i64)>, Error> {
    if m.is_empty() {
        return Err(Error::invalid_value(field, "must name at least one resource"));
    }
    m.iter()
        .map(|(k, v)| {
            let r = QuotaResource::parse(k)
                .map_err(|e| Error::invalid_value(format!("{field}.{k}"), e))?;
            if *v < 0 || (*v == 0 && !allow_zero) {
                return Err(Error::invalid_value(
                    format!("{field}.{k}"),
                    if allow_zero { "must not be negative" } else { "must be positive" },
                ));
            }
            Ok((r, *v))
        })
        .collect()
}

/// Usage and limit of one resource in one scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QuotaEntry {
    /// `null`: no limit at this level (the levels above still apply).
    pub limit: Option<i64>,
    /// Admitted but not yet committed.
    pub reserved: i64,
    pub committed: i64,
}

/// The quota of one scope: the provider, a tenant or a project.
///
/// A tenant may use nothing the provider has not granted it: a resource with
/// no tenant limit has limit 0. Projects and the provider have no limit on a
/// resource until one is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Quota {
    /// `provider`, `tenant` or `project`.
    pub scope: String,
    pub scope_id: String,
    pub generation: i64,
    pub resources: BTreeMap<String, QuotaEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaUpdate {
    pub generation: i64,
    /// Resource key -> new limit; `null` removes the limit at this level.
    pub limits: BTreeMap<String, Option<i64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaClaimCreate {
    /// Resource key -> amount to reserve (positive).
    pub resources: BTreeMap<String, i64>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClaimState {
    Reserved,
    Committed,
    Released,
}

impl ClaimState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimState::Reserved => "reserved",
            ClaimState::Committed => "committed",
            ClaimState::Released => "released",
        }
    }

    pub fn parse(s: &str) -> Option<ClaimState> {
        [ClaimState::Reserved, ClaimState::Committed, ClaimState::Released]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// An admission ledger entry: resources reserved in a project (and so in
/// its tenant and the provider), then committed, then released.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QuotaClaim {
    pub id: String,
    pub tenant_id: String,
    pub project_id: String,
    pub state: ClaimState,
    pub resources: BTreeMap<String, i64>,
    pub description: String,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_keys() {
        for ok in [
            "nodes",
            "networks",
            "public_ips",
            "storage_bytes",
            "gpu:h100-80gb",
            "mig:1g.10gb",
            "mig:1g.10gb+me",
            "mig:7g.80gb",
            "mig:3g.71gb",
        ] {
            let r = QuotaResource::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(r.key(), ok);
        }
        for bad in [
            "gpus",
            "gpu:",
            "gpu:H100",
            "mig:1g",
            "mig:9g.10gb",
            "mig:1g.10gb+xx",
            "mig:1g.gb",
            "cpu",
        ] {
            assert!(QuotaResource::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn amounts_name_the_offending_key() {
        let mut m = BTreeMap::new();
        m.insert("nodes".to_string(), -1);
        let e = parse_amounts("resources", &m, false).unwrap_err();
        assert_eq!(e.field(), Some("resources.nodes"));
        assert!(parse_amounts("resources", &BTreeMap::new(), false).is_err());
    }
}
