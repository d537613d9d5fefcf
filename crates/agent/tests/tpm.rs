//! The agent's `clear_tpm` against a real TPM 2.0: swtpm (Debian's
//! software TPM, over its TCP command port), with the tenant's side played
//! by tpm2-tools, which also read the TPM back afterwards. Skipped loudly
//! where swtpm or tpm2-tools is missing; CI fails instead.

mod guest;
mod swtpm;

use neocloud_agent::tpm::{clear_tpm, TpmPath};
use neocloud_agent::{run_step, Host};
use neocloud_types::AgentStepKind;
use neocloud_types::AgentStepResult;
use swtpm::Swtpm;

#[test]
fn a_tenants_keys_data_and_authorizations_are_cleared_and_the_storage_seed_changes() {
    let Some(tpm) = Swtpm::start() else { return };
    // The platform's own NV index (as an EK certificate is): kept.
    tpm.tool(
        "nvdefine",
        &[
            "-Q",
            "0x1c00099",
            "-C",
            "p",
            "-s",
            "8",
            "-a",
            "platformcreate|ppwrite|ppread|ownerread|authread|authwrite",
        ],
    );
    let srk_before = tpm.storage_primary("");
    tpm.tenant_takes_it();
    tpm.tool("changeauth", &["-c", "lockout", "lockout-pw"]);
    assert!(tpm.flag("ownerAuthSet") && tpm.flag("lockoutAuthSet"));

    // The agent's --inventory shows it, changing nothing.
    let v = tpm.agent_inventory(env!("CARGO_BIN_EXE_neocloud-agent"));
    assert_eq!(
        v["tpm"],
        format!(
            "tcp:127.0.0.1:{}: owner authorization set, endorsement authorization set, \
             lockout authorization set, persistent objects 0x81000001, NV indices 0x01500016",
            tpm.port
        )
    );
    assert!(tpm.flag("ownerAuthSet"), "--inventory changed nothing");

    // Through the agent's step, as the sanitizer runs it.
    let host = Host::without_gpus(vec![]).with_tpm(Some(tpm.path()));
    let r = run_step(&host, &clear_tpm_step());
    assert!(r.ok, "{r:?}");
    let it = &r.items[0];
    assert_eq!(it.method, "tpm2-clear-platform", "{it:?}");
    for found in [
        "owner authorization set",
        "endorsement authorization set",
        "lockout authorization set",
        "persistent objects 0x81000001",
        "NV indices 0x01500016",
        "nothing of it left",
    ] {
        assert!(it.detail.contains(found), "{found}: {}", it.detail);
    }
    assert!(!it.detail.contains("0x01c00099"), "{}", it.detail);

    // Read back with tpm2-tools: nothing of the tenant's is left, the
    // platform's index is, and the storage seed changed (the same template
    // gives another key).
    for flag in ["ownerAuthSet", "endorsementAuthSet", "lockoutAuthSet"] {
        assert!(!tpm.flag(flag), "{flag}");
    }
    assert_eq!(tpm.handles("persistent"), Vec::<String>::new());
    assert_eq!(tpm.handles("nv-index"), ["0x1c00099"]);
    assert!(tpm.try_tool("nvread", &["0x1500016", "-C", "o"]).is_err());
    assert_ne!(tpm.storage_primary(""), srk_before, "the storage seed did not change");

    // A clean TPM clears again (every sanitization clears it).
    let again = clear_tpm(&tpm.path(), None);
    assert!(again.ok, "{again:?}");
    assert!(again.detail.starts_with("found nothing of a tenant's"), "{}", again.detail);
}

#[test]
fn with_the_platform_hierarchy_off_the_lockout_hierarchy_clears_it() {
    let Some(tpm) = Swtpm::start() else { return };
    // The firmware turns the platform hierarchy off before the OS boots.
    tpm.tool("hierarchycontrol", &["-C", "p", "phEnable", "clear"]);
    tpm.tenant_takes_it();
    let it = clear_tpm(&tpm.path(), None);
    assert!(it.ok, "{it:?}");
    assert_eq!(it.method, "tpm2-clear-lockout");
    assert!(!tpm.flag("ownerAuthSet"));
    assert_eq!(tpm.handles("persistent"), Vec::<String>::new());
    assert_eq!(tpm.handles("nv-index"), Vec::<String>::new());
}

#[test]
fn where_the_firmware_keeps_a_platform_authorization_the_lockout_hierarchy_clears_it() {
    let Some(tpm) = Swtpm::start() else { return };
    // As edk2 does at the end of its boot: the hierarchy stays enabled
    // with a random authorization only the firmware knew.
    tpm.tool("changeauth", &["-c", "platform", "firmware-random"]);
    tpm.tenant_takes_it();
    let it = clear_tpm(&tpm.path(), None);
    assert!(it.ok, "{it:?}");
    assert_eq!(it.method, "tpm2-clear-lockout");
    assert!(it.detail.contains("the platform hierarchy refused it: TPM_RC_BAD_AUTH"), "{it:?}");
    assert!(!tpm.flag("ownerAuthSet"));
    assert_eq!(tpm.handles("persistent"), Vec::<String>::new());

    // With a tenant's lockout authorization too: not tried (a wrong one
    // would lock the TPM out), the firmware asked.
    tpm.tenant_takes_it();
    tpm.tool("changeauth", &["-c", "lockout", "lockout-pw"]);
    let ppi = tpm.dir.join("ppi-request");
    let it = clear_tpm(&tpm.path(), Some(&ppi));
    assert!(!it.ok, "{it:?}");
    assert_eq!(it.method, "tpm2-clear-ppi");
    assert!(
        it.detail.contains("the platform refused it, and a lockout authorization is set"),
        "{it:?}"
    );
    assert!(!tpm.flag("inLockout"), "no wrong lockout authorization was tried");
    assert_eq!(std::fs::read_to_string(&ppi).unwrap(), "5");
}

#[test]
fn a_tenants_lockout_authorization_fails_the_step_and_asks_the_firmware() {
    let Some(tpm) = Swtpm::start() else { return };
    tpm.tool("hierarchycontrol", &["-C", "p", "phEnable", "clear"]);
    tpm.tenant_takes_it();
    tpm.tool("changeauth", &["-c", "lockout", "lockout-pw"]);
    let ppi = tpm.dir.join("ppi-request");
    let it = clear_tpm(&tpm.path(), Some(&ppi));
    assert!(!it.ok, "{it:?}");
    assert!(it.detail.contains("TPM_RC_"), "{}", it.detail);
    assert!(
        it.detail.contains(
            "a lockout authorization is set and the firmware turned the platform hierarchy off"
        ),
        "{}",
        it.detail
    );
    assert!(it.detail.contains("asked the firmware to clear it at the next boot"), "{}", it.detail);
    assert_eq!(it.method, "tpm2-clear-ppi");
    assert_eq!(std::fs::read_to_string(&ppi).unwrap(), "5");
    // Nothing was claimed: the tenant's state is still there.
    assert!(tpm.flag("ownerAuthSet"));
    assert_eq!(tpm.handles("persistent"), ["0x81000001"]);
}

#[test]
fn clearing_disabled_by_a_tenant_is_allowed_again_by_the_platform() {
    let Some(tpm) = Swtpm::start() else { return };
    tpm.tenant_takes_it();
    tpm.tool("clearcontrol", &["-C", "l", "s"]);
    assert!(tpm.flag("disableClear"));
    let it = clear_tpm(&tpm.path(), None);
    assert!(it.ok, "{it:?}");
    assert!(it.detail.contains("clearing disabled"), "{}", it.detail);
    assert!(!tpm.flag("disableClear"));
    assert!(!tpm.flag("ownerAuthSet"));

    // The same without the platform: the step fails and says why.
    tpm.tool("clearcontrol", &["-C", "l", "s"]);
    tpm.tool("hierarchycontrol", &["-C", "p", "phEnable", "clear"]);
    let it = clear_tpm(&tpm.path(), None);
    assert!(!it.ok, "{it:?}");
    assert!(
        it.detail
            .contains("clearing was disabled and the firmware turned the platform hierarchy off"),
        "{}",
        it.detail
    );
}

fn clear_tpm_step() -> neocloud_types::AgentStep {
    neocloud_types::AgentStep {
        id: "s".into(),
        kind: AgentStepKind::ClearTpm,
        uefi_baseline: None,
        nic_baseline: None,
    }
}

#[test]
fn a_host_without_a_tpm_says_so() {
    let r = run_step(&Host::without_gpus(vec![]), &clear_tpm_step());
    assert!(r.ok, "{r:?}");
    assert_eq!(r.items[0].method, "none");
    assert!(r.items[0].detail.contains("no TPM"), "{}", r.items[0].detail);
    // A TPM that cannot be opened fails the step.
    let gone = clear_tpm(&TpmPath::Device("/nonexistent/tpmrm0".into()), None);
    assert!(!gone.ok);
    assert!(gone.detail.contains("cannot open /nonexistent/tpmrm0"), "{}", gone.detail);
}

// ---- through the kernel's TPM driver, in a UEFI guest -------------------

#[test]
#[ignore = "runs as init inside the UEFI guest that a_tenants_tpm_is_cleared_through_the_kernels_resource_manager boots"]
fn guest_side() {
    guest::guest_main(|_| {
        // The agent's own discovery: the kernel's resource manager.
        let host = Host::new(vec![]);
        let tpm = format!("{:?}", host.tpm());
        let r = run_step(&host, &clear_tpm_step());
        let ppi = std::fs::read_to_string("/sys/class/tpm/tpm0/ppi/version").ok();
        // What the firmware holds as the operation for its next boot.
        let pending = std::fs::read_to_string("/sys/class/tpm/tpm0/ppi/request").ok();
        Ok(serde_json::json!({
            "tpm": tpm, "result": r, "ppi_version": ppi, "ppi_request": pending,
        }))
    });
}

#[test]
fn a_tenants_tpm_is_cleared_through_the_kernels_resource_manager() {
    let Some(tpm) = Swtpm::start() else { return };
    let Some(machine) = guest::Machine::new("tpm", &[]) else { return };
    // The last tenant's state, written over the TPM's own port; then the
    // machine's TPM goes on with it.
    tpm.tenant_takes_it();
    assert!(tpm.flag("ownerAuthSet"));
    let dir = tpm.stop();
    let mut swtpm = guest::swtpm(&dir);
    let sock = dir.join("swtpm.sock");
    let chardev = format!("socket,id=chrtpm,path={}", sock.display());
    let machine = machine.qemu_args(&[
        "-chardev",
        &chardev,
        "-tpmdev",
        "emulator,id=tpm0,chardev=chrtpm",
        "-device",
        "tpm-crb,tpmdev=tpm0",
    ]);
    let v = machine.boot("clear", &[]);
    let _ = swtpm.kill();
    let _ = swtpm.wait();
    let r: AgentStepResult = serde_json::from_value(v["result"].clone()).unwrap();
    assert_eq!(v["tpm"], "Some(Device(\"/dev/tpmrm0\"))", "{v}");
    assert!(r.ok, "{v}");
    let it = &r.items[0];
    // OVMF (edk2) leaves the platform hierarchy enabled with a random
    // authorization of its own: the lockout hierarchy clears it.
    assert_eq!(it.method, "tpm2-clear-lockout", "{it:?}");
    assert!(it.detail.contains("the platform hierarchy refused it"), "{it:?}");
    assert!(it.detail.contains("persistent objects 0x81000001"), "{it:?}");
    assert!(it.detail.contains("nothing of it left"), "{it:?}");

    // Read back on the TPM's own port: nothing of the tenant's is left.
    let tpm = Swtpm::start_in(dir);
    for flag in ["ownerAuthSet", "endorsementAuthSet", "lockoutAuthSet"] {
        assert!(!tpm.flag(flag), "{flag}: {v}");
    }
    assert_eq!(tpm.handles("persistent"), Vec::<String>::new());
    assert_eq!(tpm.handles("nv-index"), Vec::<String>::new(), "{v}");
    assert!(tpm.try_tool("nvread", &["0x1500016", "-C", "o"]).is_err());

    // A tenant that also set the lockout authorization: the agent cannot
    // clear it (the platform's is the firmware's), does not try the
    // lockout hierarchy, and asks the firmware through the kernel's ACPI
    // physical presence interface, which takes the request (read back as
    // the operation pending for the next boot).
    tpm.tenant_takes_it();
    tpm.tool("changeauth", &["-c", "lockout", "lockout-pw"]);
    let dir = tpm.stop();
    let mut swtpm = guest::swtpm(&dir);
    let v = machine.boot("ppi", &[]);
    let _ = swtpm.kill();
    let _ = swtpm.wait();
    let r: AgentStepResult = serde_json::from_value(v["result"].clone()).unwrap();
    let it = &r.items[0];
    assert!(!r.ok && it.method == "tpm2-clear-ppi", "{v}");
    assert!(it.detail.contains("asked the firmware to clear it at the next boot"), "{it:?}");
    let pending = v["ppi_request"].as_str().unwrap_or_default();
    assert!(pending.trim_start().starts_with('5'), "the firmware holds the clear: {v}");
    let tpm = Swtpm::start_in(dir);
    assert!(tpm.flag("lockoutAuthSet") && !tpm.flag("inLockout"), "not locked out: {v}");
    machine.done();
}
