"""Contact validation and normalisation: what a subscriber may type, and what is stored."""

from __future__ import annotations

import base64

import pytest

from subscriptions.contacts import (
    generate_webhook_secret,
    is_mainland_mobile,
    normalize_email,
    normalize_mobile,
    normalize_voice_number,
    validate_openid,
    validate_webhook_secret,
    validate_webhook_url,
)

OPENID = "oAbCdEfGhIjKlMnOpQrStUvWxYz1"


# ---------------------------------------------------------------- mobile numbers


@pytest.mark.parametrize("raw", [
    "13800138000",
    "+86 138 0013 8000",
    "008613800138000",
    "86-138-0013-8000",
    "+8613800138000",
    "8613800138000",
    "(+86) 138-0013-8000",
    "138.0013.8000",
    " 13800138000 ",
    "１３８００１３８０００",  # fullwidth digits from a Chinese input method
])
def test_mobile_written_any_usual_way_is_stored_in_e164(raw: str) -> None:
    """A mainland mobile number written with spaces, dashes, +86, 0086 or 86 is stored as +86 and 11 digits."""
    assert normalize_mobile(raw) == "+8613800138000"


@pytest.mark.parametrize("raw", ["17012345678", "19212345678", "16612345678", "15912345678"])
def test_newer_mobile_prefixes_are_accepted(raw: str) -> None:
    """Numbers of the newer 16x, 17x and 19x ranges are accepted like 13x and 15x ones."""
    assert normalize_mobile(raw) == f"+86{raw}"


@pytest.mark.parametrize("raw", ["0355-2021234", "+86 10 6552 9988", "400-810-8888"])
def test_landline_or_service_number_is_refused_as_not_a_mobile(raw: str) -> None:
    """A landline or a 400 service number is refused with a message saying SMS needs a mobile."""
    with pytest.raises(ValueError, match="SMS needs a mobile"):
        normalize_mobile(raw)


@pytest.mark.parametrize("raw", [
    "1380013800",  # 10 digits
    "138001380000",  # 12 digits
    "95588",
    "12345678901",  # no such mobile range
    "",
    "+",
])
def test_too_short_too_long_or_unassigned_number_is_refused(raw: str) -> None:
    """A number with too few or too many digits, or from no mobile range, is refused."""
    with pytest.raises(ValueError, match="mainland China mobile number"):
        normalize_mobile(raw)


@pytest.mark.parametrize("raw", [
    "138OO138OOO",  # letter O for zero: phonenumbers would read it as a vanity number and text a stranger
    "1380013800a",
    "tel:13800138000",
    "13800138000 ext 5",
    "++8613800138000",
])
def test_number_with_letters_or_stray_symbols_is_refused(raw: str) -> None:
    """Letters (an O typed for a 0, an extension, a tel: prefix) make the number invalid rather than guessed."""
    with pytest.raises(ValueError, match="mainland China mobile number"):
        normalize_mobile(raw)


@pytest.mark.parametrize("raw", ["+1 415 555 0123", "+44 7911 123456", "+852 9123 4567"])
def test_foreign_and_hong_kong_mobiles_are_refused(raw: str) -> None:
    """Only mainland numbers are taken: domestic SMS templates cannot reach other countries or regions."""
    with pytest.raises(ValueError, match="mainland China mobile number"):
        normalize_mobile(raw)


def test_mobile_error_does_not_repeat_the_number() -> None:
    """The refusal message never contains the number typed (it is personal data)."""
    with pytest.raises(ValueError) as caught:
        normalize_mobile("1391234567")
    assert "1391234567" not in str(caught.value)


# ---------------------------------------------------------------- email addresses


@pytest.mark.parametrize(("raw", "stored"), [
    ("alice@x.gov.cn", "alice@x.gov.cn"),
    ("Alice@X.Gov.CN", "Alice@x.gov.cn"),
    (" a.b+tag@example.org ", "a.b+tag@example.org"),
    ("13800138000@qq.com", "13800138000@qq.com"),
])
def test_email_is_stored_with_its_domain_lower_cased(raw: str, stored: str) -> None:
    """An email address is kept as typed except for its domain, which is lower-cased."""
    assert normalize_email(raw) == stored


@pytest.mark.parametrize(("raw", "stored"), [
    ("a@政府.cn", "a@xn--mxtq1m.cn"),
    ("a@例子.中国", "a@xn--fsqu00a.xn--fiqs8s"),
])
def test_internationalised_domain_is_accepted_and_stored_as_a_labels(raw: str, stored: str) -> None:
    """A Chinese domain name is accepted and stored in the xn-- form that SMTP and DNS use."""
    assert normalize_email(raw) == stored


def test_fullwidth_email_typed_with_chinese_input_method_is_folded_to_ascii() -> None:
    """An address typed in fullwidth characters (ａ＠ｘ．ｏｒｇ) is stored as plain ASCII."""
    assert normalize_email("ａ＠ｘ．ｏｒｇ") == "a@x.org"


@pytest.mark.parametrize("raw", [
    "a@b",  # no dot in the domain
    "@x.org",  # no mailbox
    "a b@x.org",  # space
    "a@",
    "ax.org",
    "a..b@x.org",
    ".a@x.org",
    "a@x..org",
    "a@x.org.",
    "a@-x.org",
    "a@x_y.org",
    "a@x.123",
    "a@1.2.3.4",
    "a@[127.0.0.1]",
    "a@b.c",
    "张三@x.org",  # a non-ASCII mailbox needs SMTPUTF8
    "a\n@x.org",
    "a" * 65 + "@x.org",
    "a@" + "b" * 64 + ".org",
])
def test_malformed_email_is_refused(raw: str) -> None:
    """Addresses that no mail server would deliver to are refused."""
    with pytest.raises(ValueError, match="email address"):
        normalize_email(raw)


# ---------------------------------------------------------------- openids


def test_openid_is_kept_exactly_as_given() -> None:
    """A WeChat openid is stored as given, case included (openids are case-sensitive)."""
    assert validate_openid(f" {OPENID} ") == OPENID


@pytest.mark.parametrize("raw", [
    OPENID[:-1],  # 27 characters
    OPENID + "x",  # 29 characters
    "x" + OPENID[1:],  # does not start with o
    OPENID[:-1] + "=",
    OPENID[:-1] + "\n",
])
def test_string_not_shaped_like_an_openid_is_refused(raw: str) -> None:
    """Anything but 28 letters, digits, '-' or '_' starting with 'o' is refused as an openid."""
    with pytest.raises(ValueError, match="WeChat openid"):
        validate_openid(raw)


# ---------------------------------------------------------------- webhooks


@pytest.mark.parametrize("raw", ["https://hooks.example.org/notify?k=1", "http://10.0.0.5:8080/in"])
def test_http_and_https_webhook_urls_are_accepted(raw: str) -> None:
    """An http(s) URL with a host is accepted as a webhook (where it points is checked elsewhere)."""
    assert validate_webhook_url(raw) == raw


@pytest.mark.parametrize(("raw", "message"), [
    ("ftp://example.org/x", "http"),
    ("https:///path", "http"),
    ("example.org/x", "http"),
    ("https://user:pw@example.org/", "credentials"),
    ("https://@example.org/", "credentials"),
    ("https://example.org:99999/", "port"),
    ("https://[::1/", "host or port"),
    ("https://example.org/a b", "spaces"),
    ("https://example.org/a\nb", "control"),
    ("https://example.org/" + "a" * 2000, "too long"),
])
def test_bad_webhook_url_is_refused_with_the_reason(raw: str, message: str) -> None:
    """A webhook URL that is not http(s), has no host, carries credentials or is malformed says why."""
    with pytest.raises(ValueError, match=message):
        validate_webhook_url(raw)


def test_generated_webhook_secret_is_a_standard_webhooks_secret() -> None:
    """A generated secret is `whsec_` and base64 of 32 random bytes, and passes validation."""
    secret = generate_webhook_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert validate_webhook_secret(secret) == secret


def test_generated_webhook_secrets_differ() -> None:
    """Every generated webhook secret is different."""
    assert generate_webhook_secret() != generate_webhook_secret()


@pytest.mark.parametrize(("raw", "message"), [
    ("whsec_not base64!", "base64"),
    ("whsec_" + base64.b64encode(b"x" * 16).decode(), "24 to 64 bytes"),
    ("whsec_" + base64.b64encode(b"x" * 65).decode(), "24 to 64 bytes"),
    ("whsec_", "24 to 64 bytes"),
    ("whsec_秘密", "base64"),
])
def test_bad_webhook_secret_is_refused(raw: str, message: str) -> None:
    """A webhook secret that is not base64 of 24 to 64 bytes is refused with the reason."""
    with pytest.raises(ValueError, match=message):
        validate_webhook_secret(raw)


# ---------------------------------------------------------------- voice numbers

@pytest.mark.parametrize(("raw", "stored"), [
    ("0355-2021234", "+863552021234"),
    ("(0355)2021234", "+863552021234"),
    ("0355 202 1234", "+863552021234"),
    ("+86 355 202 1234", "+863552021234"),
    ("00863552021234", "+863552021234"),
    ("010-12345678", "+861012345678"),
    ("021 6123 4567", "+862161234567"),
])
def test_fixed_line_with_area_code_is_stored_in_e164(raw: str, stored: str) -> None:
    """A landline written with its area code, any usual way, becomes one E.164 number."""
    assert normalize_voice_number(raw) == stored


@pytest.mark.parametrize(("raw", "stored"), [
    ("035512345678", "+8635512345678"),
    ("+86 355 1234 5678", "+8635512345678"),
])
def test_fixed_line_shaped_number_unknown_to_the_metadata_is_still_taken(raw: str, stored: str) -> None:
    """An area code and eight digits is taken even where the numbering metadata expects seven."""
    assert normalize_voice_number(raw) == stored


def test_mobile_is_a_voice_number_as_for_sms() -> None:
    """A mobile number is stored for voice exactly as SMS stores it."""
    assert normalize_voice_number("138 0013 8000") == normalize_mobile("138 0013 8000") == "+8613800138000"


@pytest.mark.parametrize("raw", ["400-800-1234", "95588", "0355 12345", "2021234", "+852 2123 4567",
                                 "0355-202l234", "12345", ""])
def test_service_short_foreign_or_malformed_voice_number_is_refused(raw: str) -> None:
    """Service numbers, local numbers without an area code, foreign numbers and junk are refused."""
    with pytest.raises(ValueError, match=r"voice call|fixed line"):
        normalize_voice_number(raw)


def test_voice_error_does_not_repeat_the_number() -> None:
    """The refusal names the rule, never the digits given."""
    with pytest.raises(ValueError) as caught:
        normalize_voice_number("0355 12345")
    assert "12345" not in str(caught.value)


def test_mobile_and_fixed_line_are_told_apart() -> None:
    """A normalised mobile is a mobile; a normalised landline (Beijing's 010 included) is not."""
    assert is_mainland_mobile("+8613800138000")
    assert not is_mainland_mobile("+863552021234")
    assert not is_mainland_mobile("+861012345678")
