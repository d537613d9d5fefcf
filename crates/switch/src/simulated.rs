//! The SIMULATED switch: a stand-in for the demo datacenter and the
//! benchmarks, never for a real device in a driver's tests. It accepts what
//! it is given, remembers it with its generation, and refuses older
//! generations like a real driver does.

use crate::{Applied, Apply, Checked, Drift, DriverError, Result, SwitchDriver};
use neocloud_fabric::{diff_switch, SwitchConfig, SwitchOs};
use std::sync::Mutex;

pub struct SimulatedSwitch {
    name: String,
    os: SwitchOs,
    held: Mutex<(Option<u64>, SwitchConfig)>,
}

impl SimulatedSwitch {
    pub fn new(name: &str, os: SwitchOs) -> SimulatedSwitch {
        SimulatedSwitch {
            name: name.to_string(),
            os,
            held: Mutex::new((None, SwitchConfig::new(os))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<u64>, SwitchConfig)> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SwitchDriver for SimulatedSwitch {
    fn os(&self) -> SwitchOs {
        self.os
    }

    fn apply(&self, a: &Apply<'_>) -> Result<Applied> {
        let mut held = self.lock();
        if let Some(g) = held.0 {
            if g > a.generation {
                return Err(DriverError::Stale { device: g, offered: a.generation });
            }
        }
        let steps = diff_switch(&self.name, Some(a.desired), Some(&held.1))
            .iter()
            .map(|c| format!("{:?}", c.op))
            .collect();
        if !a.dry_run {
            *held = (Some(a.generation), a.desired.clone());
        }
        Ok(Applied { steps, dry_run: a.dry_run })
    }

    fn check(&self, expected: &SwitchConfig) -> Result<Checked> {
        let held = self.lock();
        let drift = diff_switch(&self.name, Some(expected), Some(&held.1))
            .into_iter()
            .map(|c| Drift { object: c.id(), detail: "differs on the simulated switch".into() })
            .collect();
        Ok(Checked { generation: held.0, drift })
    }
}
