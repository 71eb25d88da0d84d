//! Every admin request, as the controller's admin service reads it from an administrator's
//! call: the first byte picks the RPC (its place in `policy::roles::ADMIN_RPCS`, the list the
//! authorisation checks, which a controller test keeps equal to the proto's service), the rest
//! is decoded with prost as that RPC's request and goes through the pure parsing and checks
//! its handler calls before the store:
//! - CreateToken: `limits::check_labels`;
//! - SubmitCommand: `core::action_kind` and the action's JSON (the audit entry);
//! - IsolateByLabels: `check_labels`, `fanout::selector_text`, `fanout::select` over a small
//!   fleet with a protected label, `fanout::check`;
//! - CreateHunt: the collector name (`names::COLLECTORS`), `check_labels`, `selector_text`,
//!   `select`; the request's JSON (the audit entry);
//! - QueryEvents (`MAX_QUERY_TEXT`), ListAlerts (`core::level_index`), ListIncidents and
//!   SetIncidentStatus (`core::incident_status`), ListAudit: `core::list_limit`;
//! - ImportRules: `Detector::compile` of each file into a fresh detector;
//! - ImportIocs: `iocs::KINDS`, `iocs::normalise` (which must be idempotent), `iocs::caution`;
//! - ApplyPlaybook, DryRunPlaybook: `playbook::spec::parse`;
//! - InviteUser: `Kind::from_name`, `Role::from_str`, `people::valid_name`; SetUserRole:
//!   `Role::from_str`;
//! - RenewCredential: `Ca::sign_principal` of the CSR (a refusal must blame the CSR).
//!
//! The other RPCs only name a record (an id, a name, a limit, a flag) for the store, or have
//! their checks inline in the handler (SetUserState, SetUserPassword, AddIncidentNote): for them
//! only the decoding is fuzzed. An RPC added to `ADMIN_RPCS` without an arm here panics, so
//! none is missed. What must hold: no panic, whatever an administrator's client sends.
#![no_main]

use cordon_controller::ca::Ca;
use cordon_controller::core::{fanout, incident_status, level_index, list_limit};
use cordon_controller::detect::{Detector, iocs};
use cordon_controller::policy::grouping::Grouping;
use cordon_controller::policy::people::{Kind, valid_name};
use cordon_controller::policy::roles::{ADMIN_RPCS, Role};
use cordon_controller::store::Agent;
use cordon_proto::limits::{MAX_QUERY_TEXT, check_labels};
use cordon_proto::*;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

/// Decodes `bytes` as `M` and, when they are one, runs `check` on it.
fn with<M: Message + Default>(bytes: &[u8], check: impl FnOnce(M)) {
    if let Ok(m) = M::decode(bytes) {
        check(m);
    }
}

/// Only decoded: the request names a record for the store.
fn decoded<M: Message + Default>(bytes: &[u8]) {
    with(bytes, |_: M| {});
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (rpc, _) = ADMIN_RPCS[usize::from(pick) % ADMIN_RPCS.len()];
    route(rpc, rest);
});

fn route(rpc: &str, b: &[u8]) {
    match rpc {
        "CreateToken" => with(b, |r: CreateTokenRequest| drop(check_labels(&r.labels))),
        "ListAgents" => decoded::<ListAgentsRequest>(b),
        "GetAgent" => decoded::<GetAgentRequest>(b),
        "RevokeAgent" => decoded::<RevokeAgentRequest>(b),
        "SubmitCommand" => with(b, submit_command),
        "IsolateByLabels" => with(b, isolate_by_labels),
        "ListCommands" => decoded::<ListCommandsRequest>(b),
        "GetCommand" => decoded::<GetCommandRequest>(b),
        "ListCollectionRows" => decoded::<ListCollectionRowsRequest>(b),
        "CreateHunt" => with(b, create_hunt),
        "ListHunts" => decoded::<ListHuntsRequest>(b),
        "GetHunt" => decoded::<GetHuntRequest>(b),
        "CancelHunt" => decoded::<CancelHuntRequest>(b),
        "ListFetchedFiles" => decoded::<ListFetchedFilesRequest>(b),
        "DownloadFile" => decoded::<DownloadFileRequest>(b),
        "QueryEvents" => with(b, query_events),
        "TailEvents" => decoded::<TailEventsRequest>(b),
        "ImportRules" => with(b, import_rules),
        "ListRules" => decoded::<ListRulesRequest>(b),
        "SetRuleEnabled" => decoded::<SetRuleEnabledRequest>(b),
        "ImportIocs" => with(b, import_iocs),
        "ListAlerts" => with(b, list_alerts),
        "GetAlert" => decoded::<GetAlertRequest>(b),
        "ListIncidents" => with(b, list_incidents),
        "GetIncident" => decoded::<GetIncidentRequest>(b),
        "SetIncidentStatus" => with(b, |r: SetIncidentStatusRequest| {
            drop(incident_status(&r.status))
        }),
        "ListAudit" => with(b, |r: ListAuditRequest| drop(list_limit(r.limit))),
        "VerifyAudit" => decoded::<VerifyAuditRequest>(b),
        "AddIncidentNote" => decoded::<AddIncidentNoteRequest>(b),
        "ApplyPlaybook" => with(b, |r: ApplyPlaybookRequest| playbook(&r.yaml, &r.origin)),
        "ListPlaybooks" => decoded::<ListPlaybooksRequest>(b),
        "SetPlaybookEnabled" => decoded::<SetPlaybookEnabledRequest>(b),
        "DryRunPlaybook" => with(b, |r: DryRunPlaybookRequest| playbook(&r.yaml, &r.origin)),
        "ListApprovals" => decoded::<ListApprovalsRequest>(b),
        "DecideApproval" => decoded::<DecideApprovalRequest>(b),
        "GetIncidentReport" => decoded::<GetIncidentReportRequest>(b),
        "InviteUser" => with(b, invite_user),
        "ListUsers" => decoded::<ListUsersRequest>(b),
        "GetUser" => decoded::<GetUserRequest>(b),
        "SetUserState" => decoded::<SetUserStateRequest>(b),
        "SetUserRole" => with(b, |r: SetUserRoleRequest| drop(r.role.parse::<Role>())),
        "SetUserPassword" => decoded::<SetUserPasswordRequest>(b),
        "SetUserTotp" => decoded::<SetUserTotpRequest>(b),
        "RenewCredential" => with(b, renew_credential),
        "WhoAmI" => decoded::<WhoAmIRequest>(b),
        "GetProcessTree" => decoded::<GetProcessTreeRequest>(b),
        other => panic!("admin RPC {other} has no arm in the admin_request fuzz target"),
    }
}

fn submit_command(r: SubmitCommandRequest) {
    let kind = r.action.and_then(|a| a.kind);
    if let Some(k) = &kind {
        let _ = cordon_controller::core::action_kind(k);
    }
    let _ = serde_json::to_string(&kind);
}

/// A small fleet: one revoked agent, one carrying the protected label.
fn fleet() -> Vec<Agent> {
    let revoked = Agent {
        revoked_at_ms: Some(1),
        ..Agent::for_tests("a3", &[("env", "prod")])
    };
    vec![
        Agent::for_tests("a1", &[("env", "prod"), ("role", "web")]),
        Agent::for_tests("a2", &[("env", "prod"), ("tier", "critical")]),
        revoked,
        Agent::for_tests("a4", &[("env", "dev"), ("", "")]),
    ]
}

/// Selects the fleet's hosts by `labels`, as a fan-out or a hunt does; the selector text.
fn selection(
    labels: &HashMap<String, String>,
    protected: &[(String, String)],
) -> (String, fanout::Selection) {
    let _ = check_labels(labels);
    let text = fanout::selector_text(labels);
    (text, fanout::select(fleet(), labels, protected))
}

fn isolate_by_labels(r: IsolateByLabelsRequest) {
    let protected = [("tier".to_string(), "critical".to_string())];
    let (text, sel) = selection(&r.labels, &protected);
    let _ = fanout::check(&sel, &text, r.max_hosts, 2, r.skip_protected);
}

fn create_hunt(r: CreateHuntRequest) {
    let collect = r.collect.clone().unwrap_or_default();
    let _ = names::COLLECTORS.contains(&collect.collector.as_str());
    let _ = selection(&r.labels, &[]);
    let _ = serde_json::to_string(&collect);
}

fn query_events(r: QueryEventsRequest) {
    let _ = r.contains.len() > MAX_QUERY_TEXT;
    let _ = list_limit(r.limit);
}

fn import_rules(r: ImportRulesRequest) {
    let detector = Detector::new(Grouping {
        alert_window_ms: 1,
        incident_window_ms: 1,
    });
    for f in r.files {
        let _ = detector.compile(&f.origin, &f.yaml);
    }
}

/// The controller's own addresses, as `caution` compares indicators against them.
static OWN: LazyLock<Vec<String>> =
    LazyLock::new(|| vec!["10.0.0.1".into(), "controller.example".into()]);

fn import_iocs(r: ImportIocsRequest) {
    if !iocs::KINDS.contains(&r.kind.as_str()) {
        return;
    }
    for v in &r.values {
        if let Ok(n) = iocs::normalise(&r.kind, v) {
            assert_eq!(iocs::normalise(&r.kind, &n).as_ref(), Ok(&n), "{v:?}");
            let _ = iocs::caution(&r.kind, &n, &OWN);
        }
    }
}

fn list_alerts(r: ListAlertsRequest) {
    let _ = level_index(&r.level);
    let _ = list_limit(r.limit);
}

fn list_incidents(r: ListIncidentsRequest) {
    if !r.status.is_empty() {
        let _ = incident_status(&r.status);
    }
    let _ = list_limit(r.limit);
}

fn playbook(yaml: &str, origin: &str) {
    let _ = cordon_controller::playbook::spec::parse(yaml, origin);
}

fn invite_user(r: InviteUserRequest) {
    if !r.kind.is_empty() {
        let _ = Kind::from_name(&r.kind);
    }
    let _ = r.role.parse::<Role>();
    let _ = valid_name(&r.name);
}

static CA: LazyLock<Ca> = LazyLock::new(|| Ca::create("fuzz").expect("a CA").0);

fn renew_credential(r: RenewCredentialRequest) {
    let ttl = Duration::from_secs(60);
    if let Err(e) = CA.sign_principal(&r.csr_der, Kind::User, "fuzz", ttl) {
        assert!(e.is_csr_problem(), "{e}");
    }
}
