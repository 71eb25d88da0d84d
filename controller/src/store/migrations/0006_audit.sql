-- The audit log: every admin and automatic action, append-only and hash-chained.
-- `hash` is SHA-256 over the entry's fields and `prev_hash` (see store/audit.rs); `seq`
-- counts from 1 without gaps. The triggers refuse changes through SQL; `audit verify`
-- still catches changes made around them (triggers dropped, or the file edited directly).

CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,     -- 1, 2, 3, ...: set explicitly, never reused
    at INTEGER NOT NULL,         -- Unix ms, the controller's clock
    actor TEXT NOT NULL,         -- an admin identity, "playbook:NAME", "enrolment", ...
    action TEXT NOT NULL,        -- "token.create", "command.isolate", ...
    target TEXT NOT NULL,        -- "agent:ID", "rule:ID", "incident:ID", ... or ''
    detail TEXT NOT NULL,        -- JSON
    outcome TEXT NOT NULL,       -- "ok", a command status, "refused: ...", "error: ..."
    prev_hash TEXT NOT NULL,     -- hex; 64 zeros for the first entry
    hash TEXT NOT NULL           -- hex
);
CREATE INDEX audit_by_time ON audit(at);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: entries cannot be changed');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: entries cannot be deleted');
END;
