-- Token buckets shared by every worker process: a provider account's rate holds however many workers send.
CREATE TABLE rate_buckets (
    name TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    updated_at REAL NOT NULL
);
