-- Edge policies (issue #17): for each agent and policy id, the digest of what was last
-- compiled for it and its version, which grows by one whenever that digest changes. Agents
-- refuse a version older than the one they hold.
CREATE TABLE edge_versions (
    agent_id TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (agent_id, policy_id)
) WITHOUT ROWID;
