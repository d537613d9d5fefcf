//! The UFM driver over HTTPS, against the UFM double served with the fixed
//! test certificate (no network): the PKey listing works when the test CA
//! is given (`ca_pem`); the default roots refuse the certificate as a
//! transient transport error, saying why, before any request reaches UFM;
//! `insecure_skip_verify` connects.

use neocloud_common::http_double::TEST_CA_PEM;
use neocloud_common::tls::TlsOptions;
use neocloud_ufm::double::{Pkey, UfmDouble};
use neocloud_ufm::{Ufm, UfmConfig, UfmError};
use std::time::Duration;

fn double() -> UfmDouble {
    let d = UfmDouble::start_https();
    assert!(d.url.starts_with("https://127.0.0.1:"), "{}", d.url);
    d.state().pkeys.insert(
        0x101,
        Pkey {
            partition: "acme".into(),
            guids: [("0002c903000e0b72".into(), "full".into())].into(),
        },
    );
    d
}

fn driver(d: &UfmDouble, tls: TlsOptions) -> Ufm {
    let mut cfg = UfmConfig::new(&d.url, &d.username, &d.password);
    cfg.timeout = Duration::from_secs(5);
    cfg.tls = tls;
    Ufm::new(cfg)
}

#[test]
fn pkeys_over_https_with_the_ufm_ca() {
    let d = double();
    let got = driver(&d, TlsOptions::with_ca_pem(TEST_CA_PEM)).pkeys().unwrap();
    let acme = &got.partitions[&0x101];
    assert_eq!(acme.name, "acme");
    assert!(acme.members.contains("0002c903000e0b72"));
    assert_eq!(d.state().requests, ["GET /ufmRest/resources/pkeys?guids_data=true"]);
}

#[test]
fn the_default_roots_refuse_a_private_ca() {
    let d = double();
    let e = driver(&d, TlsOptions::default()).pkeys().unwrap_err();
    match &e {
        UfmError::Transport(m) => {
            assert!(m.contains("invalid peer certificate: UnknownIssuer"), "{m}");
            assert!(m.contains("ca_pem"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.is_transient());
    assert!(d.state().requests.is_empty(), "nothing reached UFM");
}

#[test]
fn insecure_skip_verify_connects() {
    let d = double();
    let got = driver(&d, TlsOptions::insecure()).pkeys().unwrap();
    assert_eq!(got.partitions.len(), 1);
}
