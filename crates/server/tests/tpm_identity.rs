//! A node's TPM identity: the control plane's `TPM2_MakeCredential`
//! against a real TPM 2.0 (swtpm), which alone can activate it; then the
//! protocol end to end against the sushy-tools Redfish emulator on both
//! stores, the test playing the node (its iPXE script, then the agent
//! library over simulated hardware with a real software TPM). Skipped
//! loudly where swtpm, tpm2-tools or the emulator is missing; CI fails
//! instead.

mod bm;
mod common;
#[path = "../../redfish/tests/common/mod.rs"]
mod peers;
#[path = "../../agent/tests/swtpm/mod.rs"]
mod swtpm;

use bm::*;
use common::nodes::{node, wait_node};
use common::{Client, TestBackend};
use neocloud_agent::tpm_identity::{EkKind, TpmIdentity};
use neocloud_agent::{Exit, Hardware, Simulated, SimulatedConfig};
use neocloud_server::ek_certificate::{EkKey, EkTrust};
use neocloud_server::tpm_identity::{make_credential, name_of, parse_ak, parse_ek, EkPublic};
use serde_json::json;
use std::sync::Arc;
use swtpm::{Manufacturer, Swtpm};

/// Simulated hardware (no GPUs, as the emulator's systems) with a real TPM.
fn with_tpm(seed: &str, tpm: &Swtpm) -> Arc<dyn Hardware> {
    let mut c = SimulatedConfig::new(seed);
    c.gpu_count = 0;
    c.tpm = Some(tpm.path());
    Arc::new(Simulated::new(c))
}

/// The name (hex) of the TPM's endorsement key, as the control plane pins it.
fn ek_name(tpm: &Swtpm) -> String {
    let id = TpmIdentity::open(&tpm.path()).unwrap();
    hex::encode(name_of(&id.ek_public))
}

/// The TPM's EK and agent key public areas (hex), as an agent sends them.
fn public_areas(tpm: &Swtpm) -> (String, String) {
    let id = TpmIdentity::open(&tpm.path()).unwrap();
    (hex::encode(&id.ek_public), hex::encode(&id.ak_public))
}

/// The node failed its sanitization for the `tpm_identity` check: the
/// sanitizer revoked, instance `id`'s record incomplete, the check failed
/// saying `says`.
fn failed_for_tpm_identity(
    s: &common::TestServer,
    tenant: &Client,
    id: &str,
    sanitizer: Running,
    says: &str,
) {
    let b = s.backend.as_str();
    let l = wait_node(s, "bm-1", "failed", None);
    assert!(l["reason"].as_str().unwrap().contains("tpm_identity"), "[{b}] {l}");
    assert_eq!(exit_of(sanitizer), Exit::Revoked, "[{b}]");
    let rec = &records(tenant, id)[0];
    assert_eq!(rec["body"]["complete"], false, "[{b}] {rec}");
    let c = check(rec, "tpm_identity");
    assert_eq!(c["ok"], false, "[{b}] {c}");
    assert!(c.to_string().contains(says), "[{b}] {c}");
}

fn pinned(s: &common::TestServer) -> Option<String> {
    let rows = s.store.read(|r| r.query("SELECT tpm_ek_name FROM nodes", &[])).unwrap();
    rows[0].opt_str(0).unwrap()
}

#[test]
fn the_first_sanitizer_records_the_nodes_tpm_and_every_later_agent_must_prove_it() {
    let Some(emu) = peers::Emulator::start(1) else { return };
    let Some(node_tpm) = Swtpm::start() else { return };
    let Some(other_tpm) = Swtpm::start() else { return };
    let (mine, theirs) = (ek_name(&node_tpm), ek_name(&other_tpm));
    for b in TestBackend::ALL {
        let Some(mut s) = server(b, 30) else { continue };
        let b = b.as_str();
        let tenant = setup(&s, &emu, 1);
        let node_id = node(&s, "bm-1")["id"].as_str().unwrap().to_string();
        let trail = |s: &common::TestServer| actions(s, &format!("/{node_id}"));
        // Its previous owner locked the endorsement hierarchy: the first
        // sanitizer proves the identity only after it cleared the TPM.
        node_tpm.tool("changeauth", &["-c", "endorsement", "previous-owner"]);

        // Nothing on record: a tenant's image is not trusted to record it
        // (its proof is refused, unaudited), and the node is handed over.
        let first = create(&tenant, "first")["id"].as_str().unwrap().to_string();
        let agent = spawn(boot(&s, 1, TENANT_KERNEL, with_tpm("n1", &node_tpm)));
        wait_node(&s, "bm-1", "active", None);
        assert_eq!(pinned(&s), None, "[{b}]");
        release(&tenant, &first).expect(202);
        // The first sanitizer proves it and records it.
        let sanitizer = spawn(boot(&s, 1, SANITIZER_KERNEL, with_tpm("n1-san", &node_tpm)));
        assert_eq!(exit_of(agent), Exit::Revoked, "[{b}]");
        wait_node(&s, "bm-1", "available", None);
        assert_eq!(exit_of(sanitizer), Exit::Revoked, "[{b}]");
        assert_eq!(pinned(&s).as_deref(), Some(mine.as_str()), "[{b}]");
        let rec = &records(&tenant, &first)[0];
        assert_eq!(rec["body"]["complete"], true, "[{b}] {rec}");
        let c = check(rec, "tpm_identity");
        assert_eq!(c["ok"], true, "[{b}] {c}");
        assert!(c.to_string().contains(&mine), "[{b}] {c}");
        assert_eq!(times(&trail(&s), "node_tpm_identity_pinned"), 1, "[{b}]");
        assert_eq!(times(&trail(&s), "agent_tpm_identity"), 0, "[{b}]");
        let hw = s.admin().get("/v1/nodes/bm-1/hardware").expect(200).body;
        assert_eq!(hw["tpm_identity"], mine.as_str(), "[{b}] {hw}");
        assert!(hw.get("tpm_identity_certified_by").is_none(), "[{b}] trusted on first use: {hw}");
        assert_eq!(hw["tpm_identity_recorded_by"], "first_sanitizer", "[{b}] {hw}");
        assert!(!c.to_string().contains("certified by"), "[{b}] {c}");
        assert_eq!(hw["agent"]["tpm_identity"], mine.as_str(), "[{b}] the sanitizer's: {hw}");

        // The next tenant's agent proves it; forged or malformed proofs
        // are refused, naming the field.
        let second = create(&tenant, "second")["id"].as_str().unwrap().to_string();
        let agent = boot(&s, 1, TENANT_KERNEL, with_tpm("n1", &node_tpm));
        let as_agent = s.client(agent.credential());
        let keys = public_areas(&node_tpm);
        let r = as_agent
            .post(
                "/agent/v1/identity",
                &json!({"ek_public": keys.0, "ak_public": keys.1, "activation": "00".repeat(32)}),
            )
            .expect(422);
        assert!(r.text.contains("activation"), "[{b}] {}", r.text);
        let r = as_agent
            .post(
                "/agent/v1/identity/challenge",
                &json!({"ek_public": keys.1, "ak_public": keys.1}),
            )
            .expect(422);
        assert!(r.text.contains("ek_public"), "[{b}] {}", r.text);
        s.anonymous()
            .post(
                "/agent/v1/identity/challenge",
                &json!({"ek_public": keys.0, "ak_public": keys.1}),
            )
            .expect(401);
        let agent = spawn(agent);
        wait_node(&s, "bm-1", "active", None);
        // The forged proof (refused) and the agent's own.
        assert_eq!(times(&trail(&s), "agent_tpm_identity"), 2, "[{b}] {:?}", trail(&s));

        // The tenant's root sets the endorsement hierarchy's authorization
        // (its right while the node is its own), then rebuilds: the new
        // image's agent cannot prove the identity, and the handover does
        // not wait for it (the node holds the tenant's own data).
        node_tpm.tool("changeauth", &["-c", "endorsement", "tenant-pw"]);
        tenant.post(&format!("{INSTANCES}/{second}/rebuild"), &json!({})).expect(202);
        wait_node(&s, "bm-1", "provisioning", None);
        assert_eq!(exit_of(agent), Exit::Revoked, "[{b}] the old OS's agent");
        let agent = spawn(boot(&s, 1, TENANT_KERNEL, with_tpm("n1", &node_tpm)));
        wait_node(&s, "bm-1", "active", None);
        assert_eq!(times(&trail(&s), "agent_tpm_identity"), 2, "[{b}] no proof this time");
        release(&tenant, &second).expect(202);

        // A sanitizer on another machine (it read the node's token): its
        // reports are not the node's. The record is incomplete, the node
        // failed, not available.
        let sanitizer = spawn(boot(&s, 1, SANITIZER_KERNEL, with_tpm("n1-san", &other_tpm)));
        assert_eq!(exit_of(agent), Exit::Revoked, "[{b}]");
        failed_for_tpm_identity(&s, &tenant, &second, sanitizer, "did not prove");
        assert_eq!(pinned(&s).as_deref(), Some(mine.as_str()), "[{b}] not re-pinned to {theirs}");
        let refused = trail(&s);
        assert_eq!(times(&refused, "agent_tpm_identity"), 3, "[{b}] {refused:?}");

        // The provider replaced the node's TPM (say): it forgets the one
        // on record, and the next sanitizer, on the new one, records it.
        s.admin().post("/v1/nodes/bm-1/inspect", &json!({"forget_tpm_identity": true})).expect(202);
        assert_eq!(pinned(&s), None, "[{b}]");
        let sanitizer = spawn(boot(&s, 1, SANITIZER_KERNEL, with_tpm("n1-san", &other_tpm)));
        wait_node(&s, "bm-1", "available", None);
        assert_eq!(exit_of(sanitizer), Exit::Revoked, "[{b}]");
        assert_eq!(pinned(&s).as_deref(), Some(theirs.as_str()), "[{b}]");

        // A tenant's image booted elsewhere (the old TPM's machine, its
        // endorsement hierarchy open) with the token: refused, never handed
        // over; the node fails at the boot deadline, saying why.
        node_tpm.tool("changeauth", &["-c", "endorsement", "-p", "tenant-pw"]);
        s.restart_with(|c| tweak(c, 4));
        let tenant = s.client(tenant.token.as_deref().unwrap());
        let third = create(&tenant, "third")["id"].as_str().unwrap().to_string();
        let refused = times(&trail(&s), "agent_tpm_identity");
        let agent = spawn(boot(&s, 1, TENANT_KERNEL, with_tpm("n1", &node_tpm)));
        let l = wait_node(&s, "bm-1", "failed", None);
        assert_eq!(times(&trail(&s), "agent_tpm_identity"), refused + 1, "[{b}] its refusal");
        // Counted since the restart: that refusal alone.
        let m = s.anonymous().get("/metrics").expect(200).text;
        for (outcome, n) in [("proven", 0), ("pinned", 0), ("refused", 1)] {
            let line = format!("neocloud_agent_tpm_identity_total{{outcome=\"{outcome}\"}} {n}\n");
            assert!(m.contains(&line), "[{b}] {line} in {m}");
        }
        assert_eq!(l["from"], "provisioning", "[{b}] {l}");
        assert!(
            l["reason"].as_str().unwrap().contains("an agent proving the node's TPM identity"),
            "[{b}] {l}"
        );
        let i = instance(&tenant, &third);
        assert_ne!(i["state"], "ready", "[{b}] {i}");
        stop(agent);
    }
}

#[test]
fn the_control_planes_credential_is_activated_by_that_tpm_alone() {
    let Some(tpm) = Swtpm::start() else { return };
    let Some(elsewhere) = Swtpm::start() else { return };
    let mut id = TpmIdentity::open(&tpm.path()).unwrap();
    let ek = parse_ek(&id.ek_public).unwrap();
    let ak = parse_ak(&id.ak_public).unwrap();
    // The names the control plane computes are the TPM's.
    assert_eq!(ak.name, id.ak_name);
    assert_eq!(ek.name(), id.ek_name);
    assert_eq!(name_of(&id.ak_public), id.ak_name);
    for round in 0..3 {
        let secret = [round as u8 + 1; 32];
        let (blob, enc) = make_credential(&ek, &ak.name, &secret).unwrap();
        assert_eq!(id.activate(&blob, &enc).unwrap(), secret, "round {round}");
    }
    // A credential for another machine's EK, or another key's name, or
    // one whose blob was changed in transit: refused by the TPM.
    let other = TpmIdentity::open(&elsewhere.path()).unwrap();
    let other_ek = parse_ek(&other.ek_public).unwrap();
    let (blob, enc) = make_credential(&other_ek, &ak.name, b"secret").unwrap();
    assert!(id.activate(&blob, &enc).is_err());
    let (blob, enc) = make_credential(&ek, &other.ak_name, b"secret").unwrap();
    assert!(id.activate(&blob, &enc).is_err());
    let (mut blob, enc) = make_credential(&ek, &ak.name, b"secret").unwrap();
    *blob.last_mut().unwrap() ^= 1;
    assert!(id.activate(&blob, &enc).is_err());

    // Public areas that are not the profile's EK or a fixed signing key
    // are refused before anything is made.
    assert!(parse_ek(&id.ak_public).is_err());
    assert!(parse_ak(&id.ek_public).is_err());
    let mut truncated = id.ek_public.clone();
    truncated.pop();
    assert!(parse_ek(&truncated).is_err());
}

#[test]
fn a_node_enrolled_with_its_tpm_identity_is_known_by_it_from_the_start() {
    let Some(emu) = peers::Emulator::start(1) else { return };
    let Some(node_tpm) = Swtpm::start() else { return };
    let Some(other_tpm) = Swtpm::start() else { return };
    let mine = ek_name(&node_tpm);
    for b in TestBackend::ALL {
        let Some(s) = server(b, 4) else { continue };
        let b = b.as_str();
        let tenant = catalog(&s, true);
        let enroll = |tpm_identity: &str| {
            s.admin().post(
                "/v1/nodes",
                &json!({"name": "bm-1", "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                        "gpu_model": "h100-80gb", "gpus": 8,
                        "nics": [{"name": "eno1", "rail": 0, "fabric": "prov", "switch": "leaf1",
                                  "port": "p1", "mac": peers::fake_mac(1)}],
                        "bmc": {"endpoint": emu.url, "username": "admin", "password": "pw"},
                        "tpm_identity": tpm_identity}),
            )
        };
        // Not an endorsement key's name: refused, naming the field, and
        // nothing enrolled.
        for bad in ["000b", "zz", &mine[4..], &format!("0004{}", &mine[4..])] {
            let r = enroll(bad).expect(422);
            assert!(r.text.contains("tpm_identity"), "[{b}] {bad}: {}", r.text);
        }
        assert!(s.admin().get("/v1/nodes").expect(200).body["items"]
            .as_array()
            .unwrap()
            .is_empty());
        enroll(&mine.to_uppercase()).expect(201);
        wait_node(&s, "bm-1", "available", None);
        let hw = s.admin().get("/v1/nodes/bm-1/hardware").expect(200).body;
        assert_eq!(hw["tpm_identity"], mine.as_str(), "[{b}] {hw}");
        assert_eq!(hw["tpm_identity_recorded_by"], "provider", "[{b}] {hw}");

        // No sanitizer has run on it, yet a tenant image's agent on another
        // machine is not handed the node.
        create(&tenant, "job");
        let agent = spawn(boot(&s, 1, TENANT_KERNEL, with_tpm("n1", &other_tpm)));
        let l = wait_node(&s, "bm-1", "failed", None);
        assert!(
            l["reason"].as_str().unwrap().contains("an agent proving the node's TPM identity"),
            "[{b}] {l}"
        );
        stop(agent);
    }
}

/// Standard base64 (for a PEM block).
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from_be_bytes([0, b[0], b[1], b[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The EK's public point, as the control plane parses it.
fn point(tpm: &Swtpm) -> (Vec<u8>, Vec<u8>) {
    let id = TpmIdentity::open_with(&tpm.path(), Some(EkKind::Ecc)).unwrap();
    match parse_ek(&id.ek_public).unwrap() {
        EkPublic::Ecc(ek) => (ek.x, ek.y),
        other => panic!("the P-256 EK, not {other:?}"),
    }
}

#[test]
fn an_endorsement_key_certificate_counts_from_a_maker_the_provider_trusts() {
    let Some(tpm) = Swtpm::start() else { return };
    let Some(elsewhere) = Swtpm::start() else { return };
    let (maker, other_maker) = (Manufacturer::new("maker-a"), Manufacturer::new("maker-b"));
    let (x, y) = point(&tpm);
    let cert = maker.certify(&tpm, &x, &y);
    let (ox, oy) = point(&elsewhere);
    let other_cert = other_maker.certify(&elsewhere, &ox, &oy);
    let trust = EkTrust::from_pem(&maker.ca_pem()).unwrap();
    let now = neocloud_common::time::now_micros();

    // The maker's certificate of this EK: certified, naming the CA.
    assert_eq!(
        trust.certifies(&cert, &[], &EkKey::P256 { x: &x, y: &y }, now).unwrap(),
        "CN=swtpm-localca"
    );
    // Another EK (another machine's TPM) with this certificate.
    let e = trust.certifies(&cert, &[], &EkKey::P256 { x: &ox, y: &oy }, now).unwrap_err();
    assert!(e.contains("another key"), "{e}");
    // Another maker's CA of the same name: its signature does not verify.
    let e = trust.certifies(&other_cert, &[], &EkKey::P256 { x: &ox, y: &oy }, now).unwrap_err();
    assert!(e.contains("does not verify"), "{e}");
    // Trusted by the other maker's CAs alone: the same.
    let theirs = EkTrust::from_pem(&other_maker.ca_pem()).unwrap();
    assert!(theirs.certifies(&other_cert, &[], &EkKey::P256 { x: &ox, y: &oy }, now).is_ok());
    assert!(theirs
        .certifies(&cert, &[], &EkKey::P256 { x: &x, y: &y }, now)
        .unwrap_err()
        .contains("does not verify"));
    // The root alone: the intermediate that signed it is not trusted...
    let root_only = EkTrust::from_pem(&maker.root_pem()).unwrap();
    let e = root_only.certifies(&cert, &[], &EkKey::P256 { x: &x, y: &y }, now).unwrap_err();
    assert!(e.contains("not among the provider's") && e.contains("CN=swtpm-localca"), "{e}");
    // ...unless the TPM's chain holds it (the maker wrote it beside the
    // EK's certificate): certified by the root, through it.
    let intermediate = maker.write_chain(&tpm);
    let ca = root_only
        .certifies(&cert, std::slice::from_ref(&intermediate), &EkKey::P256 { x: &x, y: &y }, now)
        .unwrap();
    assert_eq!(ca, "CN=swtpm-localca-rootca");
    // Another maker's intermediate of the same name does not lead there.
    let theirs_intermediate = other_maker.write_chain(&elsewhere);
    let e = root_only
        .certifies(&cert, &[theirs_intermediate], &EkKey::P256 { x: &x, y: &y }, now)
        .unwrap_err();
    assert!(e.contains("does not verify") && e.contains("of the TPM's chain"), "{e}");
    // A link that is not a CA (the EK's own certificate) is no link.
    let e = root_only
        .certifies(&cert, std::slice::from_ref(&cert), &EkKey::P256 { x: &x, y: &y }, now)
        .unwrap_err();
    assert!(e.contains("not among the provider's"), "{e}");
    // Past its validity, the intermediate leads nowhere.
    let e =
        root_only.certifies(&cert, &[intermediate], &EkKey::P256 { x: &x, y: &y }, 0).unwrap_err();
    assert!(e.contains("not valid before"), "{e}");

    // The bundle: a certificate that is not a CA is skipped, saying why;
    // a bundle of nothing usable is refused.
    let ek_pem =
        format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", base64(&cert));
    let mixed = EkTrust::from_pem(&format!("{ek_pem}{}", maker.ca_pem())).unwrap();
    assert_eq!(mixed.skipped.len(), 1, "{:?}", mixed.skipped);
    assert!(mixed.skipped[0].contains("certificate 1: not a CA"), "{:?}", mixed.skipped);
    assert!(mixed.certifies(&cert, &[], &EkKey::P256 { x: &x, y: &y }, now).is_ok());
    let e = EkTrust::from_pem(&ek_pem).unwrap_err();
    assert!(e.contains("no certificate it holds can be used"), "{e}");
    // A byte of the signature changed in transit.
    let mut forged = cert.clone();
    *forged.last_mut().unwrap() ^= 1;
    assert!(trust
        .certifies(&forged, &[], &EkKey::P256 { x: &x, y: &y }, now)
        .unwrap_err()
        .contains("does not verify"));
    // A byte of the signed part changed (the key's y, say): another key.
    let at = cert.windows(y.len()).position(|w| w == y).unwrap();
    let mut forged = cert.clone();
    forged[at] ^= 1;
    let mut forged_y = y.clone();
    forged_y[0] ^= 1;
    let e = trust.certifies(&forged, &[], &EkKey::P256 { x: &x, y: &forged_y }, now).unwrap_err();
    assert!(e.contains("does not verify"), "{e}");
    // Out of its validity (the maker's: from its making to 9999).
    let e = trust.certifies(&cert, &[], &EkKey::P256 { x: &x, y: &y }, 0).unwrap_err();
    assert!(e.contains("not valid before"), "{e}");
    let e = trust
        .certifies(&cert, &[], &EkKey::P256 { x: &x, y: &y }, 253_402_300_800_000_000)
        .unwrap_err();
    assert!(e.contains("expired at 9999-12-31T23:59:59"), "{e}");
    // Not a certificate; trailing bytes.
    assert!(trust
        .certifies(b"\x30\x03\x02\x01", &[], &EkKey::P256 { x: &x, y: &y }, now)
        .unwrap_err()
        .contains("X.509"));
    let mut long = cert.clone();
    long.push(0);
    assert!(trust
        .certifies(&long, &[], &EkKey::P256 { x: &x, y: &y }, now)
        .unwrap_err()
        .contains("after the certificate"));

    // The server refuses a configuration whose bundle is not certificates,
    // naming the field.
    for bad in ["", "not PEM", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"] {
        let c = neocloud_server::Config { tpm_ek_ca_pem: Some(bad.into()), ..Default::default() };
        assert_eq!(c.validate().unwrap_err().field(), Some("tpm_ek_ca_pem"), "{bad:?}");
    }
}

#[test]
fn a_provider_that_trusts_tpm_makers_records_only_a_certified_tpm() {
    let Some(emu) = peers::Emulator::start(1) else { return };
    let Some(node_tpm) = Swtpm::start() else { return };
    let Some(other_tpm) = Swtpm::start() else { return };
    let (maker, other_maker) = (Manufacturer::new("maker-a"), Manufacturer::new("maker-b"));
    let (x, y) = point(&node_tpm);
    maker.certify(&node_tpm, &x, &y);
    let (ox, oy) = point(&other_tpm);
    let other_cert = other_maker.certify(&other_tpm, &ox, &oy);
    // Each maker's intermediate in its TPMs' chain; the provider trusts
    // maker A's root alone.
    maker.write_chain(&node_tpm);
    other_maker.write_chain(&other_tpm);
    let mine = ek_name(&node_tpm);
    let pem = maker.root_pem();
    for b in TestBackend::ALL {
        let Some(mut s) = server(b, 30) else { continue };
        let b = b.as_str();
        let tenant = setup(&s, &emu, 1);
        let node_id = node(&s, "bm-1")["id"].as_str().unwrap().to_string();
        let trail = |s: &common::TestServer| actions(s, &format!("/{node_id}"));
        let hardware =
            |s: &common::TestServer| s.admin().get("/v1/nodes/bm-1/hardware").expect(200).body;
        // A tenant, then its release: the sanitizer's machine holds the
        // node's TPM (and its maker's certificate).
        let cycle = |s: &common::TestServer, tenant: &Client, name: &str, tpm: &Swtpm| {
            let id = create(tenant, name)["id"].as_str().unwrap().to_string();
            let agent = spawn(boot(s, 1, TENANT_KERNEL, with_tpm("n1", &node_tpm)));
            wait_node(s, "bm-1", "active", None);
            release(tenant, &id).expect(202);
            let sanitizer = spawn(boot(s, 1, SANITIZER_KERNEL, with_tpm("n1-san", tpm)));
            assert_eq!(exit_of(agent), Exit::Revoked, "[{b}]");
            (id, sanitizer)
        };

        // Before the provider trusted TPM makers: recorded on first use.
        let (zero, sanitizer) = cycle(&s, &tenant, "zero", &node_tpm);
        wait_node(&s, "bm-1", "available", None);
        assert_eq!(exit_of(sanitizer), Exit::Revoked, "[{b}]");
        let hw = hardware(&s);
        assert_eq!(hw["tpm_identity"], mine.as_str(), "[{b}] {hw}");
        assert_eq!(hw["tpm_identity_recorded_by"], "first_sanitizer", "[{b}] {hw}");
        assert!(hw.get("tpm_identity_certified_by").is_none(), "[{b}] {hw}");
        let c = check(&records(&tenant, &zero)[0], "tpm_identity").clone();
        assert!(c.to_string().contains("recorded by the first sanitizer"), "[{b}] {c}");

        // The provider trusts maker A's CAs now: an identity trusted on
        // first use no longer counts, though the node's own TPM proves it.
        s.restart_with(|c| {
            tweak(c, 30);
            c.tpm_ek_ca_pem = Some(pem.clone());
        });
        let tenant = s.client(tenant.token.as_deref().unwrap());
        let (first, sanitizer) = cycle(&s, &tenant, "first", &node_tpm);
        failed_for_tpm_identity(&s, &tenant, &first, sanitizer, "forget it");

        // The provider forgets it. The next sanitizer runs on another
        // machine, whose TPM another maker certified (it read the node's
        // token): what it sends is refused, naming why, and nothing is
        // recorded.
        s.admin().post("/v1/nodes/bm-1/inspect", &json!({"forget_tpm_identity": true})).expect(202);
        assert!(hardware(&s).get("tpm_identity_recorded_by").is_none(), "[{b}] forgotten");
        let refusals = times(&trail(&s), "agent_tpm_identity");
        let sanitizer = boot(&s, 1, SANITIZER_KERNEL, with_tpm("n1-san", &other_tpm));
        let as_agent = s.client(sanitizer.credential());
        let keys = public_areas(&other_tpm);
        let challenge = |cert: Option<&str>| {
            let mut body = json!({"ek_public": keys.0, "ak_public": keys.1});
            if let Some(c) = cert {
                body["ek_certificate"] = json!(c);
            }
            as_agent.post("/agent/v1/identity/challenge", &body)
        };
        let r = challenge(None).expect(409);
        assert!(r.text.contains("no endorsement key certificate"), "[{b}] {}", r.text);
        let r = challenge(Some("zz")).expect(422);
        assert!(r.text.contains("ek_certificate"), "[{b}] {}", r.text);
        let r = challenge(Some(&hex::encode(&other_cert))).expect(409);
        assert!(r.text.contains("not one the provider trusts"), "[{b}] {}", r.text);
        assert!(r.text.contains("not among the provider's"), "[{b}] {}", r.text);
        // The impostor's own proof (its maker's certificate): refused too.
        let sanitizer = spawn(sanitizer);
        wait_node(&s, "bm-1", "available", None);
        assert_eq!(exit_of(sanitizer), Exit::Revoked, "[{b}]");
        assert_eq!(pinned(&s), None, "[{b}] nothing recorded");
        assert_eq!(times(&trail(&s), "node_tpm_identity_pinned"), 1, "[{b}] the first use's");
        // Refusals are in the trail once per agent.
        assert_eq!(times(&trail(&s), "agent_tpm_identity"), refusals + 1, "[{b}]");

        // The next sanitizer runs on the node, whose TPM the trusted maker
        // certified: recorded, with the maker's CA.
        let (second, sanitizer) = cycle(&s, &tenant, "second", &node_tpm);
        wait_node(&s, "bm-1", "available", None);
        assert_eq!(exit_of(sanitizer), Exit::Revoked, "[{b}]");
        assert_eq!(pinned(&s).as_deref(), Some(mine.as_str()), "[{b}]");
        assert_eq!(times(&trail(&s), "node_tpm_identity_pinned"), 2, "[{b}]");
        let rec = &records(&tenant, &second)[0];
        assert_eq!(rec["body"]["complete"], true, "[{b}] {rec}");
        let c = check(rec, "tpm_identity");
        assert_eq!(c["ok"], true, "[{b}] {c}");
        assert!(c.to_string().contains(&mine), "[{b}] {c}");
        // The signed record and the node's hardware name the maker's CA.
        let by_root = "certified by the TPM maker's CN=swtpm-localca-rootca";
        assert!(c.to_string().contains(by_root), "[{b}] {c}");
        let hw = hardware(&s);
        assert_eq!(hw["tpm_identity"], mine.as_str(), "[{b}] {hw}");
        assert_eq!(hw["tpm_identity_recorded_by"], "certificate", "[{b}] {hw}");
        assert_eq!(hw["tpm_identity_certified_by"], "CN=swtpm-localca-rootca", "[{b}] {hw}");
        // Forgotten (a replaced TPM): all of it.
        s.admin().post("/v1/nodes/bm-1/inspect", &json!({"forget_tpm_identity": true})).expect(202);
        let hw = hardware(&s);
        for field in ["tpm_identity", "tpm_identity_recorded_by", "tpm_identity_certified_by"] {
            assert!(hw.get(field).is_none(), "[{b}] {field}: {hw}");
        }
        wait_node(&s, "bm-1", "available", None);
    }
}

#[test]
fn an_rsa_endorsement_key_gets_a_credential_only_its_tpm_activates() {
    let Some(tpm) = Swtpm::start() else { return };
    let Some(elsewhere) = Swtpm::start() else { return };
    let rsa = Some(EkKind::Rsa);
    let mut id = TpmIdentity::open_with(&tpm.path(), rsa).unwrap();
    let ek = parse_ek(&id.ek_public).unwrap();
    let EkPublic::Rsa { modulus, .. } = &ek else { panic!("an RSA EK: {ek:?}") };
    let modulus = modulus.clone();
    assert_eq!(ek.name(), id.ek_name, "the name the TPM computes");
    let ak = parse_ak(&id.ak_public).unwrap();
    // The seed encrypted with OAEP to the EK: the TPM gives the secret
    // back (every time: a fresh seed each).
    for round in 0..3 {
        let secret = [round as u8 + 7; 32];
        let (blob, enc) = make_credential(&ek, &ak.name, &secret).unwrap();
        assert_eq!(enc.len(), 256);
        assert_eq!(id.activate(&blob, &enc).unwrap(), secret, "round {round}");
    }
    // Made for another TPM's RSA EK, or changed in transit: refused.
    let other = TpmIdentity::open_with(&elsewhere.path(), rsa).unwrap();
    let other_ek = parse_ek(&other.ek_public).unwrap();
    let (blob, enc) = make_credential(&other_ek, &ak.name, b"secret").unwrap();
    assert!(id.activate(&blob, &enc).is_err());
    let (blob, mut enc) = make_credential(&ek, &ak.name, b"secret").unwrap();
    enc[100] ^= 1;
    assert!(id.activate(&blob, &enc).is_err());
    // Not the profile's RSA EK: a changed attribute, a short modulus.
    let mut changed = id.ek_public.clone();
    changed[7] ^= 0x40;
    assert!(parse_ek(&changed).is_err());
    let mut short = id.ek_public.clone();
    short.pop();
    assert!(parse_ek(&short).is_err());
    drop(id);

    // Its maker's certificate names the modulus; the other TPM's does not.
    let maker = Manufacturer::new("rsa-maker");
    let cert = maker.certify_rsa(&tpm, &modulus);
    let trust = EkTrust::from_pem(&maker.ca_pem()).unwrap();
    let now = neocloud_common::time::now_micros();
    let key = EkKey::Rsa { modulus: &modulus };
    assert_eq!(trust.certifies(&cert, &[], &key, now).unwrap(), "CN=swtpm-localca");
    let EkPublic::Rsa { modulus: theirs, .. } = &other_ek else { unreachable!() };
    let e = trust.certifies(&cert, &[], &EkKey::Rsa { modulus: theirs }, now).unwrap_err();
    assert!(e.contains("another key"), "{e}");
    let (x, y) = point(&tpm);
    let e = trust.certifies(&cert, &[], &EkKey::P256 { x: &x, y: &y }, now).unwrap_err();
    assert!(e.contains("another key"), "{e}");
}
