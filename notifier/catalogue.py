"""The disclosure catalogue (公开事项目录): regions, population groups, domains, departments and topics.

The catalogue is data, not code. The bundled `notifier/data/catalogue.toml` holds Changzhi's 13 counties and
districts, the seed plan's population groups, its eight disclosure domains and its topics, each with a
responsible department, schedule, disclosure method and supervision channel. Another city passes its own file to
`load_catalogue(path)` (configured as `[catalogue] path`).

A catalogue file is TOML with four arrays of tables, `[[regions]]`, `[[groups]]`, `[[domains]]`, `[[topics]]`,
and an optional `[[departments]]` (Chinese name → English name, used by English messages). Every problem is
reported as a `CatalogueError` (a `ValueError`) naming the file and the offending entry.

A topic's `schedule` is either a table — a structured deadline, `{ every = "month", by_day = 20 }`
(`notifier.schedule`) — or free text shown as written. Topics carry the schedule in its stored text form
(`schedule.to_stored`: canonical JSON for a structured one), which is what the store's `schedule` column holds;
`Catalogue.schedule(key)` reads it back.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from notifier.models import REGION_CODE, Group, Region, TopicIn

if TYPE_CHECKING:
    from notifier.schedule import StoredSchedule

# notifier.schedule is imported where it is used: it needs rendering's time zone, and rendering needs this module.

CODE = re.compile(r"^[a-z][a-z0-9_]*$")
SECTIONS = ("regions", "groups", "domains", "departments", "topics")


class CatalogueError(ValueError):
    """A catalogue file or object is invalid; the message names the entry."""


class Domain(BaseModel):
    """One of the disclosure domains (脱贫攻坚, 环境保护 …)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    name: str
    name_en: str | None = None


class Department(BaseModel):
    """A responsible department, by its Chinese name as topics spell it, with an English name for `en` messages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    name_en: str | None = None


class Catalogue(BaseModel):
    """Regions, groups, domains, departments and topics, checked for duplicates and dangling references."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    regions: list[Region]
    groups: list[Group]
    domains: list[Domain]
    topics: list[TopicIn]
    departments: list[Department] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Catalogue:
        check_catalogue(self.regions, self.groups, self.domains, self.topics, self.departments)
        return self

    def region(self, code: str) -> Region | None:
        return next((r for r in self.regions if r.code == code), None)

    def group(self, code: str) -> Group | None:
        return next((g for g in self.groups if g.code == code), None)

    def domain(self, code: str) -> Domain | None:
        return next((d for d in self.domains if d.code == code), None)

    def topic(self, key: str) -> TopicIn | None:
        return next((t for t in self.topics if t.key == key), None)

    def department_en(self, name: str) -> str | None:
        return next((d.name_en for d in self.departments if d.name == name), None)

    def schedule(self, key: str) -> StoredSchedule:
        """A topic's schedule: structured, or its free text (an unknown topic has none)."""
        from notifier.schedule import Schedule, StoredSchedule, from_stored

        schedule = topic.schedule if (topic := self.topic(key)) else None
        return StoredSchedule(schedule) if isinstance(schedule, Schedule) else from_stored(schedule)


def _duplicates(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    dup: list[str] = []
    for value in values:
        if value in seen and value not in dup:
            dup.append(value)
        seen.add(value)
    return dup


def check_catalogue(regions: Sequence[Region], groups: Sequence[Group], domains: Sequence[Domain],
                    topics: Sequence[TopicIn], departments: Sequence[Department] = ()) -> None:
    """Raise CatalogueError on malformed codes, duplicates, or a topic whose domain is not listed."""
    for region in regions:
        if not REGION_CODE.fullmatch(region.code):
            raise CatalogueError(f"region {region.code!r} ({region.name}): code must be six digits (GB/T 2260)")
    for kind, codes in (("group", [g.code for g in groups]), ("domain", [d.code for d in domains])):
        for code in codes:
            if not CODE.match(code):
                raise CatalogueError(f"{kind} {code!r}: code must be lower-case letters, digits and _")
    for kind, values in (
        ("region code", [r.code for r in regions]),
        ("group code", [g.code for g in groups]),
        ("domain code", [d.code for d in domains]),
        ("topic key", [t.key for t in topics]),
        ("department name", [d.name for d in departments]),
    ):
        dup = _duplicates(values)
        if dup:
            raise CatalogueError(f"duplicate {kind}: {', '.join(repr(v) for v in dup)}")
    known = {d.code for d in domains}
    for topic in topics:
        if topic.domain not in known:
            raise CatalogueError(
                f"topic {topic.key!r}: unknown domain {topic.domain!r}; known domains: {', '.join(sorted(known))}"
            )


def _stored_schedule(entry: Any, where: str) -> Any:
    """A topic entry with a structured `schedule` table turned into its stored text (free text stays as is)."""
    from notifier.schedule import ScheduleError, parse_schedule, to_stored

    if not (isinstance(entry, dict) and isinstance(entry.get("schedule"), dict)):
        return entry
    try:
        return {**entry, "schedule": to_stored(parse_schedule(entry["schedule"]))}
    except ScheduleError as exc:
        raise CatalogueError(f"{where}: {exc}") from None


def _entries(data: dict[str, Any], section: str, model: type[BaseModel], source: str) -> list[Any]:
    """Validate one array of tables entry by entry, so that an error names the entry, not just an index."""
    raw = data.get(section, [])
    if not isinstance(raw, list):
        raise CatalogueError(f"{source}: [[{section}]] must be an array of tables")
    out: list[Any] = []
    for index, entry in enumerate(raw):
        label = f"{section}[{index}]"
        if isinstance(entry, dict):
            name = entry.get("key") or entry.get("code") or entry.get("name")
            if name:
                label += f" ({name})"
        if section == "topics":
            entry = _stored_schedule(entry, f"{source}: {label}")
        try:
            out.append(model.model_validate(entry))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'entry'}: {err['msg']}" for err in exc.errors()
            )
            raise CatalogueError(f"{source}: {label}: {problems}") from exc
    return out


def parse_catalogue(text: str, source: str = "<catalogue>") -> Catalogue:
    """Parse and validate catalogue TOML; `source` names the file in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{source}: not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise CatalogueError(f"{source}: unknown section(s) {', '.join(unknown)}; expected {', '.join(SECTIONS)}")
    regions = _entries(data, "regions", Region, source)
    groups = _entries(data, "groups", Group, source)
    domains = _entries(data, "domains", Domain, source)
    departments = _entries(data, "departments", Department, source)
    topics = _entries(data, "topics", TopicIn, source)
    try:
        check_catalogue(regions, groups, domains, topics, departments)
    except CatalogueError as exc:
        raise CatalogueError(f"{source}: {exc}") from None
    return Catalogue(regions=regions, groups=groups, domains=domains, topics=topics, departments=departments)


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Load a catalogue file, or the bundled Changzhi catalogue when `path` is None."""
    if path is None:
        resource = files("notifier").joinpath("data/catalogue.toml")
        return parse_catalogue(resource.read_text(encoding="utf-8"), "notifier/data/catalogue.toml")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read catalogue: {exc.strerror or exc}") from exc
    return parse_catalogue(text, str(path))
