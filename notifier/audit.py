"""The tamper-evident audit record (SPEC "Audit"): one hash-chained entry per act, verifiable by anyone.

An entry is exactly `{seq, at, actor, role, department, action, object, details, prev_hash, hash}`:

    seq         1, 2, 3 … with no gap
    at          ISO 8601 UTC to the millisecond, always `YYYY-MM-DDTHH:MM:SS.mmmZ` (fixed width, so that the
                text sorts as the time does and `?since=` / `?until=` compare as strings)
    actor       the key's id, or `cli` for a CLI act without a key, `system` for what the service does by itself
                (seeding the catalogue's topics, rejecting an alert nobody approved in time), `citizen` for a
                subscriber erasing their own data through their signed link
    role        admin | publisher | viewer | citizen (a `cli` or `system` act is an operator's: admin)
    department  the acting key's department, or null
    action      one of `AuditAction`
    object      `<kind>:<id>`, e.g. `alert:3f…`
    details     a JSON object: ids, counts, codes, names — never a contact (see `check_details`)
    prev_hash   the previous entry's hash; 64 zeros for the first
    hash        SHA-256 hex of the entry as GET /v1/audit shows it, without `hash`, as canonical JSON: sorted
                keys, separators `,` and `:`, non-ASCII kept, UTF-8

Floats are refused in `details` (their text differs between JSON libraries, so an outside verifier could not
recompute the hash), as are integers beyond ±(2**53 - 1) and non-ASCII keys (sort orders differ beyond ASCII).

`verify_chain` checks a sequence read in `seq` order and names the first broken seq: `changed` (an entry's hash
does not match its content), `removed` (a seq is missing), `reordered` (entries swapped or renumbered),
`inserted` (an entry that does not link to the one before it, or a second entry with one seq). A chain proves
that nothing before its head was altered; that the head itself is the latest is what witnessing `GET /audit/head`
from outside is for (`verify_chain(…, witnessed=…)`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from notifier.localtime import LOCAL_TZ
from notifier.models import Role
from subscriptions.masking import scrub

if TYPE_CHECKING:  # the store imports this module: its records only for types
    from notifier.store.records import KeyRecord

GENESIS = "0" * 64
FIELDS = ("seq", "at", "actor", "role", "department", "action", "object", "details", "prev_hash", "hash")
CLI_ACTOR = "cli"
SYSTEM_ACTOR = "system"
CITIZEN_ACTOR = CITIZEN_ROLE = "citizen"
ROLES = frozenset({*(r.value for r in Role), CITIZEN_ROLE})
MAX_SAFE_INTEGER = 2**53 - 1  # the largest integer every JSON reader (JavaScript's included) keeps exact
_OBJECT = re.compile(r"[a-z][a-z_]*:[^\s]+")
_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class AuditAction(StrEnum):
    ALERT_PUBLISH = "alert.publish"
    ALERT_APPROVE = "alert.approve"
    ALERT_REJECT = "alert.reject"
    ALERT_UPDATE = "alert.update"
    ALERT_CANCEL = "alert.cancel"
    KEY_CREATE = "key.create"
    KEY_REVOKE = "key.revoke"
    TOPIC_CREATE = "topic.create"
    TOPIC_UPDATE = "topic.update"
    POPULATION_PUT = "population.put"
    SUBSCRIBERS_IMPORT = "subscribers.import"
    SUBSCRIBER_ERASE = "subscriber.erase"


class AuditError(ValueError):
    """An entry cannot be written as asked (a contact or a float in details, a malformed object…)."""


class BreakKind(StrEnum):
    CHANGED = "changed"
    REMOVED = "removed"
    REORDERED = "reordered"
    INSERTED = "inserted"


# ---------------------------------------------------------------- entries


@dataclass(frozen=True, slots=True)
class Actor:
    """Who does an act, as its entry records it: `actor`, `role`, `department`."""

    id: str
    role: str
    department: str | None = None

    @classmethod
    def of_key(cls, key: KeyRecord | None) -> Actor:
        """The key's id, role and department; an act without a key is the CLI's."""
        return CLI if key is None else cls(key.id, key.role, key.department)


CLI = Actor(CLI_ACTOR, Role.ADMIN.value)
SYSTEM = Actor(SYSTEM_ACTOR, Role.ADMIN.value)
CITIZEN = Actor(CITIZEN_ACTOR, CITIZEN_ROLE)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: str
    actor: str
    role: str
    department: str | None
    action: str
    object: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def as_json(self) -> dict[str, Any]:
        """The entry exactly as GET /v1/audit shows it (and as its hash covers, less `hash`)."""
        return asdict(self)

    def head(self) -> AuditHead:
        return AuditHead(self.seq, self.hash, self.at)


@dataclass(frozen=True, slots=True)
class AuditHead:
    """What GET /audit/head shows, so that the head can be witnessed outside: `{seq, hash, at}` (EMPTY_HEAD
    before the first entry)."""

    seq: int
    hash: str
    at: str | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


EMPTY_HEAD = AuditHead(0, GENESIS, None)  # the head of a chain with no entry yet; next_entry(EMPTY_HEAD, …) is seq 1


def format_at(moment: float | datetime) -> str:
    """`at` for an entry: UTC, millisecond precision, `Z` — e.g. 2026-05-20T06:03:00.123Z."""
    value = moment if isinstance(moment, datetime) else datetime.fromtimestamp(moment, UTC)
    if value.tzinfo is None:
        raise AuditError("audit times need a time zone")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def time_bound(text: str) -> str:
    """A `?since=` / `?until=` value in `at` form: ISO 8601 with an offset, or a date (midnight, Beijing time)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise AuditError(f"{text!r} is not an ISO 8601 time, e.g. 2026-05-20T08:00:00+08:00") from None
    if value.tzinfo is None:
        if len(text) > 10:
            raise AuditError(f"{text!r} needs a time zone offset, e.g. +08:00 or Z")
        value = value.replace(tzinfo=LOCAL_TZ)
    return format_at(value)


def canonical_json(fields: Mapping[str, Any]) -> bytes:
    """Sorted keys, separators `,` and `:`, non-ASCII kept, UTF-8."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 hex over the canonical JSON of the entry's fields other than `hash`."""
    return hashlib.sha256(canonical_json({key: entry[key] for key in FIELDS[:-1]})).hexdigest()


def _check_text(text: str, where: str) -> None:
    # The log scrubber's own detectors: whatever it would mask (mobiles, emails, openids) is a contact.
    if scrub(text) != text:
        raise AuditError(f"{where}: looks like a contact (phone number, email address or openid); "
                         "record the subscriber's id instead")


def _check_value(value: object, where: str) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        _check_text(value, where)
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise AuditError(f"{where}: integers beyond ±(2**53 - 1) are not exact in every JSON reader")
    elif isinstance(value, float):
        raise AuditError(f"{where}: floats are not allowed (their JSON text is not canonical); use an integer "
                         "or a string")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise AuditError(f"{where}: keys must be ASCII strings, not {key!r}")
            _check_text(key, f"{where}.{key}")
            _check_value(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_value(item, f"{where}[{index}]")
    else:
        raise AuditError(f"{where}: {type(value).__name__} is not a JSON value")


def check_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """`details` as a plain JSON object, or AuditError: a contact, a float, a huge integer, a non-ASCII key."""
    _check_value(details, "details")
    plain: dict[str, Any] = json.loads(canonical_json(details))  # tuples → lists, exactly what is hashed
    return plain


def _checked_object(ref: str) -> str:
    if not _OBJECT.fullmatch(ref):
        raise AuditError(f"object {ref!r} must be <kind>:<id> (kind lower-case, id without spaces)")
    return ref


def object_ref(kind: str, ident: str) -> str:
    """`<kind>:<id>`, e.g. object_ref("alert", "3f…") → "alert:3f…"."""
    return _checked_object(f"{kind}:{ident}")


def _checked_role(role: str) -> str:
    value = str(getattr(role, "value", role))
    if value not in ROLES:
        raise AuditError(f"role {value!r} must be one of {', '.join(sorted(ROLES))}")
    return value


def next_entry(head: AuditHead | None, *, at: float | datetime, actor: str, role: Role | str, department: str | None,
               action: AuditAction, object: str, details: Mapping[str, Any]) -> AuditEntry:
    """The entry that follows `head` (None: the chain is empty). The store appends it in the transaction that
    read `head`, so two writers cannot both extend the same head."""
    _checked_object(object)
    for where, text in (("actor", actor), ("department", department or ""), ("object", object)):
        _check_text(text, where)
    fields: dict[str, Any] = {
        "seq": head.seq + 1 if head else 1, "at": format_at(at), "actor": actor, "role": _checked_role(role),
        "department": department, "action": AuditAction(action).value, "object": object,
        "details": check_details(details), "prev_hash": head.hash if head else GENESIS}
    return AuditEntry(**fields, hash=entry_hash(fields))


# ---------------------------------------------------------------- verification


@dataclass(frozen=True, slots=True)
class ChainOK:
    count: int
    head: str  # the last entry's hash; GENESIS for an empty chain

    def line(self) -> str:
        return f"audit: OK {self.count} entries head {self.head}"


@dataclass(frozen=True, slots=True)
class ChainBroken:
    seq: int  # the first seq whose check fails
    kind: BreakKind
    why: str

    def line(self) -> str:
        return f"audit: BROKEN at {self.seq}: {self.kind.value} ({self.why})"


def _shape_problem(row: Mapping[str, Any]) -> str | None:
    missing = [key for key in FIELDS if key not in row]
    if missing:
        return f"missing {', '.join(missing)}"
    extra = sorted(set(row) - set(FIELDS))
    if extra:
        return f"unexpected {', '.join(extra)}"
    if not (isinstance(row["hash"], str) and _HEX64.fullmatch(row["hash"])):
        return "hash is not 64 lower-case hex digits"
    if not (isinstance(row["at"], str) and _AT.fullmatch(row["at"])):
        return "at is not YYYY-MM-DDTHH:MM:SS.mmmZ"
    if not isinstance(row["details"], dict):
        return "details is not an object"
    try:
        entry_hash(row)
    except (TypeError, ValueError):
        return "an entry field is not JSON"
    return None


class _LookAhead(Exception):
    """A check needs the entries after this one (to tell reordered from removed or inserted)."""


class _Later:
    """The entries after the one being checked: unknown while streaming (asking raises _LookAhead), known once the
    verifier has buffered the rest of the stream."""

    def __init__(self, rows: list[Mapping[str, Any]] | None = None) -> None:
        self._rows = rows

    def rows(self) -> list[Mapping[str, Any]]:
        if self._rows is None:
            raise _LookAhead
        return self._rows


def _sequence_break(row: Mapping[str, Any], expected: int, rest: _Later) -> ChainBroken | None:
    """Entries 1 … expected - 1 are in place (checked before), so this one must be seq `expected`."""
    seq = row.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return ChainBroken(expected, BreakKind.CHANGED, f"the entry after seq {expected - 1} has no valid seq")
    if seq == expected:
        return None
    if seq < expected:  # 1 … expected - 1 were all seen already
        return ChainBroken(seq, BreakKind.INSERTED, f"a second entry with seq {seq}")
    if expected in {later.get("seq") for later in rest.rows()}:
        return ChainBroken(expected, BreakKind.REORDERED, f"seq {seq} comes where seq {expected} belongs")
    return ChainBroken(expected, BreakKind.REMOVED, f"entry {expected} is missing" if seq == expected + 1
                       else f"entries {expected} to {seq - 1} are missing")


def _entry_break(row: Mapping[str, Any], prev_hash: str, rest: _Later) -> ChainBroken | None:
    seq = int(row["seq"])
    problem = _shape_problem(row)
    if problem:
        return ChainBroken(seq, BreakKind.CHANGED, problem)
    if row["prev_hash"] != prev_hash and row["prev_hash"] in {later.get("hash") for later in rest.rows()}:
        return ChainBroken(seq, BreakKind.REORDERED, "it links to an entry stored after it")
    if entry_hash(row) != row["hash"]:
        return ChainBroken(seq, BreakKind.CHANGED, "its hash does not match its content")
    if row["prev_hash"] != prev_hash:
        before = f"entry {seq - 1}" if seq > 1 else "the start of the chain"
        return ChainBroken(seq, BreakKind.INSERTED, f"its prev_hash does not link to {before} (an entry was "
                                                    "inserted or rewritten here)")
    return None


def _witness_break(count: int, hash_at_witness: str | None, witnessed: AuditHead) -> ChainBroken | None:
    if witnessed.seq > count:
        return ChainBroken(count + 1, BreakKind.REMOVED,
                           f"the chain ends at seq {count} but seq {witnessed.seq} was witnessed")
    if witnessed.seq >= 1 and hash_at_witness != witnessed.hash:
        return ChainBroken(witnessed.seq, BreakKind.CHANGED, "its hash differs from the witnessed head")
    return None


class ChainVerifier:
    """Checks entries fed one by one in seq order (from any stream, e.g. `async for` over the store), then says
    OK or the first broken seq. Memory stays flat while the chain is intact; after the first entry whose verdict
    needs what follows, the rest is kept to decide it. `witnessed`: a head seen outside before."""

    def __init__(self, witnessed: AuditHead | None = None) -> None:
        self._witnessed = witnessed
        self._prev_hash, self._count = GENESIS, 0
        self._hash_at_witness: str | None = None
        self._broken: ChainBroken | None = None
        self._suspect: Mapping[str, Any] | None = None
        self._after_suspect: list[Mapping[str, Any]] = []

    def add(self, row: Mapping[str, Any]) -> None:
        if self._broken is not None:
            return
        if self._suspect is not None:
            self._after_suspect.append(row)
            return
        try:
            self._broken = self._check(row, _Later())
        except _LookAhead:
            self._suspect = row
            return
        if self._broken is None:
            self._count += 1
            self._prev_hash = str(row["hash"])
            if self._witnessed is not None and self._count == self._witnessed.seq:
                self._hash_at_witness = self._prev_hash

    def _check(self, row: Mapping[str, Any], later: _Later) -> ChainBroken | None:
        return _sequence_break(row, self._count + 1, later) or _entry_break(row, self._prev_hash, later)

    def result(self) -> ChainOK | ChainBroken:
        if self._broken is not None:
            return self._broken
        if self._suspect is not None:
            broken = self._check(self._suspect, _Later(self._after_suspect))
            assert broken is not None  # noqa: S101 - a suspect entry always fails a check once it sees the rest
            return broken
        if self._witnessed is not None:
            broken = _witness_break(self._count, self._hash_at_witness, self._witnessed)
            if broken:
                return broken
        return ChainOK(self._count, self._prev_hash)


def verify_chain(entries: Iterable[Mapping[str, Any]], witnessed: AuditHead | None = None) -> ChainOK | ChainBroken:
    """Check entries read in seq order (dicts as stored, or `AuditEntry.as_json()`) and return OK with the count
    and head, or the first broken seq and why."""
    verifier = ChainVerifier(witnessed)
    for row in entries:
        verifier.add(row)
    return verifier.result()
