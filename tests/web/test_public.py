"""The public disclosure column: /disclosures (search, filters, paging, JSON), /disclosures/{id}, the Atom feeds
and /catalogue — no key needed, nothing non-public or about subscribers ever shown, publisher text escaped."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from notifier.rendering import LOCAL_TZ
from notifier.schedule import from_stored, schedule_words
from tests.web.conftest import MOBILE, MOBILE_DIGITS, Api
from tests.web.public_support import ATOM, backdated, entry_titles, get_feed, get_html, get_json, publish, result_list

pytestmark = pytest.mark.both_backends

# ---------------------------------------------------------------- the list


async def test_list_shows_public_alerts_and_hides_non_public(api: Api) -> None:
    """/disclosures lists public alerts without a key; an alert published with public=false appears nowhere."""
    await publish(api, headline="公开的重污染预警")
    hidden = await publish(api, headline="内部演练通知", public=False)
    page = await get_html(api, "/disclosures")
    assert "公开的重污染预警" in result_list(page)
    assert "内部演练通知" not in page
    listing = await get_json(api, "/disclosures.json")
    assert [item["headline"] for item in listing["items"]] == ["公开的重污染预警"]
    assert "内部演练通知" not in entry_titles(await get_feed(api, "/disclosures/feed.atom"))
    assert "内部演练通知" not in entry_titles(await get_feed(api, "/disclosures/env.heavy-pollution/feed.atom"))
    await get_html(api, f"/disclosures/{hidden}", status=404)
    await get_json(api, f"/disclosures/{hidden}?format=json", status=404)


async def test_list_is_newest_first(api: Api) -> None:
    """Disclosures are listed newest first."""
    for n in range(3):
        await publish(api, headline=f"第{n}号预警")
    results = result_list(await get_html(api, "/disclosures"))
    assert results.index("第2号预警") < results.index("第1号预警") < results.index("第0号预警")


async def test_scheduled_alert_is_not_public_before_it_goes_out(api: Api) -> None:
    """An alert scheduled for later is neither listed nor reachable by its link until its time."""
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    alert_id = await publish(api, headline="明日预约发布", scheduled_at=later)
    assert "明日预约发布" not in await get_html(api, "/disclosures")
    await get_html(api, f"/disclosures/{alert_id}", status=404)


async def test_updates_and_cancels_are_not_listed_as_disclosures(api: Api) -> None:
    """The list shows alerts; their updates appear as links under them, not as items of their own."""
    original = await publish(api, headline="原始预警")
    await publish(api, headline="预警范围调整", msg_type="update", references=original)
    listing = await get_json(api, "/disclosures.json")
    assert [item["headline"] for item in listing["items"]] == ["原始预警"]
    assert listing["items"][0]["status"] == "updated"
    results = result_list(await get_html(api, "/disclosures"))
    assert "更新通知：预警范围调整" in results and "已更新" in results


async def test_search_matches_headline_body_and_instruction(api: Api) -> None:
    """`q` finds words in the headline, body or instruction; every word must occur."""
    await publish(api, headline="橙色预警", body="启动应急减排措施", instruction="减少户外活动")
    await publish(api, headline="黄色预警", body="加强道路保洁")
    for q, expected in (("橙色", ["橙色预警"]), ("减排", ["橙色预警"]), ("户外", ["橙色预警"]),
                        ("预警 保洁", ["黄色预警"]), ("预警", ["黄色预警", "橙色预警"]), ("不存在", [])):
        listing = await get_json(api, f"/disclosures.json?q={q}")
        assert [i["headline"] for i in listing["items"]] == expected, q
        assert listing["total"] == len(expected)


async def test_search_treats_wildcards_literally(api: Api) -> None:
    """`%` and `_` in a search are the characters themselves, not SQL wildcards."""
    await publish(api, headline="PM2.5 浓度上升 50%")
    await publish(api, headline="普通预警 air_quality")
    await publish(api, headline="另一条预警")
    assert [i["headline"] for i in (await get_json(api, "/disclosures.json?q=%25"))["items"]] == ["PM2.5 浓度上升 50%"]
    assert [i["headline"] for i in (await get_json(api, "/disclosures.json?q=_"))["items"]] == ["普通预警 air_quality"]
    assert (await get_json(api, "/disclosures.json?q=AIR_QUALITY"))["total"] == 1


async def test_filter_by_topic_and_domain(api: Api) -> None:
    """`topic` keeps one topic; `domain` keeps every topic of a domain."""
    await publish(api, topic="env.heavy-pollution", headline="污染预警")
    await publish(api, topic="env.air-forecast", headline="空气质量预报")
    await publish(api, topic="transit.fare-change", headline="公交票价调整")
    by_topic = await get_json(api, "/disclosures.json?topic=env.air-forecast")
    assert [i["headline"] for i in by_topic["items"]] == ["空气质量预报"]
    by_domain = await get_json(api, "/disclosures.json?domain=environment")
    assert {i["headline"] for i in by_domain["items"]} == {"污染预警", "空气质量预报"}
    assert "公交票价调整" in result_list(await get_html(api, "/disclosures?domain=transit"))
    assert "污染预警" not in result_list(await get_html(api, "/disclosures?domain=transit"))


async def test_filter_by_district_includes_citywide(api: Api) -> None:
    """`region` keeps alerts aimed at that district and those aimed at the whole city."""
    await publish(api, headline="城区预警", regions=["140402"])
    await publish(api, headline="郊区与沁县预警", regions=["140411", "140430"])
    await publish(api, headline="全市预警")
    listing = await get_json(api, "/disclosures.json?region=140430")
    assert {i["headline"] for i in listing["items"]} == {"郊区与沁县预警", "全市预警"}
    item = next(i for i in listing["items"] if i["headline"] == "郊区与沁县预警")
    assert item["regions"] == [{"code": "140411", "name": "郊区"}, {"code": "140430", "name": "沁县"}]


async def test_filter_by_level_and_severity(api: Api) -> None:
    """`level` keeps one warning colour; `severity` one severity."""
    await publish(api, headline="红色预警", level="red", severity="extreme")
    await publish(api, headline="黄色预警", level="yellow", severity="moderate")
    await publish(api, headline="无级别通知", severity="minor")
    assert [i["headline"] for i in (await get_json(api, "/disclosures.json?level=red"))["items"]] == ["红色预警"]
    assert [i["headline"] for i in (await get_json(api, "/disclosures.json?severity=minor"))["items"]] == ["无级别通知"]
    assert "红色预警" not in result_list(await get_html(api, "/disclosures?level=yellow"))


async def test_filter_by_date_range_in_local_days(api: Api) -> None:
    """`from` and `to` are whole days in Asia/Shanghai, both included."""
    day = datetime(2026, 3, 10, tzinfo=LOCAL_TZ)
    await backdated(api, day - timedelta(minutes=1), headline="九日深夜")
    await backdated(api, day + timedelta(hours=8), headline="十日上午")
    await backdated(api, day + timedelta(days=1, hours=23, minutes=59), headline="十一日深夜")
    await backdated(api, day + timedelta(days=2), headline="十二日零点")
    listing = await get_json(api, "/disclosures.json?from=2026-03-10&to=2026-03-11")
    assert [i["headline"] for i in listing["items"]] == ["十一日深夜", "十日上午"]
    assert [i["headline"] for i in (await get_json(api, "/disclosures.json?to=2026-03-09"))["items"]] == ["九日深夜"]


async def test_empty_form_fields_are_ignored(api: Api) -> None:
    """The plain form sends every field, empty ones included; they do not filter."""
    await publish(api, headline="任意预警")
    page = await get_html(api, "/disclosures?q=&topic=&domain=&region=&level=&severity=&from=&to=")
    assert "任意预警" in result_list(page)


async def test_invalid_filters_are_reported(api: Api) -> None:
    """A bad filter gives the page with a message naming the field (422), or a problem for JSON."""
    page = await get_html(api, "/disclosures?region=abc&from=2026-02-30", status=422)
    assert 'role="alert"' in page and "region" in page and "from" in page
    problem = await get_json(api, "/disclosures.json?level=purple", status=422)
    assert [e["field"] for e in problem["errors"]] == ["level"]
    problem = await get_json(api, "/disclosures.json?from=2026-03-02&to=2026-03-01", status=422)
    assert problem["status"] == 422


async def test_list_is_paged(api: Api) -> None:
    """Twenty a page, with next/previous links that keep the filters."""
    for n in range(23):
        await publish(api, headline=f"分页预警{n:02d}")
    first = await get_json(api, "/disclosures.json?q=分页")
    assert (first["total"], first["pages"], len(first["items"])) == (23, 2, 20)
    assert first["next"].endswith("/disclosures.json?q=%E5%88%86%E9%A1%B5&page=2")
    second = await get_json(api, "/disclosures.json?q=分页&page=2")
    assert [i["headline"] for i in second["items"]] == ["分页预警02", "分页预警01", "分页预警00"]
    assert second["next"] is None
    page = await get_html(api, "/disclosures?q=分页")
    assert 'rel="next" href="/disclosures?q=%E5%88%86%E9%A1%B5&amp;page=2"' in page
    assert "第 1 / 2 页" in page


async def test_list_page_is_accessible_without_script(api: Api) -> None:
    """The list is a plain GET form with a label for every field, an ordered list of results and no script."""
    await publish(api, headline="可访问性检查")
    page = await get_html(api, "/disclosures")
    assert '<form method="get" action="/disclosures"' in page and "<script" not in page
    for field in ("q", "topic", "domain", "region", "level", "severity", "from", "to"):
        assert f'<label for="f-{field}">' in page and f'id="f-{field}" name="{field}"' in page
    assert '<html lang="zh-CN">' in page and 'name="viewport"' in page
    assert '<ol class="results">' in page


# ---------------------------------------------------------------- one disclosure


async def test_detail_shows_text_department_time_places_and_supervision(api: Api) -> None:
    """The permanent page shows the text, department, local time, level, districts, groups and the topic's
    supervision channel."""
    alert_id = await publish(api, headline="重污染天气橙色预警", body="第一段。\n第二段。",
                              instruction="减少户外活动。", level="orange", severity="severe",
                              regions=["140402"], groups=["elderly", "child"])
    page = await get_html(api, f"/disclosures/{alert_id}")
    for text in ("重污染天气橙色预警", "<p>第一段。</p>", "<p>第二段。</p>", "减少户外活动。", "市环保局",
                 "橙色预警", "严重", "城区", "老年人、儿童", "12369环保举报热线", "有效"):
        assert text in page, text
    row = await api.service.store.get_alert(alert_id)
    assert row is not None
    local = datetime.fromtimestamp(row.created_at, LOCAL_TZ)
    assert local.strftime("%Y年%m月%d日 %H:%M") in page
    assert f'datetime="{local.isoformat(timespec="seconds")}"' in page
    assert "targeted" not in page


async def test_detail_without_regions_or_groups_says_citywide(api: Api) -> None:
    """An alert aimed at nobody in particular is shown as for the whole city and everyone."""
    alert_id = await publish(api, headline="全市通知")
    page = await get_html(api, f"/disclosures/{alert_id}")
    assert "全市" in page and "全体居民" in page


async def test_cancelled_alert_shows_cancelled_with_link_to_the_notice(api: Api) -> None:
    """An alert with a cancel notice is shown as cancelled, linking to the notice, which links back."""
    original = await publish(api, headline="橙色预警", level="orange")
    notice = await publish(api, headline="解除橙色预警", msg_type="cancel", references=original)
    page = await get_html(api, f"/disclosures/{original}")
    assert 'class="cancelled" role="status"' in page and "已撤销" in page
    assert f'href="/disclosures/{notice}"' in page
    notice_page = await get_html(api, f"/disclosures/{notice}")
    assert "撤销通知" in notice_page and f'href="/disclosures/{original}"' in notice_page
    data = await get_json(api, f"/disclosures/{original}?format=json")
    assert data["status"] == "cancelled"
    assert [(n["id"], n["msg_type"]) for n in data["notices"]] == [(notice, "cancel")]


async def test_alert_cancelled_through_the_api_shows_cancelled(api: Api) -> None:
    """An alert cancelled with POST /v1/alerts/{id}/cancel (nobody had received it: no notice) shows cancelled."""
    alert_id = await publish(api, headline="取消的通知")
    response = await api.client.post(f"/v1/alerts/{alert_id}/cancel", headers=api.auth())
    assert response.status == 200
    page = await get_html(api, f"/disclosures/{alert_id}")
    assert "本信息已于" in page and "撤销" in page
    assert (await get_json(api, f"/disclosures/{alert_id}?format=json"))["status"] == "cancelled"
    listing = await get_json(api, "/disclosures.json")
    assert listing["items"][0]["status"] == "cancelled"


async def test_updated_alert_links_its_update(api: Api) -> None:
    """An alert with an update notice is shown as updated and links to it."""
    original = await publish(api, headline="预警发布")
    update = await publish(api, headline="预警范围扩大", msg_type="update", references=original)
    page = await get_html(api, f"/disclosures/{original}")
    assert "已更新" in page and f'href="/disclosures/{update}"' in page and "更新通知：预警范围扩大" in page


async def test_non_public_follow_up_is_not_linked(api: Api) -> None:
    """A follow-up published with public=false is neither linked nor counted in the status."""
    original = await publish(api, headline="公开预警")
    hidden = await publish(api, headline="内部更新", msg_type="update", references=original, public=False)
    page = await get_html(api, f"/disclosures/{original}")
    assert hidden not in page and "内部更新" not in page
    assert (await get_json(api, f"/disclosures/{original}?format=json"))["status"] == "active"


async def test_expired_alert_shows_expired(api: Api) -> None:
    """An alert past its expiry is shown as expired."""
    published = datetime.now(UTC) - timedelta(hours=3)
    alert_id = await backdated(api, published, headline="过期预警",
                                expires_at=(published + timedelta(hours=1)).isoformat())
    assert (await get_json(api, f"/disclosures/{alert_id}?format=json"))["status"] == "expired"
    assert "已过期" in await get_html(api, f"/disclosures/{alert_id}")


async def test_unknown_id_is_a_404_page(api: Api) -> None:
    """An unknown id, or one that cannot be an id, gives the public 404 page (or a problem for JSON)."""
    page = await get_html(api, "/disclosures/0123456789abcdef0123456789abcdef", status=404)
    assert "找不到该信息" in page
    await get_html(api, "/disclosures/%3Cscript%3E", status=404)
    problem = await get_json(api, "/disclosures/0123456789abcdef0123456789abcdef?format=json", status=404)
    assert problem["status"] == 404


# ---------------------------------------------------------------- JSON


async def test_json_shape(api: Api) -> None:
    """/disclosures.json (and ?format=json) gives items, total, page, pages, per_page and next; each item has its
    permanent URL, names, department and supervision, and nothing about subscribers."""
    await api.subscriber()
    alert_id = await publish(api, headline="JSON检查", regions=["140402"], groups=["elderly"], level="yellow")
    listing = await get_json(api, "/disclosures.json")
    assert listing == await get_json(api, "/disclosures?format=json")
    assert set(listing) == {"items", "total", "page", "pages", "per_page", "next"}
    item = listing["items"][0]
    base = api.service.settings.server.base_url()
    assert item["url"] == f"{base}/disclosures/{alert_id}"
    assert item["department"] == "市环保局" and item["topic_name"] == "重污染天气预警"
    assert item["groups"] == [{"code": "elderly", "name": "老年人"}]
    assert item["supervision"] and item["status"] == "active" and item["level"] == "yellow"
    assert not {"targeted", "publisher", "idempotency_key", "data", "public"} & set(item)
    assert await get_json(api, f"/disclosures/{alert_id}?format=json") == {**item, "refers_to": None}


async def test_public_pages_show_nothing_about_subscribers(api: Api) -> None:
    """No public page or feed mentions a subscriber's contact or how many were targeted."""
    await api.subscriber()
    alert_id = await publish(api, headline="隐私检查")
    for path in ("/disclosures", f"/disclosures/{alert_id}", "/disclosures.json", "/disclosures/feed.atom",
                 "/catalogue"):
        text = await (await api.client.get(path)).text()
        assert MOBILE not in text and MOBILE_DIGITS not in text and "example.org" not in text, path


# ---------------------------------------------------------------- the catalogue


async def test_catalogue_lists_every_topic_with_its_department(api: Api) -> None:
    """/catalogue lists every stored topic by domain with department, method, schedule and supervision."""
    page = await get_html(api, "/catalogue")
    topics = await api.service.store.list_topics()
    assert len(topics) > 10
    for topic in topics:
        row = re.search(rf'<tr id="topic-{re.escape(topic["key"])}">(.*?)</tr>', page, re.S)
        assert row is not None, topic["key"]
        assert topic["name"] in row.group(1) and topic["department"] in row.group(1)
        for field in ("method", "supervision"):
            if topic[field]:
                assert topic[field] in row.group(1), (topic["key"], field)
        words = schedule_words(from_stored(topic["schedule"]), "zh-CN")
        if words:
            assert words in row.group(1), (topic["key"], "schedule")
    assert "环境保护" in page and "公共交通" in page and "<caption>" in page


async def test_catalogue_includes_topics_added_through_the_api(api: Api) -> None:
    """A topic created with POST /v1/topics appears in the catalogue and its JSON form."""
    body = {"key": "env.noise", "name": "噪声污染投诉处理", "domain": "environment", "department": "市环保局",
            "channels": ["sms"], "supervision": "12369环保举报热线"}
    response = await api.client.post("/v1/topics", json=body, headers=api.auth())
    assert response.status == 201
    assert "噪声污染投诉处理" in await get_html(api, "/catalogue")
    data = await get_json(api, "/catalogue?format=json")
    environment = next(d for d in data["domains"] if d["code"] == "environment")
    noise = next(t for t in environment["topics"] if t["key"] == "env.noise")
    assert noise["channel_names"] == ["短信"] and noise["feed"] == "/disclosures/env.noise/feed.atom"


# ---------------------------------------------------------------- language, escaping, caching


async def test_lang_en_switches_labels(api: Api) -> None:
    """?lang=en gives English labels and names, and keeps English in the links."""
    alert_id = await publish(api, headline="预警", regions=["140402"], level="orange")
    page = await get_html(api, "/disclosures?lang=en")
    assert '<html lang="en">' in page and "Find disclosures" in page and "District" in page
    assert f'href="/disclosures/{alert_id}?lang=en"' in page
    detail = await get_html(api, f"/disclosures/{alert_id}?lang=en")
    for text in ("Responsible department", "Changzhi Environmental Protection Bureau", "Chengqu",
                 "Orange warning", "Complaints and supervision"):
        assert text in detail, text
    assert "Disclosure catalogue" in await get_html(api, "/catalogue?lang=en")
    chinese = await get_html(api, f"/disclosures/{alert_id}")
    assert "责任部门" in chinese and f"/disclosures/{alert_id}?lang=en" in chinese  # the switch link


async def test_publisher_text_is_shown_literally(api: Api) -> None:
    """Markup and template syntax in a publisher's text are shown as text, in pages and feeds alike."""
    headline = "<script>alert(1)</script> {{ 7*7 }}"
    alert_id = await publish(api, headline=headline, body="<b>粗体</b> {% if 1 %}x{% endif %}",
                              instruction="\x07铃声 & 引号\"'")
    for path in (f"/disclosures/{alert_id}", "/disclosures"):
        page = await get_html(api, path)
        assert "<script>alert(1)</script>" not in page and "<b>粗体</b>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt; {{ 7*7 }}" in page
    assert "{% if 1 %}x{% endif %}" in await get_html(api, f"/disclosures/{alert_id}")
    entry = (await get_feed(api, "/disclosures/feed.atom")).find(f"{ATOM}entry")
    assert entry is not None and entry.findtext(f"{ATOM}title") == headline
    assert "铃声 & 引号\"'" in (entry.findtext(f"{ATOM}content") or "")


async def test_pages_carry_caching_and_security_headers(api: Api) -> None:
    """Public pages are cacheable for a minute, carry an ETag, and forbid scripts by policy."""
    alert_id = await publish(api, headline="头部检查")
    for path in ("/disclosures", f"/disclosures/{alert_id}", "/catalogue", "/disclosures.json"):
        response = await api.client.get(path)
        assert response.headers["Cache-Control"] == "public, max-age=60", path
        again = await api.client.get(path, headers={"If-None-Match": response.headers["ETag"]})
        assert again.status == 304, path
    page = await api.client.get(f"/disclosures/{alert_id}")
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy and "'unsafe-inline'" not in policy
    assert "Last-Modified" in page.headers
    missing = await api.client.get("/disclosures/0123456789abcdef0123456789abcdef")
    assert missing.headers["Cache-Control"] == "no-store"


async def test_public_routes_are_documented(api: Api) -> None:
    """Every public route is in /openapi.json, needing no key."""
    paths = (await get_json(api, "/openapi.json"))["paths"]
    for path in ("/disclosures", "/disclosures.json", "/disclosures/{id}", "/disclosures/feed.atom",
                 "/disclosures/{topic}/feed.atom", "/catalogue"):
        assert paths[path]["get"]["security"] == [], path

