"""Another process on the same database: `python -m tests.publish_elsewhere DATABASE_URL` opens the store, prints
READY, waits for a line on stdin, prints PUBLISHING, publishes a routine disclosure (env.heavy-pollution, minor,
future) to everyone subscribed, and prints DONE and its id (tests/store/test_give_way.py)."""

from __future__ import annotations

import asyncio
import sys

from notifier.config import load_settings
from notifier.database import open_database
from notifier.models import AlertIn
from notifier.publish import publish_alert

ROUTINE = AlertIn(topic="env.heavy-pollution", headline="明日空气质量预报", severity="minor", urgency="future")


async def main(database_url: str) -> None:
    store = await open_database(load_settings(None, {}, {"database": {"url": database_url}}))
    try:
        print("READY", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        print("PUBLISHING", flush=True)
        alert, _ = await publish_alert(store, ROUTINE, None)
        print("DONE", alert.id, flush=True)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
