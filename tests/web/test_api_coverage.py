"""Population uploads, period aggregates, breakdowns and CSV exports over the HTTP API."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import pytest
from aiohttp import ClientResponse

from notifier.models import AlertIn, Role
from notifier.publish import publish_alert
from tests.web.conftest import MOBILE, MOBILE_DIGITS, Api

pytestmark = pytest.mark.both_backends

CHENGQU, JIAOQU = "140402", "140411"
ROWS = [{"region": CHENGQU, "group": None, "residents": 480_000},
        {"region": CHENGQU, "group": "elderly", "residents": 41_200},
        {"region": JIAOQU, "group": "elderly", "residents": 38_500}]
BOM = "\ufeff"


async def _put(api: Api, body: Any = None, *, data: bytes | None = None, content_type: str = "application/json",
               role: Role = Role.ADMIN) -> ClientResponse:
    headers = {**api.auth(role), "Content-Type": content_type}
    if data is None:
        return await api.client.put("/v1/population", json=body, headers=headers)
    return await api.client.put("/v1/population", data=data, headers=headers)


async def _table(api: Api) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await (await api.client.get("/v1/population", headers=api.auth())).json())["rows"]
    return rows


async def _csv(response: ClientResponse) -> list[dict[str, str]]:
    """The rows of a CSV answer, keyed by field name (the text before the first space of each header cell)."""
    assert response.status == 200, await response.text()
    assert response.content_type == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    text = (await response.read()).decode("utf-8")
    assert text.startswith(BOM)
    reader = csv.reader(io.StringIO(text.removeprefix(BOM)))
    keys = [cell.split(" ", 1)[0] for cell in next(reader)]
    return [dict(zip(keys, row, strict=True)) for row in reader]


async def _alert_to_elderly(api: Api) -> str:
    """One elderly subscriber of 城区 and an alert to the elderly of 城区 and 郊区."""
    await api.subscriber()
    _, accepted = await api.publish(regions=[CHENGQU, JIAOQU], groups=["elderly"], policy="all")
    alert_id: str = accepted["id"]
    return alert_id


# ---------------------------------------------------------------- population


async def test_population_rows_are_stored_and_read_back(api: Api) -> None:
    """PUT of JSON rows answers the stored table, which GET returns too."""
    response = await _put(api, {"rows": ROWS})
    assert response.status == 200
    assert (await response.json())["rows"] == await _table(api)
    assert {(r["region"], r["group"], r["residents"]) for r in await _table(api)} == {
        (CHENGQU, None, 480_000), (CHENGQU, "elderly", 41_200), (JIAOQU, "elderly", 38_500)}


async def test_population_bare_array_is_accepted(api: Api) -> None:
    """A bare JSON array of rows works like {"rows": [...]}."""
    assert (await _put(api, ROWS)).status == 200
    assert len(await _table(api)) == 3


async def test_population_csv_upload_with_bom(api: Api) -> None:
    """A CSV file (UTF-8 with BOM) with the header region,group,residents replaces the table."""
    data = f"{BOM}region,group,residents\r\n{CHENGQU},,480000\r\n{CHENGQU},elderly,41200\r\n".encode()
    response = await _put(api, data=data, content_type="text/csv")
    assert response.status == 200, await response.text()
    assert {(r["group"], r["residents"]) for r in await _table(api)} == {(None, 480_000), ("elderly", 41_200)}


async def test_bad_population_rows_are_422_and_nothing_is_stored(api: Api) -> None:
    """Unknown region, unknown group, a negative count and a repeat are named by row; the old table stays."""
    await _put(api, {"rows": ROWS})
    response = await _put(api, {"rows": [
        {"region": CHENGQU, "group": "elderly", "residents": 1},
        {"region": "999999", "group": None, "residents": 1},
        {"region": CHENGQU, "group": "martians", "residents": 1},
        {"region": JIAOQU, "group": "elderly", "residents": -3},
        {"region": CHENGQU, "group": "elderly", "residents": 2}]})
    assert response.status == 422
    problem = await response.json()
    assert [e["field"] for e in problem["errors"]] == ["rows.1.region", "rows.2.group", "rows.3.residents", "rows.4"]
    assert {r["residents"] for r in await _table(api)} == {480_000, 41_200, 38_500}


async def test_bad_csv_row_is_422_naming_row_and_line(api: Api) -> None:
    """A CSV row with a non-integer count is refused with its field path and CSV line; nothing is stored."""
    data = b"region,group,residents\n140402,,480000\n140402,elderly,41200.5\n"
    response = await _put(api, data=data, content_type="text/csv")
    assert response.status == 422
    (error,) = (await response.json())["errors"]
    assert error["field"] == "rows.1.residents" and "CSV line 3" in error["message"]
    assert await _table(api) == []


async def test_population_upload_is_for_admins(api: Api) -> None:
    """A viewer may read the table but not replace it."""
    assert (await _put(api, {"rows": ROWS}, role=Role.VIEWER)).status == 403
    response = await api.client.get("/v1/population", headers=api.auth(Role.VIEWER))
    assert response.status == 200


async def test_population_in_another_media_type_is_415(api: Api) -> None:
    """Only JSON and CSV bodies are read."""
    response = await _put(api, data=b"<rows/>", content_type="application/xml")
    assert response.status == 415


async def test_population_exports_as_csv(api: Api) -> None:
    """The table as CSV names each region and group, and the total row reads 全部人群."""
    await _put(api, {"rows": ROWS})
    rows = await _csv(await api.client.get("/v1/population?format=csv", headers=api.auth()))
    assert rows[0] == {"region": CHENGQU, "region_name": "城区", "group": "", "group_name": "全部人群",
                       "residents": "480000"}
    assert {r["group_name"] for r in rows[1:]} == {"老年人"}


async def test_exported_population_csv_can_be_uploaded_again(api: Api) -> None:
    """The export's bilingual header is understood by the upload."""
    await _put(api, {"rows": ROWS})
    exported = await (await api.client.get("/v1/population?format=csv", headers=api.auth())).read()
    await _put(api, {"rows": []})
    assert (await _put(api, data=exported, content_type="text/csv")).status == 200
    assert len(await _table(api)) == 3


async def test_alert_coverage_carries_population(api: Api) -> None:
    """Of the 41,200 + 38,500 elderly residents the alert was meant for, none was reached yet: rate 0."""
    await _put(api, {"rows": ROWS})
    alert_id = await _alert_to_elderly(api)
    coverage = await (await api.client.get(f"/v1/alerts/{alert_id}/coverage", headers=api.auth())).json()
    assert (coverage["population"], coverage["population_rate"]) == (79_700, 0.0)
    assert coverage["by_region"][CHENGQU]["population"] == 41_200


# ---------------------------------------------------------------- CSV of the per-alert tables


async def test_coverage_cells_export_as_csv_with_region_names(api: Api) -> None:
    """?format=csv gives the region × group cells with names, figures and population."""
    await _put(api, {"rows": ROWS})
    alert_id = await _alert_to_elderly(api)
    rows = await _csv(await api.client.get(f"/v1/alerts/{alert_id}/coverage?format=csv", headers=api.auth()))
    assert rows == [{"region": CHENGQU, "region_name": "城区", "group": "elderly", "group_name": "老年人",
                     "targeted": "1", "reached": "0", "coverage_rate": "0", "population": "41200",
                     "population_rate": "0", "suppressed": "false"}]


async def test_accept_text_csv_works_like_format_csv(api: Api) -> None:
    """An Accept header preferring text/csv gets the CSV file."""
    alert_id = await _alert_to_elderly(api)
    response = await api.client.get(f"/v1/alerts/{alert_id}/coverage",
                                    headers={**api.auth(), "Accept": "text/csv, application/json;q=0.5"})
    assert len(await _csv(response)) == 1


async def test_viewer_csv_shows_hidden_cells_without_figures(api: Api) -> None:
    """For a viewer, the one-subscriber cell of 郊区 and the cell of 城区 (6) that would give it away have empty
    figures, no population and suppressed true."""
    await _put(api, {"rows": ROWS})
    for _ in range(6):
        await api.subscriber(contacts={"email": "a@example.org"}, region=CHENGQU,
                             subscriptions=[{"topic": "env.heavy-pollution", "channels": ["email"]}])
    await api.subscriber(contacts={"email": "b@example.org"}, region=JIAOQU,
                         subscriptions=[{"topic": "env.heavy-pollution", "channels": ["email"]}])
    _, accepted = await api.publish(regions=[CHENGQU, JIAOQU], groups=["elderly"])
    rows = await _csv(await api.client.get(f"/v1/alerts/{accepted['id']}/coverage?format=csv",
                                           headers=api.auth(Role.VIEWER)))
    assert [(r["region"], r["targeted"], r["reached"], r["population"], r["suppressed"]) for r in rows] == [
        (CHENGQU, "", "", "", "true"), (JIAOQU, "", "", "", "true")]


async def test_breakdown_rows_by_region_group_and_channel(api: Api) -> None:
    """The breakdown has one row per channel of the cell, in JSON and in CSV."""
    alert_id = await _alert_to_elderly(api)
    url = f"/v1/alerts/{alert_id}/coverage/breakdown"
    body = await (await api.client.get(url, headers=api.auth())).json()
    assert [(r["region"], r["group"], r["channel"], r["targeted"]) for r in body["rows"]] == [
        (CHENGQU, "elderly", "email", 1), (CHENGQU, "elderly", "sms", 1)]
    rows = await _csv(await api.client.get(url, params={"format": "csv"}, headers=api.auth()))
    assert [(r["region_name"], r["channel_name"]) for r in rows] == [("城区", "电子邮件"), ("城区", "短信")]


async def test_viewer_breakdown_is_suppressed(api: Api) -> None:
    """For a viewer, rows of fewer than 5 targeted carry suppressed: true and null counts."""
    alert_id = await _alert_to_elderly(api)
    body = await (await api.client.get(f"/v1/alerts/{alert_id}/coverage/breakdown",
                                       headers=api.auth(Role.VIEWER))).json()
    assert all(r["suppressed"] is True and r["targeted"] is None for r in body["rows"])


async def test_deliveries_export_every_row_with_masked_contacts(api: Api) -> None:
    """The deliveries CSV holds every delivery, the mobile masked, never the raw number, with the region name."""
    alert_id = await _alert_to_elderly(api)
    response = await api.client.get(f"/v1/alerts/{alert_id}/deliveries?format=csv&limit=1", headers=api.auth())
    rows = await _csv(response)
    assert sorted(r["channel"] for r in rows) == ["email", "sms"]
    sms = next(r for r in rows if r["channel"] == "sms")
    assert (sms["contact"], sms["region_name"]) == ("138****5678", "城区")
    text = (await response.read()).decode()
    assert MOBILE_DIGITS not in text and MOBILE not in text


async def test_unknown_format_is_422(api: Api) -> None:
    """format must be json or csv."""
    alert_id = await _alert_to_elderly(api)
    response = await api.client.get(f"/v1/alerts/{alert_id}/coverage?format=xlsx", headers=api.auth())
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["format"]


# ---------------------------------------------------------------- period aggregates


async def _two_periods(api: Api) -> None:
    """One alert now, to env.heavy-pollution; one forty days ago, to transit.fare-change."""
    await api.subscriber()
    await api.publish()
    await publish_alert(api.service.store, AlertIn(topic="transit.fare-change", headline="票价调整"), None,
                        now=time.time() - 40 * 86400)


async def test_period_coverage_by_topic_and_department(api: Api) -> None:
    """Without filters both alerts count, each under its topic and its department."""
    await _two_periods(api)
    body = await (await api.client.get("/v1/coverage", headers=api.auth(Role.PUBLISHER))).json()
    assert body["total"]["alerts"] == 2 and body["total"]["targeted"] == 1
    assert {k: v["alerts"] for k, v in body["by_topic"].items()} == {"env.heavy-pollution": 1,
                                                                     "transit.fare-change": 1}
    assert set(body["by_department"]) == {"市环保局", "市交通局"}
    assert set(body["total"]["unreachable"]) == {"no_contact", "all_failed", "pending", "expired", "cancelled"}


async def test_period_filter_leaves_out_an_older_alert(api: Api) -> None:
    """since a week ago (offset +08:00, the plus unencoded) the alert of forty days ago is not counted."""
    await _two_periods(api)
    since = time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(time.time() - 7 * 86400 + 8 * 3600))
    response = await api.client.get(f"/v1/coverage?since={since}", headers=api.auth())
    body = await response.json()
    assert response.status == 200, body
    assert list(body["by_topic"]) == ["env.heavy-pollution"] and body["total"]["alerts"] == 1


async def test_period_time_without_offset_is_422(api: Api) -> None:
    """since needs a time zone offset."""
    response = await api.client.get("/v1/coverage", params={"since": "2026-01-01T00:00:00"}, headers=api.auth())
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["since"]


async def test_period_coverage_exports_as_csv(api: Api) -> None:
    """The period CSV has a total row, then topics and departments, with names."""
    await _two_periods(api)
    rows = await _csv(await api.client.get("/v1/coverage", params={"format": "csv"}, headers=api.auth()))
    assert [(r["scope"], r["key"]) for r in rows] == [
        ("total", ""), ("topic", "env.heavy-pollution"), ("topic", "transit.fare-change"),
        ("department", "市交通局"), ("department", "市环保局")]
    assert rows[1]["name"] == "重污染天气预警" and rows[0]["alerts"] == "2"


async def test_viewer_period_csv_suppresses_small_entries(api: Api) -> None:
    """For a viewer, the two alerts of one target each are left out: every row is suppressed with empty figures
    and says how many alerts it left out."""
    await _two_periods(api)
    rows = await _csv(await api.client.get("/v1/coverage?format=csv", headers=api.auth(Role.VIEWER)))
    env = next(r for r in rows if r["key"] == "env.heavy-pollution")
    assert (env["targeted"], env["suppressed"], env["suppressed_alerts"]) == ("", "true", "1")
    assert (rows[0]["scope"], rows[0]["targeted"], rows[0]["suppressed_alerts"]) == ("total", "", "2")


# ---------------------------------------------------------------- the API describes it


async def test_new_routes_are_documented_with_csv(api: Api) -> None:
    """The OpenAPI document lists the new routes, CSV answers and the CSV population upload."""
    paths = (await (await api.client.get("/openapi.json")).json())["paths"]
    assert "text/csv" in paths["/v1/coverage"]["get"]["responses"]["200"]["content"]
    assert "text/csv" in paths["/v1/alerts/{id}/coverage/breakdown"]["get"]["responses"]["200"]["content"]
    assert "text/csv" in paths["/v1/alerts/{id}/deliveries"]["get"]["responses"]["200"]["content"]
    assert set(paths["/v1/population"]["put"]["requestBody"]["content"]) == {"application/json", "text/csv"}
