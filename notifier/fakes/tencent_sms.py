"""The bundled fake Tencent Cloud SMS API (SendSms, version 2021-01-11) on loopback, for the demo, tests and
benchmarks. It checks requests as the real one does and answers in its shapes:

- TC3-HMAC-SHA256: the signature is recomputed with the configured SecretKey over the headers the request names
  in `SignedHeaders` (content-type and host at least) → `AuthFailure.SignatureFailure`; an unknown SecretId →
  `AuthFailure.SecretIdNotFound`; a timestamp more than 5 minutes off → `AuthFailure.SignatureExpire`;
  `X-TC-Action` / `X-TC-Version` checked.
- SendSms: `SmsSdkAppId` known, `TemplateId` known (when templates are configured), `SignName` present, 1..200
  numbers, not mixing +86 and other countries. Errors as `{"Response": {"Error": {"Code", "Message"},
  "RequestId"}}` with HTTP 200, as the real API does.
- Per number: invalid numbers get `InvalidParameterValue.IncorrectPhoneNumber` in `SendStatusSet`; the others
  `Ok` with a unique `SerialNo`. The set comes back in reverse order: the real API does not promise the
  request's order, so clients must match by `PhoneNumber`.
- Status callbacks (a JSON array, several reports per push) are POSTed to `receipt_url` after `receipt_delay`;
  replies (one JSON object) to `uplink_url` by `push_uplink(phone, text)`.

Scripts, consumed one per SendSms request that carries the number::

    fake.script("+8613800000001", "permanent")        # InvalidParameterValue.IncorrectPhoneNumber
    fake.script("+8613800000001", "throttle", "ok")    # LimitExceeded.PhoneNumberThirtySecondLimit, then Ok
    fake.script(phone, "5xx" | "timeout")              # the whole request: HTTP 503 / no answer
    fake.script(phone, "receipt_fail" | "late_receipt" | "no_receipt")   # accepted, then FAIL / late / nothing
    fake.script(phone, "LimitExceeded.PhoneNumberDailyLimit")            # any Tencent code for that number
    fake.script_request("RequestLimitExceeded", "5xx", "timeout")        # whole-request failures, in turn

In-process::

    fake = await start_tencent_sms(secret_id="AKIDtest", secret_key="key", sdk_app_id="1400000001",
                                   receipt_url="http://127.0.0.1:8080/v1/receipts/sms/tencent?token=…")
    fake.url                     # point `[channels.sms] endpoint` here
    fake.sent                    # [SentSms(phone, serial_no, template_id, params, …)]
    await fake.settle(); fake.pushed   # callbacks pushed so far, with the receiver's answers
    await fake.push_uplink("+8613800000001", "TD")
    await fake.stop()

As a process (demo, benchmarks)::

    python -m notifier.fakes.tencent_sms --port 8098 --secret-id AKIDfake --secret-key fake-secret \
        --sdk-app-id 1400000000 --receipt-url URL --uplink-url URL [--latency 0.05] [--fail-rate 0.05] \
        [--count-repeats]

prints `READY http://127.0.0.1:8098`. Control paths: `GET /_stats` (counts, and the tally of what was accepted:
`notifier.fakes.conditions`), `POST /_script` `{"phone", "behaviours"}`, `POST /_script_request` `{"failures"}`,
`POST /_uplink` `{"phone", "text"}`, `POST /_reset`. `--latency` and `--fail-rate` (HTTP 503 at random) set every
request's weather.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import itertools
import json
import re
import secrets
import sys
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from channels.callbacks import CHINA_TZ
from channels.sms.tencent import ACTION, MAX_NUMBERS, SERVICE, VERSION
from channels.tc3 import tc3_signature, utc_date
from notifier.fakes.conditions import Conditions, add_arguments
from notifier.fakes.process import serve_until_signalled

SIGNATURE_WINDOW = 300  # seconds: AuthFailure.SignatureExpire beyond
_AUTH = re.compile(r"TC3-HMAC-SHA256 Credential=(?P<id>[^/\s]+)/(?P<date>[0-9-]{10})/(?P<service>[a-z]+)/tc3_request,"
                   r"\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})")
_MAINLAND = re.compile(r"^(?:\+86|0086|86)?(1[3-9]\d{9})$")
_FOREIGN = re.compile(r"^\+(?!86)[1-9]\d{5,14}$")
_SEPARATORS = re.compile(r"[\s-]")
NAMED = {"permanent": "InvalidParameterValue.IncorrectPhoneNumber",
         "throttle": "LimitExceeded.PhoneNumberThirtySecondLimit"}
WHOLE = frozenset({"5xx", "timeout"})
RECEIPTS = frozenset({"ok", "receipt_fail", "late_receipt", "no_receipt"})


class ApiError(Exception):
    """A whole-request error, answered as `Response.Error`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code, self.message = code, message


@dataclass(frozen=True, slots=True)
class SentSms:
    """One accepted message, as the fake recorded it."""

    phone: str  # E.164
    serial_no: str
    template_id: str
    params: tuple[str, ...]
    sign_name: str
    session_context: str
    request_id: str
    sent_at: float


@dataclass(frozen=True, slots=True)
class Pushed:
    """One callback the fake pushed, with the status the receiver answered (None: no answer)."""

    kind: str  # "receipt" | "uplink"
    body: bytes
    status: int | None


class FakeTencentState:
    """What the fake knows and has done; the aiohttp handlers are its methods."""

    def __init__(self, *, secret_id: str, secret_key: str, sdk_app_id: str, templates: Iterable[str] | None,
                 receipt_url: str | None, uplink_url: str | None, receipt_delay: float, late_delay: float,
                 hang: float, weather: Conditions | None = None) -> None:
        self.secret_id, self.secret_key, self.sdk_app_id = secret_id, secret_key, sdk_app_id
        self.weather = weather or Conditions()
        self.templates = None if templates is None else frozenset(templates)
        self.receipt_url, self.uplink_url = receipt_url, uplink_url
        self.receipt_delay, self.late_delay, self.hang = receipt_delay, late_delay, hang
        self.sent: list[SentSms] = []
        self.pushed: list[Pushed] = []
        self.requests = 0
        self._scripts: dict[str, deque[str]] = defaultdict(deque)
        self._request_failures: deque[str] = deque()
        self._serials = itertools.count(1)
        self._tasks: set[asyncio.Task[int | None]] = set()
        self.http: aiohttp.ClientSession | None = None

    def script(self, phone: str, *behaviours: str) -> None:
        for behaviour in behaviours:
            if not (behaviour in NAMED or behaviour in WHOLE or behaviour in RECEIPTS or "." in behaviour):
                raise ValueError(f"unknown behaviour {behaviour!r}")
        self._scripts[_e164(phone) or phone].extend(behaviours)

    def script_request(self, *failures: str) -> None:
        self._request_failures.extend(failures)

    def reset(self) -> None:
        self.sent.clear()
        self.pushed.clear()
        self._scripts.clear()
        self._request_failures.clear()
        self.requests = 0
        self.weather.tally.reset()

    # --- the API -------------------------------------------------------------------------------------------------

    async def handle_api(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        request_id = str(uuid.uuid4())
        body = await request.read()
        try:
            if self._request_failures:
                await self._fail_whole(self._request_failures.popleft())
            self._verify(request, body)
            if await self.weather.refuse():
                await self._fail_whole("5xx")
            statuses = await self._send(_payload(body, self.sdk_app_id, self.templates), request_id)
        except ApiError as exc:
            error = {"Code": exc.code, "Message": exc.message}
            return web.json_response({"Response": {"Error": error, "RequestId": request_id}})
        return web.json_response({"Response": {"SendStatusSet": statuses[::-1], "RequestId": request_id}})

    async def _fail_whole(self, failure: str) -> None:
        if failure == "5xx":
            raise web.HTTPServiceUnavailable(text="fake Tencent SMS: scripted 503")
        if failure == "timeout":
            await asyncio.sleep(self.hang)  # the client gives up first; its disconnect cancels this handler
            raise web.HTTPGatewayTimeout()
        raise ApiError(failure, f"scripted failure {failure}")

    def _verify(self, request: web.Request, body: bytes) -> None:
        verify_tc3(request, body, secret_id=self.secret_id, secret_key=self.secret_key, service=SERVICE,
                   action=ACTION, version=VERSION)

    async def _send(self, payload: dict[str, Any], request_id: str) -> list[dict[str, Any]]:
        numbers: list[str] = payload["PhoneNumberSet"]
        phones = [_e164(n) for n in numbers]
        behaviours = {n: self._scripts[p or n].popleft()
                      for n, p in zip(numbers, phones, strict=True) if self._scripts.get(p or n)}
        for behaviour in behaviours.values():
            if behaviour in WHOLE:
                await self._fail_whole(behaviour)
        statuses: list[dict[str, Any]] = []
        reports: list[dict[str, Any]] = []
        late: list[dict[str, Any]] = []
        # Once a request, not a number: the fake shares the benchmark's cores with the service it measures.
        context, template = payload.get("SessionContext", ""), payload["TemplateId"]
        params, sign = tuple(payload["TemplateParamSet"]), payload["SignName"]
        received, now = _receive_time(), time.time()
        tail = f"{secrets.randbelow(10**18):018d}"  # after a counter: each serial is unique, none guessable whole
        for number, phone in zip(numbers, phones, strict=True):
            code = "InvalidParameterValue.IncorrectPhoneNumber" if phone is None else "Ok"
            behaviour = behaviours.get(number, "ok")
            code = NAMED.get(behaviour, behaviour if "." in behaviour else code)
            serial = f"2433:{next(self._serials):010d}{tail}" if code == "Ok" else ""
            statuses.append({"SerialNo": serial, "PhoneNumber": phone or number, "Fee": 1 if serial else 0,
                             "SessionContext": context, "Code": code,
                             "Message": "send success" if serial else code, "IsoCode": "CN"})
            if phone is None or not serial:
                continue
            self.sent.append(SentSms(phone, serial, template, params, sign, context, request_id, now))
            if behaviour != "no_receipt" and self.receipt_url is not None:
                (late if behaviour == "late_receipt" else reports).append(
                    _report(phone, serial, received, delivered=behaviour != "receipt_fail"))
        self.weather.tally.accepted(s["PhoneNumber"] for s in statuses if s["SerialNo"])
        self._push_later("receipt", self.receipt_url, reports, self.receipt_delay)
        self._push_later("receipt", self.receipt_url, late, self.late_delay)
        return statuses

    # --- callbacks ------------------------------------------------------------------------------------------------

    def _push_later(self, kind: str, url: str | None, items: list[dict[str, Any]], delay: float) -> None:
        if url is None or not items:
            return
        task = asyncio.get_running_loop().create_task(self._push(kind, url, items, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _push(self, kind: str, url: str, data: Any, delay: float = 0.0) -> int | None:
        """POST a callback; three tries (like a provider's retries) until the receiver answers 2xx."""
        await asyncio.sleep(delay)
        body = json.dumps(data, ensure_ascii=False).encode()
        status: int | None = None
        for attempt in range(3):
            try:
                async with self._session().post(url, data=body, headers={"Content-Type": "application/json"},
                                                timeout=aiohttp.ClientTimeout(total=5)) as response:
                    status = response.status
                    await response.read()
            except (aiohttp.ClientError, OSError):
                status = None
            if status is not None and 200 <= status < 300:
                break
            await asyncio.sleep(0.2 * (attempt + 1))
        self.pushed.append(Pushed(kind, body, status))
        return status

    async def push_uplink(self, phone: str, text: str, *, extend: str = "", sign: str = "") -> int | None:
        """Push a citizen's reply to `uplink_url` as the documented single JSON object; the receiver's status."""
        if self.uplink_url is None:
            raise RuntimeError("the fake has no uplink_url")
        e164 = _e164(phone) or phone
        report = {"extend": extend, "mobile": e164.removeprefix("+86"), "nationcode": "86", "sign": sign,
                  "text": text, "time": int(time.time())}
        return await self._push("uplink", self.uplink_url, report)

    def _session(self) -> aiohttp.ClientSession:
        if self.http is None:
            self.http = aiohttp.ClientSession()
        return self.http

    async def settle(self) -> None:
        """Wait until every callback scheduled so far has been pushed (or given up)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.http is not None:
            await self.http.close()

    # --- control paths (process mode) -----------------------------------------------------------------------------

    async def handle_stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"requests": self.requests, "sent": len(self.sent), "pushed": len(self.pushed),
                                  "receipts_pending": len(self._tasks), "tally": self.weather.tally.as_dict()})

    async def handle_script(self, request: web.Request) -> web.StreamResponse:
        try:
            data = await request.json()
            self.script(str(data["phone"]), *(str(b) for b in data["behaviours"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise web.HTTPBadRequest(text=f"bad script: {type(exc).__name__}") from exc
        return web.json_response({"ok": True})

    async def handle_script_request(self, request: web.Request) -> web.StreamResponse:
        try:
            self.script_request(*(str(f) for f in (await request.json())["failures"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise web.HTTPBadRequest(text=f"bad script: {type(exc).__name__}") from exc
        return web.json_response({"ok": True})

    async def handle_uplink(self, request: web.Request) -> web.StreamResponse:
        try:
            data = await request.json()
            status = await self.push_uplink(str(data["phone"]), str(data["text"]))
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise web.HTTPBadRequest(text=f"bad uplink: {type(exc).__name__}") from exc
        return web.json_response({"status": status})

    async def handle_reset(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return web.json_response({"ok": True})


def verify_tc3(request: web.Request, body: bytes, *, secret_id: str, secret_key: str, service: str, action: str,
               version: str) -> None:
    """The real API's checks, in its order: authorization, timestamp, signature, action, version; ApiError."""
    match = _AUTH.fullmatch(request.headers.get("Authorization", "").strip())
    if match is None:
        raise ApiError("AuthFailure.InvalidAuthorization", "Authorization in the request header is invalid.")
    if not hmac.compare_digest(match["id"], secret_id):
        raise ApiError("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
    try:
        timestamp = int(request.headers.get("X-TC-Timestamp", ""))
    except ValueError:
        raise ApiError("AuthFailure.InvalidAuthorization", "X-TC-Timestamp is missing or invalid.") from None
    if abs(time.time() - timestamp) > SIGNATURE_WINDOW:
        raise ApiError("AuthFailure.SignatureExpire", "Signature expired: timestamp and server time differ.")
    names = match["signed"].split(";")
    signed = {name: request.headers.get(name, "") for name in names}
    expected = tc3_signature(secret_key, service=match["service"], timestamp=timestamp, headers=signed,
                             payload=body, method=request.method, query=request.query_string)
    if ("content-type" not in names or "host" not in names or match["service"] != service
            or match["date"] != utc_date(timestamp) or not hmac.compare_digest(expected, match["signature"])):
        raise ApiError("AuthFailure.SignatureFailure",
                       "The provided credentials could not be validated. Please check your signature is correct.")
    if request.headers.get("X-TC-Action") != action:
        raise ApiError("InvalidAction", "The action does not exist.")
    if request.headers.get("X-TC-Version") != version:
        raise ApiError("NoSuchVersion", f"The API version does not exist (expected {version}).")
    if not request.headers.get("X-TC-Region"):
        raise ApiError("MissingParameter", "X-TC-Region is required.")


def _e164(number: str) -> str | None:
    """`+8613…` for a mainland mobile in any form Tencent takes, the number itself when foreign, else None."""
    compact = _SEPARATORS.sub("", number)
    if match := _MAINLAND.fullmatch(compact):
        return "+86" + match[1]
    return compact if _FOREIGN.fullmatch(compact) else None


def _payload(body: bytes, sdk_app_id: str, templates: frozenset[str] | None) -> dict[str, Any]:
    """The SendSms body, checked like the real API checks it."""
    try:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise TypeError("not an object")
    except (ValueError, TypeError):
        raise ApiError("FailedOperation.JsonParseFail", "The request body is not a JSON object.") from None
    numbers = payload.get("PhoneNumberSet")
    if not numbers or not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
        raise ApiError("MissingParameter.EmptyPhoneNumberSet", "PhoneNumberSet is empty.")
    if len(numbers) > MAX_NUMBERS:
        raise ApiError("LimitExceeded.PhoneNumberCountLimit", "More than 200 numbers in one request.")
    if payload.get("SmsSdkAppId") != sdk_app_id:
        raise ApiError("UnauthorizedOperation.SmsSdkAppIdVerifyFail", "SmsSdkAppId verification failed.")
    template = payload.get("TemplateId")
    if not isinstance(template, str) or not template or (templates is not None and template not in templates):
        raise ApiError("FailedOperation.TemplateIncorrectOrUnapproved", "The template is unapproved or wrong.")
    if not isinstance(payload.get("SignName"), str) or not payload["SignName"]:
        raise ApiError("FailedOperation.SignatureIncorrectOrUnapproved", "SignName is required for mainland SMS.")
    params = payload.setdefault("TemplateParamSet", [])
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        raise ApiError("InvalidParameterValue.TemplateParameterFormatError", "TemplateParamSet must hold strings.")
    if len(str(payload.get("SessionContext", "")).encode()) >= 512:
        raise ApiError("InvalidParameter", "SessionContext must be shorter than 512 bytes.")
    kinds = {(_e164(n) or "+86").startswith("+86") for n in numbers}
    if len(kinds) > 1:
        raise ApiError("UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
                       "Mainland and international numbers in one request.")
    return payload


def _receive_time() -> str:
    """A status callback's `user_receive_time`: now, in China time."""
    return datetime.now(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


def _report(phone: str, serial: str, received: str, *, delivered: bool) -> dict[str, Any]:
    """One status callback entry, in the documented shape."""
    return {
        "user_receive_time": received,
        "nationcode": "86",
        "mobile": phone.removeprefix("+86"),
        "report_status": "SUCCESS" if delivered else "FAIL",
        "errmsg": "DELIVRD" if delivered else "UNDELIV",
        "description": "用户短信送达成功" if delivered else "用户短信未送达",
        "sid": serial,
    }


STATE_KEY = web.AppKey("tencent_sms", FakeTencentState)


def create_app(state: FakeTencentState) -> web.Application:
    """The fake's aiohttp application: the API at `/`, control paths under `/_`."""
    app = web.Application()
    app[STATE_KEY] = state
    app.router.add_post("/", state.handle_api)
    app.router.add_get("/_stats", state.handle_stats)
    app.router.add_post("/_script", state.handle_script)
    app.router.add_post("/_script_request", state.handle_script_request)
    app.router.add_post("/_uplink", state.handle_uplink)
    app.router.add_post("/_reset", state.handle_reset)
    return app


class RunningTencentSms:
    """A fake listening on a loopback port; stop it with `await stop()` (or use `async with`)."""

    def __init__(self, runner: web.AppRunner, state: FakeTencentState, url: str) -> None:
        self._runner, self.state, self.url = runner, state, url

    @property
    def sent(self) -> list[SentSms]:
        return self.state.sent

    @property
    def pushed(self) -> list[Pushed]:
        return self.state.pushed

    @property
    def requests(self) -> int:
        return self.state.requests

    def script(self, phone: str, *behaviours: str) -> None:
        self.state.script(phone, *behaviours)

    def script_request(self, *failures: str) -> None:
        self.state.script_request(*failures)

    async def push_uplink(self, phone: str, text: str) -> int | None:
        return await self.state.push_uplink(phone, text)

    async def settle(self) -> None:
        """Wait until every callback scheduled so far has been pushed."""
        await self.state.settle()

    async def stop(self) -> None:
        await self.state.aclose()
        await self._runner.cleanup()

    async def __aenter__(self) -> RunningTencentSms:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def start_tencent_sms(host: str = "127.0.0.1", port: int = 0, *, secret_id: str, secret_key: str,
                            sdk_app_id: str, templates: Iterable[str] | None = None, receipt_url: str | None = None,
                            uplink_url: str | None = None, receipt_delay: float = 0.05, late_delay: float = 2.0,
                            hang: float = 30.0, weather: Conditions | None = None) -> RunningTencentSms:
    """Start the fake on `host:port` (0 = a free port) and return once it is listening."""
    state = FakeTencentState(secret_id=secret_id, secret_key=secret_key, sdk_app_id=sdk_app_id, templates=templates,
                             receipt_url=receipt_url, uplink_url=uplink_url, receipt_delay=receipt_delay,
                             late_delay=late_delay, hang=hang, weather=weather)
    # No access log (speed, and no numbers in logs); a client that gives up cancels its handler.
    runner = web.AppRunner(create_app(state), access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0]
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    return RunningTencentSms(runner, state, f"http://{shown}:{bound[1]}")


async def _serve(args: argparse.Namespace) -> None:
    fake = await start_tencent_sms(args.host, args.port, secret_id=args.secret_id, secret_key=args.secret_key,
                                   sdk_app_id=args.sdk_app_id, templates=args.template or None,
                                   receipt_url=args.receipt_url, uplink_url=args.uplink_url,
                                   receipt_delay=args.receipt_delay, weather=Conditions.from_args(args))
    await serve_until_signalled(fake.url, fake.stop)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notifier.fakes.tencent_sms",
                                     description="A fake Tencent Cloud SMS API (SendSms 2021-01-11) on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (see the READY line)")
    parser.add_argument("--secret-id", default="AKIDfakeTencentSmsSecretId")
    parser.add_argument("--secret-key", default="fake-tencent-sms-secret-key")
    parser.add_argument("--sdk-app-id", default="1400000000")
    parser.add_argument("--template", action="append", help="an approved TemplateId (repeatable; default: any)")
    parser.add_argument("--receipt-url", help="where status callbacks are POSTed")
    parser.add_argument("--uplink-url", help="where replies are POSTed")
    parser.add_argument("--receipt-delay", type=float, default=0.05, help="seconds before a status callback")
    add_arguments(parser)
    asyncio.run(_serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
