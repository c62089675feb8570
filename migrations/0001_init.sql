-- One schema for SQLite and PostgreSQL: only TEXT and BIGINT columns, so the sqlx Any driver
-- reads both the same way. Ids are UUID v7 text (token ids: 12 base62); times are Unix ms.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE teams (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE team_members (
    team_id TEXT NOT NULL REFERENCES teams (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);

CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL REFERENCES teams (id),
    name TEXT NOT NULL,
    handle TEXT NOT NULL UNIQUE,
    description TEXT,
    active BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX projects_team ON projects (team_id);

CREATE TABLE project_resources (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL REFERENCES teams (id),
    project_id TEXT NOT NULL REFERENCES projects (id),
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    telegram_chat_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX project_resources_project ON project_resources (project_id);

CREATE TABLE plans (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL REFERENCES teams (id),
    project_id TEXT NOT NULL REFERENCES projects (id),
    name TEXT NOT NULL,
    price_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    billing_interval TEXT NOT NULL,
    active BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE members (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL REFERENCES teams (id),
    project_id TEXT NOT NULL REFERENCES projects (id),
    telegram_user_id TEXT NOT NULL,
    username TEXT,
    display_name TEXT NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX members_project ON members (project_id, status);

CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL REFERENCES teams (id),
    project_id TEXT NOT NULL REFERENCES projects (id),
    member_id TEXT NOT NULL REFERENCES members (id),
    plan_id TEXT NOT NULL REFERENCES plans (id),
    status TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    current_period_end BIGINT,
    canceled_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX subscriptions_member ON subscriptions (member_id);

CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL REFERENCES teams (id),
    project_id TEXT NOT NULL REFERENCES projects (id),
    member_id TEXT NOT NULL REFERENCES members (id),
    subscription_id TEXT REFERENCES subscriptions (id),
    amount_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX payments_project ON payments (project_id, created_at);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL REFERENCES teams (id),
    project_id TEXT,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    result TEXT,
    error TEXT,
    attempts BIGINT NOT NULL,
    locked_until BIGINT,
    created_by_user_id TEXT NOT NULL REFERENCES users (id),
    created_by_token_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_status ON jobs (status, created_at);

CREATE TABLE access_codes (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL REFERENCES teams (id),
    project_id TEXT NOT NULL REFERENCES projects (id),
    plan_id TEXT NOT NULL REFERENCES plans (id),
    job_id TEXT REFERENCES jobs (id),
    code_digest TEXT NOT NULL UNIQUE,
    code_masked TEXT NOT NULL,
    status TEXT NOT NULL,
    expires_at BIGINT,
    redeemed_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX access_codes_plan ON access_codes (plan_id, status);

-- The clear codes of a batch, kept only until a person downloads them once from the dashboard.
-- No REST or MCP operation reads this table.
CREATE TABLE access_code_downloads (
    job_id TEXT PRIMARY KEY REFERENCES jobs (id),
    codes TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    digest TEXT NOT NULL,
    team_id TEXT NOT NULL REFERENCES teams (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    abilities TEXT NOT NULL,
    project_ids TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    last_used_ip TEXT,
    revoked_at BIGINT,
    revoked_reason TEXT,
    replaced_by TEXT
);
CREATE INDEX tokens_owner ON tokens (team_id, user_id);

CREATE TABLE idempotency_keys (
    token_id TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (token_id, idem_key)
);

CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    team_id TEXT,
    project_id TEXT,
    actor_kind TEXT NOT NULL,
    causer_type TEXT,
    causer_id TEXT,
    token_id TEXT,
    event TEXT NOT NULL,
    subject_type TEXT,
    subject_id TEXT,
    properties TEXT NOT NULL,
    outcome TEXT NOT NULL,
    error_code TEXT,
    request_id TEXT,
    ip TEXT,
    user_agent TEXT,
    client TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_team ON audit_log (team_id, seq);

-- The tip of the hash chain. Every append updates this one row first, which serialises appends
-- across processes (a row lock on PostgreSQL, the write lock on SQLite).
CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
