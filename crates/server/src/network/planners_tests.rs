//! The kept planner against a real store: reused while current, rebuilt
//! after a write it did not see (rolled back, or another replica's), kept
//! after a refused change; the stored ledger entries always the planner's.

use super::*;
use neocloud_fabric::{TenantKey, TenantObject};
use neocloud_store::testing::{fresh_store, TestBackend, TestDb};
use neocloud_store::{projects, tenants, vpcs, Store};
use serde_json::json;

struct Fixture {
    store: Store,
    _db: TestDb,
    fabric: String,
    tenant: String,
    project: String,
}

fn fixture(backend: TestBackend) -> Option<Fixture> {
    let (store, db) = fresh_store(backend)?;
    let spec: neocloud_types::FabricSpec = serde_json::from_value(json!({
        "kind": "ethernet",
        "pools": {"l2_vni": {"first": 10000, "last": 10999}, "l3_vni": {"first": 50000, "last": 50099},
                  "vlan": {"first": 100, "last": 999}, "route_target_asn": 65000,
                  "provisioning_vni": 9999, "provisioning_vlan": 4000},
        "switches": [
            {"name": "spine1", "role": "spine", "os": "frr", "mgmt_address": "10.255.0.1",
             "asn": 65000, "loopback": "10.255.0.1", "management": {"transport": "simulated"}, "fabric_ports": [{"port": "swp1", "peer": "leaf1"}]},
            {"name": "leaf1", "role": "leaf", "os": "frr", "mgmt_address": "10.255.1.1",
             "asn": 65101, "loopback": "10.255.1.1", "management": {"transport": "simulated"}, "fabric_ports": [{"port": "swp49", "peer": "spine1"}]}
        ],
        "links": []
    }))
    .expect("a fabric document");
    let (fabric, tenant, project) = store
        .write(|w| {
            let t = tenants::create(w, &serde_json::from_value(json!({"name": "acme"})).unwrap())?;
            let p =
                projects::create(w, &t.id, &serde_json::from_value(json!({"name": "p"})).unwrap())?;
            let f = fabrics::create(w, "dc1", "ethernet", &spec, "")?;
            Ok((f.id, t.id, p.id))
        })
        .unwrap();
    Some(Fixture { store, _db: db, fabric, tenant, project })
}

impl Fixture {
    /// Creates a VPC and hands the change to `planners`, in one write.
    fn add_vpc(&self, planners: &Planners, name: &str) -> Result<String> {
        self.store.write(|w| {
            let lock = fabrics::lock_intent(w, &self.fabric)?;
            let v = self.vpc_row(w, name)?;
            let (vpc, _) = intent::vpc(&v);
            planners.change(w, &self.fabric, &lock, vec![add(TenantObject::Vpc(vpc))], true)?;
            Ok(v.id)
        })
    }

    fn vpc_row(&self, w: &mut dyn Writer, name: &str) -> Result<neocloud_types::Vpc> {
        vpcs::create_vpc(
            w,
            &vpcs::NewVpc {
                tenant_id: &self.tenant,
                project_id: &self.project,
                fabric_id: &self.fabric,
                name,
                nat_gateway: false,
                description: "",
            },
        )
    }

    fn add_network(&self, planners: &Planners, vpc: &str, name: &str, cidr: &str) -> Result<()> {
        self.store.write(|w| {
            let lock = fabrics::lock_intent(w, &self.fabric)?;
            let gateway = cidr.replace(".0/24", ".1");
            let n = vpcs::create_network(w, vpc, name, cidr, &gateway)?;
            let n = intent::network(&n)?;
            planners.change(w, &self.fabric, &lock, vec![add(TenantObject::Network(n))], true)
        })
    }

    /// The L3 VNI the stored ledger gives a VPC.
    fn l3_vni(&self, vpc: &str) -> Option<u32> {
        let l = self.store.read(|r| ledger::load(r, &self.fabric)).unwrap();
        l.vpcs.get(vpc).map(|a| a.l3_vni)
    }

    /// The stored ledger equals the kept planner's, and its plan is the
    /// one `desired` serves.
    fn check_kept(&self, planners: &Planners) {
        let stored = self.store.read(|r| ledger::load(r, &self.fabric)).unwrap();
        let kept = planners.lock();
        let k = kept.get(&self.fabric).expect("a kept planner");
        assert_eq!(k.planner.allocations(), &stored);
        let token = self.store.read(|r| fabrics::get(r, &self.fabric)).unwrap().intent_token;
        assert_eq!(k.token, token, "kept under the stored token");
    }
}

fn add(o: TenantObject) -> TenantChange {
    TenantChange::Add(o)
}

#[test]
fn tenant_changes_reuse_the_kept_planner_and_write_only_their_ledger_entries() {
    for b in TestBackend::ALL {
        let Some(f) = fixture(b) else { continue };
        let p = Planners::default();
        assert!(p.verify, "debug builds compare the planner with the store");
        let v1 = f.add_vpc(&p, "one").unwrap();
        assert_eq!(p.counts().built_for_write, 1, "[{b:?}] none kept yet");
        f.check_kept(&p);
        let v2 = f.add_vpc(&p, "two").unwrap();
        f.add_network(&p, &v2, "web", "10.0.0.0/24").unwrap();
        let c = p.counts();
        assert_eq!((c.built_for_write, c.changes_applied), (1, 2), "[{b:?}] {c:?}");
        f.check_kept(&p);
        assert_ne!(f.l3_vni(&v1), f.l3_vni(&v2), "[{b:?}]");
        // The controller's read is served from the kept planner.
        let (record, desired) = f.store.read(|r| p.desired(r, &f.fabric, true)).unwrap().unwrap();
        assert_eq!(p.counts().built_for_read, 0, "[{b:?}]");
        let fresh = Planners::default();
        let (_, planned) = f.store.read(|r| fresh.desired(r, &f.fabric, true)).unwrap().unwrap();
        assert_eq!(desired, planned, "[{b:?}] the kept plan is a fresh planner's");
        let kept_plan = p.lock()[&f.fabric].planner.desired().switches.clone();
        let shared: BTreeMap<String, SwitchConfig> =
            desired.iter().map(|(n, c)| (n.clone(), (**c).clone())).collect();
        assert_eq!(shared, kept_plan, "[{b:?}] the shared plan follows the changes");
        assert_eq!(fresh.counts().built_for_read, 1, "[{b:?}]");
        assert!(record.intent_generation >= 4, "[{b:?}]");
        // Removing the VPC releases its entry, and only it.
        f.store
            .write(|w| {
                let lock = fabrics::lock_intent(w, &f.fabric)?;
                vpcs::delete_vpc(w, &v1)?;
                let gone = TenantChange::Remove(TenantKey::Vpc(v1.clone()));
                p.change(w, &f.fabric, &lock, vec![gone], true)
            })
            .unwrap();
        assert_eq!(f.l3_vni(&v1), None, "[{b:?}]");
        assert!(f.l3_vni(&v2).is_some(), "[{b:?}]");
        f.check_kept(&p);
        assert_eq!(p.counts().built_for_write, 1, "[{b:?}]");
    }
}

#[test]
fn a_change_rolled_back_after_the_planner_took_it_is_never_used() {
    for b in TestBackend::ALL {
        let Some(f) = fixture(b) else { continue };
        let p = Planners::default();
        f.add_vpc(&p, "one").unwrap();
        // The planner takes the change, then the transaction fails.
        let (vni, e) = {
            let mut seen = None;
            let e = f
                .store
                .write(|w| {
                    let lock = fabrics::lock_intent(w, &f.fabric)?;
                    let v = f.vpc_row(w, "ghost")?;
                    let (vpc, _) = intent::vpc(&v);
                    p.change(w, &f.fabric, &lock, vec![add(TenantObject::Vpc(vpc))], true)?;
                    seen = p.lock()[&f.fabric].planner.allocations().vpcs.get(&v.id).cloned();
                    Err::<(), _>(Error::conflict("something later in the request failed"))
                })
                .unwrap_err();
            (seen.expect("the planner allocated for the ghost").l3_vni, e)
        };
        assert!(matches!(e, Error::Conflict { .. }), "[{b:?}] {e:?}");
        // A reader with the older snapshot waits for the write to commit
        // (the controller); one that must answer now plans the snapshot.
        let deferred = f.store.read(|r| p.desired(r, &f.fabric, true)).unwrap();
        assert!(deferred.is_none(), "[{b:?}]");
        let now = f.store.read(|r| p.desired(r, &f.fabric, false)).unwrap();
        assert!(now.is_some() && p.counts().built_for_read == 1, "[{b:?}]");
        let v2 = f.add_vpc(&p, "two").unwrap();
        assert_eq!(p.counts().built_for_write, 2, "[{b:?}] rebuilt from the store");
        // The ghost's VNI was never recorded: the next VPC gets it.
        assert_eq!(f.l3_vni(&v2), Some(vni), "[{b:?}]");
        f.check_kept(&p);
        assert_eq!(p.lock()[&f.fabric].planner.intent().vpcs.len(), 2, "[{b:?}]");
    }
}

#[test]
fn a_write_through_another_planner_makes_this_one_stale() {
    for b in TestBackend::ALL {
        let Some(f) = fixture(b) else { continue };
        let (mine, other) = (Planners::default(), Planners::default());
        let v1 = f.add_vpc(&mine, "one").unwrap();
        // Another replica's write.
        let v2 = f.add_vpc(&other, "two").unwrap();
        let v3 = f.add_vpc(&mine, "three").unwrap();
        assert_eq!(mine.counts().built_for_write, 2, "[{b:?}]");
        let vnis = [&v1, &v2, &v3].map(|v| f.l3_vni(v).expect("allocated"));
        assert!(vnis[0] != vnis[1] && vnis[1] != vnis[2] && vnis[0] != vnis[2], "[{b:?}] {vnis:?}");
        f.check_kept(&mine);
        // A write without any planner (a whole-intent reallocation).
        f.store
            .write(|w| {
                fabrics::lock_intent(w, &f.fabric)?;
                intent::reallocate(w, &f.fabric, false).map(|_| ())
            })
            .unwrap();
        f.add_vpc(&mine, "four").unwrap();
        assert_eq!(mine.counts().built_for_write, 3, "[{b:?}]");
        f.check_kept(&mine);
    }
}

#[test]
fn a_refused_change_keeps_the_planner_and_names_the_request_field() {
    for b in TestBackend::ALL {
        let Some(f) = fixture(b) else { continue };
        let p = Planners::default();
        let v = f.add_vpc(&p, "one").unwrap();
        f.add_network(&p, &v, "web", "10.0.0.0/24").unwrap();
        let e = f.add_network(&p, &v, "db", "10.0.0.0/24").unwrap_err();
        match &e {
            Error::InvalidValue(neocloud_common::FieldError { field, message }) => {
                assert_eq!(field, "cidr", "[{b:?}]");
                assert!(!message.contains("networks["), "[{b:?}] positions named: {message}");
            }
            other => panic!("[{b:?}] {other:?}"),
        }
        f.add_network(&p, &v, "db", "10.0.1.0/24").unwrap();
        let c = p.counts();
        assert_eq!((c.built_for_write, c.changes_refused, c.changes_applied), (1, 1, 2), "{c:?}");
        f.check_kept(&p);
    }
}

#[test]
fn an_older_releases_whole_ledger_is_moved_into_entries() {
    for b in TestBackend::ALL {
        let Some(f) = fixture(b) else { continue };
        let p = Planners::default();
        let v = f.add_vpc(&p, "one").unwrap();
        f.add_network(&p, &v, "web", "10.0.0.0/24").unwrap();
        let before = f.store.read(|r| ledger::load(r, &f.fabric)).unwrap();
        assert!(!before.vpcs.is_empty() && !before.networks.is_empty(), "[{b:?}]");
        // As an older release left it: whole in the fabric's row.
        f.store
            .write(|w| {
                let all: Vec<(String, Option<String>)> =
                    before.entries().into_iter().map(|(k, _)| (k.to_string(), None)).collect();
                fabrics::write_ledger_entries(w, &f.fabric, &all)?;
                fabrics::set_ledger(w, &f.fabric, &serde_json::to_string(&before).unwrap())
            })
            .unwrap();
        assert_eq!(f.store.read(|r| ledger::load(r, &f.fabric)).unwrap(), Default::default());
        assert_eq!(f.store.write(ledger::move_whole_ledgers).unwrap(), 1, "[{b:?}]");
        assert_eq!(f.store.read(|r| ledger::load(r, &f.fabric)).unwrap(), before, "[{b:?}]");
        assert_eq!(f.store.read(|r| fabrics::get(r, &f.fabric)).unwrap().ledger, "", "[{b:?}]");
        assert_eq!(f.store.write(ledger::move_whole_ledgers).unwrap(), 0, "[{b:?}] once");
    }
}
