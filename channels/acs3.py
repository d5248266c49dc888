"""Alibaba Cloud OpenAPI (RPC style) as the SMS and voice adapters use it: ACS3-HMAC-SHA256 signing, one signed
POST, and the verdicts both products share (flow control, gateway errors, transport failures).

Docs: V3 signature https://help.aliyun.com/document_detail/2593177.html (checked against the official test vector
in tests/channels/test_signing.py) · SMS and voice flow control https://help.aliyun.com/document_detail/2881383.html,
https://help.aliyun.com/document_detail/449961.html · voice API errors https://help.aliyun.com/document_detail/178344.html

dysmsapi and dyvmsapi are both RPC APIs (version 2017-05-25): the action and version travel as `x-acs-action` /
`x-acs-version` headers, the parameters as a form body (or the query string, as the official SDKs do), and every
header sent is signed. Answers are `{"Code": "OK", …}` with HTTP 200, or a `Code` saying what went wrong; the
`Message` can echo the request (numbers included), so only codes are ever kept.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from urllib.parse import quote

import aiohttp
from pydantic import SecretStr
from yarl import URL

from channels.base import DeliveryResult, Outcome

log = logging.getLogger(__name__)

ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
FORM = "application/x-www-form-urlencoded"
FLOW_CONTROL = "isv.BUSINESS_LIMIT_CONTROL"
RECEIPT_ACK: dict[str, Any] = {"code": 0, "msg": "接收成功"}  # the answer every HTTP push expects (HTTP 200)
_TRANSIENT_CODES = frozenset({"isp.SYSTEM_ERROR", "isp.GATEWAY_ERROR", "SignatureNonceUsed", "ServiceUnavailable",
                              "InternalError", "UnknownError"})


class AliyunAccount(Protocol):
    """What a signed call needs from an adapter's configuration."""

    @property
    def endpoint(self) -> str: ...
    @property
    def access_key_id(self) -> str: ...
    @property
    def access_key_secret(self) -> SecretStr: ...
    @property
    def params_in(self) -> Literal["body", "query"]: ...


def check_endpoint(value: str) -> str:
    """A config validator: an http(s) URL without query or fragment."""
    url = URL(value)
    if url.scheme not in ("http", "https") or not url.host or url.query_string or url.fragment:
        raise ValueError("must be an http(s) URL without query, e.g. https://dysmsapi.aliyuncs.com")
    return value


# --- signing -------------------------------------------------------------------------------------------------


def percent_encode(value: str) -> str:
    """RFC 3986 as Aliyun wants it: unreserved characters kept, everything else %XX of UTF-8 (space → %20)."""
    return quote(value, safe="~")


def canonical_query(params: Mapping[str, str]) -> str:
    """Parameters sorted by name, names and values percent-encoded, joined `k=v&…`."""
    return "&".join(f"{percent_encode(k)}={percent_encode(params[k])}" for k in sorted(params))


@dataclass(frozen=True, slots=True)
class Acs3Signature:
    """Every intermediate of one ACS3-HMAC-SHA256 signature (the tests compare them with the official example)."""

    canonical_request: str
    hashed_canonical_request: str
    signed_headers: str
    signature: str

    def authorization(self, access_key_id: str) -> str:
        return f"{ALGORITHM} Credential={access_key_id},SignedHeaders={self.signed_headers},Signature={self.signature}"


def acs3_signature(*, secret: str, method: str, uri: str, query: Mapping[str, str], headers: Mapping[str, str],
                   hashed_payload: str) -> Acs3Signature:
    """Sign a request per "V3 request structure and signature": every header in `headers` is signed.

    CanonicalRequest = METHOD \\n URI \\n CanonicalQuery \\n CanonicalHeaders \\n SignedHeaders \\n HashedPayload,
    CanonicalHeaders = sorted lowercase `name:trimmed value\\n`; Signature = hex HMAC-SHA256(secret,
    "ACS3-HMAC-SHA256\\n" + hex SHA-256(CanonicalRequest)).
    """
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    names = sorted(lowered)
    canonical_headers = "".join(f"{name}:{lowered[name]}\n" for name in names)
    signed_headers = ";".join(names)
    canonical = "\n".join((method.upper(), uri, canonical_query(query), canonical_headers, signed_headers,
                           hashed_payload))
    hashed = hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(secret.encode(), f"{ALGORITHM}\n{hashed}".encode(), hashlib.sha256).hexdigest()
    return Acs3Signature(canonical, hashed, signed_headers, signature)


def signed_request(account: AliyunAccount, action: str, params: Mapping[str, str], *, version: str,
                   now: datetime | None = None, nonce: str | None = None) -> tuple[URL, dict[str, str], bytes]:
    """URL, headers and body of one signed RPC call, the parameters in a form body or the query (`params_in`)."""
    base = URL(account.endpoint)
    host = base.raw_host or ""
    host = f"[{host}]" if ":" in host else host
    if base.explicit_port is not None:
        host = f"{host}:{base.explicit_port}"
    in_body = account.params_in == "body"
    body = canonical_query(params).encode() if in_body else b""  # %20 for spaces, %2B for +: valid form encoding
    query = {} if in_body else dict(params)
    payload_hash = hashlib.sha256(body).hexdigest()
    # content-type always, and signed: aiohttp would otherwise add an unsigned `application/octet-stream`.
    headers = {
        "host": host,
        "content-type": FORM,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": nonce or secrets.token_hex(16),
        "x-acs-content-sha256": payload_hash,
    }
    uri = base.raw_path or "/"
    signature = acs3_signature(secret=account.access_key_secret.get_secret_value(), method="POST", uri=uri,
                               query=query, headers=headers, hashed_payload=payload_hash)
    headers["Authorization"] = signature.authorization(account.access_key_id)
    # Encoded by us and sent as is: the server signs the query string it receives, byte for byte.
    target = f"{base.scheme}://{base.raw_authority}{uri}" + (f"?{canonical_query(query)}" if query else "")
    return URL(target, encoded=True), headers, body


# --- answers ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """Aliyun's answer to one request (for SMS it holds for every number in it)."""

    outcome: Outcome
    error: str | None = None
    retry_after: float | None = None
    provider_id: str | None = None  # SendSms BizId, SingleCallByTts CallId

    def result(self, delivery_id: str) -> DeliveryResult:
        return DeliveryResult(delivery_id, self.outcome, provider_message_id=self.provider_id, error=self.error,
                              retry_after=self.retry_after)


Answer = tuple[int, Mapping[str, Any] | None] | BaseException


def classify(answer: Answer, *, id_field: str, codes: Mapping[str, Verdict] | None = None) -> Verdict:
    """The rules every Aliyun product shares: `Code` OK accepts (with the `id_field` as provider id); product codes
    in `codes` say what they say; flow control, gateway throttling, 5xx/408/429 and transport errors are
    transient; every other code is permanent, named by its code only."""
    if isinstance(answer, BaseException):
        return classify_error(answer)
    status, body = answer
    body = body or {}
    code = str(body.get("Code") or "")
    if status == 200 and code == "OK":
        provider_id = str(body.get(id_field) or "") or None
        return Verdict(Outcome.ACCEPTED, provider_id=provider_id,
                       error=None if provider_id else f"accepted without {id_field}: no receipt can match")
    if codes and code in codes:
        return codes[code]
    label = code if status == 200 else f"HTTP {status} {code}".rstrip()
    if code == FLOW_CONTROL:
        return flow_control(str(body.get("Message") or ""))
    if code in _TRANSIENT_CODES or code.startswith("Throttling") or status >= 500 or status in (408, 429):
        return Verdict(Outcome.TRANSIENT, error=label)
    if not code:  # a 200 we cannot read may hide an acceptance, but a retry is the safer guess for an alert
        return Verdict(Outcome.TRANSIENT if status == 200 else Outcome.PERMANENT, error=label or "unreadable answer")
    return Verdict(Outcome.PERMANENT, error=label)


def flow_control(message: str) -> Verdict:
    """`isv.BUSINESS_LIMIT_CONTROL`: the Message says which window was hit ("触发分钟级流控Permits:1", "…小时级…",
    "触发天级流控Permits:10"). A minute or an hour is worth waiting for; a day is not (the next channel is)."""
    if "天级" in message:
        return Verdict(Outcome.PERMANENT, error=f"{FLOW_CONTROL}: daily limit per number")
    if "小时级" in message:
        return Verdict(Outcome.TRANSIENT, error=f"{FLOW_CONTROL}: hourly limit", retry_after=3600.0)
    return Verdict(Outcome.TRANSIENT, error=f"{FLOW_CONTROL}: minute limit", retry_after=60.0)


def classify_error(exc: BaseException) -> Verdict:
    """A transport failure: transient, named by kind only (aiohttp's texts carry the URL, the query numbers)."""
    if isinstance(exc, TimeoutError):
        return Verdict(Outcome.TRANSIENT, error="timeout")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Verdict(Outcome.TRANSIENT, error="connection failed")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return Verdict(Outcome.TRANSIENT, error=f"connection error ({type(exc).__name__})")
    return Verdict(Outcome.TRANSIENT, error=f"internal error ({type(exc).__name__})")


def json_object(raw: bytes) -> dict[str, Any] | None:
    """The answer's JSON object, or None when the body is not one."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


async def call(http: aiohttp.ClientSession, account: AliyunAccount, action: str, params: Mapping[str, str], *,
               version: str, timeout: aiohttp.ClientTimeout, verdict: Callable[[Answer], Verdict]) -> Verdict:
    """One signed POST of `action`; its answer (or transport failure) judged by `verdict`."""
    url, headers, body = signed_request(account, action, params, version=version)
    try:
        # raise_for_status=False whatever the shared session says: every status is classified.
        async with http.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False,
                             raise_for_status=False) as response:
            raw = await response.read()
            status = response.status
    except (aiohttp.ClientError, OSError) as exc:  # TimeoutError is an OSError
        return verdict(exc)
    judged = verdict((status, json_object(raw)))
    if judged.outcome is not Outcome.ACCEPTED:
        log.warning("aliyun %s refused: %s", action, judged.error)
    return judged
