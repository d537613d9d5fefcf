//! Per-node virtual-media ISOs, for nodes on a provisioning network without
//! DHCP (a node's `boot_network`).
//!
//! The ISO carries iPXE and a script of the node's own: find the NIC with
//! the node's provisioning MAC, give it the node's static address, chain to
//! the boot service by that MAC. From there the boot is the same as every
//! other (`/boot/ipxe?mac=`: the image, the one-time token), so the ISO
//! holds nothing secret and does not change from boot to boot.
//!
//! Two boot paths in one ISO (El Torito): UEFI (an EFI system partition
//! image with the provider's iPXE EFI binary as `EFI/BOOT/BOOTX64.EFI` and
//! the script as `autoexec.ipxe`, which iPXE 1.21.1 and later runs from the
//! filesystem it was loaded from) and, where the provider gives isolinux,
//! legacy BIOS (isolinux loads iPXE's `ipxe.lkrn` with the script as its
//! initrd). Built with the same tools Ironic uses for its ISOs (`mtools`
//! for the FAT image, `xorriso` for the ISO), cached on disk by content.

use neocloud_common::{Error, Result};
pub use neocloud_types::StaticAddress;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The server's configuration for per-node ISOs (`[per_node_iso]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerNodeIsoConfig {
    /// A plain iPXE EFI binary (no embedded script; 1.21.1 or later, which
    /// runs `autoexec.ipxe`), e.g. Debian's `/usr/lib/ipxe/ipxe.efi`.
    pub ipxe_efi: PathBuf,
    /// Legacy BIOS boot as well (all three or none): iPXE's `ipxe.lkrn`,
    /// isolinux's `isolinux.bin` and its `ldlinux.c32`.
    #[serde(default)]
    pub ipxe_lkrn: Option<PathBuf>,
    #[serde(default)]
    pub isolinux_bin: Option<PathBuf>,
    #[serde(default)]
    pub ldlinux_c32: Option<PathBuf>,
    /// Where built ISOs are kept (default: `<data_dir>/iso-cache`).
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
}

impl PerNodeIsoConfig {
    /// The BIOS files, when all three are given.
    fn bios(&self) -> Result<Option<[&Path; 3]>> {
        match (&self.ipxe_lkrn, &self.isolinux_bin, &self.ldlinux_c32) {
            (Some(a), Some(b), Some(c)) => Ok(Some([a, b, c])),
            (None, None, None) => Ok(None),
            _ => Err(Error::invalid_value(
                "per_node_iso",
                "ipxe_lkrn, isolinux_bin and ldlinux_c32 go together (legacy BIOS boot), or none of them",
            )),
        }
    }
}

/// The node's iPXE script: the NIC with its MAC gets its address (no
/// DHCP), then the boot service's script for that MAC is chained.
pub fn ipxe_static(a: &StaticAddress, boot_url: &str) -> String {
    let base = boot_url.trim_end_matches('/');
    let mut s = format!(
        "#!ipxe\n# neocloud: static provisioning address for {mac}\nset idx:int32 0\n:find\nisset ${{net${{idx}}/mac}} || goto nomac\niseq ${{net${{idx}}/mac}} {mac} && goto found ||\ninc idx\ngoto find\n:nomac\necho neocloud: no NIC with MAC {mac}\nexit 1\n:found\nset net${{idx}}/ip {ip}\nset net${{idx}}/netmask {mask}\n",
        mac = a.mac,
        ip = a.address,
        mask = a.netmask(),
    );
    if let Some(g) = a.gateway {
        s.push_str(&format!("set net${{idx}}/gateway {g}\n"));
    }
    if let Some(d) = a.dns.first() {
        s.push_str(&format!("set dns {d}\n"));
    }
    s.push_str(&format!(
        "ifopen net${{idx}}\nchain {base}/boot/ipxe?mac=${{net${{idx}}/mac}} || goto retry\n:retry\nsleep 5\nchain {base}/boot/ipxe?mac=${{net${{idx}}/mac}}\n"
    ));
    s
}

/// ISOs a prebuilding pass builds at once.
const PREBUILDS_AT_ONCE: usize = 8;

/// A node's ISO as the boot service serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIso {
    /// Where the BMC fetches it: `{boot_url}/boot/vmedia/{node}/{key}.iso`
    /// (a new key when the address or iPXE changes).
    pub url: String,
    pub key: String,
    pub script: String,
}

/// The per-node ISOs of this server: the builder and the URL nodes reach
/// the boot service at.
#[derive(Debug, Clone)]
pub struct NodeIsos {
    pub builder: std::sync::Arc<IsoBuilder>,
    pub base_url: String,
    /// Wakes the prebuilding pass (a node's address was set).
    pub wake: std::sync::Arc<tokio::sync::Notify>,
}

/// What a prebuilding pass found: ISOs built, already there, failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IsoPass {
    pub built: usize,
    pub current: usize,
    pub failed: usize,
}

impl NodeIsos {
    pub fn new(builder: IsoBuilder, base_url: String) -> NodeIsos {
        NodeIsos {
            builder: std::sync::Arc::new(builder),
            base_url,
            wake: std::sync::Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Builds the ISO of every node with a static provisioning address
    /// that has none yet, one at a time (a reconciler: no input, run
    /// periodically and when woken), so a provisioning finds it ready: a
    /// fleet's first wave would otherwise build them all on its boots'
    /// path. Stops early when `stop` says so; a failure is counted and
    /// logged (the node's boot builds it again, and fails with the reason).
    pub fn prebuild(
        &self,
        store: &neocloud_store::Store,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<IsoPass> {
        let mut pass = IsoPass::default();
        let mut missing: Vec<(String, NodeIso)> = Vec::new();
        for (id, net) in store.read(neocloud_store::nodes::boot_networks)? {
            match self.for_network(&id, &net) {
                Ok(iso) if self.builder.is_cached(&iso.key) => pass.current += 1,
                Ok(iso) => missing.push((id, iso)),
                Err(e) => {
                    tracing::warn!(node = %id, error = %e, "per-node ISO: bad boot network");
                    pass.failed += 1;
                }
            }
        }
        // A build is mostly waiting (xorriso's writer polls every 0.1 s;
        // about 20 ms of CPU): a few at once.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let (built, failed) =
            (std::sync::atomic::AtomicUsize::new(0), std::sync::atomic::AtomicUsize::new(0));
        std::thread::scope(|scope| {
            for _ in 0..PREBUILDS_AT_ONCE.min(missing.len()) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((id, iso)) = missing.get(i) else { return };
                    if stop() {
                        return;
                    }
                    match self.build(iso) {
                        Ok(_) => built.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                        Err(e) => {
                            tracing::warn!(node = %id, error = ?e, "per-node ISO build failed");
                            failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                        }
                    };
                });
            }
        });
        pass.built = built.into_inner();
        pass.failed += failed.into_inner();
        Ok(pass)
    }

    /// The ISO of a node's stored boot network (checked; not built).
    pub fn for_network(&self, node_id: &str, net: &neocloud_types::BootNetwork) -> Result<NodeIso> {
        self.for_node(node_id, &net.check()?)
    }

    /// The node's ISO file: from the cache, or built (blocking).
    pub fn build(&self, iso: &NodeIso) -> Result<PathBuf> {
        self.builder.build_keyed(&iso.key, &iso.script)
    }

    /// The node's ISO (not built: see [`Self::build`]).
    pub fn for_node(&self, node_id: &str, a: &StaticAddress) -> Result<NodeIso> {
        let script = ipxe_static(a, &self.base_url);
        let key = self.builder.key(&script)?;
        let url =
            format!("{}/boot/vmedia/{node_id}/{key}.iso", self.base_url.trim_end_matches('/'));
        Ok(NodeIso { url, key, script })
    }
}

const ISOLINUX_CFG: &str =
    "DEFAULT ipxe\nPROMPT 0\nTIMEOUT 0\nLABEL ipxe\n  KERNEL ipxe.lkrn\n  INITRD node.ipxe\n";

/// Builds and caches per-node ISOs.
#[derive(Debug, Clone)]
pub struct IsoBuilder {
    config: PerNodeIsoConfig,
    cache_dir: PathBuf,
}

fn run(cmd: &mut Command) -> Result<()> {
    let what = format!("{:?}", cmd.get_program());
    let out = cmd
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .map_err(|e| Error::internal(format!("per-node ISO: cannot run {what}: {e}")))?;
    if !out.status.success() {
        return Err(Error::internal(format!(
            "per-node ISO: {what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// A file's identity for the cache key: its path, size and modification
/// time (an upgraded iPXE makes new ISOs).
fn identity(p: &Path) -> Result<String> {
    let m = std::fs::metadata(p).map_err(|e| {
        Error::invalid_value("per_node_iso", format!("cannot read {}: {e}", p.display()))
    })?;
    if !m.is_file() {
        return Err(Error::invalid_value("per_node_iso", format!("{} is not a file", p.display())));
    }
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok(format!("{}:{}:{mtime}", p.display(), m.len()))
}

impl IsoBuilder {
    /// Checks the files and tools (at server start: a misconfigured server
    /// does not start).
    pub fn new(config: PerNodeIsoConfig, data_dir: &Path) -> Result<IsoBuilder> {
        identity(&config.ipxe_efi)?;
        if let Some(files) = config.bios()? {
            for f in files {
                identity(f)?;
            }
        }
        for (tool, arg) in [("xorriso", "-version"), ("mformat", "--version")] {
            let ok = Command::new(tool).arg(arg).output().map(|o| o.status.success());
            if !matches!(ok, Ok(true)) {
                return Err(Error::invalid_value(
                    "per_node_iso",
                    format!("needs {tool} on the PATH (packages xorriso and mtools)"),
                ));
            }
        }
        let cache_dir = config.cache_dir.clone().unwrap_or_else(|| data_dir.join("iso-cache"));
        std::fs::create_dir_all(&cache_dir).map_err(|e| {
            Error::invalid_value("per_node_iso.cache_dir", format!("{}: {e}", cache_dir.display()))
        })?;
        Ok(IsoBuilder { config, cache_dir })
    }

    /// The key of the ISO for a script: a hash of the script and of the
    /// files it is built from.
    pub fn key(&self, script: &str) -> Result<String> {
        let mut h = Sha256::new();
        h.update(script.as_bytes());
        h.update(identity(&self.config.ipxe_efi)?.as_bytes());
        if let Some(files) = self.config.bios()? {
            for f in files {
                h.update(identity(f)?.as_bytes());
            }
        }
        Ok(hex::encode(&h.finalize()[..16]))
    }

    /// Whether the ISO of `key` is built.
    pub fn is_cached(&self, key: &str) -> bool {
        self.cache_dir.join(format!("{key}.iso")).is_file()
    }

    /// The ISO for a script: from the cache, or built (blocking: call it
    /// off the async runtime).
    pub fn build(&self, script: &str) -> Result<PathBuf> {
        self.build_keyed(&self.key(script)?, script)
    }

    /// [`Self::build`] with the script's key already computed.
    fn build_keyed(&self, key: &str, script: &str) -> Result<PathBuf> {
        let path = self.cache_dir.join(format!("{key}.iso"));
        if path.is_file() {
            return Ok(path);
        }
        // A work directory of this build's own: two requests (or two
        // replicas sharing the directory) may build the same ISO at once;
        // each renames its own complete file into place.
        static BUILDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let work = self.cache_dir.join(format!(".build-{key}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        let result = self.build_in(&work, script, &path);
        let _ = std::fs::remove_dir_all(&work);
        result.map(|()| path)
    }

    fn build_in(&self, work: &Path, script: &str, dest: &Path) -> Result<()> {
        let io = |e: std::io::Error| Error::internal(format!("per-node ISO: {e}"));
        let root = work.join("root");
        std::fs::create_dir_all(&root).map_err(io)?;
        let script_file = work.join("autoexec.ipxe");
        std::fs::write(&script_file, script).map_err(io)?;

        // The EFI system partition: iPXE as the removable-media loader and
        // the script beside it.
        // Sized to what it holds, with room for FAT's own structures (a
        // BMC may read the whole image over a slow out-of-band link).
        let efi_len = std::fs::metadata(&self.config.ipxe_efi).map_err(io)?.len();
        let step = 256 << 10;
        let esp_len = (efi_len + script.len() as u64 + step).div_ceil(step).max(4) * step;
        let esp = root.join("efiboot.img");
        std::fs::File::create(&esp).and_then(|f| f.set_len(esp_len)).map_err(io)?;
        let img = esp.to_string_lossy().to_string();
        run(Command::new("mformat").args(["-i", &img, "-v", "NEOCLOUD", "::"]))?;
        run(Command::new("mmd").args(["-i", &img, "::/EFI", "::/EFI/BOOT"]))?;
        run(Command::new("mcopy")
            .args(["-i", &img])
            .arg(&self.config.ipxe_efi)
            .arg("::/EFI/BOOT/BOOTX64.EFI"))?;
        run(Command::new("mcopy").args(["-i", &img]).arg(&script_file).arg("::/autoexec.ipxe"))?;

        let tmp_iso = work.join("node.iso");
        let mut x = Command::new("xorriso");
        x.args(["-as", "mkisofs", "-quiet", "-o"]).arg(&tmp_iso).args([
            "-V",
            "NEOCLOUD_BOOT",
            "-J",
            "-R",
        ]);
        if let Some([lkrn, isolinux, ldlinux]) = self.config.bios()? {
            let dir = root.join("isolinux");
            std::fs::create_dir_all(&dir).map_err(io)?;
            for (from, to) in
                [(lkrn, "ipxe.lkrn"), (isolinux, "isolinux.bin"), (ldlinux, "ldlinux.c32")]
            {
                std::fs::copy(from, dir.join(to)).map_err(io)?;
            }
            std::fs::write(dir.join("isolinux.cfg"), ISOLINUX_CFG).map_err(io)?;
            std::fs::write(dir.join("node.ipxe"), script).map_err(io)?;
            x.args([
                "-b",
                "isolinux/isolinux.bin",
                "-c",
                "isolinux/boot.cat",
                "-no-emul-boot",
                "-boot-load-size",
                "4",
                "-boot-info-table",
                "-eltorito-alt-boot",
            ]);
        } else {
            x.args(["-c", "boot.cat"]);
        }
        x.args(["-e", "efiboot.img", "-no-emul-boot"]).arg(&root);
        run(&mut x)?;
        std::fs::rename(&tmp_iso, dest).map_err(io)?;
        self.prune(dest);
        Ok(())
    }

    /// Drops cached ISOs unused for a day (nodes re-addressed, iPXE
    /// upgraded); the one just built stays.
    fn prune(&self, keep: &Path) {
        let Ok(entries) = std::fs::read_dir(&self.cache_dir) else { return };
        let day = std::time::Duration::from_secs(24 * 3600);
        for e in entries.flatten() {
            let p = e.path();
            let old = e
                .metadata()
                .and_then(|m| m.accessed().or_else(|_| m.modified()))
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > day);
            if p != keep && old && p.extension().is_some_and(|x| x == "iso") {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> StaticAddress {
        StaticAddress {
            mac: "52:54:00:12:34:56".into(),
            address: std::net::Ipv4Addr::new(10, 0, 2, 77),
            prefix: 24,
            gateway: Some(std::net::Ipv4Addr::new(10, 0, 2, 2)),
            dns: vec![std::net::Ipv4Addr::new(10, 0, 2, 3), std::net::Ipv4Addr::new(10, 0, 2, 4)],
        }
    }

    #[test]
    fn script_sets_the_address_on_the_nic_with_the_mac_and_chains_by_mac() {
        let s = ipxe_static(&addr(), "http://10.0.2.100:8080/");
        assert!(s.starts_with("#!ipxe\n"));
        assert!(s.contains("iseq ${net${idx}/mac} 52:54:00:12:34:56 && goto found ||\n"));
        assert!(s.contains("set net${idx}/ip 10.0.2.77\nset net${idx}/netmask 255.255.255.0\nset net${idx}/gateway 10.0.2.2\nset dns 10.0.2.3\nifopen net${idx}\n"));
        assert!(s.contains(
            "chain http://10.0.2.100:8080/boot/ipxe?mac=${net${idx}/mac} || goto retry\n"
        ));
        assert!(!s.contains("dhcp"), "no DHCP anywhere: {s}");
        assert!(!s.contains("10.0.2.4"), "iPXE takes one name server");
        let bare =
            ipxe_static(&StaticAddress { gateway: None, dns: vec![], ..addr() }, "http://cp");
        assert!(!bare.contains("gateway") && !bare.contains("set dns"));
    }

    #[test]
    fn a_missing_ipxe_binary_is_a_configuration_error() {
        let c = PerNodeIsoConfig {
            ipxe_efi: "/nonexistent/ipxe.efi".into(),
            ipxe_lkrn: None,
            isolinux_bin: None,
            ldlinux_c32: None,
            cache_dir: None,
        };
        let e = IsoBuilder::new(c, Path::new("/tmp")).unwrap_err();
        assert_eq!(e.field(), Some("per_node_iso"));
        assert!(e.external_message().contains("/nonexistent/ipxe.efi"), "{e:?}");
    }

    #[test]
    fn bios_files_go_together() {
        let mut c = PerNodeIsoConfig {
            ipxe_efi: "/x".into(),
            ipxe_lkrn: Some("/l".into()),
            isolinux_bin: None,
            ldlinux_c32: None,
            cache_dir: None,
        };
        assert!(c.bios().is_err());
        c.ipxe_lkrn = None;
        assert!(c.bios().unwrap().is_none());
    }
}
