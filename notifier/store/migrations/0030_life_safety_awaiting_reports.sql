-- A life-safety alert's delivery reports go before a routine fan-out's sends (`report_applier.py`): what they
-- settle — its coverage, a failure's next channel, a call to make again — is worth more than a routine fan-out's
-- speed. Whether a recent one still awaits reports is asked at every push of reports stored
-- (`receipts.life_safety_awaits_reports`): each live alert released lately looked up here, one step, instead of
-- every row of the alert read for one still `sent` (`deliveries_alert` is gone: migration 0014). Only life-safety
-- rows awaiting their report are in it (2: `Priority.LIFE_SAFETY`), so a routine fan-out writes nothing to it.
CREATE INDEX deliveries_awaiting_life_safety ON deliveries (alert_id) WHERE status = 'sent' AND priority >= 2;
