"""The bundled fake webhook receiver: an endpoint for the demo, the tests and the benchmarks, on loopback.

It answers 200 to any path and remembers what it received. A path can be scripted to misbehave for its next
requests — 503 twice then 200, 429 with Retry-After, 410, a slow answer, a 302 redirect — so every answer of
the Standard Webhooks retry rules can be produced over real HTTP.

In-process (tests)::

    receiver = await start_receiver()            # 127.0.0.1, a free port
    receiver.script("/hook", [503, 503])          # then 200 again
    receiver.script("/slow", [Reply(delay=5)])
    ... POST to receiver.url + "/hook" ...
    receiver.received                             # [ReceivedRequest(path, webhook_id, …, body, received_at)]
    await receiver.stop()

As a process (crash test, benchmark)::

    python -m notifier.fakes.webhook_receiver --port 8099 [--record deliveries.ndjson] \\
        [--latency 0.05] [--fail-rate 0.05] [--count-repeats]

prints `READY http://127.0.0.1:8099` once listening and serves, beside the webhook paths:
`GET /_stats` → `{"count": N, "ids": {webhook_id: times_seen}}`, `POST /_script` with
`{"path": "/hook", "replies": [{"status": 503}, {"status": 429, "headers": {"Retry-After": "2"}}]}`, and
`POST /_reset`. Paths starting with `/_` are control paths and are not counted. `--latency` and `--fail-rate`
(503 at random) set the weather of every request (`notifier.fakes.conditions`); `_stats` also carries the tally of
2xx answers (`accepted`, `repeats` of a webhook-id already answered 2xx, `first_at`, `last_at`), which
`GET /_tally` gives alone (with `count`, without the ids: cheap to poll).

Speed: the process must keep up with ~15k requests/s, so the per-request work is O(1) — a counter, one dict
update, one dict lookup for a script — with no logging, and bodies are kept only in-process or with --record.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from aiohttp import web

from notifier.fakes.conditions import Conditions, add_arguments
from notifier.fakes.process import serve_until_signalled

CONTROL_PREFIX = "/_"


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0  # seconds to wait before answering: a slow or hanging endpoint


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One request as the receiver saw it (the Standard Webhooks headers and the raw body)."""

    path: str
    webhook_id: str | None
    timestamp: str | None
    signature: str | None
    body: bytes
    received_at: float
    content_type: str | None = None
    cookie: str | None = None  # a sender must never send one: its session keeps no cookies


def _as_reply(spec: Reply | int) -> Reply:
    return spec if isinstance(spec, Reply) else Reply(status=spec)


class ReceiverState:
    """What the receiver counts, keeps and is scripted to answer. Handlers are its methods."""

    def __init__(self, *, keep_bodies: bool = True, record: TextIO | None = None,
                 weather: Conditions | None = None) -> None:
        self.weather = weather or Conditions()
        self.count = 0
        self.ids: dict[str, int] = {}
        self.received: list[ReceivedRequest] = []
        self._keep = keep_bodies
        self._record = record
        self._scripts: dict[str, deque[Reply]] = {}

    def script(self, path: str, replies: Iterable[Reply | int]) -> None:
        """Answer the next requests to `path` with `replies`, in order; afterwards 200 again."""
        self._scripts[path] = deque(_as_reply(r) for r in replies)

    def reset(self) -> None:
        """Forget everything received and every script."""
        self.count = 0
        self.ids.clear()
        self.received.clear()
        self._scripts.clear()
        self.weather.tally.reset()

    def stats(self) -> dict[str, Any]:
        return {"count": self.count, "ids": dict(self.ids), "tally": self.weather.tally.as_dict()}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()  # read it all so the connection stays reusable
        headers = request.headers
        webhook_id = headers.get("webhook-id")
        self.count += 1
        if webhook_id is not None:
            self.ids[webhook_id] = self.ids.get(webhook_id, 0) + 1
        if self._keep or self._record is not None:
            self._remember(request.path, headers, body)
        if await self.weather.refuse():
            return web.Response(status=503)
        script = self._scripts.get(request.path)
        if not script:
            self.weather.tally.accepted((webhook_id or request.path,))
            return web.Response()
        reply = script.popleft()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if 200 <= reply.status < 300:
            self.weather.tally.accepted((webhook_id or request.path,))
        return web.Response(status=reply.status, headers=dict(reply.headers), body=reply.body)

    def _remember(self, path: str, headers: Mapping[str, str], body: bytes) -> None:
        record = ReceivedRequest(
            path=path,
            webhook_id=headers.get("webhook-id"),
            timestamp=headers.get("webhook-timestamp"),
            signature=headers.get("webhook-signature"),
            body=body,
            received_at=time.time(),
            content_type=headers.get("Content-Type"),
            cookie=headers.get("Cookie"),
        )
        if self._keep:
            self.received.append(record)
        if self._record is not None:
            line = {
                "path": record.path,
                "webhook_id": record.webhook_id,
                "timestamp": record.timestamp,
                "signature": record.signature,
                "body": body.decode("utf-8", "replace"),
                "received_at": record.received_at,
            }
            self._record.write(json.dumps(line, ensure_ascii=False) + "\n")

    async def handle_stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.stats())

    async def handle_tally(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"count": self.count, **self.weather.tally.as_dict()})

    async def handle_script(self, request: web.Request) -> web.StreamResponse:
        try:
            data = await request.json()
            replies = [
                Reply(
                    status=int(r.get("status", 200)),
                    headers={str(k): str(v) for k, v in dict(r.get("headers", {})).items()},
                    body=str(r.get("body", "")).encode(),
                    delay=float(r.get("delay", 0.0)),
                )
                for r in data["replies"]
            ]
            path = str(data["path"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise web.HTTPBadRequest(text=f"bad script: {exc}") from exc
        self.script(path, replies)
        return web.json_response({"path": path, "replies": len(replies)})

    async def handle_reset(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return web.json_response({"ok": True})


RECEIVER_KEY = web.AppKey("receiver", ReceiverState)


def create_app(state: ReceiverState) -> web.Application:
    """The receiver's aiohttp application: control paths first, then every other path."""
    app = web.Application()
    app[RECEIVER_KEY] = state
    app.router.add_get(f"{CONTROL_PREFIX}stats", state.handle_stats)
    app.router.add_get(f"{CONTROL_PREFIX}tally", state.handle_tally)
    app.router.add_post(f"{CONTROL_PREFIX}script", state.handle_script)
    app.router.add_post(f"{CONTROL_PREFIX}reset", state.handle_reset)
    app.router.add_route("*", "/{tail:.*}", state.handle)
    return app


class RunningReceiver:
    """A receiver listening on a loopback port; stop it with `await stop()` (or use `async with`)."""

    def __init__(self, runner: web.AppRunner, state: ReceiverState, url: str, record: TextIO | None) -> None:
        self._runner = runner
        self.state = state
        self.url = url
        self._record = record

    @property
    def received(self) -> list[ReceivedRequest]:
        return self.state.received

    @property
    def count(self) -> int:
        return self.state.count

    @property
    def ids(self) -> dict[str, int]:
        return self.state.ids

    def url_for(self, path: str) -> str:
        return self.url + (path if path.startswith("/") else "/" + path)

    def script(self, path: str, replies: Iterable[Reply | int]) -> None:
        self.state.script(path, replies)

    def requests_to(self, path: str) -> list[ReceivedRequest]:
        return [r for r in self.state.received if r.path == path]

    async def stop(self) -> None:
        await self._runner.cleanup()
        if self._record is not None:
            self._record.close()

    async def __aenter__(self) -> RunningReceiver:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def start_receiver(
    host: str = "127.0.0.1", port: int = 0, *, keep_bodies: bool = True, record: Path | None = None,
    weather: Conditions | None = None,
) -> RunningReceiver:
    """Start a receiver on `host:port` (0 = a free port) and return once it is listening."""
    record_file = record.open("a", encoding="utf-8", buffering=1) if record is not None else None
    state = ReceiverState(keep_bodies=keep_bodies, record=record_file, weather=weather)
    # No access log (speed); a client that gives up cancels its handler, so a scripted delay never
    # holds shutdown; a short shutdown timeout so that stop() is quick in tests.
    runner = web.AppRunner(create_app(state), access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    sock = _listening_socket(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    try:
        await web.SockSite(runner, sock).start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        if record_file is not None:
            record_file.close()
        raise
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return RunningReceiver(runner, state, f"http://{shown}:{bound_port}", record_file)


async def _serve(host: str, port: int, record: Path | None, weather: Conditions) -> None:
    receiver = await start_receiver(host, port, keep_bodies=False, record=record, weather=weather)
    await serve_until_signalled(receiver.url, receiver.stop)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m notifier.fakes.webhook_receiver",
        description="A fake Standard Webhooks receiver on loopback, for the demo, tests and benchmarks.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (see the READY line)")
    parser.add_argument("--record", type=Path, help="append every request to this NDJSON file")
    add_arguments(parser)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.host, args.port, args.record, Conditions.from_args(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
