//! The agent's `clear_uefi_variables` against real UEFI firmware and the
//! kernel's real efivarfs: QEMU (software emulation) boots OVMF (Debian's
//! UEFI firmware for QEMU, its variables in a writable flash image kept
//! from boot to boot, as a board's NVRAM is) and a Debian cloud kernel,
//! whose initramfs holds this very test binary as its init, the agent's
//! tools (`mount`, `chattr`) and efivarfs' module. Three boots of one
//! machine:
//!
//! 1. the node's first sanitization: the agent (its real host discovery,
//!    which mounts efivarfs) records the firmware's non-volatile variables
//!    as the node's baseline; then the tenant's root writes a non-volatile
//!    variable, as any root can (a volatile one it cannot: UEFI refuses
//!    them once the OS runs);
//! 2. the next sanitization, after a power cycle: the tenant's variable is
//!    still there (it is in the firmware's flash); the agent deletes what
//!    is not in the baseline (efivarfs makes it immutable: the agent lifts
//!    the flag) and keeps the firmware's;
//! 3. a plain boot: the tenant's variable is gone from the flash, every
//!    variable of the baseline is still there, and the firmware still boots.
//!
//! The machine is `guest::Machine`; skipped loudly without what it needs,
//! failed instead under CI.

mod guest;

use std::collections::BTreeSet;
use std::path::Path;

use neocloud_agent::efivars::{self, DELETED, KEPT};
use neocloud_agent::{run_step, Host};
use neocloud_types::{AgentStep, AgentStepKind, AgentStepResult};
use serde_json::{json, Value};

/// The tenant's variables, under a GUID of its own.
const TENANT_NV: &str = "TenantLeftover-5d6b1e4a-8c2f-4e7b-9a31-0c6f2d4b8e17";
const TENANT_VOLATILE: &str = "TenantVolatile-5d6b1e4a-8c2f-4e7b-9a31-0c6f2d4b8e17";

// ---- inside the guest -------------------------------------------------

/// The guest's side: this test binary is the guest's init (run with
/// `--ignored`). What it does is read from `/mode` (and `/baseline`); it
/// prints one line of JSON and powers the machine off.
#[test]
#[ignore = "runs as init inside the UEFI guest that a_tenants_uefi_variables_are_deleted_from_real_firmware boots"]
fn guest_side() {
    guest::guest_main(guest);
}

fn guest(mode: &str) -> Result<Value, String> {
    guest::load_module("/modules/efivarfs.ko")?;
    // The agent's own discovery: booted through UEFI, efivarfs mounted by it.
    let host = Host::new(vec![]);
    let dir = host.efivars().ok_or("the agent found no UEFI variables")?.to_path_buf();
    let before = listed(&dir)?;
    let step = |baseline: Option<Vec<String>>| AgentStep {
        id: "s".into(),
        kind: AgentStepKind::ClearUefiVariables,
        uefi_baseline: baseline,
        nic_baseline: None,
    };
    let result = match mode {
        "record" => {
            let r = run_step(&host, &step(None));
            // The tenant's root: attributes (non-volatile, boot service and
            // runtime access), then its data, in one write.
            let mut nv = 7u32.to_le_bytes().to_vec();
            nv.extend_from_slice(b"what the last tenant left");
            std::fs::write(dir.join(TENANT_NV), nv).map_err(|e| format!("{TENANT_NV}: {e}"))?;
            // A volatile one (no non-volatile attribute): after the
            // firmware's boot services exit, UEFI lets only non-volatile
            // variables be set, which is why the agent ignores volatile ones.
            let mut volatile = 6u32.to_le_bytes().to_vec();
            volatile.extend_from_slice(b"would be gone at the reset");
            let refused = std::fs::write(dir.join(TENANT_VOLATILE), volatile).is_err();
            return Ok(json!({
                "before": before, "result": r, "after": listed(&dir)?, "volatile_refused": refused,
            }));
        }
        "clear" => {
            let baseline = std::fs::read_to_string("/baseline").map_err(|e| e.to_string())?;
            let keys = baseline.lines().map(str::to_string).collect();
            Some(run_step(&host, &step(Some(keys))))
        }
        "check" => None,
        other => return Err(format!("unknown mode {other:?}")),
    };
    Ok(json!({ "before": before, "result": result, "after": listed(&dir)? }))
}

/// The variables as `[key, attributes]`.
fn listed(dir: &Path) -> Result<Vec<(String, u32)>, String> {
    Ok(efivars::list(dir)?.into_iter().map(|v| (v.key, v.attributes)).collect())
}

fn keys(v: &Value, field: &str) -> BTreeSet<String> {
    v[field]
        .as_array()
        .unwrap_or_else(|| panic!("{field} in {v}"))
        .iter()
        .map(|kv| kv[0].as_str().unwrap().to_string())
        .collect()
}

fn result(v: &Value) -> AgentStepResult {
    serde_json::from_value(v["result"].clone()).unwrap()
}

#[test]
fn a_tenants_uefi_variables_are_deleted_from_real_firmware() {
    let Some(machine) = guest::Machine::new("efivars", &[]) else { return };
    // 1. The first sanitization records the firmware's variables; then a
    //    tenant writes its own.
    let first = machine.boot("record", &[]);
    let recorded = result(&first);
    assert!(recorded.ok, "{recorded:?}");
    let baseline: Vec<String> =
        recorded.items.iter().filter(|i| i.method == KEPT).map(|i| i.target.clone()).collect();
    assert!(!baseline.is_empty(), "OVMF keeps non-volatile variables: {first}");
    assert!(recorded.items.iter().all(|i| i.method == KEPT), "{recorded:?}");
    let after_tenant = keys(&first, "after");
    assert!(after_tenant.contains(TENANT_NV), "the tenant wrote its variable: {first}");
    assert_eq!(first["volatile_refused"], true, "{first}");
    assert!(!after_tenant.contains(TENANT_VOLATILE), "{first}");

    // 2. A power cycle later, the next sanitization.
    let second = machine.boot("clear", &[("/baseline", baseline.join("\n").as_bytes())]);
    let found = keys(&second, "before");
    assert!(found.contains(TENANT_NV), "a non-volatile variable outlives the reset: {second}");
    let cleared = result(&second);
    assert!(cleared.ok, "{cleared:?}");
    let deleted: Vec<&str> =
        cleared.items.iter().filter(|i| i.method == DELETED).map(|i| i.target.as_str()).collect();
    assert_eq!(deleted, [TENANT_NV], "only the tenant's variable is deleted: {cleared:?}");
    for key in &baseline {
        assert!(
            cleared.items.iter().any(|i| &i.target == key && i.method == KEPT && i.ok),
            "{key} kept: {cleared:?}"
        );
    }
    assert!(!keys(&second, "after").contains(TENANT_NV), "{second}");

    // 3. Gone from the firmware's flash; the firmware's own all there, and
    //    it still boots.
    let third = machine.boot("check", &[]);
    let now = keys(&third, "before");
    assert!(!now.contains(TENANT_NV), "the tenant's variable is gone from NVRAM: {third}");
    for key in &baseline {
        assert!(now.contains(key), "the firmware's {key} is still there: {third}");
    }
    machine.done();
}
