-- People and service accounts, and their one-time invite codes. A principal's name is unique
-- across both kinds, so an audit entry's actor names exactly one. Times are Unix ms.
CREATE TABLE principals (
    name          TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('user', 'service')),
    role          TEXT NOT NULL,
    enabled       INTEGER NOT NULL DEFAULT 1,
    expires_at    INTEGER,                 -- NULL: never
    revoked_at    INTEGER,                 -- NULL: not revoked; final
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    password_hash TEXT,                    -- argon2id PHC string, for the web console
    totp_secret   TEXT,                    -- base32, for the web console
    last_login_at INTEGER,                 -- last credential issued (login or renewal)
    cert_serial   TEXT NOT NULL DEFAULT '' -- serial of the last credential issued
);

-- Only the SHA-256 of an invite code is stored; a code is used once.
CREATE TABLE invites (
    hash       TEXT PRIMARY KEY,
    principal  TEXT NOT NULL REFERENCES principals(name),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);

-- The administrator that `init` created before principals existed keeps its credential
-- (`cordon://admin/admin`), now as the person `admin`.
INSERT INTO principals (name, kind, role, created_by, created_at)
VALUES ('admin', 'user', 'admin', 'init', CAST(strftime('%s', 'now') AS INTEGER) * 1000);

-- `cordonctl audit --actor NAME`.
CREATE INDEX audit_by_actor ON audit(actor, seq);
