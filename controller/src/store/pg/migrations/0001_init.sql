-- The whole schema of the SQLite store as of its migration 0011, in PostgreSQL's types.
-- Times are Unix milliseconds (BIGINT). Text that is sorted or compared as a key uses the
-- "C" collation, so it orders by bytes as SQLite does, whatever the database's locale.
CREATE TABLE agents (
    id                TEXT COLLATE "C" PRIMARY KEY,
    hostname          TEXT NOT NULL DEFAULT '',
    os_name           TEXT NOT NULL DEFAULT '',
    os_version        TEXT NOT NULL DEFAULT '',
    kernel_version    TEXT NOT NULL DEFAULT '',
    arch              TEXT NOT NULL DEFAULT '',
    agent_version     TEXT NOT NULL DEFAULT '',
    labels            TEXT NOT NULL DEFAULT '{}',
    enrolled_at       BIGINT NOT NULL,
    last_seen         BIGINT NOT NULL DEFAULT 0,
    online            BOOLEAN NOT NULL DEFAULT FALSE,
    cert_serial       TEXT NOT NULL,
    cert_expires_at   BIGINT NOT NULL,
    revoked_at        BIGINT,
    process_sensor    TEXT NOT NULL DEFAULT '',
    isolation_desired BOOLEAN NOT NULL DEFAULT FALSE,
    containment       BYTEA,
    metrics           BYTEA
);

-- Only the SHA-256 of a token is ever stored.
CREATE TABLE tokens (
    hash       TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    uses_left  BIGINT NOT NULL,
    labels     TEXT NOT NULL DEFAULT '{}',
    created_by TEXT NOT NULL
);

CREATE TABLE commands (
    id           TEXT COLLATE "C" PRIMARY KEY,
    agent_id     TEXT COLLATE "C" NOT NULL REFERENCES agents(id),
    kind         TEXT NOT NULL,
    envelope     BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    status       TEXT NOT NULL,
    delivered_at BIGINT,
    completed_at BIGINT,
    error        TEXT NOT NULL DEFAULT '',
    result       BYTEA,
    created_by   TEXT NOT NULL
);
CREATE INDEX commands_by_agent ON commands(agent_id, created_at);
CREATE INDEX commands_open ON commands(status, expires_at);

-- Telemetry, partitioned by day of the event's own time (see store/pg/partitions.rs). A
-- unique index on a partitioned table must include the partition key, so (agent, seq) is
-- made unique by `event_keys` instead (see store/pg/events.rs).
CREATE TABLE events (
    agent_id    TEXT COLLATE "C" NOT NULL,
    seq         BIGINT NOT NULL,
    time_ms     BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    body        BYTEA NOT NULL,
    received_at BIGINT NOT NULL,
    summary     TEXT NOT NULL DEFAULT '',
    pid         BIGINT,
    ppid        BIGINT,
    start_ticks BIGINT
) PARTITION BY RANGE (time_ms);
-- The search's order and retention's; the summary stays out of the key (a long one would
-- exceed a b-tree entry's size).
CREATE INDEX events_by_time ON events(time_ms, agent_id, seq) INCLUDE (kind);
CREATE INDEX events_by_key ON events(agent_id, seq);
CREATE INDEX events_by_pid ON events(agent_id, pid) WHERE pid IS NOT NULL;
CREATE INDEX events_by_ppid ON events(agent_id, ppid) WHERE ppid IS NOT NULL;

-- Every stored (agent, seq), with the event's time so retention forgets it with the event.
CREATE TABLE event_keys (
    agent_id TEXT COLLATE "C" NOT NULL,
    seq      BIGINT NOT NULL,
    time_ms  BIGINT NOT NULL,
    PRIMARY KEY (agent_id, seq)
);
CREATE INDEX event_keys_by_time ON event_keys(time_ms);

CREATE TABLE rules (
    id          TEXT COLLATE "C" PRIMARY KEY,
    title       TEXT NOT NULL,
    level       TEXT NOT NULL,
    status      TEXT NOT NULL,
    author      TEXT NOT NULL,
    tags        TEXT NOT NULL,          -- JSON array
    logsource   TEXT NOT NULL,
    origin      TEXT NOT NULL,
    source      TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    imported_at BIGINT NOT NULL
);

CREATE TABLE iocs (
    kind     TEXT NOT NULL,
    value    TEXT NOT NULL,
    list     TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (kind, value, list)
);

CREATE TABLE incidents (
    id         TEXT COLLATE "C" PRIMARY KEY,
    agent_id   TEXT COLLATE "C" NOT NULL,
    status     TEXT NOT NULL,
    severity   TEXT NOT NULL,
    title      TEXT NOT NULL,
    opened_at  BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX incidents_by_agent ON incidents(agent_id, updated_at);

CREATE TABLE alerts (
    id          TEXT COLLATE "C" PRIMARY KEY,
    agent_id    TEXT COLLATE "C" NOT NULL,
    rule_id     TEXT NOT NULL,
    title       TEXT NOT NULL,
    level       TEXT NOT NULL,
    tags        TEXT NOT NULL,          -- JSON array
    author      TEXT NOT NULL,
    source      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    event_seq   BIGINT NOT NULL,
    count       BIGINT NOT NULL DEFAULT 1,
    first_at    BIGINT NOT NULL,
    last_at     BIGINT NOT NULL,
    incident_id TEXT COLLATE "C" NOT NULL REFERENCES incidents(id)
);
CREATE INDEX alerts_by_time ON alerts(first_at);
CREATE INDEX alerts_by_rule ON alerts(agent_id, rule_id, last_at);
CREATE INDEX alerts_by_incident ON alerts(incident_id);

CREATE TABLE timeline (
    id          BIGSERIAL PRIMARY KEY,  -- the order of entries at the same time
    incident_id TEXT COLLATE "C" NOT NULL REFERENCES incidents(id),
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    text        TEXT NOT NULL,
    ref         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX timeline_by_incident ON timeline(incident_id, at);

-- The audit log: append-only and hash-chained (see store/audit.rs).
CREATE TABLE audit (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_by_time ON audit(at);
CREATE INDEX audit_by_actor ON audit(actor, seq);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: entries cannot be changed or deleted';
END $$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();

CREATE TABLE playbooks (
    name       TEXT COLLATE "C" PRIMARY KEY,
    origin     TEXT NOT NULL,
    source     TEXT NOT NULL,
    enabled    BOOLEAN NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE runs (
    id          TEXT COLLATE "C" PRIMARY KEY,
    playbook    TEXT NOT NULL,
    source      TEXT NOT NULL,
    alert_id    TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    agent_id    TEXT NOT NULL,
    dry_run     BOOLEAN NOT NULL,
    status      TEXT NOT NULL,
    step        BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (playbook, alert_id)
);
CREATE INDEX runs_by_status ON runs(status);

CREATE TABLE run_steps (
    run_id      TEXT COLLATE "C" NOT NULL REFERENCES runs(id),
    idx         BIGINT NOT NULL,
    name        TEXT NOT NULL,
    action      TEXT NOT NULL,
    status      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    command_id  TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, idx)
);
CREATE INDEX run_steps_by_action ON run_steps(action, status, finished_at);

CREATE TABLE approvals (
    id           TEXT COLLATE "C" PRIMARY KEY,
    run_id       TEXT COLLATE "C" NOT NULL,  -- '' for a person's request
    idx          BIGINT NOT NULL,
    incident_id  TEXT NOT NULL,
    agent_id     TEXT NOT NULL,
    what         TEXT NOT NULL,
    reason       TEXT NOT NULL,
    status       TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    decided_by   TEXT NOT NULL,
    decided_at   BIGINT NOT NULL,
    note         TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    action       BYTEA
);
CREATE UNIQUE INDEX approvals_per_step ON approvals(run_id, idx) WHERE run_id <> '';
CREATE INDEX approvals_by_status ON approvals(status);

CREATE TABLE principals (
    name          TEXT COLLATE "C" PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('user', 'service')),
    role          TEXT NOT NULL,
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    password_hash TEXT,
    totp_secret   TEXT,
    last_login_at BIGINT,
    cert_serial   TEXT NOT NULL DEFAULT ''
);

CREATE TABLE invites (
    hash       TEXT PRIMARY KEY,
    principal  TEXT COLLATE "C" NOT NULL REFERENCES principals(name),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

INSERT INTO principals (name, kind, role, created_by, created_at)
VALUES ('admin', 'user', 'admin', 'init', (extract(epoch FROM now()) * 1000)::BIGINT);
