-- A token's usage (issue 21, item 2): its calls per UTC day, counted as the entries its own calls
-- leave are chained, in the same transaction (one upsert per token per batch of entries), so a
-- chart never reads the audit log. `day` is the UTC day number (days since 1970-01-01). Writes
-- are counted among the successes. Rows older than 40 days are pruned by the maintenance pass.
-- No foreign key: nothing a caller put in an entry may make the batch's statement fail.
-- Counting starts with this migration (the log before it is not replayed).
CREATE TABLE token_usage_daily (
    token_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    team_id TEXT NOT NULL,
    successes BIGINT NOT NULL DEFAULT 0,
    refusals BIGINT NOT NULL DEFAULT 0,
    writes BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (token_id, day)
);
-- The maintenance pass's prune (`day < cutoff`).
CREATE INDEX token_usage_daily_day ON token_usage_daily (day);
