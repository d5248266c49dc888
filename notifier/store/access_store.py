"""The Store's operations for getting in (issue 10): verification limits held across every way a code or link is
asked for, the code that opens a manage page without a link, the dashboard's sign-in throttle and its sessions.
A part of `Store` (its base class), kept in a module of its own so that `sql_store.py` stays one screenful per
domain; each method is one transaction, or one read on the reader, over `store/verification.py` and
`store/sessions.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

from notifier.store import sessions, verification
from notifier.store.db import Backend, Row
from notifier.store.verification import Limit

Tripped = tuple[str, float]  # (the scope of the limit that has no room, seconds until it has)


class AccessMethods:
    backend: Backend

    async def take_limits(self, limits: Sequence[Limit], now: float) -> Tripped | None:
        """Count every limit's events, or none of them when one has no room (which, and for how long)."""
        async with self.backend.transaction() as db:
            return await verification.take_limits(db, limits, now)

    async def open_manage_code(self, limits: Sequence[Limit], channel: str, address: str, code_channel: str,
                               secret_hash: str, expires_at: float, now: float) -> Tripped | str | None:
        """Take the limits, then find the active subscriber whose verified `channel` contact is `address` and,
        when `secret_hash` is given, open its `code_channel` verification — all in one transaction, so a known
        and an unknown contact cost the same round trips. Tripped, the subscriber id, or None (no such contact)."""
        async with self.backend.transaction() as db:
            tripped = await verification.take_limits(db, limits, now)
            if tripped is not None:
                return tripped
            found = await verification.subscriber_by_contact(db, channel, address)
            if found is not None and secret_hash:
                await verification.put_verification(db, found, code_channel, secret_hash, expires_at, now)
            return found

    async def check_manage_code(self, channel: str, address: str, code_channel: str, secret_hash: str, now: float,
                                max_attempts: int) -> tuple[str, str | None]:
        """(outcome, subscriber id) of a code typed for a contact; MISSING when nobody has that contact."""
        async with self.backend.transaction() as db:
            found = await verification.subscriber_by_contact(db, channel, address)
            if found is None:
                return verification.MISSING, None
            outcome, _ = await verification.check_code(db, found, code_channel, secret_hash, now, max_attempts,
                                                       verifies=False)
            return outcome, found

    # ---- the dashboard's sign-in throttle (events in rate_events) and sessions (migration 0010)

    async def rate_events(self, scope: str, key_hash: str, since: float) -> list[float]:
        return await verification.recent_events(self.backend.reader, scope, key_hash, since)

    async def add_rate_event(self, scope: str, key_hash: str, now: float) -> None:
        async with self.backend.transaction() as db:
            await verification.add_event(db, scope, key_hash, now)

    async def create_admin_session(self, id_hash: str, key_hash: str, key_id: str, role: str, now: float, *,
                                   created_after: float, seen_after: float, most: int) -> None:
        async with self.backend.transaction() as db:
            await sessions.create(db, id_hash, key_hash, key_id, role, now, created_after=created_after,
                                  seen_after=seen_after, most=most)

    async def admin_session(self, id_hash: str, now: float, *, created_after: float, seen_after: float,
                            seen_before: float) -> Row | None:
        """A live session's (key_hash, key_id, role, created_at, seen_at): read on the reader; written only to
        end it when expired, or to move a `seen_at` older than `seen_before` to now."""
        row = await sessions.get(self.backend.reader, id_hash)
        if row is None:
            return None
        if float(row[3]) <= created_after or float(row[4]) <= seen_after:
            await self.drop_admin_session(id_hash)
            return None
        if float(row[4]) < seen_before:
            async with self.backend.transaction() as db:
                await sessions.seen(db, id_hash, now)
        return row

    async def drop_admin_session(self, id_hash: str) -> None:
        async with self.backend.transaction() as db:
            await sessions.drop(db, id_hash)

    async def drop_admin_sessions_of(self, key_hash: str) -> None:
        async with self.backend.transaction() as db:
            await sessions.drop_key(db, key_hash)
