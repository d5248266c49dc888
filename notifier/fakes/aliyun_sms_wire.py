"""What the fake Aliyun SMS gateway checks and says on the wire: ACS3-HMAC-SHA256 verification (recomputed from the
request as received, independently of the client in channels.sms.aliyun), SendSms parameter rules, Aliyun's
error bodies, and the SmsReport/SmsUp pushes with Aliyun's retry schedule (shortened).

Sources: https://help.aliyun.com/document_detail/2593177.html (V3 signature),
https://help.aliyun.com/document_detail/55284.html (SendSms), https://help.aliyun.com/document_detail/101867.html
(SmsReport), https://help.aliyun.com/document_detail/101847.html (SmsUp). Gateway error codes and texts as Aliyun's
SDKs and users quote them (`SignatureDoesNotMatch` 400, `InvalidAccessKeyId.NotFound` 404, `SignatureNonceUsed`,
`InvalidTimeStamp.Expired`); `IncompleteSignature` for a malformed Authorization is a best guess.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, unquote, unquote_plus

import aiohttp

ALGORITHM = "ACS3-HMAC-SHA256"
VERSION = "2017-05-25"
MAX_NUMBERS = 1000
CLOCK_SKEW = 15 * 60  # seconds a request's x-acs-date may differ from the server's clock
REQUIRED_SIGNED = frozenset({"host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce",
                             "x-acs-content-sha256"})
CHINA_TZ = timezone(timedelta(hours=8))
PUSH_RETRY_DELAYS = (0.2, 1.0, 2.0)  # Aliyun: 1, 5 and 10 minutes after a failed push, then it gives up

_AUTHORIZATION = re.compile(
    r"ACS3-HMAC-SHA256 Credential=(?P<ak>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<sig>[0-9a-f]+)")
_NATIONAL = re.compile(r"1[3-9]\d{9}")
_TEMPLATE_CODE = re.compile(r"SMS_\d+")


@dataclass(frozen=True, slots=True)
class Refusal:
    """An error answer: HTTP status, Aliyun `Code` and `Message`."""

    status: int
    code: str
    message: str

    def body(self, host: str) -> dict[str, str]:
        return {"RequestId": request_id(), "HostId": host, "Code": self.code, "Message": self.message,
                "Recommend": f"https://api.aliyun.com/troubleshoot?q={self.code}&product=Dysmsapi"}


def request_id() -> str:
    return str(uuid.uuid4()).upper()


def refusal(code: str, message: str, status: int = 200) -> Refusal:
    """A business error: SendSms answers those with HTTP 200 and a `Code` other than OK."""
    return Refusal(status, code, message)


# --- signature ---------------------------------------------------------------------------------------------------


def decode_params(raw: str, *, form: bool = False) -> dict[str, str]:
    """`a=1&b=%20` → {"a": "1", "b": " "}; in a form body `+` also means a space."""
    decode = unquote_plus if form else unquote
    params: dict[str, str] = {}
    for pair in raw.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            params[decode(name)] = decode(value)
    return params


def _encode(value: str) -> str:
    return quote(value, safe="~")


def string_to_sign(method: str, raw_path: str, query: Mapping[str, str], headers: Mapping[str, str],
                   signed: Sequence[str], payload_hash: str) -> str:
    """The server's StringToSign for a request, from what it received."""
    canonical_query = "&".join(f"{_encode(k)}={_encode(query[k])}" for k in sorted(query))
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed)
    canonical = "\n".join((method, raw_path or "/", canonical_query, canonical_headers, ";".join(signed),
                           payload_hash))
    return f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"


@dataclass
class SignatureChecker:
    """Verifies ACS3-HMAC-SHA256 requests as the gateway does, remembering nonces for the clock-skew window."""

    secrets: Mapping[str, str]  # AccessKeyId → AccessKeySecret

    def __post_init__(self) -> None:
        self._nonces: dict[str, float] = {}

    def check(self, method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], body: bytes,
              now: float | None = None) -> Refusal | None:
        """None when the request is authentic and fresh, else the gateway's refusal."""
        now = time.time() if now is None else now
        match = _AUTHORIZATION.fullmatch(headers.get("Authorization", "").strip())
        if match is None:
            return Refusal(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
        secret = self.secrets.get(match["ak"])
        if secret is None:
            return Refusal(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        signed = sorted(name.lower() for name in match["signed"].split(";"))
        present = {name.lower() for name in headers
                   if name.lower().startswith("x-acs-") or name.lower() == "content-type"} | {"host"}
        if not (REQUIRED_SIGNED | present) <= set(signed):
            return Refusal(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
        payload_hash = hashlib.sha256(body).hexdigest()
        lowered = {name.lower(): value for name, value in headers.items()}
        expected_string = string_to_sign(method, raw_path, decode_params(raw_query), lowered, signed, payload_hash)
        expected = hmac.new(secret.encode(), expected_string.encode(), hashlib.sha256).hexdigest()
        if lowered.get("x-acs-content-sha256") != payload_hash or not hmac.compare_digest(expected, match["sig"]):
            return Refusal(400, "SignatureDoesNotMatch", "Specified signature does not match our calculation. "
                           f"server string to sign is:{expected_string}")
        return self._fresh(lowered, now)

    def _fresh(self, headers: Mapping[str, str], now: float) -> Refusal | None:
        try:
            sent = datetime.strptime(headers.get("x-acs-date", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            age = abs(now - sent.timestamp())
        except ValueError:
            age = float("inf")
        if age > CLOCK_SKEW:
            return Refusal(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        self._nonces = {n: t for n, t in self._nonces.items() if now - t <= 2 * CLOCK_SKEW}
        nonce = headers.get("x-acs-signature-nonce", "")
        if nonce in self._nonces:
            return Refusal(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        self._nonces[nonce] = now
        return None


def check_action(headers: Mapping[str, str], action: str, version: str) -> Refusal | None:
    """The gateway's refusal of a request for another action or API version, else None."""
    if headers.get("x-acs-action") != action:
        return Refusal(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
    if headers.get("x-acs-version") != version:
        return Refusal(400, "InvalidVersion", "Specified parameter Version is not valid.")
    return None


# --- SendSms parameters ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendSmsRequest:
    """A SendSms that passed every check. `numbers` are 11-digit national numbers (personal data: memory only)."""

    numbers: tuple[str, ...]
    sign_name: str
    template_code: str
    params: Mapping[str, str]
    out_id: str | None


def national(number: str) -> str | None:
    """The 11-digit form of a number written +86…, 0086…, 86… or bare; None when it is not a mainland mobile."""
    digits = number.strip().removeprefix("+").removeprefix("00")
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits if _NATIONAL.fullmatch(digits) else None


def parse_send_sms(params: Mapping[str, str], templates: Mapping[str, frozenset[str]] | None,
                   sign_names: frozenset[str] | None) -> SendSmsRequest | Refusal:
    """Validate SendSms parameters in the order Aliyun reports problems."""
    for name in ("PhoneNumbers", "SignName", "TemplateCode"):
        if not params.get(name):
            return Refusal(400, f"Missing{name}", f"{name} is mandatory for this action.")
    raw_numbers = [n for n in params["PhoneNumbers"].split(",") if n.strip()]
    if len(raw_numbers) > MAX_NUMBERS:
        return refusal("isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制")
    numbers = tuple(national(n) for n in raw_numbers)
    if not numbers or any(n is None for n in numbers):
        return refusal("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
    if sign_names is not None and params["SignName"] not in sign_names:
        return refusal("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
    code = params["TemplateCode"]
    known = _TEMPLATE_CODE.fullmatch(code) if templates is None else code in templates
    if not known:
        return refusal("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
    variables = _template_param(params.get("TemplateParam"))
    if variables is None:
        return refusal("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
    if templates is not None and not templates[code] <= variables.keys():
        return refusal("isv.TEMPLATE_MISSING_PARAMETERS", "模板缺少变量")
    out_id = params.get("OutId")
    if out_id is not None and len(out_id) >= 256:
        return refusal("isv.INVALID_PARAMETERS", "参数异常")
    return SendSmsRequest(tuple(n for n in numbers if n), params["SignName"], code, variables, out_id)


def _template_param(raw: str | None) -> dict[str, str] | None:
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or not all(isinstance(v, str | int | float) for v in data.values()):
        return None
    return {str(k): str(v) for k, v in data.items()}


# --- pushes ------------------------------------------------------------------------------------------------------


def china_now() -> str:
    return datetime.now(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


def report(number: str, biz_id: str, out_id: str | None, send_time: str, *, delivered: bool) -> dict[str, Any]:
    """One SmsReport entry, in the documented shape."""
    return {"phone_number": number, "send_time": send_time, "report_time": china_now(), "success": delivered,
            "err_code": "DELIVERED" if delivered else "UNDELIV",
            "err_msg": "用户接收成功" if delivered else "用户无法接收", "sms_size": "1", "biz_id": biz_id,
            "out_id": out_id or ""}


def uplink(number: str, content: str, sequence_id: int, sign_name: str | None) -> dict[str, Any]:
    """One SmsUp entry (the current docs' fields, plus `sign_name` that older docs list)."""
    entry: dict[str, Any] = {"phone_number": number, "content": content, "send_time": china_now(),
                             "dest_code": "1234", "sequence_id": sequence_id}
    if sign_name:
        entry["sign_name"] = sign_name
    return entry


@dataclass(frozen=True, slots=True)
class PushAttempt:
    """One POST of a push to the configured URL (no contents: they name numbers)."""

    kind: str  # "SmsReport" | "SmsUp"
    entries: int
    status: int | None  # None: connection error or timeout
    accepted: bool


async def push(http: aiohttp.ClientSession, url: str, kind: str, entries: list[dict[str, Any]],
               attempts: list[PushAttempt], retry_delays: Sequence[float] = PUSH_RETRY_DELAYS) -> bool:
    """POST `entries` as a JSON array; retry on anything but HTTP 200 with a numeric `code`, as Aliyun does."""
    body = json.dumps(entries, ensure_ascii=False).encode()
    for delay in (0.0, *retry_delays):
        if delay:
            await asyncio.sleep(delay)
        status: int | None = None
        accepted = False
        try:
            async with http.post(url, data=body, headers={"Content-Type": "application/json;charset=utf-8"},
                                 timeout=aiohttp.ClientTimeout(total=5)) as response:
                status = response.status
                accepted = status == 200 and _numeric_code(await response.read())
        except (aiohttp.ClientError, OSError):
            pass
        attempts.append(PushAttempt(kind, len(entries), status, accepted))
        if accepted:
            return True
    return False


def _numeric_code(raw: bytes) -> bool:
    try:
        data = json.loads(raw)
    except ValueError:
        return False
    return isinstance(data, dict) and isinstance(data.get("code"), int | float) and not isinstance(
        data.get("code"), bool)
