"""The webhook channel against the bundled fake receiver over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pydantic
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from channels.base import Channel, Message, Outcome, Recipient
from channels.registry import factory_for
from channels.webhook import MAX_BODY_BYTES, REFUSED, WebhookChannel
from notifier.fakes.webhook_receiver import Reply, RunningReceiver

REPO = Path(__file__).resolve().parents[2]


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def recipient(url: str, *, delivery_id: str | None = None, secret: str | None = None) -> Recipient:
    return Recipient(
        delivery_id=delivery_id or f"dlv_{secrets.token_hex(8)}",
        subscriber_id="sub_1",
        address=url,
        secret=secret or new_secret(),
    )


def message(**overrides: Any) -> Message:
    values: dict[str, Any] = {
        "alert_id": "alt_1",
        "topic": "env.heavy-pollution",
        "msg_type": "alert",
        "severity": "severe",
        "urgency": "immediate",
        "level": "orange",
        "locale": "zh-CN",
        "headline": "重污染天气橙色预警",
        "text": "长治市发布重污染天气橙色预警，请减少户外活动。",
        "url": "http://127.0.0.1:8080/disclosures/alt_1",
        "payload": {"topic": "env.heavy-pollution", "severity": "severe", "regions": ["140402"]},
        "sent_at": 1_700_000_000.0,
    }
    values.update(overrides)
    return Message(**values)


def headers_of(received: Any) -> dict[str, str]:
    return {
        "webhook-id": received.webhook_id,
        "webhook-timestamp": received.timestamp,
        "webhook-signature": received.signature,
    }


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- success and the request itself -------------------------------------------------------------------------


async def test_2xx_is_delivered(webhook_channel: Any, receiver: RunningReceiver) -> None:
    """A receiver answering 200 counts as delivered, and it got exactly one request."""
    [result] = await webhook_channel().send(message(), [recipient(receiver.url_for("/hook"))])
    assert result.outcome is Outcome.DELIVERED
    assert result.error is None
    assert receiver.count == 1


async def test_signature_verifies_with_reference_library(webhook_channel: Any, receiver: RunningReceiver) -> None:
    """The receiver can verify the request with the reference Standard Webhooks library."""
    secret = new_secret()
    await webhook_channel().send(message(), [recipient(receiver.url_for("/hook"), secret=secret)])
    [got] = receiver.received
    payload = Webhook(secret).verify(got.body, headers_of(got))
    assert payload["alert_id"] == "alt_1"


async def test_body_is_thin_json_with_the_alert_fields(webhook_channel: Any, receiver: RunningReceiver) -> None:
    """The body is JSON carrying type, ids, text, link and timestamp beside the alert payload, and no contact."""
    to = recipient(receiver.url_for("/hook?token=s3cr3t"), delivery_id="dlv_42")
    await webhook_channel().send(message(msg_type="update"), [to])
    [got] = receiver.received
    body = json.loads(got.body)
    assert got.content_type == "application/json"
    assert body["type"] == "alert.update"
    assert body["delivery_id"] == "dlv_42"
    assert body["alert_id"] == "alt_1"
    assert body["text"].startswith("长治市")
    assert body["url"] == "http://127.0.0.1:8080/disclosures/alt_1"
    assert body["timestamp"] == "2023-11-14T22:13:20Z"
    assert body["regions"] == ["140402"]
    assert b"s3cr3t" not in got.body and b"sub_1" not in got.body


async def test_oversized_payload_is_trimmed_to_the_core_fields(webhook_channel: Any, receiver: RunningReceiver) -> None:
    """A payload over 20 KB is sent as the thin core (ids, text, link) rather than failed."""
    big = message(payload={"blob": "x" * (MAX_BODY_BYTES + 1)})
    [result] = await webhook_channel().send(big, [recipient(receiver.url_for("/hook"))])
    [got] = receiver.received
    assert result.outcome is Outcome.DELIVERED
    assert len(got.body) < MAX_BODY_BYTES
    assert "blob" not in json.loads(got.body)


async def test_an_oversized_payload_is_reported_once_an_alert(webhook_channel: Any, receiver: RunningReceiver,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """The body is encoded once a batch; a payload trimmed in every batch of a fan-out is still logged once."""
    big = message(alert_id="alt_oversized_once", payload={"blob": "x" * (MAX_BODY_BYTES + 1)})
    channel = webhook_channel()
    with caplog.at_level(logging.WARNING, logger="channels.webhook"):
        for n in range(3):
            await channel.send(big, [recipient(receiver.url_for("/hook"), delivery_id=f"dlv_big_{n}")])
    assert [r.getMessage() for r in caplog.records].count(
        f"webhook payload of alert alt_oversized_once over {MAX_BODY_BYTES} bytes; sending the core fields only") == 1
    assert len(receiver.received) == 3


async def test_webhook_id_is_stable_across_attempts(webhook_channel: Any, receiver: RunningReceiver) -> None:
    """Two attempts of one delivery carry the same webhook-id (the receiver's idempotency key) and body."""
    receiver.script("/hook", [503])
    channel, to = webhook_channel(), recipient(receiver.url_for("/hook"), delivery_id="dlv_stable")
    first = await channel.send(message(), [to])
    second = await channel.send(message(), [to])
    assert [first[0].outcome, second[0].outcome] == [Outcome.TRANSIENT, Outcome.DELIVERED]
    a, b = receiver.received
    assert a.webhook_id == b.webhook_id == "dlv_stable"
    assert a.body == b.body


async def test_webhook_timestamp_is_fresh_on_each_attempt(webhook_channel: Any, receiver: RunningReceiver) -> None:
    """Each attempt is stamped with the time it is sent, so a retry is not mistaken for a replay."""
    channel, to = webhook_channel(), recipient(receiver.url_for("/hook"))
    await channel.send(message(), [to])
    await asyncio.sleep(1.05)
    await channel.send(message(), [to])
    a, b = receiver.received
    assert a.timestamp is not None and b.timestamp is not None
    assert int(b.timestamp) > int(a.timestamp)
    assert abs(int(b.timestamp) - time.time()) < 5


async def test_batch_sends_every_recipient_and_reports_each(webhook_channel: Any, receiver: RunningReceiver) -> None:
    """A batch yields one result per recipient; one failing endpoint does not affect the others."""
    receiver.script("/down", [503])
    ok = [recipient(receiver.url_for(f"/ok{i}")) for i in range(5)]
    down = recipient(receiver.url_for("/down"))
    results = await webhook_channel().send(message(), [*ok, down])
    by_id = {r.delivery_id: r.outcome for r in results}
    assert by_id == {**{r.delivery_id: Outcome.DELIVERED for r in ok}, down.delivery_id: Outcome.TRANSIENT}


async def test_large_response_body_is_not_read_in_full(webhook_channel: Any, receiver: RunningReceiver) -> None:
    """An endpoint answering with a huge body is still delivered; only max_response_bytes are read."""
    receiver.script("/chatty", [Reply(body=b"x" * 5_000_000)])
    channel = webhook_channel(max_response_bytes=1024)
    [result] = await channel.send(message(), [recipient(receiver.url_for("/chatty"))])
    assert result.outcome is Outcome.DELIVERED


async def test_one_connection_carries_an_endpoints_successive_deliveries(webhook_channel: Any) -> None:
    """Answers are read to their end — a short body, none at all, or one that arrives in two parts — so the next
    delivery to the same endpoint goes over the same connection instead of a new one."""
    peers: list[object] = []

    async def slow_body(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "20000"})
        await response.prepare(request)
        await response.write(b"a" * 10_000)
        await asyncio.sleep(0.05)  # the rest comes after the first part has been read
        await response.write(b"b" * 10_000)
        return response

    async def short_body(request: web.Request) -> web.StreamResponse:
        return web.Response(text='{"ok":true}')

    async def no_body(request: web.Request) -> web.StreamResponse:
        return web.Response(status=204)

    answers = iter([short_body, slow_body, no_body, slow_body])

    async def endpoint(request: web.Request) -> web.StreamResponse:
        await request.read()
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        return await next(answers)(request)

    app = web.Application()
    app.router.add_post("/hook", endpoint)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        channel = webhook_channel()
        for _ in range(4):
            [result] = await channel.send(message(), [recipient(url)])
            assert result.outcome is Outcome.DELIVERED
    finally:
        await runner.cleanup()

    assert len(peers) == 4 and len(set(peers)) == 1


# --- answers that fail ----------------------------------------------------------------------------------------


async def test_503_is_transient(webhook_channel: Any, receiver: RunningReceiver) -> None:
    """A 503 answer is a transient failure reported as "HTTP 503"."""
    receiver.script("/hook", [503])
    [result] = await webhook_channel().send(message(), [recipient(receiver.url_for("/hook"))])
    assert (result.outcome, result.error) == (Outcome.TRANSIENT, "HTTP 503")


@pytest.mark.parametrize("status", [408, 500, 502, 504])
async def test_retryable_statuses_are_transient(webhook_channel: Any, receiver: RunningReceiver, status: int) -> None:
    """408 and 5xx answers are retried later."""
    receiver.script("/hook", [status])
    [result] = await webhook_channel().send(message(), [recipient(receiver.url_for("/hook"))])
    assert result.outcome is Outcome.TRANSIENT


async def test_429_retry_after_seconds_is_honoured(webhook_channel: Any, receiver: RunningReceiver) -> None:
    """A 429 with `Retry-After: 7` is transient and asks for a 7-second wait."""
    receiver.script("/hook", [Reply(status=429, headers={"Retry-After": "7"})])
    [result] = await webhook_channel().send(message(), [recipient(receiver.url_for("/hook"))])
    assert (result.outcome, result.retry_after) == (Outcome.TRANSIENT, 7.0)


async def test_429_retry_after_http_date_is_honoured(webhook_channel: Any, receiver: RunningReceiver) -> None:
    """A 429 whose Retry-After is an HTTP date asks to wait until then."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    receiver.script("/hook", [Reply(status=429, headers={"Retry-After": when})])
    [result] = await webhook_channel().send(message(), [recipient(receiver.url_for("/hook"))])
    assert result.outcome is Outcome.TRANSIENT
    assert result.retry_after is not None and 25 <= result.retry_after <= 30


async def test_unreadable_retry_after_gives_no_hint(webhook_channel: Any, receiver: RunningReceiver) -> None:
    """A 503 with a garbled Retry-After is still transient, leaving the wait to the dispatcher's backoff."""
    receiver.script("/hook", [Reply(status=503, headers={"Retry-After": "soon-ish"})])
    [result] = await webhook_channel().send(message(), [recipient(receiver.url_for("/hook"))])
    assert (result.outcome, result.retry_after) == (Outcome.TRANSIENT, None)


async def test_410_is_permanent_and_disables_the_contact(webhook_channel: Any, receiver: RunningReceiver) -> None:
    """A 410 Gone fails the delivery for good and asks for the endpoint to be disabled."""
    receiver.script("/hook", [410])
    [result] = await webhook_channel().send(message(), [recipient(receiver.url_for("/hook"))])
    assert (result.outcome, result.disable_contact) == (Outcome.PERMANENT, True)


async def test_other_4xx_is_permanent(webhook_channel: Any, receiver: RunningReceiver) -> None:
    """A 404 fails the delivery for good, without disabling the endpoint."""
    receiver.script("/hook", [404])
    [result] = await webhook_channel().send(message(), [recipient(receiver.url_for("/hook"))])
    assert (result.outcome, result.error, result.disable_contact) == (Outcome.PERMANENT, "HTTP 404", False)


async def test_redirect_is_not_followed(webhook_channel: Any, receiver: RunningReceiver) -> None:
    """A 302 is a permanent failure and its target is never requested."""
    receiver.script("/hook", [Reply(status=302, headers={"Location": receiver.url_for("/elsewhere")})])
    [result] = await webhook_channel().send(message(), [recipient(receiver.url_for("/hook"))])
    assert result.outcome is Outcome.PERMANENT
    assert result.error == "HTTP 302: redirect not followed"
    assert receiver.requests_to("/elsewhere") == []


async def test_timeout_is_transient(webhook_channel: Any, receiver: RunningReceiver) -> None:
    """An endpoint slower than the configured timeout is a transient failure."""
    receiver.script("/slow", [Reply(delay=5)])
    started = time.monotonic()
    [result] = await webhook_channel(timeout=0.3).send(message(), [recipient(receiver.url_for("/slow"))])
    assert (result.outcome, result.error) == (Outcome.TRANSIENT, "timeout")
    assert time.monotonic() - started < 3


async def test_connection_refused_is_transient(webhook_channel: Any) -> None:
    """An endpoint that is down (connection refused) is a transient failure."""
    [result] = await webhook_channel().send(message(), [recipient(f"http://127.0.0.1:{closed_port()}/hook")])
    assert (result.outcome, result.error) == (Outcome.TRANSIENT, "connection failed")


async def test_non_http_url_is_permanent(webhook_channel: Any) -> None:
    """A contact that is not an http(s) URL fails for good as an invalid webhook URL."""
    [result] = await webhook_channel().send(message(), [recipient("ftp://127.0.0.1/hook")])
    assert (result.outcome, result.error) == (Outcome.PERMANENT, "invalid webhook URL")


async def test_missing_secret_is_permanent(webhook_channel: Any, receiver: RunningReceiver) -> None:
    """A webhook contact without a signing secret is never sent unsigned."""
    to = Recipient(delivery_id="dlv_1", subscriber_id="sub_1", address=receiver.url_for("/hook"))
    [result] = await webhook_channel().send(message(), [to])
    assert (result.outcome, result.error) == (Outcome.PERMANENT, "webhook secret missing")
    assert receiver.count == 0


# --- SSRF ---------------------------------------------------------------------------------------------------


async def test_loopback_literal_is_refused_by_default(webhook_channel: Any, receiver: RunningReceiver) -> None:
    """Without allow_private_networks a 127.0.0.1 URL is refused and nothing is sent."""
    channel = webhook_channel(allow_private_networks=False)
    [result] = await channel.send(message(), [recipient(receiver.url_for("/hook?token=s3cr3t"))])
    assert (result.outcome, result.error) == (Outcome.PERMANENT, REFUSED)
    assert receiver.count == 0


async def test_allow_private_networks_lets_loopback_through(webhook_channel: Any, receiver: RunningReceiver) -> None:
    """With allow_private_networks = true a loopback endpoint receives its webhook."""
    [result] = await webhook_channel(allow_private_networks=True).send(message(), [recipient(receiver.url_for("/h"))])
    assert result.outcome is Outcome.DELIVERED


async def test_hostname_resolving_to_loopback_is_refused(
    webhook_channel: Any, make_session: Any, receiver: RunningReceiver
) -> None:
    """`localhost` resolves to loopback, so the guarded resolver refuses it and nothing is sent."""
    channel = webhook_channel(session=make_session(allow_private=False), allow_private_networks=False)
    url = receiver.url.replace("127.0.0.1", "localhost") + "/hook?token=s3cr3t"
    [result] = await channel.send(message(), [recipient(url)])
    assert (result.outcome, result.error) == (Outcome.PERMANENT, REFUSED)
    assert receiver.count == 0


async def test_exempt_host_is_reachable(webhook_channel: Any, make_session: Any, receiver: RunningReceiver) -> None:
    """A configured provider host (exempt_hosts) resolves to loopback and is still reachable."""
    session = make_session(allow_private=False, exempt_hosts={"localhost"})
    url = receiver.url.replace("127.0.0.1", "localhost") + "/hook"
    [result] = await webhook_channel(session=session, allow_private_networks=False).send(message(), [recipient(url)])
    assert result.outcome is Outcome.DELIVERED


async def test_errors_never_carry_the_url(webhook_channel: Any, receiver: RunningReceiver) -> None:
    """No error text contains the endpoint URL, which may hold tokens."""
    replies: dict[str, Reply | int] = {"/a": 503, "/b": 404, "/c": Reply(delay=5)}
    for path, reply in replies.items():
        receiver.script(path, [reply])
    channel = webhook_channel(timeout=0.3)
    urls = [receiver.url_for(p + "?token=s3cr3t") for p in ("/a", "/b", "/c")]
    urls.append(f"http://127.0.0.1:{closed_port()}/d?token=s3cr3t")
    results = await channel.send(message(), [recipient(u) for u in urls])
    assert all(r.error and "s3cr3t" not in r.error and "127.0.0.1" not in r.error for r in results)


# --- configuration and registration ---------------------------------------------------------------------------


async def test_registry_builds_a_channel_matching_the_protocol(make_session: Any) -> None:
    """`webhook` in the registry builds an adapter that declares its kind and limits."""
    from channels.base import ChannelContext

    channel = factory_for("webhook")({"max_batch": 50}, ChannelContext(http=make_session(), public_url="http://x"))
    assert isinstance(channel, Channel) and isinstance(channel, WebhookChannel)
    assert (channel.kind, channel.max_batch, channel.max_chars, channel.confirms_by_receipt) == (
        "webhook", 50, None, False,
    )


async def test_unknown_config_key_is_rejected(webhook_channel: Any) -> None:
    """A misspelt `[channels.webhook]` key is an error, not silently ignored."""
    with pytest.raises(pydantic.ValidationError):
        webhook_channel(allow_private_network=True)


# --- the receiver as its own process ---------------------------------------------------------------------------


async def test_receiver_process_counts_deliveries_in_stats(webhook_channel: Any, make_session: Any) -> None:
    """`python -m notifier.fakes.webhook_receiver` prints READY, counts each webhook-id in /_stats and, with
    --count-repeats, tallies a webhook-id answered 2xx before as a repeat."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "notifier.fakes.webhook_receiver", "--port", "0", "--count-repeats",
        cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().split()
        assert line[0] == "READY"
        channel, to = webhook_channel(), recipient(line[1] + "/hook", delivery_id="dlv_p")
        await channel.send(message(), [to])
        await channel.send(message(), [to])
        async with make_session().get(line[1] + "/_stats") as response:
            stats = await response.json()
        assert (stats["count"], stats["ids"]) == (2, {"dlv_p": 2})
        assert (stats["tally"]["accepted"], stats["tally"]["repeats"]) == (2, 1)
        assert stats["tally"]["first_at"] <= stats["tally"]["last_at"]
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.communicate()


async def test_receiver_process_weather_fails_requests(webhook_channel: Any, make_session: Any) -> None:
    """`--fail-rate 1` answers every request 503 (a transient failure to the channel) and accepts none."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "notifier.fakes.webhook_receiver", "--port", "0", "--fail-rate", "1",
        cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().split()
        [result] = await webhook_channel().send(message(), [recipient(line[1] + "/hook", delivery_id="dlv_w")])
        assert (result.outcome, result.error) == (Outcome.TRANSIENT, "HTTP 503")
        async with make_session().get(line[1] + "/_tally") as response:
            tally = await response.json()
        assert (tally["count"], tally["accepted"]) == (1, 0)
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.communicate()
