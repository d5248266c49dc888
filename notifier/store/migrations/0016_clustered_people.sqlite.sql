-- Subscribers and their contacts stored in their primary key's order (WITHOUT ROWID). Every claim reads each
-- delivery's contact and subscriber by key: in a rowid table that is a search of the key's index and then a second
-- one of the table, each on a page of its own; clustered, one search finds the row. Measured on SQLite, 300,000 SMS
-- subscribers, store alone, 100 claims of 1,000, alternating runs: claim + read 13.6-14.0 -> 9.9-10.0 us CPU a
-- number (raw SQL, the read alone: 5.0-7.3 -> 2.7 us); the publish unchanged or faster (2.44-2.92 -> 2.26-2.52 s).
-- Their rows are small (a tenth of a page), as clustering wants. SQLite only: PostgreSQL has no rowid tables.
-- A table others refer to is rebuilt the way SQLite documents: with foreign keys off for the upgrade, every
-- reference checked before its commit (`Backend.schema_change`), so the old table's drop deletes nothing else.
CREATE TABLE subscribers_clustered (
    id TEXT PRIMARY KEY,
    region TEXT NOT NULL REFERENCES regions (code),
    locale TEXT NOT NULL,
    quiet_start INTEGER,
    quiet_end INTEGER,
    status TEXT NOT NULL,
    consent_source TEXT,
    consent_at DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    role TEXT NOT NULL DEFAULT 'subscriber'
) WITHOUT ROWID;
INSERT INTO subscribers_clustered (id, region, locale, quiet_start, quiet_end, status, consent_source, consent_at,
                                   created_at, updated_at, role)
    SELECT id, region, locale, quiet_start, quiet_end, status, consent_source, consent_at, created_at, updated_at, role
    FROM subscribers;
DROP TABLE subscribers;
ALTER TABLE subscribers_clustered RENAME TO subscribers;
CREATE INDEX subscribers_region ON subscribers (region);
CREATE INDEX subscribers_pending ON subscribers (created_at) WHERE status = 'pending';
CREATE INDEX subscribers_targeting ON subscribers (id, status, region);

CREATE TABLE contacts_clustered (
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    secret TEXT,
    verified_at DOUBLE PRECISION,
    disabled_at DOUBLE PRECISION,
    disabled_reason TEXT,
    PRIMARY KEY (subscriber_id, channel)
) WITHOUT ROWID;
INSERT INTO contacts_clustered (subscriber_id, channel, address, secret, verified_at, disabled_at, disabled_reason)
    SELECT subscriber_id, channel, address, secret, verified_at, disabled_at, disabled_reason FROM contacts;
DROP TABLE contacts;
ALTER TABLE contacts_clustered RENAME TO contacts;
CREATE INDEX contacts_address ON contacts (channel, address);
CREATE INDEX contacts_usable ON contacts (subscriber_id, channel, verified_at, disabled_at);
