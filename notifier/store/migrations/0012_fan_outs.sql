-- A large alert's delivery rows are created in chunks after its publish (issue 11): the publishing transaction
-- freezes the target set and creates the rows of the first chunk; the rest is this durable job, which any worker
-- continues a chunk per transaction, moving `after` (the last target, by id, whose rows exist) with the rows it
-- creates. A crash resumes from `after`; the row is deleted with the last chunk. It also carries what the rows
-- are created with, as it was at publish.
CREATE TABLE fan_outs (
    alert_id TEXT PRIMARY KEY REFERENCES alerts (id),
    after TEXT NOT NULL,
    topic TEXT NOT NULL,
    policy TEXT NOT NULL,
    priority INTEGER NOT NULL,
    first_attempt_at DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX fan_outs_next ON fan_outs (priority, created_at);
