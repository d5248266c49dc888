"""The CAP Atom feed's entries: public Actual alerts only, each linking to its CAP document."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime

import defusedxml.ElementTree as SafeET

from notifier.cap import CAP_MEDIA_TYPE, CAP_NS, CapStatus, cap_feed_entry, entry_element
from notifier.cap.feed import ATOM_NS, FeedLink
from tests.cap.test_render import NAMES, envelope, row

CAP_URL = "https://notify.changzhi.gov.cn/disclosures/3f2a/cap"
PAGE_URL = "https://notify.changzhi.gov.cn/disclosures/3f2a"


def test_a_public_actual_alert_has_an_entry_linking_to_its_cap() -> None:
    """The entry's id is the CAP URL; an application/cap+xml link points there and a text/html one to the page."""
    entry = cap_feed_entry(row(), envelope(), NAMES, cap_url=CAP_URL, page_url=PAGE_URL)
    assert entry is not None
    assert entry.id == CAP_URL and entry.title == "长治市发布重污染天气橙色预警" and entry.author == "市环保局"
    assert entry.links == (FeedLink("alternate", CAP_MEDIA_TYPE, CAP_URL), FeedLink("related", "text/html", PAGE_URL))
    assert dict(entry.cap) == {"event": "重污染天气预警", "status": "Actual", "msgType": "Alert",
                               "urgency": "Immediate", "severity": "Severe", "certainty": "Likely",
                               "expires": "2026-11-28T18:00:00+08:00", "areaDesc": "城区；郊区"}
    assert entry.geocodes == (("GB/T 2260", "140402"), ("GB/T 2260", "140411"))


def test_alerts_kept_out_of_the_public_column_have_no_entry() -> None:
    """public = false: no entry."""
    assert cap_feed_entry(row(public=False), envelope(), NAMES, cap_url=CAP_URL, page_url=PAGE_URL) is None


def test_exercises_and_tests_have_no_entry() -> None:
    """Only Actual alerts reach the public: Exercise and Test have no entry."""
    for status in (CapStatus.EXERCISE, CapStatus.TEST):
        assert cap_feed_entry(row(), envelope(status=status), NAMES, cap_url=CAP_URL, page_url=PAGE_URL) is None


def test_an_entry_writes_into_an_atom_feed_with_cap_elements() -> None:
    """entry_element appends an Atom entry carrying cap: elements in the CAP 1.2 namespace."""
    entry = cap_feed_entry(row(target_regions=[]), envelope(), NAMES, cap_url=CAP_URL, page_url=PAGE_URL,
                           updated=datetime.fromisoformat("2026-11-27T09:30:00+08:00"))
    assert entry is not None
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    entry_element(feed, entry)
    parsed = SafeET.fromstring(ET.tostring(feed, encoding="utf-8"))
    node = parsed.find(f"{{{ATOM_NS}}}entry")
    assert node is not None
    assert node.findtext(f"{{{ATOM_NS}}}updated") == "2026-11-27T09:30:00+08:00"
    assert node.findtext(f"{{{ATOM_NS}}}published") == "2026-11-27T08:00:00+08:00"
    link = node.find(f"{{{ATOM_NS}}}link[@type='{CAP_MEDIA_TYPE}']")
    assert link is not None and link.get("href") == CAP_URL
    assert node.findtext(f"{{{CAP_NS}}}severity") == "Severe"
    assert node.findtext(f"{{{CAP_NS}}}areaDesc") == "全部区域" and node.find(f"{{{CAP_NS}}}geocode") is None
