-- Provider receipts (SMS delivery reports, WeChat TEMPLATESENDJOBFINISH), kept to drop repeats and to audit.
-- No contact is stored: a report is matched to its delivery and the number it named is forgotten.

CREATE TABLE receipts (
    channel TEXT NOT NULL,
    receipt_key TEXT NOT NULL,
    provider_message_id TEXT NOT NULL,
    delivered INTEGER NOT NULL,
    error TEXT,
    delivery_id TEXT,
    -- For reports that name a number (Aliyun's BizId covers a whole batch): a digest of id and number, so that a
    -- report arriving before its send was recorded can still find its delivery, without keeping the number.
    match_key TEXT,
    outcome TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (channel, receipt_key)
);
CREATE INDEX receipts_delivery ON receipts (delivery_id);
CREATE INDEX receipts_early ON receipts (channel, provider_message_id) WHERE outcome = 'unknown';
