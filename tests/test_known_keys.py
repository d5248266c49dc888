"""The publishing keys a process keeps known (`KnownKeys`): a publish with one reads nothing before its write, and
its transaction confirms them (tests/web/test_api_auth.py and tests/store/test_catalogue_codes.py show the
confirmation); how many are kept, and which go first."""

from __future__ import annotations

from notifier.keys import KnownKeys
from notifier.store.catalogue import CodeRows
from notifier.store.records import KeyRecord

CODES: CodeRows = ([["140402", "城区", "Urban District"]], [], [["env.heavy-pollution", "重污染天气预警", None,
                                                              ["sms"], "市环保局"]])


def _key(n: int) -> KeyRecord:
    return KeyRecord(id=f"k{n}", prefix="ntf_pub_abcd", role="publisher", topics=["env.*"], label=None,
                     created_at=0.0, revoked_at=None, department="市环保局")


def test_a_key_remembered_is_vouched_for_on_its_next_request_only() -> None:
    """The request that read the key is not vouched (nothing to confirm); the next one is, with what was read."""
    known = KnownKeys()
    read = known.remember("h1", _key(1), CODES)
    assert read.vouched is None and read.key == _key(1) and read.codes.known("region", "140402")
    again = known.get("h1")
    assert again is not None and again.vouched is not None
    assert (again.vouched.key_hash, again.vouched.key, again.vouched.codes) == ("h1", _key(1), CODES)


def test_the_least_recently_used_key_is_forgotten_beyond_the_limit() -> None:
    known = KnownKeys(size=2)
    known.remember("h1", _key(1), CODES)
    known.remember("h2", _key(2), CODES)
    assert known.get("h1") is not None  # h1 used: h2 is now the least recent
    known.remember("h3", _key(3), CODES)
    assert known.get("h2") is None
    assert known.get("h1") is not None and known.get("h3") is not None


def test_a_key_forgotten_is_read_again() -> None:
    known = KnownKeys()
    known.remember("h1", _key(1), CODES)
    known.forget("h1")
    known.forget("never-known")
    assert known.get("h1") is None
