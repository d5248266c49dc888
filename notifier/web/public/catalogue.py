"""The disclosure catalogue (公开目录) as the public sees it: every stored topic, grouped by domain, with its
responsible department, disclosure method, channels, schedule and supervision channel.

Built from the topics and domains tables (so topics added through the API appear too), ordered as the catalogue
file lists them, then by code for anything added since.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from notifier.i18n import translator
from notifier.schedule import from_stored, schedule_words
from notifier.terms import Terms
from notifier.web.public.responses import link
from notifier.web.public.views import Names


class CatalogueTopic(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    name: str
    department: str
    method: str | None = Field(description="disclosure method (公开方式)")
    channels: list[str] = Field(description="channel kinds new subscriptions default to")
    channel_names: list[str]
    schedule: str | None = Field(description="disclosure schedule (发布时限)")
    supervision: str | None = Field(description="complaint / supervision channel (监督渠道)")
    disclosures: str = Field(description="the topic's disclosures (site-relative)")
    feed: str = Field(description="the topic's Atom feed (site-relative)")


class CatalogueDomain(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    name: str
    topics: list[CatalogueTopic]


class PublicCatalogue(BaseModel):
    """The public catalogue as JSON."""

    model_config = ConfigDict(frozen=True)

    domains: list[CatalogueDomain]


def _ordered(codes: Sequence[str], preferred: Sequence[str]) -> list[str]:
    rank = {code: index for index, code in enumerate(preferred)}
    return sorted(codes, key=lambda code: (rank.get(code, len(rank)), code))


def build_catalogue(names: Names, lang: str, link_lang: str | None) -> PublicCatalogue:
    """Every topic under its domain; domains without topics are left out, topics of an unlisted domain go last.
    Links carry `link_lang` (the language the reader chose, if any)."""
    terms = Terms(lang)
    by_domain: dict[str, list[CatalogueTopic]] = {}
    topic_order = _ordered(list(names.topics), [tp.key for tp in names.catalogue.topics])
    for key in topic_order:
        topic = names.topics[key]
        channels = [str(c) for c in topic.get("channels") or []]
        by_domain.setdefault(str(topic["domain"]), []).append(CatalogueTopic(
            key=key, name=names.topic(key, lang), department=names.department(str(topic["department"]), lang),
            method=topic.get("method"), channels=channels, channel_names=[terms("channel", c) for c in channels],
            schedule=schedule_words(from_stored(topic.get("schedule")), lang), supervision=topic.get("supervision"),
            disclosures=link("/disclosures", link_lang, {"topic": key}),
            feed=link(f"/disclosures/{key}/feed.atom", link_lang)))
    domain_order = _ordered(list(by_domain), [d.code for d in names.catalogue.domains])
    other = translator(lang).gettext("Other")  # topics whose domain is not in the domains table
    return PublicCatalogue(domains=[
        CatalogueDomain(code=code, name=names.domain(code, lang) if code in names.domains else other,
                        topics=by_domain[code]) for code in domain_order])
