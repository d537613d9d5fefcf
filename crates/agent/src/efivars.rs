//! The UEFI variables a tenant can leave in the node's NVRAM.
//!
//! Root on the host can create non-volatile UEFI variables through
//! efivarfs (`/sys/firmware/efi/efivars`, a file `Name-GUID` per variable:
//! four bytes of attributes, little endian, then the data). They survive
//! every disk wipe and reset, so a tenant could leave data or settings
//! there for the next one. The firmware keeps its own variables there too
//! (under vendor GUIDs nobody can list in advance, and deleting one can
//! leave a board unbootable), so nothing is deleted by name: the node's
//! first sanitization records the non-volatile variables it finds (its
//! baseline, before any tenant where `sanitize_before_first_use` is on),
//! and every later one deletes those created since, and fails on one it
//! cannot delete. The boot entries (`Boot####`, `BootOrder`, ...) are
//! left to the BMC's boot-option check, which restores them to the
//! baseline; volatile variables are gone at the next reset.

use crate::result_of;
use neocloud_types::{AgentStepResult, StepItem};
use std::path::Path;

/// Where the kernel shows the variables.
pub const EFIVARS: &str = "/sys/firmware/efi/efivars";

/// The EFI global variable GUID: the boot manager's variables live under it.
const EFI_GLOBAL: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";

const NON_VOLATILE: u32 = 0x1;
/// Authenticated writes (the old scheme, and time-based): only a write
/// signed with the creator's key deletes such a variable.
const AUTHENTICATED: u32 = 0x10 | 0x20;

/// One variable as efivarfs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// `Name-GUID`, the file's name.
    pub key: String,
    pub attributes: u32,
    pub size: usize,
}

impl Variable {
    fn boot_manager(&self) -> bool {
        let Some((name, guid)) = split_key(&self.key) else { return false };
        if !guid.eq_ignore_ascii_case(EFI_GLOBAL) {
            return false;
        }
        let numbered = |prefix: &str| {
            name.strip_prefix(prefix)
                .is_some_and(|n| n.len() == 4 && n.chars().all(|c| c.is_ascii_hexdigit()))
        };
        matches!(name, "BootOrder" | "BootNext" | "DriverOrder" | "SysPrepOrder" | "Timeout")
            || ["Boot", "Driver", "SysPrep", "PlatformRecovery", "Key"].iter().any(|p| numbered(p))
    }
}

/// `Name-GUID` split at the GUID (36 characters, the last of the name).
fn split_key(key: &str) -> Option<(&str, &str)> {
    let cut = key.len().checked_sub(37)?;
    let (name, rest) = key.split_at(cut);
    let guid = rest.strip_prefix('-')?;
    let dashes: Vec<usize> =
        guid.char_indices().filter(|(_, c)| *c == '-').map(|(i, _)| i).collect();
    (!name.is_empty() && dashes == [8, 13, 18, 23]).then_some((name, guid))
}

/// efivarfs' file system magic (`statfs`'s `f_type`).
const EFIVARFS_MAGIC: u32 = 0xde5e81e4;

/// Whether `dir` is an efivarfs mount.
fn is_efivarfs(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return false };
    // SAFETY: a NUL-terminated path and a zeroed struct the call fills.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statfs(path.as_ptr(), &mut st) };
    rc == 0 && st.f_type as u32 == EFIVARFS_MAGIC
}

/// The variables in `dir`; an error names what could not be read. The
/// kernel's directory must be efivarfs: left unmounted (a sanitizer image
/// without the module, say), it is an empty directory of sysfs, which
/// would read as a firmware without variables, and a baseline taken from
/// it would have every variable of the firmware deleted later.
pub fn list(dir: &Path) -> Result<Vec<Variable>, String> {
    if dir == Path::new(EFIVARS) && !is_efivarfs(dir) {
        return Err(format!(
            "efivarfs is not mounted on {EFIVARS} and could not be (the kernel's efivarfs \
             module?): the UEFI variables cannot be read"
        ));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut vars = Vec::new();
    for e in entries {
        let e = e.map_err(|e| format!("{}: {e}", dir.display()))?;
        let key = e.file_name().to_string_lossy().into_owned();
        if split_key(&key).is_none() {
            continue;
        }
        let bytes = std::fs::read(e.path()).map_err(|err| format!("{key}: {err}"))?;
        if bytes.is_empty() {
            // A file created in efivarfs whose write the firmware refused
            // (a volatile variable once the OS runs, say) stays listed,
            // empty, until the next boot: it is no variable of the firmware.
            continue;
        }
        let Some(head) = bytes.get(..4) else {
            return Err(format!("{key}: {} bytes, no attributes", bytes.len()));
        };
        let attributes = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        vars.push(Variable { key, attributes, size: bytes.len() - 4 });
    }
    vars.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(vars)
}

/// Method of an item for a variable kept (the baseline is read from these).
pub const KEPT: &str = neocloud_types::UEFI_VARIABLE_KEPT;
/// Method of the item about reading the variables (none non-volatile, or
/// unreadable).
const READ: &str = neocloud_types::UEFI_VARIABLES_READ;
/// Method of an item for a variable deleted, or that could not be.
pub const DELETED: &str = "uefi-delete";

fn item(target: &str, method: &str, ok: bool, detail: String) -> StepItem {
    StepItem { target: target.into(), method: method.into(), ok, detail }
}

/// Deletes the non-volatile variables not in `baseline` (but the boot
/// manager's), and reads the variables back. Without a baseline, records
/// every non-volatile variable as kept (the caller keeps them as the
/// node's baseline). An item per non-volatile variable; one item when
/// there are none to read.
pub fn clear(dir: &Path, baseline: Option<&[String]>) -> AgentStepResult {
    let vars = match list(dir) {
        Ok(v) => v,
        Err(e) => return result_of(vec![item("efivars", READ, false, e)]),
    };
    let mut items = Vec::new();
    for v in vars.iter().filter(|v| v.attributes & NON_VOLATILE != 0) {
        let known = baseline.is_none_or(|b| b.iter().any(|k| k == &v.key));
        let detail =
            |what: &str| format!("attributes {:#x}, {} bytes: {what}", v.attributes, v.size);
        if v.boot_manager() {
            items.push(item(
                &v.key,
                KEPT,
                true,
                detail("the boot manager's, checked over the BMC"),
            ));
        } else if known {
            let what = match baseline {
                None => "recorded as the node's baseline",
                Some(_) => "in the node's baseline",
            };
            items.push(item(&v.key, KEPT, true, detail(what)));
        } else if v.attributes & AUTHENTICATED != 0 {
            items.push(item(
                &v.key,
                DELETED,
                false,
                detail(
                    "created since the node's first sanitization, with authenticated writes: \
                     only its creator's key or a reset of the firmware's NVRAM removes it",
                ),
            ));
        } else {
            let gone = delete(&dir.join(&v.key));
            let ok = gone.is_ok();
            let what = match gone {
                Ok(()) => "created since the node's first sanitization: deleted".to_string(),
                Err(e) => format!("created since the node's first sanitization: not deleted: {e}"),
            };
            items.push(item(&v.key, DELETED, ok, detail(&what)));
        }
    }
    if items.is_empty() {
        items.push(item(
            "efivars",
            READ,
            true,
            format!("no non-volatile variables in {}", dir.display()),
        ));
    }
    result_of(items)
}

/// What [`clear`] would find in `dir`, read only (`--inventory`).
pub fn describe(dir: &Path) -> String {
    match list(dir) {
        Err(e) => format!("cannot read the UEFI variables: {e}"),
        Ok(vars) => {
            let nv: Vec<&Variable> =
                vars.iter().filter(|v| v.attributes & NON_VOLATILE != 0).collect();
            let signed = nv.iter().filter(|v| v.attributes & AUTHENTICATED != 0).count();
            format!(
                "{}: {} non-volatile variables ({signed} with authenticated writes)",
                dir.display(),
                nv.len()
            )
        }
    }
}

/// Deletes a variable's file and checks it is gone. efivarfs makes most
/// variables' files immutable (a guard against deleting the firmware's by
/// accident): the flag is lifted first, where the file system has it.
fn delete(p: &Path) -> Result<(), String> {
    let path = p.to_string_lossy();
    // Not every file system has the flag (tmpfs in tests): an error here
    // shows in the removal's own.
    let _ = crate::tools::run_tool("chattr", &["-i", &path]);
    std::fs::remove_file(p).map_err(|e| e.to_string())?;
    match p.exists() {
        true => Err("still there after its removal".into()),
        false => Ok(()),
    }
}

/// The variables directory of this machine: efivarfs mounted where the
/// machine booted through UEFI (mounted here when it was not: where that
/// fails, reading it fails); `None` on a machine that booted another way.
pub fn discover() -> Option<std::path::PathBuf> {
    let dir = Path::new(EFIVARS);
    if !Path::new("/sys/firmware/efi").is_dir() {
        return None;
    }
    if !is_efivarfs(dir) {
        // Not mountable: reading it then fails the step, saying so.
        let _ = crate::tools::run_tool("mount", &["-t", "efivarfs", "efivarfs", EFIVARS]);
    }
    Some(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VENDOR: &str = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";

    fn var(dir: &Path, name: &str, guid: &str, attributes: u32, data: &[u8]) -> String {
        let key = format!("{name}-{guid}");
        let mut bytes = attributes.to_le_bytes().to_vec();
        bytes.extend_from_slice(data);
        std::fs::write(dir.join(&key), bytes).unwrap();
        key
    }

    fn tempdir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("efivars-{}", rand_suffix()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn rand_suffix() -> String {
        let mut b = [0u8; 8];
        getrandom::getrandom(&mut b).unwrap();
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn keys_split_at_the_guid() {
        assert_eq!(split_key(&format!("Boot0001-{EFI_GLOBAL}")), Some(("Boot0001", EFI_GLOBAL)));
        assert_eq!(split_key(&format!("Has-Dashes-{VENDOR}")), Some(("Has-Dashes", VENDOR)));
        assert_eq!(split_key("short"), None);
        assert_eq!(split_key(&format!("-{VENDOR}")), None);
        assert_eq!(split_key("NoGuid-0123456789abcdef0123456789abcdef0123"), None);
    }

    #[test]
    fn the_first_sanitization_records_and_a_later_one_deletes_what_is_new() {
        let dir = tempdir();
        let firmware = var(&dir, "VendorSetup", VENDOR, 0x7, b"setup");
        let boot = var(&dir, "Boot0003", EFI_GLOBAL, 0x7, b"entry");
        var(&dir, "Volatile", VENDOR, 0x6, b"gone at reset");
        // No baseline: everything non-volatile kept and listed.
        let first = clear(&dir, None);
        assert!(first.ok, "{first:?}");
        let kept: Vec<&str> = first.items.iter().map(|i| i.target.as_str()).collect();
        assert_eq!(kept, [boot.as_str(), firmware.as_str()]);
        assert!(first.items.iter().all(|i| i.method == KEPT));
        let baseline = vec![firmware.clone()];

        // A tenant's: one plain, one with authenticated writes.
        let plain = var(&dir, "TenantData", VENDOR, 0x7, b"left for the next one");
        let signed = var(&dir, "TenantSigned", VENDOR, 0x27, b"signed");
        let boot_new = var(&dir, "Boot0009", EFI_GLOBAL, 0x7, b"tenant entry");
        let r = clear(&dir, Some(&baseline));
        assert!(!r.ok, "the authenticated one cannot be deleted: {r:?}");
        let by = |k: &str| r.items.iter().find(|i| i.target == k).unwrap().clone();
        assert!(by(&plain).ok && by(&plain).method == DELETED, "{r:?}");
        assert!(!dir.join(&plain).exists(), "deleted");
        assert!(!by(&signed).ok && by(&signed).detail.contains("authenticated"), "{r:?}");
        assert!(dir.join(&signed).exists());
        // The boot manager's are left to the BMC's check; the firmware's kept.
        assert!(by(&boot_new).ok && by(&boot_new).method == KEPT, "{r:?}");
        assert!(dir.join(&boot_new).exists() && dir.join(&firmware).exists());
        assert!(r.items.iter().all(|i| !i.target.starts_with("Volatile")), "{r:?}");

        // Gone the authenticated one (the provider reset the NVRAM): clean.
        std::fs::remove_file(dir.join(&signed)).unwrap();
        let r = clear(&dir, Some(&baseline));
        assert!(r.ok, "{r:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_empty_entry_is_no_variable() {
        // What efivarfs shows after a write the firmware refused.
        let dir = tempdir();
        std::fs::write(dir.join(format!("Refused-{VENDOR}")), []).unwrap();
        let kept = var(&dir, "VendorSetup", VENDOR, 0x7, b"setup");
        let r = clear(&dir, Some(std::slice::from_ref(&kept)));
        assert!(r.ok, "{r:?}");
        let targets: Vec<&str> = r.items.iter().map(|i| i.target.as_str()).collect();
        assert_eq!(targets, [kept.as_str()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unreadable_directory_or_variable_fails_the_step() {
        let r = clear(Path::new("/nonexistent/efivars"), None);
        assert!(!r.ok && r.items[0].target == "efivars", "{r:?}");
        let dir = tempdir();
        std::fs::write(dir.join(format!("Short-{VENDOR}")), [1u8, 0]).unwrap();
        let r = clear(&dir, None);
        assert!(!r.ok && r.items[0].detail.contains("no attributes"), "{r:?}");
        // Empty: nothing to do, said so.
        std::fs::remove_file(dir.join(format!("Short-{VENDOR}"))).unwrap();
        let r = clear(&dir, Some(&[]));
        assert!(r.ok && r.items[0].detail.contains("no non-volatile variables"), "{r:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
