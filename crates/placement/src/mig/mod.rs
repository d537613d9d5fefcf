//! The MIG planner: NVIDIA Multi-Instance GPU profiles, one GPU's layout of
//! GPU instances, and the choice of where the next instance goes.
//!
//! Source: `shared/reference/vendor-apis.md` §7 (NVIDIA MIG User Guide,
//! `nvidia-smi mig -lgipp` output of A100, H100 SXM and H100 NVL).
//!
//! # The placement model
//!
//! A MIG-capable GPU has [`MEMORY_SLICES`] (8) memory slices and
//! [`COMPUTE_SLICES`] (7) compute slices. Every GPU instance profile has a
//! size in memory slices and a fixed set of valid start indices, both on the
//! 8-wide memory-slice axis (what `nvidia-smi mig -lgipp` prints as
//! `{starts}:size`). Two instances conflict exactly when their
//! `[start, start + size)` ranges overlap. On top of that:
//!
//! - the compute slices of the instances on a GPU add up to at most 7;
//! - each profile has a maximum number of instances per GPU; the only one
//!   the geometry does not already imply is `+me`: one per GPU although it
//!   may start anywhere in 0..=6.
//!
//! | ID | Shape | Starts:size | Max |
//! |----|-------|-------------|-----|
//! | 19 | 1g, 1/8 memory | {0,1,2,3,4,5,6}:1 | 7 |
//! | 20 | 1g +me | {0,1,2,3,4,5,6}:1 | 1 |
//! | 15 | 1g, 2/8 memory | {0,2,4,6}:2 | 4 |
//! | 14 | 2g | {0,2,4}:2 | 3 |
//! | 9  | 3g | {0,4}:4 | 2 |
//! | 5  | 4g | {0}:4 | 1 |
//! | 0  | 7g | {0}:8 | 1 |
//!
//! The last memory slice (7) is never a valid start: only a 1g double-memory
//! instance at 6, a 3g at 4 or the 7g can use it. That is why 7 x 1g fills a
//! GPU although one memory slice stays free.
//!
//! # Reference flags, kept here on purpose
//!
//! - H200 and B200 `-lgipp` placement output was **not found**. Their
//!   profile IDs and memory fractions match A100/H100, so the same grid is
//!   assumed; **check it on the hardware**.
//! - The go-nvml mock placements for H100/H200/B200 look simplified (e.g.
//!   7g as `{0}:7`); they are not ground truth.
//! - NVML profile *indices* (0, 7, 9, ...) differ from the `nvidia-smi`
//!   profile *IDs* (19, 20, 15, ...); [`Profile::id`] is the `nvidia-smi` ID
//!   (`nvmlDeviceGetGpuInstanceProfileInfo().id`).
//! - An instance is created at a chosen start with
//!   `nvmlDeviceCreateGpuInstanceWithPlacement`; MIG mode is enabled with
//!   `nvidia-smi -i <gpu> -mig 1`.
//!
//! # What lives where
//!
//! - [`GpuModel`] and [`Profile`]: the static profile tables per model.
//! - [`Layout`]: one GPU's instances, with [`Layout::fits`] (and why not),
//!   [`Layout::place`] (the placement policy), [`Layout::add`] and
//!   [`Layout::remove`].
//! - [`plan_layout`]: an exact planner for a whole multiset of profiles on
//!   one empty GPU.

mod layout;
mod model;
mod plan;

pub use layout::{Conflict, Instance, Layout, LayoutError};
pub use model::{GpuModel, Profile, UnknownGpuModel, COMPUTE_SLICES, MEMORY_SLICES};
pub use plan::{plan_layout, PlanError};
