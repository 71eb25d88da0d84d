-- Hunts (issue #15): one collection asked of many agents, a command per agent.
CREATE TABLE hunts (
    id TEXT PRIMARY KEY,
    collector TEXT NOT NULL,
    -- JSON array of "key=value".
    args TEXT NOT NULL,
    selector TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    cancelled_at INTEGER
);
CREATE INDEX hunts_by_time ON hunts(created_at);

CREATE TABLE hunt_commands (
    hunt_id TEXT NOT NULL REFERENCES hunts(id),
    command_id TEXT NOT NULL REFERENCES commands(id),
    agent_id TEXT NOT NULL,
    PRIMARY KEY (hunt_id, command_id)
) WITHOUT ROWID;
