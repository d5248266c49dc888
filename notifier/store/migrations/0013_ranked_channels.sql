-- Publishing faster (issue 11): a fan-out ranks each target's channels by the subscriber's preference
-- (`ROW_NUMBER() OVER (PARTITION BY subscriber ORDER BY position)`). With the position after the channel in the
-- index walked, every target's channels were sorted again; with it before, they come in order. Measured on SQLite,
-- 300,000 SMS subscribers: the delivery rows' INSERT ... SELECT 2.27 -> 2.12 s, the whole publish 3.22 -> 3.07 s.
-- Lookups by (subscriber, topic, channel) keep the primary key.
DROP INDEX subscription_channels_ranked;
CREATE INDEX subscription_channels_ranked ON subscription_channels (subscriber_id, topic, position, channel);
