-- Every record of accepted sends asks whether reports came before it (`receipts.apply_early_receipts`): reports
-- kept as unknown, looked up by the batch's provider ids. The index began with the channel, which that question
-- does not name, so each record read every unknown report kept — all those never matched stay for
-- `early_receipts_days` (a week by default: verification codes' reports, another system's on a shared account).
-- Measured on SQLite, 300,000 Tencent numbers, store alone, with 50,000 such reports kept: the check 5.1 ms a
-- record of 600 (more than its two UPDATEs together), the writer's record 11.4 ms; led by the provider id, the check
-- 0.44 ms (one search a batch id), the record 7.6 ms. The lookup of one delivery's early reports names both.
DROP INDEX receipts_early;
CREATE INDEX receipts_early ON receipts (provider_message_id, channel) WHERE outcome = 'unknown';
