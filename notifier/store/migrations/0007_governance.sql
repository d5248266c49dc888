-- Governance (SPEC "Departments and approval", "Audit"): keys belong to a department, idempotency keys are scoped
-- per department, alerts may wait for a second key's approval, and every act is one entry of a hash-chained log.

-- A publisher key speaks for one department (admin and viewer keys: NULL).
ALTER TABLE api_keys ADD COLUMN department TEXT;

-- Idempotency keys per department: one bureau can no longer block another's publish by claiming its key first.
-- The old column carries a UNIQUE constraint that SQLite cannot drop without rebuilding `alerts` (which the
-- tables referencing it forbid inside a migration's transaction), so it is renamed, emptied (NULLs never clash)
-- and left unused; the keys move to a new column under a unique index on (department, idempotency_key).
ALTER TABLE alerts RENAME COLUMN idempotency_key TO idempotency_key_unscoped;
ALTER TABLE alerts ADD COLUMN idempotency_key TEXT;
UPDATE alerts SET idempotency_key = idempotency_key_unscoped, idempotency_key_unscoped = NULL;
CREATE UNIQUE INDEX alerts_idempotency ON alerts (department, idempotency_key);
CREATE INDEX alerts_department ON alerts (department, created_at, id);

-- Two-person release. `approval` is NULL for an alert no rule held, else pending | approved | rejected | withdrawn
-- (cancelled while pending): only NULL and approved alerts ever went out (the public column reads no other).
-- Who decided, when, and why (a rejection's reason; `timeout` when nobody decided in time).
ALTER TABLE alerts ADD COLUMN approval TEXT;
ALTER TABLE alerts ADD COLUMN decided_by TEXT;
ALTER TABLE alerts ADD COLUMN decided_at DOUBLE PRECISION;
ALTER TABLE alerts ADD COLUMN decision_reason TEXT;
CREATE INDEX alerts_pending ON alerts (created_at) WHERE status = 'pending_approval';

-- The audit chain (notifier/audit.py). `at` and `details` are TEXT exactly as the entry was built (canonical
-- JSON): a timestamp or JSON type would re-format them and break every hash.
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    department TEXT,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_log_at ON audit_log (at);
