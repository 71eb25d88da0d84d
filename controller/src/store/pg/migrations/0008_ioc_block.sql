-- Prevention (issue #17): indicator lists marked as block lists. The SHA-256 entries of a
-- block list are denied at exec on every agent ("blocklist" edge policy).
CREATE TABLE ioc_lists (
    kind  TEXT NOT NULL,
    list  TEXT NOT NULL,
    block BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (kind, list)
);
