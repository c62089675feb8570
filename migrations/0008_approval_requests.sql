-- Approvals (issue 20): when a request that can no longer run (denied, used, expired, voided,
-- made under an older policy) was last answered to its caller as APPROVAL_INVALID. Such a
-- request is answered once; the same call made again after that is a new request.
ALTER TABLE approval_requests ADD COLUMN reported_at BIGINT;

-- What the call would change, as a run of its body inside the held call's transaction (rolled
-- back) recorded it when it was held: the `changes` its audit entry would have carried.
ALTER TABLE approval_requests ADD COLUMN preview TEXT;
