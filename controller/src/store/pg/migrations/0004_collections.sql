-- The rows of collections (issue #15): one per row an agent's collection returned (a JSON
-- object), stored once by (command, row number) however often its chunk is sent again.
CREATE TABLE collection_rows (
    command_id TEXT NOT NULL REFERENCES commands(id),
    row_no BIGINT NOT NULL,
    agent_id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (command_id, row_no)
);
