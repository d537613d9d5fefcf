//! The machine's TPM 2.0, cleared between tenants (`clear_tpm`).
//!
//! A tenant with root can take the TPM's hierarchies (set the owner,
//! endorsement or lockout authorization), make keys persistent and define
//! NV indices. None of it is on the disks the sanitizer wipes: the next
//! tenant would find a TPM it cannot own, or the previous tenant's keys
//! and data in it, and keys derived from the same storage seed. The step
//! sends `TPM2_Clear` (TPM 2.0 Library, Part 3, 24.6), which resets the
//! three authorizations, evicts the owner's and endorsement's persistent
//! objects, deletes the NV indices not created by the platform and
//! changes the storage primary seed; the endorsement seed, and with it the
//! endorsement key and its certificate, stays. Then it reads the TPM back
//! and fails unless nothing of that is left.
//!
//! The TPM is spoken to in its own command format over the kernel's
//! resource manager (`/dev/tpmrm0`), or over TCP to a software TPM
//! (`swtpm socket --server type=tcp`, which takes the same bytes).
//!
//! `TPM2_Clear` is authorized by the platform hierarchy (empty
//! authorization while the firmware left it so, as it rarely does after
//! boot: edk2-based firmware sets a random one of its own) or the lockout
//! hierarchy (empty unless a tenant set one).
//! Where a tenant set the lockout authorization and the platform
//! hierarchy is off, the agent cannot clear it: the step fails, names
//! why, and asks the firmware to clear it at the next boot through the
//! kernel's physical presence interface (PPI operation 5) where it has
//! one.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use neocloud_types::{StepItem, TPM_PPI_REQUESTED};

/// Where the TPM is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TpmPath {
    /// A character device (`/dev/tpmrm0`).
    Device(PathBuf),
    /// A software TPM's command port (`host:port`).
    Tcp(String),
}

impl TpmPath {
    /// `tcp:HOST:PORT` or a device path.
    pub fn parse(s: &str) -> TpmPath {
        match s.strip_prefix("tcp:") {
            Some(addr) => TpmPath::Tcp(addr.to_string()),
            None => TpmPath::Device(PathBuf::from(s)),
        }
    }

    /// This machine's TPM: the kernel's resource manager, else the raw
    /// device; `None` without either.
    pub fn discover(dev: &Path) -> Option<TpmPath> {
        ["tpmrm0", "tpm0"].iter().map(|n| dev.join(n)).find(|p| p.exists()).map(TpmPath::Device)
    }

    /// The kernel's PPI request file for a device TPM.
    pub fn ppi_request(&self) -> Option<PathBuf> {
        match self {
            TpmPath::Device(_) => Some(PathBuf::from("/sys/class/tpm/tpm0/ppi/request")),
            TpmPath::Tcp(_) => None,
        }
    }
}

impl fmt::Display for TpmPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TpmPath::Device(p) => write!(f, "{}", p.display()),
            TpmPath::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// A TPM's answer that is not success, or no answer.
#[derive(Debug)]
pub enum TpmError {
    Io(String),
    /// The response code (`TPM_RC`).
    Rc(u32),
    /// A TPM 1.2 answered (its response tag): none of this applies.
    Version12,
    Malformed(&'static str),
}

impl fmt::Display for TpmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TpmError::Io(e) => write!(f, "{e}"),
            TpmError::Rc(rc) => write!(f, "{} (0x{rc:03x})", rc_name(*rc)),
            TpmError::Version12 => write!(
                f,
                "a TPM 1.2, which the agent does not clear (its clear needs the owner's \
                 password or the firmware): clear it and turn it off in the firmware, \
                 or replace it with a TPM 2.0"
            ),
            TpmError::Malformed(what) => write!(f, "malformed TPM response: {what}"),
        }
    }
}

/// The name of a response code (Part 2, 6.6), its handle, session or
/// parameter number left out.
fn rc_name(rc: u32) -> &'static str {
    let base = if rc & 0x80 != 0 { 0x80 | (rc & 0x3f) } else { rc & 0xfff };
    match base {
        0x08e => "TPM_RC_AUTH_FAIL",
        0x0a2 => "TPM_RC_BAD_AUTH",
        0x085 => "TPM_RC_HIERARCHY",
        0x084 => "TPM_RC_VALUE",
        0x08b => "TPM_RC_HANDLE",
        0x100 => "TPM_RC_INITIALIZE",
        0x101 => "TPM_RC_FAILURE",
        0x120 => "TPM_RC_DISABLED",
        0x12f => "TPM_RC_AUTH_UNAVAILABLE",
        0x921 => "TPM_RC_LOCKOUT",
        0x922 => "TPM_RC_RETRY",
        0x908 => "TPM_RC_YIELDED",
        0x90a => "TPM_RC_TESTING",
        _ => "TPM error",
    }
}

const ST_NO_SESSIONS: u16 = 0x8001;
const ST_SESSIONS: u16 = 0x8002;
const CC_CLEAR: u32 = 0x126;
const CC_CLEAR_CONTROL: u32 = 0x127;
const CC_NV_READ_PUBLIC: u32 = 0x169;
const CC_NV_READ: u32 = 0x14e;
/// Octets asked per `TPM2_NV_Read` (every TPM's NV buffer holds at least
/// this many).
const NV_READ_PART: usize = 512;
const RH_OWNER: u32 = 0x4000_0001;
const NV_OWNERREAD: u32 = 1 << 17;
const NV_AUTHREAD: u32 = 1 << 18;
const CC_GET_CAPABILITY: u32 = 0x17a;
const CAP_HANDLES: u32 = 0x1;
const CAP_TPM_PROPERTIES: u32 = 0x6;
const PT_PERMANENT: u32 = 0x200;
const PT_STARTUP_CLEAR: u32 = 0x201;
const RS_PW: u32 = 0x4000_0009;
const RH_LOCKOUT: u32 = 0x4000_000a;
const RH_PLATFORM: u32 = 0x4000_000c;
const NV_FIRST: u32 = 0x0100_0000;
const NV_LAST: u32 = 0x01ff_ffff;
const PERSISTENT_FIRST: u32 = 0x8100_0000;
/// The owner's and endorsement's persistent handles end here; the
/// platform's follow (Part 2, 7.5: 81 80 00 00 - 81 FF FF FF).
const PERSISTENT_OWNER_LAST: u32 = 0x817f_ffff;
const PERSISTENT_LAST: u32 = 0x81ff_ffff;
/// `TPMA_NV_PLATFORMCREATE`: an index the platform defined (an EK
/// certificate, say), which `TPM2_Clear` keeps.
const NV_PLATFORMCREATE: u32 = 1 << 30;

/// An authorization of a command's handle.
pub(crate) enum Session {
    /// The empty password (`TPM_RS_PW`).
    Password,
    /// A policy session already satisfied for the command.
    Policy { handle: u32, nonce: Vec<u8> },
}

/// A connection to a TPM: one command, one response.
pub struct Tpm {
    io: Box<dyn Channel>,
}

trait Channel: Send {
    fn transmit(&mut self, cmd: &[u8]) -> std::io::Result<Vec<u8>>;
}

struct DeviceChannel(std::fs::File);

impl Channel for DeviceChannel {
    fn transmit(&mut self, cmd: &[u8]) -> std::io::Result<Vec<u8>> {
        // The device takes a whole command per write and gives the whole
        // response to one read.
        self.0.write_all(cmd)?;
        let mut buf = vec![0u8; 4096];
        let n = self.0.read(&mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }
}

struct TcpChannel(std::net::TcpStream);

impl Channel for TcpChannel {
    fn transmit(&mut self, cmd: &[u8]) -> std::io::Result<Vec<u8>> {
        self.0.write_all(cmd)?;
        let mut head = [0u8; 10];
        self.0.read_exact(&mut head)?;
        let size = u32::from_be_bytes([head[2], head[3], head[4], head[5]]) as usize;
        let mut rest = vec![0u8; size.saturating_sub(10)];
        self.0.read_exact(&mut rest)?;
        let mut out = head.to_vec();
        out.extend(rest);
        Ok(out)
    }
}

/// What a tenant can leave in a TPM, as read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TpmState {
    pub owner_auth: bool,
    pub endorsement_auth: bool,
    pub lockout_auth: bool,
    /// `TPM2_ClearControl` set: only the platform can clear.
    pub disable_clear: bool,
    /// Locked out by dictionary-attack protection.
    pub in_lockout: bool,
    /// The platform hierarchy enabled (the firmware usually turns it off).
    pub platform_enabled: bool,
    /// Persistent objects of the owner's and endorsement's hierarchies.
    pub persistent: Vec<u32>,
    /// NV indices not created by the platform.
    pub nv_indices: Vec<u32>,
}

impl TpmState {
    /// What of a tenant's is there, in words; empty when nothing.
    pub fn findings(&self) -> Vec<String> {
        let mut f = Vec::new();
        for (set, what) in [
            (self.owner_auth, "owner authorization set"),
            (self.endorsement_auth, "endorsement authorization set"),
            (self.lockout_auth, "lockout authorization set"),
            (self.disable_clear, "clearing disabled"),
            (self.in_lockout, "locked out (dictionary attack)"),
        ] {
            if set {
                f.push(what.to_string());
            }
        }
        if !self.persistent.is_empty() {
            f.push(format!("persistent objects {}", handles(&self.persistent)));
        }
        if !self.nv_indices.is_empty() {
            f.push(format!("NV indices {}", handles(&self.nv_indices)));
        }
        f
    }

    /// [`Self::findings`] in one line, or that there are none.
    fn summary(&self) -> String {
        match self.findings() {
            f if f.is_empty() => "nothing of a tenant's".to_string(),
            f => f.join(", "),
        }
    }

    /// Whether nothing a clear removes is left.
    fn is_clear(&self) -> bool {
        !self.owner_auth
            && !self.endorsement_auth
            && !self.lockout_auth
            && self.persistent.is_empty()
            && self.nv_indices.is_empty()
    }
}

fn handles(h: &[u32]) -> String {
    h.iter().map(|h| format!("0x{h:08x}")).collect::<Vec<_>>().join(", ")
}

impl Tpm {
    pub fn open(path: &TpmPath) -> Result<Tpm, TpmError> {
        let io: Box<dyn Channel> = match path {
            TpmPath::Device(p) => Box::new(DeviceChannel(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(p)
                    .map_err(|e| TpmError::Io(format!("cannot open {}: {e}", p.display())))?,
            )),
            TpmPath::Tcp(a) => {
                let s = std::net::TcpStream::connect(a)
                    .map_err(|e| TpmError::Io(format!("cannot connect to {a}: {e}")))?;
                s.set_read_timeout(Some(Duration::from_secs(30))).ok();
                Box::new(TcpChannel(s))
            }
        };
        Ok(Tpm { io })
    }

    /// Sends a command (with `auth`, one empty-password session, which
    /// sets its tag); answers the response after its 10-byte header.
    fn command(
        &mut self,
        code: u32,
        handles: &[u32],
        auth: bool,
        params: &[u8],
    ) -> Result<Vec<u8>, TpmError> {
        let sessions: &[Session] = if auth { &[Session::Password] } else { &[] };
        self.command_with(code, handles, sessions, params)
    }

    /// Sends a command with `sessions` (one per handle that needs one, in
    /// the handles' order); answers the response after its 10-byte header.
    pub(crate) fn command_with(
        &mut self,
        code: u32,
        handles: &[u32],
        sessions: &[Session],
        params: &[u8],
    ) -> Result<Vec<u8>, TpmError> {
        let tag = if sessions.is_empty() { ST_NO_SESSIONS } else { ST_SESSIONS };
        let mut body = Vec::new();
        for h in handles {
            body.extend(h.to_be_bytes());
        }
        if !sessions.is_empty() {
            let mut a = Vec::new();
            for s in sessions {
                match s {
                    // An empty password: handle, empty nonce, no
                    // attributes, empty HMAC (the password).
                    Session::Password => {
                        a.extend(RS_PW.to_be_bytes());
                        a.extend(0u16.to_be_bytes());
                        a.push(0);
                        a.extend(0u16.to_be_bytes());
                    }
                    // A policy session whose policy needs no HMAC (no
                    // PolicyAuthValue or PolicyPassword in it): a nonce of
                    // the caller's, flushed after the command.
                    Session::Policy { handle, nonce } => {
                        a.extend(handle.to_be_bytes());
                        a.extend((nonce.len() as u16).to_be_bytes());
                        a.extend(nonce);
                        a.push(0);
                        a.extend(0u16.to_be_bytes());
                    }
                }
            }
            body.extend((a.len() as u32).to_be_bytes());
            body.extend(a);
        }
        body.extend(params);
        let mut cmd = Vec::with_capacity(10 + body.len());
        cmd.extend(tag.to_be_bytes());
        cmd.extend(((10 + body.len()) as u32).to_be_bytes());
        cmd.extend(code.to_be_bytes());
        cmd.extend(body);
        // Sent again while the TPM asks for it (TPM_RC_RETRY, _YIELDED,
        // _TESTING: Part 2, 6.6.3), a few times.
        let mut tries = 0;
        loop {
            let resp = self.io.transmit(&cmd).map_err(|e| TpmError::Io(format!("TPM: {e}")))?;
            if resp.len() < 10 {
                return Err(TpmError::Malformed("short header"));
            }
            // TPM_TAG_RSP_COMMAND: a TPM 1.2's answer to a command it does
            // not know.
            if resp[..2] == [0x00, 0xc4] {
                return Err(TpmError::Version12);
            }
            let rc = u32::from_be_bytes([resp[6], resp[7], resp[8], resp[9]]);
            match rc {
                0 => return Ok(resp[10..].to_vec()),
                0x922 | 0x908 | 0x90a if tries < 10 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                rc => return Err(TpmError::Rc(rc)),
            }
        }
    }

    /// `TPM2_GetCapability`: whether the TPM has more, and the list it
    /// gave (its count first).
    fn capability(
        &mut self,
        capability: u32,
        first: u32,
        count: u32,
    ) -> Result<(bool, Vec<u8>), TpmError> {
        let mut p = Vec::new();
        for v in [capability, first, count] {
            p.extend(v.to_be_bytes());
        }
        let r = self.command(CC_GET_CAPABILITY, &[], false, &p)?;
        // moreData, capability, then the list.
        let mut c = Cursor(&r);
        let more = c.u8()? != 0;
        c.u32()?;
        Ok((more, c.0.to_vec()))
    }

    /// The permanent and startup-clear flags (`TPM_PT_PERMANENT` and the
    /// property after it), in one read.
    fn flags(&mut self) -> Result<(u32, u32), TpmError> {
        let (_, list) = self.capability(CAP_TPM_PROPERTIES, PT_PERMANENT, 2)?;
        // count, then (property, value) pairs.
        let mut c = Cursor(&list);
        let (mut permanent, mut startup) = (None, None);
        for _ in 0..c.u32()? {
            match (c.u32()?, c.u32()?) {
                (PT_PERMANENT, v) => permanent = Some(v),
                (PT_STARTUP_CLEAR, v) => startup = Some(v),
                _ => {}
            }
        }
        permanent.zip(startup).ok_or(TpmError::Malformed("flags not in the answer"))
    }

    pub(crate) fn handles_in(&mut self, first: u32, last: u32) -> Result<Vec<u32>, TpmError> {
        let mut out = Vec::new();
        let mut next = first;
        loop {
            let (more, list) = self.capability(CAP_HANDLES, next, 64)?;
            let mut c = Cursor(&list);
            let n = c.u32()?;
            let mut beyond = n == 0;
            for _ in 0..n {
                let h = c.u32()?;
                if h > last {
                    beyond = true;
                    break;
                }
                out.push(h);
                next = h + 1;
            }
            if !more || beyond {
                return Ok(out);
            }
        }
    }

    fn nv_attributes(&mut self, index: u32) -> Result<u32, TpmError> {
        self.nv_public(index).map(|(attributes, _)| attributes)
    }

    /// An NV index's attributes and data size (`TPM2_NV_ReadPublic`).
    pub(crate) fn nv_public(&mut self, index: u32) -> Result<(u32, u16), TpmError> {
        let r = self.command(CC_NV_READ_PUBLIC, &[index], false, &[])?;
        // TPM2B_NV_PUBLIC: size, nvIndex, nameAlg, attributes, authPolicy,
        // dataSize.
        let mut c = Cursor(&r);
        c.u16()?;
        c.u32()?;
        c.u16()?;
        let attributes = c.u32()?;
        c.tpm2b()?;
        Ok((attributes, c.u16()?))
    }

    /// Whether `index` is defined, by the platform (its maker: an owner,
    /// a tenant with root, can define indices at any handle).
    pub(crate) fn platform_index(&mut self, index: u32) -> bool {
        self.nv_public(index).is_ok_and(|(attributes, _)| attributes & NV_PLATFORMCREATE != 0)
    }

    /// A platform NV index's data (`TPM2_NV_Read`, in parts), authorized by
    /// the index itself or the owner (empty authorizations), as its
    /// attributes allow; `None` where the index is not defined, not the
    /// platform's (a tenant's at a maker's handle), or the OS may not read
    /// it (platform reads only).
    pub(crate) fn nv_read(&mut self, index: u32) -> Result<Option<Vec<u8>>, TpmError> {
        let (attributes, size) = match self.nv_public(index) {
            Ok(p) => p,
            // TPM_RC_HANDLE on the first handle: no such index.
            Err(TpmError::Rc(rc)) if rc_name(rc) == "TPM_RC_HANDLE" => return Ok(None),
            Err(e) => return Err(e),
        };
        if attributes & NV_PLATFORMCREATE == 0 {
            return Ok(None);
        }
        let auth = if attributes & NV_AUTHREAD != 0 {
            index
        } else if attributes & NV_OWNERREAD != 0 {
            RH_OWNER
        } else {
            return Ok(None);
        };
        let mut data = Vec::with_capacity(size as usize);
        while data.len() < size as usize {
            let part = (size as usize - data.len()).min(NV_READ_PART) as u16;
            let mut p = part.to_be_bytes().to_vec();
            p.extend((data.len() as u16).to_be_bytes());
            let r = self.command(CC_NV_READ, &[auth, index], true, &p)?;
            let mut c = Cursor(&r);
            c.u32()?;
            let got = c.tpm2b()?;
            if got.is_empty() {
                return Err(TpmError::Malformed("an empty NV read"));
            }
            data.extend(got);
        }
        Ok(Some(data))
    }

    /// What a tenant could have left.
    pub fn read_state(&mut self) -> Result<TpmState, TpmError> {
        let (permanent, startup) = self.flags()?;
        let persistent = self
            .handles_in(PERSISTENT_FIRST, PERSISTENT_LAST)?
            .into_iter()
            .filter(|h| *h <= PERSISTENT_OWNER_LAST)
            .collect();
        let mut nv_indices = Vec::new();
        for h in self.handles_in(NV_FIRST, NV_LAST)? {
            if self.nv_attributes(h)? & NV_PLATFORMCREATE == 0 {
                nv_indices.push(h);
            }
        }
        Ok(TpmState {
            owner_auth: permanent & 1 != 0,
            endorsement_auth: permanent & (1 << 1) != 0,
            lockout_auth: permanent & (1 << 2) != 0,
            disable_clear: permanent & (1 << 8) != 0,
            in_lockout: permanent & (1 << 9) != 0,
            platform_enabled: startup & 1 != 0,
            persistent,
            nv_indices,
        })
    }

    /// `TPM2_Clear`, authorized by `hierarchy` with an empty password.
    fn clear_as(&mut self, hierarchy: u32) -> Result<(), TpmError> {
        self.command(CC_CLEAR, &[hierarchy], true, &[]).map(drop)
    }

    /// `TPM2_ClearControl(NO)` by the platform: clearing allowed again.
    fn allow_clear(&mut self) -> Result<(), TpmError> {
        self.command(CC_CLEAR_CONTROL, &[RH_PLATFORM], true, &[0]).map(drop)
    }
}

pub(crate) struct Cursor<'a>(pub(crate) &'a [u8]);

impl Cursor<'_> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&[u8], TpmError> {
        if self.0.len() < n {
            return Err(TpmError::Malformed("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, TpmError> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, TpmError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, TpmError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A sized buffer (`TPM2B_*`): its contents.
    pub(crate) fn tpm2b(&mut self) -> Result<&[u8], TpmError> {
        let n = self.u16()? as usize;
        self.take(n)
    }
}

/// What a tenant left in the TPM at `path`, in words (`--inventory`):
/// read only, nothing changed.
pub fn describe(path: &TpmPath) -> String {
    match Tpm::open(path).and_then(|mut t| t.read_state()) {
        Ok(s) => format!("{path}: {}", s.summary()),
        Err(e) => format!("{path}: {e}"),
    }
}

/// Clears the TPM at `path` and reads it back: the step's one item.
/// `ppi` is the kernel's PPI request file, written (operation 5: clear)
/// when the agent itself cannot clear the TPM.
pub fn clear_tpm(path: &TpmPath, ppi: Option<&Path>) -> StepItem {
    let item = |method: &str, ok: bool, detail: String| StepItem {
        target: path.to_string(),
        method: method.into(),
        ok,
        detail,
    };
    let mut tpm = match Tpm::open(path) {
        Ok(t) => t,
        Err(e) => return item("tpm2-clear", false, e.to_string()),
    };
    let before = match tpm.read_state() {
        Ok(s) => s,
        Err(e) => return item("tpm2-clear", false, format!("reading the TPM: {e}")),
    };
    let found = before.summary();
    // The platform hierarchy where the firmware left it enabled with an
    // empty authorization; edk2-based firmware leaves it enabled with a
    // random one of its own, which refuses the clear: then (and where the
    // firmware turned it off) the lockout hierarchy's, unless a tenant set
    // its authorization (a wrong one would only lock the TPM out).
    let platform = before.platform_enabled.then(|| {
        let allowed = if before.disable_clear { tpm.allow_clear() } else { Ok(()) };
        allowed.and_then(|()| tpm.clear_as(RH_PLATFORM))
    });
    let lockout_usable = !before.lockout_auth && !before.disable_clear;
    let (method, cleared, refused) = match platform {
        Some(Ok(())) => ("tpm2-clear-platform", Ok(()), None),
        Some(Err(e)) if lockout_usable => ("tpm2-clear-lockout", tpm.clear_as(RH_LOCKOUT), Some(e)),
        Some(Err(e)) => ("tpm2-clear-platform", Err(e), None),
        None => ("tpm2-clear-lockout", tpm.clear_as(RH_LOCKOUT), None),
    };
    let refused = match refused {
        Some(e) => format!(" (the platform hierarchy refused it: {e})"),
        None => String::new(),
    };
    if let Err(e) = cleared {
        let why = if !before.platform_enabled && before.disable_clear {
            "clearing was disabled and the firmware turned the platform hierarchy off"
        } else if !before.platform_enabled && before.lockout_auth {
            "a lockout authorization is set and the firmware turned the platform hierarchy off"
        } else if before.platform_enabled && before.disable_clear {
            "the platform refused it, and clearing was disabled (only the platform may allow it)"
        } else if before.platform_enabled && before.lockout_auth {
            "the platform refused it, and a lockout authorization is set"
        } else if before.platform_enabled {
            "the platform refused it, and then the lockout hierarchy"
        } else if before.in_lockout {
            "the TPM is locked out"
        } else {
            "the TPM refused the lockout hierarchy's clear"
        };
        let (method, ppi_note) = match ppi {
            Some(p) => match std::fs::write(p, "5") {
                Ok(()) => (
                    TPM_PPI_REQUESTED,
                    format!(
                        "; asked the firmware to clear it at the next boot ({} = 5)",
                        p.display()
                    ),
                ),
                Err(e) => {
                    (method, format!("; the firmware could not be asked to ({}: {e})", p.display()))
                }
            },
            None => (method, String::new()),
        };
        return item(
            method,
            false,
            format!("found {found}; TPM2_Clear failed: {e}: {why}{refused}{ppi_note}"),
        );
    }
    match tpm.read_state() {
        Ok(after) if after.is_clear() => {
            item(method, true, format!("found {found}; cleared{refused}, nothing of it left"))
        }
        Ok(after) => item(
            method,
            false,
            format!(
                "found {found}; cleared, yet the TPM still has {}",
                after.findings().join(", ")
            ),
        ),
        Err(e) => item(method, false, format!("found {found}; cleared, then reading it: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_codes_are_named_without_their_handle_or_session() {
        assert_eq!(rc_name(0x98e), "TPM_RC_AUTH_FAIL");
        assert_eq!(rc_name(0x9a2), "TPM_RC_BAD_AUTH");
        assert_eq!(rc_name(0x185), "TPM_RC_HIERARCHY");
        assert_eq!(rc_name(0x120), "TPM_RC_DISABLED");
        assert_eq!(rc_name(0x921), "TPM_RC_LOCKOUT");
        assert_eq!(TpmError::Rc(0x9a2).to_string(), "TPM_RC_BAD_AUTH (0x9a2)");
    }

    /// Answers every command with the same bytes.
    struct Canned(Vec<u8>);

    impl Channel for Canned {
        fn transmit(&mut self, _: &[u8]) -> std::io::Result<Vec<u8>> {
            Ok(self.0.clone())
        }
    }

    #[test]
    fn a_tpm_1_2_is_named_and_a_short_answer_is_malformed() {
        // TPM_TAG_RSP_COMMAND, size 10, TPM_BADTAG: a TPM 1.2 refusing a
        // 2.0 command.
        let mut t = Tpm { io: Box::new(Canned(vec![0, 0xc4, 0, 0, 0, 10, 0, 0, 0, 0x1e])) };
        let e = t.read_state().unwrap_err();
        assert!(matches!(e, TpmError::Version12), "{e}");
        assert!(e.to_string().starts_with("a TPM 1.2, which the agent does not clear"), "{e}");
        let mut t = Tpm { io: Box::new(Canned(vec![0x80, 0x01, 0, 0])) };
        assert!(matches!(t.read_state(), Err(TpmError::Malformed(_))));
        // A 2.0 error names its code.
        let mut t = Tpm { io: Box::new(Canned(vec![0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x01])) };
        assert_eq!(t.read_state().unwrap_err().to_string(), "TPM_RC_FAILURE (0x101)");
    }

    #[test]
    fn paths_parse_and_print() {
        assert_eq!(TpmPath::parse("tcp:127.0.0.1:2321"), TpmPath::Tcp("127.0.0.1:2321".into()));
        assert_eq!(TpmPath::parse("/dev/tpmrm0").to_string(), "/dev/tpmrm0");
        assert_eq!(TpmPath::Tcp("h:1".into()).ppi_request(), None);
    }

    #[test]
    fn findings_name_what_is_left() {
        let s = TpmState {
            owner_auth: true,
            persistent: vec![0x8100_0001],
            nv_indices: vec![0x0150_0016],
            ..TpmState::default()
        };
        assert_eq!(
            s.findings(),
            ["owner authorization set", "persistent objects 0x81000001", "NV indices 0x01500016"]
        );
        assert!(!s.is_clear());
        assert!(TpmState { platform_enabled: true, ..TpmState::default() }.is_clear());
    }
}
