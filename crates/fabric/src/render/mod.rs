//! Renderers: desired objects -> each switch OS's configuration. One
//! module per OS; each follows shared/reference/vendor-apis.md §5 (and, for
//! FRR/Linux, shared/reference/fabric-lab.md) and says in its module doc
//! where the reference is silent. Renderers see only a `SwitchConfig`: all
//! they need is in the objects.
//!
//! An object an OS renderer cannot express (today: security policies, NAT,
//! floating IPs and the border uplink with its public links outside
//! FRR/Linux) is an `Error::Unsupported`, never silently skipped.

pub mod eos;
pub mod frr;
pub mod linux;
pub mod nvue;
pub mod sonic;

use crate::desired::SwitchConfig;
use crate::error::Result;
use crate::model::SwitchOs;
use frr::FrrFiles;
use linux::Command;
use sonic::SonicConfig;

/// A switch's full configuration in its OS's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendered {
    /// FRR daemons' files plus the Linux netdev/nftables steps.
    Frr {
        files: FrrFiles,
        commands: Vec<Command>,
    },
    Sonic(SonicConfig),
    /// `nv` commands ending in `nv config apply`.
    Nvue(Vec<String>),
    /// EOS running-config text.
    Eos(String),
}

/// Renders a switch with the renderer of its OS.
pub fn render(switch: &str, cfg: &SwitchConfig) -> Result<Rendered> {
    Ok(match cfg.os {
        SwitchOs::Frr => {
            Rendered::Frr { files: frr::render(switch, cfg), commands: linux::render(switch, cfg)? }
        }
        SwitchOs::Sonic => Rendered::Sonic(sonic::render(switch, cfg)?),
        SwitchOs::CumulusNvue => Rendered::Nvue(nvue::render(switch, cfg)?),
        SwitchOs::AristaEos => Rendered::Eos(eos::render(switch, cfg)?),
    })
}

/// What converges an FRR/Linux switch: netdev steps, and new FRR files
/// when FRR's part changed (to load with `frr-reload.py`, which computes
/// FRR's own minimal change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrrConverge {
    pub commands: Vec<Command>,
    pub frr: Option<FrrFiles>,
}

/// Converges an FRR/Linux switch from `actual` to `desired`. Netdev steps
/// run before the FRR reload, so FRR finds the VRF namespaces and VNIs it
/// is told about (and removals happen before FRR drops their config, which
/// FRR tolerates).
pub fn converge_frr(
    switch: &str,
    actual: &SwitchConfig,
    desired: &SwitchConfig,
) -> Result<FrrConverge> {
    let commands = linux::converge(switch, actual, desired)?;
    let new = frr::render(switch, desired);
    let frr = (new != frr::render(switch, actual)).then_some(new);
    Ok(FrrConverge { commands, frr })
}
