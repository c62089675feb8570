-- Dashboard sessions: the cookie holds a random secret; only its SHA-256 is stored.
CREATE TABLE sessions (
    id_digest TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    team_id TEXT NOT NULL REFERENCES teams (id),
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);
