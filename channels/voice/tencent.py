"""Tencent Cloud VMS (语音消息, API 3.0 version 2020-09-02): one SendTtsVoice per recipient, signed with
TC3-HMAC-SHA256 (channels.tc3, as SMS), and the status and failure callbacks that say how each call ended.

Docs: SendTtsVoice https://cloud.tencent.com/document/api/1128/51558 · errors: the SDK's
tencentcloud/vms/v20200902/errorcodes.py · 语音通知状态通知 https://cloud.tencent.com/document/api/1128/37725 ·
语音送达失败原因通知 https://cloud.tencent.com/document/api/1128/37727 · failure codes (推送回执相关错误码)
https://cloud.tencent.com/document/api/1128/37531 · frequency limits https://cloud.tencent.com/document/product/213/38004

Setup
-----
1. VMS console (语音消息控制台): an application (its SdkAppid is `sdk_app_id`), the number resource it calls from,
   and a voice notification template (语音通知模板, e.g. "{1}") approved: its id is `template_id` (per topic:
   `[channels.voice.templates]`).
2. 应用管理 → 事件回调: the status callback (语音通知状态) and the failure callback (语音送达失败原因) both at
   `https://<public host>/v1/receipts/voice/tencent?token=<receipt_token>`; the callbacks are not signed, so the
   long random token is what authenticates them.
3. CAM: a sub-account allowed to call VMS, its `secret_id` / `secret_key`.
4. Frequency limits (频率限制) per number default to 1 call per 30 s, 2 per 10 minutes, 5 a day, 1 between 22:00 and
   08:00: ask for higher ones for official alerts; the redial interval defaults to 300 s to fit the 10-minute rule.

::

    [channels.voice]
    provider = "tencent"
    sdk_app_id = "1400006666"
    template_id = "1234567"
    secret_id = "AKID…"
    secret_key = "…"
    receipt_token = "<32+ random characters>"
    template_params = ["text"]                # spoken values for {1}, {2}…

What goes over the wire
-----------------------
One POST per recipient: `TemplateId`, `TemplateParamSet` (the spoken values, fitted together to `max_chars`,
300 by default: a voice message is at most 350 characters with the template's own text), `CalledNumber` (E.164),
`VoiceSdkAppid`, `PlayTimes`, `SessionContext` = the delivery id. The answer's `SendStatus.CallId` is the provider
id both callbacks name as `callid`. Tencent VMS calls mainland mobiles only: a fixed line is refused before
sending, PERMANENT at once, so that the subscriber's next channel applies.

Answers (one helper, `classify`)
--------------------------------
`LimitExceeded.DeliveryFrequencyLimit` (the number's limits) → transient after 300 s; `RequestLimitExceeded*`
→ transient after 1 s; `InternalError.*`, `FailedOperation.AccessUpstreamTimeout`, 5xx, timeouts → transient;
everything else (bad number, template, balance, SdkAppid, AuthFailure) → permanent. Each request carries one
number, so even a whole-request error is that recipient's result.

Callbacks (`parse_receipts`)
----------------------------
`{"voiceprompt_callback": {"result": "0"|"1"|"2", "callid", …}}`: 0 answered (delivered), 1 not answered and
2 call failed (both failed with `retry`). `{"voice_failure_callback": {"failure_code", "callid", …}}`: switched off,
busy, out of area, no answer, network busy and similar → failed with `retry`; empty, suspended, expired or
restricted numbers, arrears → failed for good; unknown codes → `retry`. Keypress callbacks make no receipt. Both
may come for one call (a status saying "not answered", then the reason); each has its own receipt key.

Not verified against the live service: whether several callbacks are ever merged into one array (both shapes
are read); failure codes beyond 20 (the list was cut where it was read: unknown ones are retried); whether the
status callback's `result` 2 ever comes without a failure callback; the exact per-variable length limit
(InvalidParameterValue.ContentLengthLimit).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, field_validator

from channels.base import ChannelContext, DeliveryResult, Message, Outcome, Receipt, Recipient, send_each
from channels.callbacks import Text, all_receipts, clean_code, validated_items
from channels.errors import DeliveryError, PermanentDeliveryError
from channels.tc3 import Tc3Client, Verdict, response_body
from channels.voice.common import DEFAULT_MAX_CALLS, VoiceConfig, call_id_key, check_sources, fit_spoken, spoken_values
from subscriptions.contacts import is_mainland_mobile

log = logging.getLogger(__name__)

SERVICE = "vms"
ACTION = "SendTtsVoice"
VERSION = "2020-09-02"
MAX_CHARS = 300  # "语音消息的内容长度不超过350字", template text included
MIN_CALL_INTERVAL = 300.0  # default limits: 2 calls per 10 minutes to one number
RECEIPT_ACK: Final[dict[str, Any]] = {"result": 0, "errmsg": "OK"}
LABEL = "Tencent VMS"
_TRANSIENT: dict[str, float | None] = {"LimitExceeded.DeliveryFrequencyLimit": MIN_CALL_INTERVAL,
                                       "FailedOperation.AccessUpstreamTimeout": None}
PROMPT_RESULTS = {"0": ("answered", True, False), "1": ("not answered", False, True),
                  "2": ("call failed", False, True)}
# failure_code → (what happened, retry); from 推送回执相关错误码.
FAILURE_CODES: dict[int, tuple[str, bool]] = {
    1: ("switched off", True), 2: ("in a call", True), 3: ("out of the service area", True),
    4: ("in arrears", False), 5: ("no one answered", True), 6: ("temporarily unreachable", True),
    7: ("suspended", False), 8: ("empty number", False), 9: ("circuit busy", True), 10: ("busy", True),
    11: ("other", True), 12: ("call restricted", False), 13: ("service paused", False),
    15: ("number does not exist", False), 16: ("call reminder service", True), 17: ("number expired", False),
    18: ("network busy", True), 19: ("voice calls not enabled", False), 20: ("no answer", True),
}


class TencentVoiceConfig(VoiceConfig):
    """`[channels.voice]` with `provider = "tencent"`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Literal["tencent"] = "tencent"
    endpoint: str = "https://vms.tencentcloudapi.com"
    template_id: str = Field(min_length=1)  # TemplateId for every topic without its own in `templates`
    sdk_app_id: str = Field(min_length=1)  # VoiceSdkAppid
    secret_id: str = Field(min_length=1)
    secret_key: SecretStr = Field(min_length=1)
    region: str = "ap-guangzhou"
    template_params: list[str] = Field(default_factory=lambda: ["text"])  # spoken values for {1}, {2}…
    rate_per_second: float = Field(default=20.0, gt=0)  # the API's default: 20 requests a second

    @field_validator("template_params")
    @classmethod
    def _known_sources(cls, value: list[str]) -> list[str]:
        check_sources(value)
        return value


def create(config: Mapping[str, Any], context: ChannelContext) -> TencentVoiceChannel:
    """The voice registry's factory for provider "tencent": validate the section, build the adapter."""
    return TencentVoiceChannel(TencentVoiceConfig.model_validate(dict(config)), context.http)


def classify(code: str) -> Verdict:
    """The one place a Tencent VMS error code (`Response.Error.Code`) becomes an outcome."""
    if code in _TRANSIENT:
        return Verdict(Outcome.TRANSIENT, retry_after=_TRANSIENT[code])
    family = code.partition(".")[0]
    if family == "RequestLimitExceeded":
        return Verdict(Outcome.TRANSIENT, retry_after=1.0)
    if family == "InternalError":
        return Verdict(Outcome.TRANSIENT)
    return Verdict(Outcome.PERMANENT)


class TencentVoiceChannel:
    """One signed SendTtsVoice per recipient, concurrently within a batch; the callbacks decide delivery."""

    kind = "voice"
    provider = "tencent"
    confirms_by_receipt = True
    requests_per_recipient = True  # one request a recipient on the shared HTTP session
    max_calls: int = DEFAULT_MAX_CALLS
    min_call_interval: float = MIN_CALL_INTERVAL

    def __init__(self, config: TencentVoiceConfig, http: aiohttp.ClientSession) -> None:
        self.config = config
        self.max_batch = config.max_batch
        self.max_chars: int | None = config.max_chars or MAX_CHARS
        self.rate_per_second: float | None = config.rate_per_second
        self.max_calls = config.max_calls
        self.min_call_interval = config.call_interval or type(self).min_call_interval
        self._api = Tc3Client(http, endpoint=config.endpoint, secret_id=config.secret_id,
                              secret_key=config.secret_key.get_secret_value(), service=SERVICE, version=VERSION,
                              region=config.region, timeout=config.timeout, label=LABEL)

    async def send(self, message: Message, recipients: list[Recipient]) -> list[DeliveryResult]:
        values = spoken_values(message)
        budget = (self.max_chars or MAX_CHARS) // max(1, len(self.config.template_params))
        params = [fit_spoken(values[name], budget) for name in self.config.template_params]
        template = self.config.templates.get(message.topic, self.config.template_id)
        return await send_each(recipients, lambda r: self._call(template, params, r), kind=self.kind)

    async def _call(self, template: str, params: list[str], recipient: Recipient) -> DeliveryResult:
        if not is_mainland_mobile(recipient.address):
            return DeliveryResult(recipient.delivery_id, Outcome.PERMANENT,
                                  error="Tencent VMS calls mainland mobiles only (a fixed line?)")
        payload = {"TemplateId": template, "TemplateParamSet": params, "CalledNumber": recipient.address,
                   "VoiceSdkAppid": self.config.sdk_app_id, "PlayTimes": self.config.play_times,
                   "SessionContext": recipient.delivery_id}
        try:
            status, raw = await self._api.post(ACTION, payload)
            response = response_body(status, raw, label=LABEL, classify=classify)
        except DeliveryError as exc:  # one number per request: the request's failure is this recipient's
            outcome = Outcome.PERMANENT if isinstance(exc, PermanentDeliveryError) else Outcome.TRANSIENT
            return DeliveryResult(recipient.delivery_id, outcome, error=str(exc),
                                  retry_after=getattr(exc, "retry_after", None))
        send_status = response.get("SendStatus")
        call_id = send_status.get("CallId") if isinstance(send_status, dict) else None
        if not call_id:  # accepted, but no receipt could ever match: retried rather than waited on forever
            return DeliveryResult(recipient.delivery_id, Outcome.TRANSIENT, error=f"{LABEL}: answer without CallId")
        return DeliveryResult(recipient.delivery_id, Outcome.ACCEPTED, provider_message_id=str(call_id))

    async def aclose(self) -> None:
        """Nothing to release: the HTTP session is the service's."""


# --- callbacks --------------------------------------------------------------------------------------------------

class PromptCallback(BaseModel):
    """`voiceprompt_callback`: how a voice notification call ended."""

    model_config = ConfigDict(extra="allow", frozen=True)

    result: Text
    callid: Text = Field(min_length=1)
    accept_time: Text = ""
    end_calltime: Text = ""
    start_calltime: Text = ""


class FailureCallback(BaseModel):
    """`voice_failure_callback`: why a call did not reach the person."""

    model_config = ConfigDict(extra="allow", frozen=True)

    failure_code: int
    callid: Text = Field(min_length=1)
    failure_reason: str = ""


class Callback(BaseModel):
    """One pushed object: a status, a failure reason, or something we take and ignore (keypresses)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    voiceprompt_callback: PromptCallback | None = None
    voice_failure_callback: FailureCallback | None = None


_CALLBACKS = TypeAdapter(list[Callback])


def _unix(*values: str) -> float | None:
    for value in values:
        if value.strip().isdigit() and int(value) > 0:
            return float(value)
    return None


def _prompt_receipt(prompt: PromptCallback) -> Receipt:
    result = prompt.result.strip()
    label, delivered, retry = PROMPT_RESULTS.get(result, ("unknown result", False, True))
    return Receipt(provider_message_id=prompt.callid, delivered=delivered,
                   key=call_id_key(prompt.callid, "prompt", clean_code(result)),
                   error=None if delivered else f"result {clean_code(result)} {label}",
                   occurred_at=_unix(prompt.end_calltime, prompt.accept_time, prompt.start_calltime), retry=retry)


def _failure_receipt(failure: FailureCallback) -> Receipt:
    label, retry = FAILURE_CODES.get(failure.failure_code, ("unknown failure", True))
    return Receipt(provider_message_id=failure.callid, delivered=False,
                   key=call_id_key(failure.callid, "failure", str(failure.failure_code)),
                   error=f"failure {failure.failure_code} {label}", retry=retry)


def parse_receipts(body: bytes) -> list[Receipt]:
    """The status and failure callbacks (one JSON object as documented, or an array of them) as receipts;
    CallbackFormatError (a ValueError) when the body is neither. Answer with RECEIPT_ACK."""
    return all_receipts(map(receipts_of, pushed_reports(body)))


def pushed_reports(body: bytes) -> list[Callback]:
    """The callbacks of a push, validated; CallbackFormatError when the body is neither form."""
    return validated_items(_CALLBACKS, body)


def receipts_of(callback: Callback) -> list[Receipt]:
    """One callback's receipts: its call's result, its failure, or both."""
    receipts = []
    if callback.voiceprompt_callback is not None:
        receipts.append(_prompt_receipt(callback.voiceprompt_callback))
    if callback.voice_failure_callback is not None:
        receipts.append(_failure_receipt(callback.voice_failure_callback))
    return receipts
