//! Per-principal token buckets, in memory (each replica limits on its own).

use neocloud_common::Error;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_sec` = 0 disables limiting.
    pub fn new(per_sec: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            per_sec: per_sec as f64,
            burst: burst.max(1) as f64,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn check(&self, key: &str) -> Result<(), Error> {
        if self.per_sec <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if b.len() > 100_000 {
            // Bound memory: forget full buckets.
            let (per_sec, burst) = (self.per_sec, self.burst);
            b.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * per_sec < burst
            });
        }
        let (tokens, at) = b.entry(key.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - *tokens) / self.per_sec).ceil().max(1.0) as u64;
            Err(Error::RateLimited { retry_after_secs: wait })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refuse() {
        let r = RateLimiter::new(1, 3);
        for _ in 0..3 {
            r.check("a").unwrap();
        }
        assert!(matches!(r.check("a"), Err(Error::RateLimited { .. })));
        // Another principal has its own bucket.
        r.check("b").unwrap();
        let off = RateLimiter::new(0, 0);
        for _ in 0..1000 {
            off.check("a").unwrap();
        }
    }
}
