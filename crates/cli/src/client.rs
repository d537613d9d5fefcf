//! HTTP client for the API, and the saved login (`{url, token}`).

use crate::output::{ApiError, CliError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The saved login: what `neocloud login` writes, read by every other
/// client command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub url: String,
    pub token: String,
}

/// `$NEOCLOUD_CLI_CONFIG`, else `$XDG_CONFIG_HOME/neocloud/cli.json`, else
/// `~/.config/neocloud/cli.json`.
pub fn config_path() -> Result<PathBuf, CliError> {
    if let Some(p) = std::env::var_os("NEOCLOUD_CLI_CONFIG").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from) {
        // The XDG spec says relative paths are to be ignored.
        Some(p) if p.is_absolute() => p,
        _ => match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(h) => PathBuf::from(h).join(".config"),
            None => {
                return Err(CliError::Usage(
                    "cannot find the config file: set NEOCLOUD_CLI_CONFIG or HOME".into(),
                ))
            }
        },
    };
    Ok(base.join("neocloud").join("cli.json"))
}

/// The saved login, if there is one.
pub fn load_config(path: &Path) -> Result<Option<Config>, CliError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CliError::Other(format!("cannot read {}: {e}", path.display()))),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path) {
            if m.permissions().mode() & 0o077 != 0 {
                eprintln!(
                    "warning: {} holds a token but others can read it; run: chmod 600 {}",
                    path.display(),
                    path.display()
                );
            }
        }
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| CliError::Other(format!("cannot parse {}: {e}", path.display())))
}

/// Writes the login with mode 0600 (through a temporary file and a rename,
/// so a reader never sees half a file and an older, wider mode is replaced).
pub fn save_config(path: &Path, c: &Config) -> Result<(), CliError> {
    let err = |what: &str, p: &Path, e: std::io::Error| {
        CliError::Other(format!("cannot {what} {}: {e}", p.display()))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                b.mode(0o700);
            }
            b.create(dir).map_err(|e| err("create", dir, e))?;
        }
    }
    let mut text = serde_json::to_string_pretty(c).map_err(|e| CliError::Other(e.to_string()))?;
    text.push('\n');
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let res = (|| {
        use std::io::Write;
        let mut f = opts.open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(err("write", path, e));
    }
    Ok(())
}

/// Percent-encodes one path segment (names and ids need none, but a
/// mistyped argument must not change the path). The commands reject empty,
/// `.` and `..` arguments, which no escaping keeps in place.
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A blocking API client: one base URL, one bearer token.
pub struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

/// The body of a successful answer.
pub enum Answer {
    Json(Value),
    Text(String),
    Empty,
}

impl Client {
    /// `url` is the server's root, e.g. `http://127.0.0.1:8080`.
    pub fn new(url: &str, token: &str) -> Result<Client, CliError> {
        let base = normalize_url(url)?;
        let token = token.trim();
        if token.is_empty() {
            return Err(CliError::NotLoggedIn("the token is empty".into()));
        }
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(120))
            .timeout_write(Duration::from_secs(60))
            .user_agent(concat!("neocloud-cli/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client { base, token: token.to_string(), agent })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, CliError> {
        self.call("GET", path, query, None, None).and_then(json)
    }

    /// A GET whose answer is text (`format=jsonl`).
    pub fn get_text(&self, path: &str, query: &[(&str, String)]) -> Result<String, CliError> {
        match self.call("GET", path, query, None, None)? {
            Answer::Text(t) => Ok(t),
            Answer::Json(v) => Ok(v.to_string()),
            Answer::Empty => Ok(String::new()),
        }
    }

    /// A create: POST with an optional `Idempotency-Key`.
    pub fn post(
        &self,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, CliError> {
        self.call("POST", path, &[], body, idempotency_key).and_then(json)
    }

    pub fn patch(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.call("PATCH", path, &[], Some(body), None).and_then(json)
    }

    pub fn put(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.call("PUT", path, &[], Some(body), None).and_then(json)
    }

    /// DELETE: some answer the object (revoked token, released claim),
    /// others nothing.
    pub fn delete(&self, path: &str) -> Result<Option<Value>, CliError> {
        match self.call("DELETE", path, &[], None, None)? {
            Answer::Json(v) => Ok(Some(v)),
            Answer::Text(_) | Answer::Empty => Ok(None),
        }
    }

    /// One request; error statuses become [`CliError::Api`].
    pub fn call(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, CliError> {
        let mut req = self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token))
            .set("Accept", "application/json");
        for (k, v) in query {
            req = req.query(k, v);
        }
        if let Some(k) = idempotency_key {
            req = req.set("Idempotency-Key", k);
        }
        let res = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match res {
            Ok(resp) => read_answer(resp),
            Err(ureq::Error::Status(status, resp)) => {
                Err(CliError::Api(Box::new(api_error(status, resp))))
            }
            Err(ureq::Error::Transport(t)) => Err(transport_error(&self.base, t)),
        }
    }
}

fn json(a: Answer) -> Result<Value, CliError> {
    match a {
        Answer::Json(v) => Ok(v),
        Answer::Empty => Ok(Value::Null),
        Answer::Text(_) => {
            Err(CliError::Other("unexpected answer from the server: not JSON".into()))
        }
    }
}

fn read_answer(resp: ureq::Response) -> Result<Answer, CliError> {
    let status = resp.status();
    // `application/json` or `application/<something>+json`; not JSON lines
    // (`application/x-ndjson`).
    let ct = resp.content_type();
    let is_json = ct == "application/json" || ct.ends_with("+json");
    let text = resp
        .into_string()
        .map_err(|e| CliError::Unavailable(format!("reading the answer failed: {e}")))?;
    if status == 204 || text.trim().is_empty() {
        return Ok(Answer::Empty);
    }
    if !is_json {
        return Ok(Answer::Text(text));
    }
    serde_json::from_str(&text)
        .map(Answer::Json)
        .map_err(|e| CliError::Other(format!("unexpected answer from the server: {e}")))
}

fn api_error(status: u16, resp: ureq::Response) -> ApiError {
    let header_id = resp.header("x-request-id").map(str::to_string);
    let retry_after = resp.header("retry-after").map(str::to_string);
    let status_text = resp.status_text().to_string();
    let text = resp.into_string().unwrap_or_default();
    match serde_json::from_str::<neocloud_types::ErrorBody>(&text) {
        Ok(b) => ApiError {
            status,
            code: b.error.code,
            message: b.error.message,
            field: b.error.field,
            request_id: Some(b.error.request_id).filter(|r| !r.is_empty()).or(header_id),
            retry_after,
        },
        Err(_) => {
            // Not the API's error body (a proxy, say): say what we got.
            let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
            let mut message = format!("HTTP {status} {status_text}");
            if !first.is_empty() {
                let first: String = first.chars().take(200).collect();
                message.push_str(&format!(": {first}"));
            }
            ApiError {
                status,
                code: String::new(),
                message,
                field: None,
                request_id: header_id,
                retry_after,
            }
        }
    }
}

fn transport_error(base: &str, t: ureq::Transport) -> CliError {
    match t.kind() {
        ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme => {
            CliError::Usage(format!("bad API URL {base}: {t}"))
        }
        _ => CliError::Unavailable(format!("cannot reach {base}: {t}")),
    }
}

/// Checks the scheme and drops trailing slashes.
pub fn normalize_url(url: &str) -> Result<String, CliError> {
    let u = url.trim().trim_end_matches('/');
    if !(u.starts_with("http://") || u.starts_with("https://")) || u.contains(char::is_whitespace) {
        return Err(CliError::Usage(format!(
            "bad API URL {url:?}: expected http://HOST[:PORT] or https://HOST[:PORT]"
        )));
    }
    Ok(u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_escaped() {
        assert_eq!(seg("acme-1"), "acme-1");
        assert_eq!(seg("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn urls() {
        assert_eq!(normalize_url("http://h:1/").unwrap(), "http://h:1");
        assert!(normalize_url("h:1").is_err());
    }

    #[test]
    fn config_round_trip() {
        let dir = std::env::temp_dir().join(format!("neocloud-cli-cfg-{}", std::process::id()));
        let path = dir.join("sub").join("cli.json");
        let c = Config { url: "http://x".into(), token: "t".into() };
        save_config(&path, &c).unwrap();
        let back = load_config(&path).unwrap().unwrap();
        assert_eq!((back.url.as_str(), back.token.as_str()), ("http://x", "t"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(load_config(&dir.join("missing.json")).unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
