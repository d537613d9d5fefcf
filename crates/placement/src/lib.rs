//! The placement core, pure and synchronous (no I/O, no clocks, no
//! randomness): the GPU topology model, the MIG planner, and the placement
//! engine every allocation goes through.

pub mod mig;
