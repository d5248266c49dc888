"""The bundled fake SMTP server: a mail gateway for the demo, the tests and the benchmarks, on loopback.

It is aiosmtpd's real SMTP protocol served on the running event loop (no thread, so tests stay on one loop),
accepting every message and keeping it parsed. A recipient can be scripted to answer other codes at RCPT or at
DATA time — 451 twice then 250, 550 always, 421 (answer, then hang up), or DROP (hang up without answering) — so
every branch of the email channel's classification can be produced over real SMTP.

In-process (tests)::

    smtp = await start_smtp()                          # 127.0.0.1, a free port, plain SMTP
    smtp.script("a@example.org", [451, 451])           # then 250 again
    smtp.script("b@example.org", then=550)             # 550 for ever
    smtp.script("c@example.org", [554], at="data")     # refuse the message body once
    ... send to smtp.host:smtp.port ...
    smtp.messages                                      # [ReceivedMessage(envelope_from, envelope_to, message, …)]
    await smtp.stop()

`start_smtp(tls="starttls" | "tls", ssl_context=…)` serves STARTTLS (required before MAIL) or implicit TLS;
`credentials={"user": "secret"}` checks AUTH PLAIN/LOGIN (allowed over plain text only when tls="none").

As a process (demo, crash test, benchmark)::

    python -m notifier.fakes.smtp --port 2525 [--script "b@example.org=550*"] [--record mail.ndjson]

prints `READY 127.0.0.1:2525` once listening and serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import ssl
import sys
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TextIO, cast

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from notifier.fakes.process import serve_until_signalled

DROP = 0  # a scripted "code" that closes the connection without answering
Stage = Literal["rcpt", "data"]

_REPLIES = {
    250: "250 2.1.5 OK",
    421: "421 4.3.2 Service shutting down, closing channel",
    450: "450 4.2.1 Mailbox busy",
    451: "451 4.3.0 Local error in processing, try again later",
    452: "452 4.2.2 Mailbox full",
    550: "550 5.1.1 Mailbox unavailable",
    552: "552 5.2.2 Mailbox full",
    553: "553 5.1.3 Bad destination mailbox address syntax",
    554: "554 5.7.1 Message rejected",
}
_PARSER = BytesParser(policy=policy.default)


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One accepted message: its envelope, the parsed message, and how the session that sent it was secured."""

    envelope_from: str
    envelope_to: tuple[str, ...]
    message: EmailMessage
    raw: bytes
    authenticated_as: str | None
    tls: bool
    received_at: float

    @property
    def message_id(self) -> str | None:
        value = self.message["Message-ID"]
        return None if value is None else str(value)

    @property
    def subject(self) -> str | None:
        value = self.message["Subject"]
        return None if value is None else str(value)


@dataclass(slots=True)
class _Script:
    codes: deque[int]
    then: int


def _reply_line(code: int) -> str:
    return _REPLIES.get(code, f"{code} {code // 100}.0.0 Scripted reply")


class _Handler:
    """aiosmtpd hooks (called by name: handle_RCPT, handle_DATA) that apply the scripts and keep the mail."""

    def __init__(self, fake: FakeSmtp) -> None:
        self._fake = fake

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        code = self._fake.next_code(address, "rcpt")
        if code == 250:
            # A hook that answers takes over aiosmtpd's bookkeeping: record the accepted recipient ourselves.
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
        return self._fake.answer(server, code)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for address in envelope.rcpt_tos:
            code = self._fake.next_code(address, "data")
            if code != 250:
                return self._fake.answer(server, code)
        number = self._fake.keep(session, envelope)
        return f"250 2.0.0 OK: queued as FAKE{number:08d}"


class FakeSmtp:
    """What the server keeps and is scripted to answer; shared by every connection."""

    def __init__(self, *, keep_messages: bool = True, record: TextIO | None = None) -> None:
        self.messages: list[ReceivedMessage] = []
        self.count = 0
        self.connections = 0
        self._keep = keep_messages
        self._record = record
        self._scripts: dict[tuple[str, Stage], _Script] = {}

    def script(self, address: str, codes: Iterable[int] = (), *, then: int = 250, at: Stage = "rcpt") -> None:
        """Answer `address`'s next attempts at `at` with `codes`, in order; afterwards `then` (250: accept)."""
        self._scripts[(address.lower(), at)] = _Script(deque(codes), then)

    def reset(self) -> None:
        """Forget every message, count and script."""
        self.messages.clear()
        self.count = 0
        self.connections = 0
        self._scripts.clear()

    def next_code(self, address: str, stage: Stage) -> int:
        script = self._scripts.get((address.lower(), stage))
        if script is None:
            return 250
        return script.codes.popleft() if script.codes else script.then

    def answer(self, server: Any, code: int) -> str:
        transport = cast(asyncio.Transport | None, server.transport)
        if code == DROP and transport is not None:
            # abort(): no reply reaches the client; aiosmtpd's write of the answer below is discarded.
            transport.abort()
        elif code == 421 and transport is not None:
            # RFC 5321 §3.8: 421 closes the channel. call_soon lets aiosmtpd write the reply first.
            asyncio.get_running_loop().call_soon(transport.close)
        return _reply_line(421 if code == DROP else code)

    def keep(self, session: Any, envelope: Any) -> int:
        self.count += 1
        raw = bytes(envelope.original_content or b"")
        received = ReceivedMessage(
            envelope_from=str(envelope.mail_from),
            envelope_to=tuple(str(a) for a in envelope.rcpt_tos),
            message=_PARSER.parsebytes(raw),
            raw=raw,
            authenticated_as=str(session.auth_data) if session.authenticated else None,
            tls=session.ssl is not None,
            received_at=time.time(),
        )
        if self._keep:
            self.messages.append(received)
        if self._record is not None:
            line = {
                "envelope_from": received.envelope_from,
                "envelope_to": list(received.envelope_to),
                "message_id": received.message_id,
                "subject": received.subject,
                "received_at": received.received_at,
            }
            self._record.write(json.dumps(line, ensure_ascii=False) + "\n")
        return self.count

    def authenticate(self, credentials: Mapping[str, str]) -> Any:
        """An aiosmtpd authenticator accepting exactly `credentials` (user → password) over PLAIN and LOGIN."""

        def check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
            if not isinstance(auth_data, LoginPassword):
                return AuthResult(success=False, handled=False)
            user = auth_data.login.decode("utf-8", "replace")
            password = auth_data.password.decode("utf-8", "replace")
            if credentials.get(user) == password:
                return AuthResult(success=True, auth_data=user)
            return AuthResult(success=False, handled=False)

        return check


class RunningSmtp:
    """A fake SMTP server listening on a loopback port; stop it with `await stop()` (or use `async with`)."""

    def __init__(self, server: asyncio.Server, state: FakeSmtp, host: str, port: int,
                 protocols: list[Any], record: TextIO | None) -> None:
        self._server = server
        self.state = state
        self.host = host
        self.port = port
        self._protocols = protocols
        self._record = record

    @property
    def messages(self) -> list[ReceivedMessage]:
        return self.state.messages

    @property
    def connections(self) -> int:
        """How many SMTP connections were opened (the email channel opens one per batch)."""
        return self.state.connections

    def script(self, address: str, codes: Iterable[int] = (), *, then: int = 250, at: Stage = "rcpt") -> None:
        self.state.script(address, codes, then=then, at=at)

    def messages_to(self, address: str) -> list[ReceivedMessage]:
        wanted = address.lower()
        return [m for m in self.state.messages if wanted in (a.lower() for a in m.envelope_to)]

    async def stop(self) -> None:
        """Stop listening, close every open session and wait for their handlers to finish."""
        self._server.close()
        for protocol in self._protocols:
            # The plain transport under a STARTTLS session is aiosmtpd's to close; after a failed TLS handshake
            # nobody else will.
            for transport in (protocol.transport, protocol._original_transport):
                if transport is not None and not transport.is_closing():
                    transport.close()
        await self._server.wait_closed()
        await _finish(self._protocols)
        if self._record is not None:
            self._record.close()

    async def __aenter__(self) -> RunningSmtp:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def _finish(protocols: list[Any]) -> None:
    # aiosmtpd runs each session in a task (a private attribute, stable since 1.0) that it cancels when the
    # connection is lost. A failed STARTTLS handshake never reports the loss to aiosmtpd, so stop() cancels
    # what is left itself, then waits, which keeps "Task was destroyed but it is pending" out of the logs.
    tasks = [p._handler_coroutine for p in protocols if p._handler_coroutine is not None]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


def _prune(protocols: list[Any]) -> None:
    """Forget sessions that are over, so a long benchmark does not keep every connection ever made."""
    alive = []
    for protocol in protocols:
        task = protocol._handler_coroutine
        if task is not None and task.done():
            if not task.cancelled():
                task.exception()  # mark it retrieved
            continue
        alive.append(protocol)
    protocols[:] = alive


async def start_smtp(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    tls: Literal["none", "starttls", "tls"] = "none",
    ssl_context: ssl.SSLContext | None = None,
    credentials: Mapping[str, str] | None = None,
    keep_messages: bool = True,
    record: Path | None = None,
) -> RunningSmtp:
    """Start a fake SMTP server on `host:port` (0 = a free port) and return once it is listening."""
    # aiosmtpd logs every envelope address at INFO on "mail.log": keep addresses out of our logs.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    if tls != "none" and ssl_context is None:
        raise ValueError(f"tls={tls!r} needs an ssl_context with the server certificate loaded")
    record_file = record.open("a", encoding="utf-8", buffering=1) if record is not None else None
    state = FakeSmtp(keep_messages=keep_messages, record=record_file)
    handler = _Handler(state)
    loop = asyncio.get_running_loop()
    protocols: list[Any] = []
    users = dict(credentials or {})

    def new_session() -> Any:
        state.connections += 1
        _prune(protocols)
        protocol = SMTP(
            handler,
            hostname="notifier-fake-smtp",  # not socket.getfqdn(), which may wait on DNS for every connection
            enable_SMTPUTF8=True,
            tls_context=ssl_context if tls == "starttls" else None,
            require_starttls=tls == "starttls",
            auth_require_tls=tls != "none",
            authenticator=state.authenticate(users),
            loop=loop,
        )
        protocols.append(protocol)
        return protocol

    try:
        server = await loop.create_server(new_session, host, port,
                                          ssl=ssl_context if tls == "tls" else None, reuse_address=True)
    except BaseException:
        if record_file is not None:
            record_file.close()
        raise
    bound_host, bound_port = server.sockets[0].getsockname()[:2]
    return RunningSmtp(server, state, str(bound_host), int(bound_port), protocols, record_file)


def parse_script(spec: str) -> tuple[str, list[int], int, Stage]:
    """`ADDRESS=CODES[:data]`: "a@x.org=451,451" (then 250), "b@x.org=550*" (for ever), "c@x.org=554:data"."""
    address, sep, rest = spec.rpartition("=")
    if not sep or "@" not in address:
        raise ValueError(f"bad script {spec!r}: expected ADDRESS=CODES[:data]")
    codes_text, _, stage = rest.partition(":")
    if stage not in ("", "rcpt", "data"):
        raise ValueError(f"bad script {spec!r}: stage must be rcpt or data")
    forever = codes_text.endswith("*")
    codes = [int(c) for c in codes_text.rstrip("*").split(",") if c.strip()]
    then = codes.pop() if forever and codes else 250
    return address, codes, then, cast(Stage, stage or "rcpt")


async def _serve(host: str, port: int, scripts: Sequence[tuple[str, list[int], int, Stage]],
                 record: Path | None) -> None:
    smtp = await start_smtp(host, port, keep_messages=False, record=record)
    for address, codes, then, stage in scripts:
        smtp.script(address, codes, then=then, at=stage)
    shown = f"[{smtp.host}]" if ":" in smtp.host else smtp.host
    await serve_until_signalled(f"{shown}:{smtp.port}", smtp.stop)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m notifier.fakes.smtp",
        description="A fake SMTP server on loopback, for the demo, tests and benchmarks (accepts every message).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (see the READY line)")
    parser.add_argument("--script", action="append", default=[], metavar="ADDRESS=CODES[:data]",
                        help='e.g. "a@x.org=451,451" (then 250) or "b@x.org=550*" (for ever); repeatable')
    parser.add_argument("--record", type=Path, help="append every accepted message's envelope to this NDJSON file")
    args = parser.parse_args(argv)
    try:
        scripts = [parse_script(s) for s in args.script]  # fail before listening, not after READY
    except ValueError as exc:
        parser.error(str(exc))
    asyncio.run(_serve(args.host, args.port, scripts, args.record))
    return 0


__all__ = ["DROP", "FakeSmtp", "ReceivedMessage", "RunningSmtp", "main", "parse_script", "start_smtp"]

if __name__ == "__main__":
    sys.exit(main())
