"""Log privacy: the scrubbing filter masks contacts in log records, and the suite-wide scanner finds any that slip."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from subscriptions.masking import ScrubbingFilter
from tests.log_scanner import find_contacts, record_text

REPO = Path(__file__).resolve().parents[1]
OPENID = "oAbCdEfGhIjKlMnOpQrStUvWxYz1"


@pytest.fixture
def scrubbed_logger() -> tuple[logging.Logger, io.StringIO]:
    """A logger with the ScrubbingFilter on it and a handler writing formatted records to a string."""
    logger = logging.getLogger(f"tests.log_privacy.{uuid.uuid4().hex}")
    logger.setLevel(logging.DEBUG)
    logger.addFilter(ScrubbingFilter())
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger, stream


# ---------------------------------------------------------------- the scrubbing filter on a logger


def test_phone_number_in_log_arguments_is_written_masked(scrubbed_logger: tuple[logging.Logger, io.StringIO]) -> None:
    """A record whose arguments hold a mobile number is written with the number masked."""
    logger, stream = scrubbed_logger
    logger.warning("sms to %s refused: %s", "+8613812345678", "invalid number")
    assert stream.getvalue() == "WARNING sms to 138****5678 refused: invalid number\n"


def test_every_kind_of_contact_in_one_record_is_written_masked(
        scrubbed_logger: tuple[logging.Logger, io.StringIO]) -> None:
    """A record naming a mobile number, an email address and an openid is written with all three masked."""
    logger, stream = scrubbed_logger
    logger.info("contacts %s", {"sms": "138-1234-5678", "email": "alice@x.gov.cn", "wechat": OPENID})
    assert stream.getvalue() == (
        "INFO contacts {'sms': '138****5678', 'email': 'a***@x.gov.cn', 'wechat': '****xYz1'}\n")


def test_contact_in_a_logged_exception_is_written_masked(scrubbed_logger: tuple[logging.Logger, io.StringIO]) -> None:
    """The traceback of a logged exception is written with the contact in its message masked."""
    logger, stream = scrubbed_logger
    try:
        raise ValueError("no such subscriber 13812345678")
    except ValueError:
        logger.exception("lookup failed")
    assert "no such subscriber 138****5678" in stream.getvalue()
    assert find_contacts(stream.getvalue()) == []


def test_ids_in_log_records_are_written_unchanged(scrubbed_logger: tuple[logging.Logger, io.StringIO]) -> None:
    """Alert and delivery ids pass through the filter as they were, even when they hold mobile-like digits."""
    logger, stream = scrubbed_logger
    delivery_id = "e1381234567812345678901234567890"
    logger.info("delivery %s of alert %s sent", delivery_id, "e1381234-5678-4234-8678-123456789012")
    assert stream.getvalue() == f"INFO delivery {delivery_id} of alert e1381234-5678-4234-8678-123456789012 sent\n"


# ---------------------------------------------------------------- the scanner's patterns


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("sms to 13812345678", "mobile", "13812345678"),
    ("sms to +8613812345678", "mobile", "+8613812345678"),
    ("sms to 008613812345678", "mobile", "008613812345678"),
    ("sms to 8613812345678", "mobile", "8613812345678"),
    ("call 138-1234-5678", "mobile", "138-1234-5678"),
    ("call +86 138 1234 5678", "mobile", "+86 138 1234 5678"),
    ('{"sms":"19912345678"}', "mobile", "19912345678"),
    ("手机13812345678。", "mobile", "13812345678"),
    ("mail alice@x.gov.cn.", "email", "alice@x.gov.cn"),
    ("?email=alice%40x.org&", "email", "alice%40x.org"),
    ("mail a@政府.cn", "email", "a@政府.cn"),
    ("mail a@xn--mxtq1m.cn", "email", "a@xn--mxtq1m.cn"),
    (f"openid={OPENID};", "openid", OPENID),
    (f'"wechat": "{OPENID}"', "openid", OPENID),
])
def test_scanner_finds_each_kind_of_contact(text: str, kind: str, value: str) -> None:
    """The scanner recognises mobile numbers, email addresses and openids however they appear in a line."""
    assert find_contacts(text) == [(kind, value)]


@pytest.mark.parametrize("text", [
    "delivery e1381234567812345678901234567890 sent",
    "alert e1381234-5678-4234-8678-123456789012 published",
    "2024-05-13T13:38:12.138123+08:00 at 1716012345.678901, 1716012345678 ms",
    "order 13812345678901 paid",
    "counts 12345678901 and 1381234567",
    "sms 138****5678, mail a***@x.gov.cn, wechat ****xYz1",
    f"token {OPENID}x",
    "sender noreply@localhost",
])
def test_scanner_ignores_ids_timestamps_and_masked_contacts(text: str) -> None:
    """Ids, timestamps, other numbers and already-masked contacts are not reported."""
    assert find_contacts(text) == []


def test_scanner_ignores_random_uuids() -> None:
    """Ten thousand random uuid4 ids, hex and dashed, raise no finding."""
    ids = [uuid.uuid4() for _ in range(10_000)]
    assert find_contacts(" ".join(f"{u.hex} {u}" for u in ids)) == []


def test_scanner_reads_exception_text_and_extra_fields() -> None:
    """A contact in a record's exception or in an `extra=` field is found as well as one in its message."""
    try:
        raise RuntimeError("mailbox alice@x.gov.cn refused")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.makeLogRecord({"msg": "send failed", "exc_info": exc_info, "recipient": "13812345678"})
    assert set(find_contacts(record_text(record))) == {("email", "alice@x.gov.cn"), ("mobile", "13812345678")}


def test_scanner_reads_records_whose_arguments_do_not_fit() -> None:
    """A record whose format string and arguments do not match is still read, arguments included."""
    record = logging.makeLogRecord({"msg": "sms to %s and %s", "args": ("13812345678",)})
    assert find_contacts(record_text(record)) == [("mobile", "13812345678")]


# ---------------------------------------------------------------- the plugin, in a pytest run of its own


def run_pytest(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    """Run pytest with the scanner plugin over one test file in a separate process."""
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(source))
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.log_scanner", "-p", "no:cacheprovider", "-q", "test_inner.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_run_that_logs_a_contact_fails_and_reports_it_masked(tmp_path: Path) -> None:
    """A passing test that logs a mobile number makes the run fail, naming the test and showing the number masked."""
    result = run_pytest(tmp_path, """
        import logging

        def test_leaks():
            logging.getLogger("leaky").debug("sms to %s", "1381234" + "5678")
    """)
    assert result.returncode == 1, result.stdout
    assert "1 passed" in result.stdout
    assert "log privacy scan" in result.stdout
    assert "test_inner.py::test_leaks" in result.stdout
    assert "138****5678" in result.stdout
    assert "13812345678" not in result.stdout + result.stderr


def test_run_that_logs_contacts_through_the_scrubbing_filter_passes(tmp_path: Path) -> None:
    """Logging a contact through a logger that carries the ScrubbingFilter does not fail the run."""
    result = run_pytest(tmp_path, """
        import logging
        from subscriptions.masking import ScrubbingFilter

        def test_scrubbed():
            logger = logging.getLogger("scrubbed")
            logger.addFilter(ScrubbingFilter())
            logger.warning("sms to %s", "1381234" + "5678")
    """)
    assert result.returncode == 0, result.stdout
    assert "log privacy scan" not in result.stdout


def test_run_with_a_non_propagating_logger_is_still_scanned(tmp_path: Path) -> None:
    """A logger that does not pass records up to the root is scanned too."""
    result = run_pytest(tmp_path, """
        import logging

        logging.getLogger("quiet").propagate = False

        def test_leaks():
            logging.getLogger("quiet").error("mail to %s", "alice" + "@x.gov.cn")
    """)
    assert result.returncode == 1, result.stdout
    assert "a***@x.gov.cn" in result.stdout


def test_handler_removed_by_a_test_is_put_back_and_the_gap_reported(tmp_path: Path) -> None:
    """A test that replaces the root logger's handlers does not blind the scanner for later tests, and is named."""
    result = run_pytest(tmp_path, """
        import logging

        def test_a_replaces_root_handlers():
            logging.getLogger().handlers[:] = [logging.NullHandler()]

        def test_b_leaks():
            logging.getLogger("leaky").info("openid %s", "oAbCdEfGhIjKlMnOpQrStUvWxYz" + "1")
    """)
    assert result.returncode == 1, result.stdout
    assert "log privacy scan: gaps" in result.stdout
    assert "call of test_inner.py::test_a_replaces_root_handlers" in result.stdout
    assert "test_inner.py::test_b_leaks" in result.stdout
    assert "****xYz1" in result.stdout
