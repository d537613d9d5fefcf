//! Schema migrations, applied in order at open, each in the transaction
//! that records it. SQL common to both backends is written once; the
//! append-only triggers differ and are written per backend.

use crate::backend::{BackendKind, Writer};
use crate::vals;
use neocloud_common::{time::now_micros, Error, Result};

struct Migration {
    version: i64,
    name: &'static str,
    common: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "identity, tenancy, quotas, audit, idempotency",
        common: r#"
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    description TEXT NOT NULL,
    suspended BIGINT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    tenant_id TEXT REFERENCES tenants(id),
    scope_key TEXT NOT NULL,
    name TEXT NOT NULL,
    display_name TEXT NOT NULL,
    email TEXT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (scope_key, name)
);
CREATE TABLE memberships (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    role TEXT NOT NULL,
    tenant_id TEXT REFERENCES tenants(id),
    project_id TEXT REFERENCES projects(id),
    scope_key TEXT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (user_id, scope_key)
);
CREATE INDEX memberships_tenant ON memberships (tenant_id);
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    tenant_id TEXT REFERENCES tenants(id),
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    last_used_at BIGINT,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant_id);
CREATE TABLE quota_scopes (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    tenant_id TEXT,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE quota_usage (
    scope_id TEXT NOT NULL REFERENCES quota_scopes(id),
    resource TEXT NOT NULL,
    lim BIGINT,
    reserved BIGINT NOT NULL,
    committed BIGINT NOT NULL,
    PRIMARY KEY (scope_id, resource),
    CHECK (reserved >= 0 AND committed >= 0)
);
CREATE TABLE quota_claims (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    project_id TEXT NOT NULL REFERENCES projects(id),
    state TEXT NOT NULL,
    resources TEXT NOT NULL,
    description TEXT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX quota_claims_project ON quota_claims (project_id, state);
CREATE TABLE audit_events (
    chain TEXT NOT NULL,
    seq BIGINT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    time BIGINT NOT NULL,
    actor TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    token_id TEXT,
    role TEXT,
    tenant_id TEXT,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);
CREATE INDEX audit_events_time ON audit_events (time, id);
CREATE TABLE audit_heads (
    chain TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status BIGINT NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
"#,
        sqlite: r#"
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
"#,
        postgres: r#"
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
"#,
    },
    Migration {
        version: 2,
        name: "inventory, instance types, allocations",
        common: r#"
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    site TEXT NOT NULL,
    pod TEXT NOT NULL,
    su TEXT NOT NULL,
    rack TEXT NOT NULL,
    nvlink_domain TEXT NOT NULL,
    gpu_model TEXT NOT NULL,
    gpus BIGINT NOT NULL CHECK (gpus BETWEEN 1 AND 16),
    gpu_memory_gb BIGINT NOT NULL,
    mig_capable BIGINT NOT NULL,
    -- JSON list of NICs: name, rail, fabric, switch, port.
    nics TEXT NOT NULL,
    availability TEXT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE instance_types (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    gpu_model TEXT NOT NULL,
    gpus BIGINT NOT NULL,
    mig_profile TEXT,
    vcpus BIGINT NOT NULL,
    memory_gib BIGINT NOT NULL,
    description TEXT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE allocations (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    project_id TEXT NOT NULL REFERENCES projects(id),
    instance_type_id TEXT NOT NULL REFERENCES instance_types(id),
    -- 'allocation', or 'reservation': capacity held to allocate against later.
    kind TEXT NOT NULL,
    -- For an allocation made against a reservation.
    reservation_id TEXT,
    count BIGINT NOT NULL,
    constraints TEXT NOT NULL,
    placement TEXT NOT NULL,
    claim_id TEXT NOT NULL,
    state TEXT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX allocations_by_project ON allocations (tenant_id, project_id);
-- One row per (node, GPU, memory slice) held: the primary key makes a
-- double allocation impossible, whatever replica placed it.
CREATE TABLE allocation_units (
    node_id TEXT NOT NULL REFERENCES nodes(id),
    gpu BIGINT NOT NULL,
    slice BIGINT NOT NULL,
    allocation_id TEXT NOT NULL REFERENCES allocations(id),
    PRIMARY KEY (node_id, gpu, slice)
);
CREATE INDEX allocation_units_by_allocation ON allocation_units (allocation_id);
-- Bumped by every change to nodes or allocations: a replica whose engine
-- reflects an older generation reloads before it places.
CREATE TABLE placement_state (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO placement_state (id, generation) VALUES (1, 0);
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 3,
        name: "node lifecycle and BMC credentials",
        common: r#"
-- The node's lifecycle state (JSON, serde-tagged) and when it was entered.
-- Nodes registered without a BMC are available at once.
ALTER TABLE nodes ADD COLUMN lifecycle TEXT NOT NULL DEFAULT '{"state":"available"}';
ALTER TABLE nodes ADD COLUMN lifecycle_since BIGINT NOT NULL DEFAULT 0;
-- Intent recorded by the API: inspect again (the controller acts on it).
ALTER TABLE nodes ADD COLUMN inspect_requested_at BIGINT NOT NULL DEFAULT 0;
CREATE TABLE node_bmcs (
    node_id TEXT PRIMARY KEY REFERENCES nodes(id),
    endpoint TEXT NOT NULL,
    username TEXT NOT NULL,
    -- Sealed with the server's key; never returned by the API.
    password_sealed TEXT NOT NULL,
    -- The ComputerSystem discovered at enrollment.
    system_path TEXT
);
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 4,
        name: "bare-metal instances, boot service, agents, sanitization",
        common: r#"
-- The lifecycle state's name, for the controller's queries (the JSON in
-- `lifecycle` holds the state's fields).
ALTER TABLE nodes ADD COLUMN lifecycle_state TEXT NOT NULL DEFAULT 'available';
UPDATE nodes SET lifecycle_state = 'enrolling' WHERE lifecycle LIKE '{"state":"enrolling"%';
UPDATE nodes SET lifecycle_state = 'inspecting' WHERE lifecycle LIKE '{"state":"inspecting"%';
UPDATE nodes SET lifecycle_state = 'failed' WHERE lifecycle LIKE '{"state":"failed"%';
CREATE INDEX nodes_by_lifecycle ON nodes (lifecycle_state);
-- MACs and firmware versions the BMC reported at inspection (JSON arrays).
ALTER TABLE nodes ADD COLUMN macs TEXT NOT NULL DEFAULT '[]';
ALTER TABLE nodes ADD COLUMN firmware_baseline TEXT NOT NULL DEFAULT '[]';
-- Set when a tenant's instance is first provisioned on the node; cleared
-- only by a complete sanitization. A dirty node is never available.
ALTER TABLE nodes ADD COLUMN dirty_tenant_id TEXT;
ALTER TABLE nodes ADD COLUMN dirty_instance_id TEXT;
CREATE TABLE images (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    purpose TEXT NOT NULL,
    kernel_url TEXT NOT NULL,
    initrd_url TEXT NOT NULL,
    root_url TEXT,
    root_sha256 TEXT,
    cmdline TEXT NOT NULL,
    description TEXT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    project_id TEXT NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    instance_type_id TEXT NOT NULL REFERENCES instance_types(id),
    -- The image it was provisioned with (the catalog may drop it later).
    image_id TEXT NOT NULL,
    allocation_id TEXT NOT NULL REFERENCES allocations(id),
    node_id TEXT NOT NULL,
    ssh_keys TEXT NOT NULL,
    user_data TEXT,
    state TEXT NOT NULL,
    reason TEXT,
    -- Intent recorded by the API: the tenant released it.
    release_requested_at BIGINT NOT NULL DEFAULT 0,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX instances_by_project ON instances (tenant_id, project_id);
CREATE INDEX instances_by_node ON instances (node_id);
-- Names are unique among a project's instances not yet released.
CREATE UNIQUE INDEX instances_live_name ON instances (project_id, name) WHERE state <> 'released';
-- The node's current one-time boot token: sealed (the boot service renders
-- it) and hashed (registration finds it).
CREATE TABLE boot_tokens (
    node_id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    token_sealed TEXT NOT NULL,
    purpose TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    credential_hash TEXT NOT NULL UNIQUE,
    inventory TEXT NOT NULL,
    health TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX agents_by_node ON agents (node_id);
CREATE TABLE agent_steps (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents(id),
    node_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    seq BIGINT NOT NULL,
    -- 'pending' or 'done'.
    state TEXT NOT NULL,
    result TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    UNIQUE (agent_id, kind)
);
-- Records are evidence: they outlive the node and reference it by id only.
CREATE TABLE sanitization_records (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    complete BIGINT NOT NULL,
    body TEXT NOT NULL,
    signature TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX sanitization_by_node ON sanitization_records (node_id);
CREATE INDEX sanitization_by_instance ON sanitization_records (instance_id);
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 5,
        name: "node hardware inventory",
        common: r#"
-- The BMC's inventory at the last inspection (JSON), for operators.
ALTER TABLE nodes ADD COLUMN inventory TEXT;
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 6,
        name: "node MAC index",
        common: r#"
-- Every MAC a node has (inspected or declared), lower case: the boot
-- service finds a booting node by MAC without scanning every node. Filled
-- for existing nodes by the migration (`nodes::index_all_macs`).
CREATE TABLE node_macs (
    mac TEXT NOT NULL,
    node_id TEXT NOT NULL REFERENCES nodes (id),
    PRIMARY KEY (mac, node_id)
);
CREATE INDEX node_macs_by_node ON node_macs (node_id);
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 7,
        name: "fabrics and tenant networks",
        common: r#"
-- A fabric: the provider's document (switches, cabling; switch passwords
-- sealed), the ledger of ids and addresses it handed out (never moved), and
-- the generation of everything it must carry (bumped by every change).
CREATE TABLE fabrics (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    spec TEXT NOT NULL,
    ledger TEXT NOT NULL,
    intent_generation BIGINT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- The cabling of the document, by node (rewritten with the document).
CREATE TABLE fabric_links (
    fabric_id TEXT NOT NULL REFERENCES fabrics (id),
    node_id TEXT NOT NULL REFERENCES nodes (id),
    nic TEXT NOT NULL,
    switch TEXT NOT NULL,
    port TEXT NOT NULL,
    PRIMARY KEY (fabric_id, node_id, nic),
    UNIQUE (fabric_id, switch, port)
);
CREATE INDEX fabric_links_by_node ON fabric_links (node_id);
-- What each switch was last given, for which intent generation, and how
-- the last apply or check went (written only by the fabric controller).
CREATE TABLE switch_states (
    fabric_id TEXT NOT NULL REFERENCES fabrics (id),
    switch TEXT NOT NULL,
    applied TEXT,
    applied_generation BIGINT NOT NULL,
    state TEXT NOT NULL,
    message TEXT,
    checked_at BIGINT,
    PRIMARY KEY (fabric_id, switch)
);
CREATE TABLE vpcs (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    project_id TEXT NOT NULL REFERENCES projects (id),
    fabric_id TEXT NOT NULL REFERENCES fabrics (id),
    name TEXT NOT NULL,
    nat_gateway BIGINT NOT NULL,
    description TEXT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX vpcs_by_fabric ON vpcs (fabric_id);
CREATE TABLE networks (
    id TEXT PRIMARY KEY,
    vpc_id TEXT NOT NULL REFERENCES vpcs (id),
    name TEXT NOT NULL,
    cidr TEXT NOT NULL,
    gateway TEXT,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (vpc_id, name)
);
-- One network per node NIC. `ip` is what the tenant asked for (NULL: IPAM
-- picks; the ledger holds the address); `intent_generation` is the fabric
-- generation that added it (ready once the switches applied it).
CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    network_id TEXT NOT NULL REFERENCES networks (id),
    vpc_id TEXT NOT NULL REFERENCES vpcs (id),
    instance_id TEXT NOT NULL REFERENCES instances (id),
    node_id TEXT NOT NULL REFERENCES nodes (id),
    nic TEXT NOT NULL,
    ip TEXT,
    intent_generation BIGINT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (node_id, nic)
);
CREATE INDEX attachments_by_network ON attachments (network_id);
CREATE INDEX attachments_by_instance ON attachments (instance_id);
CREATE TABLE security_rules (
    id TEXT PRIMARY KEY,
    vpc_id TEXT NOT NULL REFERENCES vpcs (id),
    from_network_id TEXT NOT NULL REFERENCES networks (id),
    to_network_id TEXT NOT NULL REFERENCES networks (id),
    protocol TEXT NOT NULL,
    port_first BIGINT,
    port_last BIGINT,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX security_rules_by_vpc ON security_rules (vpc_id);
CREATE TABLE floating_ips (
    id TEXT PRIMARY KEY,
    fabric_id TEXT NOT NULL REFERENCES fabrics (id),
    vpc_id TEXT NOT NULL REFERENCES vpcs (id),
    attachment_id TEXT NOT NULL UNIQUE REFERENCES attachments (id),
    public_ip TEXT NOT NULL,
    allow TEXT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (fabric_id, public_ip)
);
CREATE INDEX floating_ips_by_vpc ON floating_ips (vpc_id);
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 8,
        name: "fabric controller leases",
        common: r#"
-- One control-plane replica converges a fabric at a time: the holder of
-- its lease (renewed every pass; taken over once it lapses).
ALTER TABLE fabrics ADD COLUMN lease_owner TEXT;
ALTER TABLE fabrics ADD COLUMN lease_until BIGINT;
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 9,
        name: "Ethernet ledger by entry, fabric state apart from the document",
        common: r#"
-- An Ethernet fabric's ledger, one row per entry (a VPC's, a network's, a
-- switch's, an attachment's, a NAT gateway's, the cursors; keys and
-- values are the fabric core's): a tenant change writes the entries it
-- touched, not the whole ledger. `fabrics.ledger` keeps InfiniBand's
-- PKey ledger; an Ethernet fabric's is moved here at server start.
CREATE TABLE fabric_ledger (
    fabric_id TEXT NOT NULL REFERENCES fabrics(id),
    entry TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (fabric_id, entry)
);
-- What changes on every intent write and every controller pass, apart
-- from the fabric's document (which holds every link and can be megabytes:
-- a row rewritten on every write would copy it each time). The token is
-- new with every write of the intent: a planner kept in memory is current
-- only while the token it was built or updated with is the stored one (a
-- rolled-back or another replica's write changes it).
CREATE TABLE fabric_state (
    fabric_id TEXT PRIMARY KEY REFERENCES fabrics(id),
    intent_generation BIGINT NOT NULL,
    intent_token TEXT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT
);
INSERT INTO fabric_state (fabric_id, intent_generation, intent_token, lease_owner, lease_until)
    SELECT id, intent_generation, '', lease_owner, lease_until FROM fabrics;
ALTER TABLE fabrics DROP COLUMN intent_generation;
ALTER TABLE fabrics DROP COLUMN lease_owner;
ALTER TABLE fabrics DROP COLUMN lease_until;
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 10,
        name: "node boot method",
        common: r#"
-- How the BMC boots the node into an image: 'pxe' or 'virtual_media'.
ALTER TABLE nodes ADD COLUMN boot_method TEXT NOT NULL DEFAULT 'pxe';
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 11,
        name: "agent GPU status",
        common: r#"
-- Each GPU's readings and problems (JSON array) at the agent's last
-- recorded heartbeat.
ALTER TABLE agents ADD COLUMN gpu_status TEXT NOT NULL DEFAULT '[]';
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 12,
        name: "node platform baseline",
        common: r#"
-- Secure Boot and the enabled BMC accounts at the node's first clean
-- inspection (JSON); NULL for nodes inspected before it was recorded.
ALTER TABLE nodes ADD COLUMN platform_baseline TEXT;
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 13,
        name: "node BMC password rotation",
        common: r#"
-- A new BMC password (sealed) being set on the BMC: written before the
-- change is sent, made the password once a login with it works, dropped
-- once a login with the old one does (a crash in between resolves so).
ALTER TABLE node_bmcs ADD COLUMN password_next_sealed TEXT;
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 14,
        name: "node BIOS staged",
        common: r#"
-- The BIOS attributes a release staged back to the baseline before the
-- sanitizer's boot (JSON: name -> [value found, value staged]), kept for
-- the sanitization record; cleared when the record is written.
ALTER TABLE nodes ADD COLUMN bios_staged TEXT;
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 15,
        name: "firmware baselines",
        common: r#"
-- The provider's firmware versions per system model (components: JSON,
-- component id -> version), read at every inspection and sanitization.
CREATE TABLE firmware_baselines (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL UNIQUE,
    components TEXT NOT NULL,
    description TEXT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 16,
        name: "node BMC journal",
        common: r#"
-- The changes a lifecycle step is about to make on the node's BMC outside
-- its state transitions (JSON list: check, target, change, time), each
-- written before the change is sent, so that a control plane killed before
-- it records the outcome still audits it and puts it in the record; cleared
-- by the step that records them.
ALTER TABLE nodes ADD COLUMN bmc_journal TEXT;
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 17,
        name: "instance power and rebuild",
        common: r#"
-- A ready instance's power actions (JSON: the one asked and not done yet,
-- with when it was sent to the BMC, written before it is; the last one
-- done, with what the BMC made of it); power_pending: 1 while one is asked
-- and not done (the lifecycle controller's work list reads it).
ALTER TABLE instances ADD COLUMN power TEXT;
ALTER TABLE instances ADD COLUMN power_pending BIGINT NOT NULL DEFAULT 0;
-- A rebuild asked of a ready instance: the image it provisions next (the
-- controller takes the node back to provisioning and clears it).
ALTER TABLE instances ADD COLUMN rebuild_image_id TEXT;
-- With it, new SSH keys (JSON) and user-data for the rebuild's boot (NULL:
-- the instance's own; empty user-data: none).
ALTER TABLE instances ADD COLUMN rebuild_ssh_keys TEXT;
ALTER TABLE instances ADD COLUMN rebuild_user_data TEXT;
-- When the tenant's `off` was done (0: not off by the tenant's hand): its
-- agent's silence is then no alert.
ALTER TABLE instances ADD COLUMN powered_off_at BIGINT NOT NULL DEFAULT 0;
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 18,
        name: "firmware updates",
        common: r#"
-- Per component of a baseline, the URL of its image at the baseline's
-- version (JSON object; '{}': none).
ALTER TABLE firmware_baselines ADD COLUMN images TEXT NOT NULL DEFAULT '{}';
-- The firmware updates of a node's sanitization under way (JSON list,
-- each written before it is sent to the BMC); cleared with the record.
ALTER TABLE nodes ADD COLUMN firmware_updates TEXT;
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 19,
        name: "firmware activations and image transfer",
        common: r#"
-- Per component of a baseline with an image, the reset that activates its
-- update where the BMC does not say (JSON object; '{}': none).
ALTER TABLE firmware_baselines ADD COLUMN activations TEXT NOT NULL DEFAULT '{}';
-- How its images reach the BMCs: 'pull' (the BMC fetches them) or 'push'
-- (the control plane uploads them).
ALTER TABLE firmware_baselines ADD COLUMN image_transfer TEXT NOT NULL DEFAULT 'pull';
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 20,
        name: "static provisioning addresses",
        common: r#"
-- A node's static address on its provisioning network, where it has no
-- DHCP (JSON: mac, address, gateway, dns); its address alone, unique.
ALTER TABLE nodes ADD COLUMN boot_network TEXT;
ALTER TABLE nodes ADD COLUMN boot_address TEXT;
CREATE UNIQUE INDEX nodes_boot_address ON nodes (boot_address);
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 21,
        name: "provisioning networks",
        common: r#"
-- The provider's provisioning networks static addresses are drawn from
-- (were the server's configuration): subnet (unique, never overlapping
-- another's: checked by the writer under the address lock), the range
-- drawn, the gateway and name servers (JSON list) their nodes take.
CREATE TABLE provisioning_networks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    subnet TEXT NOT NULL UNIQUE,
    first_address TEXT NOT NULL,
    last_address TEXT NOT NULL,
    gateway TEXT,
    dns TEXT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 22,
        name: "firmware update order",
        common: r#"
-- Per baseline, the component ids updated first, in this order (JSON
-- list; '[]': all by id).
ALTER TABLE firmware_baselines ADD COLUMN update_order TEXT NOT NULL DEFAULT '[]';
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 23,
        name: "node hardware health",
        common: r#"
-- The node's hardware health as its BMC last said it (the host system's
-- health rollup: OK, Warning, Critical), read by inspections,
-- sanitizations and the health watch; NULL until read.
ALTER TABLE nodes ADD COLUMN bmc_health TEXT;
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 24,
        name: "node hardware faults",
        common: r#"
-- The parts the node's BMC last reported other than healthy, beside its
-- rollup (a JSON array of "GPU_SXM_3 Critical"); NULL until read.
ALTER TABLE nodes ADD COLUMN bmc_health_faults TEXT;
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 25,
        name: "instances placed again",
        common: r#"
-- Times a node failed before the instance was first handed over and the
-- instance was placed on another node.
ALTER TABLE instances ADD COLUMN replacements INTEGER NOT NULL DEFAULT 0;
-- When the instance was first ready (0: never). Only an instance never
-- handed over is placed again: a rebuild's node holds the tenant's data.
-- Instances from before this migration that left pending count as handed
-- over (a rebuild cannot be told from a first provisioning).
ALTER TABLE instances ADD COLUMN ready_at BIGINT NOT NULL DEFAULT 0;
UPDATE instances SET ready_at = updated_at WHERE state <> 'pending';
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 26,
        name: "node uefi baseline",
        common: r#"
-- JSON list of the non-volatile UEFI variables (Name-GUID) the node's
-- first complete sanitization found; every later one deletes the others.
ALTER TABLE nodes ADD COLUMN uefi_baseline TEXT;
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 27,
        name: "tpm identity",
        common: r#"
-- The name (hex) of the node's TPM endorsement key, from the provider's
-- records or pinned by the first sanitizer that proved it held it; every
-- later agent proves the same.
ALTER TABLE nodes ADD COLUMN tpm_ek_name TEXT;
-- The endorsement key name the agent proved its TPM holds; NULL until then.
ALTER TABLE agents ADD COLUMN tpm_ek_name TEXT;
-- When the agent's proof was first refused (audited once); 0: never.
ALTER TABLE agents ADD COLUMN tpm_refused_at BIGINT NOT NULL DEFAULT 0;
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 28,
        name: "allocation holds as bit masks",
        common: r#"
-- What each allocation holds of a node, per word of 8 GPUs (GPU / 8): a bit
-- per (GPU, memory slice), bit 8 * (GPU % 8) + slice. A bare-metal
-- instance's node is one row (it was 64 unit rows).
CREATE TABLE allocation_holds (
    allocation_id TEXT NOT NULL REFERENCES allocations(id),
    node_id TEXT NOT NULL REFERENCES nodes(id),
    word BIGINT NOT NULL,
    mask BIGINT NOT NULL,
    PRIMARY KEY (allocation_id, node_id, word)
);
CREATE INDEX allocation_holds_by_node ON allocation_holds (node_id);
-- The bits of a node's word that any allocation holds. A hold is taken by
-- a conditional update (`held & mask = 0`): a commit that would hold a
-- unit twice, whatever replica planned it, changes no row and fails.
CREATE TABLE node_units (
    node_id TEXT NOT NULL REFERENCES nodes(id),
    word BIGINT NOT NULL,
    held BIGINT NOT NULL,
    PRIMARY KEY (node_id, word)
);
-- Disjoint bits: their sum is their OR.
INSERT INTO allocation_holds (allocation_id, node_id, word, mask)
    SELECT allocation_id, node_id, gpu / 8,
           SUM(CAST(1 AS BIGINT) << CAST(8 * (gpu % 8) + slice AS INTEGER))
    FROM allocation_units GROUP BY allocation_id, node_id, gpu / 8;
INSERT INTO node_units (node_id, word, held)
    SELECT node_id, word, SUM(mask) FROM allocation_holds GROUP BY node_id, word;
DROP TABLE allocation_units;
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 29,
        name: "active allocations indexed",
        common: r#"
-- An engine rebuild reads every active allocation in this order; released
-- ones, which only accumulate, are not scanned.
CREATE INDEX allocations_active ON allocations (created_at, id) WHERE state = 'active';
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 30,
        name: "placement log",
        common: r#"
-- What a placement write changed (the effects its replica applied to its
-- engine), for other replicas to replay instead of rebuilding: the state at
-- `generation` is the state at `since` with `effects` applied. Writes that
-- are not logged leave a gap, and a replica meeting one rebuilds.
CREATE TABLE placement_log (
    generation BIGINT PRIMARY KEY,
    since BIGINT NOT NULL,
    effects TEXT NOT NULL
);
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 31,
        name: "tpm identity certifier",
        common: r#"
-- Who recorded the node's TPM identity: 'provider' (enrollment),
-- 'first_sanitizer' (trusted on first use) or 'certificate' (a sanitizer's
-- proof with an EK certificate from a TPM maker the provider trusts,
-- `tpm_ek_ca_pem`); NULL: none, or recorded before this was kept.
ALTER TABLE nodes ADD COLUMN tpm_ek_recorded_by TEXT;
-- The TPM maker's CA that certified it ('certificate' only).
ALTER TABLE nodes ADD COLUMN tpm_ek_certified_by TEXT;
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 32,
        name: "nic settings baseline",
        common: r#"
-- JSON list of the NVIDIA (Mellanox) network adapters' persistent settings
-- off their firmware defaults ("PCI-address/PARAMETER=value") the node's
-- first complete sanitization found; every later one sets the others back.
ALTER TABLE nodes ADD COLUMN nic_baseline TEXT;
"#,
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 33,
        name: "baselines forgotten",
        common: r#"
-- When the provider had the node's UEFI and NIC baselines forgotten (an
-- inspection with forget_baselines): the inspection sends it through a
-- sanitization before it rejoins the pool, which records them anew and
-- clears this. NULL: not asked.
ALTER TABLE nodes ADD COLUMN baselines_forgotten_at BIGINT;
"#,
        sqlite: "",
        postgres: "",
    },
];

/// The id of the provider's quota scope and audit chain.
pub const PROVIDER: &str = "provider";

/// Applies the migrations not applied yet, up to `last` where given.
pub(crate) fn apply(w: &mut dyn Writer, last: Option<i64>) -> Result<()> {
    if w.kind() == BackendKind::Postgres {
        // Replicas starting together: one migrates, the others wait here.
        // execute_batch: the function returns `void`, which `query` cannot read.
        w.execute_batch("SELECT pg_advisory_xact_lock(7262737)")?;
    }
    w.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )?;
    let done = w.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])?;
    let current = done.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0);
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > known {
        // A newer build migrated this store: this one would run on a schema
        // it does not know (a dropped table, a changed column). Replicas of
        // the older build are stopped before the newer one starts.
        return Err(Error::internal(format!(
            "the store's schema is at version {current}, newer than this build knows ({known}): \
             run the newer build on every replica"
        )));
    }
    for m in
        MIGRATIONS.iter().filter(|m| m.version > current && last.is_none_or(|l| m.version <= l))
    {
        tracing::info!(version = m.version, name = m.name, "applying migration");
        w.execute_batch(m.common)?;
        w.execute_batch(match w.kind() {
            BackendKind::Sqlite => m.sqlite,
            BackendKind::Postgres => m.postgres,
        })?;
        w.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            vals![m.version, m.name, now_micros()],
        )?;
        if m.version == 6 {
            crate::nodes::index_all_macs(w)?;
        }
        if m.version == 1 {
            let now = now_micros();
            w.execute(
                "INSERT INTO quota_scopes (id, kind, tenant_id, generation, created_at, updated_at) VALUES (?, 'provider', NULL, 1, ?, ?)",
                vals![PROVIDER, now, now],
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_increase() {
        let v: Vec<i64> = super::MIGRATIONS.iter().map(|m| m.version).collect();
        assert!(v.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(v[0], 1);
    }
}
