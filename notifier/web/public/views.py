"""What the public column shows, independent of HTML or JSON: the search query, the catalogue's names, and a
published alert as a citizen sees it (`PublicDisclosure`: its text, department, districts and groups by name,
status, follow-up notices and supervision channel).

Nothing here says anything about subscribers, targets or deliveries: public pages never do.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from notifier.catalogue import Catalogue
from notifier.models import Level, MsgType, Severity, Urgency
from notifier.rendering import LOCAL_TZ
from notifier.states import released
from notifier.store import Store
from notifier.store.records import AlertRow
from notifier.store.records_public import PublicFilter

PER_PAGE = 20
MAX_PAGE = 5000
MAX_TERMS = 8


class DisclosureQuery(BaseModel):
    """The search form of /disclosures (also its JSON form and the feeds). Empty fields are ignored, as a plain
    HTML form sends every field; unknown parameters are ignored too (links carry tracking parameters)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    q: str | None = Field(default=None, max_length=200,
                          description="words searched in headline, body and instruction (all must occur)")
    topic: str | None = Field(default=None, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$",
                              description="topic key, e.g. env.heavy-pollution")
    domain: str | None = Field(default=None, max_length=50, pattern=r"^[a-z][a-z0-9_]*$",
                               description="domain code, e.g. environment")
    region: str | None = Field(default=None, pattern=r"^[0-9]{6}$",
                               description="district code: disclosures aimed at it or at the whole city")
    level: Level | None = Field(default=None, description="warning colour")
    severity: Severity | None = None
    from_: date | None = Field(default=None, alias="from", description="published on or after this day (UTC+8)")
    to: date | None = Field(default=None, description="published on or before this day (UTC+8)")
    page: int = Field(default=1, ge=1, le=MAX_PAGE, description=f"page number, {PER_PAGE} per page")
    lang: Literal["zh-CN", "en"] | None = Field(default=None, description="page language (default zh-CN)")
    format: Literal["html", "json"] | None = Field(default=None, description="json: the same page as JSON")

    @model_validator(mode="before")
    @classmethod
    def _drop_empty(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data

    @model_validator(mode="after")
    def _ordered_days(self) -> DisclosureQuery:
        if self.from_ and self.to and self.to < self.from_:
            raise ValueError("`to` must not be before `from`")
        return self

    def terms(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.q or "").split()))[:MAX_TERMS]

    def store_filter(self) -> PublicFilter:
        return PublicFilter(
            terms=self.terms(), topic=self.topic, domain=self.domain, region=self.region,
            level=self.level.value if self.level else None, severity=self.severity.value if self.severity else None,
            since=_day_start(self.from_) if self.from_ else None,
            until=_day_start(self.to + timedelta(days=1)) if self.to else None)

    def params(self) -> dict[str, str]:
        """The query's filters as URL parameters (for links to other pages of the same search)."""
        values = {"q": self.q, "topic": self.topic, "domain": self.domain, "region": self.region,
                  "level": self.level.value if self.level else None,
                  "severity": self.severity.value if self.severity else None,
                  "from": self.from_.isoformat() if self.from_ else None,
                  "to": self.to.isoformat() if self.to else None}
        return {k: v for k, v in values.items() if v}


def _day_start(day: date) -> float:
    return datetime.combine(day, clock(0), LOCAL_TZ).timestamp()


# ---------------------------------------------------------------- catalogue names


@dataclass(frozen=True)
class Names:
    """Names of the catalogue as stored (topics added through the API included), in both languages."""

    regions: Mapping[str, tuple[str, str | None]]
    groups: Mapping[str, tuple[str, str | None]]
    domains: Mapping[str, tuple[str, str | None]]
    topics: Mapping[str, Mapping[str, Any]]
    catalogue: Catalogue

    @staticmethod
    def _pick(entry: tuple[str, str | None] | None, code: str, lang: str) -> str:
        if entry is None:
            return code
        return (entry[1] or entry[0]) if lang == "en" else entry[0]

    def region(self, code: str, lang: str) -> str:
        return self._pick(self.regions.get(code), code, lang)

    def group(self, code: str, lang: str) -> str:
        return self._pick(self.groups.get(code), code, lang)

    def domain(self, code: str, lang: str) -> str:
        return self._pick(self.domains.get(code), code, lang)

    def topic(self, key: str, lang: str) -> str:
        topic = self.topics.get(key)
        return key if topic is None else self._pick((topic["name"], topic.get("name_en")), key, lang)

    def department(self, name: str, lang: str) -> str:
        return (self.catalogue.department_en(name) or name) if lang == "en" else name


def _pairs(rows: Iterable[Any]) -> dict[str, tuple[str, str | None]]:
    return {str(r["code"]): (str(r["name"]), r["name_en"]) for r in rows}


async def load_names(store: Store, catalogue: Catalogue) -> Names:
    return Names(regions=_pairs(await store.list_regions()), groups=_pairs(await store.list_groups()),
                 domains=_pairs(await store.list_domains()),
                 topics={t["key"]: t for t in await store.list_topics()}, catalogue=catalogue)


# ---------------------------------------------------------------- one disclosure


class PublicStatus(StrEnum):
    ACTIVE = "active"
    UPDATED = "updated"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class PublicName(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    name: str


class PublicNotice(BaseModel):
    """A related message: an update or cancel of this disclosure, or (on a notice) the disclosure it refers to."""

    model_config = ConfigDict(frozen=True)

    id: str
    url: str
    msg_type: MsgType
    headline: str
    published_at: datetime


class PublicDisclosure(BaseModel):
    """A published public alert, update or cancel as the public column shows it."""

    model_config = ConfigDict(frozen=True)

    id: str
    url: str = Field(description="its permanent page")
    msg_type: MsgType
    topic: str
    topic_name: str
    domain: str | None
    domain_name: str | None
    department: str | None
    headline: str
    body: str
    instruction: str
    severity: Severity
    urgency: Urgency
    level: Level | None
    regions: list[PublicName] = Field(description="empty: the whole city")
    groups: list[PublicName] = Field(description="empty: everyone")
    published_at: datetime
    expires_at: datetime | None
    cancelled_at: datetime | None
    status: PublicStatus
    notices: list[PublicNotice] = Field(description="public updates and cancels of this disclosure, oldest first")
    refers_to: PublicNotice | None = Field(description="for an update or cancel: the disclosure it refers to")
    supervision: str | None = Field(description="complaint / supervision channel of the topic")


class DisclosurePage(BaseModel):
    """A page of the public column as JSON."""

    model_config = ConfigDict(frozen=True)

    items: list[PublicDisclosure]
    total: int
    page: int
    pages: int
    per_page: int
    next: str | None = Field(description="URL of the next page, if any")


def published(row: AlertRow) -> float:
    """When the alert went out (as the store's PUBLISHED expression)."""
    return row.released_at()


def _utc(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def is_public(row: AlertRow | None, now: float) -> bool:
    """Whether the alert may be shown publicly at all: marked public and already gone out."""
    return row is not None and row.public and released(row.approval) and published(row) <= now


def status_of(row: AlertRow, notices: Sequence[AlertRow], now: float) -> PublicStatus:
    kinds = {n.msg_type for n in notices}
    if row.status == "cancelled" or MsgType.CANCEL.value in kinds:
        return PublicStatus.CANCELLED
    if row.status == "expired" or (row.expires_at is not None and row.expires_at <= now):
        return PublicStatus.EXPIRED
    if MsgType.UPDATE.value in kinds:
        return PublicStatus.UPDATED
    return PublicStatus.ACTIVE


def notice(row: AlertRow, base_url: str) -> PublicNotice:
    return PublicNotice(id=row.id, url=f"{base_url}/disclosures/{row.id}", msg_type=MsgType(row.msg_type),
                        headline=row.headline, published_at=datetime.fromtimestamp(published(row), UTC))


@dataclass(frozen=True)
class ViewContext:
    """What turning rows into disclosures needs: names, language, the public base URL and the time."""

    names: Names
    lang: str
    base_url: str
    now: float

    @classmethod
    async def load(cls, store: Store, catalogue: Catalogue, lang: str, base_url: str) -> ViewContext:
        return cls(await load_names(store, catalogue), lang, base_url, time.time())


def disclosure(row: AlertRow, notices: Sequence[AlertRow], ctx: ViewContext,
               refers_to: AlertRow | None = None) -> PublicDisclosure:
    """The public view of one stored alert; `notices` are its public follow-ups, `refers_to` (for an update or
    cancel) the public alert it refers to."""
    names, lang = ctx.names, ctx.lang
    topic = names.topics.get(row.topic, {})
    domain = topic.get("domain")
    department = row.department or topic.get("department")
    return PublicDisclosure(
        id=row.id, url=f"{ctx.base_url}/disclosures/{row.id}", msg_type=MsgType(row.msg_type), topic=row.topic,
        topic_name=names.topic(row.topic, lang), domain=domain,
        domain_name=names.domain(domain, lang) if domain else None,
        department=names.department(department, lang) if department else None, headline=row.headline,
        body=row.body, instruction=row.instruction, severity=Severity(row.severity), urgency=Urgency(row.urgency),
        level=Level(row.level) if row.level else None,
        regions=[PublicName(code=c, name=names.region(c, lang)) for c in row.target_regions],
        groups=[PublicName(code=c, name=names.group(c, lang)) for c in row.target_groups],
        published_at=datetime.fromtimestamp(published(row), UTC), expires_at=_utc(row.expires_at),
        cancelled_at=_utc(row.cancelled_at), status=status_of(row, notices, ctx.now),
        notices=[notice(n, ctx.base_url) for n in notices],
        refers_to=notice(refers_to, ctx.base_url) if refers_to is not None else None,
        supervision=topic.get("supervision"))


async def disclosures(store: Store, rows: Sequence[AlertRow], ctx: ViewContext) -> list[PublicDisclosure]:
    """Public views of `rows`, each with its public follow-ups."""
    follow_ups: dict[str, list[AlertRow]] = {r.id: [] for r in rows}
    for row in await store.public_follow_ups([r.id for r in rows], ctx.now):
        if row.references_id in follow_ups:
            follow_ups[row.references_id].append(row)
    return [disclosure(r, follow_ups[r.id], ctx) for r in rows]
