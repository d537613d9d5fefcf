//! `neocloud tenant ...` and `neocloud project ...`.

use super::{parse_key, parse_name, print_done, project_path, tenant_path, to_value, Global};
use crate::output::{print_list, print_one, CliError};
use neocloud_common::Name;
use neocloud_types::{Project, ProjectCreate, ProjectUpdate, Tenant, TenantCreate, TenantUpdate};

#[derive(clap::Args)]
pub struct TenantArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: TenantCmd,
}

#[derive(clap::Subcommand)]
enum TenantCmd {
    /// List tenants.
    List,
    /// Show one tenant.
    Get {
        /// Tenant name or id.
        #[arg(value_parser = parse_key)]
        tenant: String,
    },
    /// Create a tenant.
    Create {
        #[arg(value_parser = parse_name)]
        name: Name,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Retrying with the same key returns the first result instead of a second tenant.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Change a tenant; --generation is the one you last saw (a stale one fails with exit 6).
    Update {
        /// Tenant name or id.
        #[arg(value_parser = parse_key)]
        tenant: String,
        #[arg(long)]
        generation: i64,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Suspend (true) or resume (false) the tenant.
        #[arg(long, value_name = "BOOL")]
        suspended: Option<bool>,
    },
    /// Delete a tenant.
    Delete {
        /// Tenant name or id.
        #[arg(value_parser = parse_key)]
        tenant: String,
    },
}

impl TenantArgs {
    #[cfg(test)]
    pub(super) fn global(&self) -> &Global {
        &self.g
    }
}

pub fn tenant(a: TenantArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let f = a.g.output;
    match a.cmd {
        TenantCmd::List => print_list::<Tenant>(f, &c.get("/v1/tenants", &[])?),
        TenantCmd::Get { tenant } => print_one::<Tenant>(f, &c.get(&tenant_path(&tenant), &[])?),
        TenantCmd::Create { name, display_name, description, idempotency_key } => {
            let body = to_value(&TenantCreate { name, display_name, description })?;
            print_one::<Tenant>(f, &c.post("/v1/tenants", Some(&body), idempotency_key.as_deref())?)
        }
        TenantCmd::Update { tenant, generation, display_name, description, suspended } => {
            let body =
                to_value(&TenantUpdate { generation, display_name, description, suspended })?;
            print_one::<Tenant>(f, &c.patch(&tenant_path(&tenant), &body)?)
        }
        TenantCmd::Delete { tenant } => {
            c.delete(&tenant_path(&tenant))?;
            print_done(f, &format!("tenant {tenant} deleted"));
            Ok(())
        }
    }
}

#[derive(clap::Args)]
pub struct ProjectArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: ProjectCmd,
}

#[derive(clap::Subcommand)]
enum ProjectCmd {
    /// List the tenant's projects.
    List {
        /// Tenant name or id.
        #[arg(long, value_parser = parse_key)]
        tenant: String,
    },
    /// Show one project.
    Get {
        /// Project name or id.
        #[arg(value_parser = parse_key)]
        project: String,
        /// Tenant name or id.
        #[arg(long, value_parser = parse_key)]
        tenant: String,
    },
    /// Create a project.
    Create {
        #[arg(value_parser = parse_name)]
        name: Name,
        /// Tenant name or id.
        #[arg(long, value_parser = parse_key)]
        tenant: String,
        #[arg(long)]
        description: Option<String>,
        /// Retrying with the same key returns the first result instead of a second project.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Change a project; --generation is the one you last saw.
    Update {
        /// Project name or id.
        #[arg(value_parser = parse_key)]
        project: String,
        /// Tenant name or id.
        #[arg(long, value_parser = parse_key)]
        tenant: String,
        #[arg(long)]
        generation: i64,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a project.
    Delete {
        /// Project name or id.
        #[arg(value_parser = parse_key)]
        project: String,
        /// Tenant name or id.
        #[arg(long, value_parser = parse_key)]
        tenant: String,
    },
}

pub fn project(a: ProjectArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let f = a.g.output;
    match a.cmd {
        ProjectCmd::List { tenant } => {
            print_list::<Project>(f, &c.get(&format!("{}/projects", tenant_path(&tenant)), &[])?)
        }
        ProjectCmd::Get { project, tenant } => {
            print_one::<Project>(f, &c.get(&project_path(&tenant, &project), &[])?)
        }
        ProjectCmd::Create { name, tenant, description, idempotency_key } => {
            let body = to_value(&ProjectCreate { name, description })?;
            let path = format!("{}/projects", tenant_path(&tenant));
            print_one::<Project>(f, &c.post(&path, Some(&body), idempotency_key.as_deref())?)
        }
        ProjectCmd::Update { project, tenant, generation, description } => {
            let body = to_value(&ProjectUpdate { generation, description })?;
            print_one::<Project>(f, &c.patch(&project_path(&tenant, &project), &body)?)
        }
        ProjectCmd::Delete { project, tenant } => {
            c.delete(&project_path(&tenant, &project))?;
            print_done(f, &format!("project {project} deleted"));
            Ok(())
        }
    }
}
