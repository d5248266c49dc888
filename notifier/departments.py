"""Departments (SPEC "Departments and approval"): which department an alert speaks for, and who may read it.

- A publisher key belongs to one department (`notifier keys create --role publisher --department 市环保局`), which
  must be one the catalogue names (a topic's responsible department): a misspelt department would give a key that
  sees none of its bureau's alerts and can approve none of them. Admin and viewer keys have none.
- An alert records the publishing key's department; an admin key's (or the CLI's) alert records its topic's.
- A publisher publishes within its topic patterns, whoever owns the topic (`keys.require_publish`), but reads,
  lists, approves and follows only its own department's alerts: another department's answer 404, as if they did
  not exist. Admins and viewers read every alert.
- A publisher key created before departments existed has none: it is refused (403) until replaced.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from notifier.errors import FieldError, Forbidden, InvalidInput, NotFoundError
from notifier.i18n import N_
from notifier.models import Role
from notifier.store.records import AlertRow, KeyRecord

NO_SUCH_ALERT = "no such alert"
NEEDS_DEPARTMENT = "a publisher key needs its department (--department), e.g. 市环保局"
NOT_FOR_ROLE = "only publisher keys belong to a department (--department)"
UNKNOWN_DEPARTMENT = "{name!r} is not a department of the catalogue{hint}; known: {known}"
HINT = " (did you mean {0!r}?)"
BAD_DEPARTMENT = N_("the department is not valid")  # N_: the CLI says it in its language
KEY_WITHOUT_DEPARTMENT = ("this publisher key has no department (it was created before departments existed); "
                          "create a new one with --department and revoke this one")


def catalogue_departments(topics: Iterable[Mapping[str, object]]) -> list[str]:
    """The departments the catalogue names: every topic's responsible department."""
    return sorted({str(t["department"]) for t in topics})


def check_department(role: Role, department: str | None, known: list[str]) -> str | None:
    """The key's department as stored: required for a publisher and one of `known`; refused for other roles.
    InvalidInput (field `department`) says why, with the nearest known name."""
    name = (department or "").strip()
    if role is not Role.PUBLISHER:
        if name:
            raise InvalidInput(BAD_DEPARTMENT, [FieldError("department", NOT_FOR_ROLE)])
        return None
    if not name:
        raise InvalidInput(BAD_DEPARTMENT, [FieldError("department", NEEDS_DEPARTMENT)])
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        message = UNKNOWN_DEPARTMENT.format(name=name, hint=HINT.format(close[0]) if close else "",
                                            known=", ".join(known))
        raise InvalidInput(BAD_DEPARTMENT, [FieldError("department", message)])
    return name


def own_department(key: KeyRecord) -> str:
    """A publisher's department; Forbidden for a publisher key that has none."""
    if not key.department:
        raise Forbidden(KEY_WITHOUT_DEPARTMENT)
    return key.department


def alert_department(key: KeyRecord | None, topic_department: str | None) -> str | None:
    """The department an alert speaks for: the publisher's, else (admin key, CLI) its topic's (None: its topic is
    unknown, an error the caller reports)."""
    if key is not None and key.role == Role.PUBLISHER:
        return own_department(key)
    return topic_department


def listing_department(key: KeyRecord) -> str | None:
    """Whose alerts a key lists: a publisher only its own department's; admins and viewers everyone's (None)."""
    return own_department(key) if key.role == Role.PUBLISHER else None


def may_read(key: KeyRecord, alert: AlertRow) -> bool:
    return key.role != Role.PUBLISHER or (key.department is not None and alert.department == key.department)


def readable(key: KeyRecord, alert: AlertRow | None) -> AlertRow:
    """The alert, if the key may read it; NotFound otherwise — another department's alert is not told apart from
    one that does not exist."""
    if key.role == Role.PUBLISHER:
        own_department(key)
    if alert is None or not may_read(key, alert):
        raise NotFoundError(NO_SUCH_ALERT)
    return alert
