"""The bundled fake Alibaba Cloud Voice Service (dyvmsapi 2017-05-25, SingleCallByTts) for the demo and the tests.

It checks requests as the real service does: the ACS3-HMAC-SHA256 signature recomputed from the request as
received with the configured AccessKeySecret (notifier.fakes.aliyun_sms_wire, as the SMS fake), the clock and the
nonce, the action and version; then the parameters: `CalledNumber` a mobile (11 digits) or a fixed line with its
trunk 0, `TtsCode` known (any `TTS_<digits>` unless `tts_codes` are given), `TtsParam` a JSON object whose values
stay under 250 characters together and carry no link, `PlayTimes` 1-3, `OutId` at most 15 bytes. Each number may
be called once a minute, 5 times an hour, 20 times a day (`isv.BUSINESS_LIMIT_CONTROL`). An accepted call answers
`{"Code": "OK", "CallId": "…"}` and, `receipt_delay` later, its VoiceReport (a JSON array) is pushed to
`receipt_url`, retried on anything but HTTP 200 like Aliyun (1, 5, 10 minutes there; fractions of a second here).

Scripts per number: notifier.fakes.voice_calls.

In-process (tests)::

    fake = await start_aliyun_voice(access_key_id="ak", access_key_secret="sk", receipt_url=url)
    fake.script("+863552021234", "no_answer", "answered"); fake.url; fake.calls; await fake.settle()
    await fake.stop()

As a process (demo)::

    python -m notifier.fakes.aliyun_voice --port 8097 --access-key-id ak --access-key-secret sk --receipt-url URL

prints `READY http://127.0.0.1:8097`; control paths `GET /_stats`, `POST /_script`, `/_standing`, `/_config`,
`/_reset` (see voice_calls.CallBook.handle_control).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from notifier.fakes.aliyun_sms_wire import (
    Refusal,
    SignatureChecker,
    check_action,
    china_now,
    decode_params,
    refusal,
    request_id,
)
from notifier.fakes.process import serve_until_signalled
from notifier.fakes.voice_calls import CallBook, FrequencyLimit, PlacedCall, add_control_routes

VERSION = "2017-05-25"
ACTION = "SingleCallByTts"
LIMITS = (FrequencyLimit(1, 60), FrequencyLimit(5, 3600), FrequencyLimit(20, 86_400))
# behaviour → (status_code, smart_status_code, status_msg)
RESULTS = {"answered": ("200000", "ANSWERED", "用户听完语音"), "late_receipt": ("200000", "ANSWERED", "用户听完语音"),
           "hangup_early": ("200001", "ANSWERED", "用户提前挂机"), "no_answer": ("200003", "NO_ANSWER", "用户未接听"),
           "busy": ("200002", "USER_BUSY", "用户占线"), "powered_off": ("200010", "POWERED_OFF", "关机"),
           "rejected": ("200005", "CALL_REJECTED", "被叫拒接"), "invalid_number": ("200004", "INVALID_NUMBER", "空号"),
           "no_receipt": ("200000", "ANSWERED", "")}
_CALLED = re.compile(r"1[3-9]\d{9}|0(?:10|2\d|[3-9]\d{2})\d{7,8}")
_TTS_CODE = re.compile(r"TTS_\d+")


def e164(called: str) -> str:
    """The E.164 form of a CalledNumber the fake accepted (scripts are keyed by it)."""
    return "+86" + (called[1:] if called.startswith("0") else called)


def check_call(params: Mapping[str, str], tts_codes: frozenset[str] | None) -> Refusal | None:
    """SingleCallByTts's parameter rules, in the order the service reports them."""
    for name in ("CalledNumber", "TtsCode"):
        if not params.get(name):
            return Refusal(400, f"Missing{name}", f"{name} is mandatory for this action.")
    if not _CALLED.fullmatch(params["CalledNumber"]):
        return refusal("isv.MOBILE_NUMBER_ILLEGAL", "号码格式非法")
    code = params["TtsCode"]
    if not (_TTS_CODE.fullmatch(code) if tts_codes is None else code in tts_codes):
        return refusal("isv.TTS_TEMPLATE_ILLEGAL", "TTS模板不合法")
    try:
        variables = json.loads(params.get("TtsParam") or "{}")
    except ValueError:
        return refusal("isv.INVALID_PARAMETERS", "参数异常")
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        return refusal("isv.INVALID_PARAMETERS", "参数异常")
    text = "".join(variables.values())
    if len(text) >= 250 or "http" in text.lower():
        return refusal("isv.TEMPLATE_PARAMS_ILLEGAL", "模板变量非法")
    if params.get("PlayTimes", "3") not in ("1", "2", "3") or len(params.get("OutId", "x").encode()) > 15:
        return refusal("isv.INVALID_PARAMETERS", "参数异常")
    return None


class FakeAliyunVoice(CallBook):
    """The gateway: credentials, the call book, the handler."""

    def __init__(self, *, access_key_id: str, access_key_secret: str, tts_codes: Sequence[str] | None = None,
                 receipt_url: str | None = None, receipt_delay: float = 0.05, late_delay: float = 1.0,
                 hang: float = 30.0, **options: Any) -> None:
        super().__init__(receipt_url=receipt_url, receipt_delay=receipt_delay, late_delay=late_delay, hang=hang,
                         limits=options.pop("limits", LIMITS), **options)
        self.checker = SignatureChecker({access_key_id: access_key_secret})
        self.tts_codes = None if tts_codes is None else frozenset(tts_codes)

    async def handle_api(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        body = await request.read()
        refused = self.checker.check(request.method, request.rel_url.raw_path, request.rel_url.raw_query_string,
                                     dict(request.headers), body)
        refused = refused or check_action(request.headers, ACTION, VERSION)
        params = decode_params(request.rel_url.raw_query_string)
        if request.content_type == "application/x-www-form-urlencoded":
            params |= decode_params(body.decode("utf-8", "replace"), form=True)
        refused = refused or check_call(params, self.tts_codes)
        if refused is not None:
            return web.json_response(refused.body(request.host), status=refused.status)
        number = e164(params["CalledNumber"])
        behaviour = self.next_behaviour(number)
        if behaviour in ("5xx", "timeout"):
            await self.fail_request(behaviour)
        if behaviour == "throttle" or self.over_limit(number, time.time()):
            answer = refusal("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1")
        elif behaviour == "refuse":
            answer = refusal("isv.MOBILE_NUMBER_ILLEGAL", "号码格式非法")
        else:
            return web.json_response(self._accept(number, params, behaviour))
        return web.json_response(answer.body(request.host), status=answer.status)

    def _accept(self, number: str, params: Mapping[str, str], behaviour: str) -> dict[str, str]:
        call_id = f"{116_012_354_148 + self.next_id()}^{1_000_000_000 + self.next_id()}"
        rid = request_id()
        call = self.place(number, params["TtsCode"], json.loads(params.get("TtsParam") or "{}"),
                          int(params.get("PlayTimes", "3")), params.get("OutId", ""), rid, behaviour, call_id)
        self.push_later([voice_report(call, params.get("CalledShowNumber", ""))], behaviour)
        return {"Code": "OK", "Message": "OK", "RequestId": rid, "CallId": call_id}


def voice_report(call: PlacedCall, caller: str) -> dict[str, Any]:
    """One VoiceReport entry as the documentation shows it."""
    status, smart, message = RESULTS[call.behaviour]
    answered = smart == "ANSWERED"
    now = china_now()
    national = call.number.removeprefix("+86")
    return {"call_id": call.call_id, "status_code": status, "smart_status_code": smart, "status_msg": message,
            "out_id": call.reference, "callee": national if national.startswith("1") else "0" + national,
            "caller": caller, "duration": "12" if answered else "0", "voice_type": "voice",
            "originate_time": now, "ring_time": now, "start_time": now if answered else "", "end_time": now,
            "hangup_direction": "用户" if call.behaviour == "hangup_early" else "机器"}


def create_app(fake: FakeAliyunVoice) -> web.Application:
    app = web.Application()
    add_control_routes(app, fake)
    app.router.add_route("POST", "/", fake.handle_api)
    app.router.add_route("GET", "/", fake.handle_api)
    return app


async def start_aliyun_voice(host: str = "127.0.0.1", port: int = 0, *, access_key_id: str,
                             access_key_secret: str, **options: Any) -> FakeAliyunVoice:
    """Start the fake on `host:port` (0 = a free port) and return once it is listening. `options`: tts_codes,
    receipt_url, receipt_delay, late_delay, hang, limits, push_retry_delays."""
    fake = FakeAliyunVoice(access_key_id=access_key_id, access_key_secret=access_key_secret, **options)
    await fake.listen(create_app(fake), host, port)
    return fake


async def _serve(args: argparse.Namespace) -> None:
    fake = await start_aliyun_voice(args.host, args.port, access_key_id=args.access_key_id,
                                    access_key_secret=args.access_key_secret, receipt_url=args.receipt_url,
                                    receipt_delay=args.receipt_delay)
    await serve_until_signalled(fake.url, fake.stop)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notifier.fakes.aliyun_voice",
                                     description="A fake Alibaba Cloud Voice Service (SingleCallByTts) on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (see the READY line)")
    parser.add_argument("--access-key-id", required=True)
    parser.add_argument("--access-key-secret", required=True)
    parser.add_argument("--receipt-url", help="where VoiceReport call results are pushed")
    parser.add_argument("--receipt-delay", type=float, default=0.05, help="seconds from the call to its result")
    asyncio.run(_serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
