-- Warnings before a token breaks (issue 21): one row per warning given, so each is given once
-- across restarts and replicas (`expiring_7d`, `expiring_1d`, `expired`).
CREATE TABLE token_warnings (
    token_id TEXT NOT NULL REFERENCES tokens (id),
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (token_id, kind)
);
