"""The bundled fake WeChat API (official account): tokens, template messages and pushed events, on loopback.

It answers like api.weixin.qq.com for the parts the WeChat channel uses, and pushes events to the service's
server URL signed with the configured Token, exactly as WeChat does:

- `POST /cgi-bin/stable_token` (JSON): wrong appid 40013, wrong secret 40125, bad grant_type 40002. Normal mode
  returns the same token until the last 5 minutes (a quarter of a short test lifetime), then a new one while the
  old works to its end. `force_refresh: true` replaces it at once (the old one then gets 40001), 20 a day (then
  45009); a second one within 30 s returns the current token unchanged.
- `GET /cgi-bin/token`: same checks; every call issues a new token and cuts the previous one's life to 5 minutes.
- `POST /cgi-bin/message/template/send?access_token=…`: missing token 41001, unknown 40014, expired 42001,
  replaced 40001; unreadable JSON 47001; no touser 40003; unknown template_id 40037 (when templates are given);
  a keyword value over its type's limit (thing 20, phrase 5, character_string 32, … characters) 47003; the same
  openid + client_msg_id within 10 minutes 45065; an openid that unfollowed 43004; else
  `{"errcode":0,"errmsg":"ok","msgid":N}` and, `receipt_delay` seconds later, a TEMPLATESENDJOBFINISH event.
- Events are POSTed to `callback_url` + `?signature=…&timestamp=…&nonce=…&openid=…` (the official sample's
  XML); an answer other than 200 or a 5 s silence is retried up to 3 times, like WeChat. With
  `callback_mode="safe"` (and `encoding_aes_key`) the body is `<xml><ToUserName/><Encrypt/></xml>` and the query
  adds `encrypt_type=aes&msg_signature=…`, as WeChat's safe mode does; `"compatible"` sends the plaintext fields
  and the `<Encrypt>` together.

Scripts make an openid misbehave: `script(openid, behaviour, times=None)` (None: until changed) with behaviour
`not_following` (43004), `refused` (43101), `throttle` (45009), `busy` (-1), `5xx` (HTTP 503), `timeout` (no
answer), `errcode:<n>` (that errcode), `receipt_fail` (Status `failed:user block`), `receipt_system_fail`
(`failed: system failed`), `late_receipt` (after `late_receipt_delay`), `no_receipt`, or `ok`.
`stable_available = False` makes `stable_token` answer 404 (an API host without it).

In-process (tests)::

    fake = await start_wechat(app_id="wx1", app_secret="s", token="t", callback_url=url, token_ttl=60)
    fake.script("o…", "not_following"); fake.expire_tokens(); await fake.push_event("o…", "unsubscribe")
    fake.sent, fake.token_fetches, fake.pushed; await fake.wait_pushes()
    await fake.stop()

As a process (demo, benchmarks)::

    python -m notifier.fakes.wechat --port 8098 --app-id wx1 --app-secret s --token t --callback-url URL \\
        [--latency 0.05] [--fail-rate 0.05] [--count-repeats]

(the weather of every template send, `notifier.fakes.conditions`: a failure is HTTP 503; `_stats` has its tally)

prints `READY http://127.0.0.1:8098`; control paths: `GET /_stats`, `POST /_script {"openid","behaviour","times"}`,
`POST /_expire_tokens`, `POST /_push_event {"openid","event","event_key"}`, `POST /_reset`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import secrets
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from channels.wechat_crypto import MessageCrypt
from notifier.fakes.conditions import Conditions, add_arguments
from notifier.fakes.process import Background, serve_until_signalled

BEHAVIOURS = frozenset({"ok", "not_following", "refused", "throttle", "busy", "5xx", "timeout", "receipt_fail",
                        "receipt_system_fail", "late_receipt", "no_receipt"})
SEND_ERRORS = {"not_following": 43004, "refused": 43101, "throttle": 45009, "busy": -1}
RECEIPT_STATUS = {"receipt_fail": "failed:user block", "receipt_system_fail": "failed: system failed"}
VALUE_LIMITS = {"thing": 20, "phrase": 5, "const": 20, "character_string": 32, "number": 32, "letter": 32,
                "symbol": 5, "phone_number": 17, "car_number": 8}
DEDUPE_SECONDS = 600.0  # client_msg_id: "对于同一个openid + client_msg_id, 只发送一条消息,10分钟有效"
FORCED_PER_DAY, FORCED_MIN_INTERVAL = 20, 30.0
PUSH_TIMEOUT, PUSH_RETRIES = 5.0, 3
ERRCODE_BEHAVIOUR = re.compile(r"errcode:-?\d+")  # any other answer, e.g. "errcode:48001"
HANG_SECONDS = 3600.0  # "timeout": the client gives up first and its disconnect cancels the handler


@dataclass(slots=True)
class _Token:
    expires_at: float
    replaced: bool = False  # force-refreshed away (40001), or revoked by a test


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A template message the fake accepted."""

    openid: str = field(repr=False)
    template_id: str
    url: str | None
    data: Mapping[str, Any]
    client_msg_id: str | None
    msgid: int
    at: float


@dataclass(frozen=True, slots=True)
class PushedEvent:
    """An event the fake pushed to the callback URL, and the last HTTP status (None: no answer)."""

    openid: str = field(repr=False)
    event: str
    status: int | None
    body: bytes
    attempts: int


@dataclass(slots=True)
class _Script:
    behaviour: str
    remaining: int | None


def _error(code: int, msg: str) -> web.Response:
    return web.json_response({"errcode": code, "errmsg": f"{msg} rid: {secrets.token_hex(4)}"})


def cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def signed_query(token: str, openid: str | None = None) -> dict[str, str]:
    """signature/timestamp/nonce (and openid) for a push, as WeChat computes them."""
    timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**10))
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode(), usedforsecurity=False).hexdigest()
    query = {"signature": signature, "timestamp": timestamp, "nonce": nonce}
    if openid is not None:
        query["openid"] = openid
    return query


def event_xml(original_id: str, openid: str, event: str, *, msg_id: int | None = None, status: str | None = None,
              event_key: str | None = None) -> bytes:
    """An event as WeChat pushes it (CDATA for strings, as in the official samples)."""
    parts = [f"<ToUserName>{cdata(original_id)}</ToUserName>", f"<FromUserName>{cdata(openid)}</FromUserName>",
             f"<CreateTime>{int(time.time())}</CreateTime>", f"<MsgType>{cdata('event')}</MsgType>",
             f"<Event>{cdata(event)}</Event>"]
    if msg_id is not None:
        parts.append(f"<MsgID>{msg_id}</MsgID>")
    if status is not None:
        parts.append(f"<Status>{cdata(status)}</Status>")
    if event_key is not None:
        parts.append(f"<EventKey>{cdata(event_key)}</EventKey>")
    return ("<xml>" + "".join(parts) + "</xml>").encode()


class WechatState:
    """Accounts, tokens, sends, scripts and pushes of the fake. Handlers are its methods."""

    def __init__(self, *, app_id: str, app_secret: str, token: str, callback_url: str | None = None,
                 receipt_delay: float = 0.05, late_receipt_delay: float = 1.0, token_ttl: float = 7200,
                 templates: set[str] | None = None, original_id: str = "gh_fake00000001",
                 encoding_aes_key: str | None = None, callback_mode: str = "plain",
                 weather: Conditions | None = None) -> None:
        self.weather = weather or Conditions()
        self.app_id, self.app_secret, self.token = app_id, app_secret, token
        self.callback_url = callback_url
        self.receipt_delay, self.late_receipt_delay = receipt_delay, late_receipt_delay
        self.token_ttl = token_ttl
        self.templates = templates  # None: any template_id is known
        self.original_id = original_id
        self.stable_available = True
        self.http: aiohttp.ClientSession | None = None
        self.callback_mode = callback_mode  # "plain" | "safe" | "compatible", as set in the MP console
        self.crypt = None if encoding_aes_key is None else MessageCrypt(token, encoding_aes_key, app_id)
        self._pushes = Background()
        self.reset()

    def reset(self) -> None:
        self.tokens: dict[str, _Token] = {}
        self.stable_current: str | None = None
        self.classic_current: str | None = None
        self.forced: deque[float] = deque()
        self.token_fetches = 0
        self.sent: list[SentMessage] = []
        self.pushed: list[PushedEvent] = []
        self.scripts: dict[str, _Script] = {}
        self.unfollowed: set[str] = set()
        self._dedupe: dict[tuple[str, str], float] = {}
        self._dedupe_order: deque[tuple[float, tuple[str, str]]] = deque()
        self._next_msgid = 3_100_000_000_000_000_000
        self.weather.tally.reset()

    # ---- control ----------------------------------------------------------------------------------------------

    def script(self, openid: str, behaviour: str, times: int | None = None) -> None:
        if behaviour not in BEHAVIOURS and not ERRCODE_BEHAVIOUR.fullmatch(behaviour):
            raise ValueError(f"unknown behaviour {behaviour!r}; known: {', '.join(sorted(BEHAVIOURS))}")
        self.scripts[openid] = _Script(behaviour, times)

    def expire_tokens(self) -> None:
        """Every token issued so far expires now (the API answers 42001; the next fetch gets a new one)."""
        now = time.monotonic()
        for record in self.tokens.values():
            record.expires_at = min(record.expires_at, now - 1)

    def revoke_stable_token(self) -> None:
        """The current stable token is refused (40001) while stable_token keeps returning it: only force helps."""
        if self.stable_current is not None:
            self.tokens[self.stable_current].replaced = True

    def _behaviour(self, openid: str) -> str:
        entry = self.scripts.get(openid)
        if entry is None:
            return "ok"
        if entry.remaining is not None:
            entry.remaining -= 1
            if entry.remaining <= 0:
                del self.scripts[openid]
        return entry.behaviour

    # ---- tokens -----------------------------------------------------------------------------------------------

    def _credentials_error(self, grant_type: Any, appid: Any, secret: Any) -> web.Response | None:
        if grant_type != "client_credential":
            return _error(40002, "invalid grant_type")
        if appid != self.app_id:
            return _error(40013, "invalid appid")
        if secret != self.app_secret:
            return _error(40125, "invalid appsecret")
        return None

    def _issue(self) -> str:
        value = secrets.token_urlsafe(96)  # real tokens are ~140 characters; clients must keep ≥512
        self.tokens[value] = _Token(time.monotonic() + self.token_ttl)
        return value

    def _answer_token(self, value: str) -> web.Response:
        left = max(1, int(self.tokens[value].expires_at - time.monotonic()))
        return web.json_response({"access_token": value, "expires_in": left})

    async def handle_stable_token(self, request: web.Request) -> web.StreamResponse:
        if not self.stable_available:
            raise web.HTTPNotFound()
        try:
            body = await request.json()
        except ValueError:
            return _error(47001, "data format error")
        if not isinstance(body, dict):
            return _error(47001, "data format error")
        refused = self._credentials_error(body.get("grant_type"), body.get("appid"), body.get("secret"))
        if refused is not None:
            return refused
        self.token_fetches += 1
        now, current = time.monotonic(), self.stable_current
        if body.get("force_refresh") is True:
            while self.forced and now - self.forced[0] > 86_400:
                self.forced.popleft()
            if current is not None and self.forced and now - self.forced[-1] < FORCED_MIN_INTERVAL:
                return self._answer_token(current)  # "连续使用该模式时,请保证调用时间隔至少为30s,否则不会刷新"
            if len(self.forced) >= FORCED_PER_DAY:
                return _error(45009, "reach max api daily quota limit")
            self.forced.append(now)
            if current is not None:
                self.tokens[current].replaced = True
        elif current is not None:
            record = self.tokens[current]
            window = min(300.0, self.token_ttl / 4)
            if record.expires_at - now > window:
                return self._answer_token(current)
        self.stable_current = self._issue()
        return self._answer_token(self.stable_current)

    async def handle_token(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        refused = self._credentials_error(query.get("grant_type"), query.get("appid"), query.get("secret"))
        if refused is not None:
            return refused
        self.token_fetches += 1
        if self.classic_current is not None:  # the previous one works for 5 more minutes at most
            old = self.tokens[self.classic_current]
            old.expires_at = min(old.expires_at, time.monotonic() + min(300.0, self.token_ttl))
        self.classic_current = self._issue()
        return self._answer_token(self.classic_current)

    def _token_error(self, value: str | None) -> web.Response | None:
        if not value:
            return _error(41001, "access_token missing")
        record = self.tokens.get(value)
        if record is None:
            return _error(40014, "invalid access_token")
        if record.replaced:
            return _error(40001, "invalid credential, access_token is invalid or not latest")
        if record.expires_at <= time.monotonic():
            return _error(42001, "access_token expired")
        return None

    # ---- template/send ----------------------------------------------------------------------------------------

    def _body_error(self, body: Any) -> web.Response | None:
        if not isinstance(body, dict) or not isinstance(body.get("data", {}), dict):
            return _error(47001, "data format error")
        if not isinstance(body.get("touser"), str) or not body["touser"]:
            return _error(40003, "invalid openid")
        if not isinstance(body.get("template_id"), str) or (
                self.templates is not None and body["template_id"] not in self.templates):
            return _error(40037, "invalid template_id")
        for keyword, item in body.get("data", {}).items():
            value = item.get("value") if isinstance(item, dict) else None
            limit = VALUE_LIMITS.get(str(keyword).rstrip("0123456789"))
            if not isinstance(value, str) or (limit is not None and len(value) > limit):
                return _error(47003, f"argument invalid! data.{keyword}.value invalid")
        client_msg_id = body.get("client_msg_id")
        if client_msg_id is not None and (not isinstance(client_msg_id, str) or len(client_msg_id.encode()) > 64):
            return _error(45067, "clientmsgid size out of limit")
        return None

    def _seen(self, openid: str, client_msg_id: str | None) -> bool:
        now = time.monotonic()
        while self._dedupe_order and now - self._dedupe_order[0][0] > DEDUPE_SECONDS:
            self._dedupe.pop(self._dedupe_order.popleft()[1], None)
        if client_msg_id is None:
            return False
        key = (openid, client_msg_id)
        if key in self._dedupe:
            return True
        self._dedupe[key] = now
        self._dedupe_order.append((now, key))
        return False

    async def handle_send(self, request: web.Request) -> web.StreamResponse:
        refused = self._token_error(request.query.get("access_token"))
        if refused is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return _error(47001, "data format error")
        refused = self._body_error(body)
        if refused is not None:
            return refused
        openid: str = body["touser"]
        behaviour = self._behaviour(openid)
        if behaviour == "ok" and await self.weather.refuse():
            behaviour = "5xx"
        if behaviour == "5xx":
            return web.Response(status=503, text="Service Unavailable")
        if behaviour == "timeout":
            await asyncio.sleep(HANG_SECONDS)
        if behaviour in SEND_ERRORS:
            return _error(SEND_ERRORS[behaviour], behaviour.replace("_", " "))
        if behaviour.startswith("errcode:"):
            return _error(int(behaviour.removeprefix("errcode:")), "scripted error")
        if openid in self.unfollowed:
            return _error(43004, "require subscribe")
        if self._seen(openid, body.get("client_msg_id")):
            return _error(45065, "clientmsgid exist")
        self._next_msgid += 1
        msgid = self._next_msgid
        self.sent.append(SentMessage(openid, body["template_id"], body.get("url"), body.get("data", {}),
                                     body.get("client_msg_id"), msgid, time.time()))
        self.weather.tally.accepted((openid,))
        if behaviour != "no_receipt":
            delay = self.late_receipt_delay if behaviour == "late_receipt" else self.receipt_delay
            xml = event_xml(self.original_id, openid, "TEMPLATESENDJOBFINISH", msg_id=msgid,
                            status=RECEIPT_STATUS.get(behaviour, "success"))
            self._pushes.spawn(self.push(openid, "TEMPLATESENDJOBFINISH", xml, delay=delay))
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    # ---- pushes -----------------------------------------------------------------------------------------------

    async def push(self, openid: str, event: str, xml: bytes, *, delay: float = 0.0) -> int | None:
        """POST one event to the callback URL, signed; retried like WeChat. The last status, None for none."""
        await asyncio.sleep(delay)
        if self.callback_url is None or self.http is None:
            return None
        status: int | None = None
        attempts = 0
        while attempts <= PUSH_RETRIES:
            if attempts:
                await asyncio.sleep(0.05 * attempts)
            attempts += 1
            status, answer = await self._post_event(self.http, self.callback_url, openid, xml)
            if status == 200 and answer in (b"", b"success"):
                break
        self.pushed.append(PushedEvent(openid, event, status, xml, attempts))
        return status

    def envelope(self, openid: str, xml: bytes) -> tuple[dict[str, str], bytes]:
        """The query and body of one push in the configured mode (safe: only <Encrypt>; compatible: both)."""
        query = signed_query(self.token, openid)
        if self.callback_mode == "plain" or self.crypt is None:
            return query, xml
        encrypt = self.crypt.encrypt(xml)
        query |= {"encrypt_type": "aes",
                  "msg_signature": self.crypt.signature(query["timestamp"], query["nonce"], encrypt)}
        sealed = f"<Encrypt>{cdata(encrypt)}</Encrypt>"
        if self.callback_mode == "compatible":
            return query, xml.replace(b"</xml>", sealed.encode() + b"</xml>")
        return query, f"<xml><ToUserName>{cdata(self.original_id)}</ToUserName>{sealed}</xml>".encode()

    async def _post_event(self, http: aiohttp.ClientSession, url: str, openid: str,
                          xml: bytes) -> tuple[int | None, bytes]:
        query, body = self.envelope(openid, xml)
        try:
            async with http.post(url, params=query, data=body,
                                 headers={"Content-Type": "text/xml"},
                                 timeout=aiohttp.ClientTimeout(total=PUSH_TIMEOUT)) as response:
                return response.status, (await response.read()).strip()
        except (aiohttp.ClientError, OSError):
            return None, b""

    async def push_event(self, openid: str, event: str = "unsubscribe", event_key: str | None = None) -> int | None:
        """Push a follow/unfollow (or SCAN) event now; unsubscribe also makes later sends answer 43004."""
        if event == "unsubscribe":
            self.unfollowed.add(openid)
        elif event == "subscribe":
            self.unfollowed.discard(openid)
        xml = event_xml(self.original_id, openid, event, event_key=event_key)
        return await self.push(openid, event, xml)

    async def wait_pushes(self) -> None:
        """Wait until every scheduled push (receipts included) has been made."""
        await self._pushes.settle()

    async def close(self) -> None:
        await self._pushes.cancel()
        if self.http is not None:
            await self.http.close()

    # ---- process control paths --------------------------------------------------------------------------------

    async def handle_stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"sent": len(self.sent), "token_fetches": self.token_fetches,
                                  "pushed": len(self.pushed), "pending_pushes": len(self._pushes.tasks),
                                  "tally": self.weather.tally.as_dict()})

    async def handle_control(self, request: web.Request) -> web.StreamResponse:
        """POST /_script, /_push_event (JSON bodies), /_expire_tokens, /_reset."""
        action = request.match_info["action"]
        try:
            data = await request.json() if action in ("script", "push_event") else {}
            if action == "script":
                times = data.get("times")
                self.script(str(data["openid"]), str(data["behaviour"]), None if times is None else int(times))
            elif action == "push_event":
                key = data.get("event_key")
                status = await self.push_event(str(data["openid"]), str(data.get("event", "unsubscribe")),
                                               None if key is None else str(key))
                return web.json_response({"status": status})
            elif action == "expire_tokens":
                self.expire_tokens()
            elif action == "reset":
                self.reset()
            else:
                raise web.HTTPNotFound()
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise web.HTTPBadRequest(text=f"bad {action} request: {exc}") from exc
        return web.json_response({"ok": True})


WECHAT_KEY = web.AppKey("wechat", WechatState)


def create_app(state: WechatState) -> web.Application:
    app = web.Application()
    app[WECHAT_KEY] = state
    app.router.add_post("/cgi-bin/stable_token", state.handle_stable_token)
    app.router.add_get("/cgi-bin/token", state.handle_token)
    app.router.add_post("/cgi-bin/message/template/send", state.handle_send)
    app.router.add_get("/_stats", state.handle_stats)
    app.router.add_post("/_{action}", state.handle_control)
    return app


class RunningWechat(WechatState):
    """The fake listening on loopback at `url`, with every WechatState record and control; `await stop()` it."""

    url: str = ""
    _runner: web.AppRunner | None = None

    async def stop(self) -> None:
        await self.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> RunningWechat:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def start_wechat(host: str = "127.0.0.1", port: int = 0, *, app_id: str, app_secret: str, token: str,
                       callback_url: str | None = None, receipt_delay: float = 0.05, token_ttl: float = 7200,
                       late_receipt_delay: float = 1.0, templates: set[str] | None = None,
                       encoding_aes_key: str | None = None, callback_mode: str = "plain",
                       weather: Conditions | None = None) -> RunningWechat:
    """Start the fake on `host:port` (0 = a free port) and return once it is listening; `callback_mode` "safe" or
    "compatible" (with `encoding_aes_key`) encrypts the pushed events."""
    fake = RunningWechat(app_id=app_id, app_secret=app_secret, token=token, callback_url=callback_url,
                         receipt_delay=receipt_delay, late_receipt_delay=late_receipt_delay, token_ttl=token_ttl,
                         templates=templates, encoding_aes_key=encoding_aes_key, callback_mode=callback_mode,
                         weather=weather)
    runner = web.AppRunner(create_app(fake), access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]
    fake.http = aiohttp.ClientSession()  # for pushes; opened in the running loop, closed by stop()
    fake._runner = runner
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    fake.url = f"http://{shown}:{bound_port}"
    return fake


async def _serve(args: argparse.Namespace) -> None:
    fake = await start_wechat(args.host, args.port, app_id=args.app_id, app_secret=args.app_secret,
                              token=args.token, callback_url=args.callback_url, receipt_delay=args.receipt_delay,
                              token_ttl=args.token_ttl, encoding_aes_key=args.encoding_aes_key,
                              callback_mode=args.callback_mode, weather=Conditions.from_args(args))
    await serve_until_signalled(fake.url, fake.stop)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notifier.fakes.wechat",
                                     description="A fake WeChat official-account API on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (see the READY line)")
    parser.add_argument("--app-id", default="wxfake0000000001")
    parser.add_argument("--app-secret", default="fake-app-secret")
    parser.add_argument("--token", default="fake-callback-token", help="the server-URL Token that signs pushes")
    parser.add_argument("--callback-url", help="the service's /v1/wechat/callback URL")
    parser.add_argument("--receipt-delay", type=float, default=0.05)
    parser.add_argument("--token-ttl", type=float, default=7200)
    parser.add_argument("--encoding-aes-key", help="the EncodingAESKey (43 characters) for safe/compatible mode")
    parser.add_argument("--callback-mode", choices=("plain", "safe", "compatible"), default="plain")
    add_arguments(parser)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
