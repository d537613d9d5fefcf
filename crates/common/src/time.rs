//! Times are stored as microseconds since the Unix epoch (i64) and shown
//! as RFC 3339 UTC strings.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in microseconds since the epoch.
pub fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// RFC 3339 with microseconds, UTC.
pub fn to_rfc3339(micros: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_micros(micros.max(0) as u64);
    humantime::format_rfc3339_micros(t).to_string()
}

/// Parses RFC 3339 (`2026-01-02T03:04:05Z`, fractional seconds allowed).
pub fn from_rfc3339(s: &str) -> Result<i64, String> {
    let t = humantime::parse_rfc3339_weak(s.trim_end_matches('Z'))
        .or_else(|_| humantime::parse_rfc3339(s))
        .map_err(|e| format!("not an RFC 3339 UTC time: {e}"))?;
    Ok(t.duration_since(UNIX_EPOCH).map_err(|_| "time before 1970".to_string())?.as_micros() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let now = now_micros();
        assert_eq!(from_rfc3339(&to_rfc3339(now)).unwrap(), now);
        assert_eq!(from_rfc3339("2030-01-01T00:00:00Z").unwrap(), 1_893_456_000_000_000);
        assert!(from_rfc3339("tomorrow").is_err());
    }
}
