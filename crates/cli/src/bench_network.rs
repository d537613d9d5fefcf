//! `neocloud bench network`: tenant-network writes through the real API at
//! fabric scale. One process runs the server (fresh SQLite store) and the
//! clients. The fabric is `neocloud bench fabric`'s shape (spines, leaves,
//! borders), its switches unmanaged so that only the API path is measured
//! (the fabric controller's pushes are the lab's figure); placement-only
//! nodes, one per leaf port used.
//!
//! Every tenant gets a VPC and a network on the same range (10.0.0.0/16)
//! and `--nodes-per-tenant` attached instances; the measured tenant has
//! `--spread` attached instances, each on its own leaf, and one more
//! instance on a leaf of its own. Then, `--runs` times each, the measured
//! tenant:
//! - attaches that instance (one leaf changes) and detaches it;
//! - adds a security rule into its network from a second network of its
//!   VPC (a policy on each of its `--spread` leaves) and deletes it;
//! - reads its VPC and an attachment.
//!
//! Each figure is the median latency of the API call as the client sees it
//! (loopback HTTP, authentication, authorization, the write transaction
//! with its audit event, and the fabric's kept planner validating,
//! allocating and re-planning what the change reaches).

use crate::bench_api::{catalog, parallel, tenant, Api};
use neocloud_server::Config;
use serde_json::{json, Value};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct NetworkArgs {
    #[arg(long, default_value_t = 980)]
    leaves: usize,
    #[arg(long, default_value_t = 16)]
    spines: usize,
    #[arg(long, default_value_t = 4)]
    borders: usize,
    /// Tenants besides the measured one.
    #[arg(long, default_value_t = 1000)]
    tenants: usize,
    /// Attached instances per tenant (each on a node of its own).
    #[arg(long, default_value_t = 2)]
    nodes_per_tenant: usize,
    /// The measured tenant's attached instances, each on a different leaf.
    #[arg(long, default_value_t = 49)]
    spread: usize,
    /// Runs per figure (the median is reported).
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Client threads for the setup.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// The fabric controller's tick (`fabric_interval_ms`; woken by every
    /// write besides; 0 keeps it off, leaving the API path alone).
    #[arg(long, default_value_t = 5000)]
    fabric_interval_ms: u64,
    /// Print JSON instead of a Markdown table.
    #[arg(long)]
    json: bool,
}

const MEASURED: &str = "/v1/tenants/measured/projects/p";

fn leaf(l: usize) -> String {
    format!("leaf{l}")
}

fn switch(name: &str, role: &str, n: usize, ports: Vec<Value>) -> Value {
    let lo = format!("10.{}.{}.{}", 1 + n / 65536, (n / 256) % 256, n % 256);
    json!({"name": name, "role": role, "os": "frr", "mgmt_address": lo, "loopback": lo,
           "asn": 4_200_000_000u64 + n as u64, "fabric_ports": ports,
           "management": {"transport": "none"}})
}

/// The fabric document: every node `nodes[i]` on `(leaf, port)`.
fn document(a: &NetworkArgs, nodes: &[(String, usize, usize)]) -> Value {
    let below = a.leaves + a.borders;
    let mut switches = Vec::new();
    for s in 0..a.spines {
        let ports: Vec<Value> =
            (0..below).map(|l| json!({"port": format!("swp{}", l + 1), "peer": leaf(l)})).collect();
        let mut sw = switch(&format!("spine{s}"), "spine", s, ports);
        sw["asn"] = json!(65000);
        switches.push(sw);
    }
    for l in 0..below {
        let ports: Vec<Value> = (0..a.spines)
            .map(|s| json!({"port": format!("up{s}"), "peer": format!("spine{s}")}))
            .collect();
        let role = if l >= a.leaves { "border" } else { "leaf" };
        switches.push(switch(&leaf(l), role, 1000 + l, ports));
    }
    let links: Vec<Value> = nodes
        .iter()
        .map(|(n, l, p)| {
            json!({"node": n, "nic": "eth0", "switch": leaf(*l), "port": format!("swp{}", p + 1)})
        })
        .collect();
    json!({
        "kind": "ethernet",
        "pools": {"l2_vni": {"first": 10000, "last": 999999}, "l3_vni": {"first": 1000000, "last": 1999999},
                  "vlan": {"first": 2, "last": 3999}, "route_target_asn": 65000,
                  "provisioning_vni": 9000000, "provisioning_vlan": 4000},
        "switches": switches,
        "links": links,
    })
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v.get(v.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn timed(f: impl FnOnce() -> Result<Value, String>) -> Result<(Duration, Value), String> {
    let t = Instant::now();
    let v = f()?;
    Ok((t.elapsed(), v))
}

struct Figures {
    setup_secs: f64,
    document_ms: f64,
    attachments: usize,
    attach_ms: f64,
    detach_ms: f64,
    rule_ms: f64,
    rule_delete_ms: f64,
    read_vpc_ms: f64,
    read_attachment_ms: f64,
    metrics: Vec<String>,
}

/// Creates placement-only nodes `names`.
fn create_nodes(base: &str, token: &str, clients: usize, names: Vec<String>) -> Result<(), String> {
    let (done, _) = parallel(base, token, clients, names.len(), move |api, i| {
        api.must(
            "POST",
            "/v1/nodes",
            &json!({"name": names[i], "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                    "gpu_model": "h100-80gb", "gpus": 8}),
        )
        .map(|_| ())
    });
    done.into_iter().collect()
}

fn instances(api: &Api, base: &str, count: usize) -> Result<Vec<String>, String> {
    let r = api.must(
        "POST",
        &format!("{base}/instances"),
        &json!({"name": "i", "instance_type": "bm", "count": count, "image": "os"}),
    )?;
    let ids: Vec<String> = r["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["id"].as_str().map(String::from)).collect())
        .unwrap_or_default();
    match ids.len() == count {
        true => Ok(ids),
        false => Err(format!("{count} instances asked, answered {r}")),
    }
}

fn vpc(api: &Api, base: &str) -> Result<(), String> {
    api.must("POST", &format!("{base}/vpcs"), &json!({"name": "main"}))?;
    api.must(
        "POST",
        &format!("{base}/vpcs/main/networks"),
        &json!({"name": "web", "cidr": "10.0.0.0/16"}),
    )?;
    Ok(())
}

fn attach(api: &Api, base: &str, instance: &str) -> Result<Value, String> {
    api.must(
        "POST",
        &format!("{base}/vpcs/main/networks/web/attachments"),
        &json!({"instance": instance}),
    )
}

fn measure(a: &NetworkArgs, base: &str, token: &str) -> Result<Figures, String> {
    let api = Api::new(base, token);
    let started = Instant::now();
    catalog(&api, "bm", ["os", "sanitizer"])?;
    // The measured tenant's nodes first (it takes them all): node k on
    // leaf k, port 0; the others from port 1 on, round the leaves.
    let mut cabling: Vec<(String, usize, usize)> =
        (0..=a.spread).map(|k| (format!("m{k}"), k, 0)).collect();
    let names: Vec<String> = cabling.iter().map(|(n, _, _)| n.clone()).collect();
    create_nodes(base, token, a.clients, names)?;
    tenant(&api, "measured", a.spread + 1)?;
    let mine = instances(&api, MEASURED, a.spread + 1)?;
    let others = a.tenants * a.nodes_per_tenant;
    let names: Vec<String> = (0..others).map(|i| format!("n{i}")).collect();
    for (i, n) in names.iter().enumerate() {
        cabling.push((n.clone(), i % a.leaves, 1 + i / a.leaves));
    }
    create_nodes(base, token, a.clients, names)?;
    let per = a.nodes_per_tenant;
    let (made, _) = parallel(base, token, a.clients, a.tenants, move |api, t| {
        let name = format!("t{t:04}");
        tenant(api, &name, per)?;
        instances(api, &format!("/v1/tenants/{name}/projects/p"), per)
    });
    let theirs: Vec<Vec<String>> = made.into_iter().collect::<Result<_, _>>()?;
    // Node names became ids in the document: its links name nodes by name.
    let doc = document(a, &cabling);
    let (doc_time, _) = timed(|| api.must("PUT", "/v1/fabrics/bench", &doc))?;
    vpc(&api, MEASURED)?;
    // The measured tenant's nodes: which instance is on which leaf.
    let on_leaf = |id: &str| -> Result<usize, String> {
        let i = api.get(&format!("{MEASURED}/instances/{id}"))?;
        let n = api.get(&format!("/v1/nodes/{}", i["node_id"].as_str().unwrap_or_default()))?;
        let node = n["name"].as_str().unwrap_or_default().to_string();
        node.strip_prefix('m')
            .and_then(|k| k.parse().ok())
            .ok_or_else(|| format!("instance {id} on node {node:?}: {i}"))
    };
    let mut by_leaf: Vec<(usize, String)> =
        mine.iter().map(|id| on_leaf(id).map(|l| (l, id.clone()))).collect::<Result<_, _>>()?;
    by_leaf.sort();
    let (spare_leaf, spare) = by_leaf.pop().ok_or("no instance")?;
    for (_, id) in &by_leaf {
        attach(&api, MEASURED, id)?;
    }
    let (done, _) = parallel(base, token, a.clients, a.tenants, move |api, t| {
        let b = format!("/v1/tenants/t{t:04}/projects/p");
        vpc(api, &b)?;
        theirs[t].iter().try_for_each(|id| attach(api, &b, id).map(|_| ()))
    });
    done.into_iter().collect::<Result<Vec<()>, String>>()?;
    let setup_secs = started.elapsed().as_secs_f64();
    debug_assert!(spare_leaf == a.spread);

    api.must(
        "POST",
        &format!("{MEASURED}/vpcs/main/networks"),
        &json!({"name": "b", "cidr": "10.1.0.0/16"}),
    )?;
    let (mut attach_t, mut detach_t, mut rule_t, mut unrule_t) = (vec![], vec![], vec![], vec![]);
    let (mut vpc_t, mut att_t) = (vec![], vec![]);
    for _ in 0..a.runs.max(1) {
        let (t, att) = timed(|| attach(&api, MEASURED, &spare))?;
        attach_t.push(t);
        let path = format!(
            "{MEASURED}/vpcs/main/networks/web/attachments/{}",
            att["id"].as_str().unwrap_or_default()
        );
        let (t, _) = timed(|| api.get(&path))?;
        att_t.push(t);
        let (t, _) = timed(|| api.get(&format!("{MEASURED}/vpcs/main")))?;
        vpc_t.push(t);
        let (t, _) = timed(|| api.delete(&path))?;
        detach_t.push(t);
        let rule = json!({"from": "b", "to": "web", "protocol": "tcp",
                          "ports": {"first": 22, "last": 22}});
        let (t, r) = timed(|| api.must("POST", &format!("{MEASURED}/vpcs/main/rules"), &rule))?;
        rule_t.push(t);
        let rpath = format!("{MEASURED}/vpcs/main/rules/{}", r["id"].as_str().unwrap_or_default());
        let (t, _) = timed(|| api.delete(&rpath))?;
        unrule_t.push(t);
    }
    let metrics = api
        .text("/metrics")
        .lines()
        .filter(|l| l.starts_with("neocloud_fabric_planner_"))
        .map(String::from)
        .collect();
    Ok(Figures {
        setup_secs,
        document_ms: doc_time.as_secs_f64() * 1000.0,
        attachments: a.spread + a.tenants * a.nodes_per_tenant,
        attach_ms: median(attach_t),
        detach_ms: median(detach_t),
        rule_ms: median(rule_t),
        rule_delete_ms: median(unrule_t),
        read_vpc_ms: median(vpc_t),
        read_attachment_ms: median(att_t),
        metrics,
    })
}

pub fn run(a: NetworkArgs) -> ExitCode {
    if a.leaves <= a.spread || a.spines == 0 || a.clients == 0 || a.spread == 0 {
        eprintln!(
            "error: --spread must be positive and below --leaves; --spines and --clients positive"
        );
        return ExitCode::from(crate::output::EXIT_USAGE);
    }
    if std::env::var_os("NEOCLOUD_BENCH_LOG").is_some() {
        neocloud_server::init_logging(neocloud_server::LogFormat::Text);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let dir =
        std::env::temp_dir().join(format!("neocloud-bench-net-{}", neocloud_common::new_id()));
    let config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.clone(),
        rate_limit_per_sec: 0,
        anonymous_rate_limit_per_sec: 0,
        // A 1,000-switch document is larger than the default limit.
        max_body_bytes: 64 << 20,
        // Placement-only nodes: nothing for the lifecycle to step.
        lifecycle_interval_ms: 0,
        fabric_interval_ms: a.fabric_interval_ms,
        ..Config::default()
    };
    let (server, base, token) = match crate::bench_api::bind(&rt, config) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let cancel = server.cancel_token();
    let served = rt.spawn(server.run());
    let result = measure(&a, &base, &token);
    cancel.cancel();
    rt.block_on(async {
        let _ = served.await;
    });
    rt.shutdown_timeout(Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(&dir);
    let f = match result {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if a.json {
        println!(
            "{}",
            json!({"switches": a.spines + a.leaves + a.borders, "tenants": a.tenants + 1,
                   "attachments": f.attachments, "setup_secs": f.setup_secs,
                   "document_ms": f.document_ms, "attach_ms": f.attach_ms,
                   "detach_ms": f.detach_ms, "rule_ms": f.rule_ms,
                   "rule_delete_ms": f.rule_delete_ms, "read_vpc_ms": f.read_vpc_ms,
                   "read_attachment_ms": f.read_attachment_ms, "planner": f.metrics})
        );
        return ExitCode::SUCCESS;
    }
    println!(
        "{} switches, {} tenants, {} attachments (setup {:.0} s); medians of {} runs\n",
        a.spines + a.leaves + a.borders,
        a.tenants + 1,
        f.attachments,
        f.setup_secs,
        a.runs
    );
    println!("| API call | ms |");
    println!("|---|---:|");
    println!("| PUT the fabric document (planner built: validate, allocate, plan every switch) | {:.1} |", f.document_ms);
    println!("| attach an instance on a new leaf (1 switch changes) | {:.2} |", f.attach_ms);
    println!("| detach it | {:.2} |", f.detach_ms);
    println!(
        "| add a rule into the tenant's network ({} switches change) | {:.2} |",
        a.spread, f.rule_ms
    );
    println!("| delete the rule | {:.2} |", f.rule_delete_ms);
    println!("| read the VPC | {:.2} |", f.read_vpc_ms);
    println!("| read an attachment | {:.2} |", f.read_attachment_ms);
    println!();
    for m in &f.metrics {
        println!("    {m}");
    }
    ExitCode::SUCCESS
}
