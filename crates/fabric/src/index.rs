//! Lookups built once per plan over validated inputs, so the work for one
//! switch is proportional to that switch's ports and tenants, never to the
//! whole intent; and `View`, what the planner reads, so the incremental
//! planner (`crate::incremental`) plans with the same code over its own
//! long-lived indexes.

use crate::intent::{Attachment, FloatingIp, Intent, NatGateway, Network, SecurityRule, Vpc};
use crate::model::{Fabric, Link, Switch};
use std::collections::{BTreeSet, HashMap, HashSet};

pub(crate) struct Index<'a> {
    pub fabric: &'a Fabric,
    pub switches: &'a [Switch],
    pub switch_by_name: HashMap<&'a str, &'a Switch>,
    /// Node links per switch, sorted by port.
    pub links_by_switch: HashMap<&'a str, Vec<&'a Link>>,
    pub vpcs: HashMap<&'a str, &'a Vpc>,
    pub networks: HashMap<&'a str, &'a Network>,
    /// Each VPC's networks, sorted by id.
    pub networks_by_vpc: HashMap<&'a str, Vec<&'a Network>>,
    /// Attachments by (node, NIC).
    pub attachment_by_nic: HashMap<(&'a str, &'a str), &'a Attachment>,
    /// Nodes with at least one attachment (their other ports are disabled,
    /// never quarantined: a tenant's node must not reach the provisioning
    /// network).
    pub attached_nodes: HashSet<&'a str>,
    pub provisioning_servers: HashSet<&'a str>,
    /// Tenant networks with an attachment behind each switch.
    pub networks_by_switch: HashMap<&'a str, BTreeSet<&'a str>>,
    /// Rules by destination network, in intent order.
    pub rules_by_to: HashMap<&'a str, Vec<&'a SecurityRule>>,
    pub nat_by_vpc: HashMap<&'a str, &'a NatGateway>,
    /// Floating IPs by VPC (through their attachment's network).
    pub fips_by_vpc: HashMap<&'a str, Vec<&'a FloatingIp>>,
    /// VPCs with north-south service (a NAT gateway or a floating IP): their
    /// VRF is on every border switch with an uplink.
    pub north_south: BTreeSet<&'a str>,
}

impl<'a> Index<'a> {
    /// Assumes `validate` passed: references resolve.
    pub fn new(
        fabric: &'a Fabric,
        switches: &'a [Switch],
        links: &'a [Link],
        intent: &'a Intent,
    ) -> Index<'a> {
        let switch_by_name = switches.iter().map(|s| (s.name.as_str(), s)).collect();
        let mut links_by_switch: HashMap<&str, Vec<&Link>> = HashMap::new();
        for l in links {
            links_by_switch.entry(l.switch.as_str()).or_default().push(l);
        }
        for v in links_by_switch.values_mut() {
            v.sort_by(|a, b| a.port.cmp(&b.port));
        }
        let vpcs = intent.vpcs.iter().map(|v| (v.id.as_str(), v)).collect();
        let networks: HashMap<&str, &Network> =
            intent.networks.iter().map(|n| (n.id.as_str(), n)).collect();
        let mut networks_by_vpc: HashMap<&str, Vec<&Network>> = HashMap::new();
        for n in &intent.networks {
            networks_by_vpc.entry(n.vpc.as_str()).or_default().push(n);
        }
        for v in networks_by_vpc.values_mut() {
            v.sort_by(|a, b| a.id.cmp(&b.id));
        }
        let attachments: HashMap<&str, &Attachment> =
            intent.attachments.iter().map(|a| (a.id.as_str(), a)).collect();
        let attachment_by_nic: HashMap<(&str, &str), &Attachment> =
            intent.attachments.iter().map(|a| ((a.node.as_str(), a.nic.as_str()), a)).collect();
        let attached_nodes = intent.attachments.iter().map(|a| a.node.as_str()).collect();
        let mut networks_by_switch: HashMap<&str, BTreeSet<&str>> = HashMap::new();
        for l in links {
            if let Some(a) = attachment_by_nic.get(&(l.node.as_str(), l.nic.as_str())) {
                networks_by_switch.entry(l.switch.as_str()).or_default().insert(a.network.as_str());
            }
        }
        let mut rules_by_to: HashMap<&str, Vec<&SecurityRule>> = HashMap::new();
        for r in &intent.security_rules {
            rules_by_to.entry(r.to.as_str()).or_default().push(r);
        }
        let nat_by_vpc: HashMap<&str, &NatGateway> =
            intent.nat_gateways.iter().map(|g| (g.vpc.as_str(), g)).collect();
        let mut fips_by_vpc: HashMap<&str, Vec<&FloatingIp>> = HashMap::new();
        for f in &intent.floating_ips {
            let vpc = attachments
                .get(f.attachment.as_str())
                .and_then(|a| networks.get(a.network.as_str()))
                .map(|n| n.vpc.as_str());
            if let Some(vpc) = vpc {
                fips_by_vpc.entry(vpc).or_default().push(f);
            }
        }
        let north_south = nat_by_vpc.keys().chain(fips_by_vpc.keys()).copied().collect();
        Index {
            fabric,
            switches,
            switch_by_name,
            links_by_switch,
            vpcs,
            networks,
            networks_by_vpc,
            attachment_by_nic,
            attached_nodes,
            provisioning_servers: fabric
                .pools
                .provisioning
                .servers
                .iter()
                .map(String::as_str)
                .collect(),
            networks_by_switch,
            rules_by_to,
            nat_by_vpc,
            fips_by_vpc,
            north_south,
        }
    }
}

/// What the planner reads: implemented by `Index` (built per call over a
/// borrowed intent) and by the incremental planner's own indexes, so both
/// plan with the same code and give the same objects.
pub(crate) trait View {
    fn fabric(&self) -> &Fabric;

    fn switch(&self, name: &str) -> Option<&Switch>;

    /// A switch's node links, sorted by port, each with the attachment of
    /// its NIC, if any.
    fn ports(&self, switch: &str) -> impl Iterator<Item = (&Link, Option<&Attachment>)>;

    /// Whether a node has at least one attachment.
    fn node_attached(&self, node: &str) -> bool;

    fn provisioning_server(&self, node: &str) -> bool;

    fn network(&self, id: &str) -> Option<&Network>;

    /// A VPC's networks, sorted by id.
    fn vpc_networks(&self, vpc: &str) -> impl Iterator<Item = &Network>;

    /// The tenant networks a switch carries (an attachment behind one of
    /// its ports), sorted by id.
    fn switch_networks(&self, switch: &str) -> impl Iterator<Item = &Network>;

    /// The rules whose destination is `network`.
    fn rules_to(&self, network: &str) -> impl Iterator<Item = &SecurityRule>;

    fn nat(&self, vpc: &str) -> Option<&NatGateway>;

    /// The floating IPs of a VPC (through their attachment's network).
    fn vpc_floating_ips(&self, vpc: &str) -> impl Iterator<Item = &FloatingIp>;

    /// The VPCs with north-south service (a NAT gateway or a floating IP),
    /// sorted by id.
    fn north_south(&self) -> impl Iterator<Item = &str>;

    fn is_north_south(&self, vpc: &str) -> bool;

    /// The VPCs whose VRF a switch carries: those of its networks, plus
    /// every north-south VPC on a border with an uplink (sorted by id).
    fn switch_vpcs(&self, sw: &Switch) -> BTreeSet<&str> {
        let mut out: BTreeSet<&str> =
            self.switch_networks(&sw.name).map(|n| n.vpc.as_str()).collect();
        if sw.carries_north_south() {
            out.extend(self.north_south());
        }
        out
    }
}

impl View for Index<'_> {
    fn fabric(&self) -> &Fabric {
        self.fabric
    }

    fn switch(&self, name: &str) -> Option<&Switch> {
        self.switch_by_name.get(name).copied()
    }

    fn ports(&self, switch: &str) -> impl Iterator<Item = (&Link, Option<&Attachment>)> {
        self.links_by_switch
            .get(switch)
            .into_iter()
            .flatten()
            .map(|&l| (l, self.attachment_by_nic.get(&(l.node.as_str(), l.nic.as_str())).copied()))
    }

    fn node_attached(&self, node: &str) -> bool {
        self.attached_nodes.contains(node)
    }

    fn provisioning_server(&self, node: &str) -> bool {
        self.provisioning_servers.contains(node)
    }

    fn network(&self, id: &str) -> Option<&Network> {
        self.networks.get(id).copied()
    }

    fn vpc_networks(&self, vpc: &str) -> impl Iterator<Item = &Network> {
        self.networks_by_vpc.get(vpc).into_iter().flatten().copied()
    }

    fn switch_networks(&self, switch: &str) -> impl Iterator<Item = &Network> {
        self.networks_by_switch
            .get(switch)
            .into_iter()
            .flatten()
            .filter_map(|id| self.networks.get(id).copied())
    }

    fn rules_to(&self, network: &str) -> impl Iterator<Item = &SecurityRule> {
        self.rules_by_to.get(network).into_iter().flatten().copied()
    }

    fn nat(&self, vpc: &str) -> Option<&NatGateway> {
        self.nat_by_vpc.get(vpc).copied()
    }

    fn vpc_floating_ips(&self, vpc: &str) -> impl Iterator<Item = &FloatingIp> {
        self.fips_by_vpc.get(vpc).into_iter().flatten().copied()
    }

    fn north_south(&self) -> impl Iterator<Item = &str> {
        self.north_south.iter().copied()
    }

    fn is_north_south(&self, vpc: &str) -> bool {
        self.north_south.contains(vpc)
    }
}
