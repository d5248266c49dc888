-- Population denominators (PUT /v1/population): residents on the city's record per region × group, so that
-- coverage can be read against the people an alert was meant for, not only against its subscribers.
--
-- `group_code = ''` is the region's total over all groups (every resident of the region, whether or not in a
-- group). It is the empty string, not NULL, because a primary key column cannot be NULL in PostgreSQL and NULLs
-- never collide in a SQLite unique index: '' keeps one total per region in both. The API shows it as group null.
-- The whole table is replaced by each upload (one transaction), so `updated_at` is the same on every row.

CREATE TABLE population (
    region TEXT NOT NULL REFERENCES regions (code),
    group_code TEXT NOT NULL DEFAULT '',
    residents INTEGER NOT NULL CHECK (residents >= 0),
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (region, group_code)
);
