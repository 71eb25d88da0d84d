//! Alerts and the incidents that group them, written in the same transaction as the events
//! that raised them: an event is stored and judged exactly once, or neither. A rule firing
//! again on the same host within the alert window counts on its first alert; alerts on a
//! host within the incident window join that host's open incident, whose severity is the
//! highest level among them. Every step is on the incident's timeline.

use super::rows::Cols;
use super::{IncidentStatus, Store, StoreError};
use crate::policy::grouping::{Grouping, LEVELS, raised_severity};
use cordon_detect::RuleIdentity;
use rusqlite::{Connection, OptionalExtension, params};

/// What detection found in one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: RuleIdentity,
    /// "sigma", "ioc" or "prevention".
    pub source: String,
    pub detail: String,
}

/// An alert an ingest raised (`new`) or counted again.
#[derive(Debug, Clone)]
pub struct AlertChange {
    pub alert_id: String,
    pub incident_id: String,
    pub new: bool,
    pub finding: Finding,
    pub agent_id: String,
}

#[derive(Debug, Clone)]
pub struct AlertRow {
    pub id: String,
    pub agent_id: String,
    pub rule: RuleIdentity,
    pub source: String,
    pub detail: String,
    pub event_seq: u64,
    pub count: u32,
    pub first_at_ms: i64,
    pub last_at_ms: i64,
    pub incident_id: String,
    /// The raising event, if it is still stored.
    pub event: Option<super::StoredEvent>,
}

#[derive(Debug, Clone)]
pub struct TimelineRow {
    pub at_ms: i64,
    pub kind: String,
    pub actor: String,
    pub text: String,
    pub reference: String,
}

#[derive(Debug, Clone)]
pub struct IncidentRow {
    pub id: String,
    pub agent_id: String,
    pub status: IncidentStatus,
    pub severity: String,
    pub title: String,
    pub opened_at_ms: i64,
    pub updated_at_ms: i64,
    pub alert_count: u32,
}

pub(super) fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", hex::encode(rand::random::<[u8; 8]>()))
}

pub(super) fn tags_json(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".into())
}

fn timeline(
    tx: &Connection,
    incident: &str,
    at: i64,
    kind: &str,
    actor: &str,
    text: &str,
    reference: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO timeline (incident_id, at, kind, actor, text, ref) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![incident, at, kind, actor, text, reference])?;
    Ok(())
}

/// Records one finding on (agent, seq) inside the ingest transaction.
pub(super) fn record(
    tx: &Connection,
    agent_id: &str,
    seq: u64,
    summary: &str,
    now: i64,
    f: &Finding,
    g: Grouping,
) -> Result<AlertChange, StoreError> {
    // The rule's latest alert on this host, and the host's latest incident still collecting
    // alerts: if either is outside its window, so is every older one.
    let latest: Option<(String, String, i64)> = tx
        .prepare_cached(
            "SELECT id, incident_id, last_at FROM alerts WHERE agent_id = ?1 AND rule_id = ?2
             ORDER BY last_at DESC LIMIT 1",
        )?
        .query_row(params![agent_id, f.rule.rule_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let repeat = latest.filter(|(_, _, last_at)| g.is_repeat(*last_at, now));
    if let Some((alert_id, incident_id, _)) = repeat {
        tx.prepare_cached("UPDATE alerts SET count = count + 1, last_at = ?2 WHERE id = ?1")?
            .execute(params![alert_id, now])?;
        return Ok(AlertChange {
            alert_id,
            incident_id,
            new: false,
            finding: f.clone(),
            agent_id: agent_id.into(),
        });
    }
    let collecting: Option<(String, String, i64)> = tx
        .prepare_cached(
            "SELECT id, severity, updated_at FROM incidents WHERE agent_id = ?1
               AND status IN (?2, ?3) ORDER BY updated_at DESC LIMIT 1",
        )?
        .query_row(
            params![agent_id, IncidentStatus::Open, IncidentStatus::Contained],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let open = collecting.filter(|(_, _, updated_at)| g.joins_incident(*updated_at, now));
    let incident_id = match open {
        Some((id, severity, _)) => {
            let severity = raised_severity(&severity, &f.rule.level);
            tx.prepare_cached("UPDATE incidents SET severity = ?2, updated_at = ?3 WHERE id = ?1")?
                .execute(params![id, severity, now])?;
            id
        }
        None => {
            let id = new_id("inc");
            tx.prepare_cached(
                "INSERT INTO incidents (id, agent_id, status, severity, title, opened_at, updated_at)
                 VALUES (?1, ?2, ?6, ?3, ?4, ?5, ?5)",
            )?
            .execute(params![id, agent_id, f.rule.level, f.rule.title, now, IncidentStatus::Open])?;
            timeline(
                tx,
                &id,
                now,
                "opened",
                "detection",
                &format!("incident opened on agent {agent_id}"),
                "",
            )?;
            id
        }
    };
    let alert_id = new_id("alr");
    tx.prepare_cached(
        "INSERT INTO alerts (id, agent_id, rule_id, title, level, tags, author, source, detail,
                             event_seq, count, first_at, last_at, incident_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, ?11, ?11, ?12)",
    )?
    .execute(params![
        alert_id,
        agent_id,
        f.rule.rule_id,
        f.rule.title,
        f.rule.level,
        tags_json(&f.rule.tags),
        f.rule.author,
        f.source,
        f.detail,
        seq as i64,
        now,
        incident_id
    ])?;
    timeline(
        tx,
        &incident_id,
        now,
        "alert",
        "detection",
        &format!("{} ({}): {summary}", f.rule.title, f.rule.level),
        &alert_id,
    )?;
    Ok(AlertChange {
        alert_id,
        incident_id,
        new: true,
        finding: f.clone(),
        agent_id: agent_id.into(),
    })
}

pub(super) const ALERT_COLUMNS: &str =
    "a.id, a.agent_id, a.rule_id, a.title, a.level, a.tags, a.author, a.source,
     a.detail, a.event_seq, a.count, a.first_at, a.last_at, a.incident_id,
     e.seq, e.time_ms, e.kind, e.summary, e.body, e.received_at";
pub(super) const ALERT_FROM: &str =
    "FROM alerts a LEFT JOIN events e ON e.agent_id = a.agent_id AND e.seq = a.event_seq";

pub(super) fn alert_row<R: Cols>(r: &R) -> Result<AlertRow, R::Error> {
    let tags: String = r.col(5)?;
    let agent_id: String = r.col(1)?;
    let event = match r.col::<Option<i64>>(14)? {
        Some(seq) => Some(super::StoredEvent {
            agent_id: agent_id.clone(),
            seq: seq as u64,
            time_ms: r.col(15)?,
            kind: r.col(16)?,
            summary: r.col(17)?,
            body: r.col(18)?,
            received_at_ms: r.col(19)?,
        }),
        None => None,
    };
    Ok(AlertRow {
        id: r.col(0)?,
        agent_id,
        rule: RuleIdentity {
            rule_id: r.col(2)?,
            title: r.col(3)?,
            level: r.col(4)?,
            tags: serde_json::from_str(&tags).unwrap_or_default(),
            author: r.col(6)?,
        },
        source: r.col(7)?,
        detail: r.col(8)?,
        event_seq: r.col::<i64>(9)? as u64,
        count: r.col::<i64>(10)? as u32,
        first_at_ms: r.col(11)?,
        last_at_ms: r.col(12)?,
        incident_id: r.col(13)?,
        event,
    })
}

pub(super) fn timeline_row<R: Cols>(r: &R) -> Result<TimelineRow, R::Error> {
    Ok(TimelineRow {
        at_ms: r.col(0)?,
        kind: r.col(1)?,
        actor: r.col(2)?,
        text: r.col(3)?,
        reference: r.col(4)?,
    })
}

pub(super) fn incident_row<R: Cols>(r: &R) -> Result<IncidentRow, R::Error> {
    Ok(IncidentRow {
        id: r.col(0)?,
        agent_id: r.col(1)?,
        status: r.col(2)?,
        severity: r.col(3)?,
        title: r.col(4)?,
        opened_at_ms: r.col(5)?,
        updated_at_ms: r.col(6)?,
        alert_count: r.col::<i64>(7)? as u32,
    })
}

pub(super) const INCIDENT_SELECT: &str =
    "SELECT i.id, i.agent_id, i.status, i.severity, i.title, i.opened_at, i.updated_at,
            (SELECT COUNT(*) FROM alerts a WHERE a.incident_id = i.id) FROM incidents i";

/// Resolves an id or a unique prefix of one in `table`.
fn resolve(c: &rusqlite::Connection, table: &str, id: &str) -> Result<Option<String>, StoreError> {
    let pattern = format!("{}%", id.replace(['%', '_', '\\'], ""));
    let mut stmt = c.prepare(&format!("SELECT id FROM {table} WHERE id LIKE ?1 LIMIT 2"))?;
    let ids: Vec<String> = stmt
        .query_map([pattern], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(match ids.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    })
}

/// An incident with its timeline (oldest first) and its alerts (first raised first).
pub type IncidentDetail = (IncidentRow, Vec<TimelineRow>, Vec<AlertRow>);

/// The alerts and incidents aggregate. Alerts are raised by `Events::ingest`, grouped into
/// incidents by `policy::grouping`; this is how they are read and how people act on
/// incidents. Ids may be given as a unique prefix. Every backend passes
/// `conformance::alerts` (`alert_*`, `incident_*`).
pub trait Alerts: Send + Sync {
    /// Adds an entry to an incident's timeline; the incident counts as updated then.
    fn add_timeline(
        &self,
        incident: String,
        entry: TimelineRow,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Sets an incident's severity.
    fn set_incident_severity(
        &self,
        id: String,
        severity: String,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Alerts first raised since `since_ms`, at or above level `min_level` (an index into
    /// `policy::grouping::LEVELS`), on one agent or all: the newest `limit`, newest last.
    fn alerts(
        &self,
        since_ms: i64,
        min_level: usize,
        agent_id: Option<String>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AlertRow>, StoreError>> + Send;

    /// One alert by id (or a unique prefix of it), with its event if still stored.
    fn alert(
        &self,
        id: String,
    ) -> impl Future<Output = Result<Option<AlertRow>, StoreError>> + Send;

    /// Incidents with this status (any without one): the `limit` most recently updated,
    /// the most recent last.
    fn incidents(
        &self,
        status: Option<IncidentStatus>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<IncidentRow>, StoreError>> + Send;

    /// An incident (by id or a unique prefix) with its timeline and alerts.
    fn incident(
        &self,
        id: String,
    ) -> impl Future<Output = Result<Option<IncidentDetail>, StoreError>> + Send;

    /// Sets an incident's status, on its timeline ("status OLD -> NEW") with who did it.
    /// Returns the full id, or None if there is no such incident.
    fn set_incident_status(
        &self,
        id: String,
        status: IncidentStatus,
        actor: String,
        now: i64,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
}

impl Alerts for Store {
    async fn add_timeline(&self, incident: String, entry: TimelineRow) -> Result<(), StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            timeline(
                &tx,
                &incident,
                entry.at_ms,
                &entry.kind,
                &entry.actor,
                &entry.text,
                &entry.reference,
            )?;
            tx.execute(
                "UPDATE incidents SET updated_at = MAX(updated_at, ?2) WHERE id = ?1",
                params![incident, entry.at_ms],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn set_incident_severity(&self, id: String, severity: String) -> Result<(), StoreError> {
        self.with(move |c| {
            c.execute(
                "UPDATE incidents SET severity = ?2 WHERE id = ?1",
                params![id, severity],
            )?;
            Ok(())
        })
        .await
    }

    async fn alerts(
        &self,
        since_ms: i64,
        min_level: usize,
        agent_id: Option<String>,
        limit: u32,
    ) -> Result<Vec<AlertRow>, StoreError> {
        self.with(move |c| {
            let levels: Vec<&str> = LEVELS[min_level.min(LEVELS.len() - 1)..].to_vec();
            let levels = serde_json::to_string(&levels).unwrap_or_default();
            let mut stmt = c.prepare(&format!(
                "SELECT * FROM (SELECT {ALERT_COLUMNS} {ALERT_FROM}
                   WHERE a.first_at >= ?1 AND a.level IN (SELECT value FROM json_each(?2))
                     AND (?3 IS NULL OR a.agent_id = ?3)
                   ORDER BY a.first_at DESC LIMIT ?4) ORDER BY 12"
            ))?;
            let rows =
                stmt.query_map(params![since_ms, levels, agent_id, limit], |r| alert_row(r))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn alert(&self, id: String) -> Result<Option<AlertRow>, StoreError> {
        self.with(move |c| {
            let Some(id) = resolve(c, "alerts", &id)? else {
                return Ok(None);
            };
            Ok(c.query_row(
                &format!("SELECT {ALERT_COLUMNS} {ALERT_FROM} WHERE a.id = ?1"),
                [id],
                |r| alert_row(r),
            )
            .optional()?)
        })
        .await
    }

    async fn incidents(
        &self,
        status: Option<IncidentStatus>,
        limit: u32,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT * FROM ({INCIDENT_SELECT} WHERE (?1 IS NULL OR i.status = ?1)
                 ORDER BY i.updated_at DESC LIMIT ?2) ORDER BY 7"
            ))?;
            let rows = stmt.query_map(params![status, limit], |r| incident_row(r))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn incident(&self, id: String) -> Result<Option<IncidentDetail>, StoreError> {
        self.with(move |c| {
            let Some(id) = resolve(c, "incidents", &id)? else {
                return Ok(None);
            };
            let Some(inc) = c
                .query_row(&format!("{INCIDENT_SELECT} WHERE i.id = ?1"), [&id], |r| incident_row(r))
                .optional()?
            else {
                return Ok(None);
            };
            let mut stmt = c.prepare(
                "SELECT at, kind, actor, text, ref FROM timeline WHERE incident_id = ?1 ORDER BY at, rowid",
            )?;
            let timeline = stmt
                .query_map([&id], |r| timeline_row(r))?
                .collect::<Result<_, _>>()?;
            let mut stmt = c.prepare(&format!(
                "SELECT {ALERT_COLUMNS} {ALERT_FROM} WHERE a.incident_id = ?1 ORDER BY a.first_at"
            ))?;
            let alerts = stmt
                .query_map([&id], |r| alert_row(r))?
                .collect::<Result<_, _>>()?;
            Ok(Some((inc, timeline, alerts)))
        })
        .await
    }

    async fn set_incident_status(
        &self,
        id: String,
        status: IncidentStatus,
        actor: String,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        self.with(move |c| {
            let Some(id) = resolve(c, "incidents", &id)? else {
                return Ok(None);
            };
            let tx = c.transaction()?;
            let old: IncidentStatus =
                tx.query_row("SELECT status FROM incidents WHERE id = ?1", [&id], |r| {
                    r.get(0)
                })?;
            tx.execute(
                "UPDATE incidents SET status = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, status, now],
            )?;
            timeline(
                &tx,
                &id,
                now,
                "status",
                &actor,
                &format!("status {old} -> {status}"),
                "",
            )?;
            tx.commit()?;
            Ok(Some(id))
        })
        .await
    }
}
