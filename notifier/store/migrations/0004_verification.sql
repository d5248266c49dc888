-- Self-service sign-up (/subscribe): consent records, contact verification and anti-abuse limits.
-- A sign-up is a `pending` subscriber whose contacts have verified_at NULL until a code, a link or a WeChat follow
-- proves them; pending subscribers that never verify are deleted after a day, and these rows with them (CASCADE).

-- The purge of stale sign-ups reads only pending subscribers (a few), not the whole table.
CREATE INDEX subscribers_pending ON subscribers (created_at) WHERE status = 'pending';

-- Which consent text (version) a subscriber agreed to, when; subscribers.consent_at/consent_source say how.
CREATE TABLE consents (
    subscriber_id TEXT PRIMARY KEY REFERENCES subscribers (id) ON DELETE CASCADE,
    version TEXT NOT NULL,
    given_at DOUBLE PRECISION NOT NULL
);

-- One open verification per subscriber × channel: an SMS code (HMAC-SHA256 with the server secret, never the
-- code), or the SHA-256 of a WeChat scene reference. Deleted when used; `attempts` counts wrong codes.
CREATE TABLE verifications (
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (subscriber_id, channel)
);
CREATE INDEX verifications_secret ON verifications (channel, secret_hash);

-- Anti-abuse limits that hold across workers: one row per counted event (a code sent to a number, a sign-up from
-- an address). `key_hash` is an HMAC of the number or IP address with the server secret, never the value itself.
CREATE TABLE rate_events (
    scope TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL
);
CREATE INDEX rate_events_key ON rate_events (scope, key_hash, at);
CREATE INDEX rate_events_at ON rate_events (at);
