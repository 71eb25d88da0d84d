//! The admin service, for admin certificates only: tokens, agents, revocation and commands.
//! Every handler that changes something records it, with its outcome, in the audit log
//! (`api/audit.rs`).

use super::Controller;
use super::audit::{audit_record, verification};
use super::commands::{action_kind, record};
use super::detection::{alert_record, check_status, incident_record, level_index, rule_record};
use super::playbooks::approval_record;
use crate::store::{Agent, AuditEntry, EventFilter, StoredEvent};
use cordon_proto::admin_service_server::AdminService;
use cordon_proto::limits::{MAX_LIST, MAX_QUERY_TEXT, MAX_TOKEN_USES, check_labels};
use cordon_proto::time::now_ms;
use cordon_proto::*;
use prost::Message;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

const DEFAULT_TOKEN_TTL: u64 = 3600;
const MAX_TOKEN_TTL: u64 = 30 * 24 * 3600;
const MAX_WAIT: u64 = 300;
const DEFAULT_LIST: u32 = 100;
/// Most rule ids named in the audit entry of one import.
const MAX_AUDITED_RULES: usize = 100;

/// A listing's row limit: 0 (unset) is the default; more than [`MAX_LIST`] is refused, not
/// quietly cut.
fn list_limit(limit: u32) -> Result<u32, Status> {
    match limit {
        0 => Ok(DEFAULT_LIST),
        n if n > MAX_LIST => Err(Status::invalid_argument(format!(
            "limit {n} is over the most one listing returns ({MAX_LIST})"
        ))),
        n => Ok(n),
    }
}

pub struct AdminApi(pub Arc<Controller>);

impl AdminApi {
    /// Submits a command and, if asked, waits for its result; records it in the audit log
    /// with the status it reached.
    async fn submit_audited(
        &self,
        admin: String,
        req: SubmitCommandRequest,
    ) -> Result<CommandRecord, Status> {
        let action = req.action.clone().and_then(|a| a.kind);
        let mut entry = AuditEntry::new(
            &admin,
            format!("command.{}", action.as_ref().map_or("unknown", action_kind)),
            format!("agent:{}", req.agent_id),
        )
        .detail(json!({ "action": action, "ttl_secs": req.ttl_secs, "wait_secs": req.wait_secs }));
        // An override of the agent's protection stands out in the log, not only in the action.
        if let Some(action::Kind::Quarantine(q)) = &action
            && q.force
        {
            entry.detail["force"] = json!(true);
        }
        let result = async {
            let agent = self.resolve(&req.agent_id).await?;
            if agent.revoked_at_ms.is_some() {
                return Err(Status::failed_precondition(format!(
                    "agent {} is revoked",
                    agent.id
                )));
            }
            let action =
                action.ok_or_else(|| Status::invalid_argument("a command action is required"))?;
            let ttl = if req.ttl_secs == 0 {
                self.0.config.command_ttl_secs
            } else {
                req.ttl_secs
            };
            let row = self
                .0
                .submit_command(agent.id, action, Duration::from_secs(ttl), admin.clone())
                .await?;
            if req.wait_secs > 0 {
                let wait = Duration::from_secs(req.wait_secs.min(MAX_WAIT));
                Ok(self.0.wait_command(&row.id, wait).await?.unwrap_or(row))
            } else {
                Ok(row)
            }
        }
        .await;
        // The outcome is the command's status when the answer goes back: its result when the
        // caller waited for it (as cordonctl does), otherwise pending or delivered.
        self.0
            .audited(entry, result, |row, e| {
                e.target = format!("agent:{}", row.agent_id);
                e.detail["command_id"] = json!(row.id);
                e.outcome = match row.error.as_str() {
                    "" => row.status.as_str().to_string(),
                    why => format!("{}: {why}", row.status.as_str()),
                };
            })
            .await
            .map(record)
    }

    /// An empty id means "every agent"; otherwise as [`Self::resolve`].
    async fn resolve_optional(&self, id: &str) -> Result<Option<String>, Status> {
        if id.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.resolve(id).await?.id))
    }

    /// Finds an agent by id or unambiguous id prefix.
    async fn resolve(&self, id: &str) -> Result<Agent, Status> {
        if id.is_empty() {
            return Err(Status::invalid_argument("an agent id is required"));
        }
        if let Some(a) = self.0.store.agent(id.to_string()).await? {
            return Ok(a);
        }
        let mut found = self.0.store.agents_by_prefix(id.to_string()).await?;
        match found.len() {
            0 => Err(Status::not_found(format!("no agent {id:?}"))),
            1 => Ok(found.remove(0)),
            _ => Err(Status::invalid_argument(format!(
                "agent id prefix {id:?} is ambiguous"
            ))),
        }
    }
}

fn agent_record(a: Agent, online: bool) -> AgentRecord {
    AgentRecord {
        agent_id: a.id,
        host: Some(a.host),
        labels: a.labels,
        enrolled_at_ms: a.enrolled_at_ms,
        last_seen_ms: a.last_seen_ms,
        online,
        certificate_serial: a.cert_serial,
        certificate_expires_at_ms: a.cert_expires_at_ms,
        revoked: a.revoked_at_ms.is_some(),
        revoked_at_ms: a.revoked_at_ms.unwrap_or(0),
        process_sensor: a.process_sensor,
        isolation_desired: a.isolation_desired,
        containment: a.containment,
        metrics: a.metrics,
    }
}

pub fn event_record(e: &StoredEvent) -> EventRecord {
    EventRecord {
        agent_id: e.agent_id.clone(),
        seq: e.seq,
        time_ms: e.time_ms,
        kind: e.kind.clone(),
        summary: e.summary.clone(),
        received_at_ms: e.received_at_ms,
        event: Event::decode(e.body.as_slice()).ok(),
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    type TailEventsStream = ReceiverStream<Result<EventRecord, Status>>;

    async fn query_events(
        &self,
        req: Request<QueryEventsRequest>,
    ) -> Result<Response<QueryEventsResponse>, Status> {
        Controller::admin_peer(&req)?;
        let r = req.into_inner();
        if r.contains.len() > MAX_QUERY_TEXT {
            return Err(Status::invalid_argument(format!(
                "the text to search for is {} bytes, over the limit of {MAX_QUERY_TEXT}",
                r.contains.len()
            )));
        }
        let agent_id = self.resolve_optional(&r.agent_id).await?;
        let some = |s: String| (!s.is_empty()).then_some(s);
        let filter = EventFilter {
            agent_id,
            kind: some(r.kind),
            since_ms: r.since_ms,
            until_ms: r.until_ms,
            contains: some(r.contains),
            limit: list_limit(r.limit)?,
        };
        let events = self
            .0
            .store
            .query_events(filter)
            .await?
            .iter()
            .map(event_record)
            .collect();
        Ok(Response::new(QueryEventsResponse { events }))
    }

    async fn tail_events(
        &self,
        req: Request<TailEventsRequest>,
    ) -> Result<Response<Self::TailEventsStream>, Status> {
        Controller::admin_peer(&req)?;
        let r = req.into_inner();
        let agent_id = self.resolve_optional(&r.agent_id).await?;
        let mut rx = self.0.events.subscribe();
        let (tx, out) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            loop {
                let e = tokio::select! {
                    _ = tx.closed() => return,
                    e = rx.recv() => e,
                };
                match e {
                    Ok(e) if agent_id.as_ref().is_none_or(|a| *a == e.agent_id) => {
                        if tx.send(Ok(event_record(&e))).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "an events tail fell behind");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(out)))
    }

    async fn create_token(
        &self,
        req: Request<CreateTokenRequest>,
    ) -> Result<Response<CreateTokenResponse>, Status> {
        let admin = Controller::admin_peer(&req)?;
        let req = req.into_inner();
        let entry = AuditEntry::new(&admin, "token.create", "").detail(json!({
            "ttl_secs": req.ttl_secs, "uses": req.uses, "labels": req.labels,
        }));
        let result = async {
            check_labels(&req.labels).map_err(Status::invalid_argument)?;
            let ttl = if req.ttl_secs == 0 {
                DEFAULT_TOKEN_TTL
            } else {
                req.ttl_secs
            };
            if ttl > MAX_TOKEN_TTL {
                return Err(Status::invalid_argument(format!(
                    "token ttl is over {MAX_TOKEN_TTL} seconds"
                )));
            }
            let uses = if req.uses == 0 { 1 } else { req.uses };
            if uses > MAX_TOKEN_USES {
                return Err(Status::invalid_argument(format!(
                    "token uses is over {MAX_TOKEN_USES}"
                )));
            }
            let token = cordon_proto::secrets::new_token();
            let now = now_ms();
            let expires_at_ms = now + (ttl * 1000) as i64;
            self.0
                .store
                .create_token(
                    super::enroll::token_hash(&token),
                    now,
                    expires_at_ms,
                    uses,
                    req.labels.clone(),
                    admin.clone(),
                )
                .await?;
            tracing::info!(by = %admin, uses, ttl_secs = ttl, "enrolment token created");
            Ok(CreateTokenResponse {
                token,
                expires_at_ms,
                uses,
                controller_url: self.0.config.url.clone(),
                ca_fingerprint: self.0.ca.fingerprint(),
                labels: req.labels.clone(),
            })
        }
        .await;
        // The token itself is a secret: the entry names it by its stored hash.
        self.0
            .audited(entry, result, |t, e| {
                e.target = super::enroll::token_ref(&t.token);
                e.detail["uses"] = json!(t.uses);
                e.detail["expires_at_ms"] = json!(t.expires_at_ms);
            })
            .await
            .map(Response::new)
    }

    async fn list_agents(
        &self,
        req: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        Controller::admin_peer(&req)?;
        let agents = self
            .0
            .store
            .agents()
            .await?
            .into_iter()
            .map(|a| {
                let online = self.0.sessions.is_online(&a.id);
                agent_record(a, online)
            })
            .collect();
        Ok(Response::new(ListAgentsResponse { agents }))
    }

    async fn get_agent(
        &self,
        req: Request<GetAgentRequest>,
    ) -> Result<Response<AgentRecord>, Status> {
        Controller::admin_peer(&req)?;
        let a = self.resolve(&req.get_ref().agent_id).await?;
        let online = self.0.sessions.is_online(&a.id);
        Ok(Response::new(agent_record(a, online)))
    }

    async fn revoke_agent(
        &self,
        req: Request<RevokeAgentRequest>,
    ) -> Result<Response<AgentRecord>, Status> {
        let admin = Controller::admin_peer(&req)?;
        let asked = req.into_inner().agent_id;
        let entry = AuditEntry::new(&admin, "agent.revoke", format!("agent:{asked}"));
        let result = async {
            let id = self.resolve(&asked).await?.id;
            // Refuse new handshakes first, then cut the open stream.
            if let Ok(mut set) = self.0.revoked.write() {
                set.insert(id.clone());
            }
            let agent = self
                .0
                .store
                .revoke_agent(id.clone(), now_ms())
                .await?
                .ok_or_else(|| Status::not_found(format!("no agent {id}")))?;
            let was_online = self.0.sessions.close(
                &id,
                Status::permission_denied("this agent has been revoked"),
            );
            tracing::warn!(agent_id = %id, by = %admin, was_online, "agent revoked");
            Ok((agent_record(agent, false), was_online))
        }
        .await;
        self.0
            .audited(entry, result, |(a, was_online), e| {
                e.target = format!("agent:{}", a.agent_id);
                e.detail = json!({ "was_online": was_online });
            })
            .await
            .map(|(a, _)| Response::new(a))
    }

    async fn submit_command(
        &self,
        req: Request<SubmitCommandRequest>,
    ) -> Result<Response<CommandRecord>, Status> {
        let admin = Controller::admin_peer(&req)?;
        let req = req.into_inner();
        // In a task of its own: a caller that hangs up while waiting for the result must not
        // cancel the audit entry of a command already sent.
        let api = AdminApi(self.0.clone());
        tokio::spawn(async move { api.submit_audited(admin, req).await })
            .await
            .map_err(|e| Status::internal(format!("the command task failed: {e}")))?
            .map(Response::new)
    }

    async fn list_commands(
        &self,
        req: Request<ListCommandsRequest>,
    ) -> Result<Response<ListCommandsResponse>, Status> {
        Controller::admin_peer(&req)?;
        let req = req.into_inner();
        let agent = self.resolve_optional(&req.agent_id).await?;
        let limit = list_limit(req.limit)?;
        let commands = self
            .0
            .store
            .commands(agent, limit)
            .await?
            .into_iter()
            .map(record)
            .collect();
        Ok(Response::new(ListCommandsResponse { commands }))
    }

    async fn get_command(
        &self,
        req: Request<GetCommandRequest>,
    ) -> Result<Response<CommandRecord>, Status> {
        Controller::admin_peer(&req)?;
        let id = req.into_inner().command_id;
        let row = self
            .0
            .store
            .command(id.clone())
            .await?
            .ok_or_else(|| Status::not_found(format!("no command {id:?}")))?;
        Ok(Response::new(record(row)))
    }

    async fn import_rules(
        &self,
        req: Request<ImportRulesRequest>,
    ) -> Result<Response<ImportRulesResponse>, Status> {
        let admin = Controller::admin_peer(&req)?;
        let files = req.into_inner().files;
        let entry =
            AuditEntry::new(&admin, "rules.import", "").detail(json!({ "files": files.len() }));
        let result = self.0.import_rules(files).await;
        self.0
            .audited(entry, result, |r, e| {
                let count = |o: &str| r.outcomes.iter().filter(|x| x.outcome == o).count();
                let loaded: Vec<&str> = r
                    .outcomes
                    .iter()
                    .filter(|x| x.outcome == "loaded")
                    .map(|x| x.rule_id.as_str())
                    .take(MAX_AUDITED_RULES)
                    .collect();
                e.detail["loaded"] = json!(count("loaded"));
                e.detail["refused"] = json!(count("refused"));
                e.detail["skipped"] = json!(count("skipped"));
                e.detail["rule_ids"] = json!(loaded);
            })
            .await
            .map(Response::new)
    }

    async fn list_rules(
        &self,
        req: Request<ListRulesRequest>,
    ) -> Result<Response<ListRulesResponse>, Status> {
        Controller::admin_peer(&req)?;
        let rules = self.0.store.rules().await?;
        Ok(Response::new(ListRulesResponse {
            rules: rules.into_iter().map(rule_record).collect(),
        }))
    }

    async fn set_rule_enabled(
        &self,
        req: Request<SetRuleEnabledRequest>,
    ) -> Result<Response<RuleRecord>, Status> {
        let admin = Controller::admin_peer(&req)?;
        let r = req.into_inner();
        let action = if r.enabled {
            "rule.enable"
        } else {
            "rule.disable"
        };
        let entry = AuditEntry::new(&admin, action, format!("rule:{}", r.rule_id));
        let result = async {
            let row = self
                .0
                .store
                .set_rule_enabled(r.rule_id.clone(), r.enabled)
                .await?
                .ok_or_else(|| Status::not_found(format!("no rule {:?}", r.rule_id)))?;
            self.0.detector.set_enabled(&row.id, row.enabled);
            Ok(rule_record(row))
        }
        .await;
        self.0
            .audited(entry, result, |_, _| {})
            .await
            .map(Response::new)
    }

    async fn import_iocs(
        &self,
        req: Request<ImportIocsRequest>,
    ) -> Result<Response<ImportIocsResponse>, Status> {
        let admin = Controller::admin_peer(&req)?;
        let r = req.into_inner();
        let entry = AuditEntry::new(&admin, "iocs.import", format!("iocs:{}:{}", r.kind, r.list))
            .detail(json!({ "values": r.values.len() }));
        let result = self.0.import_iocs(r).await;
        self.0
            .audited(entry, result, |r, e| {
                e.detail["added"] = json!(r.added);
                e.detail["already_present"] = json!(r.already_present);
                e.detail["list_size"] = json!(r.list_size);
            })
            .await
            .map(Response::new)
    }

    async fn list_alerts(
        &self,
        req: Request<ListAlertsRequest>,
    ) -> Result<Response<ListAlertsResponse>, Status> {
        Controller::admin_peer(&req)?;
        let r = req.into_inner();
        let min_level = level_index(&r.level)?;
        let agent_id = self.resolve_optional(&r.agent_id).await?;
        let limit = list_limit(r.limit)?;
        let alerts = self
            .0
            .store
            .alerts(r.since_ms, min_level, agent_id, limit)
            .await?;
        Ok(Response::new(ListAlertsResponse {
            alerts: alerts.into_iter().map(alert_record).collect(),
        }))
    }

    async fn get_alert(
        &self,
        req: Request<GetAlertRequest>,
    ) -> Result<Response<AlertRecord>, Status> {
        Controller::admin_peer(&req)?;
        let id = req.into_inner().alert_id;
        let row = self.0.store.alert(id.clone()).await?.ok_or_else(|| {
            Status::not_found(format!("no alert {id:?} (or the prefix is ambiguous)"))
        })?;
        Ok(Response::new(alert_record(row)))
    }

    async fn list_incidents(
        &self,
        req: Request<ListIncidentsRequest>,
    ) -> Result<Response<ListIncidentsResponse>, Status> {
        Controller::admin_peer(&req)?;
        let r = req.into_inner();
        if !r.status.is_empty() {
            check_status(&r.status)?;
        }
        let limit = list_limit(r.limit)?;
        let status = (!r.status.is_empty()).then_some(r.status);
        let rows = self.0.store.incidents(status, limit).await?;
        Ok(Response::new(ListIncidentsResponse {
            incidents: rows
                .into_iter()
                .map(|i| incident_record(i, Vec::new(), Vec::new()))
                .collect(),
        }))
    }

    async fn get_incident(
        &self,
        req: Request<GetIncidentRequest>,
    ) -> Result<Response<IncidentRecord>, Status> {
        Controller::admin_peer(&req)?;
        let id = req.into_inner().incident_id;
        Ok(Response::new(self.incident_record(id).await?))
    }

    async fn set_incident_status(
        &self,
        req: Request<SetIncidentStatusRequest>,
    ) -> Result<Response<IncidentRecord>, Status> {
        let admin = Controller::admin_peer(&req)?;
        let r = req.into_inner();
        let entry = AuditEntry::new(
            &admin,
            "incident.set_status",
            format!("incident:{}", r.incident_id),
        )
        .detail(json!({ "status": r.status }));
        let result = async {
            check_status(&r.status)?;
            let id = self
                .0
                .store
                .set_incident_status(
                    r.incident_id.clone(),
                    r.status.clone(),
                    admin.clone(),
                    now_ms(),
                )
                .await?
                .ok_or_else(|| {
                    Status::not_found(format!(
                        "no incident {:?} (or the prefix is ambiguous)",
                        r.incident_id
                    ))
                })?;
            self.incident_record(id).await
        }
        .await;
        self.0
            .audited(entry, result, |i, e| {
                e.target = format!("incident:{}", i.id)
            })
            .await
            .map(Response::new)
    }

    async fn list_audit(
        &self,
        req: Request<ListAuditRequest>,
    ) -> Result<Response<ListAuditResponse>, Status> {
        Controller::admin_peer(&req)?;
        let r = req.into_inner();
        let rows = self.0.store.audit(r.since_ms, list_limit(r.limit)?).await?;
        Ok(Response::new(ListAuditResponse {
            entries: rows.into_iter().map(audit_record).collect(),
        }))
    }

    async fn verify_audit(
        &self,
        req: Request<VerifyAuditRequest>,
    ) -> Result<Response<VerifyAuditResponse>, Status> {
        let admin = Controller::admin_peer(&req)?;
        let v = self.0.store.verify_audit().await?;
        if let Some((seq, problem)) = &v.first_bad {
            tracing::error!(by = %admin, seq, problem = %problem, "the audit log failed verification");
        }
        Ok(Response::new(verification(v)))
    }

    async fn add_incident_note(
        &self,
        req: Request<AddIncidentNoteRequest>,
    ) -> Result<Response<IncidentRecord>, Status> {
        let admin = Controller::admin_peer(&req)?;
        let r = req.into_inner();
        let id = r.incident_id.clone();
        let entry = AuditEntry::new(&admin, "incident.note", format!("incident:{id}"))
            .detail(json!({ "text": r.text }));
        let result = self.0.add_incident_note(admin, r).await;
        self.0.audited(entry, result, |_, _| {}).await?;
        Ok(Response::new(self.incident_record(id).await?))
    }

    async fn apply_playbook(
        &self,
        req: Request<ApplyPlaybookRequest>,
    ) -> Result<Response<PlaybookRecord>, Status> {
        let admin = Controller::admin_peer(&req)?;
        let r = req.into_inner();
        let entry =
            AuditEntry::new(&admin, "playbook.apply", "").detail(json!({ "origin": r.origin }));
        let result = self.0.apply_playbook(&r.origin, &r.yaml).await;
        self.0
            .audited(entry, result, |p, e| {
                e.target = format!("playbook:{}", p.name)
            })
            .await
            .map(Response::new)
    }

    async fn list_playbooks(
        &self,
        req: Request<ListPlaybooksRequest>,
    ) -> Result<Response<ListPlaybooksResponse>, Status> {
        Controller::admin_peer(&req)?;
        Ok(Response::new(ListPlaybooksResponse {
            playbooks: self.0.list_playbooks().await?,
        }))
    }

    async fn set_playbook_enabled(
        &self,
        req: Request<SetPlaybookEnabledRequest>,
    ) -> Result<Response<PlaybookRecord>, Status> {
        let admin = Controller::admin_peer(&req)?;
        let r = req.into_inner();
        let action = if r.enabled {
            "playbook.enable"
        } else {
            "playbook.disable"
        };
        let entry = AuditEntry::new(&admin, action, format!("playbook:{}", r.name));
        let result = self.0.set_playbook_enabled(&r.name, r.enabled).await;
        self.0
            .audited(entry, result, |_, _| {})
            .await
            .map(Response::new)
    }

    async fn dry_run_playbook(
        &self,
        req: Request<DryRunPlaybookRequest>,
    ) -> Result<Response<DryRunPlaybookResponse>, Status> {
        Controller::admin_peer(&req)?;
        Ok(Response::new(
            self.0.dry_run_playbook(req.into_inner()).await?,
        ))
    }

    async fn list_approvals(
        &self,
        req: Request<ListApprovalsRequest>,
    ) -> Result<Response<ListApprovalsResponse>, Status> {
        Controller::admin_peer(&req)?;
        let all = req.into_inner().all;
        let rows = self.0.store.approvals(all, None).await?;
        Ok(Response::new(ListApprovalsResponse {
            approvals: rows.into_iter().map(approval_record).collect(),
        }))
    }

    async fn decide_approval(
        &self,
        req: Request<DecideApprovalRequest>,
    ) -> Result<Response<ApprovalRecord>, Status> {
        let admin = Controller::admin_peer(&req)?;
        let r = req.into_inner();
        let action = if r.approve {
            "approval.approve"
        } else {
            "approval.deny"
        };
        let entry = AuditEntry::new(&admin, action, format!("approval:{}", r.approval_id))
            .detail(json!({ "reason": r.reason }));
        let result = self.0.decide_approval(admin, r).await;
        self.0
            .audited(entry, result, |_, _| {})
            .await
            .map(Response::new)
    }

    async fn get_incident_report(
        &self,
        req: Request<GetIncidentReportRequest>,
    ) -> Result<Response<IncidentReport>, Status> {
        Controller::admin_peer(&req)?;
        let id = req.into_inner().incident_id;
        Ok(Response::new(self.0.incident_report(id).await?))
    }
}

impl AdminApi {
    /// An incident with its timeline, alerts and approvals.
    async fn incident_record(&self, id: String) -> Result<IncidentRecord, Status> {
        let (i, t, a) = self.0.store.incident(id.clone()).await?.ok_or_else(|| {
            Status::not_found(format!("no incident {id:?} (or the prefix is ambiguous)"))
        })?;
        let approvals = self.0.store.approvals(true, Some(i.id.clone())).await?;
        let mut rec = incident_record(i, t, a);
        rec.approvals = approvals.into_iter().map(approval_record).collect();
        Ok(rec)
    }
}
