//! Switch drivers by management transport and OS, built once per switch
//! and rebuilt when its management changes.

use crate::network::model;
use crate::secrets::SecretBox;
use neocloud_fabric::SwitchOs;
use neocloud_switch::simulated::SimulatedSwitch;
use neocloud_switch::{DriverError, SwitchDriver};
use neocloud_types::{SwitchManagement, SwitchSpec};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Key = (String, String);
/// A built driver and the management it was built for.
type Built = (SwitchManagement, Arc<dyn SwitchDriver>);

#[derive(Default)]
pub struct Drivers {
    /// Whether `nsenter` management (switches as local namespaces: labs)
    /// is allowed on this server.
    pub allow_local: bool,
    built: Mutex<HashMap<Key, Built>>,
    simulated: Mutex<HashMap<Key, Arc<SimulatedSwitch>>>,
}

impl Drivers {
    pub fn new(allow_local: bool) -> Drivers {
        Drivers { allow_local, ..Drivers::default() }
    }

    /// The driver of a switch.
    pub fn get(
        &self,
        fabric_id: &str,
        spec: &SwitchSpec,
        secrets: &SecretBox,
    ) -> Result<Arc<dyn SwitchDriver>, DriverError> {
        let key = (fabric_id.to_string(), spec.name.to_string());
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((m, d)) = built.get(&key) {
            if *m == spec.management {
                return Ok(d.clone());
            }
        }
        let d = self.build(&key, spec, secrets)?;
        built.insert(key, (spec.management.clone(), d.clone()));
        Ok(d)
    }

    fn build(
        &self,
        key: &Key,
        spec: &SwitchSpec,
        secrets: &SecretBox,
    ) -> Result<Arc<dyn SwitchDriver>, DriverError> {
        let os = model::os(spec.os);
        let name = spec.name.as_str();
        match &spec.management {
            SwitchManagement::None => {
                Err(DriverError::Unsupported("the switch is not managed (management: none)".into()))
            }
            SwitchManagement::Simulated => {
                let mut sims = self.simulated.lock().unwrap_or_else(|p| p.into_inner());
                let sim = sims
                    .entry(key.clone())
                    .or_insert_with(|| Arc::new(SimulatedSwitch::new(name, os)))
                    .clone();
                Ok(sim)
            }
            SwitchManagement::Ssh { .. } | SwitchManagement::Nsenter { .. } => {
                if matches!(spec.management, SwitchManagement::Nsenter { .. }) && !self.allow_local
                {
                    return Err(DriverError::Unsupported(
                        "local (nsenter) switches are disabled on this server (allow_local_switches)"
                            .into(),
                    ));
                }
                frr(name, &spec.management)
            }
            SwitchManagement::Https { url, username, password, tls } => {
                let password = match password {
                    Some(sealed) => secrets
                        .open(sealed)
                        .map_err(|e| DriverError::Failed(format!("switch password: {e}")))?,
                    None => String::new(),
                };
                if let Some(w) = tls.warning(name) {
                    tracing::warn!("{w}");
                }
                https(name, os, url, username, &password, tls)
            }
        }
    }
}

/// The FRR/Linux driver over ssh, or nsenter for a lab's namespaces.
fn frr(name: &str, m: &SwitchManagement) -> Result<Arc<dyn SwitchDriver>, DriverError> {
    use neocloud_switch::frr::{FrrFileLayout, FrrLinux, FrrLinuxConfig, Reload, Transport};
    let (transport, o) = match m {
        SwitchManagement::Ssh { host, port, user, identity_file, frr } => (
            Transport::Ssh {
                host: host.clone(),
                port: *port,
                user: user.clone(),
                identity_file: identity_file.clone(),
                options: Vec::new(),
            },
            frr,
        ),
        SwitchManagement::Nsenter { pid, frr } => (Transport::Nsenter { pid: *pid }, frr),
        SwitchManagement::None | SwitchManagement::Simulated | SwitchManagement::Https { .. } => {
            return Err(DriverError::Unsupported("not an FRR/Linux management".into()))
        }
    };
    let mut c = FrrLinuxConfig::new(transport);
    if let Some(d) = &o.config_dir {
        c.config_dir = d.clone();
    }
    if o.per_daemon_files {
        c.files = FrrFileLayout::PerDaemon;
    }
    if let Some(argv) = &o.reload_command {
        c.reload = Reload::Command { argv: argv.clone() };
    }
    c.file_owner = o.file_owner.clone();
    if let Some(d) = &o.state_dir {
        c.state_dir = d.clone();
    }
    Ok(Arc::new(FrrLinux::new(name, c)))
}

/// The OS's HTTPS management API driver.
fn https(
    name: &str,
    os: SwitchOs,
    url: &str,
    username: &str,
    password: &str,
    tls: &neocloud_common::tls::TlsOptions,
) -> Result<Arc<dyn SwitchDriver>, DriverError> {
    use neocloud_switch::{eos, nvue, sonic};
    Ok(match os {
        SwitchOs::CumulusNvue => {
            let mut c = nvue::NvueConfig::new(name, url, username, password);
            c.tls = tls.clone();
            Arc::new(nvue::Nvue::new(c))
        }
        SwitchOs::AristaEos => {
            let mut c = eos::EosConfig::new(name, url, username, password);
            c.tls = tls.clone();
            Arc::new(eos::Eos::new(c))
        }
        SwitchOs::Sonic => {
            let mut c = sonic::SonicRestConfig::new(name, url, username, password);
            c.tls = tls.clone();
            Arc::new(sonic::Sonic::new(c))
        }
        SwitchOs::Frr => {
            return Err(DriverError::Unsupported(
                "FRR switches are managed over ssh or nsenter".into(),
            ))
        }
    })
}
