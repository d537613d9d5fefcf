//! GPU memory overwritten between tenants, through the CUDA driver API
//! (`libcuda.so.1`, the driver's), loaded at run time like NVML.
//!
//! A GPU reset leaves the contents of the GPU's memory to the driver and
//! the GPU: what a tenant left in HBM can still be there for the next
//! tenant's kernel module, which reads the memory the way its driver
//! chooses. The sanitizer allocates all the memory the driver gives it on
//! each GPU, writes a pattern to every byte and reads samples of it back
//! (a driver that zeroes memory it gives out would make zeros alone prove
//! nothing), then zero and samples again, and frees it. The memory the
//! driver keeps for itself (a few hundred MiB: its own structures,
//! reinitialized when it loads) is not reached.
//!
//! The sanitizer runs it in a child process of its own
//! (`neocloud-agent --overwrite-gpu-memory`, see
//! [`crate::host::Host::overwrite_gpu_memory`]): the driver keeps the GPUs'
//! device files open once initialized, which would hold a later GPU reset
//! off, and a process can be given a deadline.
//!
//! Every `unsafe` block is one FFI call (or symbol lookup) whose contract is
//! noted next to it.

use std::ffi::{c_int, c_uint, c_void};

use libloading::Library;

use crate::nvml::sym;

/// `CUresult`: 0 is success.
type CuResult = c_uint;
/// `CUdevice`.
type Device = c_int;
/// `CUcontext`: an opaque pointer owned by the driver.
type Context = *mut c_void;
/// `CUdeviceptr`: a device address (64-bit).
type DevicePtr = u64;

const CUDA_SUCCESS: CuResult = 0;
/// `CUDA_ERROR_OUT_OF_MEMORY`.
const CUDA_ERROR_OUT_OF_MEMORY: CuResult = 2;
/// `CUDA_ERROR_SYSTEM_NOT_READY`: on NVSwitch systems, until the fabric
/// manager has the GPU in the fabric again (after a reset).
const CUDA_ERROR_SYSTEM_NOT_READY: CuResult = 802;
/// How long a GPU not ready (its fabric) is waited for, and between tries.
const NOT_READY_WAIT: std::time::Duration = std::time::Duration::from_secs(180);
const NOT_READY_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// Written to every byte first (a driver that hands out zeroed memory
/// cannot pass for one whose writes landed), then zero.
const PATTERN: u8 = 0xa5;
/// What may be left of the free memory the driver said it had (the last
/// blocks under [`SMALLEST`], and what the driver takes for the context's
/// own use while it runs): this, or 1/64 of the GPU's memory where that is
/// less.
const SLACK: u64 = 256 << 20;

/// Allocations start at this size and halve on running out, down to
/// [`SMALLEST`].
const LARGEST: usize = 1 << 30;
const SMALLEST: usize = 2 << 20;
/// Bytes read back at the start, middle and end of every allocation.
const SAMPLE: usize = 4096;

type InitFn = unsafe extern "C" fn(c_uint) -> CuResult;
type CountFn = unsafe extern "C" fn(*mut c_int) -> CuResult;
type DeviceGetFn = unsafe extern "C" fn(*mut Device, c_int) -> CuResult;
type UuidFn = unsafe extern "C" fn(*mut [u8; 16], Device) -> CuResult;
type RetainFn = unsafe extern "C" fn(*mut Context, Device) -> CuResult;
type ReleaseFn = unsafe extern "C" fn(Device) -> CuResult;
type SetCurrentFn = unsafe extern "C" fn(Context) -> CuResult;
type MemInfoFn = unsafe extern "C" fn(*mut usize, *mut usize) -> CuResult;
type AllocFn = unsafe extern "C" fn(*mut DevicePtr, usize) -> CuResult;
type FreeFn = unsafe extern "C" fn(DevicePtr) -> CuResult;
type MemsetFn = unsafe extern "C" fn(DevicePtr, u8, usize) -> CuResult;
type CopyFn = unsafe extern "C" fn(*mut c_void, DevicePtr, usize) -> CuResult;
type SyncFn = unsafe extern "C" fn() -> CuResult;

/// The library's soname, as installed by the NVIDIA driver.
pub const LIBRARY: &str = "libcuda.so.1";

/// The CUDA driver API, loaded and initialized.
pub struct Cuda {
    count: CountFn,
    device_get: DeviceGetFn,
    uuid: UuidFn,
    retain: RetainFn,
    release: ReleaseFn,
    set_current: SetCurrentFn,
    mem_info: MemInfoFn,
    alloc: AllocFn,
    free: FreeFn,
    memset: MemsetFn,
    copy: CopyFn,
    sync: SyncFn,
    // Keeps the library mapped while the function pointers above are used.
    _lib: Library,
}

/// What overwriting one GPU's memory did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overwritten {
    /// Bytes set to zero (and freed again).
    pub bytes: u64,
    /// What the driver said was free, and in all, before.
    pub free: u64,
    pub total: u64,
}

impl Overwritten {
    /// Whether it reached the memory the driver said was free, but for
    /// [`SLACK`], and the driver said nearly all of it was (at least 95 %:
    /// a client holding memory on a GPU being sanitized keeps it from
    /// being overwritten).
    pub fn covers_the_free_memory(&self) -> bool {
        let slack = SLACK.min(self.total / 64);
        self.bytes + slack >= self.free && self.free + self.total / 20 >= self.total
    }
}

impl Cuda {
    /// Loads and initializes the driver API from `path` (a soname or a
    /// path).
    pub fn load_from(path: &str) -> Result<Cuda, String> {
        // SAFETY: loading a shared library runs its initializers; the
        // driver's have no preconditions on us.
        let lib = unsafe { Library::new(path) }.map_err(|e| format!("cannot load {path}: {e}"))?;
        // SAFETY (each `sym` call): the type given is the C prototype from
        // cuda.h for that symbol name (the `_v2` names are the 64-bit ABI
        // the header maps the plain names to); the pointer is copied out and
        // only used while `_lib` keeps the library loaded.
        let cuda = unsafe {
            let init: InitFn = sym(&lib, b"cuInit\0")?;
            let c = Cuda {
                count: sym(&lib, b"cuDeviceGetCount\0")?,
                device_get: sym(&lib, b"cuDeviceGet\0")?,
                // cuda.h maps the name to `_v2` since CUDA 11.4 (the same
                // bytes for a whole GPU).
                uuid: sym(&lib, b"cuDeviceGetUuid_v2\0")
                    .or_else(|_| sym(&lib, b"cuDeviceGetUuid\0"))?,
                retain: sym(&lib, b"cuDevicePrimaryCtxRetain\0")?,
                release: sym(&lib, b"cuDevicePrimaryCtxRelease_v2\0")
                    .or_else(|_| sym(&lib, b"cuDevicePrimaryCtxRelease\0"))?,
                set_current: sym(&lib, b"cuCtxSetCurrent\0")?,
                mem_info: sym(&lib, b"cuMemGetInfo_v2\0")?,
                alloc: sym(&lib, b"cuMemAlloc_v2\0")?,
                free: sym(&lib, b"cuMemFree_v2\0")?,
                memset: sym(&lib, b"cuMemsetD8_v2\0")?,
                copy: sym(&lib, b"cuMemcpyDtoH_v2\0")?,
                sync: sym(&lib, b"cuCtxSynchronize\0")?,
                _lib: lib,
            };
            // cuInit(0): flags must be 0.
            not_ready_waited(|| init(0), "cuInit")?;
            c
        };
        Ok(cuda)
    }

    /// The device whose UUID NVML prints as `uuid` (`GPU-xxxxxxxx-...`).
    fn device(&self, uuid: &str) -> Result<Device, String> {
        let mut n: c_int = 0;
        // SAFETY: cuDeviceGetCount writes one int through the pointer.
        check(unsafe { (self.count)(&mut n) }, "cuDeviceGetCount")?;
        for ordinal in 0..n {
            let mut dev: Device = 0;
            let mut raw = [0u8; 16];
            // SAFETY: cuDeviceGet writes one CUdevice; cuDeviceGetUuid
            // writes the 16 bytes of a CUuuid.
            check(unsafe { (self.device_get)(&mut dev, ordinal) }, "cuDeviceGet")?;
            check(unsafe { (self.uuid)(&mut raw, dev) }, "cuDeviceGetUuid")?;
            if nvml_uuid(&raw).eq_ignore_ascii_case(uuid) {
                return Ok(dev);
            }
        }
        Err(format!(
            "no CUDA device has the UUID {uuid} (MIG still on? a GPU in MIG mode has no device \
             of its own)"
        ))
    }

    /// Sets every byte of the memory the driver gives out on the GPU
    /// `uuid` to zero, reads samples of it back, and frees it.
    pub fn overwrite(&self, uuid: &str) -> Result<Overwritten, String> {
        let dev = self.device(uuid)?;
        let mut ctx: Context = std::ptr::null_mut();
        // SAFETY: cuDevicePrimaryCtxRetain writes one CUcontext; it is made
        // current on this thread and released below, on every path.
        not_ready_waited(|| unsafe { (self.retain)(&mut ctx, dev) }, "cuDevicePrimaryCtxRetain")?;
        let res = check(unsafe { (self.set_current)(ctx) }, "cuCtxSetCurrent")
            .and_then(|()| self.overwrite_current());
        // SAFETY: the context retained above, released once.
        unsafe {
            (self.set_current)(std::ptr::null_mut());
            (self.release)(dev);
        }
        res
    }

    /// [`Self::overwrite`] in the current context.
    fn overwrite_current(&self) -> Result<Overwritten, String> {
        let (mut free, mut total) = (0usize, 0usize);
        // SAFETY: cuMemGetInfo writes two size_t.
        check(unsafe { (self.mem_info)(&mut free, &mut total) }, "cuMemGetInfo")?;
        let mut blocks: Vec<(DevicePtr, usize)> = Vec::new();
        let res = self.allocate(&mut blocks).and_then(|()| {
            self.write(&blocks, PATTERN)?;
            self.write(&blocks, 0)
        });
        for (ptr, _) in &blocks {
            // SAFETY: each pointer came from cuMemAlloc and is freed once.
            unsafe { (self.free)(*ptr) };
        }
        res?;
        Ok(Overwritten {
            bytes: blocks.iter().map(|(_, n)| *n as u64).sum(),
            free: free as u64,
            total: total as u64,
        })
    }

    /// Allocates everything the driver gives (largest blocks first): the
    /// blocks, in `blocks`, whatever happens.
    fn allocate(&self, blocks: &mut Vec<(DevicePtr, usize)>) -> Result<(), String> {
        let mut size = LARGEST;
        while size >= SMALLEST {
            let mut ptr: DevicePtr = 0;
            // SAFETY: cuMemAlloc writes one CUdeviceptr.
            match unsafe { (self.alloc)(&mut ptr, size) } {
                CUDA_SUCCESS => blocks.push((ptr, size)),
                CUDA_ERROR_OUT_OF_MEMORY => size /= 2,
                rc => return check(rc, "cuMemAlloc"),
            }
        }
        Ok(())
    }

    /// Sets every byte of `blocks` to `value`, then reads the start, middle
    /// and end of each back: `value`, or where it is not.
    fn write(&self, blocks: &[(DevicePtr, usize)], value: u8) -> Result<(), String> {
        for (ptr, size) in blocks {
            // SAFETY: a block allocated above, `size` bytes.
            check(unsafe { (self.memset)(*ptr, value, *size) }, "cuMemsetD8")?;
        }
        // SAFETY: no arguments; waits for the memsets, and reports their
        // errors.
        check(unsafe { (self.sync)() }, "cuCtxSynchronize")?;
        let mut buf = vec![0u8; SAMPLE];
        for (ptr, size) in blocks {
            let n = SAMPLE.min(*size);
            for offset in [0, (size / 2).saturating_sub(n / 2), size - n] {
                buf[..n].fill(!value);
                let at = ptr + offset as u64;
                // SAFETY: `n` bytes at `at` lie within the block; the host
                // buffer holds at least `n`.
                let rc = unsafe { (self.copy)(buf.as_mut_ptr().cast(), at, n) };
                check(rc, "cuMemcpyDtoH")?;
                if let Some(i) = buf[..n].iter().position(|b| *b != value) {
                    return Err(format!(
                        "memory at device address 0x{:x} reads 0x{:02x} after 0x{value:02x} was \
                         written to it",
                        at + i as u64,
                        buf[i]
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Calls `f` again while the GPU is not ready (its NVSwitch fabric, after
/// a reset), for up to [`NOT_READY_WAIT`].
fn not_ready_waited(mut f: impl FnMut() -> CuResult, call: &str) -> Result<(), String> {
    let deadline = std::time::Instant::now() + NOT_READY_WAIT;
    loop {
        match f() {
            CUDA_ERROR_SYSTEM_NOT_READY if std::time::Instant::now() < deadline => {
                std::thread::sleep(NOT_READY_PAUSE)
            }
            CUDA_ERROR_SYSTEM_NOT_READY => {
                return Err(format!(
                    "{call}: the system is not ready (CUresult 802) after {} s: on NVSwitch \
                     systems the sanitizer image runs nvidia-fabricmanager",
                    NOT_READY_WAIT.as_secs()
                ))
            }
            rc => return check(rc, call),
        }
    }
}

/// A CUDA device UUID as NVML prints it: `GPU-` and 8-4-4-4-12 hex digits.
fn nvml_uuid(raw: &[u8; 16]) -> String {
    let h: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    format!("GPU-{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn check(rc: CuResult, call: &str) -> Result<(), String> {
    match rc {
        CUDA_SUCCESS => Ok(()),
        rc => Err(format!("{call} failed (CUresult {rc})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_read_as_nvml_prints_them() {
        let mut raw = [0u8; 16];
        raw[0] = 0xfa;
        raw[1] = 0x4e;
        raw[15] = 0x01;
        assert_eq!(nvml_uuid(&raw), "GPU-fa4e0000-0000-0000-0000-000000000001");
        let gib = 1u64 << 30;
        let o = Overwritten { bytes: 79 * gib, free: 79 * gib + SLACK, total: 80 * gib };
        assert!(o.covers_the_free_memory());
        assert!(!Overwritten { bytes: 78 * gib, ..o }.covers_the_free_memory(), "short");
        let held = Overwritten { bytes: 70 * gib, free: 70 * gib, total: 80 * gib };
        assert!(!held.covers_the_free_memory(), "another client holds 10 GiB");
    }

    #[test]
    fn no_driver_is_an_error_that_names_the_library() {
        let e = Cuda::load_from("libcuda-not-here.so.1").err().unwrap();
        assert!(e.contains("cannot load libcuda-not-here.so.1"), "{e}");
    }
}
