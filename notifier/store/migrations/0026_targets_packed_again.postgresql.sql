-- Migration 0025 left room on the targets' pages for their marks (fillfactor 45): the marks became heap-only
-- updates and the server's CPU a delivery fell 3-20 % (pairs, 100,000 webhooks). It is undone here, because it
-- changed how a small red warning's fan-out is planned. `alert_targets` is never analysed by the store, so the
-- planner guesses a new alert's targets from the table's size in pages; twice the pages for the same rows made the
-- guess for a one-person warning large enough that its delivery rows were found by reading every subscription's
-- channels (a sequential scan, 4.7 ms at 100,000) instead of from its one target (0.02 ms): the warning's publish
-- 3.8-4.2 -> 9.2-10.0 ms on an idle machine, its delivery statement 0.38 -> 4.8 ms (median of a dozen) during a
-- fan-out. A red warning's way comes first; the marks' room waits for small fan-outs planned from their real count.
ALTER TABLE alert_targets RESET (fillfactor);
