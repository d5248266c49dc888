"""A provider's push of delivery reports is routine work: while a red warning holds this process's life-safety window
(`notifier.life_safety`) it is parsed only once the window is let go — 500 reports are a step of the event loop of
milliseconds under a fan-out — or after a second at most, before the provider gives up on it."""

from __future__ import annotations

import asyncio

from tests.web.conftest import RECEIPT_TOKEN, Api

PUSH = f"/v1/receipts/sms/aliyun?token={RECEIPT_TOKEN}"


async def test_a_report_push_during_a_red_warnings_cycle_is_answered_after_it(sms_api: Api) -> None:
    with sms_api.service.dispatcher.window.held():
        push = asyncio.create_task(sms_api.client.post(PUSH, json=[]))
        await asyncio.sleep(0.3)
        assert not push.done()
    response = await asyncio.wait_for(push, 5)
    assert response.status == 200, await response.text()


async def test_a_report_push_waits_a_second_at_most_for_a_window_held_longer(sms_api: Api) -> None:
    window = sms_api.service.dispatcher.window
    with window.held():
        response = await asyncio.wait_for(sms_api.client.post(PUSH, json=[]), 5)
        assert response.status == 200, await response.text()
        assert window.is_open
