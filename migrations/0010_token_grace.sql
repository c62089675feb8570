-- Rotation with a grace period (issue 21): the superseded token keeps working until
-- `grace_until` (ms), its replacement named in `replaced_by`; NULL: no grace (a rotation without
-- one revokes the old token at once). Every use inside the grace is audited `superseded: true`.
ALTER TABLE tokens ADD COLUMN grace_until BIGINT;
