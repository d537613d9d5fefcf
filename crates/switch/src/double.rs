//! Protocol-faithful test doubles of the switch APIs the drivers speak (no
//! real switch can run in tests), each written from the vendor's documented
//! API: `nvue` (Cumulus NVUE REST: revisions), `eos` (Arista eAPI JSON-RPC
//! with configure sessions), `sonic` (the SONiC management framework's
//! RESTCONF over CONFIG_DB). Each records every request so tests can assert
//! on the exact calls, and lets a test change the device behind the
//! driver's back. `lab` plans a small fabric to feed them.
//!
//! The HTTP plumbing is `neocloud_common::http_double`.

pub mod eos;
pub mod lab;
pub mod nvue;
pub mod sonic;
