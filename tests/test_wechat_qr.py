"""The sign-up's WeChat QR code (notifier.wechat_qr): a temporary QR_STR_SCENE code made with qrcode/create, shown
from showqrcode; failures give None. Served by a small stand-in for the WeChat API on loopback (the bundled fake
does not offer qrcode/create)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from channels.base import ChannelContext
from channels.wechat import WechatChannel, create
from notifier.wechat_qr import SHOW_QR, scene_qr_url

TICKET = "gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJAAIEZ23sUwMEmm3sUw=="


@dataclass
class QrApi:
    """The stand-in's state: the bodies qrcode/create received, and its next answers."""

    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    issued: int = 0


@pytest.fixture
async def qr_api() -> AsyncIterator[QrApi]:
    state = QrApi()

    async def stable_token(request: web.Request) -> web.Response:
        state.issued += 1
        return web.json_response({"access_token": f"TOKEN{state.issued}", "expires_in": 7200})

    async def qrcode_create(request: web.Request) -> web.Response:
        state.tokens.append(request.query["access_token"])
        state.bodies.append(await request.json())
        answer = state.answers.pop(0) if state.answers else {"ticket": TICKET, "expire_seconds": 86400,
                                                              "url": "http://weixin.qq.com/q/kZgfwMTm72WWPkovabbI"}
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/cgi-bin/stable_token", stable_token)
    app.router.add_post("/cgi-bin/qrcode/create", qrcode_create)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state.url = str(server.make_url("")).rstrip("/")
    try:
        yield state
    finally:
        await server.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _channel(api: QrApi, http: aiohttp.ClientSession) -> WechatChannel:
    return create({"endpoint": api.url, "app_id": "wx-test", "app_secret": "secret", "token": "t",
                   "template_id": "TPL-1"}, ChannelContext(http=http, public_url="http://127.0.0.1"))


async def test_a_string_scene_code_is_asked_for_and_shown_from_showqrcode(qr_api: QrApi,
                                                                         http: aiohttp.ClientSession) -> None:
    """qrcode/create gets a QR_STR_SCENE request with the scene; the answer's ticket makes the image URL."""
    url = await scene_qr_url(_channel(qr_api, http), http, "sub_abc")
    assert qr_api.bodies == [{"expire_seconds": 86400, "action_name": "QR_STR_SCENE",
                              "action_info": {"scene": {"scene_str": "sub_abc"}}}]
    assert url is not None and url.startswith(SHOW_QR + "?")
    assert parse_qs(urlsplit(url).query) == {"ticket": [TICKET]}


async def test_a_refused_token_is_replaced_once(qr_api: QrApi, http: aiohttp.ClientSession) -> None:
    """An expired-token answer (42001) gets a fresh token and one retry."""
    qr_api.answers.append({"errcode": 42001, "errmsg": "access_token expired"})
    url = await scene_qr_url(_channel(qr_api, http), http, "sub_abc")
    assert url is not None and qr_api.tokens == ["TOKEN1", "TOKEN2"]


async def test_an_error_answer_gives_no_code(qr_api: QrApi, http: aiohttp.ClientSession) -> None:
    """Any other errcode means no picture (the page shows the scene instead)."""
    qr_api.answers.append({"errcode": 40013, "errmsg": "invalid appid"})
    assert await scene_qr_url(_channel(qr_api, http), http, "sub_abc") is None


async def test_no_wechat_channel_gives_no_code(http: aiohttp.ClientSession) -> None:
    """Without a configured WeChat channel there is nothing to ask."""
    assert await scene_qr_url(None, http, "sub_abc") is None
