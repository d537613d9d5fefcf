//! A node's BMC client for one step, and the node's Redfish login kept
//! between steps: the session is reused per BMC (one login while it lasts,
//! not one per step), while the client and its connections live one step
//! (no idle connection held on a BMC that has few).

use neocloud_common::tls::TlsOptions;
use neocloud_redfish::{Bmc, BmcConfig, LanesByEndpoint, Session};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A kept login: what it was made for (endpoint, user, sealed password),
/// the login, and how its BMC's certificate is checked (to end it).
type Kept = (String, Session, TlsOptions);

/// The kept logins, by node id, with what they were made for: a login is
/// resumed only by a client of the same endpoint and credentials. And the
/// request lanes of each BMC, which every client of it shares: at most
/// `max_in_flight` requests in flight per BMC, whichever steps, checks or
/// nodes they are for.
#[derive(Default)]
pub(crate) struct Sessions {
    kept: Mutex<HashMap<String, Kept>>,
    lanes: LanesByEndpoint,
}

impl Sessions {
    fn take(&self, node_id: &str, key: &str) -> Option<Session> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner()).remove(node_id);
        match kept {
            Some((k, s, _)) if k == key => Some(s),
            // Made for other credentials or another endpoint: ended on its
            // BMC (a BMC has few session slots), on a thread of its own so
            // an old endpoint that no longer answers holds up no step.
            Some((k, s, tls)) => {
                let ender = std::thread::Builder::new()
                    .name("bmc-session-end".into())
                    .spawn(move || end_session(&k, s, tls));
                if let Err(e) = ender {
                    tracing::warn!(node = node_id, error = %e, "cannot end an old BMC login");
                }
                None
            }
            None => None,
        }
    }

    /// Keeps `bmc`'s login for the node's next step, unless one is kept
    /// already (a second client of the node): then this one's is ended.
    fn put_back(&self, node_id: &str, key: String, tls: TlsOptions, bmc: Bmc) {
        let mut m = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if m.contains_key(node_id) {
            drop(m);
            // Ends its session (best effort) outside the lock.
            drop(bmc);
            return;
        }
        if let Some(s) = bmc.keep_session() {
            m.insert(node_id.to_string(), (key, s, tls));
        }
    }

    /// Forgets the node's login (a node deleted): ended on the BMC, best
    /// effort.
    pub(crate) fn end(&self, node_id: &str) {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner()).remove(node_id);
        if let Some((key, s, tls)) = kept {
            end_session(&key, s, tls);
        }
    }

    /// Ends every kept login (a graceful shutdown: a BMC has few session
    /// slots, and a restarted server logs in anew), 64 BMCs at a time,
    /// each given 2 s.
    pub(crate) fn end_all(&self) {
        let kept: Vec<Kept> =
            self.kept.lock().unwrap_or_else(|p| p.into_inner()).drain().map(|(_, v)| v).collect();
        for chunk in kept.chunks(64) {
            std::thread::scope(|s| {
                for (key, session, tls) in chunk {
                    s.spawn(|| end_session(key, session.clone(), tls.clone()));
                }
            });
        }
    }

    /// Nodes with a kept login.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Ends a kept login on its BMC (the session's token is all it takes;
/// its certificate checked as the login's was).
fn end_session(key: &str, session: Session, tls: TlsOptions) {
    let endpoint = key.split('\n').next().unwrap_or_default();
    let mut cfg = BmcConfig::new(endpoint, "", "");
    cfg.tls = tls;
    cfg.retries = 0;
    cfg.timeout = std::time::Duration::from_secs(2);
    drop(Bmc::resume(cfg, session));
}

/// The BMC client of one step: it resumes the node's kept login and hands
/// it back when the step ends.
pub(crate) struct StepBmc {
    bmc: Option<Bmc>,
    node_id: String,
    key: String,
    tls: TlsOptions,
    sessions: Arc<Sessions>,
}

impl StepBmc {
    /// `sealed_password` stands for the credentials in the key (the
    /// password itself is not kept).
    pub(crate) fn new(
        sessions: &Arc<Sessions>,
        node_id: &str,
        cfg: BmcConfig,
        sealed_password: &str,
    ) -> StepBmc {
        let key = format!("{}\n{}\n{sealed_password}", cfg.endpoint, cfg.username);
        let lanes = sessions.lanes.lanes(&cfg.endpoint, cfg.max_in_flight);
        let tls = cfg.tls.clone();
        let bmc = match sessions.take(node_id, &key) {
            Some(s) => Bmc::resume(cfg, s),
            None => Bmc::new(cfg),
        }
        .sharing_lanes(lanes);
        StepBmc {
            bmc: Some(bmc),
            node_id: node_id.to_string(),
            key,
            tls,
            sessions: sessions.clone(),
        }
    }
}

impl std::ops::Deref for StepBmc {
    type Target = Bmc;
    fn deref(&self) -> &Bmc {
        self.bmc.as_ref().expect("the client lives until dropped")
    }
}

impl Drop for StepBmc {
    fn drop(&mut self) {
        if let Some(bmc) = self.bmc.take() {
            let tls = std::mem::take(&mut self.tls);
            self.sessions.put_back(&self.node_id, std::mem::take(&mut self.key), tls, bmc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use neocloud_common::http_double::{HttpDouble, Request, Response};
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A BMC with a session service: counts logins and ended sessions.
    fn bmc_with_sessions() -> (HttpDouble, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
        let logins = Arc::new(AtomicUsize::new(0));
        let ended = Arc::new(Mutex::new(Vec::new()));
        let (l, e) = (logins.clone(), ended.clone());
        let double = HttpDouble::start(move |r: &Request| match (r.method.as_str(), r.path()) {
            ("GET", "/redfish/v1") => Response::json(
                200,
                &json!({"Links": {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}}}),
            ),
            ("POST", "/redfish/v1/SessionService/Sessions") => {
                let n = l.fetch_add(1, Ordering::SeqCst);
                Response::json(201, &json!({}))
                    .header("X-Auth-Token", &format!("tok{n}"))
                    .header("Location", &format!("/redfish/v1/SessionService/Sessions/{n}"))
            }
            ("DELETE", p) => {
                e.lock().unwrap().push(p.to_string());
                Response::empty(204)
            }
            _ if r.header("x-auth-token").is_some() => {
                Response::json(200, &json!({"Members": [{"@odata.id": "/redfish/v1/Systems/1"}]}))
            }
            _ => Response::json(401, &json!({})),
        });
        (double, logins, ended)
    }

    fn cfg(url: &str, user: &str) -> BmcConfig {
        let mut c = BmcConfig::new(url, user, "pw");
        c.retries = 0;
        c
    }

    #[test]
    fn a_nodes_login_is_reused_by_its_next_steps_and_ended_when_forgotten_or_replaced() {
        let (double, logins, ended) = bmc_with_sessions();
        let sessions = Arc::new(Sessions::default());
        for _ in 0..3 {
            let step = StepBmc::new(&sessions, "n1", cfg(&double.url, "admin"), "sealed-1");
            step.systems().unwrap();
        }
        assert_eq!(logins.load(Ordering::SeqCst), 1, "three steps, one login");
        assert!(ended.lock().unwrap().is_empty(), "kept, not ended");
        assert_eq!(sessions.len(), 1);

        // New credentials (their sealed form differs): a new login, and
        // the old one is ended on the BMC (in the background).
        let step = StepBmc::new(&sessions, "n1", cfg(&double.url, "admin"), "sealed-2");
        step.systems().unwrap();
        drop(step);
        assert_eq!(logins.load(Ordering::SeqCst), 2);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while ended.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(*ended.lock().unwrap(), ["/redfish/v1/SessionService/Sessions/0"]);

        // Two clients of the node at once: one login is kept, the other ended.
        let a = StepBmc::new(&sessions, "n1", cfg(&double.url, "admin"), "sealed-2");
        let b = StepBmc::new(&sessions, "n1", cfg(&double.url, "admin"), "sealed-2");
        a.systems().unwrap();
        b.systems().unwrap();
        drop(a);
        drop(b);
        assert_eq!(logins.load(Ordering::SeqCst), 3, "a resumed the kept login, b logged in");
        assert_eq!(
            *ended.lock().unwrap(),
            ["/redfish/v1/SessionService/Sessions/0", "/redfish/v1/SessionService/Sessions/2"]
        );
        assert_eq!(sessions.len(), 1);

        // The node is gone: its login is ended on the BMC.
        sessions.end("n1");
        assert_eq!(sessions.len(), 0);
        assert_eq!(ended.lock().unwrap().len(), 3, "{:?}", ended.lock().unwrap());
        // At shutdown every kept login is ended.
        for n in ["n3", "n4"] {
            StepBmc::new(&sessions, n, cfg(&double.url, "admin"), "sealed").systems().unwrap();
        }
        assert_eq!(sessions.len(), 2);
        sessions.end_all();
        assert_eq!(sessions.len(), 0);
        assert_eq!(ended.lock().unwrap().len(), 5, "{:?}", ended.lock().unwrap());
        // A client that never logged in keeps nothing.
        drop(StepBmc::new(&sessions, "n2", cfg(&double.url, "admin"), "sealed"));
        assert_eq!(sessions.len(), 0);
    }

    /// Kept logins are ended over HTTPS with the CA the logins were made
    /// with (not the public roots, which a BMC's certificate is not under).
    #[test]
    fn a_kept_login_on_an_https_bmc_is_ended_with_its_ca() {
        let ended = Arc::new(Mutex::new(Vec::new()));
        let e = ended.clone();
        let double = HttpDouble::start_https(move |r: &Request| {
            match (r.method.as_str(), r.path()) {
                ("GET", "/redfish/v1") => Response::json(
                    200,
                    &json!({"Links": {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}}}),
                ),
                ("POST", "/redfish/v1/SessionService/Sessions") => Response::json(201, &json!({}))
                    .header("X-Auth-Token", "tok")
                    .header("Location", "/redfish/v1/SessionService/Sessions/1"),
                ("DELETE", p) => {
                    e.lock().unwrap().push(p.to_string());
                    Response::empty(204)
                }
                _ => Response::json(200, &json!({"Members": []})),
            }
        });
        let sessions = Arc::new(Sessions::default());
        let mut c = cfg(&double.url, "admin");
        c.tls = TlsOptions::with_ca_pem(neocloud_common::http_double::TEST_CA_PEM);
        StepBmc::new(&sessions, "n1", c, "sealed").systems().unwrap();
        assert_eq!(sessions.len(), 1);
        sessions.end("n1");
        assert_eq!(*ended.lock().unwrap(), ["/redfish/v1/SessionService/Sessions/1"]);
    }

    /// Every client of one BMC takes its permits from the same lanes: at
    /// most `max_in_flight` requests in flight on the BMC, however many
    /// nodes (a chassis manager's) or steps ask at once.
    #[test]
    fn clients_of_one_bmc_share_its_limit_of_requests_in_flight() {
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (n, p) = (now.clone(), peak.clone());
        let double = HttpDouble::start(move |r: &Request| {
            if r.path() == "/redfish/v1" {
                return Response::json(200, &json!({}));
            }
            let k = n.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(k, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(50));
            n.fetch_sub(1, Ordering::SeqCst);
            Response::json(200, &json!({"Members": []}))
        });
        let sessions = Arc::new(Sessions::default());
        std::thread::scope(|s| {
            for i in 0..8 {
                let sessions = &sessions;
                let url = double.url.clone();
                s.spawn(move || {
                    let step = StepBmc::new(sessions, &format!("n{i}"), cfg(&url, "admin"), "x");
                    for _ in 0..3 {
                        step.systems().unwrap();
                    }
                });
            }
        });
        let peak = peak.load(Ordering::SeqCst);
        assert!(peak <= 4, "{peak} requests in flight on one BMC");
        assert!(peak >= 2, "the clients did ask at once ({peak})");
    }
}
