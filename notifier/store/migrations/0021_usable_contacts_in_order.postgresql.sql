-- A whole city's fan-out reads every usable contact (verified, not disabled) of its people (issue 11, PostgreSQL).
-- Under the population plan (`db.planned_for`) it hash-joined them from a scan of the table and then sorted the
-- joined rows by person to rank each person's channels. Read from this index instead, the contacts come in the
-- people's order without their table pages (an index-only scan once VACUUM has marked the pages visible,
-- `Backend.after_bulk_load`), so the targets, their subscription channels (`subscription_channels_ranked`) and
-- their contacts are merged in that order and ranked with no sort. Measured, 100,000 webhook subscribers, the
-- delivery rows' INSERT in a transaction rolled back (three alternated runs each): 985-1,040 ms by hash joins,
-- 972-1,021 ms merged without this index (the contacts sorted), 879-910 ms merged with it (its SELECT 400 ->
-- 260 ms). It costs an index entry a usable contact. SQLite has its own (`contacts_usable`, migration 0015).
CREATE INDEX contacts_usable_by_person ON contacts (subscriber_id, channel) WHERE verified_at IS NOT NULL AND disabled_at IS NULL;
