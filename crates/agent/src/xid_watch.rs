//! The driver's critical Xid errors, watched on a thread of their own
//! (NVML events) and kept per GPU until its next reset, so a heartbeat
//! reports a GPU that fell off the bus or lost memory contents between two
//! readings ([`crate::health::critical_xid`] says which count).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use crate::nvml::{Nvml, Xid};

/// The most Xids kept (a GPU in trouble can report one per second).
const KEPT: usize = 256;
/// How long a wait for events lasts before the stop flag is read again.
const WAIT_MS: u32 = 500;

/// What the watcher saw, shared with its thread.
pub struct XidWatch {
    seen: Mutex<Vec<Xid>>,
    state: Mutex<String>,
    stop: AtomicBool,
}

impl XidWatch {
    /// Registers for the critical Xids of every GPU and watches them on a
    /// thread until [`XidWatch::stop`]. Returns once registered (or
    /// refused: then [`XidWatch::state`] says why and nothing is watched).
    pub fn start(nvml: Arc<Nvml>) -> Arc<XidWatch> {
        let w = Arc::new(XidWatch {
            seen: Mutex::new(Vec::new()),
            state: Mutex::new("starting".into()),
            stop: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel();
        let watch = Arc::clone(&w);
        let spawned = std::thread::Builder::new().name("neocloud-xid".into()).spawn(move || {
            let events = match nvml.xid_events() {
                Ok(e) => e,
                Err(e) => {
                    watch.set_state(format!("not watched: {e}"));
                    let _ = tx.send(());
                    return;
                }
            };
            watch.set_state(format!("watching {} GPUs", events.registered()));
            let _ = tx.send(());
            while !watch.stop.load(Ordering::Relaxed) {
                match events.wait(WAIT_MS) {
                    Ok(Some(x)) => {
                        let mut seen = watch.seen.lock().unwrap_or_else(|p| p.into_inner());
                        if seen.len() < KEPT && !seen.contains(&x) {
                            seen.push(x);
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        watch.set_state(format!("stopped: {e}"));
                        return;
                    }
                }
            }
        });
        match spawned {
            Ok(_) => {
                let _ = rx.recv_timeout(Duration::from_secs(5));
            }
            Err(e) => w.set_state(format!("not watched: cannot start a thread: {e}")),
        }
        w
    }

    fn set_state(&self, s: String) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }

    /// `watching N GPUs`, or why not.
    pub fn state(&self) -> String {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The Xid codes seen for GPU `index` since the start or its reset.
    pub fn codes(&self, index: u32) -> Vec<u64> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.iter().filter(|x| x.index == index).map(|x| x.code).collect()
    }

    /// Every Xid kept, whatever its class, as (GPU index, code).
    pub fn seen(&self) -> Vec<(u32, u64)> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.iter().map(|x| (x.index, x.code)).collect()
    }

    /// Forgets GPU `index`'s Xids (it was reset: what is still wrong shows
    /// in its readings and in new events).
    pub fn forget(&self, index: u32) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).retain(|x| x.index != index);
    }

    /// Ends the watch within one wait.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
