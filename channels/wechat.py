"""WeChat official account (服务号) channel: template messages, whose TEMPLATESENDJOBFINISH event is the receipt.

Docs:
- send: https://developers.weixin.qq.com/doc/service/api/notify/template/api_sendtemplatemessage.html
- template rules, keyword value limits, TEMPLATESENDJOBFINISH:
  https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Template_Message_Interface.html
- access token: see `channels.wechat_token`
- server URL (signature, event push): https://developers.weixin.qq.com/doc/service/guide/dev/push
- follow/unfollow and QR-scene events:
  https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Receiving_event_pushes.html

Setup
-----
1. A *verified* service account (认证服务号); only those may send template messages.
2. MP console → 设置与开发 → 基本配置: note the AppID and AppSecret (`app_id`, `app_secret`); add the public IP(s)
   of every host that calls the API to the IP whitelist (else token requests fail with 40164).
3. Same page → 服务器配置: URL `https://<public host>/v1/wechat/callback`, a Token of your choosing (`token`),
   an EncodingAESKey (`encoding_aes_key`, 43 characters), a message mode — 明文 (plaintext), 兼容 (compatible) or
   安全 (safe) — set the same as `callback_mode` ("plain" | "compatible" | "safe"; safe is what production accounts
   use), data format XML. Enable it: WeChat calls the URL with a GET handshake that the service answers.
4. 广告与服务 → 模板消息: pick the service categories, then choose templates from the public library; each
   template has an ID (`template_id`, per topic under `[channels.wechat.templates]`) and keyword names shown as
   `{{thing1.DATA}}` in its 详细内容. Map our fields to them with `[channels.wechat.field_map]`.
5. Configuration::

       [channels.wechat]
       app_id = "wx…"
       app_secret = "…"
       token = "…"                      # the 服务器配置 Token
       encoding_aes_key = "…"           # the 服务器配置 EncodingAESKey (safe and compatible modes)
       callback_mode = "safe"           # "plain" | "compatible" | "safe", as set in the console
       template_id = "…"                # default template
       [channels.wechat.templates]
       "env.heavy-pollution" = "…"
       [channels.wechat.field_map]      # our field → the template's keyword (defaults below)
       headline = "thing1"

Fields: the renderer fills `Message.fields` (headline, department, time, level, detail, remark). The default
`field_map` suits a category template (类目模板) of the shape 预警名称/发布单位/发布时间/预警级别/详细内容:
headline→thing1, department→thing2, time→time3, level→thing4, detail→thing5; `remark` is left out because
category templates no longer show `first`/`remark`. A field with no keyword is not sent. Values are cut to the
keyword type's documented limit (thing 20 characters, phrase 5, character_string 32, …; longer values are
refused with 47003), counted in UTF-16 units so an emoji never makes it over, never splitting a character.

Answers (one helper, `classify`): errcode 0 → ACCEPTED with `msgid` (the receipt's MsgID); 45065 (this
client_msg_id was already sent within 10 minutes) → ACCEPTED without msgid: that request *was* the earlier
send of this delivery, retried after a lost answer, and sending again is exactly what client_msg_id prevents (its
receipt cannot be matched, so the delivery waits out its fallback window like a lost receipt); 43004 not
following, 43101 refused, 40003 invalid openid, 40037 invalid template, 47003 bad data → PERMANENT (the dispatcher
falls back); -1, 45009, 45011 (retry after 60 s), 45066 (retry after 60 s), HTTP 5xx/408/429, timeouts →
TRANSIENT; 40001/40014/42001 → the token is replaced once and the send retried once, then TRANSIENT; any other
errcode → PERMANENT with the code. Errors carry codes only: `errmsg` is not kept.

Callbacks (`handshake_echo`, `event_xml`, `parse_event`, `receipt_from_event`, `ECHO_OK`) are for the
`/v1/wechat/callback` handler: verify first (`CallbackRejected`: 401), open the event — the body itself in plain
mode, the message inside `<Encrypt>` when `encrypt_type=aes` (channels.wechat_crypto; in safe mode nothing else is
taken, in compatible mode both) — then parse, then answer ECHO_OK within 5 seconds (WeChat retries 3 times).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal
from xml.etree.ElementTree import Element, ParseError

import aiohttp
import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from yarl import URL

from channels import jsonbody
from channels.base import (
    ChannelContext,
    DeliveryResult,
    Message,
    Outcome,
    Receipt,
    Recipient,
    internal_error,
    send_each,
)
from channels.errors import DeliveryError, PermanentDeliveryError
from channels.http import UNTIMED
from channels.wechat_crypto import MessageCrypt, aes_key
from channels.wechat_token import AccessTokenCache

log = logging.getLogger(__name__)

ECHO_OK = "success"  # the answer to an event POST (an empty body works too); never anything else
EVENT_TEMPLATE_FINISH = "TEMPLATESENDJOBFINISH"
MAX_EVENT_BYTES = 32 * 1024  # events are a few hundred bytes; compatible mode adds an <Encrypt> of ~1-2 KB
SIGNATURE_MAX_SKEW = 300.0  # seconds a callback's timestamp may be from our clock (WeChat retries within ~15 s)
QR_SCENE_PREFIX = "qrscene_"

DEFAULT_FIELD_MAP = {"headline": "thing1", "department": "thing2", "time": "time3", "level": "thing4",
                     "detail": "thing5"}
# Keyword type (the name without its trailing digits) → longest value in UTF-16 units. time/date/amount have
# formats rather than lengths; name is 10 Chinese or 20 Latin characters (10 is the safe cut).
VALUE_LIMITS = {"thing": 20, "phrase": 5, "const": 20, "character_string": 32, "number": 32,
                "letter": 32, "symbol": 5, "phone_number": 17, "car_number": 8, "name": 10}
ELLIPSIS = "…"

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
PERMANENT_ERRORS = {43004: "not following", 43101: "user refused", 40003: "invalid openid",
                    40037: "invalid template_id", 47003: "invalid template data", 40036: "invalid template_id"}
TRANSIENT_ERRORS: dict[int, float | None] = {-1: None, 45009: None, 45011: 60.0, 45066: 60.0}
CLIENT_MSG_ID_EXISTS = 45065
UNREADABLE: Mapping[str, Any] = MappingProxyType({"errcode": "unreadable"})  # a 200 without a JSON object
_JSON = MappingProxyType({"Content-Type": "application/json"})


class WechatConfig(BaseModel):
    """`[channels.wechat]`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint: str = "https://api.weixin.qq.com"
    app_id: str = Field(min_length=1)
    app_secret: SecretStr
    token: SecretStr  # the 服务器配置 Token: signs callbacks
    encoding_aes_key: SecretStr | None = None  # the 服务器配置 EncodingAESKey: safe and compatible modes
    callback_mode: Literal["plain", "safe", "compatible"] = "plain"
    template_id: str = Field(min_length=1)
    templates: dict[str, str] = Field(default_factory=dict)  # topic → template id
    field_map: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_FIELD_MAP))
    use_stable_token: bool = True
    rate_per_second: float = Field(default=50.0, gt=0)
    max_batch: int = Field(default=50, ge=1, le=1000)
    timeout: float = Field(default=10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _key_for_encrypted_modes(self) -> WechatConfig:
        if self.encoding_aes_key is not None:
            aes_key(self.encoding_aes_key.get_secret_value())  # a ValueError names the problem, not the key
        elif self.callback_mode != "plain":
            raise ValueError(f"callback_mode {self.callback_mode!r} needs encoding_aes_key (43 characters)")
        return self

    def message_crypt(self) -> MessageCrypt | None:
        """The safe-mode cipher of this account, None without an EncodingAESKey."""
        if self.encoding_aes_key is None:
            return None
        return MessageCrypt(self.token.get_secret_value(), self.encoding_aes_key.get_secret_value(), self.app_id)


def create(config: Mapping[str, Any], context: ChannelContext) -> WechatChannel:
    """The registry's factory: validate `[channels.wechat]` and build the adapter on the shared session."""
    return WechatChannel(WechatConfig.model_validate(dict(config)), context.http)


# ---- template data ---------------------------------------------------------------------------------------------

def keyword_limit(keyword: str) -> int | None:
    """The value limit of a template keyword such as `thing1` (None: no documented length limit)."""
    return VALUE_LIMITS.get(keyword.rstrip("0123456789"))


def _utf16_len(text: str) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def fit(value: str, limit: int | None) -> str:
    """`value` cut to `limit` UTF-16 units with a trailing "…", whole characters only (no lone surrogate)."""
    value = value.strip()
    if limit is None or _utf16_len(value) <= limit:
        return value
    budget, kept = limit - 1, []  # one unit for the ellipsis
    for ch in value:
        budget -= 2 if ord(ch) > 0xFFFF else 1
        if budget < 0:
            break
        kept.append(ch)
    # Do not end on a joiner or variation selector: half an emoji sequence renders as garbage.
    cut = "".join(kept).rstrip("\u200d\ufe0e\ufe0f ")
    return cut + ELLIPSIS


def template_data(fields: Mapping[str, str], field_map: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """`data` of a template/send body: `{keyword: {"value": v}}` for each mapped field, in the fields' order."""
    return {field_map[name]: {"value": fit(value, keyword_limit(field_map[name]))}
            for name, value in fields.items() if name in field_map}


_USER_SLOT, _ID_SLOT = jsonbody.slot(), jsonbody.slot()


def shared_body(config: WechatConfig, message: Message) -> list[bytes]:
    """A message's template/send body, encoded once for a batch, cut where each recipient's openid and delivery id
    go (`build_body`): only those differ between the recipients of a message."""
    body: dict[str, Any] = {
        "touser": _USER_SLOT,
        "template_id": config.templates.get(message.topic, config.template_id),
        "data": template_data(message.fields, config.field_map),
        "client_msg_id": _ID_SLOT,  # the delivery id: WeChat drops a repeat of it within 10 minutes
    }
    if message.url:
        body["url"] = message.url
    return jsonbody.split(jsonbody.dumps(body), (_USER_SLOT, _ID_SLOT))


def build_body(shared: list[bytes], recipient: Recipient) -> bytes:
    """The JSON body of one recipient's template/send request; the same bytes on every retry of a delivery."""
    head, middle, tail = shared
    return b"".join((head, jsonbody.string(recipient.address), middle, jsonbody.string(recipient.delivery_id), tail))


# ---- answers ---------------------------------------------------------------------------------------------------

def classify(delivery_id: str, answer: int | Mapping[str, Any] | BaseException) -> DeliveryResult:
    """The one place that turns a template/send answer (JSON, HTTP status or transport error) into a result."""
    if isinstance(answer, BaseException):
        if isinstance(answer, TimeoutError):  # the batch's time limit, or aiohttp's own
            return DeliveryResult(delivery_id, Outcome.TRANSIENT, error="timeout")
        if isinstance(answer, aiohttp.ClientError | OSError):
            return DeliveryResult(delivery_id, Outcome.TRANSIENT, error=f"connection error ({type(answer).__name__})")
        return internal_error(delivery_id, answer)  # a bug while sending, not the network
    if isinstance(answer, int):
        outcome = Outcome.TRANSIENT if answer >= 500 or answer in (408, 429) else Outcome.PERMANENT
        return DeliveryResult(delivery_id, outcome, error=f"HTTP {answer}")
    code = answer.get("errcode", 0)
    if not isinstance(code, int):
        return DeliveryResult(delivery_id, Outcome.TRANSIENT, error="unreadable answer")
    if code == 0:
        msgid = answer.get("msgid")
        return DeliveryResult(delivery_id, Outcome.ACCEPTED, provider_message_id=str(msgid) if msgid else None)
    if code == CLIENT_MSG_ID_EXISTS:
        return DeliveryResult(delivery_id, Outcome.ACCEPTED, error="errcode 45065: already sent (client_msg_id)")
    if code in PERMANENT_ERRORS:
        return DeliveryResult(delivery_id, Outcome.PERMANENT, error=f"errcode {code}: {PERMANENT_ERRORS[code]}")
    if code in TRANSIENT_ERRORS:
        return DeliveryResult(delivery_id, Outcome.TRANSIENT, error=f"errcode {code}",
                              retry_after=TRANSIENT_ERRORS[code])
    if code in TOKEN_ERRORS:  # still refused after one token refresh
        return DeliveryResult(delivery_id, Outcome.TRANSIENT, error=f"errcode {code}: access token refused")
    return DeliveryResult(delivery_id, Outcome.PERMANENT, error=f"errcode {code}")


def _needs_new_token(answer: int | Mapping[str, Any] | BaseException) -> bool:
    return isinstance(answer, Mapping) and answer.get("errcode") in TOKEN_ERRORS


def _from_error(delivery_id: str, exc: DeliveryError) -> DeliveryResult:
    outcome = Outcome.PERMANENT if isinstance(exc, PermanentDeliveryError) else Outcome.TRANSIENT
    return DeliveryResult(delivery_id, outcome, error=str(exc), retry_after=getattr(exc, "retry_after", None))


class WechatChannel:
    """One template/send per recipient, concurrently within a batch, with one cached access token."""

    kind = "wechat"
    confirms_by_receipt = True  # TEMPLATESENDJOBFINISH decides delivery
    requests_per_recipient = True  # one request a recipient on the shared HTTP session
    max_chars: int | None = None

    def __init__(self, config: WechatConfig, http: aiohttp.ClientSession) -> None:
        self.config = config
        self.max_batch = config.max_batch
        self.rate_per_second = config.rate_per_second
        self._http = http
        self._send_url = URL(config.endpoint.rstrip("/") + "/cgi-bin/message/template/send")
        self.tokens = AccessTokenCache(
            http, endpoint=config.endpoint, app_id=config.app_id, app_secret=config.app_secret.get_secret_value(),
            use_stable_token=config.use_stable_token, timeout=config.timeout,
        )

    async def send(self, message: Message, recipients: list[Recipient]) -> list[DeliveryResult]:
        token = await self.tokens.get()  # no token: the whole batch fails (raises a DeliveryError)
        # Once a batch, not once a recipient: the body but for its openid and id, the URL with the token.
        shared, url = shared_body(self.config, message), self._url(token)
        # The attempt's time limit is the batch's (send_each), not one aiohttp timer a request: a send that has to
        # replace the token and post again does both within it.
        return await send_each(recipients, lambda r: self._send_one(shared, r, token, url), kind=self.kind,
                               on_error=classify, timeout=self.config.timeout)

    def _url(self, token: str) -> URL:
        return self._send_url.with_query(access_token=token)

    async def _send_one(self, shared: list[bytes], recipient: Recipient, token: str, url: URL) -> DeliveryResult:
        body = build_body(shared, recipient)
        answer = await self._post(url, body)
        if _needs_new_token(answer):
            try:
                token = await self.tokens.invalidate(token)
            except DeliveryError as exc:
                return _from_error(recipient.delivery_id, exc)
            answer = await self._post(self._url(token), body)
        return classify(recipient.delivery_id, answer)

    async def _post(self, url: URL, body: bytes) -> int | Mapping[str, Any] | BaseException:
        """The JSON answer, the HTTP status when there is none, or the transport error."""
        try:
            async with self._http.post(url, data=body, headers=_JSON, timeout=UNTIMED, raise_for_status=False,
                                       allow_redirects=False) as response:
                if response.status != 200:
                    await response.read()
                    return response.status
                try:
                    answer = await response.json(content_type=None)
                except ValueError:
                    return UNREADABLE
                return answer if isinstance(answer, Mapping) else UNREADABLE
        except (aiohttp.ClientError, OSError) as exc:  # TimeoutError is an OSError
            return exc

    async def aclose(self) -> None:
        """Nothing to release: the HTTP session is the service's, the token cache holds no connection."""


# ---- callbacks -------------------------------------------------------------------------------------------------

def callback_signature(token: str, timestamp: str, nonce: str) -> str:
    """sha1 hex of token, timestamp and nonce sorted as strings and joined (the server-URL signature)."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode(), usedforsecurity=False).hexdigest()


def verify_signature(token: str, signature: str, timestamp: str, nonce: str, *, now: float | None = None,
                     max_skew: float = SIGNATURE_MAX_SKEW) -> bool:
    """Whether a callback's `signature` matches, in constant time, with `timestamp` within ±`max_skew` s of now.

    The timestamp check is ours, not WeChat's: without it a captured request (events carry no nonce we could
    remember) could be replayed forever. WeChat's own retries come within seconds.
    """
    if not (token and signature and nonce and timestamp.isascii() and timestamp.isdigit()):
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > max_skew:
        return False
    expected = callback_signature(token, timestamp, nonce)
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode("utf-8", "replace"))


@dataclass(frozen=True, slots=True)
class WechatEvent:
    """One pushed message or event. `openid` is personal data: it is left out of repr()."""

    msg_type: str  # "event" for events; "text", "image"… for user messages
    event: str | None  # TEMPLATESENDJOBFINISH, subscribe, unsubscribe, SCAN…
    openid: str = field(repr=False)  # FromUserName
    msg_id: str | None  # MsgID (template jobs; MsgId in some samples) — the msgid send() returned
    status: str | None  # TEMPLATESENDJOBFINISH: success / failed:user block / failed: system failed / …
    event_key: str | None  # subscribe via QR: "qrscene_<scene>"; SCAN: "<scene>"; CLICK: the menu key
    create_time: int | None

    @property
    def scene(self) -> str | None:
        """The QR scene of a follow-by-QR (subscribe with `qrscene_…`) or a SCAN by a follower, else None."""
        if not self.event_key:
            return None
        if self.event == "subscribe" and self.event_key.startswith(QR_SCENE_PREFIX):
            return self.event_key.removeprefix(QR_SCENE_PREFIX) or None
        return self.event_key if self.event == "SCAN" else None


class CallbackRejected(Exception):
    """A callback whose signature (or msg_signature) does not verify: not from WeChat, or replayed."""


def _xml_root(body: bytes) -> Element:
    """A pushed XML document parsed safely (no DTD, no entities, bounded size); ValueError says what is wrong."""
    if len(body) > MAX_EVENT_BYTES:
        raise ValueError(f"event body over {MAX_EVENT_BYTES} bytes")
    try:
        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ValueError(f"event XML refused: {type(exc).__name__}") from exc
    except ParseError as exc:
        raise ValueError(f"event is not well-formed XML ({exc.msg})") from exc
    if root.tag != "xml":
        raise ValueError("event root element is not <xml>")
    return root


def _check_plain(config: WechatConfig, query: Mapping[str, str]) -> None:
    if not verify_signature(config.token.get_secret_value(), query.get("signature", ""),
                            query.get("timestamp", ""), query.get("nonce", "")):
        raise CallbackRejected("the WeChat signature does not verify")


def event_xml(config: WechatConfig, query: Mapping[str, str], body: bytes) -> bytes:
    """The event to parse from one POST to the server URL: the body itself in plain mode, the message inside its
    `<Encrypt>` when the query says `encrypt_type=aes` (safe and compatible modes). CallbackRejected when a
    signature does not verify; ValueError when the body is unreadable or not in the configured mode."""
    crypt = config.message_crypt()
    if query.get("encrypt_type", "").lower() != "aes" or config.callback_mode == "plain" or crypt is None:
        _check_plain(config, query)
        if config.callback_mode == "safe":
            raise ValueError("a plaintext event in safe mode: WeChat encrypts every event in this mode")
        return body
    encrypt = _text(_xml_root(body), "Encrypt")
    timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
    if encrypt is None:
        raise ValueError("encrypt_type=aes but the event has no <Encrypt>")
    if not crypt.verify(query.get("msg_signature", ""), timestamp, nonce, encrypt):
        raise CallbackRejected("the WeChat msg_signature does not verify")
    return crypt.decrypt(encrypt)


def handshake_echo(config: WechatConfig, query: Mapping[str, str]) -> str:
    """The answer to the server URL's GET handshake: `echostr` as given once the signature verifies (official
    accounts, every mode); when the handshake carries `msg_signature` (an encrypted echostr, as WeCom and the open
    platform send it) the decrypted echostr. CallbackRejected / ValueError otherwise."""
    echostr = query.get("echostr", "")
    crypt = config.message_crypt()
    if "msg_signature" in query and crypt is not None:
        if not crypt.verify(query["msg_signature"], query.get("timestamp", ""), query.get("nonce", ""), echostr):
            raise CallbackRejected("the WeChat msg_signature does not verify")
        return crypt.decrypt(echostr).decode("utf-8", "replace")
    _check_plain(config, query)
    return echostr


def parse_event(body: bytes) -> WechatEvent:
    """Parse a pushed XML message safely (no DTD, no entities, bounded size); ValueError says what is wrong."""
    root = _xml_root(body)
    msg_type = _text(root, "MsgType")
    if msg_type is None:
        if _text(root, "Encrypt") is not None:
            raise ValueError("encrypted event: set [channels.wechat] callback_mode and encoding_aes_key")
        raise ValueError("event has no MsgType")
    openid = _text(root, "FromUserName")
    if openid is None:
        raise ValueError("event has no FromUserName")
    create_time = _text(root, "CreateTime")
    return WechatEvent(
        msg_type=msg_type,
        event=_text(root, "Event"),
        openid=openid,
        msg_id=_text(root, "MsgID") or _text(root, "MsgId"),
        status=_text(root, "Status"),
        event_key=_text(root, "EventKey"),
        create_time=int(create_time) if create_time and create_time.isascii() and create_time.isdigit() else None,
    )


def _text(root: Element, tag: str) -> str | None:
    child = root.find(tag)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def receipt_from_event(event: WechatEvent) -> Receipt | None:
    """The delivery receipt in a TEMPLATESENDJOBFINISH event; None for any other event.

    `success` is delivered; anything else (`failed:user block`, `failed: system failed`, `failed:freq limit`
    seen in practice; whatever the spacing after the colon) is failed, with the status as given as the error.
    """
    if event.msg_type != "event" or event.event != EVENT_TEMPLATE_FINISH or not event.msg_id:
        return None
    status = event.status or "unknown"
    delivered = status == "success"
    return Receipt(
        provider_message_id=event.msg_id,
        delivered=delivered,
        key=f"{event.msg_id}:{status}",
        error=None if delivered else status,
        occurred_at=float(event.create_time) if event.create_time is not None else None,
    )
