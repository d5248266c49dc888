-- A publish to many people (`[database] deliveries_after_answer_from` targets or more) answers once its target set
-- is frozen; its delivery rows are added right after, a slice of its targets a transaction
-- (`store/fan_out_later.py`): by the publishing process, or — when that one stopped first — by any worker's sweep.
-- A row: an alert whose delivery rows are still to be added, with what adding them needs, the last target whose
-- rows were added (`done_through`, by id) and when. PostgreSQL, 100,000 people: the rows took 0.65–0.73 s of a
-- 0.93–1.07 s answer (thirty-fifth round).
CREATE TABLE fan_outs_to_finish (
    alert_id TEXT PRIMARY KEY REFERENCES alerts (id),
    topic TEXT NOT NULL,
    policy TEXT NOT NULL,
    priority INTEGER NOT NULL,
    first_attempt_at DOUBLE PRECISION NOT NULL,
    published_at DOUBLE PRECISION NOT NULL,
    done_through TEXT,
    advanced_at DOUBLE PRECISION NOT NULL
);
