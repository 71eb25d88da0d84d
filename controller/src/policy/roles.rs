//! Roles and permissions: the five built-in roles, what each may do, and the one table that
//! maps every admin RPC to exactly one permission. The admin service checks the table before
//! any handler runs (`api/authorize.rs`), so an RPC missing from it is refused to everyone;
//! a test compares the table with the service's RPCs in the proto file.

use std::fmt;
use std::str::FromStr;

/// What a principal may do; each admin RPC needs exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read agents, commands, events, alerts, incidents, rules, playbooks, runs, approvals and
    /// the audit log.
    Read,
    /// Renew one's own credential.
    OwnCredential,
    /// Incident notes, status and severity; playbook dry runs.
    Triage,
    /// Commands to hosts: isolate, release, kill, quarantine, restore, block, unblock, and
    /// the read-only ones (ping, inventory).
    Respond,
    /// Decide pending approvals.
    Approve,
    /// Enrolment tokens and agent revocation.
    ManageAgents,
    /// Rules, indicator lists and playbooks.
    ManageDetection,
    /// People and service accounts.
    ManageUsers,
}

impl Permission {
    pub const ALL: [Permission; 8] = [
        Self::Read,
        Self::OwnCredential,
        Self::Triage,
        Self::Respond,
        Self::Approve,
        Self::ManageAgents,
        Self::ManageDetection,
        Self::ManageUsers,
    ];

    /// The permission's name in refusals, the README and the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::OwnCredential => "own_credential",
            Self::Triage => "triage",
            Self::Respond => "respond",
            Self::Approve => "approve",
            Self::ManageAgents => "manage_agents",
            Self::ManageDetection => "manage_detection",
            Self::ManageUsers => "manage_users",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The built-in roles, each holding every permission of the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Viewer,
    Analyst,
    Responder,
    Approver,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Self::Viewer,
        Self::Analyst,
        Self::Responder,
        Self::Approver,
        Self::Admin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Analyst => "analyst",
            Self::Responder => "responder",
            Self::Approver => "approver",
            Self::Admin => "admin",
        }
    }

    /// The least role that holds `p`.
    fn least_for(p: Permission) -> Role {
        match p {
            Permission::Read | Permission::OwnCredential => Self::Viewer,
            Permission::Triage => Self::Analyst,
            Permission::Respond => Self::Responder,
            Permission::Approve => Self::Approver,
            Permission::ManageAgents | Permission::ManageDetection | Permission::ManageUsers => {
                Self::Admin
            }
        }
    }

    pub fn allows(self, p: Permission) -> bool {
        self >= Self::least_for(p)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: one of viewer, analyst, responder, approver, admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

/// Every admin RPC (its method name in `service AdminService`) and the one permission it
/// needs.
pub const ADMIN_RPCS: &[(&str, Permission)] = &[
    ("CreateToken", Permission::ManageAgents),
    ("ListAgents", Permission::Read),
    ("GetAgent", Permission::Read),
    ("RevokeAgent", Permission::ManageAgents),
    ("SubmitCommand", Permission::Respond),
    ("IsolateByLabels", Permission::Respond),
    ("ListCommands", Permission::Read),
    ("GetCommand", Permission::Read),
    ("ListCollectionRows", Permission::Read),
    ("CreateHunt", Permission::Respond),
    ("ListHunts", Permission::Read),
    ("GetHunt", Permission::Read),
    ("CancelHunt", Permission::Respond),
    ("ListFetchedFiles", Permission::Read),
    ("DownloadFile", Permission::Respond),
    ("QueryEvents", Permission::Read),
    ("TailEvents", Permission::Read),
    ("ImportRules", Permission::ManageDetection),
    ("ListRules", Permission::Read),
    ("SetRuleEnabled", Permission::ManageDetection),
    ("ImportIocs", Permission::ManageDetection),
    ("ListAlerts", Permission::Read),
    ("GetAlert", Permission::Read),
    ("ListIncidents", Permission::Read),
    ("GetIncident", Permission::Read),
    ("SetIncidentStatus", Permission::Triage),
    ("ListAudit", Permission::Read),
    ("VerifyAudit", Permission::Read),
    ("AddIncidentNote", Permission::Triage),
    ("ApplyPlaybook", Permission::ManageDetection),
    ("ListPlaybooks", Permission::Read),
    ("SetPlaybookEnabled", Permission::ManageDetection),
    ("DryRunPlaybook", Permission::Triage),
    ("ListApprovals", Permission::Read),
    ("DecideApproval", Permission::Approve),
    ("GetIncidentReport", Permission::Read),
    ("InviteUser", Permission::ManageUsers),
    ("ListUsers", Permission::ManageUsers),
    ("GetUser", Permission::ManageUsers),
    ("SetUserState", Permission::ManageUsers),
    ("SetUserRole", Permission::ManageUsers),
    ("SetUserPassword", Permission::ManageUsers),
    ("SetUserTotp", Permission::ManageUsers),
    ("RenewCredential", Permission::OwnCredential),
    ("WhoAmI", Permission::OwnCredential),
    ("GetProcessTree", Permission::Read),
];

/// The permission an admin RPC needs, by its method name; `None` for a name not in the
/// table (which is then refused to everyone).
pub fn permission_for(method: &str) -> Option<Permission> {
    ADMIN_RPCS
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, p)| *p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The method names of `service AdminService` in the proto file.
    fn proto_admin_rpcs() -> Vec<String> {
        let proto = include_str!("../../../proto/proto/cordon/v1/cordon.proto");
        let body = proto
            .split("service AdminService {")
            .nth(1)
            .expect("AdminService in the proto");
        let body = &body[..body.find("\n}").expect("end of the service")];
        body.lines()
            .filter_map(|l| l.trim().strip_prefix("rpc "))
            .map(|l| l[..l.find('(').expect("rpc NAME(")].trim().to_string())
            .collect()
    }

    #[test]
    fn every_admin_rpc_has_exactly_one_permission() {
        let rpcs = proto_admin_rpcs();
        assert!(rpcs.len() >= 30, "{rpcs:?}");
        for rpc in &rpcs {
            let entries = ADMIN_RPCS.iter().filter(|(m, _)| m == rpc).count();
            assert_eq!(entries, 1, "{rpc} must appear once in ADMIN_RPCS");
        }
        for (m, _) in ADMIN_RPCS {
            assert!(
                rpcs.iter().any(|r| r == m),
                "{m} is not an AdminService RPC"
            );
        }
    }

    #[test]
    fn the_matrix_is_cumulative_and_only_admins_manage() {
        use Permission::*;
        assert!(Role::Viewer.allows(Read) && !Role::Viewer.allows(Triage));
        assert!(Role::Analyst.allows(Triage) && !Role::Analyst.allows(Respond));
        assert!(Role::Responder.allows(Respond) && !Role::Responder.allows(Approve));
        assert!(Role::Approver.allows(Approve) && !Role::Approver.allows(ManageUsers));
        for p in Permission::ALL {
            assert!(Role::Admin.allows(p));
        }
        for r in [Role::Viewer, Role::Analyst, Role::Responder, Role::Approver] {
            for p in [ManageAgents, ManageDetection, ManageUsers] {
                assert!(!r.allows(p), "{r} must not hold {p}");
            }
        }
    }

    #[test]
    fn roles_parse_by_name_only() {
        for r in Role::ALL {
            assert_eq!(r.name().parse::<Role>(), Ok(r));
        }
        assert!("root".parse::<Role>().is_err());
        assert!("Admin".parse::<Role>().is_err());
    }
}
