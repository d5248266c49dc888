-- No index of deliveries leads with the person any more (issue 11). A fan-out writes its rows in person order, so
-- `deliveries_subscriber (subscriber_id)` took a new entry on every page of itself at every publish: its cost grew
-- with every delivery ever kept, and there is no retention of deliveries. Measured on SQLite, 300,000 SMS people,
-- store alone: a publish 3.15 s on a fresh database, 5.37 s with six earlier alerts' 1.8 million rows, 2.8 s flat
-- without the index. On PostgreSQL each claim and each record of a delivery (neither a HOT update) also added an
-- entry to it. The few reads that start from a person (erasure, what is held, cancelling a deleted subscriber's
-- deliveries, a proxy's reply) find their rows alert by alert through the (alert_id, subscriber_id, channel) key
-- instead (`states.persons_deliveries`): one search an alert. On a large SQLite database the upgrade frees the
-- index's pages once (zeroed: secure_delete): measured 0.95 s for 95 MB (2.1 million rows), ~10 s a gigabyte.
DROP INDEX deliveries_subscriber;
