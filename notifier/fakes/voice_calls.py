"""What the two fake voice gateways (notifier.fakes.aliyun_voice, notifier.fakes.tencent_voice) share: the script
of how each number's calls end, the per-number frequency limits the real services enforce, the record of placed
calls, and the call-result pushes to the configured receipt URL (retried as the providers do, faster).

Behaviours, consumed one per call request to the number (`script(phone, *behaviours)`; `standing(phone, b)` holds
until changed; unscripted calls are answered):

    answered        the person listened to the end           hangup_early    picked up, hung up before the end
    no_answer       rang, nobody answered                     busy            the line was busy
    powered_off     the phone is switched off                 rejected        the person declined the call
    invalid_number  the number does not exist (final)         no_receipt      placed, no result ever pushed
    late_receipt    answered, its result after `late_delay`
    throttle        the request is refused by the per-number flow control (transient)
    refuse          the request is refused: an invalid number (permanent)
    5xx | timeout   the request fails with HTTP 503 / gets no answer (transient; no call placed)

Numbers are kept in memory only (as E.164), never logged.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from notifier.fakes.process import Background

CALL_RESULTS = frozenset({"answered", "hangup_early", "no_answer", "busy", "powered_off", "rejected",
                          "invalid_number", "no_receipt", "late_receipt"})
REQUEST_FAILURES = frozenset({"throttle", "refuse", "5xx", "timeout"})
BEHAVIOURS = CALL_RESULTS | REQUEST_FAILURES
PUSH_RETRY_DELAYS = (0.2, 1.0, 2.0)  # Aliyun: 1, 5 and 10 minutes after a failed push, then it gives up


@dataclass(frozen=True, slots=True)
class PlacedCall:
    """One call the fake accepted. `number` (E.164) is personal data: memory only."""

    number: str
    call_id: str
    template: str
    params: Any  # the template variables as sent (Aliyun: a dict; Tencent: a list)
    play_times: int
    reference: str  # OutId / SessionContext
    request_id: str
    at: float
    behaviour: str


@dataclass(frozen=True, slots=True)
class Pushed:
    """One call-result push and the receiver's last answer (None: none)."""

    body: bytes
    status: int | None
    attempts: int


@dataclass(frozen=True, slots=True)
class FrequencyLimit:
    """At most `calls` accepted calls to one number within `seconds`."""

    calls: int
    seconds: float


class CallBook:
    """Scripts, limits, placed calls and pushes of one fake gateway; its control paths are methods."""

    def __init__(self, *, receipt_url: str | None, receipt_delay: float, late_delay: float, hang: float,
                 limits: Sequence[FrequencyLimit], push_retry_delays: Sequence[float] = PUSH_RETRY_DELAYS) -> None:
        self.receipt_url = receipt_url
        self.receipt_delay, self.late_delay, self.hang = receipt_delay, late_delay, hang
        self.limits = tuple(limits)
        self.push_retry_delays = tuple(push_retry_delays)
        self.http: aiohttp.ClientSession | None = None
        self.calls: list[PlacedCall] = []
        self.pushed: list[Pushed] = []
        self.requests = 0
        self._scripts: dict[str, deque[str]] = defaultdict(deque)
        self._standing: dict[str, str] = {}
        self._placed_at: dict[str, list[float]] = defaultdict(list)
        self._ids = itertools.count(1)
        self._pushes = Background()
        self.url = ""
        self._runner: web.AppRunner | None = None

    # --- scripting -------------------------------------------------------------------------------------------

    def script(self, phone: str, *behaviours: str) -> None:
        """`phone`'s next calls end (or fail) this way, one behaviour per call request."""
        self._check(behaviours)
        self._scripts[phone].extend(behaviours)

    def standing(self, phone: str, behaviour: str | None) -> None:
        """Every call to `phone` ends this way until changed (None: answered again)."""
        if behaviour is None:
            self._standing.pop(phone, None)
            return
        self._check([behaviour])
        self._standing[phone] = behaviour

    @staticmethod
    def _check(behaviours: Sequence[str]) -> None:
        unknown = [b for b in behaviours if b not in BEHAVIOURS]
        if unknown:
            raise ValueError(f"unknown behaviour(s) {unknown}; known: {', '.join(sorted(BEHAVIOURS))}")

    def next_behaviour(self, phone: str) -> str:
        queue = self._scripts.get(phone)
        if queue:
            return queue.popleft()
        return self._standing.get(phone, "answered")

    def reset(self) -> None:
        self.calls.clear()
        self.pushed.clear()
        self.requests = 0
        self._scripts.clear()
        self._standing.clear()
        self._placed_at.clear()

    # --- the rules of a call request -------------------------------------------------------------------------

    def over_limit(self, phone: str, now: float) -> bool:
        """Whether one more call to `phone` now would break a per-number frequency limit."""
        placed = self._placed_at[phone]
        return any(sum(1 for t in placed if now - t < limit.seconds) >= limit.calls for limit in self.limits)

    async def fail_request(self, behaviour: str) -> None:
        """5xx or timeout: the whole request fails before any call is placed."""
        if behaviour == "5xx":
            raise web.HTTPServiceUnavailable(text="fake voice gateway: scripted 503")
        await asyncio.sleep(self.hang)  # the client gives up first; its disconnect cancels the handler
        raise web.HTTPGatewayTimeout()

    def place(self, number: str, template: str, params: Any, play_times: int, reference: str, request_id: str,
              behaviour: str, call_id: str) -> PlacedCall:
        """Record an accepted call (it counts against the number's limits, answered or not)."""
        now = time.time()
        call = PlacedCall(number, call_id, template, params, play_times, reference, request_id, now, behaviour)
        self.calls.append(call)
        self._placed_at[number].append(now)
        return call

    def next_id(self) -> int:
        return next(self._ids)

    # --- pushes ----------------------------------------------------------------------------------------------

    def push_later(self, body: Any, behaviour: str) -> None:
        """Push `body` (JSON) to the receipt URL after the scripted delay; nothing for `no_receipt`."""
        if behaviour == "no_receipt":
            return
        delay = self.late_delay if behaviour == "late_receipt" else self.receipt_delay
        self._pushes.spawn(self._push(json.dumps(body, ensure_ascii=False).encode(), delay))

    async def _push(self, body: bytes, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.receipt_url is None:
            return
        status: int | None = None
        attempts = 0
        for pause in (0.0, *self.push_retry_delays):
            await asyncio.sleep(pause)
            attempts += 1
            status = await self._post(body)
            if status == 200:
                break
        self.pushed.append(Pushed(body, status, attempts))

    async def _post(self, body: bytes) -> int | None:
        if self.http is None:
            self.http = aiohttp.ClientSession()
        try:
            async with self.http.post(str(self.receipt_url), data=body,
                                      headers={"Content-Type": "application/json;charset=utf-8"},
                                      timeout=aiohttp.ClientTimeout(total=5)) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, OSError):
            return None

    async def settle(self) -> None:
        """Wait until every push scheduled so far has been made (or given up)."""
        await self._pushes.settle()

    # --- listening -------------------------------------------------------------------------------------------

    async def listen(self, app: web.Application, host: str, port: int) -> None:
        """Serve `app` on `host:port` (0: a free port); `url` is then its base URL."""
        # No access log (numbers in logs, speed); a client that gives up cancels its handler.
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self._runner, self.url = runner, f"http://{shown}:{bound_port}"

    async def stop(self) -> None:
        """Cancel pending pushes, close the push session, stop listening."""
        await self._pushes.cancel()
        if self.http is not None:
            await self.http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- control paths (process mode) ------------------------------------------------------------------------

    async def handle_control(self, request: web.Request) -> web.StreamResponse:
        """GET /_stats; POST /_script {"phone", "behaviours"}, /_standing {"phone", "behaviour"},
        /_config {"receipt_url", "receipt_delay"}, /_reset."""
        action = request.match_info["action"]
        if action == "stats":
            return web.json_response({"requests": self.requests, "calls": len(self.calls),
                                      "pushed": len(self.pushed), "pending": len(self._pushes.tasks)})
        try:
            data = await request.json() if request.can_read_body else {}
            if action == "script":
                self.script(str(data["phone"]), *(str(b) for b in data["behaviours"]))
            elif action == "standing":
                behaviour = data.get("behaviour")
                self.standing(str(data["phone"]), None if behaviour is None else str(behaviour))
            elif action == "config":
                self.receipt_url = data.get("receipt_url", self.receipt_url)
                self.receipt_delay = float(data.get("receipt_delay", self.receipt_delay))
            elif action == "reset":
                self.reset()
            else:
                raise web.HTTPNotFound()
        except (ValueError, KeyError, TypeError) as exc:
            raise web.HTTPBadRequest(text=f"bad {action} request: {type(exc).__name__}") from exc
        return web.json_response({"ok": True})


def add_control_routes(app: web.Application, book: CallBook) -> None:
    app.router.add_get("/_{action}", book.handle_control)
    app.router.add_post("/_{action}", book.handle_control)
