//! The fabric core, pure and synchronous (no I/O, no clocks, no
//! randomness): an EVPN/VXLAN fabric and tenant networks as data; id and
//! address pools kept as a ledger; a planner from tenant intent to the
//! objects each switch must have; renderers per switch OS; and a diff from
//! what a switch has to what it should have.
//!
//! The flow: `validate` -> `allocate` (ledger in, ledger out) -> `plan` ->
//! `render` (or `diff` against observed state, then render the changes).
//! `IncrementalPlanner` keeps all of that across tenant changes and does
//! for each change only the work it can affect, with the same results.
//! See docs/fabric.md for the design.

pub mod alloc;
pub mod desired;
pub mod diff;
pub mod entries;
pub mod error;
pub mod ib;
pub mod incremental;
mod index;
pub mod intent;
mod ipam;
pub mod model;
pub mod net;
pub mod plan;
mod pool;
pub mod render;
pub mod validate;

pub use alloc::{allocate, Allocations, NetworkAllocation, SwitchVlans, VpcAllocation};
pub use desired::{
    BgpConfig, BgpPeer, DesiredState, FloatingIpConfig, NatConfig, Object, ObjectId, PolicyAllow,
    PolicyConfig, PortConfig, PortMode, PublicLinkConfig, SegmentConfig, SegmentPurpose,
    SwitchConfig, UplinkConfig, VrfConfig, VtepConfig, PUBLIC_LINK_UNDERLAY, PUBLIC_LINK_VRF,
};
pub use diff::{apply, diff, diff_switch, Change, Op};
pub use entries::LedgerKey;
pub use error::{Error, Result};
pub use incremental::{
    Applied, IncrementalPlanner, SwitchChange, TenantChange, TenantKey, TenantObject,
};
pub use intent::{Attachment, FloatingIp, Intent, NatGateway, Network, SecurityRule, Vpc};
pub use model::{
    Fabric, FabricKind, FabricPort, IdRange, Link, Pools, Provisioning, Switch, SwitchOs,
    SwitchRole, Uplink,
};
pub use net::{Ipv4Net, PortAllow, PortRange, Protocol, RouteTarget};
pub use plan::{plan, Planner};
pub use validate::validate;
