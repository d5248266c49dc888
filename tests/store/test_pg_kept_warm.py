"""PostgreSQL: a store that sits quiet keeps its connections open, two of them — one for a red warning while a
routine publish holds the other. The pool closes a connection idle past its limit (five minutes) only while it holds
more; a new connection is a new server process, with every table, trigger and statement to look up again — a small
red warning's publish took 3-4 ms to connect and 11-15 ms more on one, against 4.4-5.7 ms on a connection that had
published before. Red warnings come after quiet hours."""

from __future__ import annotations

import asyncio

from notifier.store.pg_db import POOL_MIN, PgBackend

IDLE_LIMIT, QUIET = 0.3, 1.0  # the pool's limit, shortened; a quiet spell of three limits


async def test_after_a_quiet_spell_the_same_server_process_answers(pg_schema_url: str) -> None:
    backend = PgBackend(pg_schema_url, idle_lifetime=IDLE_LIMIT)
    await backend.open()
    try:
        before = await backend.reader.fetchval("SELECT pg_backend_pid()")
        await asyncio.sleep(QUIET)
        assert await backend.reader.fetchval("SELECT pg_backend_pid()") == before
    finally:
        await backend.close()


async def test_a_bursts_extra_connections_are_closed_when_it_is_over(pg_schema_url: str) -> None:
    """Four reads at once open four connections; a quiet spell later two are left, and they answer."""
    backend = PgBackend(pg_schema_url, idle_lifetime=IDLE_LIMIT)
    await backend.open()
    try:
        await asyncio.gather(*(backend.reader.fetchval("SELECT pg_sleep(0.05)") for _ in range(4)))
        assert backend.pool.get_size() == 4
        await asyncio.sleep(QUIET)
        assert backend.pool.get_size() == POOL_MIN == 2
        assert await asyncio.gather(*(backend.reader.fetchval("SELECT 1") for _ in range(POOL_MIN))) == [1, 1]
    finally:
        await backend.close()
