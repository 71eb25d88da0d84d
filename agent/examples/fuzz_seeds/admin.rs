//! `admin_request` seeds: a valid request of each admin RPC, after the byte that picks it;
//! `enrol_request` seeds: an enrolment and a login, after the byte that picks them.

use super::Result;
use std::path::Path;

/// A valid request of each admin RPC, named after it; its first byte is its place in the
/// controller's `policy::roles::ADMIN_RPCS` (the order of this list), which the
/// `admin_request` target reads the same way.
pub fn requests(out: &Path) -> Result<()> {
    for (i, (rpc, bytes)) in admin_seeds().into_iter().enumerate() {
        let i = u8::try_from(i)?;
        std::fs::write(
            out.join(format!("admin-{rpc}")),
            [&[i][..], &bytes].concat(),
        )?;
    }
    Ok(())
}

/// An enrolment (first byte even) and a login (odd), each with a fresh key's CSR.
pub fn enrolments(out: &Path) -> Result<()> {
    use cordon_proto::{EnrollRequest, LoginRequest};
    let enrol = EnrollRequest {
        token: cordon_proto::secrets::new_token(),
        csr_der: csr(),
        host: Some(cordon_agent::sensors::inventory::host_facts()),
        labels: labels(&[("env", "prod"), ("role", "web")]),
    };
    let login = LoginRequest {
        invite: cordon_proto::secrets::new_token(),
        csr_der: csr(),
    };
    std::fs::write(out.join("enrol"), [&[0][..], &req(enrol)].concat())?;
    std::fs::write(out.join("login"), [&[1][..], &req(login)].concat())?;
    Ok(())
}

/// A CSR for a fresh key, as the agent and cordonctl make them (empty if that fails).
fn csr() -> Vec<u8> {
    rcgen::KeyPair::generate()
        .ok()
        .and_then(|k| cordon_agent::uplink::enroll::csr_for(&k).ok())
        .unwrap_or_default()
}

/// The encoded bytes of a request.
fn req(m: impl prost::Message) -> Vec<u8> {
    m.encode_to_vec()
}

/// A label map of `pairs`.
fn labels(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every admin RPC's seed, in the order of `ADMIN_RPCS`.
fn admin_seeds() -> Vec<(&'static str, Vec<u8>)> {
    [fleet_seeds(), collection_seeds(), detection_seeds()]
        .into_iter()
        .chain([incident_seeds(), people_seeds()])
        .flatten()
        .collect()
}

fn fleet_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use cordon_proto::*;
    let agent_id = "0f6c1a52".to_string();
    let kill = action::Kind::Kill(KillProcess {
        pid: 4242,
        tree: true,
        ..Default::default()
    });
    let isolate = Isolate {
        allow: vec!["10.0.0.0/8".into()],
        reason: "incident 7".into(),
    };
    vec![
        (
            "CreateToken",
            req(CreateTokenRequest {
                ttl_secs: 3600,
                uses: 5,
                labels: labels(&[("env", "prod")]),
            }),
        ),
        ("ListAgents", req(ListAgentsRequest {})),
        (
            "GetAgent",
            req(GetAgentRequest {
                agent_id: agent_id.clone(),
            }),
        ),
        (
            "RevokeAgent",
            req(RevokeAgentRequest {
                agent_id: agent_id.clone(),
            }),
        ),
        (
            "SubmitCommand",
            req(SubmitCommandRequest {
                agent_id: agent_id.clone(),
                ttl_secs: 60,
                wait_secs: 5,
                action: Some(Action { kind: Some(kill) }),
            }),
        ),
        (
            "IsolateByLabels",
            req(IsolateByLabelsRequest {
                labels: labels(&[("env", "prod"), ("role", "web")]),
                max_hosts: 2,
                isolate: Some(isolate),
                ..Default::default()
            }),
        ),
        (
            "ListCommands",
            req(ListCommandsRequest {
                agent_id,
                limit: 10,
            }),
        ),
        (
            "GetCommand",
            req(GetCommandRequest {
                command_id: "c1".into(),
            }),
        ),
    ]
}

fn collection_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use cordon_proto::*;
    let collect = Collect {
        collector: "processes".into(),
        args: vec!["--all".into()],
        max_secs: 30,
        ..Default::default()
    };
    let hunt_id = "h1".to_string();
    vec![
        (
            "ListCollectionRows",
            req(ListCollectionRowsRequest {
                command_ids: vec!["c1".into()],
                contains: "bash".into(),
                limit: 50,
                ..Default::default()
            }),
        ),
        (
            "CreateHunt",
            req(CreateHuntRequest {
                collect: Some(collect),
                labels: labels(&[("env", "prod")]),
                expires_secs: 600,
                ..Default::default()
            }),
        ),
        ("ListHunts", req(ListHuntsRequest { limit: 10 })),
        (
            "GetHunt",
            req(GetHuntRequest {
                hunt_id: hunt_id.clone(),
            }),
        ),
        ("CancelHunt", req(CancelHuntRequest { hunt_id })),
        (
            "ListFetchedFiles",
            req(ListFetchedFilesRequest {
                agent_id: "0f6c".into(),
                limit: 10,
            }),
        ),
        ("DownloadFile", req(DownloadFileRequest { id: "f1".into() })),
    ]
}

fn detection_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use cordon_proto::*;
    let rules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rules/linux/cordon_credential_file_write.yml"
    );
    let file = RuleFile {
        origin: "cordon_credential_file_write.yml".into(),
        yaml: std::fs::read_to_string(rules).unwrap_or_default(),
    };
    vec![
        (
            "QueryEvents",
            req(QueryEventsRequest {
                kind: "process".into(),
                since_ms: Some(1_700_000_000_000),
                contains: "curl".into(),
                limit: 20,
                ..Default::default()
            }),
        ),
        (
            "TailEvents",
            req(TailEventsRequest {
                agent_id: "0f6c".into(),
            }),
        ),
        ("ImportRules", req(ImportRulesRequest { files: vec![file] })),
        ("ListRules", req(ListRulesRequest {})),
        (
            "SetRuleEnabled",
            req(SetRuleEnabledRequest {
                rule_id: "r1".into(),
                enabled: true,
            }),
        ),
        (
            "ImportIocs",
            req(ImportIocsRequest {
                kind: "ip".into(),
                list: "bad".into(),
                values: vec!["10.0.0.2".into(), "2001:db8::1".into()],
                block: false,
            }),
        ),
        (
            "ListAlerts",
            req(ListAlertsRequest {
                level: "high".into(),
                limit: 20,
                ..Default::default()
            }),
        ),
        (
            "GetAlert",
            req(GetAlertRequest {
                alert_id: "a1".into(),
            }),
        ),
        (
            "ListIncidents",
            req(ListIncidentsRequest {
                status: "open".into(),
                limit: 20,
            }),
        ),
        (
            "GetIncident",
            req(GetIncidentRequest {
                incident_id: "i1".into(),
            }),
        ),
        (
            "SetIncidentStatus",
            req(SetIncidentStatusRequest {
                incident_id: "i1".into(),
                status: "resolved".into(),
            }),
        ),
    ]
}

fn incident_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use cordon_proto::*;
    let book = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../playbooks/download-exec.yml"
    );
    let yaml = std::fs::read_to_string(book).unwrap_or_default();
    let origin = "download-exec.yml".to_string();
    vec![
        (
            "ListAudit",
            req(ListAuditRequest {
                since_ms: 1_700_000_000_000,
                limit: 20,
                actor: "admin".into(),
            }),
        ),
        ("VerifyAudit", req(VerifyAuditRequest {})),
        (
            "AddIncidentNote",
            req(AddIncidentNoteRequest {
                incident_id: "i1".into(),
                text: "contained".into(),
            }),
        ),
        (
            "ApplyPlaybook",
            req(ApplyPlaybookRequest {
                origin: origin.clone(),
                yaml: yaml.clone(),
            }),
        ),
        ("ListPlaybooks", req(ListPlaybooksRequest {})),
        (
            "SetPlaybookEnabled",
            req(SetPlaybookEnabledRequest {
                name: "download-exec".into(),
                enabled: true,
            }),
        ),
        (
            "DryRunPlaybook",
            req(DryRunPlaybookRequest {
                origin,
                yaml,
                alert_id: "a1".into(),
            }),
        ),
        ("ListApprovals", req(ListApprovalsRequest { all: true })),
        (
            "DecideApproval",
            req(DecideApprovalRequest {
                approval_id: "p1".into(),
                approve: true,
                reason: "ok".into(),
            }),
        ),
        (
            "GetIncidentReport",
            req(GetIncidentReportRequest {
                incident_id: "i1".into(),
            }),
        ),
    ]
}

fn people_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use cordon_proto::*;
    let csr = csr();
    let name = "alice".to_string();
    vec![
        (
            "InviteUser",
            req(InviteUserRequest {
                name: name.clone(),
                kind: "user".into(),
                role: "analyst".into(),
                expires_at_ms: 0,
            }),
        ),
        ("ListUsers", req(ListUsersRequest {})),
        ("GetUser", req(GetUserRequest { name: name.clone() })),
        (
            "SetUserState",
            req(SetUserStateRequest {
                name: name.clone(),
                state: "disabled".into(),
            }),
        ),
        (
            "SetUserRole",
            req(SetUserRoleRequest {
                name: name.clone(),
                role: "responder".into(),
            }),
        ),
        (
            "SetUserPassword",
            req(SetUserPasswordRequest {
                name: name.clone(),
                password: "correct horse battery".into(),
            }),
        ),
        (
            "SetUserTotp",
            req(SetUserTotpRequest { name, enable: true }),
        ),
        (
            "RenewCredential",
            req(RenewCredentialRequest { csr_der: csr }),
        ),
        ("WhoAmI", req(WhoAmIRequest {})),
        (
            "GetProcessTree",
            req(GetProcessTreeRequest {
                agent_id: "0f6c".into(),
                seq: 3,
            }),
        ),
    ]
}
