//! The authorization model: roles, grants, and a typed resource x action
//! policy. Pure: the server resolves the principal and the target, this
//! crate decides.
//!
//! **Invariant: a principal with no grant in a tenant gets `Decision::Hide`
//! for every object of that tenant**, so the API answers 404 and existence is
//! not leaked. A principal that can see the tenant but lacks the permission
//! gets `Decision::Deny` (403).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    ProviderAdmin,
    ProviderViewer,
    TenantAdmin,
    TenantMember,
    TenantViewer,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::ProviderAdmin,
        Role::ProviderViewer,
        Role::TenantAdmin,
        Role::TenantMember,
        Role::TenantViewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::ProviderAdmin => "provider-admin",
            Role::ProviderViewer => "provider-viewer",
            Role::TenantAdmin => "tenant-admin",
            Role::TenantMember => "tenant-member",
            Role::TenantViewer => "tenant-viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn is_provider(self) -> bool {
        match self {
            Role::ProviderAdmin | Role::ProviderViewer => true,
            Role::TenantAdmin | Role::TenantMember | Role::TenantViewer => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a role applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantScope {
    Provider,
    Tenant { tenant_id: String },
    Project { tenant_id: String, project_id: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub role: Role,
    pub scope: GrantScope,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: String,
    pub user_name: String,
    /// The tenant the user belongs to; `None` for provider users.
    pub tenant_id: Option<String>,
    pub token_id: String,
    pub grants: Vec<Grant>,
}

impl Principal {
    fn provider_role(&self) -> Option<Role> {
        // ProviderAdmin sorts before ProviderViewer: the strongest wins.
        self.grants
            .iter()
            .filter(|g| matches!(g.scope, GrantScope::Provider) && g.role.is_provider())
            .map(|g| g.role)
            .min()
    }

    fn tenant_roles<'a>(&'a self, tenant: &'a str) -> impl Iterator<Item = Role> + 'a {
        self.grants.iter().filter_map(move |g| match &g.scope {
            GrantScope::Tenant { tenant_id } if tenant_id == tenant && !g.role.is_provider() => {
                Some(g.role)
            }
            GrantScope::Tenant { .. } | GrantScope::Provider | GrantScope::Project { .. } => None,
        })
    }

    fn project_roles<'a>(
        &'a self,
        tenant: &'a str,
        project: Option<&'a str>,
    ) -> impl Iterator<Item = Role> + 'a {
        self.grants.iter().filter_map(move |g| match &g.scope {
            GrantScope::Project { tenant_id, project_id }
                if tenant_id == tenant
                    && project.is_none_or(|p| p == project_id)
                    && !g.role.is_provider() =>
            {
                Some(g.role)
            }
            GrantScope::Project { .. } | GrantScope::Provider | GrantScope::Tenant { .. } => None,
        })
    }

    /// Whether the principal sees the tenant at all.
    pub fn sees_tenant(&self, tenant: &str) -> bool {
        self.provider_role().is_some()
            || self.tenant_roles(tenant).next().is_some()
            || self.project_roles(tenant, None).next().is_some()
    }

    /// Whether the principal sees a project: through a provider or tenant
    /// grant, or a grant on that project.
    pub fn sees_project(&self, tenant: &str, project: &str) -> bool {
        self.provider_role().is_some()
            || self.tenant_roles(tenant).next().is_some()
            || self.project_roles(tenant, Some(project)).next().is_some()
    }

    pub fn is_provider(&self) -> bool {
        self.provider_role().is_some()
    }
}

/// Kinds of objects, as the policy sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Tenant,
    Project,
    User,
    Membership,
    TenantToken,
    TenantQuota,
    ProjectQuota,
    QuotaClaim,
    TenantAudit,
    ProviderUser,
    ProviderQuota,
    ProviderAudit,
    /// The caller's own identity and tokens.
    OwnIdentity,
    /// GPU nodes (provider inventory).
    Node,
    /// Provider-defined instance types: every principal may read them.
    InstanceType,
    /// The fleet's free and used capacity (provider).
    Capacity,
    /// Placed capacity held by a project.
    Allocation,
    /// The provider's image catalog: every principal may read it.
    Image,
    /// A tenant's bare-metal instances (and their sanitization records).
    Instance,
    /// Fabrics: switches, cabling, apply status and plans (provider).
    Fabric,
    /// A tenant's VPCs and everything in them: networks, attachments,
    /// security rules, floating IPs.
    Vpc,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Tenant => "tenant",
            Resource::Project => "project",
            Resource::User => "user",
            Resource::Membership => "membership",
            Resource::TenantToken => "tenant_token",
            Resource::TenantQuota => "tenant_quota",
            Resource::ProjectQuota => "project_quota",
            Resource::QuotaClaim => "quota_claim",
            Resource::TenantAudit => "tenant_audit",
            Resource::ProviderUser => "provider_user",
            Resource::ProviderQuota => "provider_quota",
            Resource::ProviderAudit => "provider_audit",
            Resource::OwnIdentity => "own_identity",
            Resource::Node => "node",
            Resource::InstanceType => "instance_type",
            Resource::Capacity => "capacity",
            Resource::Allocation => "allocation",
            Resource::Image => "image",
            Resource::Instance => "instance",
            Resource::Fabric => "fabric",
            Resource::Vpc => "vpc",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    List,
    Read,
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::List => "list",
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }

    pub fn is_read(self) -> bool {
        match self {
            Action::List | Action::Read => true,
            Action::Create | Action::Update | Action::Delete => false,
        }
    }
}

/// What a request acts on, resolved from its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Provider-scope collections (`/v1/tenants`, `/v1/users`, ...).
    Global,
    Tenant {
        tenant_id: String,
    },
    Project {
        tenant_id: String,
        project_id: String,
    },
    /// The caller's own identity (`/v1/me`, `/v1/tokens`).
    Own,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; the role that allowed it (recorded in the audit trail).
    Allow(Role),
    /// Visible but not allowed: 403.
    Deny,
    /// Not visible: 404.
    Hide,
}

/// The one authorization decision function.
pub fn authorize(p: &Principal, resource: Resource, action: Action, target: &Target) -> Decision {
    if let Some(role) = p.provider_role() {
        return if provider_allows(role, resource, action) {
            Decision::Allow(role)
        } else {
            Decision::Deny
        };
    }
    match target {
        Target::Own => match resource {
            Resource::OwnIdentity => Decision::Allow(best_role(p).unwrap_or(Role::TenantViewer)),
            _ => Decision::Deny,
        },
        Target::Global => match (resource, action) {
            // Tenants list what they can see (the handler filters), and
            // read the catalogue of instance types.
            (Resource::Tenant, Action::List)
            | (Resource::InstanceType | Resource::Image, Action::List | Action::Read) => {
                best_role(p).map(Decision::Allow).unwrap_or(Decision::Deny)
            }
            _ => Decision::Deny,
        },
        Target::Tenant { tenant_id } => {
            if !p.sees_tenant(tenant_id) {
                return Decision::Hide;
            }
            if let Some(r) = p.tenant_roles(tenant_id).min() {
                return allow_if(r, tenant_allows(r, resource, action));
            }
            // Only project-scoped grants in this tenant: the tenant itself is
            // readable and project/claim lists are filtered to their projects.
            let r = p.project_roles(tenant_id, None).min().expect("sees_tenant");
            let ok = matches!(
                (resource, action),
                (Resource::Tenant, Action::Read) | (Resource::Project, Action::List)
            );
            allow_if(r, ok)
        }
        Target::Project { tenant_id, project_id } => {
            if !p.sees_tenant(tenant_id) {
                return Decision::Hide;
            }
            if let Some(r) = p.tenant_roles(tenant_id).min() {
                return allow_if(r, tenant_allows(r, resource, action));
            }
            match p.project_roles(tenant_id, Some(project_id)).min() {
                None => Decision::Hide,
                Some(r) => {
                    allow_if(r, project_scoped(resource) && tenant_allows(r, resource, action))
                }
            }
        }
    }
}

fn allow_if(role: Role, ok: bool) -> Decision {
    if ok {
        Decision::Allow(role)
    } else {
        Decision::Deny
    }
}

fn best_role(p: &Principal) -> Option<Role> {
    p.grants.iter().map(|g| g.role).min()
}

fn provider_allows(role: Role, resource: Resource, action: Action) -> bool {
    match role {
        Role::ProviderAdmin => true,
        Role::ProviderViewer => action.is_read() || resource == Resource::OwnIdentity,
        Role::TenantAdmin | Role::TenantMember | Role::TenantViewer => false,
    }
}

/// Resources that live inside a project; project-scoped grants reach only these.
fn project_scoped(resource: Resource) -> bool {
    match resource {
        Resource::Project
        | Resource::ProjectQuota
        | Resource::QuotaClaim
        | Resource::Allocation
        | Resource::Instance
        | Resource::Vpc => true,
        Resource::Node
        | Resource::Fabric
        | Resource::InstanceType
        | Resource::Capacity
        | Resource::Image => false,
        Resource::Tenant
        | Resource::User
        | Resource::Membership
        | Resource::TenantToken
        | Resource::TenantQuota
        | Resource::TenantAudit
        | Resource::ProviderUser
        | Resource::ProviderQuota
        | Resource::ProviderAudit
        | Resource::OwnIdentity => false,
    }
}

/// The policy of the tenant roles, per resource and action. Exhaustive on
/// purpose: a new resource does not compile until its rules are written.
fn tenant_allows(role: Role, resource: Resource, action: Action) -> bool {
    use Action::*;
    let read = action.is_read();
    match role {
        Role::ProviderAdmin | Role::ProviderViewer => false,
        Role::TenantAdmin => match resource {
            // The tenant object and its quota belong to the provider.
            Resource::Tenant | Resource::TenantQuota | Resource::TenantAudit => read,
            Resource::Project
            | Resource::User
            | Resource::Membership
            | Resource::TenantToken
            | Resource::ProjectQuota
            | Resource::QuotaClaim
            | Resource::Allocation
            | Resource::Instance
            | Resource::Vpc
            | Resource::OwnIdentity => true,
            Resource::ProviderUser
            | Resource::ProviderQuota
            | Resource::ProviderAudit
            | Resource::Node
            | Resource::Fabric
            | Resource::InstanceType
            | Resource::Capacity
            | Resource::Image => false,
        },
        Role::TenantMember => match resource {
            Resource::Tenant
            | Resource::Project
            | Resource::User
            | Resource::Membership
            | Resource::TenantQuota
            | Resource::ProjectQuota => read,
            Resource::QuotaClaim
            | Resource::Allocation
            | Resource::Instance
            | Resource::Vpc
            | Resource::OwnIdentity => true,
            Resource::TenantToken | Resource::TenantAudit => false,
            Resource::ProviderUser
            | Resource::ProviderQuota
            | Resource::ProviderAudit
            | Resource::Node
            | Resource::Fabric
            | Resource::InstanceType
            | Resource::Capacity
            | Resource::Image => false,
        },
        Role::TenantViewer => match resource {
            Resource::Tenant
            | Resource::Project
            | Resource::User
            | Resource::Membership
            | Resource::TenantToken
            | Resource::TenantQuota
            | Resource::ProjectQuota
            | Resource::QuotaClaim
            | Resource::Allocation
            | Resource::Instance
            | Resource::Vpc
            | Resource::TenantAudit => matches!(action, List | Read),
            Resource::OwnIdentity => true,
            Resource::ProviderUser
            | Resource::ProviderQuota
            | Resource::ProviderAudit
            | Resource::Node
            | Resource::Fabric
            | Resource::InstanceType
            | Resource::Capacity
            | Resource::Image => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(grants: Vec<Grant>) -> Principal {
        Principal {
            user_id: "u".into(),
            user_name: "u".into(),
            tenant_id: None,
            token_id: "t".into(),
            grants,
        }
    }

    fn tenant(role: Role, t: &str) -> Grant {
        Grant { role, scope: GrantScope::Tenant { tenant_id: t.into() } }
    }

    #[test]
    fn other_tenants_are_hidden_for_every_resource_and_action() {
        let p = principal(vec![tenant(Role::TenantAdmin, "a")]);
        let other = Target::Tenant { tenant_id: "b".into() };
        let other_project = Target::Project { tenant_id: "b".into(), project_id: "p".into() };
        for r in [Resource::Tenant, Resource::Project, Resource::User, Resource::QuotaClaim] {
            for a in [Action::List, Action::Read, Action::Create, Action::Update, Action::Delete] {
                assert_eq!(authorize(&p, r, a, &other), Decision::Hide);
                assert_eq!(authorize(&p, r, a, &other_project), Decision::Hide);
            }
        }
    }

    #[test]
    fn tenant_roles() {
        let t = Target::Tenant { tenant_id: "a".into() };
        let admin = principal(vec![tenant(Role::TenantAdmin, "a")]);
        let member = principal(vec![tenant(Role::TenantMember, "a")]);
        let viewer = principal(vec![tenant(Role::TenantViewer, "a")]);
        assert_eq!(
            authorize(&admin, Resource::Project, Action::Create, &t),
            Decision::Allow(Role::TenantAdmin)
        );
        assert_eq!(authorize(&admin, Resource::Tenant, Action::Update, &t), Decision::Deny);
        assert_eq!(authorize(&admin, Resource::TenantQuota, Action::Update, &t), Decision::Deny);
        assert_eq!(authorize(&member, Resource::Project, Action::Create, &t), Decision::Deny);
        assert_eq!(
            authorize(&member, Resource::QuotaClaim, Action::Create, &t),
            Decision::Allow(Role::TenantMember)
        );
        assert_eq!(authorize(&viewer, Resource::QuotaClaim, Action::Create, &t), Decision::Deny);
        assert_eq!(
            authorize(&viewer, Resource::TenantAudit, Action::List, &t),
            Decision::Allow(Role::TenantViewer)
        );
        assert_eq!(
            authorize(&member, Resource::ProviderUser, Action::List, &Target::Global),
            Decision::Deny
        );
    }

    #[test]
    fn project_scoped_grants_reach_only_their_project() {
        let p = principal(vec![Grant {
            role: Role::TenantAdmin,
            scope: GrantScope::Project { tenant_id: "a".into(), project_id: "p1".into() },
        }]);
        let p1 = Target::Project { tenant_id: "a".into(), project_id: "p1".into() };
        let p2 = Target::Project { tenant_id: "a".into(), project_id: "p2".into() };
        let t = Target::Tenant { tenant_id: "a".into() };
        assert!(matches!(
            authorize(&p, Resource::QuotaClaim, Action::Create, &p1),
            Decision::Allow(_)
        ));
        assert_eq!(authorize(&p, Resource::QuotaClaim, Action::Create, &p2), Decision::Hide);
        assert!(matches!(authorize(&p, Resource::Tenant, Action::Read, &t), Decision::Allow(_)));
        assert_eq!(authorize(&p, Resource::User, Action::List, &t), Decision::Deny);
        assert_eq!(authorize(&p, Resource::Project, Action::Create, &t), Decision::Deny);
    }

    #[test]
    fn provider_roles() {
        let admin =
            principal(vec![Grant { role: Role::ProviderAdmin, scope: GrantScope::Provider }]);
        let viewer =
            principal(vec![Grant { role: Role::ProviderViewer, scope: GrantScope::Provider }]);
        let t = Target::Tenant { tenant_id: "x".into() };
        assert!(matches!(
            authorize(&admin, Resource::Tenant, Action::Delete, &t),
            Decision::Allow(_)
        ));
        assert!(matches!(
            authorize(&viewer, Resource::TenantAudit, Action::List, &t),
            Decision::Allow(_)
        ));
        assert_eq!(authorize(&viewer, Resource::Project, Action::Create, &t), Decision::Deny);
        assert!(matches!(
            authorize(&viewer, Resource::OwnIdentity, Action::Create, &Target::Own),
            Decision::Allow(_)
        ));
    }

    #[test]
    fn a_principal_without_grants_sees_nothing() {
        let p = principal(vec![]);
        assert_eq!(authorize(&p, Resource::Tenant, Action::List, &Target::Global), Decision::Deny);
        assert_eq!(
            authorize(
                &p,
                Resource::Tenant,
                Action::Read,
                &Target::Tenant { tenant_id: "a".into() }
            ),
            Decision::Hide
        );
    }
}
