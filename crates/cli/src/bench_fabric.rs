//! `neocloud bench fabric`: the fabric core (`neocloud-fabric`) at scale, no
//! server, no switches: a generated fabric (spines, leaves, borders; every
//! leaf port cabled to a node) and intent (one VPC and network per tenant,
//! its nodes spread over many leaves), then
//!
//! 1. the whole fabric: allocate from an empty ledger, plan every switch,
//!    render FRR + Linux for every switch, diff desired against itself;
//! 2. one tenant's change: the tenant adds a node on a leaf it was not on;
//!    allocate (ledger in, ledger out), build the planner, find the
//!    tenant's switches, re-plan, diff and converge just those;
//! 3. the incremental planner: built from the whole intent (timed on its
//!    own), then kept across the runs; each run applies the same change
//!    (validate, allocate and re-plan what it can affect), diffs and
//!    converges the switches that changed, and takes the change back;
//!    then a change that does reach all of the tenant's leaves: a security
//!    rule into its network (a policy on each of them), and back.
//!
//! Each figure is the median of `--runs` runs.

use neocloud_fabric::render::{frr, linux};
use neocloud_fabric::*;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct FabricArgs {
    /// Leaf switches (each with --ports node ports).
    #[arg(long, default_value_t = 980)]
    leaves: u32,
    #[arg(long, default_value_t = 16)]
    spines: u32,
    #[arg(long, default_value_t = 4)]
    borders: u32,
    /// Node ports per leaf.
    #[arg(long, default_value_t = 96)]
    ports: u32,
    /// Tenants (one VPC and one network each, all on 10.0.0.0/16).
    #[arg(long, default_value_t = 1000)]
    tenants: u32,
    /// Nodes per tenant, each on a different leaf.
    #[arg(long, default_value_t = 49)]
    nodes_per_tenant: u32,
    /// Runs per figure (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Print JSON instead of a Markdown table.
    #[arg(long)]
    json: bool,
}

fn leaf(l: u32) -> String {
    format!("leaf{l}")
}

fn topology(a: &FabricArgs) -> (Fabric, Vec<Switch>, Vec<Link>) {
    let fabric = Fabric {
        name: "bench".into(),
        kind: FabricKind::Ethernet,
        pools: Pools {
            l2_vni: IdRange { first: 10_000, last: 999_999 },
            l3_vni: IdRange { first: 1_000_000, last: 1_999_999 },
            vlan: IdRange { first: 2, last: 3999 },
            route_target_asn: 65000,
            provisioning: Provisioning { vni: 9_000_000, vlan: 4000, servers: vec![] },
            public: vec!["198.18.0.0/16".parse().expect("a block")],
        },
        gateway_mac: "00:00:5e:00:01:01".into(),
    };
    let addr = |n: u32| Ipv4Addr::from(0x0A00_0000 + n);
    let mgmt = |n: u32| IpAddr::V4(Ipv4Addr::from(0xAC10_0000 + n));
    let below = a.leaves + a.borders;
    let mut switches = Vec::new();
    for s in 0..a.spines {
        switches.push(Switch {
            name: format!("spine{s}"),
            role: SwitchRole::Spine,
            os: SwitchOs::Frr,
            mgmt_address: mgmt(s),
            asn: 65000,
            loopback: addr(s),
            fabric_ports: (0..below)
                .map(|l| FabricPort { port: format!("swp{}", l + 1), peer: leaf(l) })
                .collect(),
            uplink: None,
        });
    }
    for l in 0..below {
        switches.push(Switch {
            name: leaf(l),
            role: if l >= a.leaves { SwitchRole::Border } else { SwitchRole::Leaf },
            os: SwitchOs::Frr,
            mgmt_address: mgmt(100_000 + l),
            asn: 4_200_000_000 + l,
            loopback: addr(100_000 + l),
            fabric_ports: (0..a.spines)
                .map(|s| FabricPort { port: format!("up{s}"), peer: format!("spine{s}") })
                .collect(),
            uplink: None,
        });
    }
    let mut links = Vec::new();
    for l in 0..a.leaves {
        for p in 0..a.ports {
            links.push(Link {
                node: format!("n{}", l * a.ports + p),
                nic: "eth0".into(),
                switch: leaf(l),
                port: format!("swp{}", p + 1),
            });
        }
    }
    (fabric, switches, links)
}

/// One VPC and network per tenant; tenant t's k-th node is on leaf
/// (t + k) mod leaves (so every tenant touches `nodes_per_tenant` different
/// leaves), on that leaf's next free port. Returns the ports used per leaf.
fn intent(a: &FabricArgs) -> Result<(Intent, Vec<u32>)> {
    let mut intent = Intent::default();
    let mut used = vec![0u32; a.leaves as usize];
    for t in 0..a.tenants {
        let vpc = format!("vpc{t}");
        intent.vpcs.push(Vpc {
            id: vpc.clone(),
            tenant: format!("t{t}"),
            name: vpc.clone(),
            generation: 1,
        });
        intent.networks.push(Network {
            id: format!("net{t}"),
            vpc,
            name: "n".into(),
            cidr: "10.0.0.0/16".parse().expect("a CIDR"),
            gateway: None,
        });
        for k in 0..a.nodes_per_tenant {
            let l = (t + k) % a.leaves;
            let p = used[l as usize];
            if p >= a.ports {
                return Err(Error::Exhausted {
                    field: "ports".into(),
                    reason: format!("leaf {l} has no free port for tenant {t}"),
                });
            }
            used[l as usize] += 1;
            intent.attachments.push(Attachment {
                id: format!("att{t}-{k}"),
                network: format!("net{t}"),
                node: format!("n{}", l * a.ports + p),
                nic: "eth0".into(),
                ip: None,
            });
        }
    }
    Ok((intent, used))
}

/// "1 switch", "49 switches".
fn switches(n: usize) -> String {
    match n {
        1 => "1 switch".into(),
        n => format!("{n} switches"),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Figures {
    switches: usize,
    attachments: usize,
    allocate: Duration,
    plan: Duration,
    render: Duration,
    render_bytes: usize,
    diff: Duration,
    change_allocate: Duration,
    change_setup: Duration,
    change_switches: usize,
    change_plan_diff_converge: Duration,
    change_objects: usize,
    incremental_build: Duration,
    node: Incremental,
    rule: Incremental,
}

/// One change through the incremental planner.
#[derive(Default)]
struct Incremental {
    /// Switches planned again, and those whose configuration changed.
    replanned: usize,
    switches: usize,
    /// Objects changed, over those switches.
    objects: usize,
    apply: Duration,
    diff_converge: Duration,
}

impl Incremental {
    fn total(&self) -> Duration {
        self.apply + self.diff_converge
    }

    fn json(&self) -> serde_json::Value {
        json!({"replanned": self.replanned, "switches": self.switches, "objects": self.objects,
               "apply_ms": ms(self.apply), "diff_converge_ms": ms(self.diff_converge),
               "total_ms": ms(self.total())})
    }
}

/// Applies a change, then diffs and converges the switches it changed.
fn incremental(p: &mut IncrementalPlanner, change: TenantChange) -> Result<Incremental> {
    let t = Instant::now();
    let applied = p.apply_change(change)?;
    let apply = t.elapsed();
    let t = Instant::now();
    let mut objects = 0;
    for (name, c) in &applied.switches {
        objects += diff_switch(name, Some(&c.after), Some(&c.before)).len();
        linux::converge(name, &c.before, &c.after)?;
    }
    Ok(Incremental {
        replanned: applied.replanned,
        switches: applied.switches.len(),
        objects,
        apply,
        diff_converge: t.elapsed(),
    })
}

/// The medians of each figure over runs (the counts of the last run).
fn median_of(runs: Vec<Incremental>) -> Incremental {
    let apply = median(runs.iter().map(|r| r.apply).collect());
    let diff_converge = median(runs.iter().map(|r| r.diff_converge).collect());
    let last = runs.into_iter().last().unwrap_or_default();
    Incremental { apply, diff_converge, ..last }
}

fn measure(a: &FabricArgs) -> Result<Figures> {
    let (f, s, l) = topology(a);
    let (mut intent, used) = intent(a)?;
    let (mut t_alloc, mut t_plan, mut t_render, mut t_diff) = (vec![], vec![], vec![], vec![]);
    let (mut c_alloc, mut c_setup, mut c_rest) = (vec![], vec![], vec![]);
    let (mut i_build, mut i_node, mut i_rule) = (vec![], vec![], vec![]);
    let (mut bytes, mut touched_n, mut changed) = (0, 0, 0);
    let mut switches = 0;
    // The incremental planner, kept across the runs as a controller keeps
    // it: each run applies the changes and then their inverses.
    let base = intent.clone();
    let build = || {
        IncrementalPlanner::new(
            f.clone(),
            s.clone(),
            l.clone(),
            base.clone(),
            &Allocations::default(),
        )
    };
    let mut inc = build()?;
    for _ in 0..a.runs.max(1) {
        let t = Instant::now();
        drop(build()?);
        i_build.push(t.elapsed());

        let t = Instant::now();
        let alloc = allocate(&f, &s, &l, &intent, &Allocations::default())?;
        t_alloc.push(t.elapsed());
        let t = Instant::now();
        let desired = plan(&f, &s, &l, &intent, &alloc)?;
        t_plan.push(t.elapsed());
        switches = desired.switches.len();
        let t = Instant::now();
        bytes = 0;
        for (name, cfg) in &desired.switches {
            let files = frr::render(name, cfg);
            bytes += files.zebra.len() + files.bgpd.len();
            bytes += linux::render(name, cfg)?.iter().map(|c| c.len()).sum::<usize>();
        }
        t_render.push(t.elapsed());
        let t = Instant::now();
        let none = diff(&desired, &desired);
        t_diff.push(t.elapsed());
        assert!(none.is_empty(), "a fabric differs from itself");

        // One tenant adds a node on a leaf it is not on yet.
        let before: Vec<String> = Planner::new(&f, &s, &l, &intent, &alloc)?
            .switches_of_vpc("vpc7")
            .into_iter()
            .map(String::from)
            .collect();
        let new_leaf = (7 + a.nodes_per_tenant) % a.leaves;
        let port = used[new_leaf as usize];
        if port >= a.ports {
            return Err(Error::Exhausted {
                field: "ports".into(),
                reason: format!("leaf {new_leaf} has no free port for the changed tenant"),
            });
        }
        let new_node = Attachment {
            id: "att7-new".into(),
            network: "net7".into(),
            node: format!("n{}", new_leaf * a.ports + port),
            nic: "eth0".into(),
            ip: None,
        };

        let previous = inc.allocations().clone();
        let node =
            incremental(&mut inc, TenantChange::Add(TenantObject::Attachment(new_node.clone())))?;

        intent.attachments.push(new_node);
        let t = Instant::now();
        let alloc2 = allocate(&f, &s, &l, &intent, &alloc)?;
        c_alloc.push(t.elapsed());
        let t = Instant::now();
        let planner = Planner::new(&f, &s, &l, &intent, &alloc2)?;
        c_setup.push(t.elapsed());
        let t = Instant::now();
        let mut touched: Vec<String> =
            planner.switches_of_vpc("vpc7").into_iter().map(String::from).collect();
        touched.extend(before);
        touched.sort();
        touched.dedup();
        changed = 0;
        for name in &touched {
            let new = planner.plan_switch(name)?;
            changed += diff_switch(name, new.as_ref(), desired.switches.get(name)).len();
            if let (Some(new), Some(old)) = (&new, desired.switches.get(name)) {
                linux::converge(name, old, new)?;
            }
        }
        c_rest.push(t.elapsed());
        touched_n = touched.len();
        // The incremental planner agrees with the whole-intent path.
        if inc.intent() != &intent
            || inc.allocations() != &allocate(&f, &s, &l, &intent, &previous)?
        {
            return Err(Error::invalid("bench", "the incremental ledger differs from allocate's"));
        }
        for name in &touched {
            if inc.switch_config(name) != planner.plan_switch(name)?.as_ref() {
                return Err(Error::invalid(
                    name.as_str(),
                    "the incremental plan differs from plan's",
                ));
            }
        }
        intent.attachments.retain(|x| x.id != "att7-new");

        // Back to the intent before; then a rule into the tenant's network
        // from a second network of its VPC (which has no node yet), and
        // back again.
        inc.apply_change(TenantChange::Remove(TenantKey::Attachment("att7-new".into())))?;
        inc.apply_change(TenantChange::Put(TenantObject::Network(Network {
            id: "net7-b".into(),
            vpc: "vpc7".into(),
            name: "b".into(),
            cidr: "10.1.0.0/16".parse().expect("a CIDR"),
            gateway: None,
        })))?;
        let rule = incremental(
            &mut inc,
            TenantChange::Add(TenantObject::SecurityRule(SecurityRule {
                id: "rule7".into(),
                from: "net7-b".into(),
                to: "net7".into(),
                protocol: Protocol::Tcp,
                ports: Some(PortRange { first: 22, last: 22 }),
            })),
        )?;
        inc.apply_change(TenantChange::Remove(TenantKey::SecurityRule("rule7".into())))?;
        inc.apply_change(TenantChange::Remove(TenantKey::Network("net7-b".into())))?;
        i_node.push(node);
        i_rule.push(rule);
    }
    Ok(Figures {
        switches,
        attachments: intent.attachments.len(),
        allocate: median(t_alloc),
        plan: median(t_plan),
        render: median(t_render),
        render_bytes: bytes,
        diff: median(t_diff),
        change_allocate: median(c_alloc),
        change_setup: median(c_setup),
        change_switches: touched_n,
        change_plan_diff_converge: median(c_rest),
        change_objects: changed,
        incremental_build: median(i_build),
        node: median_of(i_node),
        rule: median_of(i_rule),
    })
}

pub fn run(a: FabricArgs) -> ExitCode {
    if a.leaves == 0 || a.nodes_per_tenant > a.leaves || a.nodes_per_tenant == 0 {
        eprintln!("error: --leaves must be positive and --nodes-per-tenant between 1 and --leaves");
        return ExitCode::from(2);
    }
    if u64::from(a.tenants) * u64::from(a.nodes_per_tenant)
        > u64::from(a.leaves) * u64::from(a.ports)
    {
        eprintln!("error: more tenant nodes than leaf ports (--leaves x --ports)");
        return ExitCode::from(2);
    }
    let f = match measure(&a) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let whole = f.plan + f.render + f.diff;
    let change = f.change_allocate + f.change_setup + f.change_plan_diff_converge;
    if a.json {
        println!(
            "{}",
            json!({"switches": f.switches, "tenants": a.tenants, "attachments": f.attachments,
                   "allocate_ms": ms(f.allocate), "plan_ms": ms(f.plan), "render_ms": ms(f.render),
                   "render_bytes": f.render_bytes, "diff_ms": ms(f.diff),
                   "plan_render_diff_ms": ms(whole),
                   "change": {"switches": f.change_switches, "objects": f.change_objects,
                              "allocate_ms": ms(f.change_allocate), "planner_ms": ms(f.change_setup),
                              "plan_diff_converge_ms": ms(f.change_plan_diff_converge),
                              "total_ms": ms(change)},
                   "incremental": {"build_ms": ms(f.incremental_build),
                                   "node": f.node.json(), "rule": f.rule.json()}})
        );
        return ExitCode::SUCCESS;
    }
    println!(
        "{} switches ({} spines, {} leaves, {} borders), {} tenants, {} attachments; median of {} runs\n",
        f.switches, a.spines, a.leaves, a.borders, a.tenants, f.attachments, a.runs.max(1)
    );
    println!("| step | ms |");
    println!("|---|---:|");
    println!("| allocate (empty ledger) | {:.1} |", ms(f.allocate));
    println!("| plan every switch | {:.1} |", ms(f.plan));
    println!(
        "| render FRR + Linux, every switch ({} KB) | {:.1} |",
        f.render_bytes / 1000,
        ms(f.render)
    );
    println!("| diff (nothing changed) | {:.1} |", ms(f.diff));
    println!("| **plan + render + diff** | **{:.1}** |", ms(whole));
    println!("| one tenant adds a node: allocate | {:.1} |", ms(f.change_allocate));
    println!("| … planner (validate + index) | {:.1} |", ms(f.change_setup));
    println!(
        "| … re-plan, diff, converge its {} switches ({} objects changed) | {:.2} |",
        f.change_switches,
        f.change_objects,
        ms(f.change_plan_diff_converge)
    );
    println!("| **one tenant change, whole-intent path, total** | **{:.1}** |", ms(change));
    println!(
        "| incremental planner: build (validate, allocate, index, plan every switch) | {:.1} |",
        ms(f.incremental_build)
    );
    for (what, c) in [("adds a node", &f.node), ("adds a rule into its network", &f.rule)] {
        println!(
            "| one tenant {what}, incremental: apply (validate, allocate, re-plan {}) | {:.2} |",
            switches(c.replanned),
            ms(c.apply)
        );
        let changed = match c.switches {
            1 => "the 1 switch that changed".to_string(),
            n => format!("the {n} switches that changed"),
        };
        println!(
            "| … diff + converge {changed} ({} objects) | {:.2} |",
            c.objects,
            ms(c.diff_converge)
        );
        println!("| **one tenant {what}, incremental total** | **{:.2}** |", ms(c.total()));
    }
    ExitCode::SUCCESS
}
