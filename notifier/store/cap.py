"""Every alert's CAP identity (SPEC "CAP 1.2"; migration 0008): the sender, identifier and sent time it is known by
in CAP, fixed in the transaction that stores it, and found again when a CAP Update or Cancel names it.

- Our own alerts (and the cancel notices the lifecycle creates) are stored without one; `assign` gives every such
  row ours before the transaction commits: `[cap] sender`, and the GB/T 35965.1 identifier of its entry second
  with the first serial 0-9 not yet taken in that second (the eleventh alert of one second takes the next
  second's), or without `[cap] sender_code` the alert's id. Taking a serial is serialised per second and unit
  (`lock_key`; SQLite's one writer already is), so concurrent publishers never draw the same one.
- An imported alert keeps the identity of its document, stored as it came (`cap_sender`, `cap_identifier`,
  `cap_sent`): `check_free` refuses a second alert under an identity another alert already has (409).
- Alerts stored before the migration get theirs the first time the store is opened after it (`Store.upgrade`).
"""

from __future__ import annotations

from typing import NamedTuple

from notifier.cap.ids import CapIdentity
from notifier.errors import ConflictError, FieldError
from notifier.store.db import Db, as_list, lock_key
from notifier.store.records import AlertRow

_UNNAMED = "SELECT id, created_at FROM alerts WHERE cap_sender IS NULL ORDER BY created_at, id"
_NAME = "UPDATE alerts SET cap_sender = ?, cap_identifier = ?, cap_sent = ? WHERE id = ? AND cap_sender IS NULL"


class Named(NamedTuple):
    """The CAP identity `assign` gave an alert."""

    cap_sender: str
    cap_identifier: str
    cap_sent: float


async def assign(db: Db, identity: CapIdentity) -> dict[str, Named]:
    """Give every alert without a CAP identity ours; returns the identities given, by alert id."""
    if identity.sender_code is None:  # the id is the identifier: nothing to draw, nothing to look for first
        return {r["id"]: Named(identity.sender, r["cap_identifier"], float(r["cap_sent"])) for r in await db.fetch(
            "UPDATE alerts SET cap_sender = ?, cap_identifier = id, cap_sent = created_at WHERE cap_sender IS NULL "
            "RETURNING id, cap_identifier, cap_sent", identity.sender)}
    named: dict[str, Named] = {}
    for row in await db.fetch(_UNNAMED):  # a probe of the index: almost always nothing
        identifier = await _free_identifier(db, identity, row["id"], int(row["created_at"]))
        if await db.execute(_NAME, identity.sender, identifier, row["created_at"], row["id"]):
            named[row["id"]] = Named(identity.sender, identifier, float(row["created_at"]))
    return named


async def _free_identifier(db: Db, identity: CapIdentity, alert_id: str, second: int) -> str:
    while True:
        names = identity.candidates(alert_id, second)
        await lock_key(db, f"cap:{identity.sender}:{names[0]}")
        taken = {r[0] for r in await db.fetch(
            f"SELECT cap_identifier FROM alerts WHERE cap_sender = ? AND cap_identifier IN {db.dialect.each()}",
            identity.sender, as_list(names))}
        free = [name for name in names if name not in taken]
        if free:
            return free[0]
        second += 1


async def by_identity(db: Db, sender: str, identifier: str) -> str | None:
    """Our id of the alert CAP knows as (sender, identifier), or None."""
    found = await db.fetchval("SELECT id FROM alerts WHERE cap_sender = ? AND cap_identifier = ?", sender, identifier)
    return None if found is None else str(found)


async def check_free(db: Db, alert: AlertRow) -> None:
    """An imported alert's identity must not name another alert already (the same document again is the same
    alert, found by its idempotency key within its department). Another department's alert is not named: its id
    is not this publisher's to know."""
    if alert.cap_sender is None or alert.cap_identifier is None:
        return
    held = await db.fetchrow("SELECT id, idempotency_key, department FROM alerts WHERE cap_sender = ? "
                             "AND cap_identifier = ?", alert.cap_sender, alert.cap_identifier)
    if held is None:
        return
    message = f"CAP message {alert.cap_sender},{alert.cap_identifier} is already "
    if held["department"] != alert.department:
        message += "another department's alert"
    elif held["idempotency_key"] != alert.idempotency_key:
        message += f"alert {held['id']}"
    else:
        return
    raise ConflictError(message, [FieldError("alert.identifier", message)])
