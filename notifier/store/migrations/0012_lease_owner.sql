-- A lease's rows found by their owner (issue 11): recording a batch locks the rows its lease still covers, and a
-- heartbeat extends them, both by `lease_owner`. The index of rows being sent holds the owner beside the expiry, so
-- that both read only the index entries of rows in flight (a few thousand at most), whichever database plans them;
-- a claim still finds its rows by both, the lease sweep by the expiry alone.
DROP INDEX deliveries_leased;
CREATE INDEX deliveries_leased ON deliveries (lease_until, lease_owner) WHERE status = 'sending';
