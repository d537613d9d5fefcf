//! The driver's failure handling against a scripted HTTP server: retries
//! with backoff, timeouts, unreachable BMCs, credentials, session expiry,
//! and the per-BMC limit of requests in flight. (Protocol behaviour against
//! a real Redfish implementation is in `emulator.rs`.)

use neocloud_redfish::{Bmc, BmcConfig, RedfishError, RequiredReset, ResetType};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Req {
    fn header(&self, n: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_str())
    }
}

/// Status, extra headers, body.
type Reply = (u16, Vec<(&'static str, String)>, String);
type Handler = dyn Fn(&Req) -> Reply + Send + Sync;

/// A loopback HTTP/1.1 server answering every request with `handler`.
fn serve(handler: Arc<Handler>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            let h = handler.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    return;
                }
                let mut parts = line.split_whitespace();
                let (method, path) = (
                    parts.next().unwrap_or("").to_string(),
                    parts.next().unwrap_or("").to_string(),
                );
                let mut headers = Vec::new();
                let mut len = 0;
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l).is_err() || l.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = l.trim().split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                        headers.push((k.trim().to_string(), v.trim().to_string()));
                    }
                }
                let mut body = vec![0; len];
                let _ = r.read_exact(&mut body);
                let body = String::from_utf8_lossy(&body).into_owned();
                let (status, extra, body) = h(&Req { method, path, headers, body });
                let mut resp = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
                for (k, v) in extra {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str("\r\n");
                resp.push_str(&body);
                let _ = conn.write_all(resp.as_bytes());
            });
        }
    });
    format!("http://{addr}")
}

fn cfg(url: &str) -> BmcConfig {
    let mut c = BmcConfig::new(url, "admin", "secret");
    c.timeout = Duration::from_millis(500);
    c.backoff = Duration::from_millis(10);
    c.retries = 3;
    c
}

/// A service root that links a session collection.
const ROOT: &str =
    r#"{"Links": {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}}}"#;

/// The answer to the `n`th login: session `tok{n}`, at `Sessions/{n}`.
fn session_created(n: usize) -> Reply {
    (
        201,
        vec![
            ("X-Auth-Token", format!("tok{n}")),
            ("Location", format!("/redfish/v1/SessionService/Sessions/{n}")),
        ],
        "{}".into(),
    )
}

/// A service root without sessions: basic auth.
fn no_sessions(r: &Req) -> Option<Reply> {
    (r.path == "/redfish/v1").then(|| (200, vec![], "{}".to_string()))
}

#[test]
fn transient_server_errors_are_retried_with_backoff() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let url = serve(Arc::new(move |r: &Req| {
        if let Some(x) = no_sessions(r) {
            return x;
        }
        match h.fetch_add(1, Ordering::SeqCst) {
            0 | 1 => (503, vec![], "{}".into()),
            _ => (200, vec![], r#"{"Members": []}"#.into()),
        }
    }));
    let bmc = Bmc::new(cfg(&url));
    assert_eq!(bmc.systems().unwrap(), Vec::<String>::new());
    assert_eq!(hits.load(Ordering::SeqCst), 3, "two 503s, then success");
}

#[test]
fn persistent_errors_surface_after_the_retries() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let url = serve(Arc::new(move |r: &Req| {
        if let Some(x) = no_sessions(r) {
            return x;
        }
        h.fetch_add(1, Ordering::SeqCst);
        (500, vec![], r#"{"error": {"message": "BMC busy"}}"#.into())
    }));
    let e = Bmc::new(cfg(&url)).systems().unwrap_err();
    assert!(
        matches!(&e, RedfishError::Status { status: 500, message, .. } if message == "BMC busy"),
        "{e:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 4, "1 + 3 retries");
    // 4xx and 501 are not retried.
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let url = serve(Arc::new(move |r: &Req| {
        if let Some(x) = no_sessions(r) {
            return x;
        }
        h.fetch_add(1, Ordering::SeqCst);
        (501, vec![], "{}".into())
    }));
    assert!(matches!(Bmc::new(cfg(&url)).systems(), Err(RedfishError::Unsupported(_))));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[test]
fn unreachable_and_silent_bmcs_fail_with_a_reason() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = Bmc::new(cfg(&format!("http://127.0.0.1:{port}"))).systems().unwrap_err();
    assert!(matches!(e, RedfishError::Unreachable(_)), "{e:?}");
    assert!(e.to_string().contains("unreachable"), "{e}");
    // A BMC that accepts and never answers.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let h2 = held.clone();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            h2.lock().unwrap().push(c);
        }
    });
    let mut c = cfg(&format!("http://{addr}"));
    c.retries = 1;
    let t = std::time::Instant::now();
    let e = Bmc::new(c).systems().unwrap_err();
    assert!(matches!(e, RedfishError::Timeout(_)), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "timeouts bound the wait: {:?}", t.elapsed());
}

#[test]
fn sessions_are_used_reused_and_renewed_and_bad_credentials_refused() {
    let logins = Arc::new(AtomicUsize::new(0));
    let expired = Arc::new(AtomicUsize::new(0));
    let (l2, e2) = (logins.clone(), expired.clone());
    let url = serve(Arc::new(move |r: &Req| {
        if r.path == "/redfish/v1" {
            return (200, vec![], ROOT.into());
        }
        if r.path == "/redfish/v1/SessionService/Sessions" && r.method == "POST" {
            return session_created(l2.fetch_add(1, Ordering::SeqCst));
        }
        match r.header("X-Auth-Token") {
            // The first session "expires" after two requests.
            Some("tok0") if e2.fetch_add(1, Ordering::SeqCst) >= 2 => (401, vec![], "{}".into()),
            Some(_) => {
                (200, vec![], r#"{"Members": [{"@odata.id": "/redfish/v1/Systems/a"}]}"#.into())
            }
            None => (401, vec![], "{}".into()),
        }
    }));
    let bmc = Bmc::new(cfg(&url));
    for _ in 0..5 {
        assert_eq!(bmc.systems().unwrap(), vec!["/redfish/v1/Systems/a".to_string()]);
    }
    assert_eq!(logins.load(Ordering::SeqCst), 2, "one login, one renewal after expiry");

    let url = serve(Arc::new(|r: &Req| {
        if r.path == "/redfish/v1" {
            return (200, vec![], ROOT.into());
        }
        if r.path == "/redfish/v1/SessionService/Sessions" {
            return (401, vec![], "{}".into());
        }
        (200, vec![], "{}".into())
    }));
    let e = Bmc::new(cfg(&url)).systems().unwrap_err();
    assert!(matches!(e, RedfishError::Auth(_)), "{e:?}");
    assert!(!e.to_string().contains("secret"), "never show the password: {e}");
}

/// A session outlives its client: the next client of the BMC resumes it
/// (no new login), renews it when the BMC refuses it, and the last client
/// not kept ends it, once.
#[test]
fn a_kept_session_is_resumed_by_the_next_client_and_ended_once() {
    let logins = Arc::new(AtomicUsize::new(0));
    let deletes = Arc::new(Mutex::new(Vec::<String>::new()));
    let live = Arc::new(Mutex::new(vec!["tok0".to_string()]));
    let (l2, d2, live2) = (logins.clone(), deletes.clone(), live.clone());
    let url = serve(Arc::new(move |r: &Req| {
        if r.path == "/redfish/v1" {
            return (200, vec![], ROOT.into());
        }
        if r.path == "/redfish/v1/SessionService/Sessions" && r.method == "POST" {
            let n = l2.fetch_add(1, Ordering::SeqCst);
            live2.lock().unwrap().push(format!("tok{n}"));
            return session_created(n);
        }
        if r.method == "DELETE" {
            d2.lock().unwrap().push(r.path.clone());
            return (204, vec![], String::new());
        }
        match r.header("X-Auth-Token") {
            Some(t) if live2.lock().unwrap().iter().any(|l| l == t) => {
                (200, vec![], r#"{"Members": [{"@odata.id": "/redfish/v1/Systems/a"}]}"#.into())
            }
            _ => (401, vec![], "{}".into()),
        }
    }));
    live.lock().unwrap().clear();
    let first = Bmc::new(cfg(&url));
    first.systems().unwrap();
    let kept = first.keep_session().expect("logged in");
    assert!(!format!("{kept:?}").contains("tok0"), "the token stays out of logs: {kept:?}");
    assert!(deletes.lock().unwrap().is_empty(), "a kept session is not ended");
    for _ in 0..3 {
        let next = Bmc::resume(cfg(&url), kept.clone());
        next.systems().unwrap();
        assert!(next.keep_session().is_some());
    }
    assert_eq!(logins.load(Ordering::SeqCst), 1, "three clients, one login");

    // The BMC forgot the session (expired, restarted): the resumed client
    // logs in again, and the client not kept ends the new session only.
    live.lock().unwrap().clear();
    let last = Bmc::resume(cfg(&url), kept);
    last.systems().unwrap();
    assert_eq!(logins.load(Ordering::SeqCst), 2, "renewed once");
    drop(last);
    assert_eq!(*deletes.lock().unwrap(), ["/redfish/v1/SessionService/Sessions/1"]);

    // A client that never logged in has nothing to keep.
    assert!(Bmc::new(cfg(&url)).keep_session().is_none());
}

#[test]
fn at_most_four_requests_in_flight_per_bmc() {
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (n2, p2) = (now.clone(), peak.clone());
    let url = serve(Arc::new(move |r: &Req| {
        if let Some(x) = no_sessions(r) {
            return x;
        }
        let c = n2.fetch_add(1, Ordering::SeqCst) + 1;
        p2.fetch_max(c, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(60));
        n2.fetch_sub(1, Ordering::SeqCst);
        (200, vec![], r#"{"Members": []}"#.into())
    }));
    let bmc = Arc::new(Bmc::new(cfg(&url)));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let b = bmc.clone();
            std::thread::spawn(move || b.systems().unwrap())
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let p = peak.load(Ordering::SeqCst);
    assert!((2..=4).contains(&p), "peak in flight {p}");
    // Another BMC is not held back by this one's queue.
    let other = Bmc::new(cfg(&url));
    other.systems().unwrap();
}

/// A reset sent at most once is not sent again after a lost (503) answer;
/// a plain one is retried; both after a renewed session (401: not acted on).
#[test]
fn a_reset_sent_at_most_once_is_not_retried() {
    let resets = Arc::new(AtomicUsize::new(0));
    let r2 = resets.clone();
    let url = serve(Arc::new(move |r: &Req| {
        if let Some(x) = no_sessions(r) {
            return x;
        }
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/redfish/v1/Systems/1") => (
                200,
                vec![],
                r##"{"PowerState": "On", "Actions": {"#ComputerSystem.Reset": {
                    "target": "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset"}}}"##
                    .into(),
            ),
            ("POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset") => {
                r2.fetch_add(1, Ordering::SeqCst);
                (503, vec![], r#"{"error": {"message": "answer lost"}}"#.into())
            }
            _ => (404, vec![], "{}".into()),
        }
    }));
    let bmc = Bmc::new(cfg(&url));
    let e = bmc.reset_at_most_once("/redfish/v1/Systems/1", ResetType::ForceRestart).unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert_eq!(resets.load(Ordering::SeqCst), 1, "sent once");
    resets.store(0, Ordering::SeqCst);
    bmc.reset("/redfish/v1/Systems/1", ResetType::ForceRestart).unwrap_err();
    assert_eq!(resets.load(Ordering::SeqCst), 4, "1 + 3 retries");
}

/// A reset a task said is required is sent to the action it named, with
/// its `ResetType`, at most once (an AC power cycle sent twice cuts the
/// power twice); one that is not a reset action of the BMC's is refused
/// without a request.
#[test]
fn a_required_reset_is_sent_at_most_once_and_only_to_a_reset_action() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let s2 = seen.clone();
    let url = serve(Arc::new(move |r: &Req| {
        if let Some(x) = no_sessions(r) {
            return x;
        }
        s2.lock().unwrap().push(format!("{} {} {}", r.method, r.path, r.body));
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", "/redfish/v1/Chassis/DGX/Actions/Chassis.Reset") => {
                (503, vec![], r#"{"error": {"message": "answer lost"}}"#.into())
            }
            ("POST", "/redfish/v1/Managers/bmc/Actions/Manager.Reset") => (204, vec![], "".into()),
            _ => (404, vec![], "{}".into()),
        }
    }));
    let bmc = Bmc::new(cfg(&url));
    let r = |action: &str, t: &str| RequiredReset { action: action.into(), reset_type: t.into() };
    bmc.required_reset(&r("/redfish/v1/Managers/bmc/Actions/Manager.Reset", "ForceRestart"))
        .unwrap();
    let e = bmc
        .required_reset(&r("/redfish/v1/Chassis/DGX/Actions/Chassis.Reset", "PowerCycle"))
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    let e = bmc
        .required_reset(&r("/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate", "On"))
        .unwrap_err();
    assert!(matches!(e, RedfishError::Unsupported(_)), "{e:?}");
    let seen: Vec<String> =
        seen.lock().unwrap().iter().filter(|l| l.starts_with("POST")).cloned().collect();
    let body = |t: &str| serde_json::to_string(&serde_json::json!({"ResetType": t})).unwrap();
    assert_eq!(
        seen,
        [
            format!("POST /redfish/v1/Managers/bmc/Actions/Manager.Reset {}", body("ForceRestart")),
            format!("POST /redfish/v1/Chassis/DGX/Actions/Chassis.Reset {}", body("PowerCycle")),
        ],
        "each sent once; the update service's action never"
    );
}

/// An upload (`MultipartHttpPushUri`): one `multipart/form-data` POST to
/// the URI the update service lists, the `UpdateParameters` part with the
/// targets and the `UpdateFile` part with the image's bytes, its length
/// given; the task from its `Location`. Sent once: a lost answer is not
/// answered by a second upload.
#[test]
fn an_image_is_uploaded_in_one_multipart_post() {
    let seen = Arc::new(Mutex::new(Vec::<(String, String, String)>::new()));
    let lose = Arc::new(AtomicUsize::new(0));
    let (s2, l2) = (seen.clone(), lose.clone());
    let url = serve(Arc::new(move |r: &Req| {
        if let Some(x) = no_sessions(r) {
            return x;
        }
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/redfish/v1/UpdateService") => (
                200,
                vec![],
                r#"{"MultipartHttpPushUri": "/redfish/v1/UpdateService/update-multipart"}"#.into(),
            ),
            ("POST", "/redfish/v1/UpdateService/update-multipart") => {
                let ct = r.header("content-type").unwrap_or("").to_string();
                let len = r.header("content-length").unwrap_or("").to_string();
                s2.lock().unwrap().push((ct, len, r.body.clone()));
                if l2.load(Ordering::SeqCst) > 0 {
                    return (503, vec![], r#"{"error": {"message": "answer lost"}}"#.into());
                }
                (
                    202,
                    vec![("Location", "/redfish/v1/TaskService/Tasks/9/Monitor".into())],
                    "{}".into(),
                )
            }
            _ => (404, vec![], "{}".into()),
        }
    }));
    let bmc = Bmc::new(cfg(&url));
    let image = b"SIMULATED IMAGE BYTES".to_vec();
    let bios = "/redfish/v1/UpdateService/FirmwareInventory/BIOS";
    let timeout = Duration::from_secs(5);
    let task = bmc
        .push_update(
            std::io::Cursor::new(image.clone()),
            image.len() as u64,
            "bios\"1.bin",
            &[bios],
            timeout,
        )
        .unwrap();
    assert_eq!(task.as_deref(), Some("/redfish/v1/TaskService/Tasks/9"));
    let (ct, len, body) = seen.lock().unwrap()[0].clone();
    let boundary = ct.strip_prefix("multipart/form-data; boundary=").expect(&ct).to_string();
    assert_eq!(len, body.len().to_string(), "its length given");
    let params = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"UpdateParameters\"\r\n\
         Content-Type: application/json\r\n\r\n{{\"Targets\":[\"{bios}\"]}}\r\n"
    );
    let file = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"UpdateFile\"; filename=\"bios1.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\nSIMULATED IMAGE BYTES\r\n--{boundary}--\r\n"
    );
    assert_eq!(body, format!("{params}{file}"));
    // Its answer lost: an error, not a second upload.
    lose.store(1, Ordering::SeqCst);
    let e = bmc
        .push_update(
            std::io::Cursor::new(image.clone()),
            image.len() as u64,
            "b.bin",
            &[bios],
            timeout,
        )
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert_eq!(seen.lock().unwrap().len(), 2, "sent once");
}
