-- A push of delivery reports, kept as it came until applied (0027; `store/receipts.py`): its reports as JSON arrays,
-- the numbers they name among them — only until then: applying the push deletes it, erasure takes the person's
-- numbers out of the pushes still waiting. `id` orders the pushes as they came: the time in microseconds, then three
-- random digits (`receipts.push_id`). Text compares bytewise, as every text column (0023).
CREATE TABLE report_pushes (
    id BIGINT PRIMARY KEY,
    channel TEXT COLLATE "C" NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    reports TEXT COLLATE "C" NOT NULL
);
