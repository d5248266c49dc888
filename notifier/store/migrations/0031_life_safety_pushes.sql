-- A push of delivery reports that holds one of a life-safety delivery awaiting it (`receipts.store_reports`): the
-- applier takes such pushes before the others, while a routine fan-out's sends keep the rest waiting
-- (`report_applier.py`). Applied in the order they came, a red warning's report waited behind a routine fan-out's
-- whole backlog of reports: 2–8 s to its next channel during 300,000 SMS (benchmark, thirty-third round). The index
-- holds the few such pushes alone.
ALTER TABLE report_pushes ADD COLUMN life_safety INTEGER NOT NULL DEFAULT 0;
CREATE INDEX report_pushes_life_safety ON report_pushes (id) WHERE life_safety = 1;
