//! The admin service, for admin certificates only: each handler takes the administrator from
//! the certificate, calls the core (which checks, acts and records the action in the audit
//! log) and answers with the proto form of the result (`records.rs`).

use super::records::*;
use super::users;
use crate::core::{self, Controller, EventQuery, IocList, RuleFile};
use cordon_proto::admin_service_server::AdminService;
use cordon_proto::*;
use std::sync::Arc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

pub struct AdminApi(pub Arc<Controller>);

pub type Answer<T> = Result<Response<T>, Status>;

/// The core's answer, as a gRPC response.
pub fn answer<T, U>(
    result: Result<T, core::CoreError>,
    to_proto: impl FnOnce(T) -> U,
) -> Answer<U> {
    result
        .map(|v| Response::new(to_proto(v)))
        .map_err(Status::from)
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    type TailEventsStream = ReceiverStream<Result<EventRecord, Status>>;
    type DownloadFileStream = super::fetched::DownloadStream;

    async fn query_events(&self, req: Request<QueryEventsRequest>) -> Answer<QueryEventsResponse> {
        super::admin_peer(&req)?;
        let r = req.into_inner();
        let q = EventQuery {
            agent: r.agent_id,
            kind: r.kind,
            since_ms: r.since_ms,
            until_ms: r.until_ms,
            contains: r.contains,
            limit: r.limit,
            ..Default::default()
        };
        answer(self.0.query_events(q).await, |events| QueryEventsResponse {
            events: events.iter().map(event_record).collect(),
        })
    }

    async fn tail_events(&self, req: Request<TailEventsRequest>) -> Answer<Self::TailEventsStream> {
        let me = super::admin_peer(&req)?;
        let slot = self.0.admin_streams.take(&me)?;
        let agent_id = self.0.resolve_optional(&req.into_inner().agent_id).await?;
        let rx = self.0.events.subscribe();
        let (tx, out) = tokio::sync::mpsc::channel(256);
        let ctl = self.0.clone();
        tokio::spawn(async move {
            tail(ctl, me, agent_id, rx, tx).await;
            drop(slot);
        });
        Ok(Response::new(ReceiverStream::new(out)))
    }

    async fn create_token(&self, req: Request<CreateTokenRequest>) -> Answer<CreateTokenResponse> {
        let admin = super::admin_peer(&req)?;
        let r = req.into_inner();
        let made = self
            .0
            .create_token(&admin, r.ttl_secs, r.uses, r.labels)
            .await;
        answer(made, |t| CreateTokenResponse {
            token: t.token,
            expires_at_ms: t.expires_at_ms,
            uses: t.uses,
            controller_url: self.0.config.url.clone(),
            ca_fingerprint: self.0.ca.fingerprint(),
            labels: t.labels,
            replica_urls: self.0.config.replica_urls.clone(),
        })
    }

    async fn list_agents(&self, req: Request<ListAgentsRequest>) -> Answer<ListAgentsResponse> {
        super::admin_peer(&req)?;
        answer(self.0.agents().await, |all| ListAgentsResponse {
            agents: all.into_iter().map(agent_record).collect(),
        })
    }

    async fn get_agent(&self, req: Request<GetAgentRequest>) -> Answer<AgentRecord> {
        super::admin_peer(&req)?;
        answer(self.0.agent(&req.get_ref().agent_id).await, agent_record)
    }

    async fn revoke_agent(&self, req: Request<RevokeAgentRequest>) -> Answer<AgentRecord> {
        let admin = super::admin_peer(&req)?;
        let asked = req.into_inner().agent_id;
        answer(self.0.revoke(&admin, &asked).await, agent_record)
    }

    async fn submit_command(&self, req: Request<SubmitCommandRequest>) -> Answer<CommandRecord> {
        let admin = super::admin_peer(&req)?;
        let r = req.into_inner();
        let asked = core::CommandRequest {
            agent: r.agent_id,
            action: r.action.and_then(|a| a.kind),
            ttl_secs: r.ttl_secs,
            wait_secs: r.wait_secs,
        };
        // In a task of its own: a caller that hangs up while waiting for the result must not
        // cancel the audit entry of a command already sent.
        let ctl = self.0.clone();
        let done = tokio::spawn(async move { ctl.submit_as(&admin, asked).await })
            .await
            .map_err(|e| Status::internal(format!("the command task failed: {e}")))?;
        answer(done, command_record)
    }

    async fn isolate_by_labels(
        &self,
        req: Request<IsolateByLabelsRequest>,
    ) -> Answer<IsolateByLabelsResponse> {
        let admin = super::admin_peer(&req)?;
        let r = req.into_inner();
        let asked = core::FanOutRequest {
            labels: r.labels,
            max_hosts: r.max_hosts,
            dry_run: r.dry_run,
            skip_protected: r.skip_protected,
            isolate: r.isolate.unwrap_or_default(),
            ttl_secs: r.ttl_secs,
            wait_secs: r.wait_secs,
        };
        // In a task of its own, as a single command: a caller that hangs up must not cancel
        // the fan-out half way, nor its audit entry.
        let ctl = self.0.clone();
        let done = tokio::spawn(async move { ctl.isolate_by_labels(&admin, asked).await })
            .await
            .map_err(|e| Status::internal(format!("the fan-out task failed: {e}")))?;
        answer(done, fanout_response)
    }

    async fn list_commands(
        &self,
        req: Request<ListCommandsRequest>,
    ) -> Answer<ListCommandsResponse> {
        super::admin_peer(&req)?;
        let r = req.into_inner();
        answer(self.0.commands(&r.agent_id, r.limit).await, |rows| {
            ListCommandsResponse {
                commands: rows.into_iter().map(command_record).collect(),
            }
        })
    }

    async fn get_command(&self, req: Request<GetCommandRequest>) -> Answer<CommandRecord> {
        super::admin_peer(&req)?;
        answer(
            self.0.command(&req.get_ref().command_id).await,
            command_record,
        )
    }

    async fn list_collection_rows(
        &self,
        req: Request<ListCollectionRowsRequest>,
    ) -> Answer<ListCollectionRowsResponse> {
        super::admin_peer(&req)?;
        let r = req.into_inner();
        let f = crate::store::RowFilter {
            command_ids: r.command_ids,
            hunt_id: Some(r.hunt_id).filter(|h| !h.is_empty()),
            agent_id: Some(r.agent_id).filter(|a| !a.is_empty()),
            contains: Some(r.contains).filter(|c| !c.is_empty()),
            after: Some(r.after_command_id)
                .filter(|c| !c.is_empty())
                .map(|c| (c, r.after_row)),
            limit: r.limit,
        };
        answer(self.0.collection_rows(f).await, |rows| {
            ListCollectionRowsResponse {
                rows: rows
                    .into_iter()
                    .map(|r| CollectionRowRecord {
                        command_id: r.command_id,
                        agent_id: r.agent_id,
                        row_no: r.row_no,
                        data: r.data,
                    })
                    .collect(),
            }
        })
    }

    async fn create_hunt(&self, req: Request<CreateHuntRequest>) -> Answer<HuntRecord> {
        let admin = super::admin_peer(&req)?;
        let r = req.into_inner();
        let asked = core::hunts::HuntRequest {
            collect: r.collect.unwrap_or_default(),
            agent_ids: r.agent_ids,
            labels: r.labels,
            all: r.all,
            expires_secs: r.expires_secs,
        };
        // In a task of its own: a caller that hangs up must not stop it half way.
        let ctl = self.0.clone();
        let done = tokio::spawn(async move { ctl.create_hunt(&admin, asked).await })
            .await
            .map_err(|e| Status::internal(format!("the hunt task failed: {e}")))?;
        answer(done, |h| hunt_record(h.summary, h.commands))
    }

    async fn list_hunts(&self, req: Request<ListHuntsRequest>) -> Answer<ListHuntsResponse> {
        super::admin_peer(&req)?;
        answer(self.0.hunts(req.get_ref().limit).await, |hunts| {
            ListHuntsResponse {
                hunts: hunts.into_iter().map(|h| hunt_record(h, vec![])).collect(),
            }
        })
    }

    async fn get_hunt(&self, req: Request<GetHuntRequest>) -> Answer<HuntRecord> {
        super::admin_peer(&req)?;
        answer(self.0.hunt(&req.get_ref().hunt_id).await, |h| {
            hunt_record(h.summary, h.commands)
        })
    }

    async fn cancel_hunt(&self, req: Request<CancelHuntRequest>) -> Answer<HuntRecord> {
        let admin = super::admin_peer(&req)?;
        answer(
            self.0.cancel_hunt(&admin, &req.get_ref().hunt_id).await,
            |h| hunt_record(h.summary, h.commands),
        )
    }

    async fn list_fetched_files(
        &self,
        req: Request<ListFetchedFilesRequest>,
    ) -> Answer<ListFetchedFilesResponse> {
        super::admin_peer(&req)?;
        let r = req.into_inner();
        super::fetched::list(&self.0, &r.agent_id, r.limit).await
    }

    async fn download_file(
        &self,
        req: Request<DownloadFileRequest>,
    ) -> Answer<Self::DownloadFileStream> {
        let admin = super::admin_peer(&req)?;
        super::fetched::download(self.0.clone(), &admin, &req.into_inner().id).await
    }

    async fn import_rules(&self, req: Request<ImportRulesRequest>) -> Answer<ImportRulesResponse> {
        let admin = super::admin_peer(&req)?;
        let files = req
            .into_inner()
            .files
            .into_iter()
            .map(|f| RuleFile {
                origin: f.origin,
                yaml: f.yaml,
            })
            .collect();
        answer(self.0.import_rules(&admin, files).await, |outcomes| {
            ImportRulesResponse { outcomes }
        })
    }

    async fn list_rules(&self, req: Request<ListRulesRequest>) -> Answer<ListRulesResponse> {
        super::admin_peer(&req)?;
        answer(self.0.rules().await, |rules| ListRulesResponse {
            rules: rules.into_iter().map(rule_record).collect(),
        })
    }

    async fn set_rule_enabled(&self, req: Request<SetRuleEnabledRequest>) -> Answer<RuleRecord> {
        let admin = super::admin_peer(&req)?;
        let r = req.into_inner();
        let done = self.0.set_rule_enabled(&admin, &r.rule_id, r.enabled).await;
        answer(done, rule_record)
    }

    async fn import_iocs(&self, req: Request<ImportIocsRequest>) -> Answer<ImportIocsResponse> {
        let admin = super::admin_peer(&req)?;
        let r = req.into_inner();
        let list = IocList {
            kind: r.kind,
            list: r.list,
            values: r.values,
            block: r.block,
        };
        answer(self.0.import_iocs(&admin, list).await, |i| {
            ImportIocsResponse {
                added: i.done.added,
                already_present: i.done.already_present,
                list_size: i.done.list_size,
                warnings: i.warnings,
            }
        })
    }

    async fn list_alerts(&self, req: Request<ListAlertsRequest>) -> Answer<ListAlertsResponse> {
        super::admin_peer(&req)?;
        let r = req.into_inner();
        let found = self
            .0
            .alerts(r.since_ms, &r.level, &r.agent_id, r.limit)
            .await;
        answer(found, |alerts| ListAlertsResponse {
            alerts: alerts.into_iter().map(alert_record).collect(),
        })
    }

    async fn get_alert(&self, req: Request<GetAlertRequest>) -> Answer<AlertRecord> {
        super::admin_peer(&req)?;
        answer(self.0.alert(&req.get_ref().alert_id).await, alert_record)
    }

    async fn list_incidents(
        &self,
        req: Request<ListIncidentsRequest>,
    ) -> Answer<ListIncidentsResponse> {
        super::admin_peer(&req)?;
        let r = req.into_inner();
        answer(self.0.incidents(&r.status, r.limit).await, |rows| {
            ListIncidentsResponse {
                incidents: rows
                    .into_iter()
                    .map(|i| incident_record(i, Vec::new(), Vec::new()))
                    .collect(),
            }
        })
    }

    async fn get_incident(&self, req: Request<GetIncidentRequest>) -> Answer<IncidentRecord> {
        super::admin_peer(&req)?;
        answer(
            self.0.incident(&req.get_ref().incident_id).await,
            incident_details,
        )
    }

    async fn set_incident_status(
        &self,
        req: Request<SetIncidentStatusRequest>,
    ) -> Answer<IncidentRecord> {
        let admin = super::admin_peer(&req)?;
        let r = req.into_inner();
        let id = self
            .0
            .set_incident_status(&admin, &r.incident_id, &r.status)
            .await?;
        answer(self.0.incident(&id).await, incident_details)
    }

    async fn list_audit(&self, req: Request<ListAuditRequest>) -> Answer<ListAuditResponse> {
        super::admin_peer(&req)?;
        let r = req.into_inner();
        answer(
            self.0.audit_log(r.since_ms, r.limit, &r.actor).await,
            |rows| ListAuditResponse {
                entries: rows.into_iter().map(audit_record).collect(),
            },
        )
    }

    async fn verify_audit(&self, req: Request<VerifyAuditRequest>) -> Answer<VerifyAuditResponse> {
        let admin = super::admin_peer(&req)?;
        answer(self.0.verify_audit(&admin).await, verification)
    }

    async fn add_incident_note(
        &self,
        req: Request<AddIncidentNoteRequest>,
    ) -> Answer<IncidentRecord> {
        let admin = super::admin_peer(&req)?;
        let r = req.into_inner();
        let id = self
            .0
            .add_incident_note(&admin, &r.incident_id, &r.text)
            .await?;
        answer(self.0.incident(&id).await, incident_details)
    }

    async fn apply_playbook(&self, req: Request<ApplyPlaybookRequest>) -> Answer<PlaybookRecord> {
        let admin = super::admin_peer(&req)?;
        let r = req.into_inner();
        let done = self.0.apply_playbook_as(&admin, &r.origin, &r.yaml).await;
        answer(done, playbook_record)
    }

    async fn list_playbooks(
        &self,
        req: Request<ListPlaybooksRequest>,
    ) -> Answer<ListPlaybooksResponse> {
        super::admin_peer(&req)?;
        answer(self.0.list_playbooks().await, |all| ListPlaybooksResponse {
            playbooks: all.into_iter().map(playbook_record).collect(),
        })
    }

    async fn set_playbook_enabled(
        &self,
        req: Request<SetPlaybookEnabledRequest>,
    ) -> Answer<PlaybookRecord> {
        let admin = super::admin_peer(&req)?;
        let r = req.into_inner();
        let done = self
            .0
            .set_playbook_enabled(&admin, &r.name, r.enabled)
            .await;
        answer(done, playbook_record)
    }

    async fn dry_run_playbook(
        &self,
        req: Request<DryRunPlaybookRequest>,
    ) -> Answer<DryRunPlaybookResponse> {
        super::admin_peer(&req)?;
        let r = req.into_inner();
        let plan = self
            .0
            .dry_run_playbook(&r.origin, &r.yaml, &r.alert_id)
            .await;
        answer(plan, |p| DryRunPlaybookResponse {
            triggers: p.triggers,
            steps: p.steps,
        })
    }

    async fn list_approvals(
        &self,
        req: Request<ListApprovalsRequest>,
    ) -> Answer<ListApprovalsResponse> {
        super::admin_peer(&req)?;
        answer(self.0.approvals(req.get_ref().all).await, |rows| {
            ListApprovalsResponse {
                approvals: rows.into_iter().map(approval_record).collect(),
            }
        })
    }

    async fn decide_approval(&self, req: Request<DecideApprovalRequest>) -> Answer<ApprovalRecord> {
        let admin = super::admin_peer(&req)?;
        let r = req.into_inner();
        let done = self
            .0
            .decide_approval(&admin, &r.approval_id, r.approve, &r.reason)
            .await;
        answer(done, approval_record)
    }

    async fn get_incident_report(
        &self,
        req: Request<GetIncidentReportRequest>,
    ) -> Answer<IncidentReport> {
        super::admin_peer(&req)?;
        let report = self.0.incident_report(&req.get_ref().incident_id).await;
        answer(report, |r| r)
    }

    async fn get_process_tree(&self, req: Request<GetProcessTreeRequest>) -> Answer<ProcessTree> {
        super::admin_peer(&req)?;
        let r = req.into_inner();
        let tree = self.0.event_tree(&r.agent_id, r.seq).await;
        answer(tree, |t| core::process_tree::tree_record(t, r.seq))
    }

    async fn invite_user(&self, req: Request<InviteUserRequest>) -> Answer<InviteUserResponse> {
        let by = super::admin_peer(&req)?;
        users::invite(&self.0, &by, req.into_inner()).await
    }

    async fn list_users(&self, _req: Request<ListUsersRequest>) -> Answer<ListUsersResponse> {
        answer(self.0.users().await, |all| ListUsersResponse {
            users: all.into_iter().map(users::user_record).collect(),
        })
    }

    async fn get_user(&self, req: Request<GetUserRequest>) -> Answer<UserRecord> {
        answer(self.0.user(&req.get_ref().name).await, users::user_record)
    }

    async fn set_user_state(&self, req: Request<SetUserStateRequest>) -> Answer<UserRecord> {
        let by = super::admin_peer(&req)?;
        users::set_state(&self.0, &by, req.into_inner()).await
    }

    async fn set_user_role(&self, req: Request<SetUserRoleRequest>) -> Answer<UserRecord> {
        let by = super::admin_peer(&req)?;
        users::set_role(&self.0, &by, req.into_inner()).await
    }

    async fn set_user_password(&self, req: Request<SetUserPasswordRequest>) -> Answer<UserRecord> {
        let by = super::admin_peer(&req)?;
        let r = req.into_inner();
        let set = self.0.set_password(&by, &r.name, &r.password).await;
        answer(set, users::user_record)
    }

    async fn set_user_totp(&self, req: Request<SetUserTotpRequest>) -> Answer<SetUserTotpResponse> {
        let by = super::admin_peer(&req)?;
        users::set_totp(&self.0, &by, req.into_inner()).await
    }

    async fn renew_credential(
        &self,
        req: Request<RenewCredentialRequest>,
    ) -> Answer<RenewCredentialResponse> {
        users::renew(&self.0, req).await
    }

    async fn who_am_i(&self, req: Request<WhoAmIRequest>) -> Answer<WhoAmIResponse> {
        let me = super::admin_peer(&req)?;
        users::who_am_i(&self.0, &me).await
    }
}

/// Sends stored events to an `events tail` until the caller hangs up, or until the caller may
/// no longer act: checked at every change of the roster and every few seconds (for an
/// expiry), the stream then ends with the reason.
async fn tail(
    ctl: Arc<Controller>,
    me: core::Admin,
    agent_id: Option<String>,
    mut rx: tokio::sync::broadcast::Receiver<Arc<crate::store::StoredEvent>>,
    tx: tokio::sync::mpsc::Sender<Result<EventRecord, Status>>,
) {
    use tokio::sync::broadcast::error::RecvError;
    let mut changes = ctl.roster.changes();
    let mut recheck = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        let e = tokio::select! {
            _ = tx.closed() => return,
            _ = changes.recv() => None,
            _ = recheck.tick() => None,
            e = rx.recv() => Some(e),
        };
        let Some(e) = e else {
            let now = cordon_proto::time::now_ms();
            if let Err(why) = ctl.roster.check(me.kind, &me.name, now) {
                let ended = Status::unauthenticated(format!("{} is {why}", me.name));
                let _ = tx.send(Err(ended)).await;
                return;
            }
            continue;
        };
        match e {
            Ok(e) if agent_id.as_ref().is_none_or(|a| *a == e.agent_id) => {
                if tx.send(Ok(event_record(&e))).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "an events tail fell behind");
            }
            Err(RecvError::Closed) => return,
        }
    }
}
