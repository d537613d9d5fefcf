//! Pure renderers: the iPXE script and the cloud-init NoCloud documents a
//! node gets while it boots. Strings that reach YAML are emitted as JSON
//! strings (valid YAML double-quoted scalars), so no tenant input can add
//! keys or lines.

use neocloud_types::{Image, StaticAddress};

/// What the boot service knows about a node booting for an instance.
pub struct Boot<'a> {
    /// The URL nodes reach the control plane at (scripts, cloud-init).
    pub base_url: &'a str,
    /// Where the image's agent reaches the agent API (`neocloud.api=`).
    pub api_url: &'a str,
    pub token: &'a str,
    pub image: &'a Image,
    /// The node's static provisioning address, where its network has no
    /// DHCP.
    pub address: Option<&'a StaticAddress>,
}

/// The kernel's static address (`ip=`, the kernel's and initramfs-tools'
/// form, no interface named: the first that comes up) and the boot NIC
/// (`BOOTIF=`, PXELINUX's form, which dracut names its interface by).
fn static_cmdline(a: &StaticAddress) -> String {
    let gateway = a.gateway.map(|g| g.to_string()).unwrap_or_default();
    let dns: Vec<String> = a.dns.iter().map(ToString::to_string).collect();
    let mut ip = format!("ip={}::{gateway}:{}:::off", a.address, a.netmask());
    if !dns.is_empty() {
        ip.push(':');
        ip.push_str(&dns.join(":"));
    }
    format!("{ip} BOOTIF=01-{}", a.mac.replace(':', "-"))
}

/// iPXE script that boots `b.image` with the metadata source and the
/// one-time token on the kernel command line.
pub fn ipxe(b: &Boot<'_>) -> String {
    let base = b.base_url.trim_end_matches('/');
    let api = b.api_url.trim_end_matches('/');
    let mut cmdline = String::new();
    if !b.image.cmdline.trim().is_empty() {
        cmdline.push_str(b.image.cmdline.trim());
        cmdline.push(' ');
    }
    cmdline.push_str(&format!(
        "neocloud.api={api} neocloud.token={token} ds=nocloud-net;s={base}/boot/nocloud/{token}/",
        token = b.token
    ));
    if let Some(a) = b.address {
        cmdline.push(' ');
        cmdline.push_str(&static_cmdline(a));
    }
    if let Some(root) = &b.image.root_url {
        cmdline.push_str(&format!(" neocloud.root={root}"));
        if let Some(sum) = &b.image.root_sha256 {
            cmdline.push_str(&format!(" neocloud.root_sha256={sum}"));
        }
    }
    format!(
        "#!ipxe\n# neocloud: {purpose} image {name}\nkernel {kernel} initrd=initrd {cmdline}\ninitrd --name initrd {initrd}\nboot\n",
        purpose = b.image.purpose.as_str(),
        name = b.image.name,
        kernel = b.image.kernel_url,
        initrd = b.image.initrd_url,
    )
}

/// The script for a node with nothing to boot over the network: leave
/// iPXE and boot the next device (the local disk).
pub fn ipxe_local(reason: &str) -> String {
    let reason: String = reason.chars().filter(|c| !c.is_control()).collect();
    format!("#!ipxe\necho neocloud: {reason}\nexit\n")
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// NoCloud `meta-data`: the instance id, hostname and SSH keys.
pub fn meta_data(instance_id: &str, hostname: &str, ssh_keys: &[String]) -> String {
    let mut out = format!("instance-id: {}\nlocal-hostname: {}\n", q(instance_id), q(hostname));
    if !ssh_keys.is_empty() {
        out.push_str("public-keys:\n");
        for k in ssh_keys {
            out.push_str(&format!("  - {}\n", q(k)));
        }
    }
    out
}

/// NoCloud `user-data`: the tenant's own, or an empty cloud-config.
pub fn user_data(tenant: Option<&str>) -> String {
    match tenant {
        Some(u) => u.to_string(),
        None => "#cloud-config\n{}\n".to_string(),
    }
}

/// NoCloud `network-config` (version 2) of a node with a static
/// provisioning address: the NIC with its MAC keeps the address the boot
/// gave it (cloud-init 24.2 and later read it from the seed URL; older
/// ones keep the kernel's `ip=`).
pub fn network_config(a: &StaticAddress) -> String {
    let mut out = format!(
        "version: 2\nethernets:\n  provisioning:\n    match:\n      macaddress: {}\n    addresses:\n      - {}\n",
        q(&a.mac),
        q(&format!("{}/{}", a.address, a.prefix))
    );
    if let Some(g) = a.gateway {
        out.push_str(&format!(
            "    routes:\n      - to: default\n        via: {}\n",
            q(&g.to_string())
        ));
    }
    if !a.dns.is_empty() {
        let dns: Vec<String> = a.dns.iter().map(|d| q(&d.to_string())).collect();
        out.push_str(&format!("    nameservers:\n      addresses: [{}]\n", dns.join(", ")));
    }
    out
}

/// NoCloud `vendor-data`: the provider's part, which starts the agent with
/// the agent API's URL and the one-time token.
pub fn vendor_data(api_url: &str, token: &str) -> String {
    let base = api_url.trim_end_matches('/');
    format!(
        "#cloud-config\nruncmd:\n  - [{}, {}, {}, {}, {}]\n",
        q("neocloud-agent"),
        q("--api"),
        q(base),
        q("--token"),
        q(token)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use neocloud_types::ImagePurpose;

    fn image() -> Image {
        Image {
            id: "img".into(),
            name: "ubuntu-24-04".into(),
            purpose: ImagePurpose::Tenant,
            kernel_url: "http://images.example/vmlinuz".into(),
            initrd_url: "http://images.example/initrd".into(),
            root_url: Some("http://images.example/root.img".into()),
            root_sha256: Some("ab".repeat(32)),
            cmdline: "console=ttyS0".into(),
            description: String::new(),
            generation: 1,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn ipxe_script_carries_image_token_and_metadata_source() {
        let img = image();
        let s = ipxe(&Boot {
            base_url: "http://10.0.0.1:8080/",
            api_url: "http://10.0.0.1:8080",
            token: "tok123",
            image: &img,
            address: None,
        });
        let expected = format!(
            "#!ipxe\n# neocloud: tenant image ubuntu-24-04\nkernel http://images.example/vmlinuz initrd=initrd console=ttyS0 neocloud.api=http://10.0.0.1:8080 neocloud.token=tok123 ds=nocloud-net;s=http://10.0.0.1:8080/boot/nocloud/tok123/ neocloud.root=http://images.example/root.img neocloud.root_sha256={}\ninitrd --name initrd http://images.example/initrd\nboot\n",
            "ab".repeat(32)
        );
        assert_eq!(s, expected);
        assert_eq!(ipxe_local("no\nboot"), "#!ipxe\necho neocloud: noboot\nexit\n");
        // The agent API elsewhere (agent_api_url): the agent's, only.
        let s = ipxe(&Boot {
            base_url: "http://10.0.0.1:8080/",
            api_url: "https://cp.example:8443/",
            token: "tok123",
            image: &img,
            address: None,
        });
        assert!(s.contains(" neocloud.api=https://cp.example:8443 neocloud.token=tok123 "), "{s}");
        assert!(s.contains(" ds=nocloud-net;s=http://10.0.0.1:8080/boot/nocloud/tok123/ "), "{s}");
    }

    #[test]
    fn a_static_address_reaches_the_kernel() {
        let img = image();
        let a = neocloud_types::BootNetwork {
            mac: "52:54:00:AB:cd:01".into(),
            address: Some("10.20.0.7/22".into()),
            network: None,
            gateway: Some("10.20.0.1".into()),
            dns: vec!["10.20.0.2".into(), "10.20.0.3".into()],
        }
        .check()
        .unwrap();
        let s = ipxe(&Boot {
            base_url: "http://cp",
            api_url: "http://cp",
            token: "t",
            image: &img,
            address: Some(&a),
        });
        assert!(
            s.contains(" ip=10.20.0.7::10.20.0.1:255.255.252.0:::off:10.20.0.2:10.20.0.3 BOOTIF=01-52-54-00-ab-cd-01 neocloud.root="),
            "{s}"
        );
        let bare = neocloud_types::BootNetwork {
            mac: "52:54:00:ab:cd:01".into(),
            address: Some("10.20.0.7/24".into()),
            network: None,
            gateway: None,
            dns: vec![],
        }
        .check()
        .unwrap();
        let s = ipxe(&Boot {
            base_url: "http://cp",
            api_url: "http://cp",
            token: "t",
            image: &img,
            address: Some(&bare),
        });
        assert!(
            s.contains(" ip=10.20.0.7:::255.255.255.0:::off BOOTIF=01-52-54-00-ab-cd-01 "),
            "{s}"
        );
    }

    #[test]
    fn a_static_address_is_the_nodes_network_config() {
        let a = neocloud_types::BootNetwork {
            mac: "52:54:00:ab:cd:01".into(),
            address: Some("10.20.0.7/22".into()),
            network: None,
            gateway: Some("10.20.0.1".into()),
            dns: vec!["10.20.0.2".into(), "10.20.0.3".into()],
        }
        .check()
        .unwrap();
        assert_eq!(
            network_config(&a),
            "version: 2\nethernets:\n  provisioning:\n    match:\n      macaddress: \"52:54:00:ab:cd:01\"\n    addresses:\n      - \"10.20.0.7/22\"\n    routes:\n      - to: default\n        via: \"10.20.0.1\"\n    nameservers:\n      addresses: [\"10.20.0.2\", \"10.20.0.3\"]\n"
        );
        let bare = neocloud_types::StaticAddress { gateway: None, dns: vec![], ..a };
        assert_eq!(
            network_config(&bare),
            "version: 2\nethernets:\n  provisioning:\n    match:\n      macaddress: \"52:54:00:ab:cd:01\"\n    addresses:\n      - \"10.20.0.7/22\"\n"
        );
    }

    #[test]
    fn tenant_input_cannot_add_yaml_keys() {
        let md = meta_data("i-1", "web-0", &["ssh-ed25519 AAAA x\nevil: true".into()]);
        assert_eq!(
            md,
            "instance-id: \"i-1\"\nlocal-hostname: \"web-0\"\npublic-keys:\n  - \"ssh-ed25519 AAAA x\\nevil: true\"\n"
        );
        assert!(!md.lines().any(|l| l.starts_with("evil")));
        assert_eq!(user_data(None), "#cloud-config\n{}\n");
        assert_eq!(user_data(Some("#!/bin/sh\necho hi\n")), "#!/bin/sh\necho hi\n");
        assert_eq!(
            vendor_data("http://cp:8080", "t"),
            "#cloud-config\nruncmd:\n  - [\"neocloud-agent\", \"--api\", \"http://cp:8080\", \"--token\", \"t\"]\n"
        );
    }
}
