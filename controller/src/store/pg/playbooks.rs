//! Playbooks, their runs and steps, and approvals on PostgreSQL.

use super::{PgStore, all, big};
pub(super) use crate::store::playbooks::run_row;
use crate::store::playbooks::{
    APPROVAL_COLUMNS, EDGE_VERSION_SQL, EDGE_VERSIONS_SQL, RUN_COLUMNS, approval_row, playbook_row,
    step_row,
};
use crate::store::{
    ApprovalRow, ApprovalStatus, PlaybookRow, PlaybookStore, RunDetail, RunRow, RunStatus, StepRow,
    StepStatus, StoreError,
};
use tokio_postgres::GenericClient;
use tokio_postgres::types::ToSql;

const STEP_COLUMNS: &str = "idx, name, action, status, detail, command_id, started_at, finished_at";

/// Runs selected by `clause`, each with its steps.
async fn runs_with_steps(
    c: &impl GenericClient,
    clause: &str,
    args: &[&(dyn ToSql + Sync)],
) -> Result<Vec<RunDetail>, StoreError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs {clause}");
    let runs = c.query(&sql, args).await?;
    let steps_sql = format!("SELECT {STEP_COLUMNS} FROM run_steps WHERE run_id = $1 ORDER BY idx");
    let mut out = Vec::new();
    for run in runs.iter().map(run_row) {
        let run = run?;
        let steps = c.query(&steps_sql, &[&run.id]).await?;
        out.push((run, steps.iter().map(step_row).collect::<Result<_, _>>()?));
    }
    Ok(out)
}

impl PgStore {
    async fn approval_where(
        &self,
        clause: &str,
        args: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<ApprovalRow>, StoreError> {
        let sql = format!("SELECT {APPROVAL_COLUMNS} FROM approvals {clause}");
        let rows = self.client().await?.query(&sql, args).await?;
        all(&rows, approval_row)
    }
}

impl PlaybookStore for PgStore {
    async fn upsert_playbook(&self, p: PlaybookRow) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO playbooks (name, origin, source, enabled, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO UPDATE SET origin = excluded.origin,
               source = excluded.source, enabled = excluded.enabled,
               updated_at = CASE WHEN playbooks.source = excluded.source
                                  AND playbooks.enabled = excluded.enabled
                                 THEN playbooks.updated_at ELSE excluded.updated_at END",
            &[&p.name, &p.origin, &p.source, &p.enabled, &p.updated_at_ms],
        )
        .await?;
        Ok(())
    }

    async fn playbooks(&self) -> Result<Vec<PlaybookRow>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT name, origin, source, enabled, updated_at FROM playbooks ORDER BY name",
                &[],
            )
            .await?;
        all(&rows, playbook_row)
    }

    async fn set_playbook_enabled(
        &self,
        name: String,
        enabled: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE playbooks SET enabled = $2,
               updated_at = CASE WHEN enabled = $2 THEN updated_at ELSE $3 END
             WHERE name = $1";
        Ok(self.exec(sql, &[&name, &enabled, &now]).await? > 0)
    }

    /// The run is this controller's (claimed for `RUN_LEASE`, renewed while it lives).
    async fn create_run(&self, r: RunRow) -> Result<bool, StoreError> {
        let sql = format!(
            "INSERT INTO runs ({RUN_COLUMNS}, owner, lease_until)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT DO NOTHING"
        );
        let lease = r
            .updated_at_ms
            .saturating_add(super::replica::RUN_LEASE.as_millis() as i64);
        let args: [&(dyn ToSql + Sync); 13] = [
            &r.id,
            &r.playbook,
            &r.source,
            &r.alert_id,
            &r.incident_id,
            &r.agent_id,
            &r.dry_run,
            &r.status,
            &(r.step as i64),
            &r.started_at_ms,
            &r.updated_at_ms,
            &self.replica(),
            &lease,
        ];
        Ok(self.exec(&sql, &args).await? > 0)
    }

    /// The unfinished runs this controller may execute: its own, and those whose
    /// controller's claim lapsed, which it claims (see `replica.rs`).
    async fn unfinished_runs(&self) -> Result<Vec<RunRow>, StoreError> {
        self.claim_runs(cordon_proto::time::now_ms()).await
    }

    async fn runs_for_incident(&self, incident: String) -> Result<Vec<RunDetail>, StoreError> {
        let c = self.client().await?;
        let clause = "WHERE incident_id = $1 ORDER BY started_at";
        runs_with_steps(&**c, clause, &[&incident]).await
    }

    async fn recent_runs(&self, limit: u32) -> Result<Vec<RunDetail>, StoreError> {
        let c = self.client().await?;
        let clause = "ORDER BY started_at DESC, id LIMIT $1";
        runs_with_steps(&**c, clause, &[&big(limit)]).await
    }

    async fn set_run(
        &self,
        id: String,
        status: RunStatus,
        step: usize,
        now: i64,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE runs SET status = $2, step = $3, updated_at = $4 WHERE id = $1";
        self.exec(sql, &[&id, &status, &(step as i64), &now])
            .await?;
        Ok(())
    }

    async fn put_step(&self, run_id: String, s: StepRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO run_steps (run_id, {STEP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (run_id, idx) DO UPDATE SET status = excluded.status,
               detail = excluded.detail, command_id = excluded.command_id,
               finished_at = excluded.finished_at"
        );
        let args: [&(dyn ToSql + Sync); 9] = [
            &run_id,
            &(s.idx as i64),
            &s.name,
            &s.action,
            &s.status,
            &s.detail,
            &s.command_id,
            &s.started_at_ms,
            &s.finished_at_ms,
        ];
        self.exec(&sql, &args).await?;
        Ok(())
    }

    async fn step(&self, run_id: String, idx: usize) -> Result<Option<StepRow>, StoreError> {
        let sql = format!("SELECT {STEP_COLUMNS} FROM run_steps WHERE run_id = $1 AND idx = $2");
        let c = self.client().await?;
        let row = c.query_opt(&sql, &[&run_id, &(idx as i64)]).await?;
        Ok(row.as_ref().map(step_row).transpose()?)
    }

    async fn count_steps(
        &self,
        action: String,
        statuses: Vec<StepStatus>,
        since_ms: i64,
    ) -> Result<u64, StoreError> {
        let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        let n: i64 = self
            .client()
            .await?
            .query_one(
                "SELECT COUNT(*) FROM run_steps WHERE action = $1 AND status = ANY($2)
                   AND started_at >= $3",
                &[&action, &names, &since_ms],
            )
            .await?
            .try_get(0)?;
        Ok(n as u64)
    }

    async fn request_approval(&self, a: ApprovalRow) -> Result<ApprovalRow, StoreError> {
        let sql = format!(
            "INSERT INTO approvals ({APPROVAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
                 $9, $10, $11, $12, $13, $14, $15) ON CONFLICT DO NOTHING"
        );
        let idx = a.idx as i64;
        let args: [&(dyn ToSql + Sync); 15] = [
            &a.id,
            &a.run_id,
            &idx,
            &a.incident_id,
            &a.agent_id,
            &a.what,
            &a.reason,
            &a.status,
            &a.requested_at_ms,
            &a.expires_at_ms,
            &a.decided_by,
            &a.decided_at_ms,
            &a.note,
            &a.requested_by,
            &a.action,
        ];
        self.exec(&sql, &args).await?;
        // A run's step asks once: the request already made is the one that counts.
        let clause = "WHERE (run_id = $1 AND idx = $2 AND run_id <> '') OR ($1 = '' AND id = $3)";
        let found = self
            .approval_where(clause, &[&a.run_id, &idx, &a.id])
            .await?;
        found
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Corrupt(format!("approval {} vanished", a.id)))
    }

    async fn approval(&self, id: String) -> Result<Option<ApprovalRow>, StoreError> {
        Ok(self.approval_where("WHERE id = $1", &[&id]).await?.pop())
    }

    async fn approvals(
        &self,
        all: bool,
        incident: Option<String>,
    ) -> Result<Vec<ApprovalRow>, StoreError> {
        let clause = "WHERE ($1 OR status = $3) AND ($2::TEXT IS NULL OR incident_id = $2)
                      ORDER BY requested_at";
        let pending = ApprovalStatus::Pending;
        self.approval_where(clause, &[&all, &incident, &pending])
            .await
    }

    async fn decide_approval(
        &self,
        id: String,
        status: ApprovalStatus,
        by: String,
        note: String,
        now: i64,
    ) -> Result<Option<ApprovalRow>, StoreError> {
        let sql = format!(
            "UPDATE approvals SET status = $2, decided_by = $3, decided_at = $4, note = $5
             WHERE id = $1 AND status = $6 RETURNING {APPROVAL_COLUMNS}"
        );
        let pending = ApprovalStatus::Pending;
        let args: [&(dyn ToSql + Sync); 6] = [&id, &status, &by, &now, &note, &pending];
        let row = self.client().await?.query_opt(&sql, &args).await?;
        Ok(row.as_ref().map(approval_row).transpose()?)
    }

    async fn edge_version(
        &self,
        agent_id: String,
        policy_id: String,
        digest: String,
    ) -> Result<u64, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_one(EDGE_VERSION_SQL, &[&agent_id, &policy_id, &digest])
            .await?;
        Ok(row.try_get::<_, i64>(0)? as u64)
    }

    async fn edge_versions(
        &self,
        agent_id: String,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        let c = self.client().await?;
        let rows = c.query(EDGE_VERSIONS_SQL, &[&agent_id]).await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get::<_, i64>(2)? as u64)))
            .collect()
    }
}
