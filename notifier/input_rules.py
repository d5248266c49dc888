"""One set of rules for input, however it arrives (API body, `notifier publish` file, import row):

- text files are UTF-8, with or without the BOM spreadsheets and Windows editors add, or GBK (`read_text`);
- pydantic's complaints become field errors from `loc` and `msg` only, never `input` (it would echo contacts);
- a region, group or topic may be given by its code or by its catalogue name (`城区`, `老年人`,
  `重污染天气预警`, or their English names); the code is what is stored. A value that is neither is reported as an
  unknown region (group, topic), with the nearest known name suggested — never as a format error.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from notifier.errors import FieldError
from notifier.store import Store
from notifier.store.catalogue import CodeRows
from notifier.textcoding import decode_detected

UNKNOWN = "unknown {kind} {value!r}{hint}"
HINT = " (did you mean {name}?)"
KINDS = ("region", "group", "topic")


def read_text(raw: bytes, what: str) -> str:
    """UTF-8 (BOM or not) or GBK text; UnreadableUpload (a NotifierError) naming `what` when it is neither."""
    return decode_detected(raw, what)[0]


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """pydantic errors as dotted field errors. Only `loc` and `msg` are read: `input` would echo contact data."""
    errors = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        path = ".".join(str(part) for part in error["loc"])
        where = f"{prefix}.{path}" if prefix and path else (prefix or path)
        message = str(error.get("msg", "invalid value"))
        # Custom validators raise ValueError("…"); pydantic's "Value error, " prefix says nothing to a user.
        errors.append(FieldError(where, message.removeprefix("Value error, ").removeprefix("Assertion failed, ")))
    return errors


@dataclass(frozen=True)
class CatalogueCodes:
    """The catalogue as input is checked against: codes that exist, and the names that stand for them."""

    regions: frozenset[str]
    groups: frozenset[str]
    topics: dict[str, list[str]]  # key -> the topic's channels, in order
    departments: dict[str, str]  # key -> the department responsible for the topic
    names: dict[str, dict[str, str]] = field(default_factory=dict)  # kind -> lower-cased name -> code
    labels: dict[str, dict[str, str]] = field(default_factory=dict)  # kind -> code -> its (Chinese) name

    @classmethod
    async def load(cls, store: Store) -> CatalogueCodes:
        return cls.of(await store.catalogue_codes())  # one read (a publish's reads them with its key: `keys`)

    @classmethod
    def of(cls, rows: CodeRows) -> CatalogueCodes:
        """The codes of the catalogue's lists as the store reads them (`Store.catalogue_codes`)."""
        regions, groups, topics = rows
        entries = {"region": [(r[0], r[1], r[2]) for r in regions], "group": [(g[0], g[1], g[2]) for g in groups],
                   "topic": [(t[0], t[1], t[2]) for t in topics]}
        return cls(regions=frozenset(r[0] for r in regions), groups=frozenset(g[0] for g in groups),
                   topics={t[0]: list(t[3]) for t in topics}, departments={t[0]: str(t[4]) for t in topics},
                   names={kind: _names(rows) for kind, rows in entries.items()},
                   labels={kind: {str(code): str(name) for code, name, _ in rows} for kind, rows in entries.items()})

    def code(self, kind: str, value: str) -> str:
        """The code a value names: the code itself, or the catalogue name of one (else the value unchanged, for
        `known` to refuse)."""
        return self.names.get(kind, {}).get(value.strip().lower(), value)

    def known(self, kind: str, code: str) -> bool:
        if kind == "region":
            return code in self.regions
        if kind == "group":
            return code in self.groups
        return code in self.topics

    def unknown(self, kind: str, value: str) -> str:
        """`unknown region '城西' (did you mean 城区?)`: the one wording of a value the catalogue does not hold."""
        choices = {**{name: name for name in self.labels.get(kind, {}).values()},
                   **{code: code for code in self.labels.get(kind, {})}}
        close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.5)
        return UNKNOWN.format(kind=kind, value=value, hint=HINT.format(name=close[0]) if close else "")

    def resolve(self, kind: str, values: Iterable[Any], where: str) -> tuple[list[Any], list[FieldError]]:
        """Codes for the values (names replaced, order kept, repeats dropped) and a field error for each value
        that names nothing in the catalogue. Values that are not text are left for the model to refuse."""
        codes: list[Any] = []
        errors: list[FieldError] = []
        for value in values:
            if not isinstance(value, str):
                codes.append(value)
                continue
            code = self.code(kind, value)
            if not self.known(kind, code):
                errors.append(FieldError(where, self.unknown(kind, value)))
            codes.append(code)
        return list(dict.fromkeys(codes)) if all(isinstance(c, str) for c in codes) else codes, errors


def _names(entries: Iterable[tuple[str, str, str | None]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for code, name, name_en in entries:
        for label in (name, name_en):
            if label:
                out.setdefault(str(label).lower(), code)
    return out
