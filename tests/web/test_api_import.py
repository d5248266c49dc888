"""POST /v1/subscribers/import: a registry file in, a report out; 422 with every rejected row and nothing stored,
unless `?partial=true`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from notifier.models import Role
from tests.web.conftest import Api, ApiFactory

pytestmark = pytest.mark.both_backends

CSV = ("mobile,email,region,groups,topics,channels\n"
       "13800000001,li.na@example.org,140402,elderly,env.heavy-pollution,sms|email\n"
       "13800000002,,140411,,env.heavy-pollution,sms\n")
BAD = ("13800000003,,999999,,env.heavy-pollution,sms\n"
       "13800000001,,140402,,env.heavy-pollution,sms\n")
GBK = "手机号,区县,人群,订阅主题\n13800000011,城区,老年人,重污染天气预警\n"
NDJSON = json.dumps({"contacts": {"sms": "+8613800000021"}, "region": "140402",
                     "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["sms"]}]}) + "\n"


async def upload(api: Api, body: bytes | str, content_type: str = "text/csv", query: str = "",
                 role: Role = Role.ADMIN) -> tuple[int, dict[str, Any], str]:
    data = body.encode() if isinstance(body, str) else body
    response = await api.client.post(f"/v1/subscribers/import{query}", data=data,
                                     headers={**api.auth(role), "Content-Type": content_type})
    return response.status, await response.json(content_type=None), response.content_type


async def test_a_csv_upload_is_imported(api: Api) -> None:
    """A good CSV answers 200 with the report, and the subscribers exist."""
    status, report, _ = await upload(api, CSV)
    assert status == 200 and (report["outcome"], report["stored"]) == ("imported", 2)
    assert await api.service.store.count_subscribers() == 2


async def test_an_ndjson_upload_is_imported(api: Api) -> None:
    """application/x-ndjson takes one subscriber body per line."""
    status, report, _ = await upload(api, NDJSON, "application/x-ndjson")
    assert status == 200 and (report["format"], report["stored"]) == ("ndjson", 1)


async def test_a_gbk_upload_with_chinese_headers_is_imported(api: Api) -> None:
    """GBK bytes with Chinese column names and catalogue names."""
    status, report, _ = await upload(api, GBK.encode("gbk"))
    assert status == 200 and (report["encoding"], report["stored"]) == ("gbk", 1)


async def test_rejected_rows_are_a_422_problem_and_nothing_is_stored(api: Api) -> None:
    """All or nothing: a 422 problem+json, `errors` naming each row, the report attached, no subscriber stored."""
    status, problem, content_type = await upload(api, CSV + BAD)
    assert (status, content_type) == (422, "application/problem+json")
    assert [e["field"] for e in problem["errors"]] == ["rows.3.region", "rows.4.mobile"]
    assert problem["errors"][1]["message"] == "duplicate: 138****0001 is already in row 1 (line 5)"
    assert (problem["report"]["rejected"], problem["report"]["stored"]) == (2, 0)
    assert await api.service.store.count_subscribers() == 0


async def test_a_rejection_never_echoes_a_contact(api: Api) -> None:
    """Neither the problem nor its report carries a mobile number in clear."""
    response = await api.client.post("/v1/subscribers/import", data=(CSV + BAD).encode(),
                                     headers={**api.auth(), "Content-Type": "text/csv"})
    text = await response.text()
    assert "13800000001" not in text and "13800000003" not in text


async def test_partial_stores_the_valid_rows(api: Api) -> None:
    """?partial=true stores the good rows and answers 200 with the rejected ones listed."""
    status, report, _ = await upload(api, CSV + BAD, query="?partial=true")
    assert status == 200 and (report["outcome"], report["stored"], report["rejected"]) == ("partial", 2, 2)
    assert await api.service.store.count_subscribers() == 2


async def test_the_label_is_recorded_as_consent_source(api: Api) -> None:
    """?label= names the bureau in the consent source of every imported subscriber."""
    await upload(api, CSV, query="?label=市民政局")
    records, _ = await api.service.store.list_subscribers(10, None)
    assert {r.consent_source for r in records} == {"import:市民政局"}


async def test_imported_subscribers_are_targeted_by_a_publish(api: Api) -> None:
    """An alert published after the import targets the imported subscribers."""
    await upload(api, CSV)
    status, alert = await api.publish()
    assert status == 202 and alert["targeted"] == 2


async def test_only_admins_may_import(api: Api) -> None:
    """A publisher key is refused with 403."""
    status, _, _ = await upload(api, CSV, role=Role.PUBLISHER)
    assert status == 403


async def test_another_media_type_is_refused(api: Api) -> None:
    """A JSON body is not a registry file: 415."""
    status, _, _ = await upload(api, "[]", "application/json")
    assert status == 415


async def test_a_bad_header_is_a_422_naming_the_column(api: Api) -> None:
    """An unknown column refuses the whole file."""
    status, problem, _ = await upload(api, "mobile,身份证号,region,topics\n")
    assert status == 422 and problem["errors"] == [{"field": "header", "message": "unknown column '身份证号'"}]


async def test_an_oversized_upload_is_413(make_api: ApiFactory) -> None:
    """A body over the server's limit is refused as elsewhere, as a problem."""
    api = await make_api(server={"max_body_bytes": 2048})
    rows = "".join(f"1380000{i:04d},,140402,,env.heavy-pollution,sms\n" for i in range(100))
    status, problem, content_type = await upload(api, CSV + rows)
    assert (status, content_type) == (413, "application/problem+json") and problem["status"] == 413
    assert await api.service.store.count_subscribers() == 0


async def test_the_route_is_documented_with_its_file_types(api: Api) -> None:
    """/openapi.json lists the import with text/csv and application/x-ndjson bodies and the partial flag."""
    doc = await (await api.client.get("/openapi.json")).json()
    op = doc["paths"]["/v1/subscribers/import"]["post"]
    assert {"text/csv", "application/x-ndjson"} <= set(op["requestBody"]["content"])
    assert "partial" in {p["name"] for p in op["parameters"]}
