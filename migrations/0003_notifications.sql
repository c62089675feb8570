-- Things a person must be told when they next sign in: for now, that a token of theirs was
-- found leaked and revoked. Shown on the dashboard until dismissed.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    team_id TEXT NOT NULL REFERENCES teams (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    token_id TEXT NOT NULL REFERENCES tokens (id),
    kind TEXT NOT NULL,
    properties TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    dismissed_at BIGINT
);
CREATE INDEX notifications_user ON notifications (user_id, team_id);
