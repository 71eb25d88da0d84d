-- A one-line text form of each event, for `cordonctl events query --contains`.
ALTER TABLE events ADD COLUMN summary TEXT NOT NULL DEFAULT '';
CREATE INDEX events_by_time ON events(time_ms);
