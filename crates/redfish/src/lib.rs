//! The Redfish BMC driver: one [`Bmc`] per baseboard management controller,
//! with its session (`X-Auth-Token`, re-login on expiry, basic auth where
//! there is no session service), a limit of requests in flight, a slow lane
//! for slow calls, timeouts, and retries with backoff for transient
//! failures. Operations discover resource ids from collections.
//!
//! Blocking by design: the control plane runs BMC work on blocking threads,
//! one BMC's slowness never blocks another's (each has its own limits).

mod bios;
mod boot_options;
mod client;
mod error;
mod health;
mod host_interfaces;
mod limiter;
mod ops;
mod security;
mod update;

pub use bios::{bios_changes, Bios, BiosAttributes};
pub use boot_options::{boot_order_of, BootOption};
pub use client::{Answer, Bmc, BmcConfig, Session};
pub use error::{RedfishError, Result};
pub use health::{is_critical, Health, HealthEvent, HealthFault, LogService, EVENTS_KEPT};
pub use host_interfaces::HostInterface;
pub use limiter::{Lanes, LanesByEndpoint};
pub use ops::{
    BootTarget, Cpu, Firmware, Gpu, Inventory, MediaSlot, NicInfo, PowerState, ResetType,
    SystemInfo,
};
pub use security::{BmcAccount, SecureBoot};
pub use update::{RequiredReset, ResetScope, Task, TaskProgress};
