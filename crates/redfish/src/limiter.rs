//! A counting semaphore for blocking callers: at most `n` holders.

use std::sync::{Condvar, Mutex};

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
