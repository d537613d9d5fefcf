//! `--wait`: polling objects (instances, attachments) until each is where
//! it was asked to go or cannot get there, printing each change to stderr.

use crate::output::{self, parse, CliError};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often `--wait` asks.
const POLL: Duration = Duration::from_secs(1);

/// Where one waited-for object stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    Waiting,
    Done,
    /// Will not get there, and why.
    Failed(String),
}

/// An object `--wait` follows.
pub(super) trait Watched: serde::de::DeserializeOwned {
    /// What it is polled by.
    fn id(&self) -> &str;
    /// What the messages call it.
    fn label(&self) -> String;
    /// One line for where it stands, printed when it changes.
    fn progress_line(&self) -> String;
}

/// The text on one line: control characters become spaces.
pub(super) fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// What a wait ended with: the objects as last seen (the API's JSON).
pub(super) struct Waited {
    pub(super) items: Vec<Value>,
    failures: Vec<String>,
    /// Labels of those still not there when the time ran out.
    waiting: Vec<String>,
}

impl Waited {
    /// Exit 1 (with every reason) unless all got there.
    pub(super) fn result(self, goal: &str, timeout: u64) -> Result<(), CliError> {
        let mut problems = self.failures;
        if !self.waiting.is_empty() {
            problems.push(format!(
                "timed out after {}: {} not {goal} yet",
                humantime::format_duration(Duration::from_secs(timeout)),
                self.waiting.join(", ")
            ));
        }
        match problems.len() {
            0 => Ok(()),
            1 => Err(CliError::Other(problems.remove(0))),
            _ => Err(CliError::Other(problems.join("\n  "))),
        }
    }
}

/// Polls the objects (`poll` answers them for their ids, in order) until
/// none is [`Verdict::Waiting`] or the time runs out, printing each change
/// of [`Watched::progress_line`] to stderr. Answers that may pass (5xx,
/// 429, no answer) are retried until then.
pub(super) fn wait_for<T: Watched>(
    first: Vec<Value>,
    timeout: Duration,
    mut poll: impl FnMut(&[String]) -> Result<Vec<Value>, CliError>,
    mut verdict: impl FnMut(&T) -> Verdict,
) -> Result<Waited, CliError> {
    let deadline = Instant::now() + timeout;
    let mut ids = Vec::with_capacity(first.len());
    for v in &first {
        ids.push(parse::<T>(v)?.id().to_string());
    }
    let mut shown: HashMap<String, String> = HashMap::new();
    let mut last_error: Option<String> = None;
    let mut items = first;
    loop {
        let mut failures = Vec::new();
        let mut waiting = Vec::new();
        for v in &items {
            let o: T = parse(v)?;
            let line = one_line(&o.progress_line());
            if shown.get(o.id()) != Some(&line) {
                eprintln!("{line}");
                shown.insert(o.id().to_string(), line);
            }
            match verdict(&o) {
                Verdict::Waiting => waiting.push(o.label()),
                Verdict::Done => {}
                Verdict::Failed(why) => failures.push(format!("{}: {why}", o.label())),
            }
        }
        let now = Instant::now();
        if waiting.is_empty() || now >= deadline {
            return Ok(Waited { items, failures, waiting });
        }
        std::thread::sleep(POLL.min(deadline - now));
        match poll(&ids) {
            Ok(v) => {
                items = v;
                last_error = None;
            }
            Err(e) if is_transient(&e) => {
                let msg = e.to_string();
                if last_error.as_deref() != Some(msg.as_str()) {
                    eprintln!("(still waiting: {msg})");
                    last_error = Some(msg);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_transient(e: &CliError) -> bool {
    matches!(e.exit_code(), output::EXIT_UNAVAILABLE | output::EXIT_RATE_LIMITED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(serde::Deserialize)]
    struct Thing {
        id: String,
        state: String,
    }

    impl Watched for Thing {
        fn id(&self) -> &str {
            &self.id
        }
        fn label(&self) -> String {
            self.id.clone()
        }
        fn progress_line(&self) -> String {
            format!("{}: {}", self.id, self.state)
        }
    }

    fn verdict(t: &Thing) -> Verdict {
        match t.state.as_str() {
            "done" => Verdict::Done,
            "broken" => Verdict::Failed("broken".into()),
            _ => Verdict::Waiting,
        }
    }

    #[test]
    fn waits_report_failures_and_timeouts() {
        let ok = Waited { items: vec![], failures: vec![], waiting: vec![] };
        assert!(ok.result("ready", 60).is_ok());
        let w = Waited {
            items: vec![],
            failures: vec!["job-0: no BMC".into()],
            waiting: vec!["job-1".into()],
        };
        let e = w.result("ready", 90).unwrap_err();
        assert_eq!(e.exit_code(), output::EXIT_OTHER);
        let msg = e.to_string();
        assert!(msg.contains("job-0: no BMC"), "{msg}");
        assert!(msg.contains("timed out after 1m 30s: job-1 not ready yet"), "{msg}");
    }

    #[test]
    fn polls_until_done_and_retries_what_may_pass() {
        let mut answers = vec![
            Err(CliError::Unavailable("down".into())),
            Ok(vec![json!({"id": "a", "state": "done"}), json!({"id": "b", "state": "broken"})]),
        ];
        let mut asked = Vec::new();
        let first = vec![json!({"id": "a", "state": "new"}), json!({"id": "b", "state": "new"})];
        let w = wait_for(
            first,
            Duration::from_secs(30),
            |ids| {
                asked.push(ids.to_vec());
                answers.remove(0)
            },
            verdict,
        )
        .unwrap();
        assert_eq!(asked, vec![vec!["a".to_string(), "b".into()]; 2]);
        assert_eq!(w.items[0]["state"], "done");
        let e = w.result("done", 30).unwrap_err();
        assert_eq!(e.to_string(), "b: broken");
        // Not found is not retried.
        let first = vec![json!({"id": "a", "state": "new"})];
        let r = wait_for(
            first,
            Duration::from_secs(30),
            |_| Err(CliError::Usage("gone".into())),
            verdict,
        );
        assert!(r.is_err());
        // Out of time: still waiting.
        let first = vec![json!({"id": "a", "state": "new"})];
        let w = wait_for(first, Duration::ZERO, |_| unreachable!(), verdict).unwrap();
        assert!(w.result("done", 0).unwrap_err().to_string().contains("a not done yet"));
        assert_eq!(one_line("a\nb\tc"), "a b c");
    }
}
