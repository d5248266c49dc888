"""The QR code a citizen scans to follow the official account and bind WeChat to their sign-up: a temporary QR
code with a string scene (`qrcode/create`, action QR_STR_SCENE), shown from WeChat's own `showqrcode` URL.

Docs: https://developers.weixin.qq.com/doc/offiaccount/Account_Management/Generating_a_Parametric_QR_Code.html
- `POST {endpoint}/cgi-bin/qrcode/create?access_token=…` with
  `{"expire_seconds": ≤2592000, "action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": "…"}}}`
  (scene_str 1–64 characters) → `{"ticket": "…", "expire_seconds": …, "url": "http://weixin.qq.com/q/…"}`.
- The image: `https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=<ticket, URL-encoded>`.
- A follow through the code pushes `subscribe` with `EventKey` `qrscene_<scene_str>`; a follower's scan pushes
  `SCAN` with `EventKey` `<scene_str>` (`channels.wechat.WechatEvent.scene`, `notifier.verification.bind_wechat`).

Any failure gives None: the page then shows the scene for the help desk instead of a picture.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp

from channels.base import Channel
from channels.errors import DeliveryError
from channels.wechat import TOKEN_ERRORS, WechatChannel

log = logging.getLogger("notifier.wechat_qr")

SHOW_QR = "https://mp.weixin.qq.com/cgi-bin/showqrcode"
MAX_EXPIRE = 2_592_000  # 30 days, WeChat's longest for a temporary code


async def _create(http: aiohttp.ClientSession, channel: WechatChannel, token: str,
                  body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    url = channel.config.endpoint.rstrip("/") + "/cgi-bin/qrcode/create"
    try:
        async with http.post(url, params={"access_token": token}, json=body, allow_redirects=False,
                             raise_for_status=False,
                             timeout=aiohttp.ClientTimeout(total=channel.config.timeout)) as response:
            if response.status != 200:
                await response.read()
                return None
            answer = await response.json(content_type=None)
    except (aiohttp.ClientError, OSError, ValueError):  # TimeoutError is an OSError
        return None
    return answer if isinstance(answer, Mapping) else None


async def scene_qr_url(channel: Channel | None, http: aiohttp.ClientSession, scene: str,
                       expire_seconds: int = 86400) -> str | None:
    """The showqrcode URL of a temporary QR code carrying `scene`, or None when it cannot be made."""
    if not isinstance(channel, WechatChannel):
        return None
    body = {"expire_seconds": min(expire_seconds, MAX_EXPIRE), "action_name": "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": scene}}}
    try:
        token = await channel.tokens.get()
        answer = await _create(http, channel, token, body)
        if answer is not None and answer.get("errcode") in TOKEN_ERRORS:
            answer = await _create(http, channel, await channel.tokens.invalidate(token), body)
    except DeliveryError:
        return None
    ticket = answer.get("ticket") if answer is not None else None
    if not isinstance(ticket, str) or not ticket:
        log.warning("wechat qrcode/create failed", extra={"errcode": answer.get("errcode") if answer else None})
        return None
    return f"{SHOW_QR}?{urlencode({'ticket': ticket})}"
