-- Reach without a smartphone (SPEC "Reach without a smartphone"): redialled calls and assisted reach.

-- A call result that asks for another call (not answered, busy, switched off). Kept so that a report arriving
-- before its send was recorded still redials when the send is.
ALTER TABLE receipts ADD COLUMN retry INTEGER NOT NULL DEFAULT 0;

-- 'subscriber', or 'proxy': a community grid worker (网格员) or caregiver who tells people with no contact.
ALTER TABLE subscribers ADD COLUMN role TEXT NOT NULL DEFAULT 'subscriber';

-- The people a proxy assists: no contact of their own, no name beyond the proxy's label (personal data: shown
-- masked in admin views, deleted with the proxy). Their id stands where a subscriber's does in alert_targets and
-- deliveries (one `proxy` delivery per alert), so they are counted like anyone targeted. `seq` numbers a
-- proxy's people once and for all (never reused): an SMS reply of that number confirms the person told.
CREATE TABLE assisted (
    id TEXT PRIMARY KEY,
    proxy_id TEXT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    label TEXT NOT NULL,
    region TEXT NOT NULL REFERENCES regions (code),
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (proxy_id, seq)
);
CREATE INDEX assisted_region ON assisted (region);

CREATE TABLE assisted_groups (
    assisted_id TEXT NOT NULL REFERENCES assisted (id) ON DELETE CASCADE,
    group_code TEXT NOT NULL REFERENCES population_groups (code),
    PRIMARY KEY (assisted_id, group_code)
);
CREATE INDEX assisted_groups_group ON assisted_groups (group_code, assisted_id);

-- 1: a proxy's message listing whom to tell, to a proxy that is not a target of the alert itself. Queued,
-- retried and fallen back like any delivery, but no target's: coverage counts it nowhere.
ALTER TABLE deliveries ADD COLUMN relay INTEGER NOT NULL DEFAULT 0;
