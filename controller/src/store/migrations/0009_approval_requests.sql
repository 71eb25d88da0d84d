-- Approvals record who asked: a playbook (`playbook:NAME`, with its run) or a person whose
-- containment request waits for a second person (no run; `action` is the command to send
-- once approved). The table is rebuilt because a person's request has no run to refer to.
CREATE TABLE approvals_v2 (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,        -- '' for a person's request
    idx INTEGER NOT NULL,
    incident_id TEXT NOT NULL,   -- '' when there is none
    agent_id TEXT NOT NULL,
    what TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,        -- pending, approved, denied, expired
    requested_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    decided_by TEXT NOT NULL,
    decided_at INTEGER NOT NULL,
    note TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    action BLOB                  -- a person's request: the command action (protobuf)
);
INSERT INTO approvals_v2
SELECT a.id, a.run_id, a.idx, a.incident_id, a.agent_id, a.what, a.reason, a.status,
       a.requested_at, a.expires_at, a.decided_by, a.decided_at, a.note,
       'playbook:' || COALESCE((SELECT r.playbook FROM runs r WHERE r.id = a.run_id), ''), NULL
FROM approvals a;
DROP TABLE approvals;
ALTER TABLE approvals_v2 RENAME TO approvals;
-- A run asks once per step.
CREATE UNIQUE INDEX approvals_per_step ON approvals(run_id, idx) WHERE run_id <> '';
CREATE INDEX approvals_by_status ON approvals(status);
