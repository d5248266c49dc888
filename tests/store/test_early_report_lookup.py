"""Every record of accepted sends asks whether reports for its provider ids came first. Reports that never match
(a verification code's, another system's on a shared account) are kept for a week: the question must be answered
by a search a provider id, not by reading every report kept (SQLite's plan; migration 0017)."""

from __future__ import annotations

import time

from channels.base import Receipt
from notifier.service import Service
from notifier.store.db import SQLITE, as_list
from notifier.store.receipts import reported_early


async def test_the_early_report_check_searches_by_provider_id(service: Service) -> None:
    plan = [row[3] for row in await service.store.backend.reader.fetch(
        f"EXPLAIN QUERY PLAN {reported_early(SQLITE)}", as_list(["2433:1", "2433:2"]))]
    assert any(step.startswith("SEARCH receipts USING INDEX receipts_early (provider_message_id=?")
               for step in plan), plan
    assert not any(step.startswith("SCAN receipts") for step in plan), plan


async def test_a_kept_unmatched_report_is_found_by_its_provider_id_alone(service: Service) -> None:
    """The check names no channel: a report kept for any channel is found by its id, and no other id is."""
    await service.store.apply_receipts("sms", [Receipt("2433:7", False, "2433:7:FAIL", error="UNDELIV")],
                                       time.time())
    found = await service.store.backend.reader.fetch(reported_early(SQLITE), as_list(["2433:7", "2433:8"]))
    assert [row[0] for row in found] == ["2433:7"]
