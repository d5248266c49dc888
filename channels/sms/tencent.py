"""Tencent Cloud SMS: SendSms (API 3.0, version 2021-01-11) signed with TC3-HMAC-SHA256, per-number results,
delivery receipts (状态回执) and replies (上行) pushed to us by HTTP.

Docs
----
- SendSms 2021-01-11: https://cloud.tencent.com/document/api/382/55981
- Signature v3 (签名方法 v3): https://cloud.tencent.com/document/api/362/4208,
  https://www.tencentcloud.com/document/api/1084/39391
- Error codes: https://cloud.tencent.com/document/api/382/59177 (the SDK's copy:
  tencentcloud-sdk-python, tencentcloud/sms/v20210111/errorcodes.py)
- Status callback (短信下发状态通知): https://cloud.tencent.com/document/api/382/5807,
  https://www.tencentcloud.com/document/api/382/43547
- Reply callback (短信回复): https://cloud.tencent.com/document/api/382/5809,
  https://www.tencentcloud.com/document/api/382/43548
- Frequency limits: https://cloud.tencent.com/document/faq/382/13303

Setup
-----
1. SMS console → 应用管理: create an application; its SDK AppID (e.g. 1400006666) is `sdk_app_id`.
2. 国内短信 → 签名管理: a signature of type 政府/机关事业单位, approved; its text is `sign_name` (the 【…】 the
   handset shows). Tencent's template rules list 党政 content among refused topics: agree the use with the vendor.
3. 正文模板管理: notification templates with variables {1}, {2}…, approved. The default is `template_code`,
   per-topic ones go in `[channels.sms.templates]`; `template_params` says which message attributes fill the
   variables, in order. Keep links in the template text: Tencent refuses URLs in template variables
   (InvalidParameterValue.ProhibitedUseUrlInTemplateParameter) unless the account is cleared for it.
   A verification template whose only variable is the code is `verification_template_code`.
4. 应用管理 → 回调配置: 短信下发状态回调 `https://<public_url>/v1/receipts/sms/tencent?token=<receipt_token>` and
   短信回复回调 `https://<public_url>/v1/uplink/sms/tencent?token=<receipt_token>`. The callback docs describe no
   signature, so the long random token in the URL is what authenticates them.
5. CAM: a sub-account allowed to send SMS, and its API key: `secret_id`, `secret_key`.
6. 频率限制: the default caps per number (1 per 30 s for the same content, a few a day) are meant for marketing;
   raise them for official alerts (enterprise-verified accounts can), see "Decisions" below.

::

    [channels.sms]
    provider = "tencent"
    sdk_app_id = "1400006666"
    sign_name = "长治市环保局"
    template_code = "1234567"
    secret_id = "AKID…"
    secret_key = "…"
    receipt_token = "<32+ random characters>"
    [channels.sms.templates]
    "env.heavy-pollution" = "1234568"

What goes over the wire
-----------------------
One SendSms POST per `send()` (≤ 200 numbers, all +86), JSON, headers `X-TC-Action: SendSms`, `X-TC-Version`,
`X-TC-Timestamp`, `X-TC-Region`, `Authorization: TC3-HMAC-SHA256 Credential=<id>/<UTC date>/sms/tc3_request,
SignedHeaders=content-type;host, Signature=<hex>`. `SessionContext` is "<alert id>:<first delivery id>" (no
personal data), echoed in every status. The answer's `SendStatusSet` holds one status per number, in an order the
API does not promise (its own example answers in another order than asked), so results are matched to recipients
by `PhoneNumber`. Two recipients with the same number get one SMS and share its result. Numbers outside +86 are
refused before sending: they need an international template and a request of their own.

Answers (one helper, `classify`)
--------------------------------
- `Ok` → accepted; `SerialNo` is the provider message id, the status callback's `sid` decides delivery.
- `LimitExceeded.PhoneNumberThirtySecondLimit` → transient, retry after 30 s; `LimitExceeded.DeliveryFrequencyLimit`
  → transient, retry after 60 s.
- `RequestLimitExceeded*` (API rate), `InternalError*`, HTTP 5xx, timeouts, connection errors → transient.
- `FailedOperation.PhoneNumberInBlacklist` / `…OnBlacklist` (the user unsubscribed or is on a carrier
  do-not-disturb list) → permanent, and the contact is disabled.
- Everything else is permanent: invalid numbers, `FailedOperation.*` (template, signature, balance),
  `AuthFailure.*`, `UnauthorizedOperation.*`, `InvalidParameter*`, account caps, unknown codes (the code is kept).
- Errors in `Response.Error` hit the whole request: `TransientDeliveryError` / `PermanentDeliveryError`.
  The API answers them with HTTP 200, so the body is read whatever the status.
A timeout may hide an accepted request (SendSms is not idempotent): its retry can then send a message twice.

Decisions
---------
The per-number hourly and daily caps (`LimitExceeded.PhoneNumberOneHourLimit`, `…DailyLimit`,
`…SameContentDailyLimit`) are permanent for this alert: waiting an hour or a day would hold back a warning that
matters now, while failing at once lets the fallback policy reach the person on their next channel. Only the
30-second cap is worth waiting for.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final, Literal

import aiohttp
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from yarl import URL

from channels.base import ChannelContext, DeliveryResult, Message, Outcome, Receipt, Recipient
from channels.callbacks import CallbackFormatError, Text, all_receipts, china_time, clean_code, validated_items
from channels.errors import PermanentDeliveryError, TransientDeliveryError
from channels.sms.aliyun import Uplink
from channels.tc3 import Tc3Client, Verdict, response_body

log = logging.getLogger(__name__)

SERVICE = "sms"
ACTION = "SendSms"
VERSION = "2021-01-11"
MAX_NUMBERS = 200  # SendSms: at most 200 numbers a request
MAX_SESSION_CONTEXT = 511  # bytes; the API takes less than 512
TEMPLATE_FIELDS = ("text", "headline", "url", "level", "department", "topic")
VERIFICATION_DELIVERY_ID = "verification"  # the delivery id of send_verification()'s result
RECEIPT_ACK: Final[dict[str, Any]] = {"result": 0, "errmsg": "OK"}  # the answer the status callback expects

_MAINLAND = re.compile(r"^\+861\d{10}$")
_E164 = re.compile(r"^\+[1-9]\d{5,14}$")
_SEPARATORS = re.compile(r"[\s-]")
_TRANSIENT_LIMITS = {"LimitExceeded.PhoneNumberThirtySecondLimit": 30.0, "LimitExceeded.DeliveryFrequencyLimit": 60.0}
_BLOCKED = frozenset({"FailedOperation.PhoneNumberInBlacklist", "FailedOperation.PhoneNumberOnBlacklist"})


class TencentSmsConfig(BaseModel):
    """`[channels.sms]` with `provider = "tencent"`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Literal["tencent"] = "tencent"
    endpoint: str = "https://sms.tencentcloudapi.com"
    sign_name: str = Field(min_length=1)
    template_code: str = Field(min_length=1)  # TemplateId for every topic without its own
    templates: dict[str, str] = Field(default_factory=dict)  # topic key -> TemplateId
    # Without a token every callback is refused (receipts never confirm anything): set 32+ random characters.
    receipt_token: SecretStr | None = None
    secret_id: str = Field(min_length=1)
    secret_key: SecretStr = Field(min_length=1)
    sdk_app_id: str = Field(min_length=1)
    region: str = "ap-guangzhou"
    verification_template_code: str | None = None
    template_params: list[str] = Field(default_factory=lambda: ["text"])  # Message attributes, in {1}, {2}… order
    rate_per_second: float = Field(default=50.0, gt=0)
    max_batch: int = Field(default=MAX_NUMBERS, ge=1, le=MAX_NUMBERS)
    timeout: float = Field(default=10.0, gt=0, le=120)

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, value: str) -> str:
        url = URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("endpoint must be an http(s) URL")
        return value

    @field_validator("template_params")
    @classmethod
    def _known_fields(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in TEMPLATE_FIELDS]
        if unknown:
            raise ValueError(f"unknown template parameter(s) {unknown}; allowed: {', '.join(TEMPLATE_FIELDS)}")
        return value


def create(config: Mapping[str, Any], context: ChannelContext) -> TencentSmsChannel:
    """The SMS provider factory: validate `[channels.sms]` and build the adapter on the shared session."""
    return TencentSmsChannel(TencentSmsConfig.model_validate(dict(config)), context.http)


# --- answers ----------------------------------------------------------------------------------------------------

def classify(code: str) -> Verdict:
    """The one place a Tencent code (`SendStatusSet[].Code` or `Response.Error.Code`) becomes an outcome."""
    if code == "Ok" or code.lower() == "ok":  # "Ok" as the API spells it tried first: it is read once a number
        return _ACCEPTED
    if code in _TRANSIENT_LIMITS:
        return Verdict(Outcome.TRANSIENT, retry_after=_TRANSIENT_LIMITS[code])
    family = code.partition(".")[0]
    if family == "RequestLimitExceeded":  # the account's API rate: back off a little
        return Verdict(Outcome.TRANSIENT, retry_after=1.0)
    if family == "InternalError":
        return Verdict(Outcome.TRANSIENT)
    if code in _BLOCKED:
        return Verdict(Outcome.PERMANENT, disable_contact=True)
    return Verdict(Outcome.PERMANENT)


_ACCEPTED: Final = Verdict(Outcome.ACCEPTED)


def normalise_number(value: str) -> str | None:
    """E.164 for what Tencent accepts or echoes (`+8613…`, `008613…`, `8613…`, `13…`); None when not a number."""
    if _E164.fullmatch(value):  # already E.164, as stored numbers and Tencent's echoes are: twice a number a send
        return value
    number = _SEPARATORS.sub("", value)
    if number.startswith("00"):
        number = "+" + number[2:]
    elif number.startswith("86") and len(number) == 13:
        number = "+" + number
    elif len(number) == 11 and number.isdigit():  # a bare mainland number: Tencent reads it as +86
        number = "+86" + number
    return number if _E164.match(number) else None


class SendStatus(BaseModel):
    """One entry of `Response.SendStatusSet`: what we read of it (Fee, Message, SessionContext, IsoCode are not)."""

    model_config = ConfigDict(frozen=True)

    serial_no: str = Field(default="", alias="SerialNo")
    phone_number: str = Field(alias="PhoneNumber")
    code: str = Field(alias="Code")


class _Sent(BaseModel):
    """`Response` of an answer that went through: its statuses (and the error of one that did not)."""

    send_status_set: list[SendStatus] = Field(default_factory=list, alias="SendStatusSet")
    error: dict[str, Any] | None = Field(default=None, alias="Error")


class _Answer(BaseModel):
    response: _Sent = Field(alias="Response")


def read_answer(status: int, raw: bytes) -> dict[str, SendStatus]:
    """SendSms's answer as statuses by E.164 number; raises for an answer that fails the whole request."""
    items = _statuses(raw) if status == 200 else None
    if items is None:  # not a clean success: read as any Tencent answer, each status on its own
        response = response_body(status, raw, label="Tencent SMS", classify=classify)
        items = [item for item in map(_status_or_none, response.get("SendStatusSet") or []) if item is not None]
    statuses: dict[str, SendStatus] = {}
    for item in items:
        number = normalise_number(item.phone_number)
        if number is not None:
            statuses[number] = item
    return statuses


def _statuses(raw: bytes) -> list[SendStatus] | None:
    """The statuses of an answer that went through, read from its JSON in one pass (200 statuses: 5.0 -> 1.5 µs
    each, against json.loads and then validating the parsed set); None for any other answer."""
    try:
        answer = _ANSWER.validate_json(raw)
    except ValidationError:  # an error answer without statuses, a malformed status, not JSON
        return None
    return answer.response.send_status_set if answer.response.error is None else None


_ANSWER = TypeAdapter(_Answer)


def _status_or_none(entry: Any) -> SendStatus | None:
    try:
        return SendStatus.model_validate(entry)
    except ValidationError:
        return None  # that number gets "no status" (transient) rather than losing the others' results


def result_for(delivery_id: str, status: SendStatus | None) -> DeliveryResult:
    """One recipient's result from its number's status."""
    if status is None:  # the API answers every number; a missing one is retried rather than lost
        return DeliveryResult(delivery_id, Outcome.TRANSIENT, error="Tencent SMS: no status for this number")
    verdict = classify(status.code)
    if verdict.outcome is Outcome.ACCEPTED:
        return DeliveryResult(delivery_id, Outcome.ACCEPTED, provider_message_id=status.serial_no or None)
    return DeliveryResult(delivery_id, verdict.outcome, error=f"Tencent SMS {clean_code(status.code)}",
                          retry_after=verdict.retry_after, disable_contact=verdict.disable_contact)


def template_params(message: Message, names: Sequence[str]) -> list[str]:
    """TemplateParamSet: the named message attributes, in order ({1}, {2}, …)."""
    values = {
        "text": message.text,
        "headline": message.headline,
        "url": message.url or "",
        "level": message.level or "",
        "department": message.fields.get("department", ""),
        "topic": message.topic,
    }
    return [values[name] for name in names]


def session_context(message: Message, first_delivery_id: str) -> str:
    """Our reference echoed in every status: the alert and the batch's first delivery, never personal data."""
    return f"{message.alert_id}:{first_delivery_id}".encode()[:MAX_SESSION_CONTEXT].decode(errors="ignore")


# --- the adapter ------------------------------------------------------------------------------------------------

class TencentSmsChannel:
    """Sends one SendSms request per batch on the shared session; receipts arrive later by callback."""

    kind = "sms"
    provider = "tencent"
    confirms_by_receipt = True  # acceptance is not delivery: the status callback decides
    one_request_per_batch = True  # the rate limit counts SendSms requests, not numbers
    max_chars: int | None = 500  # Tencent's longest SMS content

    def __init__(self, config: TencentSmsConfig, http: aiohttp.ClientSession) -> None:
        self.config = config
        self.max_batch = config.max_batch
        self.rate_per_second: float | None = config.rate_per_second
        self._http = http
        self._api = Tc3Client(http, endpoint=config.endpoint, secret_id=config.secret_id,
                              secret_key=config.secret_key.get_secret_value(), service=SERVICE, version=VERSION,
                              region=config.region, timeout=config.timeout, label="Tencent SMS")

    async def send(self, message: Message, recipients: list[Recipient]) -> list[DeliveryResult]:
        results: list[DeliveryResult] = []
        by_number: dict[str, list[Recipient]] = {}
        for recipient in recipients:
            number = normalise_number(recipient.address)  # a stored number is E.164 already: one check
            if number is None:
                results.append(DeliveryResult(recipient.delivery_id, Outcome.PERMANENT, error="invalid mobile number"))
            elif not _MAINLAND.match(number):
                results.append(DeliveryResult(recipient.delivery_id, Outcome.PERMANENT,
                                              error="not a mainland number: needs an international template"))
            else:
                by_number.setdefault(number, []).append(recipient)
        if not by_number:
            return results
        first = next(iter(by_number.values()))[0]
        template = self.config.templates.get(message.topic, self.config.template_code)
        params = template_params(message, self.config.template_params)
        statuses = await self._send_sms(list(by_number), template, params, session_context(message, first.delivery_id))
        for number, group in by_number.items():
            status = statuses.get(number)
            for r in group:  # mostly one: a loop, not a generator a number
                results.append(result_for(r.delivery_id, status))
        return results

    async def send_verification(self, phone: str, code: str) -> DeliveryResult:
        """Send a contact-verification code with `verification_template_code` (TemplateParamSet = [code])."""
        template = self.config.verification_template_code
        if not template:
            return DeliveryResult(VERIFICATION_DELIVERY_ID, Outcome.PERMANENT,
                                  error="verification_template_code is not configured")
        number = normalise_number(phone)
        if number is None or not _MAINLAND.match(number):
            return DeliveryResult(VERIFICATION_DELIVERY_ID, Outcome.PERMANENT, error="invalid mobile number")
        try:
            statuses = await self._send_sms([number], template, [code], VERIFICATION_DELIVERY_ID)
        except TransientDeliveryError as exc:
            return DeliveryResult(VERIFICATION_DELIVERY_ID, Outcome.TRANSIENT, error=str(exc),
                                  retry_after=exc.retry_after)
        except PermanentDeliveryError as exc:
            return DeliveryResult(VERIFICATION_DELIVERY_ID, Outcome.PERMANENT, error=str(exc))
        return result_for(VERIFICATION_DELIVERY_ID, statuses.get(number))

    async def _send_sms(self, numbers: list[str], template: str, params: list[str],
                        context: str) -> dict[str, SendStatus]:
        payload = {
            "PhoneNumberSet": numbers,
            "SmsSdkAppId": self.config.sdk_app_id,
            "TemplateId": template,
            "SignName": self.config.sign_name,
            "TemplateParamSet": params,
            "SessionContext": context,
        }
        status, raw = await self._api.post(ACTION, payload)
        return read_answer(status, raw)

    async def aclose(self) -> None:
        """Nothing to release: the HTTP session is the service's."""


# --- callbacks --------------------------------------------------------------------------------------------------

class StatusReport(BaseModel):
    """One entry of the status callback. Extra fields are allowed: Tencent may add some (e.g. `ext`)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    user_receive_time: Text = ""  # "2015-10-17 08:03:04", China time
    nationcode: Text | None = None
    mobile: Text | None = None
    report_status: Annotated[Literal["SUCCESS", "FAIL"], BeforeValidator(lambda v: str(v).strip().upper())]
    errmsg: Text = ""  # "DELIVRD" or the carrier's failure code
    description: str = ""
    sid: Text = Field(min_length=1)  # the SerialNo SendSms returned


class ReplyReport(BaseModel):
    """The reply callback. Extra fields are allowed."""

    model_config = ConfigDict(extra="allow", frozen=True)

    extend: Text | None = None
    mobile: Text = Field(min_length=1)
    nationcode: Text = "86"
    sign: str | None = None
    text: str
    time: float  # unix seconds


_STATUS_REPORTS = TypeAdapter(list[StatusReport])
_REPLY_REPORTS = TypeAdapter(list[ReplyReport])


def parse_receipts(body: bytes) -> list[Receipt]:
    """The status callback (a JSON array) as receipts, matched later by `sid` (= SerialNo); CallbackFormatError
    (a ValueError) when the body is not in that format. Answer the callback with RECEIPT_ACK."""
    return all_receipts(map(receipts_of, pushed_reports(body)))


def pushed_reports(body: bytes) -> list[StatusReport]:
    """The status callback's reports, validated; CallbackFormatError when the body is not in that format."""
    return validated_items(_STATUS_REPORTS, body)


def receipts_of(report: StatusReport) -> list[Receipt]:
    """One status report as its receipt."""
    delivered = report.report_status == "SUCCESS"
    return [Receipt(
        provider_message_id=report.sid,
        delivered=delivered,
        key=f"{report.sid}:{report.report_status}:{report.user_receive_time}",
        address=None,  # a SerialNo names one number already
        error=None if delivered else clean_code(report.errmsg or "FAIL"),
        occurred_at=china_time(report.user_receive_time),
    )]


def parse_uplink(body: bytes) -> list[Uplink]:
    """The reply callback (one JSON object as documented, or an array of them) as uplinks with E.164 numbers;
    CallbackFormatError when the body is not in that format. Answer it with RECEIPT_ACK too."""
    uplinks = []
    for report in validated_items(_REPLY_REPORTS, body):
        mobile = re.sub(r"[\s-]", "", report.mobile)
        if not mobile.startswith("+"):
            mobile = "+" + report.nationcode.strip().lstrip("+0") + mobile
        phone = normalise_number(mobile)
        if phone is None:
            raise CallbackFormatError("invalid callback field(s): mobile")
        uplinks.append(Uplink(phone=phone, content=report.text, received_at=report.time))
    return uplinks
