"""Signed tokens: round trip, tampering, expiry, purpose binding, another secret, malformed input."""

from __future__ import annotations

import base64
import string
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from notifier import links, tokens
from notifier.tokens import ExpiredToken, InvalidToken, make_token, read_token

SECRET = "s3cret-for-tests"
SUBJECT = uuid.uuid4().hex
NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"  # base64url, in value order


def _flip(text: str, index: int) -> str:
    """`text` with the character at `index` (negative: from the end) replaced by another."""
    index %= len(text)
    swapped = "A" if text[index] != "A" else "B"
    return text[:index] + swapped + text[index + 1:]


def test_round_trip_gives_back_subject_purpose_expiry_and_data() -> None:
    """A token reads back as the subject, purpose, expiry and data it was made with."""
    token = make_token(SECRET, tokens.UNSUBSCRIBE, SUBJECT, timedelta(days=1), data="env.heavy-pollution", now=NOW)
    claims = read_token(SECRET, tokens.UNSUBSCRIBE, token, now=NOW)
    assert (claims.subject, claims.purpose, claims.data) == (SUBJECT, tokens.UNSUBSCRIBE, "env.heavy-pollution")
    assert claims.expires_at == NOW + timedelta(days=1)


def test_dashed_uuid_and_text_subjects_round_trip() -> None:
    """Dashed UUIDs and non-UUID subjects come back exactly as given."""
    dashed = str(uuid.uuid4())
    for subject in (dashed, "pending:42", SUBJECT.upper(), dashed.upper(), "{" + dashed + "}", "urn:uuid:" + dashed):
        token = make_token(SECRET, tokens.MANAGE, subject, now=NOW)
        assert read_token(SECRET, tokens.MANAGE, token, now=NOW).subject == subject


@pytest.mark.parametrize(("subject", "token"), [
    ("0123456789abcdef0123456789abcdef",
     "AwEjRWeJq83vASNFZ4mrze9s672AZW52LmhlYXZ5LXBvbGx1dGlvbg.uoht1ybL3zT_M7wLHTJsaQ"),
    ("01234567-89ab-cdef-0123-456789abcdef",
     "AQEjRWeJq83vASNFZ4mrze9s672AZW52LmhlYXZ5LXBvbGx1dGlvbg.Bo8MxwrQZBGUYUp5Y6EEfg"),
    ("pending:42", "AgpwZW5kaW5nOjQybOu9gGVudi5oZWF2eS1wb2xsdXRpb24.8heV02qpaZOw1rUxh5Q8GQ"),
])
def test_the_token_format_does_not_change(subject: str, token: str) -> None:
    """A token is the documented format, byte for byte (these were made before tokens were minted per message):
    a hex id and a dashed UUID take 16 bytes, any other subject its text."""
    assert make_token(SECRET, tokens.UNSUBSCRIBE, subject, data="env.heavy-pollution", now=NOW) == token


def test_a_minter_makes_what_make_token_makes() -> None:
    """One minter for a message's many recipients gives each the token make_token would."""
    minter = tokens.Minter(SECRET, tokens.UNSUBSCRIBE, data="env.heavy-pollution", now=NOW)
    for subject in (uuid.uuid4().hex, str(uuid.uuid4()), "pending:42"):
        assert minter.token(subject) == make_token(SECRET, tokens.UNSUBSCRIBE, subject, data="env.heavy-pollution",
                                                   now=NOW)


def test_a_messages_links_are_the_links_each_subscriber_would_be_given_alone() -> None:
    """A message's links for each recipient, made from one encoding of the subscriber, are the manage and
    unsubscribe links made one by one at the alert's time."""
    public = "https://notify.changzhi.gov.cn/"
    message_links = links.MessageLinks(public, SECRET, "env.heavy-pollution", issued=NOW)
    for subject in (uuid.uuid4().hex, str(uuid.uuid4()), "pending:42"):
        assert message_links.of(subject) == (
            links.manage_url(public, SECRET, subject, now=NOW),
            links.unsubscribe_url(public, SECRET, subject, "env.heavy-pollution", now=NOW))


def test_token_is_url_safe_and_short() -> None:
    """A subscriber-id token without data is URL-safe and short enough for a link in a message."""
    token = make_token(SECRET, tokens.MANAGE, SUBJECT, now=NOW)
    assert len(token) <= 51
    assert all(c.isalnum() or c in "-_." for c in token)


def test_default_lifetimes_follow_the_purpose() -> None:
    """Without a ttl, manage lasts 90 days, unsubscribe a year and email verification a day."""
    for purpose, days in ((tokens.MANAGE, 90), (tokens.UNSUBSCRIBE, 366), (tokens.VERIFY_EMAIL, 1)):
        claims = read_token(SECRET, purpose, make_token(SECRET, purpose, SUBJECT, now=NOW), now=NOW)
        assert claims.expires_at == NOW + timedelta(days=days)


@pytest.mark.parametrize("index", [0, 5, 20, -3, -1])
def test_a_changed_character_is_refused(index: int) -> None:
    """Changing any character of the body or the signature makes the token invalid."""
    token = make_token(SECRET, tokens.MANAGE, SUBJECT, now=NOW)
    with pytest.raises(InvalidToken):
        read_token(SECRET, tokens.MANAGE, _flip(token, index), now=NOW)


def test_a_last_character_that_decodes_to_the_same_bytes_is_refused() -> None:
    """A signature's last character carries bits that decode to nothing; another character differing only there
    names the same bytes, and is refused all the same: a token has one spelling."""
    token = make_token(SECRET, tokens.MANAGE, SUBJECT, now=NOW)
    unused_bits = (6 * len(token.split(".")[-1])) % 8  # of the last character's six
    assert unused_bits  # a 16-byte signature in 22 characters: 132 bits for 128
    last = ALPHABET.index(token[-1])
    twin = ALPHABET[last ^ 1]  # the lowest bit, unused
    assert base64.urlsafe_b64decode(token.split(".")[-1] + "==") == base64.urlsafe_b64decode(
        token.split(".")[-1][:-1] + twin + "==")
    with pytest.raises(InvalidToken):
        read_token(SECRET, tokens.MANAGE, token[:-1] + twin, now=NOW)


@pytest.mark.parametrize("extra", ["!!!!", "\n\n\n\n", "    "])
def test_characters_outside_the_alphabet_are_refused(extra: str) -> None:
    """Python's decoder drops characters outside the alphabet; a token with some added (four: the length stays
    one the decoder takes) is not the token."""
    token = make_token(SECRET, tokens.MANAGE, SUBJECT, now=NOW)
    with pytest.raises(InvalidToken):
        read_token(SECRET, tokens.MANAGE, token[:-3] + extra + token[-3:], now=NOW)


def test_a_swapped_body_is_refused() -> None:
    """The body of one subscriber's token under another's signature is refused."""
    mine = make_token(SECRET, tokens.MANAGE, SUBJECT, now=NOW)
    theirs = make_token(SECRET, tokens.MANAGE, uuid.uuid4().hex, now=NOW)
    with pytest.raises(InvalidToken):
        read_token(SECRET, tokens.MANAGE, theirs.split(".")[0] + "." + mine.split(".")[1], now=NOW)


def test_expired_token_raises_expired_with_its_claims() -> None:
    """At and after its expiry a token raises ExpiredToken, which still names the subject."""
    token = make_token(SECRET, tokens.VERIFY_EMAIL, SUBJECT, timedelta(hours=24), now=NOW)
    with pytest.raises(ExpiredToken) as raised:
        read_token(SECRET, tokens.VERIFY_EMAIL, token, now=NOW + timedelta(hours=24))
    assert raised.value.claims.subject == SUBJECT
    assert read_token(SECRET, tokens.VERIFY_EMAIL, token, now=NOW + timedelta(hours=23)).subject == SUBJECT


def test_expired_is_a_kind_of_invalid() -> None:
    """Callers that only care whether a token is usable can catch InvalidToken alone."""
    assert issubclass(ExpiredToken, InvalidToken)


@pytest.mark.parametrize(("made_for", "read_as"), [
    (tokens.UNSUBSCRIBE, tokens.MANAGE), (tokens.MANAGE, tokens.UNSUBSCRIBE),
    (tokens.VERIFY_EMAIL, tokens.MANAGE), (tokens.FORM, tokens.UNSUBSCRIBE)])
def test_a_token_is_refused_for_another_purpose(made_for: str, read_as: str) -> None:
    """A token made for one purpose is invalid for every other."""
    token = make_token(SECRET, made_for, SUBJECT, now=NOW)
    with pytest.raises(InvalidToken):
        read_token(SECRET, read_as, token, now=NOW)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    """Another server's (or an old) secret does not verify."""
    token = make_token("another-secret", tokens.MANAGE, SUBJECT, now=NOW)
    with pytest.raises(InvalidToken):
        read_token(SECRET, tokens.MANAGE, token, now=NOW)


@pytest.mark.parametrize("garbage", ["", ".", "abc", "abc.def", "!!!.???", "é.é", "a" * 300 + ".b", "AQ.AQ"])
def test_malformed_tokens_raise_invalid(garbage: str) -> None:
    """Malformed input raises InvalidToken, never another exception."""
    with pytest.raises(InvalidToken):
        read_token(SECRET, tokens.MANAGE, garbage, now=NOW)


def test_no_secret_no_token() -> None:
    """Making a token without a secret is a programming error, not an unsigned token."""
    with pytest.raises(ValueError, match="secret"):
        make_token("", tokens.MANAGE, SUBJECT)
