//! HTTPS for the device drivers' blocking `ureq` agents (Redfish BMCs, UFM,
//! NVUE, eAPI, SONiC REST): one way to build an agent from [`TlsOptions`].
//! rustls with the *ring* provider, TLS 1.2 and 1.3; no OpenSSL.
//!
//! - Default: the webpki (Mozilla) roots built into the binary, full
//!   verification (chain, validity, and the URL's host or IP address).
//! - `ca_pem`: trust exactly these certificates instead (a site CA, a
//!   vendor's BMC CA, or a device's own self-signed certificate, pinned).
//! - `insecure_skip_verify`: accept any certificate (labs, factory
//!   self-signed BMCs). Never the default; the caller logs it loudly
//!   ([`TlsOptions::warning`]). The handshake's signatures are still checked
//!   (the peer holds the key of the certificate it shows), nothing else.
//!
//! Options that cannot be used (a `ca_pem` without a certificate) never
//! panic and never fall back to less checking: the agent refuses every HTTPS
//! connection with the reason, so the driver reports it as a transport
//! failure. [`TlsOptions::validate`] says the same up front, for config
//! loading.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use ureq::rustls;
use ureq::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use ureq::rustls::crypto::CryptoProvider;
use ureq::rustls::pki_types::pem::PemObject;
use ureq::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use ureq::rustls::{DigitallySignedStruct, SignatureScheme};

/// How a driver verifies the device's certificate. `Default`: the built-in
/// webpki roots, full verification. Serializable for configuration
/// documents (both fields optional: `{}` is the default).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TlsOptions {
    /// PEM certificates to trust instead of the built-in roots: exactly
    /// these (one or more `BEGIN CERTIFICATE` blocks; anything else in the
    /// text is ignored).
    pub ca_pem: Option<String>,
    /// Accept any certificate. For labs and self-signed devices only: it
    /// gives up protection against someone in the path reading the
    /// credentials. Takes precedence over `ca_pem`.
    pub insecure_skip_verify: bool,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca_pem", &self.ca_pem.as_ref().map(|p| format!("<{} bytes of PEM>", p.len())))
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish()
    }
}

/// Why [`TlsOptions`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS options: {}", self.0)
    }
}

impl StdError for TlsError {}

impl TlsOptions {
    /// Trusts exactly the certificates in `pem`.
    pub fn with_ca_pem(pem: impl Into<String>) -> TlsOptions {
        TlsOptions { ca_pem: Some(pem.into()), insecure_skip_verify: false }
    }

    /// Accepts any certificate (see the field).
    pub fn insecure() -> TlsOptions {
        TlsOptions { ca_pem: None, insecure_skip_verify: true }
    }

    /// What the caller logs, at warn or louder, for a driver of `peer` built
    /// with these options (`None`: verification is on).
    pub fn warning(&self, peer: &str) -> Option<String> {
        self.insecure_skip_verify.then(|| {
            format!(
                "TLS certificate verification is OFF for {peer} (insecure_skip_verify): \
                 anyone in the path can read its credentials; set ca_pem instead"
            )
        })
    }

    /// Whether these options can be used (a `ca_pem` must hold at least one
    /// certificate, all of them parseable).
    pub fn validate(&self) -> Result<(), TlsError> {
        self.client_config().map(|_| ())
    }

    /// The rustls client configuration these options mean (`None`: the
    /// defaults, ureq's own configuration with the webpki roots).
    fn client_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>, TlsError> {
        if !self.insecure_skip_verify && self.ca_pem.is_none() {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?;
        let config = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            let pem = self.ca_pem.as_deref().unwrap_or_default();
            builder.with_root_certificates(roots(pem)?).with_no_client_auth()
        };
        Ok(Some(Arc::new(config)))
    }
}

/// The trust anchors in `pem`: every certificate, at least one.
fn roots(pem: &str) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in CertificateDer::pem_slice_iter(pem.as_bytes()).enumerate() {
        let cert = cert.map_err(|e| TlsError(format!("ca_pem: certificate {}: {e}", i + 1)))?;
        roots.add(cert).map_err(|e| TlsError(format!("ca_pem: certificate {}: {e}", i + 1)))?;
    }
    if roots.is_empty() {
        return Err(TlsError("ca_pem: no PEM certificate (BEGIN CERTIFICATE) in it".into()));
    }
    Ok(roots)
}

/// A `ureq` agent builder with these TLS options (timeouts and the rest are
/// the caller's to add). Unusable options give an agent that refuses every
/// HTTPS connection with the reason (plain `http://` still works).
pub fn agent_builder(opts: &TlsOptions) -> ureq::AgentBuilder {
    let builder = ureq::AgentBuilder::new();
    match opts.client_config() {
        Ok(None) => builder,
        Ok(Some(config)) => builder.tls_config(config),
        Err(e) => builder.tls_connector(Arc::new(Refuse(e.to_string()))),
    }
}

/// Whether a transport failure is the device's certificate being refused
/// (untrusted issuer, expired, wrong name...).
pub fn is_certificate_error(t: &ureq::Transport) -> bool {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(t);
    while let Some(e) = cur {
        let rustls_error = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::InvalidCertificate(_)) = rustls_error {
            return true;
        }
        cur = e.source();
    }
    false
}

/// A transport failure as a driver reports it: ureq's words, and for a
/// refused certificate what to do about it.
pub fn describe(t: &ureq::Transport) -> String {
    if is_certificate_error(t) {
        format!(
            "{t} (the device's TLS certificate is not trusted: give its CA in ca_pem, \
             or set insecure_skip_verify for a lab)"
        )
    } else {
        t.to_string()
    }
}

/// Accepts any certificate; still checks the handshake's signatures.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The connector of unusable options: refuses, saying why.
struct Refuse(String);

impl ureq::TlsConnector for Refuse {
    fn connect(
        &self,
        _dns_name: &str,
        _io: Box<dyn ureq::ReadWrite>,
    ) -> Result<Box<dyn ureq::ReadWrite>, ureq::Error> {
        Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, self.0.clone()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_double::{HttpDouble, Response, TEST_CA_PEM};

    fn get(opts: &TlsOptions, url: &str) -> Result<String, Box<ureq::Transport>> {
        let agent = agent_builder(opts).timeout(std::time::Duration::from_secs(5)).build();
        match agent.get(&format!("{url}/hello")).call() {
            Ok(r) => Ok(r.into_string().expect("a body")),
            Err(ureq::Error::Status(s, _)) => panic!("HTTP {s}"),
            Err(ureq::Error::Transport(t)) => Err(Box::new(t)),
        }
    }

    fn hello() -> HttpDouble {
        HttpDouble::start_https(|r| Response::text(200, &format!("hello from {}", r.path())))
    }

    #[test]
    fn the_test_ca_is_trusted_when_given() {
        let d = hello();
        assert!(d.url.starts_with("https://127.0.0.1:"), "{}", d.url);
        let opts = TlsOptions::with_ca_pem(TEST_CA_PEM);
        assert_eq!(opts.validate(), Ok(()));
        assert_eq!(get(&opts, &d.url).unwrap(), "hello from /hello");
        // By name too (the certificate is for localhost as well).
        let by_name = d.url.replace("127.0.0.1", "localhost");
        assert_eq!(get(&opts, &by_name).unwrap(), "hello from /hello");
    }

    #[test]
    fn default_roots_refuse_the_test_ca_with_a_certificate_error() {
        let d = hello();
        let e = get(&TlsOptions::default(), &d.url).unwrap_err();
        assert!(is_certificate_error(&e), "{e}");
        let said = describe(&e);
        assert!(said.contains("invalid peer certificate: UnknownIssuer"), "{said}");
        assert!(said.contains("ca_pem"), "{said}");
    }

    #[test]
    fn another_ca_is_refused() {
        let d = hello();
        let other = include_str!("../testdata/tls/selfsigned.pem");
        let e = get(&TlsOptions::with_ca_pem(other), &d.url).unwrap_err();
        assert!(is_certificate_error(&e), "{e}");
    }

    #[test]
    fn insecure_accepts_any_certificate_and_says_so() {
        let d = hello();
        let opts = TlsOptions::insecure();
        assert_eq!(get(&opts, &d.url).unwrap(), "hello from /hello");
        let w = opts.warning("bmc 10.0.0.5").unwrap();
        assert!(w.contains("OFF for bmc 10.0.0.5"), "{w}");
        assert_eq!(TlsOptions::default().warning("x"), None);
        assert_eq!(TlsOptions::with_ca_pem(TEST_CA_PEM).warning("x"), None);
    }

    #[test]
    fn a_self_signed_device_certificate_can_be_pinned() {
        let cert = include_str!("../testdata/tls/selfsigned.pem");
        let key = include_str!("../testdata/tls/selfsigned.key");
        let d = HttpDouble::start_https_with(cert, key, |_| Response::text(200, "pinned"));
        assert_eq!(get(&TlsOptions::with_ca_pem(cert), &d.url).unwrap(), "pinned");
        assert!(is_certificate_error(
            &get(&TlsOptions::with_ca_pem(TEST_CA_PEM), &d.url).unwrap_err()
        ));
    }

    #[test]
    fn the_name_must_match() {
        // The test certificate is for 127.0.0.1, ::1 and localhost only: a
        // device reached as another name (resolved to the same listener)
        // is refused.
        let d = hello();
        let addr: std::net::SocketAddr = d.url.trim_start_matches("https://").parse().unwrap();
        let agent = agent_builder(&TlsOptions::with_ca_pem(TEST_CA_PEM))
            .resolver(move |_: &str| Ok(vec![addr]))
            .build();
        match agent.get(&format!("https://bmc7.example:{}/", addr.port())).call() {
            Err(ureq::Error::Transport(t)) => {
                assert!(is_certificate_error(&t), "{t}");
                assert!(t.to_string().contains("not valid for name \"bmc7.example\""), "{t}");
            }
            other => panic!("{:?}", other.map(|r| r.status())),
        }
    }

    #[test]
    fn unusable_options_refuse_https_without_panicking() {
        for (pem, says) in [
            ("", "no PEM certificate"),
            ("not a certificate at all", "no PEM certificate"),
            ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "certificate 1"),
        ] {
            let opts = TlsOptions::with_ca_pem(pem);
            let e = opts.validate().unwrap_err();
            assert!(e.to_string().contains(says), "{pem:?}: {e}");
            let d = hello();
            let t = get(&opts, &d.url).unwrap_err();
            assert!(t.to_string().contains(says), "{t}");
            assert!(!is_certificate_error(&t), "{t}");
        }
        // Plain HTTP does not use TLS at all.
        let plain = HttpDouble::start(|_| Response::text(200, "plain"));
        assert_eq!(get(&TlsOptions::with_ca_pem(""), &plain.url).unwrap(), "plain");
    }

    #[test]
    fn options_read_from_configuration() {
        let read = |v: serde_json::Value| serde_json::from_value::<TlsOptions>(v);
        assert_eq!(read(serde_json::json!({})).unwrap(), TlsOptions::default());
        assert_eq!(
            read(serde_json::json!({"insecure_skip_verify": true})).unwrap(),
            TlsOptions::insecure()
        );
        assert_eq!(
            read(serde_json::json!({"ca_pem": TEST_CA_PEM})).unwrap(),
            TlsOptions::with_ca_pem(TEST_CA_PEM)
        );
        assert!(read(serde_json::json!({"insecure": true})).is_err(), "a typo is refused");
    }

    #[test]
    fn debug_shows_no_pem() {
        let shown = format!("{:?}", TlsOptions::with_ca_pem(TEST_CA_PEM));
        assert!(shown.contains("bytes of PEM") && !shown.contains("BEGIN"), "{shown}");
    }
}
