//! What the REST drivers' tests (eos.rs, nvue.rs, sonic.rs) share: one
//! apply through any driver, the lab's leaf1 plans, and the checks every
//! driver must pass the same way (in sync at a generation, an older
//! generation refused, wrong credentials refused).

use neocloud_fabric::{Object, ObjectId, PortConfig, PortMode, SwitchConfig, SwitchOs};
use neocloud_switch::double::lab::Lab;
use neocloud_switch::{Apply, Checked, DriverError, SwitchDriver};
use std::time::Duration;

/// The per-request timeout the tests give a driver.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// One apply; the steps pushed (or, dry, that would be).
pub fn apply(
    driver: &impl SwitchDriver,
    actual: &SwitchConfig,
    desired: &SwitchConfig,
    generation: u64,
    dry_run: bool,
) -> Result<Vec<String>, DriverError> {
    driver.apply(&Apply { actual, desired, generation, dry_run }).map(|a| a.steps)
}

/// The lab's leaf1, planned for `os`.
pub fn leaf1(os: SwitchOs) -> SwitchConfig {
    Lab::new(os).plan("leaf1")
}

/// The lab's leaf1 for the driver's OS, applied (from empty) at
/// `generation`.
pub fn applied_leaf1(driver: &impl SwitchDriver, generation: u64) -> SwitchConfig {
    let cfg = leaf1(driver.os());
    apply(driver, &SwitchConfig::new(driver.os()), &cfg, generation, false).unwrap();
    cfg
}

/// leaf1's plan, then its plan once tenant network `network` is removed
/// (its nodes idle).
pub fn leaf1_before_and_after_removing(
    os: SwitchOs,
    network: &str,
) -> (SwitchConfig, SwitchConfig) {
    let mut lab = Lab::new(os);
    let before = lab.plan("leaf1");
    lab.remove_network(network);
    (before, lab.plan("leaf1"))
}

/// The device holds `generation` and no drift from `cfg`.
pub fn assert_in_sync(driver: &impl SwitchDriver, cfg: &SwitchConfig, generation: u64) {
    let checked = driver.check(cfg).unwrap();
    assert_eq!(checked.generation, Some(generation));
    assert!(checked.drift.is_empty(), "{:?}", checked.drift);
}

/// The objects a check found drifted, in order.
pub fn drifted(checked: &Checked) -> Vec<&ObjectId> {
    checked.drift.iter().map(|d| &d.object).collect()
}

/// On a device holding generation 5 (of `cfg`), generation 4 is refused,
/// applied and dry.
pub fn assert_refuses_generation_4(driver: &impl SwitchDriver, cfg: &SwitchConfig) {
    let empty = SwitchConfig::new(driver.os());
    for dry_run in [false, true] {
        assert_eq!(
            apply(driver, cfg, &empty, 4, dry_run),
            Err(DriverError::Stale { device: 5, offered: 4 })
        );
    }
}

/// A driver with the wrong password is refused, applying and checking.
pub fn assert_unauthorized(wrong: &impl SwitchDriver, cfg: &SwitchConfig) {
    let empty = SwitchConfig::new(wrong.os());
    assert!(matches!(apply(wrong, &empty, cfg, 1, false), Err(DriverError::Unauthorized(_))));
    assert!(matches!(wrong.check(cfg), Err(DriverError::Unauthorized(_))));
}

/// A port for NIC eth0 of node x1, which the lab does not cable.
pub fn stray_port(port: &str, mode: PortMode) -> Object {
    Object::Port(PortConfig { port: port.into(), node: "x1".into(), nic: "eth0".into(), mode })
}

/// The message of an apply that must fail as [`DriverError::Failed`].
pub fn failed(r: Result<Vec<String>, DriverError>) -> String {
    match r {
        Err(DriverError::Failed(m)) => m,
        other => panic!("{other:?}"),
    }
}
