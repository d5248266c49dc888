"""The shape every channel adapter matches, and the data that crosses it.

The dispatcher renders one `Message` per alert × channel × locale, hands an adapter a batch of `Recipient`s
(at most `max_batch`), and gets back one `DeliveryResult` per recipient. Adapters never retry and never touch the
store: retrying, fallback and bookkeeping live in `notifier.dispatch`.

`Recipient` and `DeliveryResult`, one each per recipient of every send, are named tuples (made with keywords as
before): as immutable as a frozen dataclass and made two to three times faster, which a million-number fan-out
notices.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from channels.mac import KeyedMac

if TYPE_CHECKING:  # the records and rules here are read by the store and the command line, which send nothing
    import aiohttp

log = logging.getLogger("channels")


class Outcome(StrEnum):
    """What became of one recipient's send."""

    DELIVERED = "delivered"  # accepted, and acceptance is delivery for this channel (SMTP 250, webhook 2xx)
    ACCEPTED = "accepted"  # accepted by the provider; a delivery receipt will say whether it arrived
    TRANSIENT = "transient"  # not accepted; worth retrying
    PERMANENT = "permanent"  # not accepted; final


class Recipient(NamedTuple):
    """One delivery's addressee. `address` is personal data: never log it, mask it with subscriptions.masking."""

    delivery_id: str
    subscriber_id: str
    address: str
    secret: str | None = None  # webhook signing secret (whsec_…)
    manage_url: str | None = None
    unsubscribe_url: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """An alert rendered for one channel and locale; identical for every recipient of a batch."""

    alert_id: str
    topic: str
    msg_type: str  # alert | update | cancel (CAP 1.2)
    severity: str
    urgency: str
    level: str | None
    locale: str
    headline: str
    text: str  # the plain-text rendering (SMS body, email text part, webhook `text`)
    subject: str | None = None  # email
    html: str | None = None  # email HTML alternative
    url: str | None = None  # the disclosure's public page
    fields: Mapping[str, str] = field(default_factory=dict)  # WeChat template keyword fields
    payload: Mapping[str, Any] = field(default_factory=dict)  # structured alert for machine consumers (webhook)
    sent_at: float = 0.0  # alert publish time, unix seconds


class DeliveryResult(NamedTuple):
    """The outcome of one recipient's send."""

    delivery_id: str
    outcome: Outcome
    provider_message_id: str | None = None
    error: str | None = None  # short, contact-free description (status code, provider code)
    retry_after: float | None = None  # seconds, from Retry-After or a provider hint
    disable_contact: bool = False  # the endpoint asked never to be called again (webhook 410)


class Receipt(NamedTuple):
    """A provider's word on what became of one accepted message (SMS delivery report, WeChat job finish, the
    result of a voice call).

    `address` is personal data (the mobile number the report names): used only to match, never stored or logged.

    A named tuple, not a frozen dataclass: a million SMS send back a million reports, each made on the event loop
    that sends and again when applied, and a frozen dataclass took 0.95 µs to make, this 0.44 µs.
    """

    provider_message_id: str  # what send() returned as provider_message_id (Aliyun BizId, Tencent SerialNo, msgid)
    delivered: bool
    # Unique per report among those naming the same number, to drop the provider's repeats (e.g. BizId + time +
    # code); the store adds the number's keyed digest to it when `address` is set.
    key: str
    address: str | None = None  # E.164 when the provider id is shared by a batch (Aliyun BizId), else None
    error: str | None = None  # provider's code, contact-free (e.g. "MK:0001", "failed:user block")
    occurred_at: float | None = None  # when the handset received it, unix seconds, if the provider says
    # The attempt failed for now — not answered, busy, switched off — another attempt may succeed (voice calls:
    # the delivery is called again, up to the channel's `max_calls`, `min_call_interval` apart). Only with
    # delivered=False.
    retry: bool = False


def internal_error(delivery_id: str, exc: BaseException) -> DeliveryResult:
    """A bug while sending to one recipient: retried like a transient failure, named by type only."""
    return DeliveryResult(delivery_id, Outcome.TRANSIENT, error=f"internal error ({type(exc).__name__})")


async def send_each(recipients: Sequence[Recipient],
                    send_one: Callable[[Recipient], Coroutine[Any, Any, DeliveryResult]], *, kind: str,
                    on_error: Callable[[str, BaseException], DeliveryResult] = internal_error,
                    timeout: float | None = None) -> list[DeliveryResult]:
    """Send to every recipient concurrently (channels with one request per recipient); an unexpected error for
    one recipient becomes that recipient's result and never loses the others'.

    `timeout`: seconds every send may take. The sends all start together, so one timer for the batch is each
    send's limit: a send still running when it fires is stopped and its result is `on_error(id, TimeoutError())`.
    (A timer a request — aiohttp's own timeout — was 4 % of a webhook request's instructions.)"""
    # Every send starts at once, as with asyncio.gather, but the tasks are awaited in turn: gather's future and
    # its callback for each recipient cost the event loop more than the await (bench/RESULTS.md, eleventh round).
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(send_one(r)) for r in recipients]
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        for task in tasks:
            task.cancel()  # nothing for a send already finished

    timer = loop.call_later(timeout, expire) if timeout is not None else None
    this = asyncio.current_task()
    results: list[DeliveryResult] = []
    try:
        for recipient, task in zip(recipients, tasks, strict=True):
            try:
                results.append(await task)
            except asyncio.CancelledError:
                # The batch's time ran out for this send (its own cancellation: the timer's), unless the batch
                # itself is being cancelled.
                if not (expired and task.cancelled()) or (this is not None and this.cancelling()):
                    raise
                results.append(on_error(recipient.delivery_id, TimeoutError()))
            except Exception as exc:  # a bug while sending to this recipient: its result, never the others'
                log.error("%s send for delivery %s failed unexpectedly: %s", kind, recipient.delivery_id,
                          type(exc).__name__)  # never the address
                results.append(on_error(recipient.delivery_id, exc))
    except BaseException:  # cancelled: the sends still running stop too, as gather's would
        for task in tasks:
            if not task.cancel() and not task.cancelled():
                task.exception()  # finished with an error nobody will read: retrieved, so not logged as lost
        raise
    finally:
        if timer is not None:
            timer.cancel()
    return results


def receipt_match_key(key: bytes, provider_message_id: str, address: str) -> str:
    """A digest naming (provider message, number) without keeping the number: how a report for a batch-wide id
    (Aliyun BizId) is matched to its delivery, even when it arrives before the send was recorded. Keyed (HMAC with
    the service's number key, `notifier.keyring.number_digest_key`): unkeyed, the whole mobile range could be
    tried against a stolen copy in about a core-hour."""
    return NumberDigest(key)(provider_message_id, address)


class NumberDigest:
    """`receipt_match_key` under one key, for many numbers: the key is set up once (`KeyedMac`), not for each of a
    batch's 1,000 numbers."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("a number digest needs a key")
        self._keyed = KeyedMac(key)

    def __call__(self, provider_message_id: str, address: str) -> str:
        return self._keyed(f"{provider_message_id}|{address}".encode()).hex()


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """What the service lends an adapter: the one shared HTTP session and where links point."""

    http: aiohttp.ClientSession
    public_url: str


@runtime_checkable
class Channel(Protocol):
    """A delivery channel adapter."""

    kind: str
    max_batch: int  # recipients per send() call
    max_chars: int | None  # longest text the channel carries in one message, None for unbounded
    rate_per_second: float | None  # provider requests per second for this account, None for unlimited
    confirms_by_receipt: bool  # True when acceptance is not delivery (SMS, WeChat): a receipt decides
    # Optional: `one_request_per_batch = True` when a whole batch is one provider request (SMS SendSms), so that
    # the rate limit counts requests rather than recipients; `requests_per_recipient = True` when every recipient
    # is a request of its own on the shared HTTP session (webhook, WeChat, voice), so that the dispatcher keeps
    # routine ones within their share of its connection pool. Channels that call people (voice) also declare
    # `max_calls` (calls per delivery, first one included) and `min_call_interval` (seconds between two calls
    # to one number): a receipt with `retry` set asks for another call within those bounds.

    async def send(self, message: Message, recipients: list[Recipient]) -> list[DeliveryResult]:
        """Send `message` to every recipient; one result per recipient, in any order."""
        ...

    async def aclose(self) -> None:
        """Release what the adapter holds (SMTP connections, token refreshers); not the shared HTTP session."""
        ...


class ChannelFactory(Protocol):
    """Builds an adapter from its raw configuration section (validated by the adapter's own pydantic model)."""

    def __call__(self, config: Mapping[str, Any], context: ChannelContext) -> Channel: ...
