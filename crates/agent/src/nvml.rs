//! NVML (the NVIDIA Management Library), loaded at run time.
//!
//! The agent must build and run on machines without a GPU or the NVIDIA
//! driver, so `libnvidia-ml.so.1` is opened with `libloading` when the
//! agent starts rather than linked. When it cannot be loaded or
//! initialized, [`Nvml::load`] answers `None` and the agent reports no
//! GPUs and an empty driver version.
//!
//! Only the handful of calls the agent needs are bound. Every `unsafe`
//! block is a single FFI call (or symbol lookup) whose contract is noted
//! next to it; strings come back through fixed buffers that are checked
//! for a NUL terminator before being read.

use std::ffi::{c_char, c_uint, c_void, CStr};
use std::sync::atomic::{AtomicBool, Ordering};

use libloading::Library;
use neocloud_types::{AgentGpu, GpuStatus};

/// `nvmlReturn_t`: a C enum, 0 is success.
type NvmlReturn = c_uint;
/// `nvmlDevice_t`: an opaque pointer owned by the library.
type Device = *mut c_void;

const NVML_SUCCESS: NvmlReturn = 0;
/// `NVML_ERROR_GPU_IS_LOST`: the GPU fell off the bus or is otherwise
/// inaccessible.
const NVML_ERROR_GPU_IS_LOST: NvmlReturn = 15;
/// `NVML_ERROR_TIMEOUT`: no event came within the wait.
const NVML_ERROR_TIMEOUT: NvmlReturn = 10;
/// `nvmlEventTypeXidCriticalError`.
const NVML_EVENT_TYPE_XID_CRITICAL_ERROR: u64 = 0x8;
/// `NVML_TEMPERATURE_GPU` (`nvmlTemperatureSensors_t`): the GPU die.
const NVML_TEMPERATURE_GPU: c_uint = 0;
/// `NVML_MEMORY_ERROR_TYPE_UNCORRECTED` (`nvmlMemoryErrorType_t`).
const NVML_MEMORY_ERROR_TYPE_UNCORRECTED: c_uint = 1;
/// `NVML_VOLATILE_ECC` (`nvmlEccCounterType_t`): since the driver loaded.
const NVML_VOLATILE_ECC: c_uint = 0;
/// `NVML_NVLINK_MAX_LINKS` (Hopper and Blackwell: 18).
const NVML_NVLINK_MAX_LINKS: c_uint = 18;
/// `NVML_NVLINK_ERROR_DL_REPLAY`, `_DL_RECOVERY`, `_DL_CRC_FLIT`,
/// `_DL_CRC_DATA`.
const NVLINK_COUNTERS: [c_uint; 4] = [0, 1, 2, 3];
/// Big enough for every string NVML returns (its largest documented
/// buffer size is 96 bytes).
const STRING_BUFFER: usize = 256;

/// `nvmlMemory_t`.
#[repr(C)]
#[derive(Default)]
struct Memory {
    total: u64,
    free: u64,
    used: u64,
}

/// `nvmlUtilization_t`: percentages of the last sample period.
#[repr(C)]
#[derive(Default)]
struct Utilization {
    gpu: c_uint,
    memory: c_uint,
}

/// `nvmlPciInfo_t` (the layout `nvmlDeviceGetPciInfo_v3` fills).
#[repr(C)]
struct PciInfo {
    bus_id_legacy: [c_char; 16],
    domain: c_uint,
    bus: c_uint,
    device: c_uint,
    pci_device_id: c_uint,
    pci_sub_system_id: c_uint,
    bus_id: [c_char; 32],
}

type InitFn = unsafe extern "C" fn() -> NvmlReturn;
type StrFn = unsafe extern "C" fn(*mut c_char, c_uint) -> NvmlReturn;
type CountFn = unsafe extern "C" fn(*mut c_uint) -> NvmlReturn;
type HandleFn = unsafe extern "C" fn(c_uint, *mut Device) -> NvmlReturn;
type DevStrFn = unsafe extern "C" fn(Device, *mut c_char, c_uint) -> NvmlReturn;
type MemoryFn = unsafe extern "C" fn(Device, *mut Memory) -> NvmlReturn;
type PciFn = unsafe extern "C" fn(Device, *mut PciInfo) -> NvmlReturn;
type TemperatureFn = unsafe extern "C" fn(Device, c_uint, *mut c_uint) -> NvmlReturn;
type PowerFn = unsafe extern "C" fn(Device, *mut c_uint) -> NvmlReturn;
type UtilizationFn = unsafe extern "C" fn(Device, *mut Utilization) -> NvmlReturn;
type EccFn = unsafe extern "C" fn(Device, c_uint, c_uint, *mut u64) -> NvmlReturn;
type ClockEventsFn = unsafe extern "C" fn(Device, *mut u64) -> NvmlReturn;
/// `nvmlDeviceGetNvLinkState`: link number, `nvmlEnableState_t` out.
type NvLinkStateFn = unsafe extern "C" fn(Device, c_uint, *mut c_uint) -> NvmlReturn;
/// `nvmlDeviceGetNvLinkErrorCounter`: link, `nvmlNvLinkErrorCounter_t`
/// (an enum: C `int`-sized), count out.
type NvLinkErrorFn = unsafe extern "C" fn(Device, c_uint, c_uint, *mut u64) -> NvmlReturn;
/// `nvmlDeviceGetEccMode` / `nvmlDeviceGetMigMode`: current and pending
/// (`nvmlEnableState_t` and the MIG mode are both C `unsigned int`-sized).
type ModeGetFn = unsafe extern "C" fn(Device, *mut c_uint, *mut c_uint) -> NvmlReturn;
type EccSetFn = unsafe extern "C" fn(Device, c_uint) -> NvmlReturn;
type MigSetFn = unsafe extern "C" fn(Device, c_uint, *mut NvmlReturn) -> NvmlReturn;
type RemappedRowsFn =
    unsafe extern "C" fn(Device, *mut c_uint, *mut c_uint, *mut c_uint, *mut c_uint) -> NvmlReturn;

/// `nvmlEventSet_t`: an opaque pointer owned by the library.
type EventSet = *mut c_void;

/// `nvmlEventData_t`.
#[repr(C)]
struct EventData {
    device: Device,
    event_type: u64,
    event_data: u64,
    gpu_instance_id: c_uint,
    compute_instance_id: c_uint,
}

type EventSetCreateFn = unsafe extern "C" fn(*mut EventSet) -> NvmlReturn;
type RegisterEventsFn = unsafe extern "C" fn(Device, u64, EventSet) -> NvmlReturn;
type EventSetWaitFn = unsafe extern "C" fn(EventSet, *mut EventData, c_uint) -> NvmlReturn;
type EventSetFreeFn = unsafe extern "C" fn(EventSet) -> NvmlReturn;

/// The event calls, all or none.
#[derive(Clone, Copy)]
struct Events {
    create: EventSetCreateFn,
    register: RegisterEventsFn,
    wait: EventSetWaitFn,
    free: EventSetFreeFn,
}

/// A critical Xid the driver reported: the GPU (NVML index) and its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Xid {
    pub index: u32,
    pub code: u64,
}

/// An event set registered for the critical Xid errors of every GPU that
/// offers them; freed when dropped.
pub struct XidEvents<'a> {
    /// The handles and event calls are valid while NVML is.
    _nvml: std::marker::PhantomData<&'a Nvml>,
    events: Events,
    set: EventSet,
    handles: Vec<(u32, Device)>,
}

impl XidEvents<'_> {
    /// The GPUs registered.
    pub fn registered(&self) -> usize {
        self.handles.len()
    }

    /// The next critical Xid, waiting at most `timeout_ms`; `None` when
    /// none came.
    pub fn wait(&self, timeout_ms: u32) -> Result<Option<Xid>, String> {
        let mut d = EventData {
            device: std::ptr::null_mut(),
            event_type: 0,
            event_data: 0,
            gpu_instance_id: 0,
            compute_instance_id: 0,
        };
        // SAFETY: `set` is live until `drop`; writes one `nvmlEventData_t`.
        let rc = unsafe { (self.events.wait)(self.set, &mut d, timeout_ms) };
        match rc {
            NVML_SUCCESS => {}
            NVML_ERROR_TIMEOUT => return Ok(None),
            rc => return Err(format!("nvmlEventSetWait_v2 failed with code {rc}")),
        }
        if d.event_type & NVML_EVENT_TYPE_XID_CRITICAL_ERROR == 0 {
            return Ok(None);
        }
        // The event names its GPU by handle: map it back to the index.
        let index = self.handles.iter().find(|(_, h)| *h == d.device).map(|(i, _)| *i);
        Ok(index.map(|index| Xid { index, code: d.event_data }))
    }
}

impl Drop for XidEvents<'_> {
    fn drop(&mut self) {
        // SAFETY: `set` came from nvmlEventSetCreate and is freed once.
        unsafe {
            (self.events.free)(self.set);
        }
    }
}

/// The readings of a GPU's condition. Each is optional: older drivers lack
/// some symbols (row remapping came with Ampere's), and a missing one
/// leaves its reading out rather than NVML unusable.
struct Readings {
    temperature: Option<TemperatureFn>,
    power: Option<PowerFn>,
    utilization: Option<UtilizationFn>,
    ecc: Option<EccFn>,
    remapped_rows: Option<RemappedRowsFn>,
    clock_events: Option<ClockEventsFn>,
    nvlink_state: Option<NvLinkStateFn>,
    nvlink_errors: Option<NvLinkErrorFn>,
    ecc_mode: Option<(ModeGetFn, EccSetFn)>,
    mig_mode: Option<(ModeGetFn, MigSetFn)>,
}

/// A GPU mode as NVML reports it: in effect now, and after the next reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub current: bool,
    pub pending: bool,
}

/// An initialized NVML. `nvmlShutdown` is called when it is dropped.
pub struct Nvml {
    shutdown: InitFn,
    driver_version: StrFn,
    count: CountFn,
    handle: HandleFn,
    name: DevStrFn,
    uuid: DevStrFn,
    serial: DevStrFn,
    memory: MemoryFn,
    pci: PciFn,
    vbios: DevStrFn,
    readings: Readings,
    events: Option<Events>,
    // Keeps the library mapped while the function pointers above are used;
    // dropped after `Drop::drop` has called `nvmlShutdown`.
    _lib: Library,
}

/// The library's soname, as installed by the NVIDIA driver.
pub const LIBRARY: &str = "libnvidia-ml.so.1";

static REPORTED: AtomicBool = AtomicBool::new(false);

impl Nvml {
    /// Loads and initializes NVML from [`LIBRARY`]; `None` when there is
    /// no NVIDIA driver (logged once per process to stderr).
    pub fn load() -> Option<Nvml> {
        Nvml::load_from(LIBRARY)
    }

    /// Like [`Nvml::load`] from a given library path or name.
    pub fn load_from(path: &str) -> Option<Nvml> {
        match Nvml::try_load(path) {
            Ok(n) => Some(n),
            Err(e) => {
                if !REPORTED.swap(true, Ordering::Relaxed) {
                    eprintln!("neocloud-agent: NVML unavailable ({e}); reporting no GPUs");
                }
                None
            }
        }
    }

    fn try_load(path: &str) -> Result<Nvml, String> {
        // SAFETY: loading a shared library runs its initializers; NVML's are
        // the driver's own and have no preconditions on us.
        let lib = unsafe { Library::new(path) }.map_err(|e| format!("cannot load {path}: {e}"))?;
        // SAFETY (each `sym` call): the type given is the C prototype from
        // nvml.h for that symbol name; the pointer is copied out of the
        // `Symbol` and only used while `_lib` keeps the library loaded.
        unsafe {
            let init: InitFn = sym(&lib, b"nvmlInit_v2\0")?;
            let shutdown: InitFn = sym(&lib, b"nvmlShutdown\0")?;
            let driver_version: StrFn = sym(&lib, b"nvmlSystemGetDriverVersion\0")?;
            let count: CountFn = sym(&lib, b"nvmlDeviceGetCount_v2\0")?;
            let handle: HandleFn = sym(&lib, b"nvmlDeviceGetHandleByIndex_v2\0")?;
            let name: DevStrFn = sym(&lib, b"nvmlDeviceGetName\0")?;
            let uuid: DevStrFn = sym(&lib, b"nvmlDeviceGetUUID\0")?;
            let serial: DevStrFn = sym(&lib, b"nvmlDeviceGetSerial\0")?;
            let memory: MemoryFn = sym(&lib, b"nvmlDeviceGetMemoryInfo\0")?;
            let pci: PciFn = sym(&lib, b"nvmlDeviceGetPciInfo_v3\0")?;
            let vbios: DevStrFn = sym(&lib, b"nvmlDeviceGetVbiosVersion\0")?;
            let events = (|| {
                Some(Events {
                    create: sym(&lib, b"nvmlEventSetCreate\0").ok()?,
                    register: sym(&lib, b"nvmlDeviceRegisterEvents\0").ok()?,
                    wait: sym(&lib, b"nvmlEventSetWait_v2\0").ok()?,
                    free: sym(&lib, b"nvmlEventSetFree\0").ok()?,
                })
            })();
            let readings = Readings {
                temperature: sym(&lib, b"nvmlDeviceGetTemperature\0").ok(),
                power: sym(&lib, b"nvmlDeviceGetPowerUsage\0").ok(),
                utilization: sym(&lib, b"nvmlDeviceGetUtilizationRates\0").ok(),
                ecc: sym(&lib, b"nvmlDeviceGetTotalEccErrors\0").ok(),
                remapped_rows: sym(&lib, b"nvmlDeviceGetRemappedRows\0").ok(),
                // Renamed in CUDA 12.2's NVML; drivers before it have the old name.
                clock_events: sym(&lib, b"nvmlDeviceGetCurrentClocksEventReasons\0")
                    .or_else(|_| sym(&lib, b"nvmlDeviceGetCurrentClocksThrottleReasons\0"))
                    .ok(),
                nvlink_state: sym(&lib, b"nvmlDeviceGetNvLinkState\0").ok(),
                nvlink_errors: sym(&lib, b"nvmlDeviceGetNvLinkErrorCounter\0").ok(),
                ecc_mode: sym(&lib, b"nvmlDeviceGetEccMode\0")
                    .and_then(|g| Ok((g, sym(&lib, b"nvmlDeviceSetEccMode\0")?)))
                    .ok(),
                mig_mode: sym(&lib, b"nvmlDeviceGetMigMode\0")
                    .and_then(|g| Ok((g, sym(&lib, b"nvmlDeviceSetMigMode\0")?)))
                    .ok(),
            };
            // nvmlInit_v2 takes no arguments; it fails (non-zero) when the
            // kernel driver is not loaded. Only after it succeeds is an
            // `Nvml` built, so `Drop` (nvmlShutdown) pairs with a good init.
            let rc = init();
            if rc != NVML_SUCCESS {
                return Err(format!("nvmlInit_v2 failed with code {rc}"));
            }
            Ok(Nvml {
                shutdown,
                driver_version,
                count,
                handle,
                name,
                uuid,
                serial,
                memory,
                pci,
                vbios,
                readings,
                events,
                _lib: lib,
            })
        }
    }

    /// The driver version, e.g. `550.54.15`; empty if NVML cannot say.
    pub fn driver_version(&self) -> String {
        // SAFETY: fills at most `len` bytes of the buffer.
        read_string(|buf, len| unsafe { (self.driver_version)(buf, len) }).unwrap_or_default()
    }

    /// The number of GPUs NVML sees (0 if it cannot say).
    pub fn count(&self) -> u32 {
        let mut n: c_uint = 0;
        // SAFETY: writes one `unsigned int`.
        let rc = unsafe { (self.count)(&mut n) };
        if rc == NVML_SUCCESS {
            n
        } else {
            0
        }
    }

    fn device(&self, index: u32) -> Result<Device, String> {
        self.handle_of(index)
            .map_err(|rc| format!("nvmlDeviceGetHandleByIndex_v2({index}) failed with code {rc}"))
    }

    /// GPU `index`'s handle, or NVML's return code.
    fn handle_of(&self, index: u32) -> Result<Device, NvmlReturn> {
        let mut dev: Device = std::ptr::null_mut();
        // SAFETY: writes one handle; handles stay valid until nvmlShutdown,
        // which only runs when `self` is dropped.
        let rc = unsafe { (self.handle)(index, &mut dev) };
        if rc != NVML_SUCCESS || dev.is_null() {
            return Err(rc);
        }
        Ok(dev)
    }

    fn device_string(&self, f: DevStrFn, dev: Device) -> Result<String, NvmlReturn> {
        // SAFETY: `dev` is a live handle from `device`; fills at most `len`
        // bytes of the buffer.
        read_string(|buf, len| unsafe { f(dev, buf, len) })
    }

    /// One GPU by NVML index. Its serial number is empty where the board
    /// does not report one (NOT_SUPPORTED on many consumer boards).
    pub fn gpu(&self, index: u32) -> Result<AgentGpu, String> {
        let dev = self.device(index)?;
        let name = self
            .device_string(self.name, dev)
            .map_err(|rc| format!("nvmlDeviceGetName failed with code {rc}"))?;
        let uuid = self
            .device_string(self.uuid, dev)
            .map_err(|rc| format!("nvmlDeviceGetUUID failed with code {rc}"))?;
        let serial = self.device_string(self.serial, dev).unwrap_or_default();
        let mut mem = Memory::default();
        // SAFETY: `dev` is live; writes one `nvmlMemory_t`.
        let rc = unsafe { (self.memory)(dev, &mut mem) };
        let memory_mib = if rc == NVML_SUCCESS { mem.total / (1024 * 1024) } else { 0 };
        let mut pci = PciInfo {
            bus_id_legacy: [0; 16],
            domain: 0,
            bus: 0,
            device: 0,
            pci_device_id: 0,
            pci_sub_system_id: 0,
            bus_id: [0; 32],
        };
        // SAFETY: `dev` is live; writes one `nvmlPciInfo_t`.
        let rc = unsafe { (self.pci)(dev, &mut pci) };
        let pci_bus_id = if rc == NVML_SUCCESS {
            c_chars_to_string(&pci.bus_id).unwrap_or_else(|| {
                format!("{:08X}:{:02X}:{:02X}.0", pci.domain, pci.bus, pci.device)
            })
        } else {
            String::new()
        };
        Ok(AgentGpu { index, name, uuid, serial, memory_mib, pci_bus_id })
    }

    /// Every GPU; those NVML fails to describe are left out (and logged).
    pub fn gpus(&self) -> Vec<AgentGpu> {
        (0..self.count())
            .filter_map(|i| match self.gpu(i) {
                Ok(g) => Some(g),
                Err(e) => {
                    eprintln!("neocloud-agent: GPU {i}: {e}");
                    None
                }
            })
            .collect()
    }

    /// GPU `index`'s condition, its problems assessed
    /// ([`crate::health::assess`]). A GPU the driver lost, or one NVML
    /// cannot open, is a problem; a reading it does not offer is absent.
    pub fn status(&self, index: u32) -> GpuStatus {
        let mut s = GpuStatus { index, ..GpuStatus::default() };
        let lost_problem = || format!("GPU {index}: lost by the driver (fallen off the bus?)");
        let dev = match self.handle_of(index) {
            Ok(dev) => dev,
            Err(rc) => {
                s.problems.push(if rc == NVML_ERROR_GPU_IS_LOST {
                    lost_problem()
                } else {
                    format!("GPU {index}: NVML cannot open it (code {rc})")
                });
                return s;
            }
        };
        let mut lost = false;
        let mut took = |rc: NvmlReturn| {
            lost |= rc == NVML_ERROR_GPU_IS_LOST;
            rc == NVML_SUCCESS
        };
        match self.device_string(self.uuid, dev) {
            Ok(u) => s.uuid = u,
            Err(rc) => {
                took(rc);
            }
        }
        let r = &self.readings;
        if let Some(f) = r.temperature {
            let mut t: c_uint = 0;
            // SAFETY: `dev` is live; writes one `unsigned int`.
            s.temperature_c = took(unsafe { f(dev, NVML_TEMPERATURE_GPU, &mut t) }).then_some(t);
        }
        if let Some(f) = r.power {
            let mut mw: c_uint = 0;
            // SAFETY: `dev` is live; writes one `unsigned int` (milliwatts).
            s.power_mw = took(unsafe { f(dev, &mut mw) }).then_some(mw);
        }
        if let Some(f) = r.utilization {
            let mut u = Utilization::default();
            // SAFETY: `dev` is live; writes one `nvmlUtilization_t`.
            s.utilization_pct = took(unsafe { f(dev, &mut u) }).then_some(u.gpu);
        }
        let mut mem = Memory::default();
        // SAFETY: `dev` is live; writes one `nvmlMemory_t`.
        if took(unsafe { (self.memory)(dev, &mut mem) }) {
            s.memory_used_mib = Some(mem.used / (1024 * 1024));
        }
        if let Some(f) = r.ecc {
            let mut n: u64 = 0;
            // SAFETY: `dev` is live; writes one `unsigned long long`.
            let rc =
                unsafe { f(dev, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC, &mut n) };
            s.ecc_uncorrected = took(rc).then_some(n);
        }
        if let Some(f) = r.remapped_rows {
            let (mut corrected, mut uncorrected, mut pending, mut failed) = (0, 0, 0, 0);
            // SAFETY: `dev` is live; writes four `unsigned int`s.
            let rc = unsafe { f(dev, &mut corrected, &mut uncorrected, &mut pending, &mut failed) };
            if took(rc) {
                s.row_remap_pending = Some(pending != 0);
                s.row_remap_failed = Some(failed != 0);
            }
        }
        if let Some(f) = r.clock_events {
            let mut bits: u64 = 0;
            // SAFETY: `dev` is live; writes one `unsigned long long`.
            if took(unsafe { f(dev, &mut bits) }) {
                s.throttle_reasons =
                    crate::health::throttle_reasons(bits).into_iter().map(String::from).collect();
            }
        }
        if let Some(f) = r.nvlink_state {
            let mut any = false;
            let mut active = 0;
            let mut errors = neocloud_types::NvLinkErrors::default();
            let mut counted = false;
            for link in 0..NVML_NVLINK_MAX_LINKS {
                let mut on: c_uint = 0;
                // SAFETY: `dev` is live; writes one `nvmlEnableState_t`.
                let rc = unsafe { f(dev, link, &mut on) };
                if rc != NVML_SUCCESS {
                    // Past the board's links (or none): not an error.
                    took(rc);
                    continue;
                }
                any = true;
                if on != 0 {
                    active += 1;
                } else {
                    s.nvlink_down.push(link);
                }
                // The link's error counts, up or down.
                if let Some(count) = r.nvlink_errors {
                    let read = |counter: c_uint| {
                        let mut n: u64 = 0;
                        // SAFETY: `dev` is live; writes one `unsigned long long`.
                        let rc = unsafe { count(dev, link, counter, &mut n) };
                        (rc == NVML_SUCCESS).then_some(n)
                    };
                    let [replay, recovery, flit, data] = NVLINK_COUNTERS.map(read);
                    counted |= replay.is_some();
                    errors.replay += replay.unwrap_or(0);
                    errors.recovery += recovery.unwrap_or(0);
                    errors.crc += flit.unwrap_or(0) + data.unwrap_or(0);
                }
            }
            s.nvlink_active = any.then_some(active);
            s.nvlink_errors = counted.then_some(errors);
        }
        if lost {
            s.problems.push(lost_problem());
        }
        crate::health::assess(&mut s);
        s
    }

    fn mode(&self, index: u32, get: ModeGetFn) -> Result<Mode, String> {
        let dev = self.device(index)?;
        let (mut now, mut next): (c_uint, c_uint) = (0, 0);
        // SAFETY: `dev` is live; writes two `unsigned int`s.
        let rc = unsafe { get(dev, &mut now, &mut next) };
        if rc != NVML_SUCCESS {
            return Err(format!("GPU {index}: NVML code {rc}"));
        }
        Ok(Mode { current: now != 0, pending: next != 0 })
    }

    /// GPU `index`'s ECC mode; `None` when the driver cannot say (no
    /// symbol, or a board without ECC).
    pub fn ecc_mode(&self, index: u32) -> Option<Mode> {
        self.readings.ecc_mode.and_then(|(get, _)| self.mode(index, get).ok())
    }

    /// GPU `index`'s MIG mode; `None` when the driver or board has none.
    pub fn mig_mode(&self, index: u32) -> Option<Mode> {
        self.readings.mig_mode.and_then(|(get, _)| self.mode(index, get).ok())
    }

    /// Sets GPU `index`'s ECC mode from its next reset.
    pub fn set_ecc_mode(&self, index: u32, on: bool) -> Result<(), String> {
        let (_, set) = self.readings.ecc_mode.ok_or("the driver cannot set ECC")?;
        let dev = self.device(index)?;
        // SAFETY: `dev` is live; takes the mode by value.
        let rc = unsafe { set(dev, c_uint::from(on)) };
        (rc == NVML_SUCCESS).then_some(()).ok_or_else(|| format!("GPU {index}: NVML code {rc}"))
    }

    /// Sets GPU `index`'s MIG mode from its next reset.
    pub fn set_mig_mode(&self, index: u32, on: bool) -> Result<(), String> {
        let (_, set) = self.readings.mig_mode.ok_or("the driver cannot set MIG")?;
        let dev = self.device(index)?;
        let mut activation: NvmlReturn = NVML_SUCCESS;
        // SAFETY: `dev` is live; writes one `nvmlReturn_t`.
        let rc = unsafe { set(dev, c_uint::from(on), &mut activation) };
        (rc == NVML_SUCCESS).then_some(()).ok_or_else(|| format!("GPU {index}: NVML code {rc}"))
    }

    /// An event set for the critical Xid errors of every GPU that offers
    /// them (a GPU that does not is left out); an error when the driver
    /// has no events or no GPU offers them.
    pub fn xid_events(&self) -> Result<XidEvents<'_>, String> {
        let events = self.events.ok_or("this NVML has no event calls")?;
        let mut set: EventSet = std::ptr::null_mut();
        // SAFETY: writes one event set handle.
        let rc = unsafe { (events.create)(&mut set) };
        if rc != NVML_SUCCESS || set.is_null() {
            return Err(format!("nvmlEventSetCreate failed with code {rc}"));
        }
        let mut x = XidEvents { _nvml: std::marker::PhantomData, events, set, handles: Vec::new() };
        let mut refused = Vec::new();
        for i in 0..self.count() {
            let Ok(dev) = self.device(i) else { continue };
            // SAFETY: `dev` and `set` are live.
            let rc = unsafe { (events.register)(dev, NVML_EVENT_TYPE_XID_CRITICAL_ERROR, set) };
            if rc == NVML_SUCCESS {
                x.handles.push((i, dev));
            } else {
                refused.push(format!("GPU {i}: code {rc}"));
            }
        }
        if x.handles.is_empty() {
            return Err(format!("no GPU takes Xid events ({})", refused.join(", ")));
        }
        Ok(x)
    }

    /// Every GPU's condition ([`Nvml::status`]).
    pub fn statuses(&self) -> Vec<GpuStatus> {
        let mut all: Vec<GpuStatus> = (0..self.count()).map(|i| self.status(i)).collect();
        crate::health::compare_nvlinks(&mut all);
        all
    }

    /// The VBIOS version of GPU `index`.
    pub fn vbios_version(&self, index: u32) -> Result<String, String> {
        let dev = self.device(index)?;
        self.device_string(self.vbios, dev)
            .map_err(|rc| format!("nvmlDeviceGetVbiosVersion failed with code {rc}"))
    }
}

impl Drop for Nvml {
    fn drop(&mut self) {
        // SAFETY: NVML was initialized (see `try_load`); no handle outlives
        // `self`.
        unsafe {
            (self.shutdown)();
        }
    }
}

/// Looks a symbol up and copies the function pointer out.
///
/// # Safety
/// `T` must be the symbol's true C function type.
pub(crate) unsafe fn sym<T: Copy>(lib: &Library, name: &[u8]) -> Result<T, String> {
    // SAFETY: upheld by the caller (the type matches the symbol).
    unsafe { lib.get::<T>(name) }.map(|s| *s).map_err(|e| {
        let n = String::from_utf8_lossy(&name[..name.len().saturating_sub(1)]).into_owned();
        format!("symbol {n} missing: {e}")
    })
}

/// Calls an NVML string getter with a zeroed buffer and reads the result,
/// which must be NUL-terminated within the buffer.
fn read_string(f: impl FnOnce(*mut c_char, c_uint) -> NvmlReturn) -> Result<String, NvmlReturn> {
    let mut buf = [0 as c_char; STRING_BUFFER];
    let rc = f(buf.as_mut_ptr(), STRING_BUFFER as c_uint);
    if rc != NVML_SUCCESS {
        return Err(rc);
    }
    // An unterminated answer would be a library bug; treat it as a failure
    // rather than read past what we can trust.
    c_chars_to_string(&buf).ok_or(u32::MAX)
}

/// The C string in `buf`, if it is NUL-terminated within `buf`.
fn c_chars_to_string(buf: &[c_char]) -> Option<String> {
    // `c_char` is i8 or u8 depending on the target: reinterpret the bytes.
    let bytes: Vec<u8> = buf.iter().map(|&c| c as u8).collect();
    CStr::from_bytes_until_nul(&bytes).ok().map(|s| s.to_string_lossy().trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_none() {
        assert!(Nvml::load_from("libneocloud-no-such-nvml.so.1").is_none());
    }

    #[test]
    fn a_library_without_nvml_symbols_is_none() {
        // libc is present everywhere but has no nvmlInit_v2.
        assert!(Nvml::load_from("libc.so.6").is_none());
    }

    #[test]
    fn c_strings_must_be_terminated() {
        let ok: Vec<c_char> = b"H100\0junk".iter().map(|&b| b as c_char).collect();
        assert_eq!(c_chars_to_string(&ok).as_deref(), Some("H100"));
        let unterminated: Vec<c_char> = b"H100".iter().map(|&b| b as c_char).collect();
        assert_eq!(c_chars_to_string(&unterminated), None);
        assert_eq!(read_string(|_, _| 3), Err(3));
        let got = read_string(|buf, len| {
            // Fills the whole buffer without a NUL.
            // SAFETY: `buf` has `len` writable bytes.
            unsafe { std::ptr::write_bytes(buf, b'x', len as usize) };
            0
        });
        assert_eq!(got, Err(u32::MAX));
    }
}
