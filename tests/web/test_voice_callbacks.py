"""Voice over the API: a landline as a subscriber's voice contact, and the call-result callbacks at
/v1/receipts/voice/<provider>?token=… (authenticated by the token, answered as each provider expects)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.web.conftest import Api, ApiFactory

pytestmark = pytest.mark.both_backends

TOKEN = "voice-receipt-token-0123456789abcdef"
ALIYUN = {"provider": "aliyun", "endpoint": "http://127.0.0.1:9", "tts_code": "TTS_1", "access_key_id": "ak",
          "access_key_secret": "sk", "receipt_token": TOKEN}
TENCENT = {"provider": "tencent", "endpoint": "http://127.0.0.1:9", "template_id": "1", "sdk_app_id": "1400000000",
           "secret_id": "id", "secret_key": "key", "receipt_token": TOKEN}
REPORT = json.dumps([{"call_id": "116012354148^1", "status_code": "200000", "smart_status_code": "ANSWERED",
                      "end_time": "2026-11-27 20:01:10", "callee": "0355****234"}]).encode()


async def _api(make_api: ApiFactory, section: dict[str, Any]) -> Api:
    return await make_api(channels={"webhook": {"allow_private_networks": True}, "voice": section})


async def test_a_landline_voice_contact_is_stored_and_shown_masked(make_api: ApiFactory) -> None:
    """POST /v1/subscribers takes `contacts.voice` as 0355-2021234 and shows it masked, never in full."""
    api = await _api(make_api, ALIYUN)
    created = await api.subscriber(contacts={"voice": "0355-2021234"},
                                   subscriptions=[{"topic": "env.heavy-pollution", "channels": ["voice"]}])
    assert created["contacts"]["voice"] == "0355****34"
    record = await api.service.store.get_subscriber(created["id"])
    assert record is not None and record.contacts["voice"] == "+863552021234"


async def test_a_service_number_is_refused_as_a_voice_contact(make_api: ApiFactory) -> None:
    """A 400 number is no person's line: 422 naming contacts.voice, and nothing is stored."""
    api = await _api(make_api, ALIYUN)
    response = await api.client.post("/v1/subscribers", headers=api.auth(), json={
        "contacts": {"voice": "400-800-1234"}, "region": "140402",
        "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["voice"]}]})
    assert response.status == 422
    assert "contacts.voice" in json.dumps(await response.json())


async def test_aliyun_call_results_are_taken_with_the_token(make_api: ApiFactory) -> None:
    """A VoiceReport with the right token is acknowledged as Aliyun expects ({"code": 0})."""
    api = await _api(make_api, ALIYUN)
    response = await api.client.post(f"/v1/receipts/voice/aliyun?token={TOKEN}", data=REPORT)
    assert response.status == 200
    assert (await response.json())["code"] == 0


async def test_tencent_callbacks_are_acknowledged_as_tencent_expects(make_api: ApiFactory) -> None:
    """A status callback with the right token is answered {"result": 0, "errmsg": "OK"}."""
    api = await _api(make_api, TENCENT)
    body = {"voiceprompt_callback": {"result": "1", "callid": "c-1", "end_calltime": "1470197221"}}
    response = await api.client.post(f"/v1/receipts/voice/tencent?token={TOKEN}", json=body)
    assert response.status == 200
    assert await response.json() == {"result": 0, "errmsg": "OK"}


@pytest.mark.parametrize(("path", "status"), [
    ("/v1/receipts/voice/aliyun?token=wrong", 401),
    ("/v1/receipts/voice/aliyun", 401),
    (f"/v1/receipts/voice/tencent?token={TOKEN}", 404),
    (f"/v1/receipts/voice/other?token={TOKEN}", 404),
])
async def test_a_forged_or_misdirected_report_is_refused(make_api: ApiFactory, path: str, status: int) -> None:
    """Without the token the report is 401; another provider's path than the configured one is 404."""
    api = await _api(make_api, ALIYUN)
    response = await api.client.post(path, data=REPORT)
    assert response.status == status


async def test_a_body_that_is_no_call_result_is_a_bad_request(make_api: ApiFactory) -> None:
    """A body in no provider format is 400 and changes nothing."""
    api = await _api(make_api, ALIYUN)
    response = await api.client.post(f"/v1/receipts/voice/aliyun?token={TOKEN}", data=b'{"hello": 1}')
    assert response.status == 400
    assert response.content_type == "application/problem+json"


async def test_voice_callbacks_404_when_voice_is_not_configured(api: Api) -> None:
    """A deployment without [channels.voice] has no voice receipt endpoint to speak of."""
    response = await api.client.post(f"/v1/receipts/voice/aliyun?token={TOKEN}", data=REPORT)
    assert response.status == 404
