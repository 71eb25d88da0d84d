-- The events search (`Events::query_events`: by time, agent, kind and text, the newest first)
-- reads everything it filters on from this index, in time order, and visits the table only
-- for the rows it returns: a search for a rare text over a day of a million events reads the
-- index (about a fifth of the table's size) instead of seeking every row. It keeps the old
-- index's name and order, (time_ms, agent_id, seq), which retention's deletes walk.
DROP INDEX events_by_time;
CREATE INDEX events_by_time ON events(time_ms, agent_id, seq, kind, summary);
