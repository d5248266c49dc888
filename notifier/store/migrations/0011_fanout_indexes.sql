-- Publishing faster (issue 11): a fan-out reads every matching subscriber's subscription, status, region and
-- channels once and writes a delivery row each. Read through indexes that do not hold every column it needs, each
-- person cost a visit to a random page of the table behind (the rows are in import order, the reads in id order);
-- with the columns in the index, the reads walk its pages in order. Measured on SQLite, 300,000 people: the
-- targets' SELECT 2.0 -> 0.5 s, the delivery rows' 3.0 -> 1.9 s.
DROP INDEX subscriptions_topic;
CREATE INDEX subscriptions_topic ON subscriptions (topic, subscriber_id, min_severity);
CREATE INDEX subscribers_targeting ON subscribers (id, status, region);
CREATE INDEX subscription_channels_ranked ON subscription_channels (subscriber_id, topic, channel, position);
-- A new delivery has no provider id yet: indexed only once it has one (the receipts' lookups always name it), the
-- fan-out writes one index entry a row fewer.
DROP INDEX deliveries_provider;
CREATE INDEX deliveries_provider ON deliveries (channel, provider_message_id) WHERE provider_message_id IS NOT NULL;
