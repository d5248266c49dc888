"""The bundled fake Alibaba Cloud SMS API (dysmsapi 2017-05-25) for the demo, the tests and the benchmarks.

It speaks SendSms as Aliyun does: it recomputes every ACS3-HMAC-SHA256 signature from the request as received with
the configured AccessKeySecret (a wrong one gets HTTP 400 `SignatureDoesNotMatch`), checks the clock and the nonce,
validates the parameters (≤ 1000 numbers, known signature and template, TemplateParam a JSON object) and answers
`{"Code":"OK","Message":"OK","BizId":"…^0","RequestId":"…"}`. Shortly after each accepted request it pushes the
SmsReport receipts (a JSON array, batched) to `receipt_url`, retrying as Aliyun does on anything but HTTP 200 with a
numeric `code` (1, 5, 10 minutes there; fractions of a second here). `push_uplink` posts an SmsUp reply.

Scripting, per number (the number's next `times` requests, or every one with `times=None`)::

    gateway.script("+8613800000001", "permanent")     # isv.MOBILE_NUMBER_ILLEGAL for the whole request
    gateway.script("+8613800000001", "throttle")      # isv.BUSINESS_LIMIT_CONTROL, minute level
    gateway.script("+8613800000001", "5xx")           # HTTP 503 ServiceUnavailable
    gateway.script("+8613800000001", "timeout")       # no answer for `hang_seconds` (or until `answer_hung()`)
    gateway.script("+8613800000001", "receipt_fail")  # accepted; the receipt says UNDELIV
    gateway.script("+8613800000001", "late_receipt")  # accepted; receipt after `late_receipt_delay`
    gateway.script("+8613800000001", "no_receipt")    # accepted; no receipt ever

Aliyun answers for a request, not per number, so a request-level failure scripted for one number fails its whole
request. Whole requests: `gateway.script_requests("5xx" | "timeout" | "throttle" | "throttle_day" |
"system_error" | "isv.AMOUNT_NOT_ENOUGH" (any Aliyun code), times=1)`. A timed-out request is not recorded as sent.

In-process (tests)::

    gateway = await start_aliyun_sms(access_key_id="ak", access_key_secret="sk", receipt_url=receiver_url)
    ... endpoint = gateway.url ...
    gateway.sent          # [SentRecord(numbers, sign_name, template_code, params, out_id, biz_id, …)]
    await gateway.push_uplink("+8613800000001", "TD")
    await gateway.stop()

As a process (demo, crash test, benchmark)::

    python -m notifier.fakes.aliyun_sms --port 8098 --access-key-id ak --access-key-secret sk \\
        [--receipt-url URL] [--uplink-url URL] [--receipt-delay 0.05] [--latency 0.05] [--fail-rate 0.05] \\
        [--count-repeats]

prints `READY http://127.0.0.1:8098` once listening. Control paths: `POST /_config` {"receipt_url", "uplink_url",
"receipt_delay", "late_receipt_delay"}, `POST /_script` {"phone", "behaviour", "times"}, `POST /_script_requests`
{"behaviour", "times"}, `POST /_uplink` {"phone", "content"}, `GET /_stats` (counts only, and the tally of
`notifier.fakes.conditions`: numbers accepted, repeats of a number already accepted, first and last acceptance),
`POST /_reset`. `--latency` and `--fail-rate` (HTTP 503 ServiceUnavailable at random) set every request's weather.
Numbers are kept in memory only, never logged or written anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import sys
import time
from collections import Counter, deque
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import aiohttp
from aiohttp import web

from notifier.fakes.aliyun_sms_wire import (
    PUSH_RETRY_DELAYS,
    VERSION,
    PushAttempt,
    Refusal,
    SendSmsRequest,
    SignatureChecker,
    check_action,
    china_now,
    decode_params,
    national,
    parse_send_sms,
    push,
    refusal,
    report,
    request_id,
    uplink,
)
from notifier.fakes.conditions import Conditions, add_arguments
from notifier.fakes.process import serve_until_signalled
from notifier.fakes.webhook_receiver import _listening_socket

Behaviour = Literal["permanent", "throttle", "5xx", "timeout", "receipt_fail", "late_receipt", "no_receipt"]
REQUEST_BEHAVIOURS = frozenset({"permanent", "throttle", "5xx", "timeout"})
RECEIPT_BEHAVIOURS = frozenset({"receipt_fail", "late_receipt", "no_receipt"})
PUSH_CHUNK = 500  # receipts per push: Aliyun merges reports into arrays of its own choosing


@dataclass(frozen=True, slots=True)
class SentRecord:
    """One accepted SendSms. `numbers` (11-digit national) are personal data: memory only."""

    numbers: tuple[str, ...]
    sign_name: str
    template_code: str
    params: Mapping[str, str]
    out_id: str | None
    biz_id: str
    request_id: str
    sent_at: float
    wire_params: Mapping[str, str]  # every SendSms parameter as received (PhoneNumbers, TemplateParam text, …)


def _scripted_refusal(behaviour: str) -> Refusal:
    answers = {
        "permanent": refusal("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号"),
        "throttle": refusal("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1"),
        "throttle_day": refusal("isv.BUSINESS_LIMIT_CONTROL", "触发天级流控Permits:50"),
        "system_error": refusal("isp.SYSTEM_ERROR", "isp.SYSTEM_ERROR"),
        "5xx": Refusal(503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server."),
    }
    return answers.get(behaviour) or refusal(behaviour, behaviour)


class FakeAliyunSms:
    """The gateway's state: credentials, scripts, what was sent, pushes in flight. Handlers are its methods."""

    def __init__(self, *, access_key_id: str, access_key_secret: str, receipt_url: str | None = None,
                 uplink_url: str | None = None, receipt_delay: float = 0.05, late_receipt_delay: float = 1.0,
                 hang_seconds: float = 30.0, templates: Mapping[str, Sequence[str]] | None = None,
                 sign_names: Sequence[str] | None = None,
                 push_retry_delays: Sequence[float] = PUSH_RETRY_DELAYS, weather: Conditions | None = None) -> None:
        self.weather = weather or Conditions()
        self.checker = SignatureChecker({access_key_id: access_key_secret})
        self.receipt_url = receipt_url
        self.uplink_url = uplink_url
        self.receipt_delay = receipt_delay
        self.late_receipt_delay = late_receipt_delay
        self.hang_seconds = hang_seconds
        # None: any `SMS_<digits>` template with any variables, any signature.
        self.templates = None if templates is None else {k: frozenset(v) for k, v in templates.items()}
        self.sign_names = None if sign_names is None else frozenset(sign_names)
        self.push_retry_delays = tuple(push_retry_delays)
        self.sent: list[SentRecord] = []
        self.push_attempts: list[PushAttempt] = []
        self.counts: Counter[str] = Counter()
        self.http: aiohttp.ClientSession | None = None  # for pushes; opened by start_aliyun_sms
        self._scripts: dict[str, deque[str]] = {}
        self._standing: dict[str, str] = {}
        self._request_scripts: deque[str] = deque()
        self._biz_ids = itertools.count(1)
        self._sequence = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._hung_answer = asyncio.Event()  # set: hung requests answer now (`answer_hung`)

    # --- scripting ---------------------------------------------------------------------------------------------

    def script(self, phone: str, behaviour: Behaviour, times: int | None = 1) -> None:
        """Make `phone`'s next `times` requests (every one when None) misbehave."""
        number = national(phone)
        if number is None or behaviour not in REQUEST_BEHAVIOURS | RECEIPT_BEHAVIOURS:
            raise ValueError("script needs a mainland mobile number and a known behaviour")
        if times is None:
            self._standing[number] = behaviour
        else:
            self._scripts.setdefault(number, deque()).extend([behaviour] * times)

    def script_requests(self, behaviour: str, times: int = 1) -> None:
        """Fail the next `times` requests as a whole: 5xx, timeout, throttle, throttle_day, system_error or a Code."""
        self._request_scripts.extend([behaviour] * times)

    def reset(self) -> None:
        self.sent.clear()
        self.push_attempts.clear()
        self.counts.clear()
        self._scripts.clear()
        self._standing.clear()
        self._request_scripts.clear()
        self.weather.tally.reset()

    def _next(self, number: str, kinds: frozenset[str]) -> str | None:
        queue = self._scripts.get(number)
        if queue and queue[0] in kinds:
            return queue.popleft()
        standing = self._standing.get(number)
        return standing if standing in kinds else None

    def _request_behaviour(self, numbers: Sequence[str]) -> str | None:
        if self._request_scripts:
            return self._request_scripts.popleft()
        for number in numbers:
            behaviour = self._next(number, REQUEST_BEHAVIOURS)
            if behaviour is not None:
                return behaviour
        return None

    # --- the API -----------------------------------------------------------------------------------------------

    async def handle_api(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.counts["requests"] += 1
        headers = {name: value for name, value in request.headers.items()}
        refused = self.checker.check(request.method, request.rel_url.raw_path, request.rel_url.raw_query_string,
                                     headers, body)
        if refused is None:
            refused = check_action(request.headers, "SendSms", VERSION)
        if refused is not None:
            return self._refuse(request, refused)
        params = decode_params(request.rel_url.raw_query_string)
        if request.content_type == "application/x-www-form-urlencoded":
            params |= decode_params(body.decode("utf-8", "replace"), form=True)
        parsed = parse_send_sms(params, self.templates, self.sign_names)
        if isinstance(parsed, Refusal):
            return self._refuse(request, parsed)
        behaviour = self._request_behaviour(parsed.numbers)
        if behaviour == "timeout":
            self.counts["timeouts"] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hung_answer.wait(), self.hang_seconds)
            return self._refuse(request, Refusal(504, "ServiceTimeout", "The request processing has timed out."))
        if behaviour is None and await self.weather.refuse():
            behaviour = "5xx"
        if behaviour is not None:
            return self._refuse(request, _scripted_refusal(behaviour))
        return web.json_response(self._accept(parsed, params))

    def _refuse(self, request: web.Request, answer: Refusal) -> web.StreamResponse:
        self.counts[f"refused:{answer.code}"] += 1
        return web.json_response(answer.body(request.host), status=answer.status)

    def _accept(self, parsed: SendSmsRequest, wire_params: Mapping[str, str]) -> dict[str, str]:
        biz_id = f"{900_000_000_000_000_000 + next(self._biz_ids)}^0"
        record = SentRecord(parsed.numbers, parsed.sign_name, parsed.template_code, dict(parsed.params),
                            parsed.out_id, biz_id, request_id(), time.time(), dict(wire_params))
        self.sent.append(record)
        self.counts["accepted"] += 1
        self.counts["numbers"] += len(parsed.numbers)
        self.weather.tally.accepted(parsed.numbers)
        self._schedule_receipts(record)
        return {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": record.request_id}

    # --- pushes ------------------------------------------------------------------------------------------------

    def _schedule_receipts(self, record: SentRecord) -> None:
        send_time = china_now()
        groups: dict[float, list[dict[str, Any]]] = {}
        for number in dict.fromkeys(record.numbers):
            behaviour = self._next(number, RECEIPT_BEHAVIOURS)
            if behaviour == "no_receipt":
                continue
            delay = self.late_receipt_delay if behaviour == "late_receipt" else self.receipt_delay
            groups.setdefault(delay, []).append(
                report(number, record.biz_id, record.out_id, send_time, delivered=behaviour != "receipt_fail"))
        for delay, entries in groups.items():
            self._spawn(self._push_reports(delay, entries))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _push_reports(self, delay: float, entries: list[dict[str, Any]]) -> None:
        await asyncio.sleep(delay)
        for start in range(0, len(entries), PUSH_CHUNK):
            chunk = entries[start:start + PUSH_CHUNK]
            if self.receipt_url is None or self.http is None:
                self.counts["receipts_dropped"] += len(chunk)  # no push configured: Aliyun keeps them to itself
                continue
            ok = await push(self.http, self.receipt_url, "SmsReport", chunk, self.push_attempts,
                            self.push_retry_delays)
            self.counts["receipts_pushed" if ok else "receipts_lost"] += len(chunk)

    async def push_uplink(self, phone: str, content: str) -> bool:
        """POST one SmsUp reply from `phone` to `uplink_url` (retrying like Aliyun); whether it was taken."""
        number = national(phone)
        if number is None:
            raise ValueError("push_uplink needs a mainland mobile number")
        if self.uplink_url is None or self.http is None:
            raise RuntimeError("no uplink_url configured")
        sign_name = self.sent[-1].sign_name if self.sent else None
        entry = uplink(number, content, next(self._sequence), sign_name)
        ok = await push(self.http, self.uplink_url, "SmsUp", [entry], self.push_attempts, self.push_retry_delays)
        self.counts["uplinks_pushed" if ok else "uplinks_lost"] += 1
        return ok

    async def drain(self) -> None:
        """Wait until every scheduled receipt push has finished (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def answer_hung(self) -> None:
        """Requests scripted to time out answer (ServiceTimeout) now, and later ones at once: a test has seen what it
        needed, and nothing then waits out `hang_seconds` (a sender still inside its own timeout)."""
        self._hung_answer.set()

    async def close(self) -> None:
        self.answer_hung()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self.http is not None:
            await self.http.close()

    # --- control paths (process mode) --------------------------------------------------------------------------

    async def handle_config(self, request: web.Request) -> web.StreamResponse:
        data = await _json_body(request)
        for key in ("receipt_url", "uplink_url"):
            if key in data:
                setattr(self, key, None if data[key] is None else str(data[key]))
        for key in ("receipt_delay", "late_receipt_delay", "hang_seconds"):
            if key in data:
                setattr(self, key, float(data[key]))
        return web.json_response({"receipt_url": self.receipt_url, "uplink_url": self.uplink_url})

    async def handle_script(self, request: web.Request) -> web.StreamResponse:
        data = await _json_body(request)
        try:
            times = None if data.get("times", 1) is None else int(data.get("times", 1))
            self.script(str(data["phone"]), data["behaviour"], times)
        except (KeyError, ValueError, TypeError) as exc:
            raise web.HTTPBadRequest(text="bad script: needs phone, behaviour and optional times") from exc
        return web.json_response({"ok": True})

    async def handle_script_requests(self, request: web.Request) -> web.StreamResponse:
        data = await _json_body(request)
        self.script_requests(str(data.get("behaviour", "5xx")), int(data.get("times", 1)))
        return web.json_response({"ok": True})

    async def handle_uplink(self, request: web.Request) -> web.StreamResponse:
        data = await _json_body(request)
        try:
            ok = await self.push_uplink(str(data["phone"]), str(data["content"]))
        except (KeyError, ValueError, RuntimeError) as exc:
            raise web.HTTPBadRequest(text=f"bad uplink: {type(exc).__name__}") from exc
        return web.json_response({"pushed": ok})

    async def handle_stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({**self.counts, "tally": self.weather.tally.as_dict()})

    async def handle_reset(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return web.json_response({"ok": True})


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text="body must be JSON") from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return data


GATEWAY_KEY = web.AppKey("aliyun_sms", FakeAliyunSms)


def create_app(gateway: FakeAliyunSms) -> web.Application:
    """Control paths under `/_`, the RPC API at `/` (POST, and GET as Aliyun also accepts)."""
    app = web.Application()
    app[GATEWAY_KEY] = gateway
    app.router.add_post("/_config", gateway.handle_config)
    app.router.add_post("/_script", gateway.handle_script)
    app.router.add_post("/_script_requests", gateway.handle_script_requests)
    app.router.add_post("/_uplink", gateway.handle_uplink)
    app.router.add_get("/_stats", gateway.handle_stats)
    app.router.add_post("/_reset", gateway.handle_reset)
    app.router.add_route("POST", "/", gateway.handle_api)
    app.router.add_route("GET", "/", gateway.handle_api)
    return app


class RunningAliyunSms:
    """A fake gateway listening on a loopback port; stop it with `await stop()` (or `async with`)."""

    def __init__(self, runner: web.AppRunner, gateway: FakeAliyunSms, url: str) -> None:
        self._runner = runner
        self.gateway = gateway
        self.url = url

    @property
    def sent(self) -> list[SentRecord]:
        return self.gateway.sent

    @property
    def push_attempts(self) -> list[PushAttempt]:
        return self.gateway.push_attempts

    @property
    def counts(self) -> Counter[str]:
        return self.gateway.counts

    def script(self, phone: str, behaviour: Behaviour, times: int | None = 1) -> None:
        self.gateway.script(phone, behaviour, times)

    def script_requests(self, behaviour: str, times: int = 1) -> None:
        self.gateway.script_requests(behaviour, times)

    def configure(self, *, receipt_url: str | None = None, uplink_url: str | None = None) -> None:
        if receipt_url is not None:
            self.gateway.receipt_url = receipt_url
        if uplink_url is not None:
            self.gateway.uplink_url = uplink_url

    async def push_uplink(self, phone: str, content: str) -> bool:
        return await self.gateway.push_uplink(phone, content)

    async def drain(self) -> None:
        await self.gateway.drain()

    async def stop(self) -> None:
        await self._runner.cleanup()
        await self.gateway.close()

    async def __aenter__(self) -> RunningAliyunSms:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def start_aliyun_sms(host: str = "127.0.0.1", port: int = 0, *, access_key_id: str, access_key_secret: str,
                           receipt_url: str | None = None, uplink_url: str | None = None, receipt_delay: float = 0.05,
                           **options: Any) -> RunningAliyunSms:
    """Start the fake on `host:port` (0 = a free port) and return once it is listening.

    `options`: late_receipt_delay, hang_seconds, templates ({code: [variables]}), sign_names, push_retry_delays.
    """
    gateway = FakeAliyunSms(access_key_id=access_key_id, access_key_secret=access_key_secret,
                            receipt_url=receipt_url, uplink_url=uplink_url, receipt_delay=receipt_delay, **options)
    gateway.http = aiohttp.ClientSession()
    runner = web.AppRunner(create_app(gateway), access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    try:
        await runner.setup()
        sock = _listening_socket(host, port)
    except BaseException:
        await runner.cleanup()
        await gateway.close()
        raise
    bound_host, bound_port = sock.getsockname()[:2]
    try:
        await web.SockSite(runner, sock).start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        await gateway.close()
        raise
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return RunningAliyunSms(runner, gateway, f"http://{shown}:{bound_port}")


async def _serve(args: argparse.Namespace) -> None:
    gateway = await start_aliyun_sms(args.host, args.port, access_key_id=args.access_key_id,
                                     access_key_secret=args.access_key_secret, receipt_url=args.receipt_url,
                                     uplink_url=args.uplink_url, receipt_delay=args.receipt_delay,
                                     late_receipt_delay=args.late_receipt_delay, weather=Conditions.from_args(args))
    gateway.gateway.sent = _Forgetful()  # a long-running process keeps counts, not numbers
    await serve_until_signalled(gateway.url, gateway.stop)


class _Forgetful(list[SentRecord]):
    """A `sent` list that keeps only the last record (for the uplink's sign name): memory stays flat."""

    def append(self, record: SentRecord, /) -> None:
        self[:] = [record]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notifier.fakes.aliyun_sms",
                                     description="A fake Alibaba Cloud SMS API (SendSms, receipts) on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (see the READY line)")
    parser.add_argument("--access-key-id", required=True)
    parser.add_argument("--access-key-secret", required=True)
    parser.add_argument("--receipt-url", help="where SmsReport receipts are pushed")
    parser.add_argument("--uplink-url", help="where SmsUp replies are pushed")
    parser.add_argument("--receipt-delay", type=float, default=0.05, help="seconds from send to receipt")
    parser.add_argument("--late-receipt-delay", type=float, default=1.0, help="seconds, for late_receipt scripts")
    add_arguments(parser)
    asyncio.run(_serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
