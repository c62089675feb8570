-- Per-token network allowlist (issue 21): a JSON array of CIDR blocks (IPv4 and IPv6) the token
-- may be used from; NULL: from anywhere. Checked after authentication, on every call.
ALTER TABLE tokens ADD COLUMN allowed_ips TEXT;
