-- A team's token policy (issue 21). Same dialect as 0001: TEXT and BIGINT only. No row: no policy
-- (every knob off). `max_lifetime_ms` / `expire_unused_ms`: NULL is off; `require_expiry` 0 or 1;
-- `role_abilities`: NULL or a JSON object role → [ability]; `unused_since`: when the unused rule
-- was last turned on or changed (no token expires by it sooner than 7 days after);
-- `mcp_pasted_tokens`: `allow` or `deny`.
CREATE TABLE team_token_policies (
    team_id TEXT PRIMARY KEY REFERENCES teams (id),
    max_lifetime_ms BIGINT,
    require_expiry BIGINT NOT NULL,
    role_abilities TEXT,
    expire_unused_ms BIGINT,
    unused_since BIGINT,
    mcp_pasted_tokens TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- The person who changed it last, or NULL for the operator (CLI).
    updated_by TEXT
);
