-- The silent fallback (issue 11): a subscriber's next channel, waiting `skipped`, is tried when the accepted one
-- stays unconfirmed past the alert's `fallback_after`. The sweep found those by reading every accepted delivery of
-- every live fallback alert, every second: ~210 ms a sweep at 300,000 deliveries (SQLite, measured), most of the
-- single writer for as long as such an alert lives. Now a `skipped` row's next_attempt_at is when to look at it —
-- NEVER from the fan-out, its predecessor's sent_at + fallback_after once that is accepted (`fallback.
-- schedule_silent`) — and the sweep reads the rows whose time has come from this index. Rows from before it keep
-- their first-attempt time: the sweep looks at each once, a bounded batch a sweep, and sets the time that applies.
CREATE INDEX deliveries_silent ON deliveries (next_attempt_at) WHERE status = 'skipped';
