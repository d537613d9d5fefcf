//! The plumbing every protocol-faithful test double shares: a small
//! HTTP/1.1 server on a loopback port (a listener thread, one thread per
//! connection, keep-alive), request parsing (request line, headers, a
//! `Content-Length` body), response writing, the basic-auth check, and
//! canned answers for fault injection. A double supplies one handler that
//! turns a [`Request`] into a [`Response`]; what the device does lives
//! there. Over plain HTTP, or HTTPS with a fixed test certificate (rustls,
//! as the clients use). Meant for tests and doubles, never for real traffic.

use serde_json::Value;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use ureq::rustls;
use ureq::rustls::pki_types::pem::PemObject;
use ureq::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The test CA that issued [`HttpDouble::start_https`]'s certificate: what
/// a client under test trusts (`TlsOptions::ca_pem`). Public test material
/// (`testdata/tls`), long-lived, valid for 127.0.0.1, ::1 and localhost.
pub const TEST_CA_PEM: &str = include_str!("../testdata/tls/ca.pem");
const TEST_CERT_PEM: &str = include_str!("../testdata/tls/server.pem");
const TEST_KEY_PEM: &str = include_str!("../testdata/tls/server.key");

/// One parsed HTTP request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target as sent: path and query, still percent-encoded.
    pub target: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The path part of the target (still percent-encoded).
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(self.target.as_str(), |(p, _)| p)
    }

    /// The query part of the target (without `?`; empty when none).
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// The decoded query parameters, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect()
    }

    /// The first decoded value of a query parameter.
    pub fn query_param(&self, key: &str) -> Option<String> {
        self.query_pairs().into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The decoded path segments (`/a/b%2Fc` -> `["a", "b/c"]`).
    pub fn segments(&self) -> Vec<String> {
        self.path().split('/').filter(|s| !s.is_empty()).map(percent_decode).collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// Whether the request carries HTTP basic credentials `user:password`.
    pub fn authorized(&self, user: &str, password: &str) -> bool {
        let expected = format!("Basic {}", crate::encoding::base64(&format!("{user}:{password}")));
        self.header("authorization") == Some(expected.as_str())
    }

    /// The body as JSON (`Null` when empty).
    pub fn json(&self) -> Result<Value, String> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| format!("malformed JSON: {e}"))
    }
}

/// One HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, body: &Value) -> Response {
        Response::with_type(status, "application/json", body.to_string().into_bytes())
    }

    pub fn text(status: u16, body: &str) -> Response {
        Response::with_type(status, "text/plain", body.as_bytes().to_vec())
    }

    /// No body (e.g. 204).
    pub fn empty(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Vec::new() }
    }

    pub fn with_type(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response { status, headers: vec![("Content-Type".into(), content_type.into())], body }
    }

    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A running double's server. It listens until the process ends.
pub struct HttpDouble {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    canned: Arc<Mutex<VecDeque<Response>>>,
}

impl HttpDouble {
    /// Serves `handler` on a fresh loopback port.
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> HttpDouble {
        HttpDouble::listen(None, handler)
    }

    /// Serves `handler` over HTTPS (`https://127.0.0.1:<port>`) with the
    /// test certificate [`TEST_CA_PEM`] issued.
    pub fn start_https(
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> HttpDouble {
        HttpDouble::start_https_with(TEST_CERT_PEM, TEST_KEY_PEM, handler)
    }

    /// Serves `handler` over HTTPS with this certificate chain and key
    /// (PEM; the key PKCS#8, SEC1 or PKCS#1).
    pub fn start_https_with(
        cert_chain_pem: &str,
        key_pem: &str,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> HttpDouble {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .expect("a PEM certificate chain");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("a PEM private key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS 1.2 and 1.3")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("a certificate that matches its key");
        HttpDouble::listen(Some(Arc::new(config)), handler)
    }

    fn listen(
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> HttpDouble {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().expect("bound"));
        let canned: Arc<Mutex<VecDeque<Response>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let c = canned.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (h, c, tls) = (handler.clone(), c.clone(), tls.clone());
                std::thread::spawn(move || match tls {
                    None => serve(conn, &*h, &c),
                    Some(config) => {
                        // A refused handshake ends here, at the first read.
                        let Ok(session) = rustls::ServerConnection::new(config) else { return };
                        let _ = conn.set_nodelay(true);
                        serve(rustls::StreamOwned::new(session, conn), &*h, &c)
                    }
                });
            }
        });
        HttpDouble { url, canned }
    }

    /// Answers the next request with `response` instead of the handler
    /// (an outage, a throttle, a proxy error); queued answers go in order.
    pub fn fail_next(&self, response: Response) {
        self.canned.lock().unwrap_or_else(|p| p.into_inner()).push_back(response);
    }
}

fn serve(conn: impl Read + Write, handler: &Handler, canned: &Mutex<VecDeque<Response>>) {
    let mut r = BufReader::new(conn);
    loop {
        let req = match read_request(&mut r) {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(status) => {
                let _ = write_response(r.get_mut(), &Response::text(status, "bad request"), true);
                return;
            }
        };
        let close = req.header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let queued = canned.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
        let res = queued.unwrap_or_else(|| handler(&req));
        if write_response(r.get_mut(), &res, close).is_err() || close {
            return;
        }
    }
}

/// `Ok(None)` when the peer closed the connection between requests.
fn read_request(r: &mut impl BufRead) -> Result<Option<Request>, u16> {
    let mut line = String::new();
    if r.read_line(&mut line).map_err(|_| 400u16)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else { return Err(400) };
    let (method, target) = (method.to_string(), target.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).map_err(|_| 400u16)? == 0 {
            return Ok(None);
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    if header("transfer-encoding").is_some() {
        // Every client the doubles serve sends a Content-Length.
        return Err(411);
    }
    let len = match header("content-length") {
        Some(v) => v.parse::<usize>().map_err(|_| 400u16)?,
        None => 0,
    };
    let mut body = vec![0; len];
    r.read_exact(&mut body).map_err(|_| 400u16)?;
    Ok(Some(Request { method, target, headers, body }))
}

fn write_response(out: &mut impl Write, res: &Response, close: bool) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", res.status, reason(res.status));
    for (k, v) in &res.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n", res.body.len()));
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    // One write: a head and a body in two segments would wait on the
    // peer's delayed ACK (Nagle), some 40 ms per request.
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&res.body);
    out.write_all(&bytes)?;
    out.flush()
}

/// The standard reason phrase of the statuses doubles answer with.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Decodes `%XX` escapes (and nothing else: `+` stays `+`).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpStream;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("changeset%2Fcumulus%2F1"), "changeset/cumulus/1");
        assert_eq!(percent_decode("a%3Ab%25"), "a:b%");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn serves_requests_with_auth_and_canned_answers() {
        let d = HttpDouble::start(|r| {
            if !r.authorized("u", "p") {
                return Response::json(401, &serde_json::json!({"error": "no"}));
            }
            Response::json(
                200,
                &serde_json::json!({
                    "path": r.segments(), "rev": r.query_param("rev"), "body": r.json().unwrap(),
                }),
            )
        });
        let mut conn = TcpStream::connect(d.url.trim_start_matches("http://")).unwrap();
        let auth = crate::encoding::base64("u:p");
        let body = "{\"x\":1}";
        write!(
            conn,
            "PATCH /a/b%2Fc?rev=r%2F1 HTTP/1.1\r\nAuthorization: Basic {auth}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with(r#"{"body":{"x":1},"path":["a","b/c"],"rev":"r/1"}"#), "{answer}");

        d.fail_next(Response::text(503, "down"));
        let mut conn = TcpStream::connect(d.url.trim_start_matches("http://")).unwrap();
        write!(conn, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{answer}");
        assert!(answer.ends_with("down"));
    }
}
