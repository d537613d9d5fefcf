//! Server configuration: a TOML file (`--config`), overridden by flags.

use neocloud_common::{Error, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// What the control plane does with the BMCs' host interfaces (the host's
/// channel to its BMC's Redfish service; with credential bootstrapping on,
/// the host obtains BMC credentials without knowing any).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HostInterfacePolicy {
    /// Turned off at inspection and at the end of every sanitization, and
    /// read back: a tenant's OS finds no channel to the BMC. A BMC that
    /// keeps one on fails the node.
    #[default]
    Disabled,
    /// Left as the BMC's own settings have them (a provider whose tools use
    /// them, on BMCs it secures otherwise); still reported.
    Unmanaged,
}

/// What every sanitization does with the BMC's system event log
/// (`bmc_sel`).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SelPolicy {
    /// Cleared after the power off and read back: what a tenant's host
    /// wrote there in-band does not reach the next tenant. A BMC that will
    /// not clear it fails the record.
    #[default]
    Clear,
    /// Left as it is (a BMC model that cannot clear it over Redfish, where
    /// the provider clears it otherwise); the record says so.
    Unmanaged,
}

/// Which local accounts a node's BMC may keep enabled (`bmc_accounts`).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BmcAccountPolicy {
    /// The accounts enabled at the node's first clean inspection, in their
    /// roles (the provider's own among them); every sanitization disables
    /// any other a tenant enabled or added.
    #[default]
    Baseline,
    /// The control plane's account alone: a clean inspection disables every
    /// other enabled account (read back; one the BMC keeps enabled fails the
    /// node), and every sanitization disables any found enabled again. With
    /// `bmc_password_rotation`, no password a tenant could have set or
    /// learnt opens the BMC after its tenancy.
    Exclusive,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// Store URL: `sqlite://PATH` or `postgres://...`; default
    /// `sqlite://<data_dir>/neocloud.db`.
    pub db: Option<String>,
    /// Where the embedded store and `admin.token` live.
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Requests per second per principal (0: no limit) and burst.
    pub rate_limit_per_sec: u32,
    pub rate_limit_burst: u32,
    /// Requests per second per client address whose credential fails (0: no
    /// limit) and burst. Past it, failed attempts are refused with 429 and
    /// counted in metrics instead of each writing an audit event.
    pub anonymous_rate_limit_per_sec: u32,
    pub anonymous_rate_limit_burst: u32,
    /// How often token last-used times are written.
    pub token_flush_secs: u64,
    /// How long create results are kept for `Idempotency-Key` retries.
    pub idempotency_ttl_secs: u64,
    /// Seed an empty store with a small simulated datacenter.
    pub demo: bool,
    /// The key that seals secrets at rest (default `<data_dir>/secrets.key`,
    /// created on first start). Replicas sharing a store must share it.
    pub secrets_key_file: Option<PathBuf>,
    /// How often the node lifecycle controller runs (0: not on this replica).
    pub lifecycle_interval_ms: u64,
    /// Per-request BMC timeout for the lifecycle controller.
    pub bmc_timeout_ms: u64,
    /// Nodes the lifecycle controller steps at once (each step waits on
    /// its BMC on a blocking thread).
    pub lifecycle_parallel_steps: usize,
    /// The URL nodes reach the control plane at (boot service, agents);
    /// default `http://<boot_listen>`, else `http://<listen>`.
    pub boot_url: Option<String>,
    /// Where the boot service (`/boot/*`: iPXE scripts, which carry each
    /// node's one-time token, NoCloud documents, per-node ISOs) listens,
    /// apart from the API: an address on the provisioning network, which
    /// no tenant's node reaches. Set, the API's listener does not serve
    /// `/boot/*`; the agent API (`/agent/v1/*`) is served on both. None:
    /// `/boot/*` on `listen` (the demo, a lab), and whatever reaches the
    /// API (a tenant's node, for its agent) can read any node's boot
    /// script by its MAC: a warning at start.
    pub boot_listen: Option<String>,
    /// The URL the nodes' agents reach the agent API at (`neocloud.api=`
    /// on their kernel line, `--api` in cloud-init's vendor-data), where it
    /// is not `boot_url`: an `https://` one (a TLS terminator in front, the
    /// provider's CA in its images: `neocloud-agent --ca-file`) while iPXE
    /// fetches its scripts over plain HTTP. Default: `boot_url`.
    pub agent_api_url: Option<String>,
    /// An iPXE ISO for nodes whose `boot_method` is `virtual_media`: the
    /// BMC inserts it in its virtual CD and boots it once. Build it with an
    /// embedded script that chains to the boot service by MAC, e.g.
    /// `chain <boot_url>/boot/ipxe?mac=${net0/mac}`. None: such nodes
    /// cannot be enrolled.
    pub virtual_media_iso_url: Option<String>,
    /// An iPXE EFI binary for nodes whose `boot_method` is `uefi_http`: the
    /// BMC sets it as the one-time boot's `HttpBootUri` and the firmware
    /// fetches and runs it. Build it with the same embedded script as the
    /// ISO. None: such nodes cannot be enrolled.
    pub uefi_http_boot_url: Option<String>,
    /// Per-node virtual-media ISOs, for nodes with a `boot_network` (a
    /// static provisioning address, no DHCP): the iPXE binaries they are
    /// built from (`xorriso` and `mtools` on the PATH). None: such nodes
    /// cannot be enrolled.
    pub per_node_iso: Option<crate::boot::iso::PerNodeIsoConfig>,
    /// A node joins the pool only once sanitized: a node that never
    /// completed a sanitization (a new one, or one enrolled again) boots
    /// the sanitizer after its first inspection, so nothing a previous
    /// owner, integrator or burn-in left on its disks, TPM, BMC or firmware
    /// settings reaches the first tenant. On by default; off, a new node is
    /// available after its inspection.
    pub sanitize_before_first_use: bool,
    /// Every sanitization sets a new random password on the BMC account
    /// the control plane enrolled the node with (and checks it by a
    /// login), so a password that reached a tenant opens nothing after it.
    /// Off by default: that account must be the control plane's alone.
    pub bmc_password_rotation: bool,
    /// The BMCs' host interfaces: `disabled` (the default) or `unmanaged`.
    pub bmc_host_interfaces: HostInterfacePolicy,
    /// The BMCs' local accounts: `baseline` (the default) or `exclusive`.
    pub bmc_accounts: BmcAccountPolicy,
    /// The BMCs' system event logs: `clear` (the default) or `unmanaged`.
    pub bmc_sel: SelPolicy,
    /// The TPM manufacturers' CA certificates (PEM; their intermediates
    /// and roots: the provider's trust store for endorsement keys). Set, a
    /// node's TPM identity is recorded by its first sanitizer only with
    /// the TPM's EK certificate signed by one of these and naming the EK
    /// the sanitizer proved, and a node whose BMC shows a TPM is not
    /// sanitized without an identity on record. Unset (the default): the
    /// first sanitizer's TPM is trusted, as it proved it holds its EK.
    pub tpm_ek_ca_pem: Option<String>,
    /// How often the health watch reads each idle node's health from its
    /// BMC (one read of the host system), so that a node failed in the pool
    /// is inspected (and refused) before a tenant is placed on it; 0: never.
    pub bmc_health_poll_secs: u64,
    /// How often agents heartbeat.
    pub heartbeat_interval_ms: u64,
    /// How long a network boot has to bring up the image's agent (power-on
    /// self-test, PXE, kernel, agent registration) before the controller
    /// boots the node again.
    pub boot_timeout_secs: u64,
    /// Network boots tried before the node is failed.
    pub boot_attempts: u32,
    /// Times an instance is placed on another node when its node fails
    /// before the instance was first handed over (0: never; the instance
    /// fails with its node).
    pub provision_replacements: u32,
    /// How long the sanitizer's agent has to finish its steps before the
    /// node is failed.
    pub agent_timeout_secs: u64,
    /// How long a sanitizer's agent may go unheard (no heartbeat) before
    /// its steps are done: the node reset, crashed or hung under it, and it
    /// is booted again with a fresh token (counted against `boot_attempts`).
    /// At least 15: an agent's last heartbeat is recorded to 5 s, and an
    /// agent backs off up to 5 s while the control plane is away.
    pub agent_silence_secs: u64,
    /// The ed25519 key that signs sanitization records (default
    /// `<data_dir>/signing.key`, created on first start). Replicas share it.
    pub signing_key_file: Option<PathBuf>,
    /// How often the fabric controller converges the switches (0: not on
    /// this replica). It also runs at once after every network change.
    pub fabric_interval_ms: u64,
    /// How often an in-sync switch is checked for drift.
    pub fabric_check_secs: u64,
    /// How long a replica's claim on converging a fabric lasts unless
    /// renewed (every pass renews it; another replica takes over after).
    pub fabric_lease_secs: u64,
    /// Allow `nsenter` switch management (switches that are namespaces on
    /// this host: labs only).
    pub allow_local_switches: bool,
    /// How long a released node's switch ports have to leave the tenant's
    /// networks before its release fails.
    pub isolation_timeout_secs: u64,
    /// How long a firmware update the BMC runs (to the provider's baseline
    /// image, before a released node's sanitizer boots) may take before it
    /// is failed.
    pub firmware_update_timeout_secs: u64,
    /// How long after a firmware update sent with no answer heard, and no
    /// task of the BMC's to trace it to, it may be sent again.
    pub firmware_resend_secs: u64,
    /// Nodes whose BMCs run firmware updates at once, fleet-wide (a rollout
    /// does not have every BMC fetch its image at the same moment).
    pub firmware_updates_in_flight: usize,
    /// How BMCs' certificates are verified: the site's CA bundle
    /// (`ca_pem`), or `insecure_skip_verify` for labs; default: public roots.
    pub bmc_tls: neocloud_common::tls::TlsOptions,
    /// How the control plane verifies the servers it fetches firmware
    /// images from to push them to BMCs (a baseline's `transfer = push`):
    /// the site's CA bundle (`ca_pem`), or `insecure_skip_verify` for
    /// labs; default: public roots.
    pub image_tls: neocloud_common::tls::TlsOptions,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: "127.0.0.1:8080".into(),
            db: None,
            data_dir: PathBuf::from("./data"),
            log_format: LogFormat::Text,
            max_body_bytes: 1 << 20,
            rate_limit_per_sec: 1000,
            rate_limit_burst: 2000,
            anonymous_rate_limit_per_sec: 10,
            anonymous_rate_limit_burst: 50,
            token_flush_secs: 5,
            idempotency_ttl_secs: 24 * 3600,
            demo: false,
            secrets_key_file: None,
            lifecycle_interval_ms: 2000,
            bmc_timeout_ms: 30_000,
            lifecycle_parallel_steps: 64,
            boot_url: None,
            boot_listen: None,
            agent_api_url: None,
            virtual_media_iso_url: None,
            uefi_http_boot_url: None,
            per_node_iso: None,
            sanitize_before_first_use: true,
            bmc_password_rotation: false,
            bmc_host_interfaces: HostInterfacePolicy::Disabled,
            bmc_accounts: BmcAccountPolicy::Baseline,
            bmc_sel: SelPolicy::Clear,
            tpm_ek_ca_pem: None,
            bmc_health_poll_secs: 600,
            heartbeat_interval_ms: 10_000,
            boot_timeout_secs: 600,
            boot_attempts: 3,
            provision_replacements: 2,
            agent_timeout_secs: 1800,
            agent_silence_secs: 30,
            signing_key_file: None,
            fabric_interval_ms: 5000,
            fabric_check_secs: 60,
            fabric_lease_secs: 60,
            allow_local_switches: false,
            isolation_timeout_secs: 600,
            firmware_update_timeout_secs: 3600,
            firmware_resend_secs: 60,
            firmware_updates_in_flight: 16,
            bmc_tls: Default::default(),
            image_tls: Default::default(),
        }
    }
}

/// The shortest `agent_silence_secs`: three times the resolution of an
/// agent's recorded last heartbeat (5 s), so a live agent is never taken
/// for a silent one.
pub const MIN_AGENT_SILENCE_SECS: u64 = 15;

impl Config {
    /// Reads a TOML file; unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid_request("config", format!("cannot read {}: {e}", path.display()))
        })?;
        toml::from_str(&text).map_err(|e| {
            Error::invalid_request("config", format!("{}: {}", path.display(), e.message()))
        })
    }

    pub fn db_url(&self) -> String {
        self.db
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("neocloud.db").display()))
    }

    /// The URL nodes reach the control plane at, the server listening on
    /// `bound` (with port 0 in `listen`, the port it was given).
    pub fn boot_base_url(&self, bound: &str) -> String {
        self.boot_url.clone().unwrap_or_else(|| format!("http://{bound}"))
    }

    /// The URL the nodes' agents reach the agent API at, the boot service
    /// being at `boot_url` (as [`Config::boot_base_url`] answered).
    pub fn agent_api_base_url(&self, boot_url: &str) -> String {
        self.agent_api_url.clone().unwrap_or_else(|| boot_url.to_string())
    }

    /// The TPM manufacturers' CAs (`tpm_ek_ca_pem`), parsed.
    pub fn tpm_ek_trust(&self) -> Result<Option<crate::ek_certificate::EkTrust>> {
        self.tpm_ek_ca_pem
            .as_deref()
            .map(crate::ek_certificate::EkTrust::from_pem)
            .transpose()
            .map_err(|e| Error::invalid_value("tpm_ek_ca_pem", e))
    }

    pub fn validate(&self) -> Result<()> {
        self.bmc_tls
            .validate()
            .map_err(|e| Error::invalid_value("bmc_tls.ca_pem", e.to_string()))?;
        self.image_tls
            .validate()
            .map_err(|e| Error::invalid_value("image_tls.ca_pem", e.to_string()))?;
        self.tpm_ek_trust()?;
        for (field, url, who) in [
            ("boot_url", &self.boot_url, None),
            ("agent_api_url", &self.agent_api_url, None),
            ("virtual_media_iso_url", &self.virtual_media_iso_url, Some("the BMCs")),
            ("uefi_http_boot_url", &self.uefi_http_boot_url, Some("the nodes' firmware")),
        ] {
            if let Some(u) = url {
                if !(u.starts_with("http://") || u.starts_with("https://"))
                    || u.chars().any(char::is_whitespace)
                {
                    let reach = who.map(|w| format!(" {w} can reach")).unwrap_or_default();
                    return Err(Error::invalid_value(
                        field,
                        format!("must be an http(s) URL{reach}"),
                    ));
                }
            }
        }
        if self.heartbeat_interval_ms < 10 {
            return Err(Error::invalid_value("heartbeat_interval_ms", "must be at least 10"));
        }
        if self.boot_timeout_secs == 0 {
            return Err(Error::invalid_value("boot_timeout_secs", "must be positive"));
        }
        if !(1..=20).contains(&self.boot_attempts) {
            return Err(Error::invalid_value("boot_attempts", "must be between 1 and 20"));
        }
        if self.provision_replacements > 20 {
            return Err(Error::invalid_value("provision_replacements", "must be at most 20"));
        }
        if self.agent_timeout_secs == 0 {
            return Err(Error::invalid_value("agent_timeout_secs", "must be positive"));
        }
        if self.agent_silence_secs < MIN_AGENT_SILENCE_SECS {
            return Err(Error::invalid_value(
                "agent_silence_secs",
                format!("must be at least {MIN_AGENT_SILENCE_SECS}"),
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(Error::invalid_value("max_body_bytes", "must be at least 1024"));
        }
        if self.token_flush_secs == 0 {
            return Err(Error::invalid_value("token_flush_secs", "must be positive"));
        }
        // 0 would hold every firmware update forever.
        if self.firmware_updates_in_flight == 0 {
            return Err(Error::invalid_value("firmware_updates_in_flight", "must be positive"));
        }
        if self.firmware_update_timeout_secs == 0 {
            return Err(Error::invalid_value("firmware_update_timeout_secs", "must be positive"));
        }
        if self.firmware_resend_secs == 0 {
            return Err(Error::invalid_value("firmware_resend_secs", "must be positive"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_rejects_unknown_keys() {
        let dir = std::env::temp_dir().join(format!("nc-config-{}", neocloud_common::new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        std::fs::write(&f, "listen = \"0.0.0.0:9000\"\nlog_format = \"json\"\n").unwrap();
        let c = Config::from_file(&f).unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.max_body_bytes, 1 << 20);
        std::fs::write(&f, "lisen = \"x\"\n").unwrap();
        let e = Config::from_file(&f).unwrap_err();
        assert!(e.external_message().contains("lisen"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn provisioning_networks_are_the_apis() {
        // They were configuration until 2026-12-06: a file that still has
        // them is refused, not read without them.
        let t = "[[provisioning_networks]]\nname = \"pod1\"\nsubnet = \"10.0.8.0/22\"\n";
        let e = toml::from_str::<Config>(t).unwrap_err();
        assert!(e.to_string().contains("provisioning_networks"), "{e}");
    }

    #[test]
    fn the_agent_api_url_defaults_to_the_boot_url_and_is_an_http_url() {
        let c: Config = toml::from_str("boot_url = \"http://10.0.0.1:8080\"").unwrap();
        let boot = c.boot_base_url("127.0.0.1:8080");
        assert_eq!(boot, "http://10.0.0.1:8080");
        assert_eq!(c.agent_api_base_url(&boot), "http://10.0.0.1:8080");
        let c = Config::default();
        assert_eq!(c.boot_base_url("127.0.0.1:41234"), "http://127.0.0.1:41234", "as bound");
        let c: Config = toml::from_str("agent_api_url = \"cp.example:8443\"").unwrap();
        assert_eq!(c.validate().unwrap_err().field(), Some("agent_api_url"));
    }

    #[test]
    fn a_bad_image_ca_is_named() {
        let c: Config = toml::from_str("[image_tls]\nca_pem = \"not a certificate\"\n").unwrap();
        assert_eq!(c.validate().unwrap_err().field(), Some("image_tls.ca_pem"));
        let c: Config = toml::from_str("[image_tls]\ninsecure_skip_verify = true\n").unwrap();
        assert!(c.validate().is_ok() && c.image_tls.insecure_skip_verify);
    }

    /// The README's example configuration reads and validates.
    #[test]
    fn the_readmes_example_is_a_valid_configuration() {
        let readme = include_str!("../../../README.md");
        let block = readme
            .split("```toml\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .expect("a toml block in the README");
        let c: Config = toml::from_str(block).expect("the README's configuration");
        c.validate().expect("valid");
        assert!(c.bmc_password_rotation);
        assert_eq!(c.bmc_host_interfaces, HostInterfacePolicy::Disabled);
        assert_eq!(c.bmc_accounts, BmcAccountPolicy::Exclusive);
        assert_eq!(c.bmc_sel, SelPolicy::Clear);
        assert_eq!(c.bmc_health_poll_secs, 600);
        let boot = c.boot_base_url(&c.listen);
        assert_eq!(c.agent_api_base_url(&boot), "https://cp.example:8443");
        assert_eq!(boot, format!("http://{}", c.listen), "iPXE keeps boot_url");
        let iso = c.per_node_iso.expect("per_node_iso");
        assert_eq!(iso.ipxe_efi, std::path::Path::new("/usr/lib/ipxe/ipxe.efi"));
        assert_eq!(iso.ipxe_lkrn, None);
    }

    #[test]
    fn the_host_interface_policy_is_one_of_two() {
        let c: Config = toml::from_str("bmc_host_interfaces = \"unmanaged\"").unwrap();
        assert_eq!(c.bmc_host_interfaces, HostInterfacePolicy::Unmanaged);
        assert_eq!(Config::default().bmc_host_interfaces, HostInterfacePolicy::Disabled);
        let e = toml::from_str::<Config>("bmc_host_interfaces = \"sometimes\"").unwrap_err();
        assert!(e.message().contains("unknown variant `sometimes`"), "{e}");
    }

    #[test]
    fn the_sel_policy_is_one_of_two() {
        let c: Config = toml::from_str("bmc_sel = \"unmanaged\"").unwrap();
        assert_eq!(c.bmc_sel, SelPolicy::Unmanaged);
        assert_eq!(Config::default().bmc_sel, SelPolicy::Clear);
        let e = toml::from_str::<Config>("bmc_sel = \"archive\"").unwrap_err();
        assert!(e.message().contains("unknown variant `archive`"), "{e}");
    }

    #[test]
    fn the_account_policy_is_one_of_two() {
        let c: Config = toml::from_str("bmc_accounts = \"exclusive\"").unwrap();
        assert_eq!(c.bmc_accounts, BmcAccountPolicy::Exclusive);
        assert_eq!(Config::default().bmc_accounts, BmcAccountPolicy::Baseline);
        let e = toml::from_str::<Config>("bmc_accounts = \"mine\"").unwrap_err();
        assert!(e.message().contains("unknown variant `mine`"), "{e}");
    }

    #[test]
    fn agent_silence_must_outlast_the_heartbeat_record() {
        let mut c = Config::default();
        assert!(c.validate().is_ok());
        c.agent_silence_secs = MIN_AGENT_SILENCE_SECS - 1;
        let e = c.validate().unwrap_err();
        assert!(format!("{e:?}").contains("agent_silence_secs"), "{e:?}");
        c.agent_silence_secs = MIN_AGENT_SILENCE_SECS;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn firmware_updates_need_a_slot_and_time() {
        type Case = (fn(&mut Config), &'static str);
        let cases: [Case; 3] = [
            (|c| c.firmware_updates_in_flight = 0, "firmware_updates_in_flight"),
            (|c| c.firmware_update_timeout_secs = 0, "firmware_update_timeout_secs"),
            (|c| c.firmware_resend_secs = 0, "firmware_resend_secs"),
        ];
        for (set, field) in cases {
            let mut c = Config::default();
            set(&mut c);
            let e = c.validate().unwrap_err();
            assert!(format!("{e:?}").contains(field), "{field}: {e:?}");
        }
    }
}
