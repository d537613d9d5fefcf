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

/// CPU seconds this process has used (user + system), where the OS says
/// (Linux: `/proc/self/stat`, in clock ticks of 1/100 s); `None` elsewhere.
pub fn process_cpu_secs() -> Option<f64> {
    cpu_ticks(&[11, 12])
}

/// CPU seconds this process and the child processes it has waited for
/// (tools it ran) have used, where the OS says; `None` elsewhere.
pub fn process_and_children_cpu_secs() -> Option<f64> {
    cpu_ticks(&[11, 12, 13, 14])
}

/// The sum of `/proc/self/stat` fields (counted after the command's name
/// and state: utime, stime, cutime, cstime are 11 to 14), in seconds.
fn cpu_ticks(fields: &[usize]) -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let mut ticks = 0.0;
    for i in fields {
        ticks += f.get(*i)?.parse::<f64>().ok()?;
    }
    Some(ticks / 100.0)
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

    #[test]
    fn process_cpu_grows_with_work() {
        let Some(before) = process_cpu_secs() else {
            eprintln!("SKIPPED: no /proc/self/stat on this OS");
            return;
        };
        // Spin until the counter (1/100 s ticks) moves: it must, within 5 s.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while process_cpu_secs().unwrap() <= before {
            x = x.wrapping_mul(31).wrapping_add(1);
            assert!(start.elapsed() < Duration::from_secs(5), "CPU time did not move ({x})");
        }
    }

    #[test]
    fn a_waited_childs_cpu_counts_with_the_process() {
        let Some(before) = process_and_children_cpu_secs() else {
            eprintln!("SKIPPED: no /proc/self/stat on this OS");
            return;
        };
        let own = process_cpu_secs().unwrap();
        // A child that spins for 0.3 s of CPU, waited for.
        let status = std::process::Command::new("sh")
            .args(["-c", "end=$(( $(date +%s%N) + 300000000 )); while [ $(date +%s%N) -lt $end ]; do :; done"])
            .status()
            .unwrap();
        assert!(status.success());
        let with_children = process_and_children_cpu_secs().unwrap() - before;
        let alone = process_cpu_secs().unwrap() - own;
        assert!(with_children >= alone + 0.1, "children {with_children} s, process {alone} s");
    }
}
