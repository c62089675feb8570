-- GET /v1/activity: each filter the README lists, within the team, newest first.
--
-- The query is `team_id = $1 AND <column> = $2 [AND seq < cursor] ORDER BY seq DESC LIMIT n`.
-- With the filter's column between team_id and seq, the newest matching entries are the last ones
-- of one index range: the database reads `n` of them, however long the log and however rare the
-- value (a value that matches nothing costs one lookup), and the ORDER BY needs no sort.
CREATE INDEX audit_log_team_subject_type ON audit_log (team_id, subject_type, seq);
CREATE INDEX audit_log_team_subject_id ON audit_log (team_id, subject_id, seq);
CREATE INDEX audit_log_team_causer ON audit_log (team_id, causer_id, seq);
CREATE INDEX audit_log_team_token ON audit_log (team_id, token_id, seq);
CREATE INDEX audit_log_team_actor_kind ON audit_log (team_id, actor_kind, seq);
CREATE INDEX audit_log_team_event ON audit_log (team_id, event, seq);
CREATE INDEX audit_log_team_outcome ON audit_log (team_id, outcome, seq);
-- A token scoped to one project sees only entries about it (`project_id IN ($2)`). With several
-- projects the planners walk audit_log_team instead (an IN list cannot keep seq order).
CREATE INDEX audit_log_team_project ON audit_log (team_id, project_id, seq);

-- No filter, the cursor, and `since`/`until`. The time filters get no index of their own: the
-- query is ordered by seq, so an index on created_at would make the planner sort every entry in
-- the range (SQLite chooses that plan, and for `since` two weeks back it sorts two weeks). Walking
-- seq from the newest entry instead reaches `since` matches at once; `until` and a window in the
-- past are reached after the entries newer than them, which created_at here lets the walk skip
-- inside the index, without reading their rows (5x faster at 5M entries; see BENCHMARKS.md).
DROP INDEX audit_log_team;
CREATE INDEX audit_log_team ON audit_log (team_id, seq, created_at);
