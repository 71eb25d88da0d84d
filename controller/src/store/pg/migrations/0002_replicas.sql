-- Several controllers on one database: who runs what.

-- The controller executing a run, and until when its claim holds unless renewed. A run
-- whose claim lapsed (its controller died) is claimed and resumed by another, once.
ALTER TABLE runs
    ADD COLUMN owner       TEXT   NOT NULL DEFAULT '',
    ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;

-- Work that one controller at a time does (command expiry, event retention, presence):
-- the holder renews its lease; when it lapses, another controller takes the work over.
CREATE TABLE leases (
    name     TEXT COLLATE "C" PRIMARY KEY,
    holder   TEXT   NOT NULL,
    until_ms BIGINT NOT NULL
);
