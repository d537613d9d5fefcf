//! The REST switch drivers' shared HTTP client over HTTPS, through the EOS
//! driver's eAPI call against a loopback HTTPS eAPI with the fixed test
//! certificate (no network): `runCmds` works when the test CA is given
//! (`ca_pem`); the default roots refuse the certificate as `Unreachable`,
//! saying why, before any request reaches the switch; and
//! `insecure_skip_verify` connects. NVUE and SONiC build the same client
//! from their `tls` field.

use neocloud_common::http_double::{HttpDouble, Request, Response, TEST_CA_PEM};
use neocloud_common::tls::TlsOptions;
use neocloud_switch::eos::{Eos, EosConfig};
use neocloud_switch::nvue::NvueConfig;
use neocloud_switch::sonic::SonicRestConfig;
use neocloud_switch::DriverError;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An eAPI that answers `show version`, recording the commands it ran.
fn eapi() -> (HttpDouble, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s = seen.clone();
    let server = HttpDouble::start_https(move |r: &Request| {
        if !r.authorized("admin", "arista") {
            return Response::text(401, "Unable to authenticate user");
        }
        let body = r.json().unwrap_or_default();
        let cmds: Vec<String> = body["params"]["cmds"]
            .as_array()
            .map(|c| c.iter().filter_map(|x| x.as_str().map(String::from)).collect())
            .unwrap_or_default();
        s.lock().unwrap().extend(cmds.iter().cloned());
        let result: Vec<_> = cmds
            .iter()
            .map(|_| json!({"modelName": "DCS-7050SX3", "version": "4.30.1F"}))
            .collect();
        Response::json(200, &json!({"jsonrpc": "2.0", "id": body["id"], "result": result}))
    });
    (server, seen)
}

fn eos(url: &str, tls: TlsOptions) -> Eos {
    let mut cfg = EosConfig::new("leaf1", url, "admin", "arista");
    cfg.timeout = Duration::from_secs(5);
    cfg.tls = tls;
    Eos::new(cfg)
}

fn show_version(e: &Eos) -> Result<serde_json::Value, DriverError> {
    Ok(e.run(&["show version".into()], "json")?.remove(0))
}

#[test]
fn eapi_over_https_with_the_switch_ca() {
    let (server, seen) = eapi();
    assert!(server.url.starts_with("https://"));
    let v = show_version(&eos(&server.url, TlsOptions::with_ca_pem(TEST_CA_PEM))).unwrap();
    assert_eq!(v["version"], "4.30.1F");
    assert_eq!(*seen.lock().unwrap(), ["show version"]);
}

#[test]
fn the_default_roots_refuse_a_private_ca_as_unreachable() {
    let (server, seen) = eapi();
    match show_version(&eos(&server.url, TlsOptions::default())) {
        Err(DriverError::Unreachable(m)) => {
            assert!(m.starts_with("POST /command-api: "), "{m}");
            assert!(m.contains("invalid peer certificate: UnknownIssuer"), "{m}");
            assert!(m.contains("ca_pem"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert!(seen.lock().unwrap().is_empty(), "nothing reached the switch");
}

#[test]
fn insecure_skip_verify_connects() {
    let (server, _) = eapi();
    let v = show_version(&eos(&server.url, TlsOptions::insecure())).unwrap();
    assert_eq!(v["modelName"], "DCS-7050SX3");
}

#[test]
fn every_rest_config_defaults_to_full_verification() {
    let (sw, url, user, pw) = ("leaf1", "https://leaf1.mgmt", "admin", "pw");
    assert_eq!(EosConfig::new(sw, url, user, pw).tls, TlsOptions::default());
    assert_eq!(NvueConfig::new(sw, url, user, pw).tls, TlsOptions::default());
    assert_eq!(SonicRestConfig::new(sw, url, user, pw).tls, TlsOptions::default());
    assert!(!TlsOptions::default().insecure_skip_verify);
}
