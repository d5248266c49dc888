"""The live display of `notifier publish --wait`: its fallbacks bar counts the deliveries activated beyond each
person's first channel — including while a large publish's rows are still being added, when the people still
without theirs have no first delivery yet."""

from __future__ import annotations

from notifier.models import ChannelCoverage, Coverage, TimeToReach
from notifier.progress import fallbacks


def _coverage(targeted: int, used_sms: int, used_email: int, unreachable: dict[str, int]) -> Coverage:
    def channel(used: int) -> ChannelCoverage:
        return ChannelCoverage(attempted=used, sent=used, delivered=0, failed=0, pending=0, awaiting_receipt=used,
                               skipped=0, reach_rate=0.0)

    return Coverage(alert_id="a", targeted=targeted, reached=0, accepted=0, coverage_rate=0.0, accepted_rate=0.0,
                    by_channel={"sms": channel(used_sms), "email": channel(used_email)}, by_region={}, by_group={},
                    cells=[], time_to_reach=TimeToReach(p50=None, p90=None, p99=None), unreachable=unreachable)


def test_one_fallback_among_the_people_whose_rows_are_added_is_counted_while_the_rest_are_still_to_come() -> None:
    """Ten targeted, four with their rows: four first SMS, one email after a failed SMS; six still to come."""
    coverage = _coverage(10, used_sms=4, used_email=1, unreachable={"pending": 10})
    assert fallbacks(coverage, to_come=6) == 1


def test_once_every_row_is_added_the_people_without_a_usable_contact_have_no_first_delivery() -> None:
    """Ten targeted, two without a usable contact: eight first SMS, three emails after failed SMS."""
    coverage = _coverage(10, used_sms=8, used_email=3, unreachable={"no_contact": 2, "pending": 8})
    assert fallbacks(coverage) == 3
