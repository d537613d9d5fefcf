//! GPU memory overwritten through the CUDA driver API, against a test
//! double of the library (`fake_cuda/fake_cuda.c`, built here with the
//! system's C compiler): the symbols and prototypes of cuda.h over two
//! GPUs whose memory holds the last tenant's bytes, the NVML double's GPU 0
//! and GPU 1 (listed in another order, as CUDA does). What the agent left
//! is read from the double's memory itself, not from the agent's own
//! read-back.

mod fake_lib;

use std::path::PathBuf;

use neocloud_agent::cuda::Cuda;
use neocloud_agent::nvml::Nvml;
use neocloud_agent::{Hardware, Host};

const GPU0: &str = "GPU-fa4e0000-0000-0000-0000-000000000000";
const GPU1: &str = "GPU-fa4e0000-0000-0000-0000-000000000001";
const MIB: u64 = 1 << 20;

/// A variant of the double, in a library of its own (each its own state).
fn build(test: &str, defines: &[&str]) -> PathBuf {
    fake_lib::build(
        "fake_cuda/fake_cuda.c",
        &fake_lib::scratch("cuda", test),
        "libcuda.so.1",
        defines,
    )
}

/// The double's own view of GPU `dev`: bytes not zero, contexts retained.
struct Memory(libloading::Library);

impl Memory {
    fn open(lib: &PathBuf) -> Memory {
        // SAFETY: the double built above; its initializers do nothing.
        Memory(unsafe { libloading::Library::new(lib) }.unwrap())
    }
    fn residue(&self, dev: i32) -> u64 {
        // SAFETY: the double's `unsigned long long fake_cuda_residue(int)`.
        unsafe {
            let f = self.0.get::<unsafe extern "C" fn(i32) -> u64>(b"fake_cuda_residue\0").unwrap();
            f(dev)
        }
    }
    fn retained(&self, dev: i32) -> i32 {
        // SAFETY: the double's `int fake_cuda_retained(int)`.
        unsafe {
            let f =
                self.0.get::<unsafe extern "C" fn(i32) -> i32>(b"fake_cuda_retained\0").unwrap();
            f(dev)
        }
    }
}

#[test]
fn every_byte_the_driver_gives_out_is_set_to_zero() {
    let lib = build("full", &[]);
    let cuda = Cuda::load_from(lib.to_str().unwrap()).expect("the double loads");
    let mem = Memory::open(&lib);
    assert_eq!((mem.residue(0), mem.residue(1)), (64 * MIB, 64 * MIB), "the last tenant's");

    let o = cuda.overwrite(GPU1).unwrap();
    assert_eq!((o.bytes, o.free, o.total), (62 * MIB, 62 * MIB, 64 * MIB));
    assert!(o.covers_the_free_memory());
    // GPU 1 (CUDA's device 1 is NVML's GPU 0: untouched); only the
    // driver's 2 MiB left on the one overwritten, and its context released.
    assert_eq!((mem.residue(0), mem.residue(1)), (64 * MIB, 2 * MIB));
    assert_eq!(mem.retained(1), 0);
    cuda.overwrite(GPU0).unwrap();
    assert_eq!(mem.residue(0), 2 * MIB);
    // Again: the memory was freed, all of it is given out again.
    assert_eq!(cuda.overwrite(GPU0).unwrap().bytes, 62 * MIB);

    let e = cuda.overwrite("GPU-00000000-0000-0000-0000-000000000000").unwrap_err();
    assert!(e.contains("no CUDA device has the UUID"), "{e}");
}

#[test]
fn memory_that_does_not_read_back_zero_or_is_not_all_given_out_fails() {
    // A driver whose memsets do nothing: caught by the read-back.
    let lib = build("ignored", &["-DIGNORE_MEMSET"]);
    let cuda = Cuda::load_from(lib.to_str().unwrap()).unwrap();
    let e = cuda.overwrite(GPU0).unwrap_err();
    assert!(e.contains("reads 0xab after 0xa5 was written to it"), "{e}");
    assert_eq!(Memory::open(&lib).retained(0), 0, "released on failure too");

    // A driver that gives out half of what it says is free: overwritten,
    // but not enough.
    let lib = build("stingy", &["-DSTINGY"]);
    let cuda = Cuda::load_from(lib.to_str().unwrap()).unwrap();
    let o = cuda.overwrite(GPU0).unwrap();
    assert_eq!((o.bytes, o.free), (30 * MIB, 62 * MIB));
    assert!(!o.covers_the_free_memory());

    // An NVSwitch system's GPU not in its fabric yet: waited for.
    let lib = build("not-ready", &["-DNOT_READY=3"]);
    let cuda = Cuda::load_from(lib.to_str().unwrap()).unwrap();
    assert_eq!(cuda.overwrite(GPU0).unwrap().bytes, 62 * MIB);
}

#[test]
fn the_sanitizers_gpu_step_overwrites_each_gpus_memory_in_a_child_process() {
    let agent = std::path::Path::new(env!("CARGO_BIN_EXE_neocloud-agent"));
    let calls = std::cell::Cell::new(0);
    let items = |cuda: &str, deadline: u64| {
        calls.set(calls.get() + 1);
        // An NVML double of its own each time: a host's Xid watch can
        // shut the last one's down late, and a library loaded twice by
        // one path is one instance with one state.
        let nvml = fake_lib::build(
            "fake_nvml/fake_nvml.c",
            &fake_lib::scratch("cuda", "nvml"),
            &format!("libnvidia-ml-{}.so.1", calls.get()),
            &[],
        );
        let nvml = Nvml::load_from(nvml.to_str().unwrap()).expect("the NVML double loads");
        let host = Host::with_nvml(Vec::new(), Some(nvml))
            .with_cuda(cuda)
            .with_agent_exe(agent, std::time::Duration::from_secs(deadline));
        let r = host.reset_gpus();
        r.items.into_iter().filter(|i| i.method == "cuda-memset").collect::<Vec<_>>()
    };
    // One item per GPU NVML lists (the lost one is not listed), each ok.
    let done = items(build("host", &[]).to_str().unwrap(), 60);
    assert_eq!(done.len(), 2, "{done:?}");
    for (it, uuid) in done.iter().zip([GPU0, GPU1]) {
        assert_eq!(it.target, uuid);
        assert!(it.ok, "{it:?}");
        let says = "62 MiB written with a pattern, then zero, each read back, of 62 MiB free";
        assert!(it.detail.contains(says), "{it:?}");
    }
    // Without the CUDA library: the step fails for each GPU.
    let missing = items("libcuda-not-installed.so.1", 60);
    assert_eq!(missing.len(), 2);
    assert!(missing.iter().all(|i| !i.ok && i.detail.contains("GPU memory not overwritten")));
    // A driver that hangs: stopped at the deadline, every GPU failed.
    let hung = items(build("hang", &["-DHANG"]).to_str().unwrap(), 2);
    assert_eq!(hung.len(), 2, "{hung:?}");
    assert!(hung.iter().all(|i| !i.ok && i.detail.contains("stopped after 2 s")), "{hung:?}");
}

#[test]
fn the_agent_overwrites_the_gpus_memory_on_its_own_and_says_whether_it_could() {
    // Both doubles by their sonames on the library path, as the driver's
    // would be.
    let dir = fake_lib::scratch("cuda", "bin");
    fake_lib::build("fake_nvml/fake_nvml.c", &dir, "libnvidia-ml.so.1", &[]);
    let run = |cuda_defines: &[&str]| {
        fake_lib::build("fake_cuda/fake_cuda.c", &dir, "libcuda.so.1", cuda_defines);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_neocloud-agent"))
            .arg("--overwrite-gpu-memory")
            .env("LD_LIBRARY_PATH", &dir)
            .output()
            .unwrap();
        let items: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), items)
    };
    let (code, items) = run(&[]);
    assert_eq!(code, Some(0), "{items}");
    assert_eq!(items.as_array().unwrap().len(), 2, "{items}");
    assert!(items[0]["detail"].as_str().unwrap().contains("62 MiB written"), "{items}");
    let (code, items) = run(&["-DIGNORE_MEMSET"]);
    assert_eq!(code, Some(3), "{items}");
    assert_eq!(items[1]["ok"], false, "{items}");
    // Not INDEX=UUID: a usage error.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_neocloud-agent"))
        .args(["--overwrite-gpu-memory", "--gpu", "zero"])
        .env("LD_LIBRARY_PATH", &dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}
