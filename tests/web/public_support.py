"""Helpers shared by the public column's tests: publish over the API or backdated through the core, fetch pages,
JSON and feeds asserting their status and type."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

from notifier.models import AlertIn
from notifier.publish import publish_alert
from tests.web.conftest import Api

ATOM = "{http://www.w3.org/2005/Atom}"


async def publish(api: Api, **body: Any) -> str:
    status, data = await api.publish(**body)
    assert status == 202, data
    return str(data["id"])


async def backdated(api: Api, when: datetime, **body: Any) -> str:
    """Publish an alert as if it had been published at `when`."""
    alert = AlertIn.model_validate({"topic": "env.heavy-pollution", "headline": "旧预警", **body})
    row, _ = await publish_alert(api.service.store, alert, None, now=when.timestamp())
    return row.id


async def get_html(api: Api, path: str, status: int = 200) -> str:
    response = await api.client.get(path)
    assert response.status == status, await response.text()
    assert response.content_type == "text/html"
    return await response.text()


async def get_json(api: Api, path: str, status: int = 200) -> Any:
    response = await api.client.get(path)
    assert response.status == status, await response.text()
    return await response.json()


async def get_feed(api: Api, path: str) -> ET.Element:
    response = await api.client.get(path)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    return ET.fromstring(await response.read())  # noqa: S314 - our own feed, parsed to check it


def result_list(page: str) -> str:
    """The result list of a /disclosures page (so that the filter form's option labels do not count)."""
    found = re.search(r'<ol class="results">(.*?)</ol>', page, re.S)
    return found.group(1) if found else ""


def entry_titles(feed: ET.Element) -> list[str]:
    return [e.findtext(f"{ATOM}title") or "" for e in feed.findall(f"{ATOM}entry")]
