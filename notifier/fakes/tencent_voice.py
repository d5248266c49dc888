"""The bundled fake Tencent Cloud VMS (SendTtsVoice, version 2020-09-02) for the demo and the tests.

It checks requests as the real API does: TC3-HMAC-SHA256 over the signed headers with the configured SecretKey
(`verify_tc3`, shared with the SMS fake), the timestamp, `X-TC-Action` / `X-TC-Version`; then the body:
`VoiceSdkAppid` known, `TemplateId` known (any when `templates` is None), `CalledNumber` an E.164 mainland
*mobile* (a fixed line gets `InvalidParameterValue.CalledNumberVerifyFail`: VMS calls mobiles only),
`TemplateParamSet` strings of at most 350 characters together, `PlayTimes` 1-3. Errors come as
`{"Response": {"Error": {"Code", "Message"}, "RequestId"}}` with HTTP 200. Each number may be called once per
30 s and twice per 10 minutes (`LimitExceeded.DeliveryFrequencyLimit`), the default limits.

An accepted call answers `{"Response": {"SendStatus": {"CallId", "SessionContext"}, "RequestId"}}`; `receipt_delay`
later the status callback (`voiceprompt_callback`, result 0 answered / 1 not answered / 2 failed) is pushed to
`receipt_url`, and for a call that did not reach the person the failure callback (`voice_failure_callback` with
its failure_code) right after it, as Tencent does.

Scripts per number: notifier.fakes.voice_calls. In-process::

    fake = await start_tencent_voice(secret_id="AKIDtest", secret_key="key", sdk_app_id="1400000001",
                                     receipt_url=url)
    fake.script("+8613800000001", "busy", "answered"); fake.calls; await fake.settle(); await fake.stop()

As a process: `python -m notifier.fakes.tencent_voice --port 8096 --receipt-url URL` prints
`READY http://127.0.0.1:8096`; control paths as in voice_calls.CallBook.handle_control.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import web

from notifier.fakes.process import serve_until_signalled
from notifier.fakes.tencent_sms import ApiError, verify_tc3
from notifier.fakes.voice_calls import CallBook, FrequencyLimit, PlacedCall, add_control_routes

SERVICE, ACTION, VERSION = "vms", "SendTtsVoice", "2020-09-02"
LIMITS = (FrequencyLimit(1, 30), FrequencyLimit(2, 600))
MAX_CONTENT = 350
# behaviour → (status callback result, failure callback code or None)
RESULTS: dict[str, tuple[str, int | None]] = {
    "answered": ("0", None), "hangup_early": ("0", None), "late_receipt": ("0", None), "no_receipt": ("0", None),
    "no_answer": ("1", 5), "busy": ("1", 10), "rejected": ("1", 10), "powered_off": ("2", 1),
    "invalid_number": ("2", 8),
}
FAILURE_REASONS = {1: "关机", 5: "无人接听", 8: "空号", 10: "用户正忙"}
_MOBILE = re.compile(r"\+861[3-9]\d{9}")


def check_payload(body: bytes, sdk_app_id: str, templates: frozenset[str] | None) -> dict[str, Any]:
    """The SendTtsVoice body, checked like the real API checks it; ApiError otherwise."""
    try:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise TypeError("not an object")
    except (ValueError, TypeError):
        raise ApiError("FailedOperation.JsonParseFail", "The request body is not a JSON object.") from None
    if payload.get("VoiceSdkAppid") != sdk_app_id:
        raise ApiError("UnauthorizedOperation.VoiceSdkAppidVerifyFail", "VoiceSdkAppid verification failed.")
    template = payload.get("TemplateId")
    if not isinstance(template, str) or not template or (templates is not None and template not in templates):
        raise ApiError("FailedOperation.TemplateIncorrectOrUnapproved", "The template is unapproved or wrong.")
    number = payload.get("CalledNumber")
    if not isinstance(number, str) or not _MOBILE.fullmatch(number):
        raise ApiError("InvalidParameterValue.CalledNumberVerifyFail", "CalledNumber verification failed.")
    params = payload.setdefault("TemplateParamSet", [])
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        raise ApiError("FailedOperation.InvalidParameters", "TemplateParamSet must hold strings.")
    if sum(len(p) for p in params) > MAX_CONTENT:
        raise ApiError("InvalidParameterValue.ContentLengthLimit", "The voice content is too long.")
    if payload.get("PlayTimes", 2) not in (1, 2, 3):
        raise ApiError("FailedOperation.InvalidParameters", "PlayTimes must be 1, 2 or 3.")
    return payload


class FakeTencentVoice(CallBook):
    """The gateway: credentials, the call book, the handler."""

    def __init__(self, *, secret_id: str, secret_key: str, sdk_app_id: str, templates: Iterable[str] | None = None,
                 receipt_url: str | None = None, receipt_delay: float = 0.05, late_delay: float = 1.0,
                 hang: float = 30.0, **options: Any) -> None:
        super().__init__(receipt_url=receipt_url, receipt_delay=receipt_delay, late_delay=late_delay, hang=hang,
                         limits=options.pop("limits", LIMITS), **options)
        self.secret_id, self.secret_key, self.sdk_app_id = secret_id, secret_key, sdk_app_id
        self.templates = None if templates is None else frozenset(templates)

    async def handle_api(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        rid = str(uuid.uuid4())
        body = await request.read()
        try:
            verify_tc3(request, body, secret_id=self.secret_id, secret_key=self.secret_key, service=SERVICE,
                       action=ACTION, version=VERSION)
            payload = check_payload(body, self.sdk_app_id, self.templates)
            status = await self._call(payload, rid)
        except ApiError as exc:
            return web.json_response({"Response": {"Error": {"Code": exc.code, "Message": exc.message},
                                                   "RequestId": rid}})
        return web.json_response({"Response": {"SendStatus": status, "RequestId": rid}})

    async def _call(self, payload: dict[str, Any], rid: str) -> dict[str, str]:
        number = payload["CalledNumber"]
        behaviour = self.next_behaviour(number)
        if behaviour in ("5xx", "timeout"):
            await self.fail_request(behaviour)
        if behaviour == "throttle" or self.over_limit(number, time.time()):
            raise ApiError("LimitExceeded.DeliveryFrequencyLimit", "Frequency limit for this number.")
        if behaviour == "refuse":
            raise ApiError("InvalidParameterValue.CalledNumberVerifyFail", "CalledNumber verification failed.")
        context = str(payload.get("SessionContext", ""))
        call = self.place(number, payload["TemplateId"], list(payload["TemplateParamSet"]),
                          int(payload.get("PlayTimes", 2)), context, rid, behaviour, uuid.uuid4().hex)
        for callback in callbacks(call):
            self.push_later(callback, behaviour)
        return {"CallId": call.call_id, "SessionContext": context}


def callbacks(call: PlacedCall) -> list[dict[str, Any]]:
    """The status callback of a call and, when it did not reach the person, its failure callback."""
    result, failure = RESULTS[call.behaviour]
    now = int(time.time())
    mobile = call.number.removeprefix("+86")
    pushes: list[dict[str, Any]] = [{"voiceprompt_callback": {
        "result": result, "accept_time": str(now) if result == "0" else "0", "call_from": "", "callid": call.call_id,
        "end_calltime": str(now), "fee": "1" if result == "0" else "0", "mobile": mobile, "nationcode": "86",
        "start_calltime": str(now - 15)}}]
    if failure is not None:
        pushes.append({"voice_failure_callback": {"call_from": "", "callid": call.call_id, "failure_code": failure,
                                                  "failure_reason": FAILURE_REASONS[failure], "mobile": mobile,
                                                  "nationcode": "86"}})
    return pushes


def create_app(fake: FakeTencentVoice) -> web.Application:
    app = web.Application()
    add_control_routes(app, fake)
    app.router.add_post("/", fake.handle_api)
    return app


async def start_tencent_voice(host: str = "127.0.0.1", port: int = 0, *, secret_id: str, secret_key: str,
                              sdk_app_id: str, **options: Any) -> FakeTencentVoice:
    """Start the fake on `host:port` (0 = a free port) and return once it is listening. `options`: templates,
    receipt_url, receipt_delay, late_delay, hang, limits, push_retry_delays."""
    fake = FakeTencentVoice(secret_id=secret_id, secret_key=secret_key, sdk_app_id=sdk_app_id, **options)
    await fake.listen(create_app(fake), host, port)
    return fake


async def _serve(args: argparse.Namespace) -> None:
    fake = await start_tencent_voice(args.host, args.port, secret_id=args.secret_id, secret_key=args.secret_key,
                                     sdk_app_id=args.sdk_app_id, receipt_url=args.receipt_url,
                                     receipt_delay=args.receipt_delay)
    await serve_until_signalled(fake.url, fake.stop)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notifier.fakes.tencent_voice",
                                     description="A fake Tencent Cloud VMS API (SendTtsVoice 2020-09-02) on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (see the READY line)")
    parser.add_argument("--secret-id", default="AKIDfakeTencentVmsSecretId")
    parser.add_argument("--secret-key", default="fake-tencent-vms-secret-key")
    parser.add_argument("--sdk-app-id", default="1400000000")
    parser.add_argument("--receipt-url", help="where the status and failure callbacks are POSTed")
    parser.add_argument("--receipt-delay", type=float, default=0.05, help="seconds from the call to its result")
    asyncio.run(_serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
