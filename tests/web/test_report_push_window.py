"""A provider's push of delivery reports is routine work: while a red warning holds this process's life-safety window
(`notifier.life_safety`) it is parsed only once the window is let go — 500 reports are a step of the event loop of
milliseconds under a fan-out — or after a second at most, before the provider gives up on it; and its reports are
turned into receipts a slice a turn of the event loop (`LifeSafetyWindow.routine_map`), every one of them kept."""

from __future__ import annotations

import asyncio

from notifier.life_safety import ROUTINE_SLICE
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


async def test_a_push_of_more_reports_than_a_slice_keeps_every_one(sms_api: Api) -> None:
    """A push larger than a slice of routine work is read in several turns of the event loop, and whole: each of its
    reports (for messages not known here) is kept, to be matched when its send is recorded."""
    count = 2 * ROUTINE_SLICE + 50
    push = [{"phone_number": f"139{i:08d}", "success": True, "biz_id": "900619746936498440^0",
             "report_time": "2026-12-07 10:00:00", "err_code": "DELIVERED"} for i in range(count)]
    response = await sms_api.client.post(PUSH, json=push)
    assert response.status == 200, await response.text()
    kept = await sms_api.service.store.backend.run(lambda db: db.fetchval(
        "SELECT COUNT(*) FROM receipts WHERE channel = 'sms' AND outcome = 'unknown'"))
    assert kept == count


async def test_a_push_of_many_reports_waits_a_second_in_all_for_a_window_held_longer(sms_api: Api) -> None:
    """The second a provider is kept waiting counts once: for the window before the push is read and for its slices
    of reports after, not a second each."""
    push = [{"phone_number": f"139{i:08d}", "success": True, "biz_id": "900619746936498441^0",
             "report_time": "2026-12-07 10:00:00", "err_code": "DELIVERED"} for i in range(2 * ROUTINE_SLICE + 50)]
    loop = asyncio.get_running_loop()
    with sms_api.service.dispatcher.window.held():
        started = loop.time()
        response = await asyncio.wait_for(sms_api.client.post(PUSH, json=push), 5)
        assert response.status == 200, await response.text()
        assert loop.time() - started < 1.7  # a second for each wait: two seconds or more
