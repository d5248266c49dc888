"""What a delivery's outcome marks on its person's row of the alert (`alert_targets`): accepted — at the first
acceptance of any of the person's deliveries — and reached, at the first delivery confirmed. Coverage counts these
marks, so the rule is written once, for the record of sends (`queue`) and for the delivery reports (`receipts`)."""

from __future__ import annotations


def marking(source: str, at: str, once: bool, *, reached: bool) -> str:
    """The UPDATE of the targets of the deliveries' rows `d` that `source` gives, each with its time `at`: accepted
    — and reached, when `reached` — at the first of those times. A person reached on two channels in one batch is
    one row of `x`, at the earlier time: an UPDATE … FROM takes one of several matching rows, any one (a coverage's
    time to reach came out a channel's answer too late). `once`: `source` holds each person at most once, so the
    rows need no grouping (which would be a sort of every batch on the single writer for nothing)."""
    reached_sql = "reached_at = COALESCE(reached_at, x.at)," if reached else ""
    picked = (f"{at} AS at FROM {source}" if once
              else f"MIN({at}) AS at FROM {source} GROUP BY d.alert_id, d.subscriber_id")
    return (f"UPDATE alert_targets SET {reached_sql} accepted_at = COALESCE(accepted_at, x.at) FROM (SELECT "
            f"d.alert_id, d.subscriber_id, {picked}) AS x "
            "WHERE alert_targets.alert_id = x.alert_id AND alert_targets.subscriber_id = x.subscriber_id")
