-- notifier schema, version 1. One source for both back-ends (SQLite ≥ 3.38 and PostgreSQL ≥ 13): times are unix
-- seconds (DOUBLE PRECISION: SQLite gives it REAL affinity), ids are text, lists are JSON text. No contact ever
-- leaves `contacts`.

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE regions (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_en TEXT
);

CREATE TABLE population_groups (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_en TEXT
);

CREATE TABLE domains (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_en TEXT
);

CREATE TABLE topics (
    key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_en TEXT,
    domain TEXT NOT NULL,
    department TEXT NOT NULL,
    channels TEXT NOT NULL,
    schedule TEXT,
    method TEXT,
    supervision TEXT,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    topics TEXT NOT NULL,
    label TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION
);

CREATE TABLE subscribers (
    id TEXT PRIMARY KEY,
    region TEXT NOT NULL REFERENCES regions (code),
    locale TEXT NOT NULL,
    quiet_start INTEGER,
    quiet_end INTEGER,
    status TEXT NOT NULL,
    consent_source TEXT,
    consent_at DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX subscribers_region ON subscribers (region);

CREATE TABLE subscriber_groups (
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    group_code TEXT NOT NULL REFERENCES population_groups (code),
    PRIMARY KEY (subscriber_id, group_code)
);
CREATE INDEX subscriber_groups_group ON subscriber_groups (group_code, subscriber_id);

CREATE TABLE contacts (
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    secret TEXT,
    verified_at DOUBLE PRECISION,
    disabled_at DOUBLE PRECISION,
    disabled_reason TEXT,
    PRIMARY KEY (subscriber_id, channel)
);
CREATE INDEX contacts_address ON contacts (channel, address);

CREATE TABLE subscriptions (
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    topic TEXT NOT NULL REFERENCES topics (key),
    min_severity INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (subscriber_id, topic)
);
CREATE INDEX subscriptions_topic ON subscriptions (topic, subscriber_id);

CREATE TABLE subscription_channels (
    subscriber_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    channel TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (subscriber_id, topic, channel),
    FOREIGN KEY (subscriber_id, topic) REFERENCES subscriptions (subscriber_id, topic) ON DELETE CASCADE
);

CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    topic TEXT NOT NULL REFERENCES topics (key),
    msg_type TEXT NOT NULL,
    references_id TEXT REFERENCES alerts (id),
    headline TEXT NOT NULL,
    body TEXT NOT NULL,
    instruction TEXT NOT NULL,
    severity TEXT NOT NULL,
    urgency TEXT NOT NULL,
    level TEXT,
    target_regions TEXT NOT NULL,
    target_groups TEXT NOT NULL,
    policy TEXT NOT NULL,
    fallback_after INTEGER NOT NULL,
    data TEXT NOT NULL,
    expires_at DOUBLE PRECISION,
    scheduled_at DOUBLE PRECISION,
    idempotency_key TEXT UNIQUE,
    request_hash TEXT NOT NULL,
    public INTEGER NOT NULL,
    status TEXT NOT NULL,
    targeted INTEGER NOT NULL DEFAULT 0,
    publisher TEXT,
    department TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    cancelled_at DOUBLE PRECISION
);
CREATE INDEX alerts_created ON alerts (created_at, id);
CREATE INDEX alerts_expiry ON alerts (status, expires_at);

-- The frozen target set: the denominator of coverage. Region and groups are copied so that coverage of past
-- alerts is unchanged when a subscriber moves or is deleted.
CREATE TABLE alert_targets (
    alert_id TEXT NOT NULL REFERENCES alerts (id),
    subscriber_id TEXT NOT NULL,
    region TEXT NOT NULL,
    accepted_at DOUBLE PRECISION,
    reached_at DOUBLE PRECISION,
    PRIMARY KEY (alert_id, subscriber_id)
);

CREATE TABLE alert_target_groups (
    alert_id TEXT NOT NULL,
    subscriber_id TEXT NOT NULL,
    group_code TEXT NOT NULL,
    PRIMARY KEY (alert_id, subscriber_id, group_code)
);

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL REFERENCES alerts (id),
    subscriber_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    position INTEGER NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    lease_owner TEXT,
    lease_until DOUBLE PRECISION,
    provider_message_id TEXT,
    last_error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    sent_at DOUBLE PRECISION,
    delivered_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    UNIQUE (alert_id, subscriber_id, channel)
);
CREATE INDEX deliveries_due ON deliveries (priority DESC, next_attempt_at) WHERE status IN ('queued', 'deferred');
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE status = 'sending';
CREATE INDEX deliveries_alert ON deliveries (alert_id, status);
CREATE INDEX deliveries_provider ON deliveries (channel, provider_message_id);
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id);
