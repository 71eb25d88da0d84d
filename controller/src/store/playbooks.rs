//! Playbooks and their durable runs: every run, each step's outcome, and the approvals runs
//! wait for are on disk, so a controller restart resumes a run where it stood.

use super::rows::Cols;
use super::{ApprovalStatus, RunStatus, StepStatus, Store, StoreError};
use rusqlite::{OptionalExtension, params};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaybookRow {
    pub name: String,
    pub origin: String,
    pub source: String,
    pub enabled: bool,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub id: String,
    pub playbook: String,
    pub source: String,
    pub alert_id: String,
    pub incident_id: String,
    pub agent_id: String,
    pub dry_run: bool,
    pub status: RunStatus,
    pub step: usize,
    pub started_at_ms: i64,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRow {
    pub idx: usize,
    pub name: String,
    pub action: String,
    pub status: StepStatus,
    pub detail: String,
    pub command_id: String,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRow {
    pub id: String,
    pub run_id: String,
    pub idx: usize,
    pub incident_id: String,
    pub agent_id: String,
    pub what: String,
    pub reason: String,
    pub status: ApprovalStatus,
    pub requested_at_ms: i64,
    pub expires_at_ms: i64,
    pub decided_by: String,
    pub decided_at_ms: i64,
    pub note: String,
    /// `playbook:NAME` for a run's step, or the person whose request waits.
    pub requested_by: String,
    /// A person's request: the command action (protobuf) to send once approved.
    pub action: Option<Vec<u8>>,
}

impl ApprovalRow {
    /// A new pending request by `requested_by`, about `what` on `agent_id`, open from `now`
    /// for `timeout`; no run, incident or command until the caller sets them.
    pub fn pending(
        requested_by: String,
        agent_id: String,
        what: String,
        reason: String,
        now: i64,
        timeout: std::time::Duration,
    ) -> Self {
        Self {
            id: format!("apr-{}", hex::encode(rand::random::<[u8; 6]>())),
            run_id: String::new(),
            idx: 0,
            incident_id: String::new(),
            agent_id,
            what,
            reason,
            status: ApprovalStatus::Pending,
            requested_at_ms: now,
            expires_at_ms: now + timeout.as_millis() as i64,
            decided_by: String::new(),
            decided_at_ms: 0,
            note: String::new(),
            requested_by,
            action: None,
        }
    }
}

pub(super) fn playbook_row<R: Cols>(r: &R) -> Result<PlaybookRow, R::Error> {
    Ok(PlaybookRow {
        name: r.col(0)?,
        origin: r.col(1)?,
        source: r.col(2)?,
        enabled: r.col(3)?,
        updated_at_ms: r.col(4)?,
    })
}

pub(super) fn run_row<R: Cols>(r: &R) -> Result<RunRow, R::Error> {
    Ok(RunRow {
        id: r.col(0)?,
        playbook: r.col(1)?,
        source: r.col(2)?,
        alert_id: r.col(3)?,
        incident_id: r.col(4)?,
        agent_id: r.col(5)?,
        dry_run: r.col(6)?,
        status: r.col(7)?,
        step: r.col::<i64>(8)? as usize,
        started_at_ms: r.col(9)?,
        updated_at_ms: r.col(10)?,
    })
}

pub(super) fn step_row<R: Cols>(r: &R) -> Result<StepRow, R::Error> {
    Ok(StepRow {
        idx: r.col::<i64>(0)? as usize,
        name: r.col(1)?,
        action: r.col(2)?,
        status: r.col(3)?,
        detail: r.col(4)?,
        command_id: r.col(5)?,
        started_at_ms: r.col(6)?,
        finished_at_ms: r.col(7)?,
    })
}

pub(super) const RUN_COLUMNS: &str = "id, playbook, source, alert_id, incident_id, agent_id, dry_run, status, step, started_at, updated_at";

pub(super) fn approval_row<R: Cols>(r: &R) -> Result<ApprovalRow, R::Error> {
    Ok(ApprovalRow {
        id: r.col(0)?,
        run_id: r.col(1)?,
        idx: r.col::<i64>(2)? as usize,
        incident_id: r.col(3)?,
        agent_id: r.col(4)?,
        what: r.col(5)?,
        reason: r.col(6)?,
        status: r.col(7)?,
        requested_at_ms: r.col(8)?,
        expires_at_ms: r.col(9)?,
        decided_by: r.col(10)?,
        decided_at_ms: r.col(11)?,
        note: r.col(12)?,
        requested_by: r.col(13)?,
        action: r.col(14)?,
    })
}

pub(super) const APPROVAL_COLUMNS: &str = "id, run_id, idx, incident_id, agent_id, what, reason, status, requested_at, expires_at, decided_by, decided_at, note, requested_by, action";

/// A run with its steps, in order.
pub type RunDetail = (RunRow, Vec<StepRow>);

/// Each run with its steps, in order.
fn with_steps(c: &rusqlite::Connection, runs: Vec<RunRow>) -> Result<Vec<RunDetail>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT idx, name, action, status, detail, command_id, started_at, finished_at
         FROM run_steps WHERE run_id = ?1 ORDER BY idx",
    )?;
    let mut out = Vec::new();
    for run in runs {
        let steps = stmt
            .query_map([&run.id], |r| step_row(r))?
            .collect::<Result<_, _>>()?;
        out.push((run, steps));
    }
    Ok(out)
}

/// The playbooks aggregate: playbooks by name, their durable runs (one per playbook and
/// alert) with each step's state, and the approvals runs wait for. Every backend passes
/// `conformance::playbooks` (playbooks, runs, steps, approval requests and decisions).
pub trait PlaybookStore: Send + Sync {
    /// Stores a playbook, replacing one of the same name. `updated_at` is when it came into
    /// force as it is: applying the same text with the same enabled flag again keeps the
    /// earlier time.
    fn upsert_playbook(
        &self,
        p: PlaybookRow,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every playbook, by name.
    fn playbooks(&self) -> impl Future<Output = Result<Vec<PlaybookRow>, StoreError>> + Send;

    /// Enables or disables a playbook; a change of state restarts its time in force at
    /// `now`. False if there is no such playbook.
    fn set_playbook_enabled(
        &self,
        name: String,
        enabled: bool,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records a new run; false if this playbook already ran for this alert.
    fn create_run(&self, r: RunRow) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Runs not yet finished (running or waiting for approval), oldest first: what a
    /// starting controller resumes.
    fn unfinished_runs(&self) -> impl Future<Output = Result<Vec<RunRow>, StoreError>> + Send;

    /// An incident's runs, oldest first, each with its steps.
    fn runs_for_incident(
        &self,
        incident: String,
    ) -> impl Future<Output = Result<Vec<RunDetail>, StoreError>> + Send;

    /// The newest `limit` runs of every playbook, newest first, each with its steps.
    fn recent_runs(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<RunDetail>, StoreError>> + Send;

    /// Moves a run to `status` at step `step`.
    fn set_run(
        &self,
        id: String,
        status: RunStatus,
        step: usize,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Writes a step's state (inserted the first time; after that its status, detail,
    /// command and finish time change, its name, action and start stay).
    fn put_step(
        &self,
        run_id: String,
        s: StepRow,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A step as stored, if it was started.
    fn step(
        &self,
        run_id: String,
        idx: usize,
    ) -> impl Future<Output = Result<Option<StepRow>, StoreError>> + Send;

    /// How many steps with this action, in one of `statuses`, started at or after
    /// `since_ms`, across every run (what counts is the caller's rule).
    fn count_steps(
        &self,
        action: String,
        statuses: Vec<StepStatus>,
        since_ms: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Asks for approval of a run's step (once: asking again returns the same request).
    fn request_approval(
        &self,
        a: ApprovalRow,
    ) -> impl Future<Output = Result<ApprovalRow, StoreError>> + Send;

    fn approval(
        &self,
        id: String,
    ) -> impl Future<Output = Result<Option<ApprovalRow>, StoreError>> + Send;

    /// Approvals, pending ones only unless `all`, of one incident or all; newest last.
    fn approvals(
        &self,
        all: bool,
        incident: Option<String>,
    ) -> impl Future<Output = Result<Vec<ApprovalRow>, StoreError>> + Send;

    /// Decides a pending approval (approved, denied or expired); None if it is not pending
    /// (already decided, or no such approval).
    fn decide_approval(
        &self,
        id: String,
        status: ApprovalStatus,
        by: String,
        note: String,
        now: i64,
    ) -> impl Future<Output = Result<Option<ApprovalRow>, StoreError>> + Send;

    /// The version of edge policy `policy_id` for `agent_id` whose compiled form has
    /// `digest`: the version held when the digest is the one last recorded, else one more
    /// (1 for a policy new to the agent). Atomic, so replicas agree.
    fn edge_version(
        &self,
        agent_id: String,
        policy_id: String,
        digest: String,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Every edge policy ever versioned for `agent_id`: (policy id, digest, version).
    fn edge_versions(
        &self,
        agent_id: String,
    ) -> impl Future<Output = Result<Vec<(String, String, u64)>, StoreError>> + Send;
}

/// Records a compiled edge policy's digest and returns its version (both backends).
pub(super) const EDGE_VERSION_SQL: &str =
    "INSERT INTO edge_versions (agent_id, policy_id, digest, version)
     VALUES ($1, $2, $3, 1)
     ON CONFLICT (agent_id, policy_id) DO UPDATE SET
       version = CASE WHEN edge_versions.digest = excluded.digest
                      THEN edge_versions.version ELSE edge_versions.version + 1 END,
       digest = excluded.digest
     RETURNING version";

pub(super) const EDGE_VERSIONS_SQL: &str =
    "SELECT policy_id, digest, version FROM edge_versions WHERE agent_id = $1 ORDER BY policy_id";

impl PlaybookStore for Store {
    async fn upsert_playbook(&self, p: PlaybookRow) -> Result<(), StoreError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO playbooks (name, origin, source, enabled, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(name) DO UPDATE SET origin = excluded.origin, source = excluded.source,
                   enabled = excluded.enabled,
                   updated_at = CASE WHEN playbooks.source = excluded.source
                                      AND playbooks.enabled = excluded.enabled
                                     THEN playbooks.updated_at ELSE excluded.updated_at END",
                params![p.name, p.origin, p.source, p.enabled, p.updated_at_ms],
            )?;
            Ok(())
        })
        .await
    }

    async fn playbooks(&self) -> Result<Vec<PlaybookRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT name, origin, source, enabled, updated_at FROM playbooks ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| playbook_row(r))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn set_playbook_enabled(
        &self,
        name: String,
        enabled: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.with(move |c| {
            Ok(c.execute(
                "UPDATE playbooks SET enabled = ?2,
                   updated_at = CASE WHEN enabled = ?2 THEN updated_at ELSE ?3 END
                 WHERE name = ?1",
                params![name, enabled, now],
            )? > 0)
        })
        .await
    }

    async fn create_run(&self, r: RunRow) -> Result<bool, StoreError> {
        self.with(move |c| {
            Ok(c.execute(
                &format!("INSERT OR IGNORE INTO runs ({RUN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
                params![r.id, r.playbook, r.source, r.alert_id, r.incident_id, r.agent_id, r.dry_run, r.status, r.step as i64, r.started_at_ms, r.updated_at_ms],
            )? > 0)
        })
        .await
    }

    async fn unfinished_runs(&self) -> Result<Vec<RunRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE status IN (?1, ?2) ORDER BY started_at"
            ))?;
            let rows = stmt.query_map(
                params![RunStatus::Running, RunStatus::WaitingApproval],
                |r| run_row(r),
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn runs_for_incident(&self, incident: String) -> Result<Vec<RunDetail>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE incident_id = ?1 ORDER BY started_at"
            ))?;
            let runs: Vec<RunRow> = stmt
                .query_map([&incident], |r| run_row(r))?
                .collect::<Result<_, _>>()?;
            with_steps(c, runs)
        })
        .await
    }

    async fn recent_runs(&self, limit: u32) -> Result<Vec<RunDetail>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at DESC, id LIMIT ?1"
            ))?;
            let runs: Vec<RunRow> = stmt
                .query_map([limit], |r| run_row(r))?
                .collect::<Result<_, _>>()?;
            with_steps(c, runs)
        })
        .await
    }

    async fn set_run(
        &self,
        id: String,
        status: RunStatus,
        step: usize,
        now: i64,
    ) -> Result<(), StoreError> {
        self.with(move |c| {
            c.execute(
                "UPDATE runs SET status = ?2, step = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, status, step as i64, now],
            )?;
            Ok(())
        })
        .await
    }

    async fn put_step(&self, run_id: String, s: StepRow) -> Result<(), StoreError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO run_steps (run_id, idx, name, action, status, detail, command_id, started_at, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(run_id, idx) DO UPDATE SET status = excluded.status, detail = excluded.detail,
                   command_id = excluded.command_id, finished_at = excluded.finished_at",
                params![run_id, s.idx as i64, s.name, s.action, s.status, s.detail, s.command_id, s.started_at_ms, s.finished_at_ms],
            )?;
            Ok(())
        })
        .await
    }

    async fn step(&self, run_id: String, idx: usize) -> Result<Option<StepRow>, StoreError> {
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT idx, name, action, status, detail, command_id, started_at, finished_at
                 FROM run_steps WHERE run_id = ?1 AND idx = ?2",
                params![run_id, idx as i64],
                |r| step_row(r),
            )
            .optional()?)
        })
        .await
    }

    async fn count_steps(
        &self,
        action: String,
        statuses: Vec<StepStatus>,
        since_ms: i64,
    ) -> Result<u64, StoreError> {
        let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        let names = serde_json::to_string(&names)
            .map_err(|e| StoreError::Corrupt(format!("step statuses: {e}")))?;
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM run_steps WHERE action = ?1
                   AND status IN (SELECT value FROM json_each(?2)) AND started_at >= ?3",
                params![action, names, since_ms],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
        .await
    }

    async fn request_approval(&self, a: ApprovalRow) -> Result<ApprovalRow, StoreError> {
        self.with(move |c| {
            c.execute(
                &format!("INSERT OR IGNORE INTO approvals ({APPROVAL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
                params![a.id, a.run_id, a.idx as i64, a.incident_id, a.agent_id, a.what, a.reason, a.status, a.requested_at_ms, a.expires_at_ms, a.decided_by, a.decided_at_ms, a.note, a.requested_by, a.action],
            )?;
            // A run's step asks once: the request already made is the one that counts.
            Ok(c.query_row(
                &format!(
                    "SELECT {APPROVAL_COLUMNS} FROM approvals
                     WHERE (run_id = ?1 AND idx = ?2 AND run_id <> '') OR (?1 = '' AND id = ?3)"
                ),
                params![a.run_id, a.idx as i64, a.id],
                |r| approval_row(r),
            )?)
        })
        .await
    }

    async fn approval(&self, id: String) -> Result<Option<ApprovalRow>, StoreError> {
        self.with(move |c| {
            Ok(c.query_row(
                &format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?1"),
                [id],
                |r| approval_row(r),
            )
            .optional()?)
        })
        .await
    }

    async fn approvals(
        &self,
        all: bool,
        incident: Option<String>,
    ) -> Result<Vec<ApprovalRow>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE (?1 OR status = ?3)
                   AND (?2 IS NULL OR incident_id = ?2) ORDER BY requested_at"
            ))?;
            let rows = stmt.query_map(params![all, incident, ApprovalStatus::Pending], |r| {
                approval_row(r)
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
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
        self.with(move |c| {
            let n = c.execute(
                "UPDATE approvals SET status = ?2, decided_by = ?3, decided_at = ?4, note = ?5
                 WHERE id = ?1 AND status = ?6",
                params![id, status, by, now, note, ApprovalStatus::Pending],
            )?;
            if n == 0 {
                return Ok(None);
            }
            Ok(c.query_row(
                &format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?1"),
                [id],
                |r| approval_row(r),
            )
            .optional()?)
        })
        .await
    }

    async fn edge_version(
        &self,
        agent_id: String,
        policy_id: String,
        digest: String,
    ) -> Result<u64, StoreError> {
        self.with(move |c| {
            let v: i64 = c.query_row(
                EDGE_VERSION_SQL,
                params![agent_id, policy_id, digest],
                |r| r.get(0),
            )?;
            Ok(v as u64)
        })
        .await
    }

    async fn edge_versions(
        &self,
        agent_id: String,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(EDGE_VERSIONS_SQL)?;
            let rows = stmt.query_map([agent_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
