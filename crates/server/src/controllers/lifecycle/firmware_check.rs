//! The sanitization record's firmware check: every baseline component
//! still at its baseline version.

use super::platform::item;
use neocloud_types::{FirmwareUpdate, SanitizationCheck};

/// Every baseline component must still report its baseline version: the
/// node's own (its first clean inspection), and the provider's for its
/// model where there is one (which wins for a component both name). A
/// component updated before the sanitizer booted says so, and how the
/// update went.
pub(super) fn firmware_check(
    baseline: &[(String, String)],
    policy: Option<&std::collections::BTreeMap<String, String>>,
    now: &[neocloud_redfish::Firmware],
    updates: &[FirmwareUpdate],
) -> SanitizationCheck {
    let mut wanted: Vec<(&str, &str, &str)> = baseline
        .iter()
        .filter(|(id, _)| policy.is_none_or(|p| !p.contains_key(id)))
        .map(|(id, v)| (id.as_str(), v.as_str(), "the baseline"))
        .collect();
    wanted.extend(
        policy
            .into_iter()
            .flatten()
            .map(|(id, v)| (id.as_str(), v.as_str(), "the provider's baseline")),
    );
    let mut items = Vec::new();
    for (id, want, whose) in wanted {
        let mut item = match now.iter().find(|f| f.id == id) {
            Some(f) if f.version == want => {
                item(id, "redfish-firmware-inventory", true, &format!("{want} ({whose})"))
            }
            Some(f) => item(
                id,
                "redfish-firmware-inventory",
                false,
                &format!("{} differs from {whose} {want}", f.version),
            ),
            None => item(id, "redfish-firmware-inventory", false, "component no longer reported"),
        };
        if let Some(u) = updates.iter().find(|u| u.component == id) {
            item.detail = format!(
                "{}; updated from {} with {}: {} ({}){}",
                item.detail,
                u.from,
                u.image,
                u.state.as_str(),
                u.detail,
                super::activation::activation_said(u)
            );
        }
        items.push(item);
    }
    SanitizationCheck { name: "firmware_baseline".into(), ok: items.iter().all(|i| i.ok), items }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fw(id: &str, v: &str) -> neocloud_redfish::Firmware {
        neocloud_redfish::Firmware {
            id: id.into(),
            name: id.into(),
            version: v.into(),
            path: String::new(),
        }
    }

    #[test]
    fn firmware_must_match_the_baseline() {
        let base = vec![("BMC".to_string(), "1.0".to_string()), ("BIOS".into(), "2.1".into())];
        assert!(firmware_check(&base, None, &[fw("BMC", "1.0"), fw("BIOS", "2.1")], &[]).ok);
        let changed = firmware_check(&base, None, &[fw("BMC", "1.0"), fw("BIOS", "2.2")], &[]);
        assert!(!changed.ok);
        assert!(changed.items[1].detail.contains("2.2 differs from the baseline 2.1"));
        assert!(
            !firmware_check(&base, None, &[fw("BMC", "1.0")], &[]).ok,
            "a vanished component fails"
        );
        assert!(firmware_check(&[], None, &[fw("X", "1")], &[]).ok);
        // The provider's baseline wins for the components it names.
        let policy: std::collections::BTreeMap<String, String> =
            [("BIOS".to_string(), "2.2".to_string())].into();
        let c = firmware_check(&base, Some(&policy), &[fw("BMC", "1.0"), fw("BIOS", "2.2")], &[]);
        assert!(c.ok, "{c:?}");
        assert_eq!(c.items[1].detail, "2.2 (the provider's baseline)");
        let c = firmware_check(&base, Some(&policy), &[fw("BMC", "1.0"), fw("BIOS", "2.1")], &[]);
        assert!(
            c.items[1].detail.contains("2.1 differs from the provider's baseline 2.2"),
            "{c:?}"
        );
    }
}
