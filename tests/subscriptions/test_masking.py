"""Masking: how contacts look wherever they are shown (admin views, exports, logs)."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from subscriptions.masking import (
    ScrubbingFilter,
    mask_contact,
    mask_email,
    mask_mobile,
    mask_openid,
    mask_phone,
    mask_url,
    scrub,
)

OPENID = "oAbCdEfGhIjKlMnOpQrStUvWxYz1"


@pytest.mark.parametrize("number", [
    "+8613812345678", "13812345678", "8613812345678", "008613812345678", "+86 138 1234 5678", "138-1234-5678",
])
def test_mobile_shows_first_three_and_last_four_digits(number: str) -> None:
    """A mobile number, with or without +86, is shown as 138****5678."""
    assert mask_mobile(number) == "138****5678"


def test_too_short_number_is_hidden_entirely() -> None:
    """A number too short to mask meaningfully shows as **** only."""
    assert mask_mobile("12345") == "****"


@pytest.mark.parametrize(("address", "masked"), [
    ("alice@x.gov.cn", "a***@x.gov.cn"),
    ("a@x.gov.cn", "a***@x.gov.cn"),
    ("13812345678@qq.com", "1***@qq.com"),
])
def test_email_shows_first_character_and_domain(address: str, masked: str) -> None:
    """An email address is shown as its first character, *** and its domain."""
    assert mask_email(address) == masked


@pytest.mark.parametrize("value", ["no-at-sign", "@x.org", "a@"])
def test_malformed_email_is_hidden_entirely(value: str) -> None:
    """Something that is not an address shows as *** only."""
    assert mask_email(value) == "***"


def test_openid_shows_only_its_last_four_characters() -> None:
    """A WeChat openid is shown as **** and its last 4 characters."""
    assert mask_openid(OPENID) == "****xYz1"


def test_short_openid_is_hidden_entirely() -> None:
    """An openid of 4 characters or fewer is shown as **** only."""
    assert mask_openid("abcd") == "****"


@pytest.mark.parametrize(("url", "masked"), [
    ("https://hooks.example.org/in/secret-token?key=abc", "https://hooks.example.org/…"),
    ("http://user:pw@10.0.0.5:8080/x", "http://10.0.0.5/…"),
    ("http://[::1]:8080/x", "http://[::1]/…"),
    ("not a url", "****"),
    ("http://[::1/x", "****"),
])
def test_webhook_url_shows_scheme_and_host_only(url: str, masked: str) -> None:
    """A webhook URL is shown as scheme and host: its path, query and credentials may carry tokens."""
    assert mask_url(url) == masked


@pytest.mark.parametrize(("kind", "value", "masked"), [
    ("sms", "+8613812345678", "138****5678"),
    ("email", "alice@x.gov.cn", "a***@x.gov.cn"),
    ("wechat", OPENID, "****xYz1"),
    ("webhook", "https://h.example.org/p", "https://h.example.org/…"),
    ("fax", "0355-2021234", "****"),
    ("sms", None, None),
])
def test_contact_is_masked_according_to_its_channel(kind: str, value: str | None, masked: str | None) -> None:
    """Each channel's contact is masked its own way; an unknown kind is hidden; no contact stays None."""
    assert mask_contact(kind, value) == masked


# ---------------------------------------------------------------- scrub: contacts in free text


@pytest.mark.parametrize(("text", "scrubbed"), [
    ("sms to 13812345678 failed", "sms to 138****5678 failed"),
    ("sms to +8613812345678 failed", "sms to 138****5678 failed"),
    ("sms to 8613812345678 failed", "sms to 138****5678 failed"),
    ("sms to 008613812345678 failed", "sms to 138****5678 failed"),
    ("call 138-1234-5678 now", "call 138****5678 now"),
    ("call +86 138 1234 5678 now", "call 138****5678 now"),
    ("call 138 1234 5678 now", "call 138****5678 now"),
    ("手机13812345678。", "手机138****5678。"),
    ("to=13812345678&x=1", "to=138****5678&x=1"),
    ("mobile13812345678", "mobile138****5678"),
])
def test_scrub_masks_mobile_numbers_however_written(text: str, scrubbed: str) -> None:
    """Mobile numbers in text are masked with or without +86, 0086 or 86, spaced or dashed."""
    assert scrub(text) == scrubbed


@pytest.mark.parametrize(("text", "scrubbed"), [
    ("mail to alice@x.gov.cn.", "mail to a***@x.gov.cn."),
    ("from <a.b+tag@example.org>", "from <a***@example.org>"),
    ("to 13812345678@qq.com", "to 1***@qq.com"),
    ("GET /v1/subscribers?email=alice%40x.org&x=1", "GET /v1/subscribers?email=a***%40x.org&x=1"),
    ("mail a@政府.cn", "mail a***@政府.cn"),
])
def test_scrub_masks_email_addresses(text: str, scrubbed: str) -> None:
    """Email addresses in text, URL-encoded ones and internationalised domains included, are masked."""
    assert scrub(text) == scrubbed


def test_scrub_masks_openids() -> None:
    """A 28-character WeChat openid in text is masked to **** and its last 4 characters."""
    assert scrub(f"send to openid={OPENID}, ok") == "send to openid=****xYz1, ok"


def test_scrub_leaves_longer_tokens_that_start_with_o_alone() -> None:
    """A 29-character token is not an openid and is left as it is."""
    assert scrub(f"token {OPENID}2") == f"token {OPENID}2"


def test_scrub_masks_every_contact_inside_json() -> None:
    """A JSON document logged whole comes out with each contact masked and still parses."""
    document = json.dumps({"contacts": {"sms": "+8613812345678", "email": "alice@x.gov.cn", "wechat": OPENID}})
    assert json.loads(scrub(document)) == {
        "contacts": {"sms": "138****5678", "email": "a***@x.gov.cn", "wechat": "****xYz1"}}


@pytest.mark.parametrize("identifier", [
    "e1381234567812345678901234567890",  # 32 hex characters holding an 11-digit run that looks like a mobile
    "E1381234567812345678901234567890",
    "e1381234-5678-4234-8678-123456789012",  # dashed UUID whose groups look like 138-1234-5678
    "a" * 8 + "13912345678" + "b" * 13,
])
def test_scrub_leaves_uuid_ids_intact(identifier: str) -> None:
    """Alert and delivery ids (32-hex or dashed UUIDs) survive scrubbing even when they hold mobile-like digits."""
    text = f"delivery {identifier} sent; alert_id={identifier}"
    assert scrub(text) == text


def test_scrub_leaves_random_uuids_intact() -> None:
    """A thousand random uuid4 ids, hex and dashed, all survive scrubbing unchanged."""
    ids = [uuid.uuid4() for _ in range(1000)]
    text = " ".join(f"{u.hex} {u}" for u in ids)
    assert scrub(text) == text


@pytest.mark.parametrize("text", [
    "2024-05-13T13:38:12.138123+08:00",
    "at 1716012345.678901 (1716012345678 ms)",
    "order 13812345678901 paid",  # a 14-digit run is not a mobile number
    "retry in 1.38s, attempt 3 of 5",
    "targeted=138 reached=1234 pending=5678",
])
def test_scrub_leaves_timestamps_and_longer_numbers_alone(text: str) -> None:
    """Timestamps, epoch times, long digit runs and counters are not mistaken for mobile numbers."""
    assert scrub(text) == text


def test_scrub_of_masked_text_changes_nothing() -> None:
    """Scrubbing text that was already masked leaves it as it is."""
    text = "sms 138****5678, mail a***@x.gov.cn, wechat ****xYz1"
    assert scrub(text) == text


# ---------------------------------------------------------------- the logging filter


@pytest.fixture
def scrubbed_logger() -> logging.Logger:
    """A logger of its own with the ScrubbingFilter on it, so records are masked before any handler sees them."""
    logger = logging.getLogger(f"tests.masking.{uuid.uuid4().hex}")
    logger.addFilter(ScrubbingFilter())
    return logger


def test_filter_masks_a_contact_passed_as_log_argument(scrubbed_logger: logging.Logger,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """A mobile number passed as a %s argument is written masked."""
    with caplog.at_level(logging.INFO, logger=scrubbed_logger.name):
        scrubbed_logger.info("sms to %s failed", "+8613812345678")
    assert caplog.records[0].getMessage() == "sms to 138****5678 failed"


def test_filter_masks_a_contact_in_an_exception_traceback(scrubbed_logger: logging.Logger,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """An exception whose message holds an email address is written with the address masked."""
    with caplog.at_level(logging.ERROR, logger=scrubbed_logger.name):
        try:
            raise RuntimeError("mailbox alice@x.gov.cn refused")
        except RuntimeError:
            scrubbed_logger.exception("send failed")
    assert "a***@x.gov.cn" in caplog.text
    assert "alice@" not in caplog.text


def test_filter_masks_contacts_in_extra_fields(scrubbed_logger: logging.Logger,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """A contact given in `extra=` (shown by the JSON formatter) is masked too."""
    with caplog.at_level(logging.INFO, logger=scrubbed_logger.name):
        scrubbed_logger.info("sent", extra={"recipient": "13812345678"})
    assert vars(caplog.records[0])["recipient"] == "138****5678"


def test_filter_keeps_records_with_a_bad_format_string_without_raw_arguments(
        scrubbed_logger: logging.Logger, caplog: pytest.LogCaptureFixture) -> None:
    """A log call whose arguments do not fit its format is still written, masked, instead of failing."""
    with caplog.at_level(logging.INFO, logger=scrubbed_logger.name):
        scrubbed_logger.info("sms to %s and %s", "13812345678")
    assert caplog.records[0].getMessage() == "sms to %s and %s (log arguments could not be formatted)"


def test_filter_leaves_a_clean_record_untouched(scrubbed_logger: logging.Logger,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """A record without contacts keeps its format string and arguments."""
    with caplog.at_level(logging.INFO, logger=scrubbed_logger.name):
        scrubbed_logger.info("delivery %s sent", "e1381234567812345678901234567890")
    assert caplog.records[0].msg == "delivery %s sent"
    assert caplog.records[0].args == ("e1381234567812345678901234567890",)


def test_filter_masks_contacts_nested_in_extra_structures(scrubbed_logger: logging.Logger,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """Contacts inside a dict or list given in `extra=` are masked and the structure is kept."""
    with caplog.at_level(logging.INFO, logger=scrubbed_logger.name):
        scrubbed_logger.info("sent", extra={"batch": {"to": ["13812345678", "alice@x.gov.cn"], "n": 2}})
    assert vars(caplog.records[0])["batch"] == {"to": ["138****5678", "a***@x.gov.cn"], "n": 2}


@pytest.mark.parametrize(("number", "masked"), [
    ("+863552021234", "0355****34"),
    ("+8635512345678", "0355****78"),
    ("+861012345678", "010****78"),
    ("+8613812345678", "138****5678"),
])
def test_voice_number_shows_area_code_and_last_two_digits_or_a_masked_mobile(number: str, masked: str) -> None:
    """A fixed line keeps its area code and last two digits; a mobile voice contact is masked as for SMS."""
    assert mask_phone(number) == masked
    assert mask_contact("voice", number) == masked


@pytest.mark.parametrize(("text", "scrubbed"), [
    ("calling +863552021234 now", "calling 0355****34 now"),
    ("calling +86 355 2021234 now", "calling 0355****34 now"),
    ("landline 0355-2021234.", "landline 0355****34."),
    ("beijing +861012345678", "beijing 010****78"),
])
def test_scrub_masks_fixed_line_numbers(text: str, scrubbed: str) -> None:
    """Fixed lines written in E.164 or with a dashed area code are masked in free text."""
    assert scrub(text) == scrubbed
