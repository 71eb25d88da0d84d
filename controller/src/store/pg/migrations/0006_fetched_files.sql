-- File fetch (issue #15): the chunks of a fetched file as the agent sent them, stored once by
-- (command, index) however often they are sent again, and the files whose chunks were whole
-- and matched the agent's SHA-256 (id = the fetch command's id).
CREATE TABLE file_chunks (
    command_id TEXT NOT NULL REFERENCES commands(id),
    chunk_index BIGINT NOT NULL,
    agent_id TEXT NOT NULL,
    byte_offset BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (command_id, chunk_index)
);

CREATE TABLE fetched_files (
    id TEXT PRIMARY KEY REFERENCES commands(id),
    agent_id TEXT NOT NULL,
    path TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    mode BIGINT NOT NULL,
    uid BIGINT NOT NULL,
    gid BIGINT NOT NULL,
    mtime BIGINT NOT NULL,
    fetched_at BIGINT NOT NULL
);
CREATE INDEX fetched_files_by_agent ON fetched_files (agent_id, fetched_at);
