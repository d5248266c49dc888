-- CAP 1.2 interchange and catalogue deadlines (SPEC "CAP 1.2", "Catalogue deadlines"; docs/governance.md).

-- Every alert's CAP identity, fixed when it is stored: our `[cap] sender` with the alert's GB/T 35965.1
-- identifier (or its id), or for an imported alert the sender, identifier and sent time it came with — so that a
-- later CAP Update or Cancel naming it finds it by the one index. Alerts stored before this migration get theirs
-- in the first write transaction after it (store/cap.py).
ALTER TABLE alerts ADD COLUMN cap_sender TEXT;
ALTER TABLE alerts ADD COLUMN cap_identifier TEXT;
ALTER TABLE alerts ADD COLUMN cap_sent DOUBLE PRECISION;
-- What an imported alert keeps of its document to say it back (CapOrigin as JSON text); NULL for our own.
ALTER TABLE alerts ADD COLUMN cap_origin TEXT;
-- The English words of a CAP `info` block in en, for English subscribers (NULL: they read zh-CN).
ALTER TABLE alerts ADD COLUMN headline_en TEXT;
ALTER TABLE alerts ADD COLUMN body_en TEXT;
ALTER TABLE alerts ADD COLUMN instruction_en TEXT;
CREATE UNIQUE INDEX alerts_cap_identity ON alerts (cap_sender, cap_identifier);
-- Compliance looks up the release times of one topic's alerts within a window.
CREATE INDEX alerts_topic_created ON alerts (topic, created_at);

-- A topic's schedule as data (`notifier.schedule.Schedule`); `schedule` keeps free text (event-driven schedules,
-- shown as written) and is NULL for a structured one. `schedule_set_at`: when the schedule was last set, from
-- which compliance is owed unless the schedule names `since`.
ALTER TABLE topics ADD COLUMN schedule_every TEXT;
ALTER TABLE topics ADD COLUMN schedule_by_day INTEGER;
ALTER TABLE topics ADD COLUMN schedule_by_weekday INTEGER;
ALTER TABLE topics ADD COLUMN schedule_by_time TEXT;
ALTER TABLE topics ADD COLUMN schedule_since TEXT;
ALTER TABLE topics ADD COLUMN schedule_set_at DOUBLE PRECISION;
UPDATE topics SET schedule_set_at = created_at;

-- One overdue notice per scheduled topic and period, sent once to its department across every worker: a worker
-- claims the row (claim_owner, claimed_until), sends, and marks it sent; a claim that lapses is taken again.
CREATE TABLE compliance_notices (
    topic TEXT NOT NULL,
    period TEXT NOT NULL,
    department TEXT NOT NULL,
    due_at DOUBLE PRECISION NOT NULL,
    claim_owner TEXT,
    claimed_until DOUBLE PRECISION,
    attempts INTEGER NOT NULL DEFAULT 0,
    sent_at DOUBLE PRECISION,
    last_error TEXT,
    PRIMARY KEY (topic, period)
);
