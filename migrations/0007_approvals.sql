-- Approvals (issue 20). Same dialect as 0001: TEXT and BIGINT only (times are Unix ms, lists and
-- maps are JSON text), so SQLite and PostgreSQL read it alike through sqlx's Any driver.

-- A team's approval policy. No row: the defaults of a new team (domain::approval). `rules` is a
-- JSON object operation → `mcp` | `rest` | `both` (an operation absent is `none`); `approver` is
-- `owner-or-admin` or `not-the-caller`. `version` grows by one at every change; an approval
-- request is bound to the version it was made under, so a change voids what is pending.
CREATE TABLE team_approval_policies (
    team_id TEXT PRIMARY KEY REFERENCES teams (id),
    rules TEXT NOT NULL,
    approver TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- The person who changed it last, or NULL for the operator (CLI).
    updated_by TEXT
);

-- Per-token budgets: at most `max_calls` calls of `operation` in any rolling 24 h; a call beyond
-- it needs approval instead of failing.
CREATE TABLE token_budgets (
    token_id TEXT NOT NULL REFERENCES tokens (id),
    operation TEXT NOT NULL,
    max_calls BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- The person who set it, or NULL for the operator (CLI).
    updated_by TEXT,
    PRIMARY KEY (token_id, operation)
);

-- One row per budgeted call that ran, counted over the last 24 h; shared by every replica.
CREATE TABLE token_budget_uses (
    token_id TEXT NOT NULL REFERENCES tokens (id),
    operation TEXT NOT NULL,
    used_at BIGINT NOT NULL,
    request_id TEXT
);
CREATE INDEX token_budget_uses_window ON token_budget_uses (token_id, operation, used_at);

-- A call held for a person's approval. It runs once, when the same caller repeats the same
-- call (same `digest`: token, operation, canonical arguments, policy version) before
-- `expires_at`, after a grant. Status: pending | granted | denied | expired | used | voided.
CREATE TABLE approval_requests (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL REFERENCES teams (id),
    -- The project the call acts in, where it names one (for the approval page).
    project_id TEXT,
    -- The caller: the token, its owner, its OAuth grant and client, the MCP client's name.
    token_id TEXT NOT NULL REFERENCES tokens (id),
    owner_id TEXT NOT NULL REFERENCES users (id),
    oauth_grant_id TEXT,
    oauth_client_id TEXT,
    client_name TEXT,
    -- `mcp` or `rest`: where the call was made.
    surface TEXT NOT NULL,
    operation TEXT NOT NULL,
    -- Canonical JSON of every argument (keys sorted, defaults filled).
    arguments TEXT NOT NULL,
    -- SHA-256 hex of {token, operation, canonical arguments, policy version}.
    digest TEXT NOT NULL,
    policy_version BIGINT NOT NULL,
    -- Why it was held: `policy` or `budget`.
    hold TEXT NOT NULL,
    -- The approver rule in force when it was requested.
    approver_rule TEXT NOT NULL,
    status TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decided_at BIGINT,
    decided_by TEXT REFERENCES users (id),
    used_at BIGINT,
    -- The request ID of the call that consumed it.
    used_request_id TEXT,
    -- Why it was voided: token_revoked, role_lowered, member_removed.
    voided_reason TEXT
);
CREATE INDEX approval_requests_team ON approval_requests (team_id, status, requested_at);
CREATE INDEX approval_requests_token ON approval_requests (token_id, status);
CREATE INDEX approval_requests_digest ON approval_requests (digest);
