//! Tenant networking as the server holds it: the provider's fabric
//! document turned into the fabric core's model (`model`), everything a
//! fabric must carry loaded from the store as the core's intent (`intent`),
//! the ledger kept by entry (`ledger`), and one kept planner per fabric,
//! fed every tenant change under the fabric's lock (`planners`). The API's
//! handlers and the controllers share these; none plans on its own terms.

pub mod ib;
pub mod intent;
pub mod isolation;
pub mod ledger;
pub mod model;
pub mod plan;
pub mod planners;

use neocloud_common::Error;

/// Maps the fabric core's errors. Its field paths (`switches[2].asn`) name
/// the provider's document, converted in order (tenant requests: see
/// `intent::tenant_terms`).
pub fn fabric_error(e: neocloud_fabric::Error) -> Error {
    use neocloud_fabric::Error as F;
    match e {
        F::Invalid { field, reason } => {
            let field = field.strip_prefix("fabric.").unwrap_or(&field).to_string();
            Error::invalid_value(field, reason)
        }
        F::Exhausted { field, reason } => {
            Error::conflict(format!("the fabric's pool {field} is exhausted: {reason}"))
        }
        F::Unallocated { field, reason } => {
            Error::internal(format!("fabric ledger lacks {field}: {reason}"))
        }
        F::Unsupported { switch, object, reason } => Error::invalid_value(
            "switches",
            format!("switch {switch} cannot carry {object}: {reason}"),
        ),
    }
}
