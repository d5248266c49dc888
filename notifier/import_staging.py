"""The staging area of a bulk import: rows that passed validation wait here until the whole file has been read,
and every personal contact seen so far is indexed here to find a person listed twice.

It is a private temporary SQLite database (`sqlite3.connect("")`): SQLite keeps it in a small page cache and
spills to a file that is deleted when the connection closes, so a file of any size is validated in bounded memory
and nothing touches the service's database until the import is decided. The staged rows hold contacts: the file
lives only as long as the import and is never named or shared.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field

_SCHEMA = (
    "CREATE TABLE staged (row INTEGER PRIMARY KEY, data TEXT NOT NULL)",
    "CREATE TABLE seen (channel TEXT NOT NULL, address TEXT NOT NULL, row INTEGER NOT NULL, "
    "PRIMARY KEY (channel, address)) WITHOUT ROWID",
)


@dataclass(frozen=True, slots=True)
class StagedRow:
    """A validated row, as the store will receive it (status, consent and times are the import's)."""

    row: int
    id: str
    region: str
    locale: str
    quiet_start: int | None
    quiet_end: int | None
    groups: list[str]
    contacts: dict[str, str]
    subscriptions: list[tuple[str, list[str], int]]
    secrets: dict[str, str]
    generated_secret: bool  # the webhook secret was made here: the report shows it once
    role: str = "subscriber"
    assists: list[tuple[str, str, list[str]]] = field(default_factory=list)  # a proxy's people: label, region, groups

    def dump(self) -> str:
        return json.dumps([self.id, self.region, self.locale, self.quiet_start, self.quiet_end, self.groups,
                           self.contacts, self.subscriptions, self.secrets, self.generated_secret, self.role,
                           self.assists])

    @classmethod
    def load(cls, row: int, text: str) -> StagedRow:
        (id_, region, locale, quiet_start, quiet_end, groups, contacts, subs, secrets,
         generated, role, assists) = json.loads(text)
        return cls(row=row, id=id_, region=region, locale=locale, quiet_start=quiet_start, quiet_end=quiet_end,
                   groups=groups, contacts=contacts, subscriptions=[(t, ch, r) for t, ch, r in subs],
                   secrets=secrets, generated_secret=generated, role=role,
                   assists=[(label, place, kinds) for label, place, kinds in assists])


class Staging:
    """Accepted rows and the contacts they hold, for one import."""

    def __init__(self) -> None:
        # "": a private temporary database, deleted on close. Read on SQLite's writer thread while the import is
        # stored (one thread at a time: the event loop waits for that transaction).
        self._db = sqlite3.connect("", check_same_thread=False)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-8192"):  # 8 MiB of cache at most
            self._db.execute(f"PRAGMA {pragma}")
        for statement in _SCHEMA:
            self._db.execute(statement)

    def holder(self, channel: str, address: str) -> int | None:
        """The row that already holds this contact, if any."""
        found = self._db.execute("SELECT row FROM seen WHERE channel = ? AND address = ?",
                                 (channel, address)).fetchone()
        return None if found is None else int(found[0])

    def add(self, staged: StagedRow, dedupe: tuple[str, ...]) -> None:
        self._db.execute("INSERT INTO staged VALUES (?, ?)", (staged.row, staged.dump()))
        self._db.executemany("INSERT INTO seen VALUES (?, ?, ?)",
                             [(kind, staged.contacts[kind], staged.row) for kind in dedupe
                              if kind in staged.contacts])

    def batches(self, size: int) -> Iterator[list[StagedRow]]:
        """Every staged row in file order, `size` at a time."""
        after = 0
        while rows := self._db.execute("SELECT row, data FROM staged WHERE row > ? ORDER BY row LIMIT ?",
                                       (after, size)).fetchall():
            yield [StagedRow.load(row, data) for row, data in rows]
            after = rows[-1][0]

    def close(self) -> None:
        self._db.close()
