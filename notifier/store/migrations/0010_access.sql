-- Getting in (issue 10): admin dashboard sessions kept in the store, so that a restart signs nobody out and every
-- web process on the database agrees. The browser holds a random session id; the table holds only its SHA-256, so
-- a copy of the table signs nobody in. Sign-out deletes the row; expiry (idle and absolute) is decided on reading
-- and expired rows are deleted when a session is created. (The sign-in throttle and the verification limits count
-- their events in `rate_events`, migration 0004.)
CREATE TABLE admin_sessions (
    id_hash TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL,
    key_id TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    seen_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX admin_sessions_key ON admin_sessions (key_hash);
CREATE INDEX admin_sessions_created ON admin_sessions (created_at);
