//! The placement core, pure and synchronous (no I/O, no clocks, no
//! randomness): the GPU topology model, the MIG planner, and the placement
//! engine every allocation goes through.

pub mod capacity;
pub mod engine;
pub mod mig;
pub mod request;
pub mod topology;

pub use engine::{ApplyError, Engine};
pub use request::{
    Assignment, Constraints, MigSlice, NoFit, Placement, Policy, Request, Scope, Shape, Within,
};
pub use topology::{Availability, NodeSpec, SimulatedFleet};
