"""Proxies over the API and their own page: people with no contact of their own are added, shown masked to admins
and erased one by one; the proxy's page lists them in full with a confirm button each."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from notifier.coverage import alert_coverage
from notifier.fakes.webhook_receiver import RunningReceiver
from notifier.models import Role
from tests.conftest import settle
from tests.web.conftest import Api, admin_page

pytestmark = pytest.mark.both_backends

GRANNY = {"label": "3号楼2单元 王奶奶", "region": "140411", "groups": ["elderly"]}
GRANDPA = {"label": "7号楼 赵爷爷", "region": "140411", "groups": ["elderly"]}
_FORM = re.compile(r'<form method="post" action="(?P<action>[^"]+)">\s*<input type="hidden" name="page" '
                   r'value="(?P<page>[^"]+)">\s*<input type="hidden" name="nonce" value="(?P<nonce>[^"]+)">')


async def _proxy(api: Api, receiver: RunningReceiver, people: list[dict[str, Any]]) -> dict[str, Any]:
    return await api.subscriber(contacts={"webhook": receiver.url_for("/grid")}, role="proxy", assists=people,
                                groups=[], subscriptions=[{"topic": "env.heavy-pollution", "channels": ["webhook"]}])


async def test_a_proxys_people_are_shown_numbered_with_labels_masked(api: Api, receiver: RunningReceiver) -> None:
    """POST /v1/subscribers with role proxy answers the people numbered 1, 2 with their labels masked; no label
    appears in full in the answer or the list."""
    created = await _proxy(api, receiver, [GRANNY, GRANDPA])
    assert [(p["number"], p["label"]) for p in created["assists"]] == [(1, "3***"), (2, "7***")]
    listing = await api.client.get("/v1/subscribers", headers=api.auth())
    text = await listing.text()
    assert "王奶奶" not in text and "赵爷爷" not in text and '"role":"proxy"' in text.replace(" ", "")


async def test_people_need_a_proxy_and_known_places(api: Api) -> None:
    """assists without role proxy, or with an unknown district, is 422 naming the field; nothing is stored."""
    plain = await api.client.post("/v1/subscribers", headers=api.auth(), json={
        "contacts": {"email": "a@example.org"}, "region": "140402", "assists": [GRANNY]})
    unknown = await api.client.post("/v1/subscribers", headers=api.auth(), json={
        "contacts": {"email": "a@example.org"}, "region": "140402", "role": "proxy",
        "assists": [{**GRANNY, "region": "999999"}]})
    assert (plain.status, unknown.status) == (422, 422)
    assert "assists.0.region" in json.dumps(await unknown.json())
    assert await api.service.store.count_subscribers() == 0


async def test_people_are_added_after_the_last_number_and_erased_one_by_one(
        api: Api, receiver: RunningReceiver) -> None:
    """POST …/assists numbers the new person 2; DELETE …/assists/{id} erases them (204, then 404)."""
    proxy = await _proxy(api, receiver, [GRANNY])
    added = await api.client.post(f"/v1/subscribers/{proxy['id']}/assists", headers=api.auth(),
                                  json={"assists": [GRANDPA]})
    assert added.status == 201
    person = (await added.json())["assists"][0]
    assert (person["number"], person["region"]) == (2, "140411")
    path = f"/v1/subscribers/{proxy['id']}/assists/{person['id']}"
    assert (await api.client.delete(path, headers=api.auth())).status == 204
    assert (await api.client.delete(path, headers=api.auth())).status == 404
    record = await api.service.store.get_subscriber(proxy["id"])
    assert record is not None and [p.seq for p in record.assists] == [1]


async def test_people_cannot_be_added_to_someone_who_is_no_proxy(api: Api) -> None:
    """A subscriber without the proxy role has no list: 404."""
    plain = await api.subscriber()
    response = await api.client.post(f"/v1/subscribers/{plain['id']}/assists", headers=api.auth(),
                                     json={"assists": [GRANNY]})
    assert response.status == 404


async def _page(api: Api, receiver: RunningReceiver) -> tuple[str, str]:
    await _proxy(api, receiver, [GRANNY, GRANDPA])
    status, alert = await api.publish(regions=["140411"], groups=["elderly"])
    assert status == 202
    await settle(api.service)
    body = json.loads(receiver.requests_to("/grid")[0].body)
    return alert["id"], urlsplit(body["assisted_url"]).path


async def test_the_proxys_page_lists_everyone_in_full_with_a_confirm_button_each(
        api: Api, receiver: RunningReceiver) -> None:
    """The page from the proxy's message names each person by label and number, each with its own form."""
    _, page = await _page(api, receiver)
    response = await api.client.get(page)
    html = await response.text()
    assert response.status == 200
    assert "（1）3号楼2单元 王奶奶" in html.replace("(1) ", "（1）") and "赵爷爷" in html
    assert len(_FORM.findall(html)) == 2


async def test_confirming_from_the_page_goes_back_to_it_and_counts_the_person(
        api: Api, receiver: RunningReceiver) -> None:
    """The page's button confirms its person (303 back to the page, which then says told) and coverage counts
    them reached."""
    alert_id, page = await _page(api, receiver)
    form = _FORM.search(await (await api.client.get(page)).text())
    assert form is not None
    done = await api.client.post(form["action"], data={"page": form["page"], "nonce": form["nonce"]},
                                 allow_redirects=False)
    assert (done.status, done.headers["Location"]) == (303, page)
    assert len(_FORM.findall(await (await api.client.get(page)).text())) == 1
    assert (await alert_coverage(api.service.store, alert_id)).reached == 1


async def test_a_cross_site_form_confirms_nobody(api: Api, receiver: RunningReceiver) -> None:
    """A form posted from another site is refused (403) and changes nothing."""
    alert_id, page = await _page(api, receiver)
    form = _FORM.search(await (await api.client.get(page)).text())
    assert form is not None
    refused = await api.client.post(form["action"], data={"page": form["page"], "nonce": form["nonce"]},
                                    headers={"Sec-Fetch-Site": "cross-site"}, allow_redirects=False)
    assert refused.status == 403
    assert (await alert_coverage(api.service.store, alert_id)).reached == 0


async def test_a_tampered_page_link_is_not_found(api: Api, receiver: RunningReceiver) -> None:
    """A page link with a changed character shows the invalid-link page (404)."""
    _, page = await _page(api, receiver)
    assert (await api.client.get(page[:-2] + ("xx" if not page.endswith("xx") else "yy"))).status == 404


async def test_the_dashboard_lists_per_proxy_who_is_not_yet_told_masked(api: Api, receiver: RunningReceiver) -> None:
    """An alert's page shows, per proxy, the people not yet confirmed told, by number and masked label."""
    alert_id, page = await _page(api, receiver)
    form = _FORM.search(await (await api.client.get(page)).text())
    assert form is not None
    await api.client.post(form["action"], data={"page": form["page"], "nonce": form["nonce"]})
    html = await admin_page(api, f"/admin/alerts/{alert_id}")
    untold = html[html.index('id="table-untold"'):]
    assert "(2) 7***" in untold and "(1) 3***" not in untold
    assert "赵爷爷" not in html and "王奶奶" not in html


async def test_viewers_see_no_list_of_people(api: Api, receiver: RunningReceiver) -> None:
    """The viewer role sees no one's label, masked or not, on an alert's page."""
    alert_id, _ = await _page(api, receiver)
    html = await admin_page(api, f"/admin/alerts/{alert_id}", Role.VIEWER)
    assert 'id="table-untold"' not in html


async def test_an_office_imports_a_list_over_the_api(api: Api, receiver: RunningReceiver) -> None:
    """POST /v1/subscribers/import?assisted=true takes a CSV list: 200 with the report when every row is good, 422
    naming the row when one is not (and nothing is stored)."""
    proxy = await _proxy(api, receiver, [GRANNY])
    good = f"proxy,label,region,groups\n{proxy['id']},9号楼 周奶奶,城区,老年人\n".encode()
    bad = f"proxy,label,region,groups\n{proxy['id']},10号楼 吴爷爷,城西,\n".encode()
    headers = {**api.auth(), "Content-Type": "text/csv"}
    stored = await api.client.post("/v1/subscribers/import?assisted=true", data=good, headers=headers)
    refused = await api.client.post("/v1/subscribers/import?assisted=true", data=bad, headers=headers)
    assert (stored.status, (await stored.json())["stored"]) == (200, 1)
    assert refused.status == 422 and "rows.1.region" in json.dumps(await refused.json())
    record = await api.service.store.get_subscriber(proxy["id"])
    assert record is not None and [p.seq for p in record.assists] == [1, 2]


async def test_the_breakdown_export_names_the_proxy_channel(api: Api, receiver: RunningReceiver) -> None:
    """The region × group × channel CSV says proxy with its official words (网格员转告) beside the code."""
    alert_id, _ = await _page(api, receiver)
    response = await api.client.get(f"/v1/alerts/{alert_id}/coverage/breakdown?format=csv", headers=api.auth())
    assert response.status == 200
    assert ",proxy,网格员转告," in await response.text()
