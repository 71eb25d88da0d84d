-- Containment: what the controller wants (isolation) and what the agent last reported.
ALTER TABLE agents ADD COLUMN isolation_desired INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN containment BLOB;
