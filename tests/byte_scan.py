"""The byte scan: where in a service's SQLite files (database, WAL, shared memory) a contact still sits, in any
of the ways it could be written. Deletion must leave it nowhere."""

from __future__ import annotations

from pathlib import Path

from notifier.service import Service


def contact_forms(value: str) -> list[bytes]:
    """UTF-8 and UTF-16 (LE, BE) of each way a contact may be written (E.164, 86…, national, 3-4-4 spaced)."""
    texts = {value}
    if value.startswith("+86"):
        national = value.removeprefix("+86")
        texts |= {national, value.removeprefix("+"), f"{national[:3]} {national[3:7]} {national[7:]}"}
    return [t.encode(codec) for t in texts for codec in ("utf-8", "utf-16-le", "utf-16-be")]


def database_files(service: Service) -> list[Path]:
    database = Path(service.settings.database.url.removeprefix("sqlite:///"))
    return [p for p in (database, Path(f"{database}-wal"), Path(f"{database}-shm")) if p.exists()]


def traces(service: Service, *values: str) -> list[str]:
    """Where in the SQLite files (database, WAL, shared memory) any form of `values` is found."""
    hits = []
    for path in database_files(service):
        data = path.read_bytes()
        hits += [f"{path.name}: {form!r}" for value in values for form in contact_forms(value) if form in data]
    return hits
