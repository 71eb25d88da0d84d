-- Agents, enrolment tokens, commands and telemetry events. Times are Unix milliseconds.
CREATE TABLE agents (
    id              TEXT PRIMARY KEY,
    hostname        TEXT NOT NULL DEFAULT '',
    os_name         TEXT NOT NULL DEFAULT '',
    os_version      TEXT NOT NULL DEFAULT '',
    kernel_version  TEXT NOT NULL DEFAULT '',
    arch            TEXT NOT NULL DEFAULT '',
    agent_version   TEXT NOT NULL DEFAULT '',
    labels          TEXT NOT NULL DEFAULT '{}',
    enrolled_at     INTEGER NOT NULL,
    last_seen       INTEGER NOT NULL DEFAULT 0,
    online          INTEGER NOT NULL DEFAULT 0,
    cert_serial     TEXT NOT NULL,
    cert_expires_at INTEGER NOT NULL,
    revoked_at      INTEGER,
    process_sensor  TEXT NOT NULL DEFAULT ''
);

-- Only the SHA-256 of a token is ever stored.
CREATE TABLE tokens (
    hash        TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    uses_left   INTEGER NOT NULL,
    labels      TEXT NOT NULL DEFAULT '{}',
    created_by  TEXT NOT NULL
);

CREATE TABLE commands (
    id           TEXT PRIMARY KEY,
    agent_id     TEXT NOT NULL REFERENCES agents(id),
    kind         TEXT NOT NULL,
    envelope     BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    status       TEXT NOT NULL,
    delivered_at INTEGER,
    completed_at INTEGER,
    error        TEXT NOT NULL DEFAULT '',
    result       BLOB,
    created_by   TEXT NOT NULL
);
CREATE INDEX commands_by_agent ON commands(agent_id, created_at);
CREATE INDEX commands_open ON commands(status, expires_at);

-- Telemetry, stored once per (agent, seq) however often the agent resends it.
CREATE TABLE events (
    agent_id    TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    time_ms     INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    body        BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (agent_id, seq)
) WITHOUT ROWID;
