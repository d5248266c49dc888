-- The notification of queued deliveries (migration 0022) names an alert of theirs: `<priority>:<alert id>`, the
-- alert of a row of the highest priority queued (a fan-out's statement queues one alert's rows). A worker told of
-- a life-safety alert starts reading what it needs of it (its row, topic, assisted people: `Store.alert_to_send`)
-- while it claims the rows, instead of after the claim: on a worker busy with a large fan-out that read took
-- 1-16 ms of a red warning's way (median 3 ms; PostgreSQL, 100,000 webhooks, seventeen probes). Finding the row is
-- a step into the statement's new rows, which all have the highest priority when a publish queued them. A worker
-- of an earlier version still running beside upgraded ones reads a payload it does not know (its listener
-- logs the error) and finds the rows at its poll (`[worker] poll_interval`) until it is restarted.
CREATE OR REPLACE FUNCTION deliveries_queued() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    highest integer := (SELECT max(priority) FROM added);
BEGIN
    IF highest IS NOT NULL THEN  -- a statement that queued nothing tells nobody
        PERFORM pg_notify(queued_channel(), highest::text || ':'
                          || (SELECT alert_id FROM added WHERE priority = highest LIMIT 1));  -- sent at commit
    END IF;
    RETURN NULL;
END $$;
