-- Playbooks, their runs (durable: a restart resumes them), each step's outcome, and the
-- approvals runs wait for.

CREATE TABLE playbooks (
    name TEXT PRIMARY KEY,
    origin TEXT NOT NULL,
    source TEXT NOT NULL,        -- the YAML, parsed again at start
    enabled INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    playbook TEXT NOT NULL,
    source TEXT NOT NULL,        -- the playbook as it was when the run started
    alert_id TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    dry_run INTEGER NOT NULL,
    status TEXT NOT NULL,        -- running, waiting_approval, succeeded, failed, aborted
    step INTEGER NOT NULL,       -- the next step to run
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (playbook, alert_id)
);
CREATE INDEX runs_by_status ON runs(status);

CREATE TABLE run_steps (
    run_id TEXT NOT NULL REFERENCES runs(id),
    idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,        -- running, succeeded, failed, skipped, dry_run, denied
    detail TEXT NOT NULL,
    command_id TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, idx)
);
CREATE INDEX run_steps_by_action ON run_steps(action, status, finished_at);

CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    idx INTEGER NOT NULL,
    incident_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    what TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,        -- pending, approved, denied, expired
    requested_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    decided_by TEXT NOT NULL,
    decided_at INTEGER NOT NULL,
    note TEXT NOT NULL,
    UNIQUE (run_id, idx)
);
CREATE INDEX approvals_by_status ON approvals(status);
