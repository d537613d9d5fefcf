//! A counting semaphore for blocking callers: at most `n` holders; and a
//! BMC's lanes of them, shared by every client of the BMC.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, Weak};

/// A BMC's request lanes: at most `max_in_flight` requests at once, slow
/// calls (firmware inventory, uploads) one fewer, so they never take every
/// permit. Shared by every client of the BMC ([`LanesByEndpoint`]), the
/// limit holds for the BMC, not for one client.
pub struct Lanes {
    pub(crate) lane: Limiter,
    pub(crate) slow_lane: Limiter,
}

impl Lanes {
    pub fn new(max_in_flight: usize) -> Arc<Lanes> {
        let n = max_in_flight.max(2);
        Arc::new(Lanes { lane: Limiter::new(n), slow_lane: Limiter::new(n - 1) })
    }

    /// Requests in flight right now.
    pub fn in_flight(&self) -> usize {
        self.lane.in_use()
    }
}

/// The lanes of each BMC a process talks to, by endpoint: every client of
/// one endpoint (a lifecycle step's, a health check's, a tenant's power
/// action's; several nodes behind one chassis manager) takes its permits
/// from the same lanes. Kept while a client holds them.
#[derive(Default)]
pub struct LanesByEndpoint(Mutex<HashMap<String, Weak<Lanes>>>);

impl LanesByEndpoint {
    /// The lanes of `endpoint` (created with `max_in_flight` if none are
    /// held).
    pub fn lanes(&self, endpoint: &str, max_in_flight: usize) -> Arc<Lanes> {
        let key = endpoint.trim_end_matches('/').to_ascii_lowercase();
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = m.get(&key).and_then(Weak::upgrade) {
            return l;
        }
        // Lanes no client holds any more go as the map grows.
        if m.len() >= 64 && m.len().is_power_of_two() {
            m.retain(|_, w| w.strong_count() > 0);
        }
        let l = Lanes::new(max_in_flight);
        m.insert(key, Arc::downgrade(&l));
        l
    }
}

pub struct Limiter {
    max: usize,
    used: Mutex<usize>,
    freed: Condvar,
}

pub struct Permit<'a>(&'a Limiter);

impl Limiter {
    pub fn new(max: usize) -> Limiter {
        Limiter { max: max.max(1), used: Mutex::new(0), freed: Condvar::new() }
    }

    pub fn acquire(&self) -> Permit<'_> {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used >= self.max {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += 1;
        Permit(self)
    }

    /// Holders right now.
    pub fn in_use(&self) -> usize {
        *self.used.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut used = self.0.used.lock().unwrap_or_else(|e| e.into_inner());
        *used -= 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn never_more_than_max_holders() {
        let l = Arc::new(Limiter::new(4));
        let peak = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let (l, peak) = (l.clone(), peak.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let _p = l.acquire();
                        peak.fetch_max(l.in_use(), Ordering::SeqCst);
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= 4);
        assert_eq!(l.in_use(), 0);
    }
}
