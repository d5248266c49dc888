"""A publishing process that stops right after its answer: `python -m tests.publish_then_stop DATABASE_URL
[EXPIRES_IN]` publishes a disclosure (env.heavy-pollution) to everyone subscribed — a publish large enough to answer
before its delivery rows exist (`[database] deliveries_after_answer_from` = 1) —, prints PUBLISHED and its id,
and ends the process at once (`os._exit`), before it could add the rows (tests/test_fan_out_later.py). With
EXPIRES_IN, the disclosure expires that many seconds from now."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta

from notifier.config import load_settings
from notifier.database import open_database
from notifier.models import AlertIn
from notifier.publish import publish_alert


async def main(database_url: str, expires_in: float | None) -> None:
    settings = load_settings(None, {}, {"database": {"url": database_url, "deliveries_after_answer_from": 1}})
    store = await open_database(settings, upgrade=False)
    expires = None if expires_in is None else datetime.now(UTC) + timedelta(seconds=expires_in)
    alert, _ = await publish_alert(store, AlertIn(topic="env.heavy-pollution", headline="重污染天气橙色预警",
                                                  expires_at=expires), None)
    print("PUBLISHED", alert.id, flush=True)
    os._exit(0)  # no await after the answer: the rows were not added


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else None))
