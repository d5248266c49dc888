-- Delivery reports are kept as they come and applied after (`notifier/report_applier.py`): on SQLite when the
-- single writer has no send to claim or record, so that a million SMS's million reports wait for the fan-out
-- instead of doubling its writes (issue 11). A push waits whole, one row (`report_pushes`: 0028 and 0029, one a
-- back-end); its reports are written here when applied, each with its own time, which a report kept as unknown
-- (its send not recorded yet) is later applied at.
ALTER TABLE receipts ADD COLUMN occurred_at DOUBLE PRECISION;
