-- Edge policies: per agent and policy id, the digest last compiled and its version (grows by
-- one whenever the digest changes).
CREATE TABLE edge_versions (
    agent_id  TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    digest    TEXT NOT NULL,
    version   BIGINT NOT NULL,
    PRIMARY KEY (agent_id, policy_id)
);
