-- A process event's pid, parent pid and start time (clock ticks since boot), taken from its
-- body when it is stored, so a process tree is found by index: a process by (agent, pid), its
-- children by (agent, ppid). NULL for other events, and for events stored before this
-- migration (their trees show only what later events tell).
ALTER TABLE events ADD COLUMN pid INTEGER;
ALTER TABLE events ADD COLUMN ppid INTEGER;
ALTER TABLE events ADD COLUMN start_ticks INTEGER;
CREATE INDEX events_by_pid ON events(agent_id, pid) WHERE pid IS NOT NULL;
CREATE INDEX events_by_ppid ON events(agent_id, ppid) WHERE ppid IS NOT NULL;
