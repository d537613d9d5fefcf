//! The driver's failure handling against a scripted HTTP server: retries
//! with backoff, timeouts, unreachable BMCs, credentials, session expiry,
//! and the per-BMC limit of requests in flight. (Protocol behaviour against
//! a real Redfish implementation is in `emulator.rs`.)

use neocloud_redfish::{
    Bmc, BmcAccount, BmcConfig, PowerState, RedfishError, RequiredReset, ResetType,
};
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

/// Status, extra headers, body. Status [`HANG_UP`]: the connection is
/// closed without an answer (after the request was read).
type Reply = (u16, Vec<(&'static str, String)>, String);
type Handler = dyn Fn(&Req) -> Reply + Send + Sync;

/// The status that makes the server close the connection unanswered.
const HANG_UP: u16 = 0;

/// A loopback HTTP/1.1 server answering every request with `handler`.
fn serve(handler: Arc<Handler>) -> String {
    serve_on(TcpListener::bind("127.0.0.1:0").unwrap(), handler)
}

/// [`serve`] on a listener already bound.
fn serve_on(l: TcpListener, handler: Arc<Handler>) -> String {
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
                if status == HANG_UP {
                    let _ = conn.shutdown(std::net::Shutdown::Both);
                    return;
                }
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

/// The update service of [`post_once_server`]'s BMC: `SimpleUpdate` there.
const UPDATE_SERVICE: &str = r##"{"Actions": {"#UpdateService.SimpleUpdate": {
    "target": "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate"}}}"##;

/// A BMC (basic auth) whose `SimpleUpdate` and `Systems/1` reset answer
/// `fail` (status, or [`HANG_UP`]) after a `delay`, counting the POSTs and
/// the GETs of `/redfish/v1/Systems`, which answer `fail` too for the first
/// two.
fn post_once_server(fail: u16, delay: Duration) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let (posts, gets) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (p2, g2) = (posts.clone(), gets.clone());
    let url = serve(Arc::new(move |r: &Req| {
        if let Some(x) = no_sessions(r) {
            return x;
        }
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/redfish/v1/UpdateService") => (200, vec![], UPDATE_SERVICE.into()),
            ("GET", "/redfish/v1/Systems/1") => (200, vec![], r#"{"PowerState": "Off"}"#.into()),
            ("GET", "/redfish/v1/Systems") => match g2.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => {
                    std::thread::sleep(delay);
                    (fail, vec![], r#"{"error": {"message": "lost"}}"#.into())
                }
                _ => (200, vec![], r#"{"Members": []}"#.into()),
            },
            ("POST", _) => {
                p2.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(delay);
                (fail, vec![], r#"{"error": {"message": "lost"}}"#.into())
            }
            _ => (404, vec![], "{}".into()),
        }
    }));
    (url, posts, gets)
}

/// A POST (an action) that may have reached the BMC is not sent again: a
/// timeout, a connection lost mid-exchange, a 500/502/504 surface at once
/// as the transient errors they are (a second update task, or a second
/// "On" refused as already on, otherwise). GETs are still retried.
#[test]
fn a_post_that_may_have_reached_the_bmc_is_not_sent_again() {
    for (fail, delay) in [
        (500, Duration::ZERO),
        (502, Duration::ZERO),
        (504, Duration::ZERO),
        (HANG_UP, Duration::ZERO),
        // Answered after the client's timeout (500 ms).
        (200, Duration::from_millis(800)),
    ] {
        let (url, posts, gets) = post_once_server(fail, delay);
        let bmc = Bmc::new(cfg(&url));
        let e = bmc.simple_update("http://fw/bios.bin", &["/bios"]).unwrap_err();
        assert!(e.is_transient(), "[{fail}] {e:?}");
        assert_eq!(posts.load(Ordering::SeqCst), 1, "[{fail}] one update, sent once: {e}");
        let e = bmc.reset("/redfish/v1/Systems/1", ResetType::On).unwrap_err();
        assert!(e.is_transient(), "[{fail}] {e:?}");
        assert_eq!(posts.load(Ordering::SeqCst), 2, "[{fail}] one reset, sent once: {e}");
        match (fail, &e) {
            (HANG_UP, RedfishError::ConnectionLost(m)) => {
                assert!(!e.to_string().contains("unreachable"), "{e}");
                assert!(m.contains("ComputerSystem.Reset"), "{m}");
            }
            (200, RedfishError::Timeout(_)) => {}
            (s, RedfishError::Status { status, .. }) if *status == s => {}
            other => panic!("[{fail}] {other:?}"),
        }
        // A GET is still tried again after the same failures.
        assert_eq!(bmc.systems().unwrap(), Vec::<String>::new(), "[{fail}]");
        assert_eq!(gets.load(Ordering::SeqCst), 3, "[{fail}] two failures, then the answer");
    }
}

/// A POST whose connection could not be made never reached the BMC: it is
/// tried again (here until the BMC starts listening), and sent once.
#[test]
fn a_post_is_tried_again_where_no_connection_was_made() {
    // A port nobody listens on, until the BMC starts 300 ms later.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let posts = Arc::new(AtomicUsize::new(0));
    let p2 = posts.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
        serve_on(
            l,
            Arc::new(move |r: &Req| {
                if let Some(x) = no_sessions(r) {
                    return x;
                }
                match (r.method.as_str(), r.path.as_str()) {
                    ("GET", "/redfish/v1/UpdateService") => (200, vec![], UPDATE_SERVICE.into()),
                    ("POST", _) => {
                        p2.fetch_add(1, Ordering::SeqCst);
                        (
                            202,
                            vec![("Location", "/redfish/v1/TaskService/Tasks/3".into())],
                            "{}".into(),
                        )
                    }
                    _ => (404, vec![], "{}".into()),
                }
            }),
        );
    });
    let mut c = cfg(&format!("http://127.0.0.1:{port}"));
    // 50, 100, 200, 400, 800 ms: well past the 300 ms.
    c.backoff = Duration::from_millis(50);
    c.retries = 5;
    let bmc = Bmc::new(c);
    let t = std::time::Instant::now();
    // The update service is read first (a GET): the connection refused
    // there, then the POST goes through once.
    let task = bmc.simple_update("http://fw/bios.bin", &["/bios"]).unwrap();
    assert_eq!(task.as_deref(), Some("/redfish/v1/TaskService/Tasks/3"));
    assert_eq!(posts.load(Ordering::SeqCst), 1);
    assert!(t.elapsed() >= Duration::from_millis(300), "{:?}", t.elapsed());

    // Refused at the POST itself: a login that could not connect is not
    // the request, so a fresh client (no login yet) retries through it.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut c = cfg(&format!("http://127.0.0.1:{port}"));
    c.backoff = Duration::from_millis(50);
    c.retries = 2;
    let t = std::time::Instant::now();
    let e = Bmc::new(c)
        .request("POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", None)
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(e, RedfishError::Unreachable(_)), "{e:?}");
    assert!(t.elapsed() >= Duration::from_millis(150), "two retries waited: {:?}", t.elapsed());
}

/// A password change is sent once: after a lost answer the BMC may hold
/// the new password, and a second PATCH would be refused.
#[test]
fn a_password_change_is_sent_at_most_once() {
    let patches = Arc::new(AtomicUsize::new(0));
    let p2 = patches.clone();
    let url = serve(Arc::new(move |r: &Req| {
        if let Some(x) = no_sessions(r) {
            return x;
        }
        if r.method == "PATCH" {
            p2.fetch_add(1, Ordering::SeqCst);
            return (500, vec![], r#"{"error": {"message": "answer lost"}}"#.into());
        }
        (404, vec![], "{}".into())
    }));
    let bmc = Bmc::new(cfg(&url));
    let account = BmcAccount {
        path: "/redfish/v1/AccountService/Accounts/3".into(),
        user_name: "neocloud".into(),
        role_id: "Administrator".into(),
        enabled: true,
    };
    let e = bmc.set_account_password(&account, "n3w").unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert_eq!(patches.load(Ordering::SeqCst), 1, "sent once");
}

/// A member of a collection the BMC fails to serve (500 after the
/// retries) is an error, not an absent member: BMC accounts and host
/// interfaces the sanitizer checks are never silently left out. One it
/// does not have (404) is left out.
#[test]
fn a_member_the_bmc_fails_to_serve_is_an_error_not_absent() {
    let broken = Arc::new(Mutex::new(500));
    let b2 = broken.clone();
    let url = serve(Arc::new(move |r: &Req| {
        // The service root (no sessions: basic auth) links the accounts.
        let link = |p: &str| format!(r#"{{"@odata.id": "{p}"}}"#);
        let body = match r.path.as_str() {
            "/redfish/v1" => {
                format!(r#"{{"AccountService": {}}}"#, link("/redfish/v1/AccountService"))
            }
            "/redfish/v1/AccountService" => {
                format!(r#"{{"Accounts": {}}}"#, link("/redfish/v1/AccountService/Accounts"))
            }
            "/redfish/v1/AccountService/Accounts" => format!(
                r#"{{"Members": [{}, {}]}}"#,
                link("/redfish/v1/AccountService/Accounts/1"),
                link("/redfish/v1/AccountService/Accounts/2")
            ),
            "/redfish/v1/AccountService/Accounts/1" => {
                r#"{"UserName": "admin", "RoleId": "Administrator"}"#.into()
            }
            "/redfish/v1/Managers/bmc" => {
                format!(r#"{{"HostInterfaces": {}}}"#, link("/redfish/v1/Managers/bmc/HI"))
            }
            "/redfish/v1/Managers/bmc/HI" => format!(
                r#"{{"Members": [{}, {}]}}"#,
                link("/redfish/v1/Managers/bmc/HI/1"),
                link("/redfish/v1/Managers/bmc/HI/2")
            ),
            "/redfish/v1/Managers/bmc/HI/1" => r#"{"Id": "1", "InterfaceEnabled": false}"#.into(),
            "/redfish/v1/AccountService/Accounts/2" | "/redfish/v1/Managers/bmc/HI/2" => {
                let status = *b2.lock().unwrap();
                return (status, vec![], r#"{"error": {"message": "internal error"}}"#.into());
            }
            _ => return (404, vec![], "{}".into()),
        };
        (200, vec![], body)
    }));
    let bmc = Bmc::new(cfg(&url));
    let sys =
        serde_json::json!({"Links": {"ManagedBy": [{"@odata.id": "/redfish/v1/Managers/bmc"}]}});
    let e = bmc.accounts().unwrap_err();
    assert!(matches!(&e, RedfishError::Status { status: 500, .. }), "{e:?}");
    let e = bmc.host_interfaces_of(&sys).unwrap_err();
    assert!(matches!(&e, RedfishError::Status { status: 500, .. }), "{e:?}");
    // Not there (404): left out.
    *broken.lock().unwrap() = 404;
    let accounts = bmc.accounts().unwrap().expect("an account service");
    assert_eq!(accounts.iter().map(|a| a.user_name.as_str()).collect::<Vec<_>>(), ["admin"]);
    let his = bmc.host_interfaces_of(&sys).unwrap().expect("host interfaces");
    assert_eq!(his.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["1"]);
}

/// A second loopback server standing for another host: it counts what
/// reaches it, and whether credentials came with it.
fn other_host() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let url = serve(Arc::new(move |r: &Req| {
        let creds = r.header("X-Auth-Token").or(r.header("Authorization")).unwrap_or("none");
        s2.lock().unwrap().push(format!("{} {} creds={creds}", r.method, r.path));
        (200, vec![], r#"{"Members": [], "PowerState": "On"}"#.into())
    }));
    (url, seen)
}

/// Redirects: a write redirected is an error (not transient), never sent
/// on as a GET without its body; a GET follows at most 3 redirects within
/// the endpoint; a redirect to another host is a protocol error naming it,
/// and nothing (no session token) is sent there.
#[test]
fn redirects_fail_writes_and_are_followed_by_gets_only_within_the_endpoint() {
    let (elsewhere, other_seen) = other_host();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let (s2, away) = (seen.clone(), format!("{elsewhere}/redfish/v1/Systems"));
    let url = serve(Arc::new(move |r: &Req| {
        if r.path == "/redfish/v1" {
            return (200, vec![], ROOT.into());
        }
        if r.path == "/redfish/v1/SessionService/Sessions" && r.method == "POST" {
            return session_created(0);
        }
        s2.lock().unwrap().push(format!("{} {}", r.method, r.path));
        let to =
            |status: u16, loc: &str| (status, vec![("Location", loc.to_string())], "{}".into());
        match (r.method.as_str(), r.path.as_str()) {
            ("PATCH", p) if p.starts_with("/redfish/v1/Systems/") => {
                let status = p.rsplit('/').next().unwrap().parse().unwrap();
                to(status, "/redfish/v1/Systems/ok")
            }
            ("POST", p) if p.starts_with("/redfish/v1/Actions/") => {
                let status = p.rsplit('/').next().unwrap().parse().unwrap();
                to(status, "/redfish/v1/Systems/ok")
            }
            ("GET", "/redfish/v1/Systems/ok") => {
                (200, vec![], r#"{"Members": [{"@odata.id": "/redfish/v1/Systems/1"}]}"#.into())
            }
            ("GET", "/redfish/v1/moved") => to(301, "/redfish/v1/moved-again"),
            ("GET", "/redfish/v1/moved-again") => to(302, "Systems/ok"),
            ("GET", "/redfish/v1/away") => to(302, &away),
            ("GET", "/redfish/v1/loop") => to(307, "/redfish/v1/loop"),
            _ => (404, vec![], "{}".into()),
        }
    }));
    let bmc = Bmc::new(cfg(&url));
    for status in [301, 302, 303, 307, 308] {
        seen.lock().unwrap().clear();
        let e = bmc.clear_boot_override(&format!("/redfish/v1/Systems/{status}")).unwrap_err();
        assert!(matches!(&e, RedfishError::Status { status: s, .. } if *s == status), "{e:?}");
        assert!(!e.is_transient(), "{e:?}");
        assert!(e.to_string().contains("/redfish/v1/Systems/ok"), "names where: {e}");
        let e = bmc
            .request("POST", &format!("/redfish/v1/Actions/{status}"), Some(&serde_json::json!({})))
            .map(|_| ())
            .unwrap_err();
        assert!(matches!(&e, RedfishError::Status { status: s, .. } if *s == status), "{e:?}");
        assert_eq!(
            *seen.lock().unwrap(),
            [
                format!("PATCH /redfish/v1/Systems/{status}"),
                format!("POST /redfish/v1/Actions/{status}")
            ],
            "each write sent once, nothing sent on"
        );
    }
    // Followed within the endpoint: absolute path, then relative.
    assert_eq!(
        bmc.get("/redfish/v1/moved").unwrap()["Members"][0]["@odata.id"],
        "/redfish/v1/Systems/1"
    );
    // Another host: not followed, named.
    let e = bmc.get("/redfish/v1/away").unwrap_err();
    match &e {
        RedfishError::Protocol(m) => assert!(m.contains(&elsewhere), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(other_seen.lock().unwrap().is_empty(), "{:?}", other_seen.lock().unwrap());
    // At most 3 followed.
    seen.lock().unwrap().clear();
    let e = bmc.get("/redfish/v1/loop").unwrap_err();
    assert!(matches!(&e, RedfishError::Protocol(m) if m.contains("redirects")), "{e:?}");
    assert_eq!(seen.lock().unwrap().len(), 4, "the GET and 3 redirects");
}

/// An absolute `@odata.id` or action target naming another host is
/// requested of the configured endpoint (its path only): the credentials
/// never go to the host it names.
#[test]
fn absolute_urls_naming_another_host_go_to_the_endpoint() {
    let (elsewhere, other_seen) = other_host();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let s2 = seen.clone();
    let target = format!("{elsewhere}/redfish/v1/Systems/1/Actions/ComputerSystem.Reset?x=1");
    let url = serve(Arc::new(move |r: &Req| {
        if r.path == "/redfish/v1" {
            return (200, vec![], ROOT.into());
        }
        if r.path == "/redfish/v1/SessionService/Sessions" && r.method == "POST" {
            return session_created(0);
        }
        s2.lock().unwrap().push(format!("{} {}", r.method, r.path));
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/redfish/v1/Systems/1") => (
                200,
                vec![],
                format!(
                    r##"{{"PowerState": "On", "Actions": {{"#ComputerSystem.Reset": {{"target": "{target}"}}}}}}"##
                ),
            ),
            ("POST", _) => (204, vec![], String::new()),
            _ => (404, vec![], "{}".into()),
        }
    }));
    let bmc = Bmc::new(cfg(&url));
    let on_other = format!("{elsewhere}/redfish/v1/Systems/1");
    assert_eq!(bmc.power_state(&on_other).unwrap(), PowerState::On);
    bmc.reset(&on_other, ResetType::ForceRestart).unwrap();
    // The endpoint's own absolute URL (its scheme in capitals) is its own.
    let own = format!("{}/redfish/v1/Systems/1", url.replace("http://", "HTTP://"));
    assert_eq!(bmc.power_state(&own).unwrap(), PowerState::On);
    assert!(other_seen.lock().unwrap().is_empty(), "{:?}", other_seen.lock().unwrap());
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "GET /redfish/v1/Systems/1",
            "GET /redfish/v1/Systems/1",
            "POST /redfish/v1/Systems/1/Actions/ComputerSystem.Reset?x=1",
            "GET /redfish/v1/Systems/1",
        ]
    );
}

/// A 503 or 429 with `Retry-After` is tried again after what it asks
/// (bounded by `max_retry_after`), not the shorter backoff; 429 is
/// transient (even a POST is tried again: the BMC did not act on it).
#[test]
fn retry_after_is_waited_and_429_is_tried_again() {
    let hits = Arc::new(AtomicUsize::new(0));
    let after = Arc::new(Mutex::new((503, "1".to_string())));
    let (h2, a2) = (hits.clone(), after.clone());
    let url = serve(Arc::new(move |r: &Req| {
        if let Some(x) = no_sessions(r) {
            return x;
        }
        match h2.fetch_add(1, Ordering::SeqCst) % 2 {
            0 => {
                let (status, secs) = a2.lock().unwrap().clone();
                (status, vec![("Retry-After", secs)], r#"{"error": {"message": "busy"}}"#.into())
            }
            _ => (200, vec![], r#"{"Members": []}"#.into()),
        }
    }));
    let mut c = cfg(&url);
    c.max_retry_after = Duration::from_millis(1500);
    let bmc = Bmc::new(c);
    let t = std::time::Instant::now();
    bmc.systems().unwrap();
    assert!(t.elapsed() >= Duration::from_secs(1), "waited Retry-After: {:?}", t.elapsed());
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // 429, and a Retry-After longer than the bound: the bound.
    *after.lock().unwrap() = (429, "3600".into());
    let t = std::time::Instant::now();
    bmc.request("POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", None).unwrap();
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(1500) && waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 4, "the POST tried again after its 429");
    // Without a retry left, a 429 surfaces as transient.
    let mut c = cfg(&url);
    c.retries = 0;
    *after.lock().unwrap() = (429, "0".into());
    let e = Bmc::new(c).systems().unwrap_err();
    assert!(matches!(e, RedfishError::Status { status: 429, .. }) && e.is_transient(), "{e:?}");
}

/// Reset types a BMC lists only in the reset action's `@Redfish.ActionInfo`
/// are read with the system (once): a type not allowed is refused without
/// being sent. A reset on a system the step has read (`reset_on`) goes to
/// the action that read named with no read of its own; polling the power
/// state reads no ActionInfo, keeps the types read, and returns the system
/// as the poll that saw the state read it.
#[test]
fn reset_types_listed_in_action_info_refuse_a_type_unsent() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let state = Arc::new(Mutex::new("On"));
    let (s2, st2) = (seen.clone(), state.clone());
    let url = serve(Arc::new(move |r: &Req| {
        if let Some(x) = no_sessions(r) {
            return x;
        }
        s2.lock().unwrap().push(format!("{} {}", r.method, r.path));
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/redfish/v1/Systems/1") => (
                200,
                vec![],
                format!(
                    r##"{{"PowerState": "{}", "Actions": {{"#ComputerSystem.Reset": {{
                    "target": "/redfish/v1/Systems/1/Actions/Reset.Custom",
                    "@Redfish.ActionInfo": "/redfish/v1/Systems/1/ResetActionInfo"}}}}}}"##,
                    st2.lock().unwrap()
                ),
            ),
            ("GET", "/redfish/v1/Systems/1/ResetActionInfo") => (
                200,
                vec![],
                r#"{"Parameters": [
                    {"Name": "Other", "AllowableValues": ["PowerCycle"]},
                    {"Name": "ResetType", "Required": true, "DataType": "String",
                     "AllowableValues": ["On", "ForceOff"]}]}"#
                    .into(),
            ),
            ("POST", "/redfish/v1/Systems/1/Actions/Reset.Custom") => {
                *st2.lock().unwrap() = if r.body.contains("ForceOff") { "Off" } else { "On" };
                (204, vec![], String::new())
            }
            _ => (404, vec![], "{}".into()),
        }
    }));
    let bmc = Bmc::new(cfg(&url));
    let sys = "/redfish/v1/Systems/1";
    let info = bmc.system(sys).unwrap();
    assert_eq!(info.reset_types, ["On", "ForceOff"]);
    assert_eq!(info.power_state, PowerState::On);
    seen.lock().unwrap().clear();
    let e = bmc.reset(sys, ResetType::PowerCycle).unwrap_err();
    assert!(matches!(&e, RedfishError::Unsupported(m) if m.contains("On, ForceOff")), "{e:?}");
    bmc.reset(sys, ResetType::On).unwrap();
    let e = bmc.reset_on(&info, ResetType::ForceRestart).unwrap_err();
    assert!(matches!(e, RedfishError::Unsupported(_)), "{e:?}");
    bmc.reset_on(&info, ResetType::ForceOff).unwrap();
    let off = bmc
        .await_power(&info, PowerState::Off, Duration::from_secs(2), Duration::from_millis(10))
        .unwrap();
    assert_eq!(off.power_state, PowerState::Off);
    assert_eq!(off.reset_types, ["On", "ForceOff"], "the read's types kept");
    bmc.reset_on(&off, ResetType::On).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "GET /redfish/v1/Systems/1",
            "GET /redfish/v1/Systems/1/ResetActionInfo",
            "GET /redfish/v1/Systems/1",
            "GET /redfish/v1/Systems/1/ResetActionInfo",
            "POST /redfish/v1/Systems/1/Actions/Reset.Custom",
            "POST /redfish/v1/Systems/1/Actions/Reset.Custom",
            "GET /redfish/v1/Systems/1",
            "POST /redfish/v1/Systems/1/Actions/Reset.Custom",
        ],
        "the refused types never sent, the allowed ones once each; a reset on a read reads \
         nothing, a poll no ActionInfo"
    );
}
