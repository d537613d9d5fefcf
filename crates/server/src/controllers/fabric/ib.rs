//! InfiniBand subnets: the partitions every tenant's nodes need, pushed to
//! the subnet manager (UFM's REST API, or the demo's SIMULATED one) when
//! they change and checked against it now and then. UFM is read before
//! every change, so what it holds, not what it was last given, is what the
//! calls correct.

use super::{failed, PassReport, Target};
use crate::network::ib::{self, SUBNET_MANAGER};
use crate::secrets::SecretBox;
use neocloud_common::tls::TlsOptions;
use neocloud_common::{Error, Result};
use neocloud_fabric::ib::{ufm_changes, IbDesired, IbFabric, UfmCall};
use neocloud_store::{fabrics, Store};
use neocloud_types::SubnetManager;
use neocloud_ufm::{Ufm, UfmConfig};

impl super::FabricController {
    pub(super) fn converge_ib(
        &self,
        store: &Store,
        secrets: &SecretBox,
        fabric_id: &str,
    ) -> Result<PassReport> {
        let rec = store.read(|r| fabrics::get(r, fabric_id))?;
        let Some(spec) = rec.spec.infiniband.clone() else { return Ok(PassReport::default()) };
        let state = store.read(|r| {
            Ok(fabrics::switch_states(r, fabric_id)?
                .into_iter()
                .find(|s| s.switch == SUBNET_MANAGER))
        })?;
        let target =
            Target { owner: &self.owner, fabric_id, kind: SUBNET_MANAGER, name: SUBNET_MANAGER };
        if spec.subnet_manager == SubnetManager::None {
            if state.as_ref().map(|s| s.state.as_str()) != Some("unmanaged") {
                store.write(|w| {
                    fabrics::record_status(w, fabric_id, SUBNET_MANAGER, "unmanaged", None)
                })?;
            }
            return Ok(PassReport::default());
        }
        let planned = store.write(|w| ib::desired(w, fabric_id));
        let (fabric, desired, generation) = match planned {
            Ok(x) => x,
            Err(e @ (Error::InvalidValue(_) | Error::Conflict { .. })) => {
                // Tenants' nodes the subnet cannot carry (PKeys exhausted,
                // a port's PKey table full): the provider must act.
                return failed(
                    store,
                    &target,
                    state.as_ref(),
                    "subnet_manager_apply",
                    &e.external_message(),
                );
            }
            Err(e) => return Err(e),
        };
        let applied = store.read(|r| ib::applied(r, fabric_id))?;
        if desired == applied && !self.due(fabric_id, SUBNET_MANAGER) {
            if state.as_ref().is_some_and(|s| s.applied_generation < generation) {
                record(store, fabric_id, &desired, generation)?;
            }
            return Ok(PassReport::default());
        }
        let pushed = match &spec.subnet_manager {
            SubnetManager::None => return Ok(PassReport::default()),
            SubnetManager::Simulated => Ok(ufm_changes(&fabric, &desired, &applied)),
            SubnetManager::Ufm { url, username, password, tls } => {
                ufm(secrets, (url, username, password.as_deref(), tls), &fabric, &desired)
            }
        };
        match pushed {
            Ok(calls) => {
                record(store, fabric_id, &desired, generation)?;
                if calls.is_empty() {
                    return Ok(PassReport::default());
                }
                tracing::info!(fabric = %rec.name, calls = calls.len(), "InfiniBand partitions updated");
                store.write(|w| super::audit(w, &target, "subnet_manager_apply", "success"))?;
                Ok(PassReport { pushed: 1, ..Default::default() })
            }
            Err(message) => {
                failed(store, &target, state.as_ref(), "subnet_manager_apply", &message)
            }
        }
    }
}

fn record(store: &Store, fabric_id: &str, desired: &IbDesired, generation: i64) -> Result<()> {
    let json =
        serde_json::to_string(desired).map_err(|e| Error::internal(format!("partitions: {e}")))?;
    store.write(|w| {
        fabrics::record_applied(w, fabric_id, SUBNET_MANAGER, &json, generation, "in_sync")
            .map(|_| ())
    })
}

/// Converges UFM: reads its PKeys, makes the calls that differ.
/// Where UFM is: URL, user, sealed password, certificate verification.
type UfmAt<'a> = (&'a str, &'a str, Option<&'a str>, &'a TlsOptions);

fn ufm(
    secrets: &SecretBox,
    (url, username, sealed, tls): UfmAt<'_>,
    fabric: &IbFabric,
    desired: &IbDesired,
) -> std::result::Result<Vec<UfmCall>, String> {
    let password = match sealed {
        Some(s) => secrets.open(s).map_err(|e| format!("UFM password: {e}"))?,
        None => String::new(),
    };
    if let Some(w) = tls.warning(url) {
        tracing::warn!("{w}");
    }
    let mut cfg = UfmConfig::new(url, username, &password);
    cfg.tls = tls.clone();
    let ufm = Ufm::new(cfg);
    ufm.converge(fabric, desired).map_err(|e| e.to_string())
}
