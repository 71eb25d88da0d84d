-- Detection: Sigma rules, indicator lists, alerts and the incidents that group them.

CREATE TABLE rules (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    level TEXT NOT NULL,
    status TEXT NOT NULL,
    author TEXT NOT NULL,
    tags TEXT NOT NULL,          -- JSON array
    logsource TEXT NOT NULL,
    origin TEXT NOT NULL,
    source TEXT NOT NULL,        -- the rule's YAML, reloaded at start
    enabled INTEGER NOT NULL DEFAULT 1,
    imported_at INTEGER NOT NULL
);

CREATE TABLE iocs (
    kind TEXT NOT NULL,          -- sha256, ip, domain
    value TEXT NOT NULL,         -- normalised: lower-case hex, canonical address, lower-case name
    list TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (kind, value, list)
) WITHOUT ROWID;

CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    status TEXT NOT NULL,        -- open, contained, resolved, false_positive
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX incidents_by_agent ON incidents(agent_id, updated_at);

CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    title TEXT NOT NULL,
    level TEXT NOT NULL,
    tags TEXT NOT NULL,          -- JSON array
    author TEXT NOT NULL,
    source TEXT NOT NULL,        -- sigma, ioc
    detail TEXT NOT NULL,
    event_seq INTEGER NOT NULL,
    count INTEGER NOT NULL DEFAULT 1,
    first_at INTEGER NOT NULL,
    last_at INTEGER NOT NULL,
    incident_id TEXT NOT NULL REFERENCES incidents(id)
);
CREATE INDEX alerts_by_time ON alerts(first_at);
CREATE INDEX alerts_by_rule ON alerts(agent_id, rule_id, last_at);
CREATE INDEX alerts_by_incident ON alerts(incident_id);

CREATE TABLE timeline (
    incident_id TEXT NOT NULL REFERENCES incidents(id),
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    text TEXT NOT NULL,
    ref TEXT NOT NULL DEFAULT ''
);
CREATE INDEX timeline_by_incident ON timeline(incident_id, at);
