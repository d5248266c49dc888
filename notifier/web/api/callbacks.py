"""Provider callbacks: SMS delivery reports and replies, voice call results, and the WeChat server URL (handshake
and events).

Each is authenticated the provider's way — a configured `?token=` for SMS and voice (Aliyun and Tencent sign
nothing),
the sha1 signature over the WeChat token — before a byte of the body is trusted. A forged or replayed report
changes nothing: unauthenticated ones are refused, repeats are dropped by their key.
"""

from __future__ import annotations

import hmac
import importlib
import logging
import time
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from aiohttp import web

from channels import sms, voice, wechat
from channels.callbacks import all_receipts
from notifier.errors import NotFoundError, Unauthorized
from notifier.life_safety import UNDER_WAY_WAIT
from notifier.receipts import apply_sms_replies, wechat_unfollowed
from notifier.verification import bind_wechat
from notifier.web.openapi import operation
from notifier.web.problems import BadRequest
from notifier.web.state import SERVICE

log = logging.getLogger("notifier.web.callbacks")
routes = web.RouteTableDef()

TOKEN_PARAM = {"name": "token", "in": "query", "required": True, "schema": {"type": "string"},
               "description": "the configured receipt_token"}
WECHAT_PARAMS = [{"name": n, "in": "query", "required": True, "schema": {"type": "string"}}
                 for n in ("signature", "timestamp", "nonce")]


SAFE_MODE_PARAMS = [{"name": "encrypt_type", "in": "query", "required": False, "schema": {"type": "string"},
                     "description": "`aes` in safe and compatible modes"},
                    {"name": "msg_signature", "in": "query", "required": False, "schema": {"type": "string"},
                     "description": "sha1 over token, timestamp, nonce and <Encrypt> (safe and compatible modes)"}]


def _section(request: web.Request, kind: str) -> dict[str, Any]:
    section = request.app[SERVICE].settings.channels.get(kind)
    if section is None:
        raise NotFoundError(f"the {kind} channel is not configured")
    return section


def _secret(value: Any) -> str:
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value or "")


def _provider(request: web.Request, kind: str, providers: Mapping[str, str]) -> ModuleType:
    """The configured provider's module, after checking the `?token=`; 404 for another provider's path."""
    section = _section(request, kind)
    provider = request.match_info["provider"]
    if provider != section.get("provider") or provider not in providers:
        raise NotFoundError(f"{kind} provider {provider!r} is not the one configured")
    expected = _secret(section.get("receipt_token"))
    given = request.query.get("token", "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("missing or wrong receipt token")
    return importlib.import_module(providers[provider])


async def _apply_reports(request: web.Request, kind: str, providers: Mapping[str, str]) -> web.StreamResponse:
    """Parse the provider's report push, apply its receipts, answer as the provider expects. Parsed as routine work
    (`LifeSafetyWindow.routine_map`): once no life-safety work holds this process's window (waiting UNDER_WAY_WAIT
    at most in all), and its reports turned into receipts a slice a turn of the event loop — 500 reports in one step
    were milliseconds under a fan-out, which a red warning's steps, its very request, would wait behind."""
    provider = _provider(request, kind, providers)
    body = await request.read()
    window = request.app[SERVICE].dispatcher.window
    answer_by = time.monotonic() + UNDER_WAY_WAIT  # the wait for the window, in all: the provider gives up
    await window.routine_turn(at_most=UNDER_WAY_WAIT)
    try:
        reports = provider.pushed_reports(body)
    except ValueError as exc:
        raise BadRequest(f"not a {kind} report: {exc}") from None
    receipts = all_receipts(await window.routine_map(provider.receipts_of, reports,
                                                     at_most=max(0.0, answer_by - time.monotonic())))
    await request.app[SERVICE].reports.apply(kind, receipts)
    return web.json_response(provider.RECEIPT_ACK)


@routes.post("/v1/receipts/sms/{provider}")
@operation("SMS delivery reports pushed by the provider (aliyun: SmsReport array; tencent: status callback)",
           "callbacks", {200: ("the provider's acknowledgement", None)}, auth=False, errors=(400, 401, 404),
           extra={"parameters": [TOKEN_PARAM]})
async def sms_receipts(request: web.Request) -> web.StreamResponse:
    return await _apply_reports(request, "sms", sms.PROVIDERS)


@routes.post("/v1/receipts/voice/{provider}")
@operation("Voice call results pushed by the provider (aliyun: VoiceReport array; tencent: status and failure "
           "callbacks); answered calls count as reached, unanswered ones are called again",
           "callbacks", {200: ("the provider's acknowledgement", None)}, auth=False, errors=(400, 401, 404),
           extra={"parameters": [TOKEN_PARAM]})
async def voice_receipts(request: web.Request) -> web.StreamResponse:
    return await _apply_reports(request, "voice", voice.PROVIDERS)


@routes.post("/v1/uplink/sms/{provider}")
@operation("SMS replies pushed by the provider; TD / T / R / 退订 unsubscribe that number from SMS",
           "callbacks", {200: ("the provider's acknowledgement", None)}, auth=False, errors=(400, 401, 404),
           extra={"parameters": [TOKEN_PARAM]})
async def sms_uplink(request: web.Request) -> web.StreamResponse:
    provider = _provider(request, "sms", sms.PROVIDERS)
    try:
        replies = provider.parse_uplink(await request.read())
    except ValueError as exc:
        raise BadRequest(f"not an SMS reply: {exc}") from None
    await apply_sms_replies(request.app[SERVICE].store, [(r.phone, r.content) for r in replies])
    return web.json_response(provider.RECEIPT_ACK)


def _wechat_config(request: web.Request) -> wechat.WechatConfig:
    channel = request.app[SERVICE].channels.get("wechat")
    if not isinstance(channel, wechat.WechatChannel):
        raise NotFoundError("the wechat channel is not configured")
    return channel.config


@routes.get("/v1/wechat/callback")
@operation("WeChat server-URL handshake: echoes `echostr` when the signature verifies (decrypted when it comes "
           "with `msg_signature`)", "callbacks",
           {200: ("echostr, as text/plain", None)}, auth=False, errors=(401, 404), media_type="text/plain",
           extra={"parameters": [*WECHAT_PARAMS, {"name": "echostr", "in": "query", "required": True,
                                                  "schema": {"type": "string"}}]})
async def wechat_handshake(request: web.Request) -> web.StreamResponse:
    try:
        echo = wechat.handshake_echo(_wechat_config(request), request.query)
    except wechat.CallbackRejected as exc:
        raise Unauthorized(str(exc)) from None
    except ValueError as exc:
        raise BadRequest(f"not a WeChat handshake: {exc}") from None
    return web.Response(text=echo, content_type="text/plain")


@routes.post("/v1/wechat/callback")
@operation("WeChat events (plain, compatible or safe mode): TEMPLATESENDJOBFINISH receipts, unsubscribe",
           "callbacks",
           {200: ("the literal `success`", None)}, auth=False, errors=(400, 401, 404), media_type="text/plain",
           extra={"parameters": [*WECHAT_PARAMS, *SAFE_MODE_PARAMS]})
async def wechat_event(request: web.Request) -> web.StreamResponse:
    config = _wechat_config(request)
    if (request.content_length or 0) > wechat.MAX_EVENT_BYTES:
        raise BadRequest("the event is larger than any WeChat event")
    try:
        event = wechat.parse_event(wechat.event_xml(config, request.query, await request.read()))
    except wechat.CallbackRejected as exc:
        raise Unauthorized(str(exc)) from None
    except ValueError as exc:
        raise BadRequest(f"not a WeChat event: {exc}") from None
    store = request.app[SERVICE].store
    receipt = wechat.receipt_from_event(event)
    if receipt is not None:
        await request.app[SERVICE].reports.apply("wechat", [receipt])
    elif (event.event or "").lower() == "unsubscribe" and event.openid:
        await wechat_unfollowed(store, event.openid)
    elif event.scene is not None:  # a follow or scan through a sign-up's QR code binds WeChat to it
        await bind_wechat(store, event)
    return web.Response(text=wechat.ECHO_OK, content_type="text/plain")
