-- Fewer index writes per delivery (issue 11): `deliveries_alert (alert_id, status)` took an entry at every insert
-- and a delete and an insert at every status change (claim, record, receipt). Every query that named it also has
-- the alert first in the unique (alert_id, subscriber_id, channel) index, and the ones that run often read every
-- row of the alert either way. Measured on SQLite, 300,000 SMS, store alone: the writer's time a number, delivery
-- rows, claims and records, 37.0 -> 31.8 us (claim 7.0 -> 4.5, record 17.9 -> 15.4). What reads it cost, same
-- database: the alert list's figures 233 -> 237 ms, coverage 1.35 s either way, the failures' summary 0 -> 76 ms
-- and a deliveries page filtered by a rare status 0.1 -> 137 ms (they read the alert's rows); on PostgreSQL
-- (1,300,000 rows, two listed alerts of 310,000) the list's figures 105-160 -> 225-235 ms. The expiry sweep and a
-- cancel find the alert's rows by the unique index on both (plans checked; only the alerts that expire, once).
DROP INDEX deliveries_alert;
