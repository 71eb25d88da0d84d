-- Fewer index entries per stored event (store/pg/events.rs).

-- "Is (agent, seq) stored" is event_keys' primary key; an agent's events are found through
-- it too (store/pg/events.rs, query_events), so the events partitions need no key index of
-- their own.
DROP INDEX events_by_key;

-- Only retention reads the keys by time (a day's keys go with its partition), and keys go in
-- roughly in time order: a block-range index answers that at a fraction of a b-tree's cost
-- per insert.
DROP INDEX event_keys_by_time;
CREATE INDEX event_keys_by_time ON event_keys USING brin (time_ms);
