"""The configured database opened (a failure said in one line) and the configured catalogue read and put in it,
for the service and for the commands: apart from `notifier.service` so that the commands that only read or change
the database (keys, audit, approvals, db) start without importing the channels, the templates and the HTTP
client."""

from __future__ import annotations

import sqlite3
from urllib.parse import urlsplit

from notifier.catalogue import Catalogue, CatalogueError, load_catalogue
from notifier.config import Settings
from notifier.config_errors import ConfigError
from notifier.i18n import N_, Said
from notifier.store import Store, open_store

DATABASE_UNAVAILABLE = N_("cannot open the database %(url)s: %(reason)s")
CATALOGUE_PROBLEM = N_("[catalogue] path: %(problem)s")


class DatabaseUnavailable(Exception):
    """The configured database cannot be opened or reached; `said` says which and why (no password) in the
    reader's language, `str()` in English."""

    def __init__(self, said: Said) -> None:
        super().__init__(str(said))
        self.said = said


def shown_url(url: str) -> str:
    """A database url fit to print: any password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


async def open_existing_database(settings: Settings) -> Store | None:
    """For read-only commands: the configured store, or None where its SQLite file does not exist yet (opening
    it would create an empty database where the user expected theirs)."""
    path = settings.sqlite_path()
    if path is not None and not path.is_file():
        return None
    return await open_database(settings)


async def open_database(settings: Settings, *, upgrade: bool = True) -> Store:
    """The configured store, opened (and by default migrated); DatabaseUnavailable when it cannot be."""
    try:
        return await open_store(settings, upgrade=upgrade)
    except (OSError, sqlite3.Error) as exc:
        raise _unavailable(settings, exc) from exc
    except Exception as exc:
        if type(exc).__module__.startswith("asyncpg"):  # the server refused us: no such database, bad password…
            raise _unavailable(settings, exc) from exc
        raise


def _unavailable(settings: Settings, exc: BaseException) -> DatabaseUnavailable:
    return DatabaseUnavailable(Said(DATABASE_UNAVAILABLE, {"url": shown_url(settings.database.url),
                                                           "reason": _reason(exc)}))


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def city_catalogue(settings: Settings) -> Catalogue:
    """The catalogue of `[catalogue] path`, or the bundled one; ConfigError when the file cannot be used."""
    try:
        return load_catalogue(settings.catalogue.path)
    except CatalogueError as exc:
        raise ConfigError(Said(CATALOGUE_PROBLEM, {"problem": str(exc)})) from None


async def seed_catalogue(store: Store, catalogue: Catalogue) -> None:
    """Put the catalogue's regions, groups, domains and topics in the database (what is there is kept)."""
    await store.add_catalogue(
        [(r.code, r.name, r.name_en) for r in catalogue.regions],
        [(g.code, g.name, g.name_en) for g in catalogue.groups],
        [(d.code, d.name, d.name_en) for d in catalogue.domains],
        [t.model_dump() for t in catalogue.topics])
