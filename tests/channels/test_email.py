"""The email channel against the bundled fake SMTP server (real aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from channels.base import Channel, ChannelContext, Message, Outcome, Recipient
from channels.email import EmailChannel, EmailConfig, create
from channels.errors import PermanentDeliveryError
from channels.registry import factory_for
from notifier.fakes.smtp import DROP, RunningSmtp, start_smtp

SENDER = "长治市政务公开 <notify@changzhi.gov.cn>"
EmailFactory = Callable[..., EmailChannel]


def make_message(**overrides: Any) -> Message:
    fields: dict[str, Any] = {
        "alert_id": "alert-1",
        "topic": "env.heavy-pollution",
        "msg_type": "alert",
        "severity": "severe",
        "urgency": "immediate",
        "level": "orange",
        "locale": "zh-CN",
        "headline": "重污染天气橙色预警",
        "subject": "【长治市】重污染天气橙色预警",
        "text": "长治市将于明日出现重污染天气，请减少户外活动。",
        "html": "<p>长治市将于明日出现<strong>重污染天气</strong>，请减少户外活动。</p>",
    }
    fields.update(overrides)
    return Message(**fields)


def recipient(n: int, **overrides: Any) -> Recipient:
    fields: dict[str, Any] = {
        "delivery_id": f"dlv-{n}",
        "subscriber_id": f"sub-{n}",
        "address": f"citizen{n}@example.org",
    }
    fields.update(overrides)
    return Recipient(**fields)


def part(mail: EmailMessage, subtype: str) -> str:
    body = mail.get_body(preferencelist=(subtype,))
    assert body is not None and body.get_content_subtype() == subtype
    content = body.get_content()
    assert isinstance(content, str)
    return content


@pytest.fixture
async def smtp() -> AsyncIterator[RunningSmtp]:
    running = await start_smtp()
    yield running
    await running.stop()


@pytest.fixture
async def email_channel() -> AsyncIterator[EmailFactory]:
    """Yields `create(server=None, **config)`: an email channel for a fake server (plain SMTP by default)."""
    async with aiohttp.ClientSession() as http:
        context = ChannelContext(http=http, public_url="https://notify.changzhi.gov.cn")
        made: list[EmailChannel] = []

        def create_channel(server: RunningSmtp | None = None, **config: Any) -> EmailChannel:
            base: dict[str, Any] = {"tls": "none", "sender": SENDER, "timeout": 5, "local_hostname": "test.local"}
            if server is not None:
                base |= {"host": server.host, "port": server.port}
            channel = create(base | config, context)
            made.append(channel)
            return channel

        yield create_channel
        for channel in made:
            await channel.aclose()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command (skips when it is missing)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl command not available")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- what a citizen receives ---------------------------------------------------------------------------------


async def test_email_arrives_as_text_and_html_with_the_chinese_subject(smtp: RunningSmtp,
                                                                      email_channel: EmailFactory) -> None:
    """A citizen gets one multipart/alternative email, text and HTML, whose Chinese subject reads correctly."""
    message = make_message()
    [result] = await email_channel(smtp).send(message, [recipient(1)])

    assert result.outcome is Outcome.DELIVERED
    [received] = smtp.messages
    mail = received.message
    assert mail.get_content_type() == "multipart/alternative"
    assert received.subject == "【长治市】重污染天气橙色预警"
    assert b"=?utf-8?" in received.raw.split(b"\r\n\r\n")[0].lower()  # encoded-word, not raw 8-bit header
    assert part(mail, "plain").strip() == message.text
    assert part(mail, "html").strip() == message.html
    assert received.envelope_to == ("citizen1@example.org",)


async def test_sender_shows_the_bureau_display_name(smtp: RunningSmtp, email_channel: EmailFactory) -> None:
    """The From line shows the configured Chinese display name and the envelope uses its address."""
    await email_channel(smtp).send(make_message(), [recipient(1)])

    [received] = smtp.messages
    assert received.message["From"].addresses[0].display_name == "长治市政务公开"
    assert received.envelope_from == "notify@changzhi.gov.cn"


async def test_headline_is_the_subject_when_no_subject_is_rendered(smtp: RunningSmtp,
                                                                   email_channel: EmailFactory) -> None:
    """An email rendered without a subject carries the alert's headline as its subject."""
    await email_channel(smtp).send(make_message(subject=None), [recipient(1)])

    assert smtp.messages[0].subject == "重污染天气橙色预警"


async def test_message_id_is_the_delivery_id_and_stays_the_same_on_a_resend(smtp: RunningSmtp,
                                                                            email_channel: EmailFactory) -> None:
    """A delivery's email always carries Message-ID <delivery_id@sender domain>, so a resend is recognisable."""
    channel = email_channel(smtp)
    [first] = await channel.send(make_message(), [recipient(7)])
    await channel.send(make_message(), [recipient(7)])

    ids = [m.message_id for m in smtp.messages]
    assert ids == ["<dlv-7@changzhi.gov.cn>", "<dlv-7@changzhi.gov.cn>"]
    assert first.provider_message_id == "<dlv-7@changzhi.gov.cn>"


async def test_text_with_markup_and_template_syntax_shows_literally_in_html(smtp: RunningSmtp,
                                                                            email_channel: EmailFactory) -> None:
    """Text holding <script> and {{ 7*7 }} appears escaped in the HTML part, never run or evaluated."""
    text = "注意 <script>alert(1)</script> {{ 7*7 }} & more"
    await email_channel(smtp).send(make_message(text=text, html=None), [recipient(1)])

    html_part = part(smtp.messages[0].message, "html")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_part
    assert "<script>" not in html_part
    assert "{{ 7*7 }}" in html_part and "49" not in html_part
    assert "&amp; more" in html_part


async def test_one_click_unsubscribe_points_at_the_recipients_link(smtp: RunningSmtp,
                                                                  email_channel: EmailFactory) -> None:
    """A recipient with an unsubscribe link gets List-Unsubscribe and the one-click POST header (RFC 8058)."""
    url = "https://notify.changzhi.gov.cn/unsubscribe/tok123"
    await email_channel(smtp).send(make_message(), [recipient(1, unsubscribe_url=url)])

    mail = smtp.messages[0].message
    assert mail["List-Unsubscribe"] == f"<{url}>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_no_unsubscribe_headers_without_a_link(smtp: RunningSmtp, email_channel: EmailFactory) -> None:
    """A recipient without an unsubscribe link gets no List-Unsubscribe headers."""
    await email_channel(smtp).send(make_message(), [recipient(1)])

    mail = smtp.messages[0].message
    assert mail["List-Unsubscribe"] is None and mail["List-Unsubscribe-Post"] is None


async def test_messages_are_marked_auto_submitted(smtp: RunningSmtp, email_channel: EmailFactory) -> None:
    """Every email says Auto-Submitted: auto-generated, so vacation autoresponders do not answer it."""
    await email_channel(smtp).send(make_message(), [recipient(1)])

    assert smtp.messages[0].message["Auto-Submitted"] == "auto-generated"


# --- outcomes --------------------------------------------------------------------------------------------------


async def test_a_batch_travels_over_one_smtp_connection(smtp: RunningSmtp, email_channel: EmailFactory) -> None:
    """Three recipients in one send() get three separate emails over a single SMTP connection."""
    results = await email_channel(smtp).send(make_message(), [recipient(n) for n in range(3)])

    assert [r.outcome for r in results] == [Outcome.DELIVERED] * 3
    assert smtp.connections == 1
    assert [m.envelope_to for m in smtp.messages] == [(f"citizen{n}@example.org",) for n in range(3)]


async def test_an_empty_batch_opens_no_connection(smtp: RunningSmtp, email_channel: EmailFactory) -> None:
    """Sending to nobody returns no results and does not contact the server."""
    assert await email_channel(smtp).send(make_message(), []) == []
    assert smtp.connections == 0


async def test_451_for_one_recipient_is_transient_while_the_others_are_delivered(
        smtp: RunningSmtp, email_channel: EmailFactory) -> None:
    """A recipient deferred with 451 is transient; the rest of the same batch is delivered."""
    smtp.script("citizen1@example.org", [451])
    results = await email_channel(smtp).send(make_message(), [recipient(n) for n in range(3)])

    outcomes = {r.delivery_id: r.outcome for r in results}
    assert outcomes == {"dlv-0": Outcome.DELIVERED, "dlv-1": Outcome.TRANSIENT, "dlv-2": Outcome.DELIVERED}
    assert {m.envelope_to[0] for m in smtp.messages} == {"citizen0@example.org", "citizen2@example.org"}


async def test_550_is_permanent_with_an_error_that_names_no_address(smtp: RunningSmtp,
                                                                   email_channel: EmailFactory) -> None:
    """An unknown mailbox (550 5.1.1) is a permanent failure reported as "SMTP 550 5.1.1", without the address."""
    smtp.script("citizen1@example.org", then=550)
    [result] = await email_channel(smtp).send(make_message(), [recipient(1)])

    assert result.outcome is Outcome.PERMANENT
    assert result.error == "SMTP 550 5.1.1"
    assert result.provider_message_id is None


async def test_a_refused_message_body_is_permanent(smtp: RunningSmtp, email_channel: EmailFactory) -> None:
    """A server that refuses the message at DATA with 554 makes that delivery fail permanently."""
    smtp.script("citizen1@example.org", [554], at="data")
    [result] = await email_channel(smtp).send(make_message(), [recipient(1)])

    assert (result.outcome, result.error) == (Outcome.PERMANENT, "SMTP 554 5.7.1")
    assert smtp.messages == []


async def test_a_transient_refusal_succeeds_on_the_next_send(smtp: RunningSmtp,
                                                             email_channel: EmailFactory) -> None:
    """A recipient answered 451 once is transient on the first send and delivered on the retry."""
    smtp.script("citizen1@example.org", [451])
    channel = email_channel(smtp)
    [first] = await channel.send(make_message(), [recipient(1)])
    [second] = await channel.send(make_message(), [recipient(1)])

    assert (first.outcome, first.error) == (Outcome.TRANSIENT, "SMTP 451 4.3.0")
    assert second.outcome is Outcome.DELIVERED
    assert len(smtp.messages) == 1


async def test_a_server_that_is_down_leaves_every_recipient_transient(email_channel: EmailFactory) -> None:
    """When nothing listens on the SMTP port, every recipient of the batch is transient."""
    channel = email_channel(host="127.0.0.1", port=closed_port())
    results = await channel.send(make_message(), [recipient(n) for n in range(3)])

    assert [(r.outcome, r.error) for r in results] == [(Outcome.TRANSIENT, "SMTP connection failed")] * 3


async def test_a_server_that_never_answers_times_out_as_transient(email_channel: EmailFactory) -> None:
    """A server that accepts the connection but never greets makes the batch transient after the timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # connections wait in the backlog: TCP is up, no SMTP greeting ever comes
        channel = email_channel(host="127.0.0.1", port=listener.getsockname()[1], timeout=0.3)
        results = await channel.send(make_message(), [recipient(1), recipient(2)])

    assert [(r.outcome, r.error) for r in results] == [(Outcome.TRANSIENT, "SMTP timeout")] * 2


async def test_a_dropped_connection_leaves_the_rest_of_the_batch_transient(smtp: RunningSmtp,
                                                                         email_channel: EmailFactory) -> None:
    """If the server hangs up mid-batch, that recipient and those not yet attempted are transient."""
    smtp.script("citizen1@example.org", [DROP])
    results = await email_channel(smtp).send(make_message(), [recipient(n) for n in range(4)])

    assert [r.outcome for r in results] == [Outcome.DELIVERED] + [Outcome.TRANSIENT] * 3
    assert [r.delivery_id for r in results] == ["dlv-0", "dlv-1", "dlv-2", "dlv-3"]
    assert len(smtp.messages) == 1


async def test_421_mid_batch_makes_the_remaining_recipients_transient(smtp: RunningSmtp,
                                                                      email_channel: EmailFactory) -> None:
    """A 421 (service closing) stops the batch: that recipient and the rest are transient, none lost."""
    smtp.script("citizen1@example.org", [421])
    results = await email_channel(smtp).send(make_message(), [recipient(n) for n in range(3)])

    assert [(r.outcome, r.error) for r in results] == [
        (Outcome.DELIVERED, None),
        (Outcome.TRANSIENT, "SMTP 421 4.3.2"),
        (Outcome.TRANSIENT, "SMTP connection lost before send"),
    ]


# --- security: authentication and TLS --------------------------------------------------------------------------


async def test_the_configured_account_logs_in(email_channel: EmailFactory) -> None:
    """With a username and password configured, the channel authenticates before sending."""
    async with await start_smtp(credentials={"notify": "s3cret"}) as smtp:
        channel = email_channel(smtp, username="notify", password="s3cret")
        [result] = await channel.send(make_message(), [recipient(1)])

        assert result.outcome is Outcome.DELIVERED
        assert smtp.messages[0].authenticated_as == "notify"


async def test_a_wrong_password_fails_the_whole_batch_permanently(email_channel: EmailFactory) -> None:
    """Rejected credentials (535) raise PermanentDeliveryError for the batch and send nothing."""
    async with await start_smtp(credentials={"notify": "s3cret"}) as smtp:
        channel = email_channel(smtp, username="notify", password="wrong")
        with pytest.raises(PermanentDeliveryError) as caught:
            await channel.send(make_message(), [recipient(1), recipient(2)])

        assert caught.value.code == "535"
        assert "wrong" not in str(caught.value)
        assert smtp.messages == []


async def test_starttls_delivers_over_an_encrypted_session(email_channel: EmailFactory,
                                                           certificate: tuple[Path, Path]) -> None:
    """With tls="starttls" the channel upgrades the session, checks the certificate, then sends."""
    async with await start_smtp(tls="starttls", ssl_context=server_context(certificate)) as smtp:
        channel = email_channel(smtp, tls="starttls", ca_file=str(certificate[0]))
        [result] = await channel.send(make_message(), [recipient(1)])

        assert result.outcome is Outcome.DELIVERED
        assert smtp.messages[0].tls


async def test_implicit_tls_delivers(email_channel: EmailFactory, certificate: tuple[Path, Path]) -> None:
    """With tls="tls" the channel speaks SMTP inside TLS from the first byte (port 465 style)."""
    async with await start_smtp(tls="tls", ssl_context=server_context(certificate)) as smtp:
        channel = email_channel(smtp, tls="tls", ca_file=str(certificate[0]))
        [result] = await channel.send(make_message(), [recipient(1)])

        assert result.outcome is Outcome.DELIVERED
        assert len(smtp.messages) == 1


async def test_an_untrusted_certificate_gets_no_mail(email_channel: EmailFactory,
                                                     certificate: tuple[Path, Path]) -> None:
    """A server whose certificate is not trusted receives nothing; the batch stays transient."""
    async with await start_smtp(tls="starttls", ssl_context=server_context(certificate)) as smtp:
        [result] = await email_channel(smtp, tls="starttls").send(make_message(), [recipient(1)])

        assert (result.outcome, result.error) == (Outcome.TRANSIENT, "SMTP TLS handshake failed")
        assert smtp.messages == []


async def test_starttls_required_but_not_offered_fails_permanently(smtp: RunningSmtp,
                                                                   email_channel: EmailFactory) -> None:
    """A server that does not offer STARTTLS when the configuration requires it gets nothing in plain text."""
    with pytest.raises(PermanentDeliveryError):
        await email_channel(smtp, tls="starttls").send(make_message(), [recipient(1)])

    assert smtp.messages == []


# --- configuration and wiring -------------------------------------------------------------------------------


def test_port_defaults_follow_the_tls_mode() -> None:
    """Without a port, "none" uses 25, "starttls" 587 and "tls" 465."""
    ports = {mode: EmailConfig(sender=SENDER, tls=mode).resolved_port for mode in ("none", "starttls", "tls")}
    assert ports == {"none": 25, "starttls": 587, "tls": 465}


def test_unknown_configuration_keys_are_rejected() -> None:
    """A misspelt key in [channels.email] is an error, not silently ignored."""
    with pytest.raises(ValidationError):
        EmailConfig.model_validate({"sender": SENDER, "hostname": "smtp.example.org"})


def test_a_sender_without_an_address_is_rejected() -> None:
    """A sender that is only a display name is refused at configuration time."""
    with pytest.raises(ValidationError):
        EmailConfig(sender="长治市政务公开")


def test_a_numeric_password_from_the_environment_is_kept_as_text() -> None:
    """A password that looks like a number (parsed from an environment variable) is accepted and kept secret."""
    config = EmailConfig.model_validate({"sender": SENDER, "password": 123456})
    assert config.password is not None and config.password.get_secret_value() == "123456"
    assert "123456" not in repr(config)


async def test_the_registry_builds_an_email_channel(smtp: RunningSmtp) -> None:
    """The "email" kind of the registry builds a channel that matches the Channel protocol."""
    async with aiohttp.ClientSession() as http:
        context = ChannelContext(http=http, public_url="https://notify.changzhi.gov.cn")
        channel = factory_for("email")({"sender": SENDER, "max_batch": 20}, context)

    assert isinstance(channel, Channel)
    assert (channel.kind, channel.max_batch, channel.confirms_by_receipt) == ("email", 20, False)


async def test_the_fake_server_runs_as_a_process(email_channel: EmailFactory) -> None:
    """`python -m notifier.fakes.smtp --port 0` prints READY host:port and answers as scripted."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "notifier.fakes.smtp", "--port", "0", "--script", "citizen2@example.org=550*",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=30)).decode().strip()
        assert line.startswith("READY ")
        host, _, port = line.removeprefix("READY ").rpartition(":")
        channel = email_channel(host=host, port=int(port))
        results = await channel.send(make_message(), [recipient(1), recipient(2)])

        assert [r.outcome for r in results] == [Outcome.DELIVERED, Outcome.PERMANENT]
    finally:
        process.send_signal(signal.SIGTERM)
        await process.communicate()
    assert process.returncode == 0
