-- OAuth 2.1 for /mcp (issue 19). Same dialect as 0001: TEXT and BIGINT only (times are Unix ms,
-- lists are JSON text), so SQLite and PostgreSQL read it alike through sqlx's Any driver.
-- Secrets (codes, refresh tokens, consent handles) are stored only as SHA-256 hex digests.

-- Every client a grant can name: registered at POST /register (`registered`), by the operator
-- (`preregistered`), or a client ID metadata document fetched from its URL (`metadata_document`,
-- id = that URL; the row is the shared cache of the document, valid until `expires_at`).
CREATE TABLE oauth_clients (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    client_name TEXT,
    -- JSON array, each URI exactly as registered (matched exactly by /authorize).
    redirect_uris TEXT NOT NULL,
    -- JSON: the rest of what was accepted (grant_types, response_types, client_uri, …).
    metadata TEXT NOT NULL,
    registered_ip TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX oauth_clients_kind ON oauth_clients (kind, created_at);

-- One grant is one connected app: a person's consent for one client and redirect URI, in one
-- team, with the abilities and projects they ticked. Re-authorising the same client and
-- redirect revokes the previous grant; revoking a grant kills its access and refresh tokens.
CREATE TABLE oauth_grants (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oauth_clients (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    team_id TEXT NOT NULL REFERENCES teams (id),
    -- As tokens.abilities and tokens.project_ids.
    abilities TEXT NOT NULL,
    project_ids TEXT,
    redirect_uri TEXT NOT NULL,
    resource TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    use_count BIGINT NOT NULL DEFAULT 0,
    revoked_at BIGINT,
    revoked_reason TEXT,
    -- The person who revoked it, or NULL for the system (reuse detected, client removed).
    revoked_by TEXT
);
CREATE INDEX oauth_grants_owner ON oauth_grants (team_id, user_id);
CREATE INDEX oauth_grants_client ON oauth_grants (client_id, user_id);

-- An access token is an ordinary row of `tokens` (an mpt_ token with expires_at); this names its
-- grant. NULL for a token minted in the dashboard or the CLI.
ALTER TABLE tokens ADD COLUMN oauth_grant_id TEXT REFERENCES oauth_grants (id);
CREATE INDEX tokens_oauth_grant ON tokens (oauth_grant_id);

-- An authorization request waiting for the person's answer: everything the consent form is
-- bound to, kept server-side; the form carries only a random handle (stored as its digest).
CREATE TABLE oauth_authorization_requests (
    handle_digest TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oauth_clients (id),
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    state TEXT,
    resource TEXT NOT NULL,
    scope TEXT,
    -- The person the form was shown to; only they may answer it.
    user_id TEXT REFERENCES users (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    answered_at BIGINT
);
CREATE INDEX oauth_authorization_requests_expiry ON oauth_authorization_requests (expires_at);

-- An authorization code: single use, short-lived, bound to its client, redirect, PKCE challenge
-- and resource. When used, the tokens it gave are recorded, so a second use revokes them.
CREATE TABLE oauth_codes (
    code_digest TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES oauth_grants (id),
    client_id TEXT NOT NULL REFERENCES oauth_clients (id),
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    resource TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    access_token_id TEXT REFERENCES tokens (id),
    refresh_token_id TEXT
);
CREATE INDEX oauth_codes_expiry ON oauth_codes (expires_at);

-- Refresh tokens (mprt_<env>_<id>_<secret><check>), by public ID, digest only. Each use issues
-- a successor and a new access token; the used one stays accepted until `grace_until`
-- (--oauth-refresh-grace after its successor was issued). A use after that is reuse: the whole
-- grant is revoked.
CREATE TABLE oauth_refresh_tokens (
    id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    digest TEXT NOT NULL,
    grant_id TEXT NOT NULL REFERENCES oauth_grants (id),
    -- The refresh token this one replaced (NULL for the first, from a code).
    previous_id TEXT,
    -- The access token issued together with this refresh token.
    access_token_id TEXT REFERENCES tokens (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    replaced_by TEXT,
    replaced_at BIGINT,
    grace_until BIGINT,
    revoked_at BIGINT,
    revoked_reason TEXT
);
CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);
