-- Fan-outs whose delivery rows are still to be added (0032, SQLite's; `store/fan_out_later.py`); text compares
-- bytewise, as every text column (0023).
CREATE TABLE fan_outs_to_finish (
    alert_id TEXT COLLATE "C" PRIMARY KEY REFERENCES alerts (id),
    topic TEXT COLLATE "C" NOT NULL,
    policy TEXT COLLATE "C" NOT NULL,
    priority INTEGER NOT NULL,
    first_attempt_at DOUBLE PRECISION NOT NULL,
    published_at DOUBLE PRECISION NOT NULL,
    done_through TEXT COLLATE "C",
    advanced_at DOUBLE PRECISION NOT NULL
);
