//! The BMC client over HTTPS, against a loopback HTTPS server with the
//! fixed test certificate (no network, no emulator): a Redfish session
//! login and a Systems listing when the test CA is given (`ca_pem`); the
//! default roots refuse the certificate as `Unreachable`, saying why, with
//! nothing sent past the handshake; `insecure_skip_verify` connects.

use neocloud_common::http_double::{HttpDouble, Request, Response, TEST_CA_PEM};
use neocloud_common::tls::TlsOptions;
use neocloud_redfish::{Bmc, BmcConfig, RedfishError};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A BMC with a session service and one system; counts the requests it
/// answered (a refused handshake never gets that far).
fn bmc_server() -> (HttpDouble, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let server = HttpDouble::start_https(move |r: &Request| {
        h.fetch_add(1, Ordering::SeqCst);
        match (r.method.as_str(), r.path()) {
            ("GET", "/redfish/v1") => Response::json(
                200,
                &json!({
                    "RedfishVersion": "1.15.0",
                    "Links": {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}},
                }),
            ),
            ("POST", "/redfish/v1/SessionService/Sessions") => {
                let body = r.json().unwrap_or_default();
                if body["UserName"] != "admin" || body["Password"] != "s3cret" {
                    return Response::json(401, &json!({}));
                }
                Response::json(201, &json!({"Id": "1"}))
                    .header("X-Auth-Token", "tok-1")
                    .header("Location", "/redfish/v1/SessionService/Sessions/1")
            }
            ("GET", "/redfish/v1/Systems") if r.header("x-auth-token") == Some("tok-1") => {
                Response::json(200, &json!({"Members": [{"@odata.id": "/redfish/v1/Systems/1"}]}))
            }
            _ => Response::json(401, &json!({})),
        }
    });
    (server, hits)
}

fn bmc(url: &str, tls: TlsOptions) -> Bmc {
    let mut c = BmcConfig::new(url, "admin", "s3cret");
    c.timeout = Duration::from_secs(5);
    c.retries = 1;
    c.backoff = Duration::from_millis(10);
    c.tls = tls;
    Bmc::new(c)
}

#[test]
fn https_with_the_bmc_ca_logs_in_and_lists_systems() {
    let (server, hits) = bmc_server();
    assert!(server.url.starts_with("https://"));
    let b = bmc(&server.url, TlsOptions::with_ca_pem(TEST_CA_PEM));
    assert_eq!(b.systems().unwrap(), ["/redfish/v1/Systems/1"]);
    assert_eq!(hits.load(Ordering::SeqCst), 3, "root, session login, Systems");
}

#[test]
fn the_default_roots_refuse_a_private_ca_as_unreachable() {
    let (server, hits) = bmc_server();
    let b = bmc(&server.url, TlsOptions::default());
    match b.systems() {
        Err(RedfishError::Unreachable(m)) => {
            assert!(m.contains("invalid peer certificate: UnknownIssuer"), "{m}");
            assert!(m.contains("ca_pem"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "no request (nor credential) sent");
}

#[test]
fn insecure_skip_verify_connects_to_a_self_signed_bmc() {
    let (server, _) = bmc_server();
    let b = bmc(&server.url, TlsOptions::insecure());
    assert_eq!(b.systems().unwrap(), ["/redfish/v1/Systems/1"]);
}
