//! Controllers: convergence loops that take no input, run periodically,
//! and are the only writers of the state they own.

pub mod fabric;
pub mod lifecycle;
