"""With the access log on, no credential in a URL reaches it: the tokens of confirm, manage, unsubscribe and assist
links and the `?token=` of provider callbacks read `…`, in the line, in the referrer and in every `extra=` field a
JSON formatter would write."""

from __future__ import annotations

import json
import logging

import pytest

from notifier import tokens
from notifier.links import manage_url
from notifier.logs import JsonFormatter
from notifier.web.access_log import redact
from tests.web.conftest import RECEIPT_TOKEN, Api


def _logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Each access record as a handler could write it: its line and the JSON of all its fields."""
    records = [r for r in caplog.records if r.name == "aiohttp.access"]
    return [f"{r.getMessage()} {JsonFormatter().format(r)} {json.dumps(vars(r), default=str)}" for r in records]


async def test_link_tokens_are_redacted_in_the_access_log(sms_api: Api, caplog: pytest.LogCaptureFixture) -> None:
    """Email confirmation, manage (and its sub-pages), unsubscribe and assist tokens, and a manage link carried as
    the Referer, all show as `…`; the paths stay readable."""
    secret = sms_api.service.secret
    subject = "0123456789abcdef0123456789abcdef"
    minted: dict[str, str] = {
        "/subscribe/confirm/": tokens.make_token(secret, tokens.VERIFY_EMAIL, subject),
        "/manage/": manage_url("", secret, subject).rsplit("/", 1)[1],
        "/unsubscribe/": tokens.make_token(secret, tokens.UNSUBSCRIBE, subject),
        "/assist/": tokens.make_token(secret, tokens.ASSIST, subject, data="a1"),
    }
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        for prefix, token in minted.items():
            await sms_api.client.get(prefix + token)
        await sms_api.client.get(f"/manage/{minted['/manage/']}/data.json")
        await sms_api.client.get("/disclosures", headers={"Referer": f"https://x.gov.cn/manage/{minted['/manage/']}"})
    logged = _logged(caplog)
    assert len(logged) == 6
    for token in minted.values():
        assert not any(token in line for line in logged), token
    text = " ".join(logged)
    for shown in ("/subscribe/confirm/…", "/manage/…/data.json", "/unsubscribe/…", "/assist/…", "x.gov.cn/manage/…"):
        assert shown in text, shown


async def test_the_receipt_token_is_redacted_in_the_access_log(sms_api: Api,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """A provider's push to /v1/receipts/sms/aliyun?token=<receipt_token> is logged with `token=…`."""
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        response = await sms_api.client.post(f"/v1/receipts/sms/aliyun?token={RECEIPT_TOKEN}", json=[])
        assert response.status == 200, await response.text()
        await sms_api.client.post(f"/v1/uplink/sms/aliyun?x=1&TOKEN={RECEIPT_TOKEN}", json=[])
    logged = _logged(caplog)
    assert logged and not any(RECEIPT_TOKEN in line for line in logged)
    assert "/v1/receipts/sms/aliyun?token=…" in " ".join(logged)


def test_the_manage_page_without_a_token_is_left_alone() -> None:
    """`/manage` (asking for a number) and `/subscribe` have no token: the redaction leaves them as they are."""
    line = '127.0.0.1 "GET /manage HTTP/1.1" 200 "POST /subscribe HTTP/1.1" "?lang=en&tokens=2"'
    assert redact(line) == line
