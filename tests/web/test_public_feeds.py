"""The public column's Atom 1.0 feeds: /disclosures/feed.atom and /disclosures/{topic}/feed.atom parse as Atom,
carry the required elements, list entries newest first, honour the list's filters and conditional requests."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from tests.web.conftest import Api
from tests.web.public_support import ATOM, entry_titles, get_feed, publish

pytestmark = pytest.mark.both_backends


async def test_feed_is_valid_atom_newest_first(api: Api) -> None:
    """The feed of all topics is Atom 1.0: feed id/title/updated/author/self link; each entry id, title, updated,
    alternate link; entries newest first, updates and cancels included."""
    first = await publish(api, headline="第一条")
    await publish(api, topic="transit.fare-change", headline="第二条")
    await publish(api, headline="撤销第一条", msg_type="cancel", references=first)
    feed = await get_feed(api, "/disclosures/feed.atom")
    assert feed.tag == f"{ATOM}feed"
    for tag in ("id", "title", "updated"):
        assert feed.findtext(f"{ATOM}{tag}"), tag
    assert feed.findtext(f"{ATOM}author/{ATOM}name")
    base = api.service.settings.server.base_url()
    links = {link.get("rel"): link.get("href") for link in feed.findall(f"{ATOM}link")}
    assert links["self"] == f"{base}/disclosures/feed.atom"
    assert links["alternate"] == f"{base}/disclosures"
    entries = feed.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in entries] == ["【撤销】撤销第一条", "第二条", "第一条"]
    for entry in entries:
        assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", entry.findtext(f"{ATOM}id") or "")
        assert entry.findtext(f"{ATOM}updated") and entry.findtext(f"{ATOM}author/{ATOM}name")
        link = entry.find(f"{ATOM}link")
        assert link is not None and (link.get("href") or "").startswith(f"{base}/disclosures/")
    published = [datetime.fromisoformat(e.findtext(f"{ATOM}published") or "") for e in entries]
    assert published == sorted(published, reverse=True)
    assert len({e.findtext(f"{ATOM}id") for e in entries}) == 3


async def test_feed_entry_carries_department_and_supervision(api: Api) -> None:
    """An entry's author is the responsible department and its content names the supervision channel."""
    await publish(api, headline="票价调整", topic="transit.fare-change", body="自下月起调整。")
    entry = (await get_feed(api, "/disclosures/feed.atom")).find(f"{ATOM}entry")
    assert entry is not None
    assert entry.findtext(f"{ATOM}author/{ATOM}name") == "市交通局"
    content = entry.findtext(f"{ATOM}content") or ""
    assert "自下月起调整。" in content and "监督渠道" in content
    category = entry.find(f"{ATOM}category")
    assert category is not None and category.get("term") == "transit.fare-change"


async def test_topic_feed_has_only_its_topic(api: Api) -> None:
    """/disclosures/{topic}/feed.atom carries only that topic; an unknown topic is a 404."""
    await publish(api, headline="污染预警")
    await publish(api, topic="transit.fare-change", headline="票价调整")
    feed = await get_feed(api, "/disclosures/transit.fare-change/feed.atom")
    assert entry_titles(feed) == ["票价调整"]
    assert "公共交通" in (feed.findtext(f"{ATOM}title") or "") or "票价" in (feed.findtext(f"{ATOM}title") or "")
    self_link = next(x for x in feed.findall(f"{ATOM}link") if x.get("rel") == "self")
    assert (self_link.get("href") or "").endswith("/disclosures/transit.fare-change/feed.atom")
    response = await api.client.get("/disclosures/no.such-topic/feed.atom")
    assert response.status == 404


async def test_feed_accepts_list_filters(api: Api) -> None:
    """A district's feed: ?region= keeps alerts for it and for the whole city."""
    await publish(api, headline="城区预警", regions=["140402"])
    await publish(api, headline="郊区预警", regions=["140411"])
    feed = await get_feed(api, "/disclosures/feed.atom?region=140402")
    assert entry_titles(feed) == ["城区预警"]


async def test_feed_is_cacheable_and_conditional(api: Api) -> None:
    """Feeds carry Cache-Control, ETag and Last-Modified; a matching If-None-Match gets a 304."""
    await publish(api, headline="缓存检查")
    response = await api.client.get("/disclosures/feed.atom")
    assert response.headers["Cache-Control"] == "public, max-age=60"
    etag, modified = response.headers["ETag"], response.headers["Last-Modified"]
    again = await api.client.get("/disclosures/feed.atom", headers={"If-None-Match": etag})
    assert again.status == 304
    since = await api.client.get("/disclosures/feed.atom", headers={"If-Modified-Since": modified})
    assert since.status == 304
    await publish(api, headline="新的一条")
    changed = await api.client.get("/disclosures/feed.atom", headers={"If-None-Match": etag})
    assert changed.status == 200


async def test_empty_feed_is_valid_atom(api: Api) -> None:
    """With nothing published the feed is still a valid Atom feed, with no entries."""
    feed = await get_feed(api, "/disclosures/env.air-forecast/feed.atom")
    assert feed.findtext(f"{ATOM}updated") and feed.findall(f"{ATOM}entry") == []
