-- Lifecycle (SPEC "Lifecycle"): a cancelled alert names its one cancel notice, so that repeated or concurrent
-- cancels return the same notice and a send in flight at the cancel that reaches someone adds them to it.
-- Updates and cancels find their referenced alert, and the public column its follow-ups, by an index.

ALTER TABLE alerts ADD COLUMN cancel_notice_id TEXT;
CREATE INDEX alerts_references ON alerts (references_id);
