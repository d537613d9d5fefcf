//! `neocloud image ...`, `neocloud firmware-baseline ...`, `neocloud provisioning-network ...`,
//! `neocloud instance ...` and the signed sanitization
//! records (`instance sanitization`, `node sanitizations`).

mod firmware;
mod images;
mod instances;
mod provisioning_networks;
mod sanitization;
mod wait;

pub use firmware::{firmware_baseline, FirmwareBaselineArgs};
pub use images::{image, ImageArgs};
pub use instances::{instance, InstanceArgs};
pub use provisioning_networks::{provisioning_network, ProvisioningNetworkArgs};
pub(super) use sanitization::{print_records, VerifyFlags};

use crate::client;
use crate::commands::inventory::InProject;

fn instances_path(at: &InProject) -> String {
    format!("{}/instances", at.path())
}

fn instance_path(at: &InProject, instance: &str) -> String {
    format!("{}/{}", instances_path(at), client::seg(instance))
}

#[cfg(test)]
mod tests {
    use crate::commands::cli_parses as parses;

    #[test]
    fn arguments() {
        fn with_at<'a>(args: &[&'a str]) -> Vec<&'a str> {
            let mut v = args.to_vec();
            v.extend_from_slice(&["--tenant", "t", "--project", "p"]);
            v
        }
        assert!(parses(&["image", "list", "-o", "json"]));
        assert!(parses(&[
            "image",
            "create",
            "ubuntu",
            "--kernel",
            "http://x/k",
            "--initrd",
            "http://x/i",
            "--root",
            "http://x/r",
            "--root-sha256",
            "ab",
            "--cmdline",
            "-- console=ttyS0",
            "--purpose",
            "sanitizer",
        ]));
        // A checksum needs the image it checks.
        assert!(!parses(&[
            "image",
            "create",
            "u",
            "--kernel",
            "k",
            "--initrd",
            "i",
            "--root-sha256",
            "ab"
        ]));
        assert!(!parses(&["image", "create", "u", "--kernel", "k"]));
        assert!(!parses(&[
            "image",
            "create",
            "u",
            "--kernel",
            "k",
            "--initrd",
            "i",
            "--purpose",
            "vm"
        ]));
        assert!(parses(&with_at(&[
            "instance",
            "create",
            "job",
            "--type",
            "bm",
            "--image",
            "ubuntu",
            "--count",
            "2",
            "--ssh-key",
            "ssh-ed25519 AAAA a@b",
            "--ssh-key",
            "ssh-rsa AAAA c@d",
            "--ssh-key-file",
            "/k.pub",
            "--scope",
            "su",
            "--within",
            "rack:r1",
            "--wait",
            "--timeout",
            "10m",
        ])));
        assert!(parses(&with_at(&[
            "instance",
            "create",
            "j",
            "--instance-type",
            "bm",
            "--image",
            "u"
        ])));
        // --timeout only with --wait; no image, no instance.
        assert!(!parses(&with_at(&[
            "instance",
            "create",
            "j",
            "--type",
            "bm",
            "--image",
            "u",
            "--timeout",
            "1m"
        ])));
        assert!(!parses(&with_at(&["instance", "create", "j", "--type", "bm"])));
        assert!(!parses(&["instance", "list", "--tenant", "t"]));
        assert!(parses(&with_at(&["instance", "release", "j", "--wait", "--timeout", "5s"])));
        assert!(!parses(&with_at(&["instance", "release", "j", "--timeout", "5s"])));
        assert!(parses(&with_at(&["instance", "sanitization", "j", "--verify"])));
        let key = "ab".repeat(32);
        assert!(parses(&with_at(&["instance", "sanitization", "j", "--public-key", &key])));
        assert!(!parses(&with_at(&["instance", "sanitization", "j", "--public-key", "abc"])));
        assert!(parses(&["node", "sanitizations", "n1", "--verify", "-o", "json"]));
    }
}
