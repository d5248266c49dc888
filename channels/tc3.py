"""Tencent Cloud API 3.0 as the SMS and voice adapters use it: TC3-HMAC-SHA256 signing, one signed JSON POST,
and the whole-request errors (`Response.Error`) turned into delivery errors.

Docs: signature v3 https://cloud.tencent.com/document/api/362/4208,
https://www.tencentcloud.com/document/api/1084/39391 (its DescribeInstances example is the test vector in
tests/channels/test_signing.py) · common errors https://cloud.tencent.com/document/api/382/59177

A request is `POST /` with a JSON body and the headers `X-TC-Action`, `X-TC-Version`, `X-TC-Timestamp`,
`X-TC-Region` and `Authorization: TC3-HMAC-SHA256 Credential=<id>/<UTC date>/<service>/tc3_request,
SignedHeaders=content-type;host, Signature=<hex>`. The API answers HTTP 200 with `{"Response": {…}}`, or
`{"Response": {"Error": {"Code", "Message"}, "RequestId"}}` for a request that failed as a whole.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from yarl import URL

from channels.base import Outcome
from channels.callbacks import clean_code
from channels.errors import PermanentDeliveryError, TransientDeliveryError
from subscriptions.masking import scrub

log = logging.getLogger(__name__)

ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
MAX_RESPONSE_BYTES = 1 << 20  # 200 SMS statuses are about 40 KB


# --- TC3-HMAC-SHA256 --------------------------------------------------------------------------------------------

def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def utc_date(timestamp: int) -> str:
    """The credential scope's date: the UTC day of `timestamp` (not local time: requests near midnight fail)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def signed_header_names(headers: Mapping[str, str]) -> str:
    """`content-type;host`: the signed header names, lower case, sorted, joined by `;`."""
    return ";".join(sorted(name.strip().lower() for name in headers))


def canonical_request(headers: Mapping[str, str], payload: bytes, *, method: str = "POST", query: str = "") -> str:
    """Method, URI ("/" for API 3.0), query, canonical headers (`name:value\\n`, lower case, sorted), the signed
    header names and the hex SHA-256 of the payload, one per line."""
    items = sorted((name.strip().lower(), value.strip().lower()) for name, value in headers.items())
    canonical_headers = "".join(f"{name}:{value}\n" for name, value in items)
    return f"{method.upper()}\n/\n{query}\n{canonical_headers}\n{signed_header_names(headers)}\n{_sha256_hex(payload)}"


def tc3_signature(secret_key: str, *, service: str, timestamp: int, headers: Mapping[str, str], payload: bytes,
                  method: str = "POST", query: str = "") -> str:
    """The hex TC3-HMAC-SHA256 signature of a request; `headers` are the signed ones (content-type and host)."""
    date = utc_date(timestamp)
    hashed = _sha256_hex(canonical_request(headers, payload, method=method, query=query).encode())
    string_to_sign = f"{ALGORITHM}\n{timestamp}\n{date}/{service}/tc3_request\n{hashed}"
    key = _hmac(_hmac(_hmac(("TC3" + secret_key).encode(), date), service), "tc3_request")
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def authorization(secret_id: str, secret_key: str, *, service: str, timestamp: int, headers: Mapping[str, str],
                  payload: bytes) -> str:
    """The `Authorization` header value of a signed POST."""
    signature = tc3_signature(secret_key, service=service, timestamp=timestamp, headers=headers, payload=payload)
    return (f"{ALGORITHM} Credential={secret_id}/{utc_date(timestamp)}/{service}/tc3_request, "
            f"SignedHeaders={signed_header_names(headers)}, Signature={signature}")


# --- answers ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Verdict:
    """What a Tencent code means for the send it answers."""

    outcome: Outcome
    retry_after: float | None = None
    disable_contact: bool = False


def request_error(code: str, message: str, request_id: str, *, label: str,
                  classify: Callable[[str], Verdict]) -> TransientDeliveryError | PermanentDeliveryError:
    """The delivery error for a `Response.Error` that failed the whole request."""
    verdict = classify(code)
    # The provider's text helps operators (AuthFailure explains itself); scrubbed in case it quotes a number.
    log.warning("%s refused the request: %s %s (RequestId %s)", label, code, scrub(message)[:200], request_id)
    if verdict.outcome is Outcome.PERMANENT:
        return PermanentDeliveryError(f"{label} {code}", code=code)
    return TransientDeliveryError(f"{label} {code}", code=code, retry_after=verdict.retry_after)


def response_body(status: int, raw: bytes, *, label: str, classify: Callable[[str], Verdict]) -> dict[str, Any]:
    """The `Response` object of a successful answer; raises the delivery error of one that failed as a whole."""
    if status >= 500:
        raise TransientDeliveryError(f"{label}: HTTP {status}", code=f"HTTP {status}")
    try:
        response = json.loads(raw)["Response"]
        if not isinstance(response, dict):
            raise TypeError("Response is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        if status in (408, 429) or status == 200:
            raise TransientDeliveryError(f"{label}: unreadable answer (HTTP {status})") from exc
        raise PermanentDeliveryError(f"{label}: HTTP {status}", code=f"HTTP {status}") from exc
    error = response.get("Error")
    if isinstance(error, dict):
        raise request_error(clean_code(error.get("Code")), str(error.get("Message", "")),
                            clean_code(response.get("RequestId", "")), label=label, classify=classify)
    if status in (408, 429):
        raise TransientDeliveryError(f"{label}: HTTP {status}", code=f"HTTP {status}")
    if status != 200:
        raise PermanentDeliveryError(f"{label}: HTTP {status}", code=f"HTTP {status}")
    return response


# --- the client -------------------------------------------------------------------------------------------------

class Tc3Client:
    """Signed API 3.0 POSTs for one product on the shared session (`label` names it in errors and logs)."""

    def __init__(self, http: aiohttp.ClientSession, *, endpoint: str, secret_id: str, secret_key: str,
                 service: str, version: str, region: str, timeout: float, label: str) -> None:
        self._http = http
        self._secret_id, self._secret_key = secret_id, secret_key
        self.service, self.version, self.region, self.label = service, version, region, label
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        url = URL(endpoint)
        self._url = str(url if url.path else url.with_path("/"))
        host = url.raw_host or ""
        host = f"[{host}]" if ":" in host else host
        # The Host header is signed, so it is sent exactly as signed (with the port when not the default).
        self._host = host if url.is_default_port() else f"{host}:{url.port}"

    def headers(self, action: str, body: bytes, timestamp: int) -> dict[str, str]:
        """The headers of one signed request."""
        signed = {"Content-Type": CONTENT_TYPE, "Host": self._host}
        auth = authorization(self._secret_id, self._secret_key, service=self.service, timestamp=timestamp,
                             headers=signed, payload=body)
        return {**signed, "Authorization": auth, "X-TC-Action": action, "X-TC-Version": self.version,
                "X-TC-Timestamp": str(timestamp), "X-TC-Region": self.region}

    async def post(self, action: str, payload: Mapping[str, Any]) -> tuple[int, bytes]:
        """POST a signed request; (status, body). Transport failures are translated here, once."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = self.headers(action, body, int(time.time()))  # signed afresh on every attempt: valid 5 minutes
        try:
            async with self._http.post(self._url, data=body, headers=headers, timeout=self._timeout,
                                       allow_redirects=False, raise_for_status=False) as response:
                return response.status, await self._read_limited(response)
        except TimeoutError as exc:  # before OSError: TimeoutError is one; aiohttp's timeouts subclass it
            raise TransientDeliveryError(f"{self.label}: timeout", code="timeout") from exc
        except (aiohttp.ClientError, OSError) as exc:
            # Only the kind of failure: aiohttp's messages carry the URL.
            raise TransientDeliveryError(f"{self.label}: connection error ({type(exc).__name__})",
                                         code="connection") from exc

    async def _read_limited(self, response: aiohttp.ClientResponse) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while chunk := await response.content.read(65_536):
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise TransientDeliveryError(f"{self.label}: answer too large")
            chunks.append(chunk)
        return b"".join(chunks)
