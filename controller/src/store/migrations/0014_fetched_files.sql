-- File fetch (issue #15): the chunks of a fetched file as the agent sent them, stored once by
-- (command, index) however often they are sent again, and the files whose chunks were whole
-- and matched the agent's SHA-256 (id = the fetch command's id).
CREATE TABLE file_chunks (
    command_id TEXT NOT NULL REFERENCES commands(id),
    chunk_index INTEGER NOT NULL,
    agent_id TEXT NOT NULL,
    byte_offset INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (command_id, chunk_index)
) WITHOUT ROWID;

CREATE TABLE fetched_files (
    id TEXT PRIMARY KEY REFERENCES commands(id),
    agent_id TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    mode INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    gid INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    fetched_at INTEGER NOT NULL
);
CREATE INDEX fetched_files_by_agent ON fetched_files (agent_id, fetched_at);
