"""Suite-wide log privacy scanner: a pytest plugin that fails the run when any log record carries a contact.

Registered from tests/conftest.py with `pytest_plugins = ["tests.log_scanner"]`.

At session start a handler is put on the root logger at DEBUG (and the root logger set to DEBUG), so every record
of every test, fixture and library that reaches the root — message, exception text, stack and `extra=` fields —
is scanned for mainland mobile numbers, email addresses and WeChat openids. At session end any finding is printed
(masked) with the test, logger and source line it came from, and the exit status is set to 1.

Nothing is exempt. A test that logs a contact on purpose (to prove the scrubbing works) must route it through
`subscriptions.masking.ScrubbingFilter` on the logger it logs to: the record is then already masked when it
reaches the root. Records on loggers that do not propagate are scanned too. If a test removes the handler (e.g.
`notifier.logs.setup_logging()` replaces the root's handlers), it is put back before the next test phase and the
gap is named in the report.

The patterns are this module's own, not `subscriptions.masking`'s, so that a bug in the scrubber cannot blind the
check of the scrubber.
"""

from __future__ import annotations

import logging
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from subscriptions.masking import mask_email, mask_mobile, mask_openid

# 32-hex ids (uuid4().hex) and dashed UUIDs may hold 11-digit runs; they are blanked before scanning.
IDS = re.compile(r"(?<![0-9A-Za-z])(?:[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}|[0-9A-Fa-f]{32,})"
                 r"(?![0-9A-Za-z])")
PATTERNS: dict[str, re.Pattern[str]] = {
    # 1[3-9] and 9 more digits, not inside a longer digit run; optionally +86/0086/86 before it, and optionally
    # written 3-4-4 with the same space or dash twice (`138-1234-5678`, `+86 138 1234 5678`).
    "mobile": re.compile(r"(?<!\d)(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:\d{8}|(?P<sep>[ -])\d{4}(?P=sep)\d{4})(?!\d)"),
    # `%40` is a URL-encoded `@`; domains may be internationalised.
    "email": re.compile(r"[\w.%+-]+(?:@|%40)(?:[\w-]+\.)+(?:xn--[\w-]+|[^\W\d_]{2,})"),
    "openid": re.compile(r"(?<![A-Za-z0-9_-])o[A-Za-z0-9_-]{27}(?![A-Za-z0-9_-])"),
}
_MASKERS: dict[str, Callable[[str], str]] = {
    "mobile": mask_mobile,
    "email": lambda value: mask_email(value.replace("%40", "@")),
    "openid": mask_openid,
}
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def find_contacts(text: str) -> list[tuple[str, str]]:
    """(kind, raw value) of every contact in `text`, ids aside."""
    text = IDS.sub(" ", text)
    return [(kind, match.group(0)) for kind, pattern in PATTERNS.items() for match in pattern.finditer(text)]


def record_text(record: logging.LogRecord) -> str:
    """What any handler could write of a record: the message, exception and stack text, and `extra=` fields."""
    try:
        parts = [record.getMessage()]
    except Exception:  # a bad format string: a handler would print msg and args raw
        parts = [str(record.msg), repr(record.args)]
    if record.exc_text:  # what formatters print; ScrubbingFilter leaves its scrubbed traceback here
        parts.append(record.exc_text)
    elif record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        parts.append(record.stack_info)
    parts += [str(value) for key, value in vars(record).items() if key not in _STANDARD_ATTRIBUTES]
    return "\n".join(parts)


@dataclass(frozen=True)
class Finding:
    kind: str
    masked: str
    where: str  # test id (or session phase)
    logger: str
    source: str  # path:line of the logging call


class _ScanningHandler(logging.Handler):
    def __init__(self, scanner: LogScanner) -> None:
        super().__init__(logging.NOTSET)  # whatever reaches it: the root is set to DEBUG, a logger may go lower
        self._scanner = scanner

    def emit(self, record: logging.LogRecord) -> None:
        self._scanner.scan(record)


class LogScanner:
    """The plugin object: attaches the handler, tracks which test is running, collects and reports findings."""

    def __init__(self) -> None:
        self.handler = _ScanningHandler(self)
        self.findings: Counter[Finding] = Counter()
        self.gaps: list[str] = []
        self.where = "session start"
        self._phase = "session start"
        self._last_seen_attached = "session start"

    def scan(self, record: logging.LogRecord) -> None:
        for kind, value in find_contacts(record_text(record)):
            masked = _MASKERS[kind](value)
            self.findings[Finding(kind, masked, self.where, record.name, f"{record.pathname}:{record.lineno}")] += 1

    def attach(self, *, restore_level: bool) -> None:
        """Put the handler on the root (and on every logger that does not propagate) if it is not there."""
        root = logging.getLogger()
        if self.handler not in root.handlers:
            if self.where != "session start":
                self.gaps.append(f"between {self._last_seen_attached} and {self._phase}")
            root.addHandler(self.handler)
        self._last_seen_attached = self._phase
        if restore_level and root.level > logging.DEBUG:
            root.setLevel(logging.DEBUG)
        for logger in list(logging.Logger.manager.loggerDict.values()):
            if isinstance(logger, logging.Logger) and not logger.propagate and self.handler not in logger.handlers:
                logger.addHandler(self.handler)

    def detach(self) -> None:
        logging.getLogger().removeHandler(self.handler)
        for logger in list(logging.Logger.manager.loggerDict.values()):
            if isinstance(logger, logging.Logger):
                logger.removeHandler(self.handler)

    def report(self) -> list[str]:
        """One line per logging call site: how many contacts of which kinds, in how many tests, examples masked."""
        sites: dict[tuple[str, str], Counter[Finding]] = {}
        for finding, count in self.findings.items():
            sites.setdefault((finding.logger, finding.source), Counter())[finding] += count
        lines = [f"{sum(self.findings.values())} contact(s) reached the logs unmasked; log subscriber ids instead, "
                 "or route the record through subscriptions.masking.ScrubbingFilter:"]
        for (logger, source), found in sorted(sites.items(), key=lambda item: -item[1].total()):
            kinds = Counter[str]()
            for finding, count in found.items():
                kinds[finding.kind] += count
            tests = sorted({finding.where for finding in found})
            examples = ", ".join(sorted({finding.masked for finding in found})[:3])
            lines.append(f"  logger {logger!r} at {source}: "
                         + ", ".join(f"{count} {kind}" for kind, count in kinds.most_common())
                         + f" in {len(tests)} test(s), e.g. {tests[0]} ({examples})")
        return lines

    # ---------------------------------------------------------------- pytest hooks

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.attach(restore_level=True)

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self.where = nodeid

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        # Before any fixture runs, so a level a fixture sets for its test is left alone.
        self._phase = f"setup of {item.nodeid}"
        self.attach(restore_level=True)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        self._phase = f"call of {item.nodeid}"
        self.attach(restore_level=False)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        self._phase = f"teardown of {item.nodeid}"
        self.attach(restore_level=False)

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self.where = f"after {nodeid}"

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.where = self._phase = "session finish"
        self.attach(restore_level=False)  # only to notice a last gap; nothing is scanned after this
        self.detach()
        if self.findings and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.findings and session.config.pluginmanager.get_plugin("terminalreporter") is None:
            print("\n".join(self.report()), file=sys.stderr)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.gaps:
            terminalreporter.section("log privacy scan: gaps", yellow=True)
            terminalreporter.write_line("the scanning handler was removed from the root logger (then put back); "
                                        "records logged in between were not scanned:")
            for where in self.gaps:
                terminalreporter.write_line(f"  {where}")
        if self.findings:
            terminalreporter.section("log privacy scan", red=True)
            for line in self.report():
                terminalreporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(LogScanner(), "log_scanner")
