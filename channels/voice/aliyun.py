"""Alibaba Cloud Voice Service (dyvmsapi 2017-05-25): one SingleCallByTts per recipient, signed with
ACS3-HMAC-SHA256 (channels.acs3, as SMS), and the VoiceReport pushes that say how each call ended.

Docs: SingleCallByTts https://help.aliyun.com/document_detail/393519.html (older:
https://help.aliyun.com/document_detail/114035.htm) · VoiceReport https://help.aliyun.com/zh/vms/voicereport-6 ·
call result codes https://help.aliyun.com/document_detail/55085.html · smart status codes
https://help.aliyun.com/zh/vms/developer-reference/smart-status-code · API errors
https://help.aliyun.com/document_detail/178344.html · flow control https://help.aliyun.com/document_detail/449961.html

Setup
-----
1. Voice console (语音服务控制台): enterprise qualification; a text-to-speech notification template (文本转语音
   模板, e.g. `TTS_100001` "${content}") approved; for the dedicated mode (专属模式) a real number (真实号) whose
   display number is `called_show_number` (leave it out for the public mode, 公共模式: a number from Aliyun's pool).
2. RAM: an AccessKey allowed `dyvms:SingleCallByTts`.
3. 通用设置 → 回执消息 → 呼叫记录消息 (VoiceReport), HTTP批量推送: `https://<public host>/v1/receipts/voice/aliyun?
   token=<receipt_token>`.
4. Configuration::

       [channels.voice]
       provider = "aliyun"
       tts_code = "TTS_100001"               # default for every topic; per topic: [channels.voice.templates]
       called_show_number = "0355XXXXXXX"    # dedicated mode; omit for the public mode
       access_key_id = "LTAI…"
       access_key_secret = "…"
       receipt_token = "<32+ random characters>"
       play_times = 2
       max_calls = 3
       [channels.voice.template_params]      # template variable → spoken value (text, headline, level, …)
       content = "text"

What goes over the wire
-----------------------
One POST per recipient: `CalledNumber` (a mobile's 11 digits, or a fixed line with its trunk 0 and area code,
`03552021234`: both kinds are called), `CalledShowNumber` (dedicated mode), `TtsCode`, `TtsParam` (JSON text; its
values together must stay under 250 characters and carry no link, so the spoken text is fitted to `max_chars`),
`PlayTimes`, `OutId` (the delivery id's first 15 characters: the current docs allow 1-15 bytes). The answer's
`CallId` is the provider id that VoiceReport names.

Answers (one helper, `classify`, on the rules Aliyun products share in channels.acs3)
--------------------------------------------------------------------------------------
`OK` → ACCEPTED (the call is placed; VoiceReport decides). `isv.BUSINESS_LIMIT_CONTROL` (1 call a minute, 5 an
hour, 20 a day per number) → minute and hour transient with that wait, day permanent. `isv.VOICE_CALL_PERIOD_ERROR`
/ `isv.VOICE_ROBOT_NOT_PERIOD` (a time of day when calls may not be placed) → transient, 30 minutes.
`isv.VOICE_CALL_FAIL` → transient. `isp.SYSTEM_ERROR`, throttling, 5xx, timeouts → transient. Every other code
(bad number, template, display number, balance, complaint block, permissions) → permanent.

Receipts (`parse_receipts`)
---------------------------
VoiceReport is a JSON array; each entry's `status_code` (and `smart_status_code` where the account has it) says
how the call ended: 200000 listened to the end and 200001 hung up early are delivered (the person picked up);
busy, no answer, unreachable, switched off, out of the service area, the carrier's time or frequency limits and
system errors are failed with `retry` (another call may succeed); invalid, suspended or recalled numbers,
a refused call (smart code CALL_REJECTED) and display-number problems are failed for good. An unknown code is
failed with `retry` (bounded by `max_calls`). Intermediate states (VoiceCallReport: 200101 calling, 200201
ringing, 200102 answered, 200100 ended) make no receipt: subscribe VoiceReport to the receipt URL.

Not verified against the live service (documented only, or contradictory between pages): whether OutId longer than
15 bytes is refused or cut; whether VoiceReport and VoiceCallReport can share one URL; the smart code list for
accounts without 号码状态识别; the time-of-day restriction (12:00-14:00, 21:00-09:00) that some pages give for the
console's task centre and others for the public mode.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, field_validator

from channels import acs3
from channels.acs3 import RECEIPT_ACK, Verdict
from channels.base import ChannelContext, DeliveryResult, Message, Outcome, Receipt, Recipient, send_each
from channels.callbacks import Text, all_receipts, china_time, clean_code, validated_items
from channels.voice.common import (
    DEFAULT_MAX_CALLS,
    MIN_CALL_INTERVAL,
    CallPolicy,
    VoiceConfig,
    call_id_key,
    check_sources,
    fit_spoken,
    spoken_values,
)
from subscriptions.contacts import is_mainland_mobile

log = logging.getLogger(__name__)

__all__ = ["RECEIPT_ACK", "AliyunVoiceChannel", "AliyunVoiceConfig", "classify", "create", "parse_receipts",
           "pushed_reports", "receipts_of"]

DEFAULT_ENDPOINT = "https://dyvmsapi.aliyuncs.com"
API_VERSION = "2017-05-25"
ACTION = "SingleCallByTts"
MAX_PARAM_CHARS = 240  # TtsParam values together "必须小于 250 个字符"; ten kept for the other variables
MAX_OUT_ID = 15  # OutId: "长度为 1~15 个字节"
_VOICE_CODES = {
    "isv.VOICE_CALL_PERIOD_ERROR": Verdict(Outcome.TRANSIENT, "isv.VOICE_CALL_PERIOD_ERROR: not at this hour",
                                           retry_after=1800.0),
    "isv.VOICE_ROBOT_NOT_PERIOD": Verdict(Outcome.TRANSIENT, "isv.VOICE_ROBOT_NOT_PERIOD: not at this hour",
                                          retry_after=1800.0),
    "isv.VOICE_CALL_FAIL": Verdict(Outcome.TRANSIENT, "isv.VOICE_CALL_FAIL"),
}

# status_code → (what happened, delivered, retry). Codes from "运营商回执错误码" (single calls).
DELIVERED, RETRY, FINAL = (True, False), (False, True), (False, False)
STATUS_CODES: dict[str, tuple[str, tuple[bool, bool]]] = {
    "200000": ("listened to the end", DELIVERED), "200001": ("hung up early", DELIVERED),
    "200008": ("answered, no key pressed", DELIVERED),
    "200002": ("busy", RETRY), "200003": ("not answered", RETRY), "200005": ("unreachable", RETRY),
    "200007": ("out of the service area", RETRY), "200010": ("switched off", RETRY),
    "200118": ("carrier time restriction", RETRY), "200119": ("carrier frequency limit", RETRY),
    "200121": ("too many concurrent calls", RETRY), "999999": ("system error", RETRY),
    "500": ("carrier error", RETRY), "400": ("network busy", RETRY),
    "200004": ("invalid number", FINAL), "200006": ("voice format error", FINAL), "200011": ("suspended", FINAL),
    "200104": ("display number restricted", FINAL), "200105": ("called number restricted", FINAL),
    "200117": ("display number not allowed", FINAL), "482": ("number unavailable", FINAL),
    "476": ("display number recalled", FINAL),
}
SMART_CODES: dict[str, tuple[str, tuple[bool, bool]]] = {
    "ANSWERED": ("answered", DELIVERED), "CALL_REJECTED": ("rejected", FINAL),
    "INCOMING_CALL_BARRED": ("incoming calls barred", FINAL), "INVALID_NUMBER": ("invalid number", FINAL),
    "OPERATOR_BLOCK": ("blocked by the carrier", FINAL), "SUSPEND": ("suspended", FINAL),
    "NO_ANSWER": ("not answered", RETRY), "USER_BUSY": ("busy", RETRY), "POWERED_OFF": ("switched off", RETRY),
    "NO_USER_RESPONDING": ("out of the service area", RETRY), "NETWORK_BUSY": ("network busy", RETRY),
    "UNAVAILABLE": ("unreachable", RETRY), "CALL_FORWARDING": ("forwarded", RETRY), "CANCEL": ("cancelled", RETRY),
    "OTHER": ("other", RETRY),
}
INTERMEDIATE = frozenset({"200101", "200201", "200102", "200100", "300000"})


class AliyunVoiceConfig(VoiceConfig):
    """`[channels.voice]` with `provider = "aliyun"`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Literal["aliyun"] = "aliyun"
    endpoint: str = DEFAULT_ENDPOINT
    tts_code: str = Field(min_length=1)  # TtsCode for every topic without its own in `templates`
    called_show_number: str | None = None  # dedicated mode's display number; None: public mode
    access_key_id: str = Field(min_length=1)
    access_key_secret: SecretStr = Field(min_length=1)
    template_params: dict[str, str] = Field(default_factory=lambda: {"content": "text"})  # variable → spoken value
    volume: int | None = Field(default=None, ge=0, le=100)
    speed: int | None = Field(default=None, ge=-500, le=500)
    rate_per_second: float = Field(default=50.0, gt=0)  # SingleCallByTts allows 1000 a second per account
    params_in: Literal["body", "query"] = "body"

    @field_validator("template_params")
    @classmethod
    def _known_sources(cls, value: dict[str, str]) -> dict[str, str]:
        check_sources(value)
        return value

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return acs3.check_endpoint(value)


def create(config: Mapping[str, Any], context: ChannelContext) -> AliyunVoiceChannel:
    """The voice registry's factory for provider "aliyun": validate the section, build the adapter."""
    return AliyunVoiceChannel(AliyunVoiceConfig.model_validate(dict(config)), context.http)


def called_number(e164: str) -> str | None:
    """CalledNumber for an E.164 mainland number: a mobile's 11 digits, a fixed line with its trunk 0."""
    if not e164.startswith("+86") or not e164[3:].isdigit():
        return None
    national = e164[3:]
    return national if is_mainland_mobile(e164) else "0" + national


def classify(answer: acs3.Answer) -> Verdict:
    """The one place a SingleCallByTts answer (or transport error) becomes a verdict."""
    return acs3.classify(answer, id_field="CallId", codes=_VOICE_CODES)


class AliyunVoiceChannel:
    """One signed SingleCallByTts per recipient, concurrently within a batch; VoiceReport decides delivery."""

    kind = "voice"
    provider = "aliyun"
    confirms_by_receipt = True
    requests_per_recipient = True  # one request a recipient on the shared HTTP session
    max_calls: int = DEFAULT_MAX_CALLS
    min_call_interval: float = MIN_CALL_INTERVAL  # Aliyun: 1 call a minute to one number

    def __init__(self, config: AliyunVoiceConfig, http: aiohttp.ClientSession) -> None:
        self.config = config
        self.max_batch = config.max_batch
        self.max_chars: int | None = config.max_chars or MAX_PARAM_CHARS
        self.rate_per_second: float | None = config.rate_per_second
        self.max_calls = config.max_calls
        self.min_call_interval = config.call_interval or type(self).min_call_interval
        self.policy = CallPolicy(self.max_calls, self.min_call_interval)
        self._http = http
        self._timeout = aiohttp.ClientTimeout(total=config.timeout)

    async def send(self, message: Message, recipients: list[Recipient]) -> list[DeliveryResult]:
        params = self._common_params(message)
        return await send_each(recipients, lambda r: self._call(params, r), kind=self.kind)

    def _common_params(self, message: Message) -> dict[str, str]:
        values = spoken_values(message)
        limit = self.max_chars or MAX_PARAM_CHARS
        variables = {name: fit_spoken(values[source], limit) for name, source in self.config.template_params.items()}
        params = {"TtsCode": self.config.templates.get(message.topic, self.config.tts_code),
                  "PlayTimes": str(self.config.play_times)}
        if variables:
            params["TtsParam"] = json.dumps(variables, ensure_ascii=False, separators=(",", ":"))
        if self.config.called_show_number:
            params["CalledShowNumber"] = self.config.called_show_number
        for key, value in (("Volume", self.config.volume), ("Speed", self.config.speed)):
            if value is not None:
                params[key] = str(value)
        return params

    async def _call(self, common: Mapping[str, str], recipient: Recipient) -> DeliveryResult:
        number = called_number(recipient.address)
        if number is None:
            return DeliveryResult(recipient.delivery_id, Outcome.PERMANENT, error="not a mainland number")
        params = {**common, "CalledNumber": number, "OutId": recipient.delivery_id[:MAX_OUT_ID]}
        verdict = await acs3.call(self._http, self.config, ACTION, params, version=API_VERSION,
                                  timeout=self._timeout, verdict=classify)
        return verdict.result(recipient.delivery_id)

    async def aclose(self) -> None:
        """Nothing to release: the HTTP session is the service's."""


# --- receipts ------------------------------------------------------------------------------------------------

class VoiceReport(BaseModel):
    """One VoiceReport entry (unknown fields kept: Aliyun adds some over time)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    call_id: Text = Field(min_length=1)
    status_code: Text = ""
    smart_status_code: str | None = None
    status_msg: str = ""
    out_id: Text | None = None
    duration: Text | None = None
    start_time: str | None = None
    end_time: str | None = None


_REPORTS = TypeAdapter(list[VoiceReport])


def call_result(status_code: str, smart_status_code: str | None) -> tuple[str, bool, bool]:
    """(what happened, delivered, retry) for a final call result: an answer by the status code wins; otherwise the
    smart code (more precise about why nobody answered) where there is one; an unknown code is retried."""
    status = STATUS_CODES.get(status_code)
    if status is not None and status[1] is DELIVERED:
        return status[0], True, False
    smart = SMART_CODES.get(smart_status_code or "")
    label, (delivered, retry) = smart or status or ("unknown result", RETRY)
    return label, delivered, retry


def parse_receipts(body: bytes) -> list[Receipt]:
    """The VoiceReport push (a JSON array) as receipts; CallbackFormatError (a ValueError) when it is not one.
    Answer it with RECEIPT_ACK."""
    return all_receipts(map(receipts_of, pushed_reports(body)))


def pushed_reports(body: bytes) -> list[VoiceReport]:
    """The VoiceReport push's reports, validated; CallbackFormatError when it is not one."""
    return validated_items(_REPORTS, body)


def receipts_of(report: VoiceReport) -> list[Receipt]:
    """One VoiceReport as its receipt — none for an intermediate status (the call is not over)."""
    code = report.status_code.strip()
    if code in INTERMEDIATE:
        return []
    smart = (report.smart_status_code or "").strip().upper() or None
    label, delivered, retry = call_result(code, smart)
    return [Receipt(
        provider_message_id=report.call_id,
        delivered=delivered,
        key=call_id_key(report.call_id, code, smart or ""),
        error=None if delivered else f"{clean_code(code or smart or 'none')} {label}",
        occurred_at=china_time(report.end_time or report.start_time or ""),
        retry=retry,
    )]
