-- Delivery reports are stored when they come and applied after (`notifier/report_applier.py`): on SQLite when the
-- single writer has no send to claim or record, so that a million SMS's million reports wait for the fan-out
-- instead of doubling its writes (issue 11). A report waiting is `pending` and keeps what its apply needs: its own
-- time, its place in its push (reports of one push apply as if one after the other), and the number it names —
-- only while it waits: applying it sets the number to NULL, erasure deletes the waiting reports naming the person's
-- numbers (`selfservice.forget`). The number's column: 0028 and 0029, one a back-end.
ALTER TABLE receipts ADD COLUMN occurred_at DOUBLE PRECISION;
ALTER TABLE receipts ADD COLUMN arrival INTEGER NOT NULL DEFAULT 0;
CREATE INDEX receipts_pending ON receipts (received_at, arrival) WHERE outcome = 'pending';
