"""Signed tokens: round trip, tampering, expiry, purpose binding, another secret, malformed input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from notifier import tokens
from notifier.tokens import ExpiredToken, InvalidToken, make_token, read_token

SECRET = "s3cret-for-tests"
SUBJECT = uuid.uuid4().hex
NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def _flip(text: str, index: int) -> str:
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
    for subject in (str(uuid.uuid4()), "pending:42", SUBJECT.upper()):
        token = make_token(SECRET, tokens.MANAGE, subject, now=NOW)
        assert read_token(SECRET, tokens.MANAGE, token, now=NOW).subject == subject


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
