"""Alibaba Cloud SMS (dysmsapi 2017-05-25): SendSms signed with ACS3-HMAC-SHA256, and the HTTP pushes that come back
(SmsReport delivery receipts, SmsUp replies).

Docs: SendSms https://help.aliyun.com/document_detail/55284.html · V3 signature
https://help.aliyun.com/document_detail/2593177.html · SmsReport https://help.aliyun.com/document_detail/101867.html
· SmsUp https://help.aliyun.com/document_detail/101847.html · flow control
https://help.aliyun.com/document_detail/2881383.html

Setup
-----
1. SMS console (短信服务控制台): get a signature (签名, the 【…】 shown to citizens) and a notification template
   (模板, e.g. `SMS_123…` "${content}") approved; for contact verification also a verification-code template
   with the variable `${code}`.
2. RAM console: an AccessKey for a RAM user holding only `dysms:SendSms` (AliyunDysmsSendAccess or narrower).
3. SMS console → 通用设置 → 回执消息 → 状态报告接收: choose "HTTP批量推送模式" and enter
   `https://<public host>/v1/receipts/sms/aliyun?token=<receipt_token>`; under 上行消息接收 the same mode with
   `https://<public host>/v1/uplink/sms/aliyun?token=<receipt_token>` (replies such as "TD" unsubscribe).
4. Configuration::

       [channels.sms]
       provider = "aliyun"
       sign_name = "长治市人民政府"
       template_code = "SMS_000001"            # default for every topic
       receipt_token = "<32+ random characters>"
       access_key_id = "LTAI…"
       access_key_secret = "…"
       verification_template_code = "SMS_000002"
       [channels.sms.templates]
       "env.heavy-pollution" = "SMS_000003"
       [channels.sms.template_params]        # template variable → message attribute
       content = "text"

What goes over the wire
-----------------------
One SendSms per `send()` (the dispatcher chunks to `max_batch` ≤ 1000): POST to `/` with the parameters as an
x-www-form-urlencoded body (`PhoneNumbers` = comma-joined 11-digit national numbers, `SignName`, `TemplateCode`,
`TemplateParam` = JSON text, `OutId` = our reference for the request: the delivery id for a lone recipient, else a
hash of the ids). The official SDK puts them in the query string instead (`params_in = "query"` does the same),
but 1000 numbers make a 14 KB URL, past the 8 KB request line that common servers and proxies accept; the V3
scheme signs a body through `x-acs-content-sha256`. Headers `host`, `content-type`, `x-acs-action`,
`x-acs-version`, `x-acs-date`, `x-acs-signature-nonce`, `x-acs-content-sha256` are all signed (`channels.acs3`,
checked against the official test vector). Aliyun gives one BizId per request, so every recipient of a batch gets
the same provider id and a receipt is matched on (BizId, phone number).

Answers (one helper, `classify`)
--------------------------------
`Code` OK → every recipient ACCEPTED (a receipt decides delivery). Transient: timeouts, connection errors, HTTP 5xx
and 429, `isp.SYSTEM_ERROR`, gateway throttling (`Throttling*`, `SignatureNonceUsed`), and
`isv.BUSINESS_LIMIT_CONTROL` at minute level (retry after 60 s) or hour level (after an hour). Permanent (final,
the fallback channel takes over): `isv.BUSINESS_LIMIT_CONTROL` at day level, `isv.DAY_LIMIT_CONTROL` and
`isv.MONTH_LIMIT_CONTROL` (console caps: retrying within the alert's retry window cannot succeed, and an alert is
worth more on the next channel now than on SMS tomorrow), credentials and permissions (`SignatureDoesNotMatch`,
`InvalidAccessKeyId.*`, `isp.RAM_PERMISSION_DENY`), and every other `isv.*` (number, template, signature,
parameters, balance, service). Aliyun answers for the request, not per number, so an answer applies to the whole
batch; numbers that are not mainland mobiles are refused per recipient before sending, so one cannot sink a batch.
A timeout may hide an accepted request (SendSms is not idempotent): the retry can then duplicate a message.

Results are data, as in channels/webhook.py: whole-batch failures come back as one result per recipient.
Error texts carry codes only — Aliyun's `Message` can echo the request (numbers included), so it is never kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError, field_validator
from typing_extensions import TypedDict  # pydantic validates typing's own only from Python 3.12 on

from channels import acs3
from channels.acs3 import RECEIPT_ACK, Verdict
from channels.base import ChannelContext, DeliveryResult, Message, Outcome, Receipt, Recipient
from channels.callbacks import all_receipts, china_time

log = logging.getLogger(__name__)

__all__ = ["RECEIPT_ACK", "AliyunSmsChannel", "AliyunSmsConfig", "PushFormatError", "SmsReport", "SmsUp", "Uplink",
           "classify", "create", "parse_receipts", "parse_uplink", "pushed_reports", "receipts_of"]

DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com"
API_VERSION = "2017-05-25"
MAX_NUMBERS = 1000  # SendSms: at most 1000 numbers per request
MAX_CHARS = 500  # the longest "long SMS" Aliyun carries
MAX_OUT_ID = 255  # OutId: "长度小于 256 的字符串"
TEMPLATE_SOURCES = frozenset({"text", "headline", "url", "level", "department", "topic"})

_NATIONAL = re.compile(r"1[3-9]\d{9}")
# Console caps: retrying within the alert's retry window cannot succeed, and an alert is worth more on the next
# channel now than on SMS tomorrow.
_SMS_CODES = {code: Verdict(Outcome.PERMANENT, error=f"{code}: sending cap reached")
              for code in ("isv.DAY_LIMIT_CONTROL", "isv.MONTH_LIMIT_CONTROL")}


class AliyunSmsConfig(BaseModel):
    """`[channels.sms]` with `provider = "aliyun"`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Literal["aliyun"] = "aliyun"
    endpoint: str = DEFAULT_ENDPOINT
    sign_name: str = Field(min_length=1)
    template_code: str = Field(min_length=1)  # TemplateCode for every topic without an override
    templates: dict[str, str] = Field(default_factory=dict)  # topic → TemplateCode
    # `?token=` on the receipt and uplink URLs (web layer); without one, every callback is refused (and receipts
    # never confirm anything), so set one of 32+ random characters.
    receipt_token: SecretStr | None = None
    access_key_id: str = Field(min_length=1)
    access_key_secret: SecretStr = Field(min_length=1)
    verification_template_code: str | None = None  # a template with the variable ${code}
    template_params: dict[str, str] = Field(default_factory=lambda: {"content": "text"})  # variable → source
    rate_per_second: float = Field(default=50.0, gt=0)  # SendSms requests per second (Aliyun allows 5000)
    max_batch: int = Field(default=MAX_NUMBERS, ge=1, le=MAX_NUMBERS)
    timeout: float = Field(default=10.0, gt=0, le=120)  # Aliyun advises at least 1 s
    region_id: str = "cn-hangzhou"  # not sent: V3 requests carry no RegionId, the endpoint decides the region
    params_in: Literal["body", "query"] = "body"  # "query" is the official SDK's way (URLs grow to 14 KB)

    @field_validator("template_params")
    @classmethod
    def _known_sources(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value.values()) - TEMPLATE_SOURCES)
        if unknown:
            raise ValueError(f"unknown sources {unknown}; allowed: {', '.join(sorted(TEMPLATE_SOURCES))}")
        return value

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return acs3.check_endpoint(value)


def create(config: Mapping[str, Any], context: ChannelContext) -> AliyunSmsChannel:
    """The SMS registry's factory for provider "aliyun": validate the section, build the adapter."""
    return AliyunSmsChannel(AliyunSmsConfig.model_validate(dict(config)), context.http)


# --- numbers and parameters ----------------------------------------------------------------------------------


def national_number(e164: str) -> str | None:
    """`13800000001` for `+8613800000001`; None for anything that is not a mainland mobile in E.164."""
    if e164.startswith("+86") and _NATIONAL.fullmatch(e164[3:]):
        return e164[3:]
    return None


def e164_number(phone: str) -> str | None:
    """E.164 of a number as Aliyun reports it (`13800000001`, `8613800000001`, `+86…`); None when not a mainland
    mobile (or masked, as in the documentation's samples)."""
    digits = phone.strip().removeprefix("+").removeprefix("00")
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return f"+86{digits}" if _NATIONAL.fullmatch(digits) else None


def template_param(mapping: Mapping[str, str], message: Message) -> str:
    """The TemplateParam JSON text: each provider variable filled from its configured message attribute."""
    sources = {
        "text": message.text,
        "headline": message.headline,
        "url": message.url or "",
        "level": message.level or "",
        "department": message.fields.get("department", ""),
        "topic": message.topic,
    }
    return json.dumps({name: sources[source] for name, source in mapping.items()}, ensure_ascii=False,
                      separators=(",", ":"))


def out_id(delivery_ids: Iterable[str]) -> str:
    """Our reference for one request: a lone delivery's id, else a digest of the batch's ids (OutId < 256)."""
    ids = list(delivery_ids)
    if len(ids) == 1 and len(ids[0]) <= MAX_OUT_ID:
        return ids[0]
    return "batch-" + hashlib.sha256(",".join(ids).encode()).hexdigest()[:40]


# --- classification ------------------------------------------------------------------------------------------


def classify(answer: acs3.Answer) -> Verdict:
    """The one place that turns Aliyun's SendSms answer (HTTP status and JSON body) or a transport error into a
    verdict: the rules Aliyun products share (channels.acs3) plus the SMS console caps."""
    return acs3.classify(answer, id_field="BizId", codes=_SMS_CODES)


# --- the adapter ---------------------------------------------------------------------------------------------


class AliyunSmsChannel:
    """One signed SendSms per batch on the shared session; receipts arrive later through the web layer."""

    kind = "sms"
    confirms_by_receipt = True
    one_request_per_batch = True  # the rate limit counts requests, not numbers
    max_chars: int | None = MAX_CHARS

    def __init__(self, config: AliyunSmsConfig, http: aiohttp.ClientSession) -> None:
        self.config = config
        self.max_batch = config.max_batch
        self.rate_per_second: float | None = config.rate_per_second
        self._http = http
        self._timeout = aiohttp.ClientTimeout(total=config.timeout)

    async def send(self, message: Message, recipients: list[Recipient]) -> list[DeliveryResult]:
        results: list[DeliveryResult] = []
        numbers: dict[str, list[str]] = {}  # national number → delivery ids (a shared phone gets one SMS)
        for recipient in recipients:
            number = national_number(recipient.address)
            if number is None:
                results.append(DeliveryResult(recipient.delivery_id, Outcome.PERMANENT,
                                              error="not a mainland mobile number"))
            else:
                numbers.setdefault(number, []).append(recipient.delivery_id)
        if not numbers:
            return results
        ids = [delivery_id for group in numbers.values() for delivery_id in group]
        params = {
            "PhoneNumbers": ",".join(numbers),
            "SignName": self.config.sign_name,
            "TemplateCode": self.config.templates.get(message.topic, self.config.template_code),
            "OutId": out_id(ids),
        }
        if self.config.template_params:
            params["TemplateParam"] = template_param(self.config.template_params, message)
        verdict = await self._call(params)
        return results + [verdict.result(delivery_id) for delivery_id in ids]

    async def send_verification(self, phone: str, code: str) -> DeliveryResult:
        """Text a contact-verification code to `phone` (E.164) with `verification_template_code` (${code})."""
        reference = "verify-" + secrets.token_hex(12)
        number = national_number(phone)
        if number is None:
            return DeliveryResult(reference, Outcome.PERMANENT, error="not a mainland mobile number")
        if not self.config.verification_template_code:
            return DeliveryResult(reference, Outcome.PERMANENT, error="verification_template_code not configured")
        params = {
            "PhoneNumbers": number,
            "SignName": self.config.sign_name,
            "TemplateCode": self.config.verification_template_code,
            "TemplateParam": json.dumps({"code": code}, ensure_ascii=False, separators=(",", ":")),
            "OutId": reference,
        }
        return (await self._call(params)).result(reference)

    async def _call(self, params: Mapping[str, str]) -> Verdict:
        return await acs3.call(self._http, self.config, "SendSms", params, version=API_VERSION,
                               timeout=self._timeout, verdict=classify)

    async def aclose(self) -> None:
        """Nothing to release: the HTTP session is the service's."""


# --- pushes: delivery receipts and replies -------------------------------------------------------------------


class PushFormatError(ValueError):
    """A push body that is not what Aliyun sends; the text names fields, never values (they hold numbers)."""


class SmsReport(TypedDict):
    """One SmsReport entry: the fields read (Aliyun adds others over time; they are let be). A typed dict, not a model:
    a million SMS send back a million reports, validated on the event loop that sends — a model with its unknown
    fields kept took 1.25 µs a report, this 0.65 µs."""

    phone_number: str
    success: bool
    biz_id: Annotated[str, Field(min_length=1)]
    report_time: NotRequired[str]
    err_code: NotRequired[str]


class SmsUp(BaseModel):
    """One SmsUp entry (a citizen's reply). Older docs add `sign_name` and a numeric `sequence_id`."""

    model_config = ConfigDict(frozen=True, extra="allow")

    phone_number: str
    content: str
    send_time: str = ""
    dest_code: str | None = None
    sequence_id: str | int | None = None
    sign_name: str | None = None


@dataclass(frozen=True, slots=True)
class Uplink:
    """A reply a citizen texted back. `phone` is personal data: match with it, never log it."""

    phone: str  # E.164
    content: str
    received_at: float | None  # when the carrier pushed it, unix seconds
    sequence_id: str | None = None


_Push = TypeVar("_Push", SmsReport, SmsUp)
_REPORTS = TypeAdapter(list[SmsReport])
_UPLINKS = TypeAdapter(list[SmsUp])


def parse_receipts(body: bytes) -> list[Receipt]:
    """The SmsReport push (a JSON array) as receipts; PushFormatError when it is not one (`pushed_reports`, then
    `receipts_of` each)."""
    return all_receipts(map(receipts_of, pushed_reports(body)))


def pushed_reports(body: bytes) -> list[SmsReport]:
    """The SmsReport push's reports, validated; PushFormatError when it is not one."""
    return _validated(_REPORTS, body)


def receipts_of(report: SmsReport) -> list[Receipt]:
    """One SmsReport as its receipt.

    `key` dedupes Aliyun's repeats: BizId, report time and status code; the store adds the keyed digest of the
    number (`address`), which tells apart the numbers of one batch without keeping them.
    """
    at, code, delivered = report.get("report_time", ""), report.get("err_code", ""), report["success"]
    return [Receipt(
        provider_message_id=report["biz_id"],
        delivered=delivered,
        key=f"{report['biz_id']}:{at}:{code}",
        address=e164_number(report["phone_number"]),
        error=None if delivered else (code or "failed"),
        occurred_at=china_time(at),
    )]


def parse_uplink(body: bytes) -> list[Uplink]:
    """The SmsUp push (a JSON array) as replies; entries whose number is not a mainland mobile are dropped."""
    replies = []
    entries = _validated(_UPLINKS, body)
    for entry in entries:
        phone = e164_number(entry.phone_number)
        if phone is not None:
            sequence = None if entry.sequence_id is None else str(entry.sequence_id)
            replies.append(Uplink(phone, entry.content, china_time(entry.send_time), sequence))
    if len(replies) < len(entries):
        log.warning("aliyun SmsUp: %d replies from numbers that are not mainland mobiles dropped",
                    len(entries) - len(replies))
    return replies


def _validated(adapter: TypeAdapter[list[_Push]], body: bytes) -> list[_Push]:
    try:
        return adapter.validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                             for e in exc.errors(include_input=False, include_url=False)[:5])
        raise PushFormatError(f"not an Aliyun push: {problems}") from None
