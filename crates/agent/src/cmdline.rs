//! The kernel command line, where the boot service puts the agent's
//! settings: `neocloud.api=URL` and the one-time `neocloud.token=TOKEN`.

/// The key holding the control plane's API URL.
pub const API_KEY: &str = "neocloud.api";
/// The key holding the one-time provisioning token.
pub const TOKEN_KEY: &str = "neocloud.token";

/// The value of `key=value` on a kernel command line; the last occurrence
/// wins, as for the kernel's own parameters. Double quotes group words
/// (`key="a b"`) and are removed, as the kernel does. A bare `key` (no
/// `=`) or an empty value is `None`.
pub fn value(cmdline: &str, key: &str) -> Option<String> {
    let mut found = None;
    for param in split(cmdline) {
        if let Some((k, v)) = param.split_once('=') {
            if k == key {
                found = Some(v.to_string());
            }
        }
    }
    found.filter(|v| !v.is_empty())
}

/// Splits a command line into parameters on whitespace outside quotes.
fn split(cmdline: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// Reads `/proc/cmdline` (empty if it cannot be read).
pub fn read() -> String {
    std::fs::read_to_string("/proc/cmdline").unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "BOOT_IMAGE=/vmlinuz root=/dev/ram0 console=ttyS0,115200n8 \
        neocloud.api=http://10.0.0.1:8080 neocloud.token=nct_abc123 quiet\n";

    #[test]
    fn finds_token_and_api() {
        assert_eq!(value(LINE, TOKEN_KEY).as_deref(), Some("nct_abc123"));
        assert_eq!(value(LINE, API_KEY).as_deref(), Some("http://10.0.0.1:8080"));
        assert_eq!(value(LINE, "root").as_deref(), Some("/dev/ram0"));
    }

    #[test]
    fn missing_or_empty_is_none() {
        assert_eq!(value("root=/dev/sda1 quiet", TOKEN_KEY), None);
        assert_eq!(value("neocloud.token= quiet", TOKEN_KEY), None);
        assert_eq!(value("neocloud.token quiet", TOKEN_KEY), None);
        assert_eq!(value("", TOKEN_KEY), None);
        // A longer key with the same prefix is another key.
        assert_eq!(value("neocloud.token2=x neocloud.tokens=y", TOKEN_KEY), None);
        assert_eq!(value("xneocloud.token=x", TOKEN_KEY), None);
    }

    #[test]
    fn last_occurrence_wins_and_quotes_are_removed() {
        assert_eq!(value("neocloud.token=a neocloud.token=b", TOKEN_KEY).as_deref(), Some("b"));
        assert_eq!(
            value("x=\"a b\" neocloud.api=\"http://h:1/x y\" q", API_KEY).as_deref(),
            Some("http://h:1/x y")
        );
        assert_eq!(value("\"neocloud.token=t t\"", TOKEN_KEY).as_deref(), Some("t t"));
        assert_eq!(value("a=1\tneocloud.token=tab\n", TOKEN_KEY).as_deref(), Some("tab"));
    }

    #[test]
    fn values_may_contain_equals() {
        assert_eq!(value("neocloud.token=ab==", TOKEN_KEY).as_deref(), Some("ab=="));
    }
}
