//! Alerts, incidents and their timelines on PostgreSQL; grouping follows
//! `policy::grouping`, as in the SQLite backend (`store/alerts.rs`, which also holds the
//! shared column lists).

use super::{PgStore, all, big};
use crate::policy::grouping::{Grouping, LEVELS, raised_severity};
use crate::store::alerts::{
    ALERT_COLUMNS, ALERT_FROM, INCIDENT_SELECT, alert_row, incident_row, new_id, tags_json,
    timeline_row,
};
use crate::store::{
    AlertChange, AlertRow, Alerts, Finding, IncidentDetail, IncidentRow, IncidentStatus,
    StoreError, StoredEvent, TimelineRow,
};
use tokio_postgres::{GenericClient, Transaction};

async fn timeline(
    c: &impl GenericClient,
    incident: &str,
    at: i64,
    [kind, actor, text, reference]: [&str; 4],
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO timeline (incident_id, at, kind, actor, text, ref)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&incident, &at, &kind, &actor, &text, &reference],
    )
    .await?;
    Ok(())
}

/// The incident a new alert of `agent_id` joins (raising its severity), or a new one.
async fn incident_for(
    tx: &Transaction<'_>,
    agent_id: &str,
    now: i64,
    f: &Finding,
    g: Grouping,
) -> Result<String, StoreError> {
    let collecting = tx
        .query_opt(
            "SELECT id, severity, updated_at FROM incidents WHERE agent_id = $1
               AND status IN ($2, $3) ORDER BY updated_at DESC LIMIT 1",
            &[&agent_id, &IncidentStatus::Open, &IncidentStatus::Contained],
        )
        .await?;
    if let Some(r) = collecting
        && g.joins_incident(r.try_get(2)?, now)
    {
        let id: String = r.try_get(0)?;
        let severity = raised_severity(r.try_get(1)?, &f.rule.level);
        tx.execute(
            "UPDATE incidents SET severity = $2, updated_at = $3 WHERE id = $1",
            &[&id, &severity, &now],
        )
        .await?;
        return Ok(id);
    }
    let id = new_id("inc");
    tx.execute(
        "INSERT INTO incidents (id, agent_id, status, severity, title, opened_at, updated_at)
         VALUES ($1, $2, $6, $3, $4, $5, $5)",
        &[
            &id,
            &agent_id,
            &f.rule.level,
            &f.rule.title,
            &now,
            &IncidentStatus::Open,
        ],
    )
    .await?;
    let text = format!("incident opened on agent {agent_id}");
    timeline(tx, &id, now, ["opened", "detection", &text, ""]).await?;
    Ok(id)
}

/// Records what detection found in a new event: a repeat counts on its alert; anything
/// else is a new alert in an incident (see `store/alerts.rs::record`).
pub(super) async fn record(
    tx: &Transaction<'_>,
    e: &StoredEvent,
    f: &Finding,
    g: Grouping,
) -> Result<AlertChange, StoreError> {
    let (agent_id, now) = (e.agent_id.as_str(), e.received_at_ms);
    let change = |alert_id, incident_id, new| AlertChange {
        alert_id,
        incident_id,
        new,
        finding: f.clone(),
        agent_id: agent_id.into(),
    };
    let latest = tx
        .query_opt(
            "SELECT id, incident_id, last_at FROM alerts WHERE agent_id = $1 AND rule_id = $2
             ORDER BY last_at DESC LIMIT 1",
            &[&agent_id, &f.rule.rule_id],
        )
        .await?;
    if let Some(r) = latest
        && g.is_repeat(r.try_get(2)?, now)
    {
        let alert_id: String = r.try_get(0)?;
        tx.execute(
            "UPDATE alerts SET count = count + 1, last_at = $2 WHERE id = $1",
            &[&alert_id, &now],
        )
        .await?;
        return Ok(change(alert_id, r.try_get(1)?, false));
    }
    let incident_id = incident_for(tx, agent_id, now, f, g).await?;
    let alert_id = new_id("alr");
    tx.execute(
        "INSERT INTO alerts (id, agent_id, rule_id, title, level, tags, author, source, detail,
                             event_seq, count, first_at, last_at, incident_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $11, $12)",
        &[
            &alert_id,
            &agent_id,
            &f.rule.rule_id,
            &f.rule.title,
            &f.rule.level,
            &tags_json(&f.rule.tags),
            &f.rule.author,
            &f.source,
            &f.detail,
            &(e.seq as i64),
            &now,
            &incident_id,
        ],
    )
    .await?;
    let text = format!("{} ({}): {}", f.rule.title, f.rule.level, e.summary);
    timeline(
        tx,
        &incident_id,
        now,
        ["alert", "detection", &text, &alert_id],
    )
    .await?;
    Ok(change(alert_id, incident_id, true))
}

/// The one id in `table` that starts with `id` (None for none, or more than one).
async fn resolve(
    c: &impl GenericClient,
    table: &str,
    id: &str,
) -> Result<Option<String>, StoreError> {
    let pattern = format!("{}%", id.replace(['%', '_', '\\'], ""));
    let sql = format!("SELECT id FROM {table} WHERE id LIKE $1 LIMIT 2");
    let rows = c.query(&sql, &[&pattern]).await?;
    Ok(match rows.as_slice() {
        [one] => Some(one.try_get(0)?),
        _ => None,
    })
}

impl Alerts for PgStore {
    async fn add_timeline(&self, incident: String, entry: TimelineRow) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let e = &entry;
        let fields = [e.kind.as_str(), &e.actor, &e.text, &e.reference];
        timeline(&*tx, &incident, e.at_ms, fields).await?;
        tx.execute(
            "UPDATE incidents SET updated_at = GREATEST(updated_at, $2) WHERE id = $1",
            &[&incident, &e.at_ms],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_incident_severity(&self, id: String, severity: String) -> Result<(), StoreError> {
        let sql = "UPDATE incidents SET severity = $2 WHERE id = $1";
        self.exec(sql, &[&id, &severity]).await?;
        Ok(())
    }

    async fn alerts(
        &self,
        since_ms: i64,
        min_level: usize,
        agent_id: Option<String>,
        limit: u32,
    ) -> Result<Vec<AlertRow>, StoreError> {
        let levels: Vec<&str> = LEVELS[min_level.min(LEVELS.len() - 1)..].to_vec();
        let sql = format!(
            "SELECT * FROM (SELECT {ALERT_COLUMNS} {ALERT_FROM}
               WHERE a.first_at >= $1 AND a.level = ANY($2)
                 AND ($3::TEXT IS NULL OR a.agent_id = $3)
               ORDER BY a.first_at DESC LIMIT $4) newest ORDER BY 12"
        );
        let c = self.client().await?;
        let rows = c
            .query(&sql, &[&since_ms, &levels, &agent_id, &big(limit)])
            .await?;
        all(&rows, alert_row)
    }

    async fn alert(&self, id: String) -> Result<Option<AlertRow>, StoreError> {
        let c = self.client().await?;
        let Some(id) = resolve(&**c, "alerts", &id).await? else {
            return Ok(None);
        };
        let sql = format!("SELECT {ALERT_COLUMNS} {ALERT_FROM} WHERE a.id = $1");
        let row = c.query_opt(&sql, &[&id]).await?;
        Ok(row.as_ref().map(alert_row).transpose()?)
    }

    async fn incidents(
        &self,
        status: Option<IncidentStatus>,
        limit: u32,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        let sql = format!(
            "SELECT * FROM ({INCIDENT_SELECT} WHERE ($1::TEXT IS NULL OR i.status = $1)
             ORDER BY i.updated_at DESC LIMIT $2) newest ORDER BY 7"
        );
        let c = self.client().await?;
        let rows = c.query(&sql, &[&status, &big(limit)]).await?;
        all(&rows, incident_row)
    }

    async fn incident(&self, id: String) -> Result<Option<IncidentDetail>, StoreError> {
        let c = self.client().await?;
        let Some(id) = resolve(&**c, "incidents", &id).await? else {
            return Ok(None);
        };
        let sql = format!("{INCIDENT_SELECT} WHERE i.id = $1");
        let Some(inc) = c.query_opt(&sql, &[&id]).await? else {
            return Ok(None);
        };
        let timeline = c
            .query(
                "SELECT at, kind, actor, text, ref FROM timeline WHERE incident_id = $1
                 ORDER BY at, id",
                &[&id],
            )
            .await?;
        let sql = format!(
            "SELECT {ALERT_COLUMNS} {ALERT_FROM} WHERE a.incident_id = $1 ORDER BY a.first_at"
        );
        let alerts = c.query(&sql, &[&id]).await?;
        Ok(Some((
            incident_row(&inc)?,
            timeline
                .iter()
                .map(timeline_row)
                .collect::<Result<_, _>>()?,
            alerts.iter().map(alert_row).collect::<Result<_, _>>()?,
        )))
    }

    async fn set_incident_status(
        &self,
        id: String,
        status: IncidentStatus,
        actor: String,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut c = self.client().await?;
        let Some(id) = resolve(&**c, "incidents", &id).await? else {
            return Ok(None);
        };
        let tx = c.transaction().await?;
        let old: IncidentStatus = tx
            .query_one(
                "SELECT status FROM incidents WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await?
            .try_get(0)?;
        tx.execute(
            "UPDATE incidents SET status = $2, updated_at = $3 WHERE id = $1",
            &[&id, &status, &now],
        )
        .await?;
        let text = format!("status {old} -> {status}");
        timeline(&*tx, &id, now, ["status", &actor, &text, ""]).await?;
        tx.commit().await?;
        Ok(Some(id))
    }
}
