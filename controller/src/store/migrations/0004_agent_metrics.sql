-- The agent's self-metrics from its last heartbeat.
ALTER TABLE agents ADD COLUMN metrics BLOB;
