-- The chain's time. `created_at` never decreases along the chain: each append stamps its entries
-- no earlier than the head's time (a replica whose clock is behind, or a clock stepped back, gets
-- the head's), and `audit verify` checks it. Entries written before this migration were stamped
-- under the chain's lock by the clock of the process holding it, so they are in order already.
ALTER TABLE audit_head ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
UPDATE audit_head SET created_at = COALESCE((SELECT MAX(created_at) FROM audit_log), 0) WHERE id = 1;

-- `since` and `until` of GET /v1/activity become bounds on seq: the first entry at or after a
-- time is the first of this index at or after it.
CREATE INDEX audit_log_created ON audit_log (created_at, seq);
