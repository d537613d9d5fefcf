//! The system tools steps run ([`STEP_TOOLS`]), found on `$PATH` or the
//! usual sbin directories, and their failures shaped into one line for a
//! step's item; and reading sysfs values.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every system tool a step runs, and what is lost where a sanitizer
/// image lacks it (`neocloud-agent --inventory` lists them).
pub const STEP_TOOLS: [(&str, &str); 7] = [
    ("nvme", "NVMe Sanitize and secure-erase formats (nvme-cli): NVMe disks fail their wipe"),
    ("hdparm", "ATA security erase: SATA disks are zeroed instead"),
    ("blkdiscard", "secure discard and zeroing by the device (util-linux): disks are overwritten"),
    ("chattr", "deleting a tenant's UEFI variables (e2fsprogs): the step fails on one"),
    ("mount", "mounting efivarfs where it is not: the UEFI variable step fails"),
    ("nvidia-smi", "the GPU reset: the step fails on a machine with GPUs"),
    (
        "mstconfig",
        "NVIDIA (Mellanox) network adapters' persistent settings (mstflint): the step fails on a \
         machine with such adapters",
    ),
];

/// Where each of [`STEP_TOOLS`] is on this machine, or what is lost
/// without it.
pub fn step_tools() -> std::collections::BTreeMap<String, String> {
    STEP_TOOLS
        .iter()
        .map(|(name, without)| {
            let found = find_tool(name).map(|p| p.display().to_string());
            (name.to_string(), found.unwrap_or_else(|| format!("missing: {without}")))
        })
        .collect()
}

/// A file's content without surrounding whitespace (sysfs and procfs
/// values).
pub(crate) fn read_trimmed(p: &Path) -> io::Result<String> {
    Ok(fs::read_to_string(p)?.trim().to_string())
}

/// The path of an executable on `$PATH` (or the usual sbin directories,
/// which minimal ramdisks leave off `$PATH`).
pub(crate) fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Runs a tool to completion; `Ok` with all of its standard output when it
/// exits 0, else what went wrong (the last line of its error output, or of
/// its standard output when it wrote no error).
pub(crate) fn run_tool_stdout(name: &str, args: &[&str]) -> Result<String, String> {
    let Some(exe) = find_tool(name) else { return Err(format!("{name} is not installed")) };
    let out = Command::new(&exe)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    stdout_or_error(name, args, &out)
}

/// A finished tool's standard output where it exited 0, else what went
/// wrong: the last line of its error output, or of its standard output
/// where it wrote no error (some tools, mstconfig among them, write their
/// errors there).
pub(crate) fn stdout_or_error(
    name: &str,
    args: &[&str],
    out: &std::process::Output,
) -> Result<String, String> {
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = last_line(&out.stderr);
    let err = if err.is_empty() { last_line(&out.stdout) } else { err };
    Err(format!("{name} {} failed ({}): {err}", args.join(" "), out.status))
}

/// Runs a tool to completion; `Ok` with the last line of its output when it
/// exits 0, else what went wrong.
pub(crate) fn run_tool(name: &str, args: &[&str]) -> Result<String, String> {
    run_tool_stdout(name, args).map(|out| last_line(out.as_bytes()))
}

/// The last non-empty line of a tool's output, trimmed, at most 300
/// characters.
pub(crate) fn last_line(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

/// Runs `cmd` (its output captured) for at most `deadline`: its output, or
/// why there is none (it could not start; killed at the deadline).
pub(crate) fn run_with_deadline(
    mut cmd: Command,
    deadline: std::time::Duration,
) -> Result<std::process::Output, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    // Read while it runs (a full pipe would stop it).
    fn drain(mut r: impl io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = r.read_to_end(&mut b);
            b
        })
    }
    let out = drain(child.stdout.take().expect("piped"));
    let err = drain(child.stderr.take().expect("piped"));
    let end = std::time::Instant::now() + deadline;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < end => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("stopped after {} s", deadline.as_secs()));
            }
            Err(e) => return Err(format!("waiting for it: {e}")),
        }
    };
    Ok(std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_found_on_path() {
        assert!(find_tool("sh").is_some());
        assert!(find_tool("neocloud-no-such-tool").is_none());
        assert!(run_tool("neocloud-no-such-tool", &[]).unwrap_err().contains("not installed"));
        assert!(run_tool("false", &[]).is_err());
        assert_eq!(run_tool("echo", &["hi"]), Ok("hi".to_string()));
    }
}
