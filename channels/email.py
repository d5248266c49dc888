"""The email channel: one SMTP connection per batch, one multipart (text + HTML) message per recipient.

Setup
-----
1. Get an SMTP submission account from the mail service (the city's own MTA, or a hosted one) that may send as
   the `sender` address, and publish SPF/DKIM/DMARC for the sender's domain so that the mail is not filed as spam.
2. Configure `[channels.email]`::

       host = "smtp.changzhi.gov.cn"
       tls = "starttls"            # "none" | "starttls" (port 587) | "tls" (implicit TLS, port 465)
       username = "notify@changzhi.gov.cn"
       password = "…"              # or NOTIFIER_CHANNELS__EMAIL__PASSWORD
       sender = "长治市政务公开 <notify@changzhi.gov.cn>"

3. `notifier demo` uses the bundled fake server (`python -m notifier.fakes.smtp`) instead.

References
----------
- SMTP and its reply codes: RFC 5321 §4.2 https://www.rfc-editor.org/rfc/rfc5321#section-4.2
- Enhanced status codes (the "5.1.1" in "550 5.1.1"): RFC 3463 https://www.rfc-editor.org/rfc/rfc3463
- One-click unsubscribe: RFC 8058 https://www.rfc-editor.org/rfc/rfc8058
- Auto-Submitted: RFC 3834 https://www.rfc-editor.org/rfc/rfc3834
- Client library: aiosmtplib https://aiosmtplib.readthedocs.io/en/stable/

How answers become outcomes (all in `classify`)
-----------------------------------------------
SMTP has no delivery receipt, so 250 for a recipient counts as delivered. A refusal of one recipient (at MAIL,
RCPT or DATA) is 4xx → transient, 5xx → permanent. A failure of the connection (refused, dropped, timed out, 421)
makes the current recipient and every one not yet attempted transient. Bad credentials (5xx to AUTH) or a server
lacking what the configuration requires (STARTTLS, AUTH) raise `PermanentDeliveryError` for the whole batch.
Error texts carry only reply codes ("SMTP 550 5.1.1"): servers echo the address in their reply text.
"""

from __future__ import annotations

import html
import logging
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any, Literal

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from channels.base import ChannelContext, DeliveryResult, Message, Outcome, Recipient
from channels.errors import PermanentDeliveryError
from channels.links import fill_links

logger = logging.getLogger(__name__)

_DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}
_ENHANCED_CODE = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})\b")
_LOCALE = re.compile(r"^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$")
_MESSAGE_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_QUIT_TIMEOUT = 5.0

# What a send can raise that is the server's or the network's doing; anything else is a bug and propagates.
# OSError covers refused/dropped connections, TLS failures and timeouts; ValueError covers addresses that cannot
# be put on the wire.
_SMTP_ERRORS: tuple[type[Exception], ...] = (aiosmtplib.SMTPException, OSError, ValueError)


class EmailConfig(BaseModel):
    """`[channels.email]`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "localhost"
    port: int | None = Field(default=None, ge=1, le=65535)  # None: 25, 587 (starttls) or 465 (tls)
    tls: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str  # "Display Name <address>" or a bare address
    sender_domain: str | None = None  # right-hand side of Message-IDs; default: the sender's domain
    local_hostname: str | None = None  # name given in EHLO; default: this host's FQDN
    timeout: float = Field(default=30.0, gt=0)  # seconds, per connect and per SMTP command
    validate_certs: bool = True
    ca_file: Path | None = None  # extra CA bundle, for a city MTA with an internal CA
    rate_per_second: float | None = Field(default=None, gt=0)
    max_batch: int = Field(default=50, ge=1, le=1000)

    @field_validator("username", "password", mode="before")
    @classmethod
    def _numbers_are_text(cls, value: Any) -> Any:
        # Environment overrides are parsed like TOML values, so a numeric password arrives as an int.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("sender")
    @classmethod
    def _sender_has_address(cls, value: str) -> str:
        _name, address = parseaddr(value)
        local, _, domain = address.rpartition("@")
        if not local or "." not in domain:
            raise ValueError('sender must be "Name <user@domain>" or "user@domain"')
        return value

    @property
    def resolved_port(self) -> int:
        return self.port if self.port is not None else _DEFAULT_PORTS[self.tls]

    @property
    def sender_address(self) -> Address:
        name, address = parseaddr(self.sender)
        return Address(display_name=name, addr_spec=address)

    @property
    def message_id_domain(self) -> str:
        return self.sender_domain or self.sender_address.domain


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one SMTP answer (or failure) means: the outcome and how far it reaches."""

    outcome: Outcome
    error: str | None = None
    # recipient: this recipient only; connection: the connection is gone, so are the recipients after this one;
    # account: the configuration or credentials are wrong, the whole batch fails (PermanentDeliveryError).
    scope: Literal["recipient", "connection", "account"] = "recipient"
    code: str | None = None


def _reply(code: int, text: str) -> str:
    """The reply code and enhanced status code ("SMTP 550 5.1.1"), never the reply text: it echoes addresses."""
    match = _ENHANCED_CODE.match(text.strip())
    return f"SMTP {code} {match.group(1)}" if match else f"SMTP {code}"


def classify(exc: BaseException | None, *, phase: Literal["connect", "send"] = "send") -> Verdict:
    """The one place SMTP answers become outcomes. `exc` None means the server accepted the message (250)."""
    if exc is None:
        return Verdict(Outcome.DELIVERED)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        # One recipient per transaction, so "all refused" is this recipient's RCPT answer.
        exc = exc.recipients[0]
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        if exc.code >= 500:
            return Verdict(Outcome.PERMANENT, f"{_reply(exc.code, exc.message)} authentication failed",
                           "account", str(exc.code))
        return Verdict(Outcome.TRANSIENT, _reply(exc.code, exc.message), "connection", str(exc.code))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        text, code = _reply(exc.code, exc.message), str(exc.code)
        # 421 closes the session (RFC 5321 §3.8); before the first message every answer concerns the server.
        if exc.code == 421 or phase == "connect":
            return Verdict(Outcome.TRANSIENT, text, "connection", code)
        if 500 <= exc.code < 600:
            return Verdict(Outcome.PERMANENT, text, code=code)
        return Verdict(Outcome.TRANSIENT, text, code=code)
    if isinstance(exc, TimeoutError):
        return Verdict(Outcome.TRANSIENT, "SMTP timeout", "connection")
    if isinstance(exc, ssl.SSLError) or isinstance(exc.__cause__, ssl.SSLError):
        # Usually an untrusted or expired certificate: worth retrying (an operator can fix it), but said plainly.
        return Verdict(Outcome.TRANSIENT, "SMTP TLS handshake failed", "connection")
    if isinstance(exc, OSError):
        return Verdict(Outcome.TRANSIENT, "SMTP connection failed", "connection")
    if isinstance(exc, aiosmtplib.SMTPNotSupported) and phase == "send":
        # Raised for a non-ASCII address on a server without SMTPUTF8: this address can never go through.
        return Verdict(Outcome.PERMANENT, "SMTP server lacks SMTPUTF8 for this address")
    if isinstance(exc, aiosmtplib.SMTPException):
        if phase == "connect":
            # The server lacks an extension the configuration requires (STARTTLS, AUTH): retrying cannot help.
            return Verdict(Outcome.PERMANENT, "SMTP server lacks a required extension (STARTTLS or AUTH)",
                           "account")
        return Verdict(Outcome.PERMANENT, "SMTP error")
    if isinstance(exc, ValueError):
        return Verdict(Outcome.PERMANENT, "invalid email address")
    raise TypeError(f"not an SMTP failure: {type(exc).__name__}") from exc


def message_id(delivery_id: str, domain: str) -> str:
    """`<delivery_id@domain>`: the same on every attempt of a delivery, so a resend after a crash is recognisable."""
    local = _MESSAGE_ID_UNSAFE.sub("_", delivery_id).strip(".") or "delivery"
    return f"<{local}@{domain}>"


def _one_line(value: str) -> str:
    # Header values must not carry line breaks (header injection); fold any whitespace run into one space.
    return " ".join(value.split())


def html_from_text(text: str, locale: str) -> str:
    """An HTML alternative for a message rendered without one: the text, escaped, line breaks kept."""
    lang = locale if _LOCALE.match(locale) else "zh-CN"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{lang}">\n<head><meta charset="utf-8"></head>\n'
        f'<body><div style="white-space: pre-wrap">{html.escape(text)}</div></body>\n</html>\n'
    )


def compose(message: Message, recipient: Recipient, config: EmailConfig) -> EmailMessage:
    """The email one recipient gets: multipart/alternative text + HTML, UTF-8, with list and automation headers."""
    mail = EmailMessage()
    mail["Subject"] = _one_line(message.subject or message.headline)
    mail["From"] = config.sender_address
    mail["To"] = recipient.address
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = message_id(recipient.delivery_id, config.message_id_domain)
    # Tells autoresponders and vacation replies not to answer (RFC 3834).
    mail["Auto-Submitted"] = "auto-generated"
    if _LOCALE.match(message.locale):
        mail["Content-Language"] = message.locale
    unsubscribe = _one_line(recipient.unsubscribe_url or "")
    if unsubscribe and not any(c in unsubscribe for c in "<> "):
        mail["List-Unsubscribe"] = f"<{unsubscribe}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # The message is rendered once for the batch; the recipient's own manage/unsubscribe links go in here.
    text = fill_links(message.text, recipient)
    # base64 keeps Chinese compact and survives servers without 8BITMIME; plain ASCII stays readable.
    cte = "quoted-printable" if text.isascii() else "base64"
    mail.set_content(text, subtype="plain", charset="utf-8", cte=cte)
    body_html = (fill_links(message.html, recipient, markup=True) if message.html is not None
                 else html_from_text(text, message.locale))
    mail.add_alternative(body_html, subtype="html", charset="utf-8",
                         cte="quoted-printable" if body_html.isascii() else "base64")
    return mail


class EmailChannel:
    """Sends over SMTP; acceptance (250) is delivery, since SMTP has no receipt."""

    kind: str = "email"
    max_chars: int | None = None
    confirms_by_receipt: bool = False

    def __init__(self, config: EmailConfig) -> None:
        self.config = config
        self.max_batch: int = config.max_batch
        self.rate_per_second: float | None = config.rate_per_second

    def __repr__(self) -> str:
        return f"EmailChannel(host={self.config.host!r}, port={self.config.resolved_port}, tls={self.config.tls!r})"

    async def send(self, message: Message, recipients: list[Recipient]) -> list[DeliveryResult]:
        """One connection for the batch, one message per recipient; one result per recipient."""
        if not recipients:
            return []
        client = self._client()
        try:
            return await self._deliver(client, message, recipients)
        finally:
            await _close(client)

    async def aclose(self) -> None:
        """Nothing is held between batches: every send() opens and closes its own connection."""

    def _client(self) -> aiosmtplib.SMTP:
        cfg = self.config
        return aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.resolved_port,
            use_tls=cfg.tls == "tls",
            start_tls=cfg.tls == "starttls",  # True: fail rather than fall back to plain text
            validate_certs=cfg.validate_certs,
            cert_bundle=str(cfg.ca_file) if cfg.ca_file else None,
            local_hostname=cfg.local_hostname,
            timeout=cfg.timeout,
        )

    async def _deliver(self, client: aiosmtplib.SMTP, message: Message,
                       recipients: Sequence[Recipient]) -> list[DeliveryResult]:
        try:
            await client.connect()
            if self.config.username:
                password = self.config.password.get_secret_value() if self.config.password else ""
                await client.login(self.config.username, password)
        except _SMTP_ERRORS as exc:
            verdict = classify(exc, phase="connect")
            if verdict.scope == "account":
                raise PermanentDeliveryError(verdict.error or "SMTP refused", code=verdict.code) from exc
            logger.warning("email batch of %d not sent: %s", len(recipients), verdict.error)
            return [self._result(r, verdict) for r in recipients]

        results: list[DeliveryResult] = []
        for index, recipient in enumerate(recipients):
            verdict = await self._send_one(client, message, recipient)
            results.append(self._result(recipient, verdict))
            if verdict.scope == "connection":
                rest = recipients[index + 1:]
                logger.warning("email connection lost (%s); %d recipients left for retry", verdict.error, len(rest))
                lost = Verdict(Outcome.TRANSIENT, "SMTP connection lost before send", "connection")
                results.extend(self._result(r, lost) for r in rest)
                break
        return results

    async def _send_one(self, client: aiosmtplib.SMTP, message: Message, recipient: Recipient) -> Verdict:
        try:
            mail = compose(message, recipient, self.config)
            await client.send_message(mail, sender=self.config.sender_address.addr_spec,
                                      recipients=[recipient.address])
        except _SMTP_ERRORS as exc:
            return classify(exc)
        return classify(None)

    def _result(self, recipient: Recipient, verdict: Verdict) -> DeliveryResult:
        # The Message-ID is the only identifier a bounce or a complaint will quote back to us.
        accepted = verdict.outcome is Outcome.DELIVERED
        return DeliveryResult(
            delivery_id=recipient.delivery_id,
            outcome=verdict.outcome,
            provider_message_id=message_id(recipient.delivery_id, self.config.message_id_domain) if accepted else None,
            error=verdict.error,
        )


async def _close(client: aiosmtplib.SMTP) -> None:
    """Say QUIT when the connection is still up (polite, lets the server flush), and always close the socket."""
    try:
        if client.is_connected:
            await client.quit(timeout=min(_QUIT_TIMEOUT, client.timeout or _QUIT_TIMEOUT))
    except _SMTP_ERRORS:
        pass  # the connection is being dropped either way
    finally:
        client.close()


def create(config: Mapping[str, Any], context: ChannelContext) -> EmailChannel:
    """The registry's factory: validate `[channels.email]`; SMTP needs nothing from the shared context."""
    del context
    return EmailChannel(EmailConfig.model_validate(dict(config)))
