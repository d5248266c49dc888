"""Webhook channel: a signed JSON POST per recipient, following Standard Webhooks 1.0.

Spec: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md

Setup
-----
1. Nothing to register: an organisation subscribes with its endpoint URL (`contacts.webhook`) and gets a
   `whsec_…` secret (its own, or one generated and shown once in the 201 answer).
2. Configuration, all optional::

       [channels.webhook]
       allow_private_networks = false   # true only when partners live on the internal network
       timeout = 10                     # seconds per attempt
3. The receiver verifies each request with any Standard Webhooks library, e.g. Python
   `standardwebhooks.webhooks.Webhook(secret).verify(body, headers)`, and deduplicates on `webhook-id`.

What goes over the wire
-----------------------
- Headers: `webhook-id` (the delivery id: the same on every retry, the receiver's idempotency key),
  `webhook-timestamp` (unix seconds, fresh on every attempt), `webhook-signature: v1,<base64 HMAC-SHA256 of
  "{id}.{timestamp}.{body}">` keyed with the base64-decoded part of the secret after `whsec_`.
- Body: the alert's structured `payload` plus `type` (`alert.<alert|update|cancel>`), `delivery_id`,
  `alert_id`, `text`, `url` and `timestamp` (the alert's publish time, ISO 8601), and the subscriber's own
  `manage_url` and `unsubscribe_url` (signed links; see notifier.links). Thin on purpose (< 20 KB, no contact
  data): the receiver follows `url` for the full disclosure.

Answers (one helper, `classify`): 2xx delivered; 410 permanent and the contact is disabled; 408, 429 and 5xx
transient, honouring Retry-After; 3xx permanent (redirects are never followed: they could lead past the SSRF
guard); other 4xx permanent; timeouts and connection errors transient.

SSRF: before every attempt `channels.ssrf.check_url` refuses forbidden IP literals (aiohttp does not resolve
them, so a resolver cannot see them); hostnames are judged by the `GuardedResolver` on the shared session.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import logging
import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from channels import jsonbody
from channels.base import ChannelContext, DeliveryResult, Message, Outcome, Recipient, send_each
from channels.http import UNTIMED
from channels.ssrf import DestinationRefusedError, ForbiddenDestination, UnsupportedURL, check_url

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the public prefix of every secret, not a secret
MAX_BODY_BYTES = 20_000  # Standard Webhooks: payloads should be thin (< 20 KB)
REFUSED = "destination refused: private address"


class WebhookConfig(BaseModel):
    """`[channels.webhook]`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allow_private_networks: bool = False
    timeout: float = Field(default=10.0, gt=0, le=120)
    max_response_bytes: int = Field(default=64 * 1024, ge=0)  # read this much of an answer, then hang up
    rate_per_second: float | None = Field(default=None, gt=0)
    max_batch: int = Field(default=100, ge=1, le=10_000)
    user_agent: str = "notifier-gov webhook (+https://www.standardwebhooks.com/)"


def create(config: Mapping[str, Any], context: ChannelContext) -> WebhookChannel:
    """The registry's factory: validate `[channels.webhook]` and build the adapter on the shared session."""
    return WebhookChannel(WebhookConfig.model_validate(dict(config)), context.http)


def signing_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_…` secret; ValueError when it is not valid base64."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    encoded += "=" * (-len(encoded) % 4)  # the reference library accepts unpadded secrets, so do we
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise ValueError("webhook secret is not valid base64") from exc


def sign(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`."""
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def build_body(shared: tuple[bytes, bytes], recipient: Recipient) -> bytes:
    """The JSON body for one recipient of a message (`shared_body`); the same bytes on every retry of a delivery."""
    head, tail = shared
    # Only the delivery id (and the recipient's own manage/unsubscribe links) differ between recipients:
    # splice them in rather than serialise the alert again.
    parts = [head, jsonbody.string(recipient.delivery_id)]
    for name, key in _LINK_KEYS:
        value = getattr(recipient, name)
        if value:
            parts += (key, jsonbody.string(value))
    parts.append(tail)
    return b"".join(parts)


_LINK_KEYS = tuple((name, b"," + jsonbody.string(name) + b":") for name in ("manage_url", "unsubscribe_url"))
_ID_SLOT = jsonbody.slot()


def shared_body(message: Message) -> tuple[bytes, bytes]:
    """A message's body, encoded once for a batch and cut where each recipient's delivery id goes (`build_body`).
    Its time is the alert's publication, so every batch and retry of the message encodes the same bytes."""
    sent = message.sent_at or time.time()
    core = {
        "type": f"alert.{message.msg_type}",
        "delivery_id": _ID_SLOT,
        "alert_id": message.alert_id,
        "text": message.text,
        "url": message.url,
        "timestamp": datetime.fromtimestamp(sent, UTC).isoformat().replace("+00:00", "Z"),
    }
    # A proxy's list of whom to tell (`assisted`, with a confirm link each) is the point of its message: it stays
    # when the rest of a large payload is dropped.
    for name in ("assisted", "assisted_url"):
        if name in message.payload:
            core[name] = message.payload[name]
    # Our fields win over the payload's, so a payload cannot pose as another delivery.
    body = jsonbody.dumps({**message.payload, **core})
    if len(body) > MAX_BODY_BYTES:
        # Keep the webhook thin rather than fail it: the receiver can fetch the rest from `url`.
        _warn_oversize(message.alert_id)
        body = jsonbody.dumps(core)
    head, tail = jsonbody.split(body, [_ID_SLOT])
    return head, tail


@functools.lru_cache(maxsize=256)  # once an alert, not once a batch of its fan-out
def _warn_oversize(alert_id: str) -> None:
    log.warning("webhook payload of alert %s over %d bytes; sending the core fields only", alert_id, MAX_BODY_BYTES)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)  # delay-seconds; tolerate a fraction, refuse nan/inf/negative
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT by definition
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def classify(delivery_id: str, answer: int | BaseException, headers: Mapping[str, str] | None = None) -> DeliveryResult:
    """The one place that turns an HTTP status or a transport error into a result (Standard Webhooks rules)."""
    if isinstance(answer, BaseException):
        return _classify_error(delivery_id, answer)
    status = answer
    if 200 <= status < 300:
        return DeliveryResult(delivery_id, Outcome.DELIVERED)
    error = f"HTTP {status}"
    if status == 410:  # the endpoint is gone and asks never to be called again
        return DeliveryResult(delivery_id, Outcome.PERMANENT, error=error, disable_contact=True)
    if status in (408, 429) or 500 <= status < 600:
        retry_after = parse_retry_after((headers or {}).get("Retry-After"))
        return DeliveryResult(delivery_id, Outcome.TRANSIENT, error=error, retry_after=retry_after)
    if 300 <= status < 400:
        return DeliveryResult(delivery_id, Outcome.PERMANENT, error=f"{error}: redirect not followed")
    if 400 <= status < 500:
        return DeliveryResult(delivery_id, Outcome.PERMANENT, error=error)
    return DeliveryResult(delivery_id, Outcome.TRANSIENT, error=f"{error}: unexpected status")


def _classify_error(delivery_id: str, exc: BaseException) -> DeliveryResult:
    # Texts name the kind of failure only: aiohttp's own messages carry the URL, which may hold tokens.
    if isinstance(exc, UnsupportedURL):
        return DeliveryResult(delivery_id, Outcome.PERMANENT, error="invalid webhook URL")
    if isinstance(exc, ForbiddenDestination) or (
        isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, DestinationRefusedError)
    ):
        return DeliveryResult(delivery_id, Outcome.PERMANENT, error=REFUSED)
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts subclass it (asyncio.TimeoutError is TimeoutError)
        return DeliveryResult(delivery_id, Outcome.TRANSIENT, error="timeout")
    if isinstance(exc, aiohttp.InvalidURL):
        return DeliveryResult(delivery_id, Outcome.PERMANENT, error="invalid webhook URL")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return DeliveryResult(delivery_id, Outcome.TRANSIENT, error="connection failed")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return DeliveryResult(delivery_id, Outcome.TRANSIENT, error=f"connection error ({type(exc).__name__})")
    return DeliveryResult(delivery_id, Outcome.TRANSIENT, error=f"internal error ({type(exc).__name__})")


class WebhookChannel:
    """Posts one signed request per recipient, concurrently within a batch, on the shared session."""

    kind = "webhook"
    confirms_by_receipt = False  # a 2xx is delivery: there is no receipt to wait for
    requests_per_recipient = True  # one request a recipient on the shared HTTP session
    max_chars: int | None = None

    def __init__(self, config: WebhookConfig, http: aiohttp.ClientSession) -> None:
        self.config = config
        self.max_batch = config.max_batch
        self.rate_per_second = config.rate_per_second
        self._http = http

    async def send(self, message: Message, recipients: list[Recipient]) -> list[DeliveryResult]:
        shared = shared_body(message)  # once a batch: the recipients' bodies differ in their id and links only
        # The attempt's time limit is the batch's (send_each), not one aiohttp timer a request.
        return await send_each(recipients, lambda r: self._send_one(shared, r), kind=self.kind, on_error=classify,
                               timeout=self.config.timeout)

    async def _send_one(self, shared: tuple[bytes, bytes], recipient: Recipient) -> DeliveryResult:
        delivery_id = recipient.delivery_id
        try:  # every send, retries included; aiohttp gets the URL exactly as checked
            url = check_url(recipient.address, allow_private=self.config.allow_private_networks)
        except (ForbiddenDestination, UnsupportedURL) as exc:
            return classify(delivery_id, exc)
        if not recipient.secret:
            return DeliveryResult(delivery_id, Outcome.PERMANENT, error="webhook secret missing")
        try:
            key = signing_key(recipient.secret)
        except ValueError:
            return DeliveryResult(delivery_id, Outcome.PERMANENT, error="webhook secret invalid")
        body = build_body(shared, recipient)
        timestamp = int(time.time())  # fresh on every attempt, so a replayed request ages out at the receiver
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self.config.user_agent,
            "webhook-id": delivery_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(key, delivery_id, timestamp, body),
        }
        try:  # raise_for_status=False whatever the shared session says: every status is classified here
            async with self._http.post(url, data=body, headers=headers, allow_redirects=False, timeout=UNTIMED,
                                       raise_for_status=False) as response:
                await _drain(response, self.config.max_response_bytes)
                return classify(delivery_id, response.status, response.headers)
        except (aiohttp.ClientError, OSError) as exc:  # TimeoutError is an OSError
            return classify(delivery_id, exc)

    async def aclose(self) -> None:
        """Nothing to release: the HTTP session is the service's."""


async def _drain(response: aiohttp.ClientResponse, limit: int) -> None:
    """Read at most `limit` bytes of the answer; a longer body makes aiohttp close, not reuse, the connection."""
    remaining = limit
    while remaining > 0 and not response.content.at_eof():  # a short answer: one read, not a second for the end
        chunk = await response.content.read(min(remaining, 16_384))
        if not chunk:
            return
        remaining -= len(chunk)
