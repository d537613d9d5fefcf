//! The per-node ISO tests' share: the server's ISO configuration from
//! Debian's iPXE package, fetching an ISO (whole or a byte range) and
//! reading its iPXE script back.

/// A server's configuration for a per-node ISO test: `iso`, the
/// bare-metal test tweaks, and no periodic controller pass (the test
/// drives or only writes).
pub fn iso_tweak(
    iso: &neocloud_server::boot::iso::PerNodeIsoConfig,
) -> impl Fn(&mut neocloud_server::Config) + '_ {
    move |c| {
        super::tweak(c, 120);
        c.lifecycle_interval_ms = 0;
        c.per_node_iso = Some(iso.clone());
    }
}

/// The per-node ISO configuration from Debian's iPXE package (`None`, after
/// a loud message, where iPXE, xorriso or mtools is missing; CI has them).
pub fn per_node_iso() -> Option<neocloud_server::boot::iso::PerNodeIsoConfig> {
    let efi = std::path::Path::new("/usr/lib/ipxe/ipxe.efi");
    let tools = ["xorriso", "mformat", "osirrox", "mtype"].iter().all(|t| {
        std::process::Command::new(t)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok()
    });
    if efi.exists() && tools {
        return Some(neocloud_server::boot::iso::PerNodeIsoConfig {
            ipxe_efi: efi.into(),
            ipxe_lkrn: None,
            isolinux_bin: None,
            ldlinux_c32: None,
            cache_dir: None,
        });
    }
    let msg = "per-node ISO tests need Debian's ipxe, xorriso and mtools";
    if std::env::var_os("CI").is_some() {
        panic!("{msg}; CI must have them");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// An ISO's bytes; with `range`, the answer's status, its Content-Range
/// and the bytes.
pub fn fetch(url: &str, range: Option<&str>) -> (u16, Option<String>, Vec<u8>) {
    let mut req = ureq::get(url);
    if let Some(r) = range {
        req = req.set("Range", r);
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = resp.status();
    let content_range = resp.header("Content-Range").map(str::to_string);
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).unwrap();
    (status, content_range, body)
}

/// The iPXE script inside an ISO's EFI system partition.
pub fn autoexec_of(iso: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("neocloud-bm-iso-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (file, esp) = (dir.join("node.iso"), dir.join("esp.img"));
    std::fs::write(&file, iso).unwrap();
    let _ = std::fs::remove_file(&esp);
    let out = std::process::Command::new("osirrox")
        .arg("-indev")
        .arg(&file)
        .args(["-extract", "/efiboot.img"])
        .arg(&esp)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = std::process::Command::new("mtype")
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(&esp)
        .arg("::/autoexec.ipxe")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8_lossy(&out.stdout).to_string()
}
