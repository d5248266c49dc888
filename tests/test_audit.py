"""The audit chain: entries as SPEC defines them, hashes an outsider can recompute, tampering found and named."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from notifier.audit import (
    EMPTY_HEAD,
    GENESIS,
    AuditAction,
    AuditEntry,
    AuditError,
    AuditHead,
    BreakKind,
    ChainBroken,
    ChainOK,
    ChainVerifier,
    check_details,
    format_at,
    next_entry,
    object_ref,
    time_bound,
    verify_chain,
)
from notifier.models import Role

T0 = datetime(2026, 5, 20, 6, 3, 0, 123000, tzinfo=UTC).timestamp()
KEY_ID = "5c3f2a9e0d8b4c6fa1e27b3d9c0f4e81"


def chain(n: int) -> list[dict[str, Any]]:
    """n entries as a store would return them (dicts, in seq order)."""
    head: AuditHead | None = None
    rows = []
    for i in range(n):
        entry = next_entry(head, at=T0 + i, actor=KEY_ID, role=Role.PUBLISHER, department="市环保局",
                           action=AuditAction.ALERT_PUBLISH, object=f"alert:{i:032x}",
                           details={"topic": "env.heavy-pollution", "regions": ["140402"], "targeted": 100 + i})
        rows.append(entry.as_json())
        head = entry.head()
    return rows


def broken(result: ChainOK | ChainBroken) -> tuple[int, BreakKind]:
    assert isinstance(result, ChainBroken), result
    return result.seq, result.kind


def rehash(row: dict[str, Any]) -> dict[str, Any]:
    """What a careful forger does after editing a row: recompute its own hash."""
    body = {key: value for key, value in row.items() if key != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return {**row, "hash": hashlib.sha256(text.encode()).hexdigest()}


# ---------------------------------------------------------------- entries


def test_an_entry_has_exactly_the_spec_fields() -> None:
    """An entry is {seq, at, actor, role, department, action, object, details, prev_hash, hash}, first seq 1."""
    [first] = chain(1)
    assert list(first) == ["seq", "at", "actor", "role", "department", "action", "object", "details",
                           "prev_hash", "hash"]
    assert first["seq"] == 1 and first["prev_hash"] == GENESIS == "0" * 64
    assert first["role"] == "publisher" and first["action"] == "alert.publish"


def test_the_hash_is_sha256_of_the_canonical_json_without_hash() -> None:
    """An outsider recomputes the hash from the shown entry: sorted keys, `,` `:`, non-ASCII kept, UTF-8."""
    [first] = chain(1)
    body = {key: value for key, value in first.items() if key != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert "市环保局" in text
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == first["hash"]


def test_each_entry_links_to_the_one_before() -> None:
    """seq counts up by one and prev_hash is the previous entry's hash."""
    rows = chain(3)
    assert [r["seq"] for r in rows] == [1, 2, 3]
    assert rows[1]["prev_hash"] == rows[0]["hash"] and rows[2]["prev_hash"] == rows[1]["hash"]


def test_at_is_utc_to_the_millisecond_with_z() -> None:
    """`at` is fixed-width ISO 8601 UTC, so that its text sorts as time does."""
    assert format_at(T0) == "2026-05-20T06:03:00.123Z"
    assert format_at(datetime.fromisoformat("2026-05-20T14:03:00+08:00")) == "2026-05-20T06:03:00.000Z"


@pytest.mark.parametrize(("query", "bound"), [
    ("2026-05-20T14:03:00+08:00", "2026-05-20T06:03:00.000Z"),
    ("2026-05-20T06:03:00Z", "2026-05-20T06:03:00.000Z"),
    ("2026-05-20", "2026-05-19T16:00:00.000Z"),
])
def test_query_times_become_comparable_bounds(query: str, bound: str) -> None:
    """?since=/?until= accept ISO 8601 with an offset, or a date meaning Beijing midnight."""
    assert time_bound(query) == bound


@pytest.mark.parametrize("query", ["yesterday", "2026-05-20T14:03:00", "2026-13-01"])
def test_bad_query_times_are_refused(query: str) -> None:
    """A time that is not ISO 8601, or has a clock time but no offset, is a clear error."""
    with pytest.raises(AuditError):
        time_bound(query)


def test_the_cli_acts_as_cli() -> None:
    """A CLI act without a key is recorded with actor `cli`, role admin and no department."""
    entry = next_entry(None, at=T0, actor="cli", role=Role.ADMIN, department=None, action=AuditAction.KEY_CREATE,
                       object=object_ref("key", KEY_ID), details={"role": "publisher", "topics": ["env.*"]})
    assert (entry.actor, entry.role, entry.department, entry.object) == ("cli", "admin", None, f"key:{KEY_ID}")


def test_every_spec_action_is_named() -> None:
    """The action names are exactly SPEC's twelve."""
    assert {a.value for a in AuditAction} == {
        "alert.publish", "alert.approve", "alert.reject", "alert.update", "alert.cancel", "key.create",
        "key.revoke", "topic.create", "topic.update", "population.put", "subscribers.import", "subscriber.erase"}


@pytest.mark.parametrize("ref", ["alert", "Alert:1", "alert:", "alert:a b", ":x"])
def test_an_object_must_be_kind_colon_id(ref: str) -> None:
    """`object` is `<kind>:<id>`; anything else is refused before it is written."""
    with pytest.raises(AuditError, match="<kind>:<id>"):
        next_entry(None, at=T0, actor="cli", role=Role.ADMIN, department=None, action=AuditAction.TOPIC_CREATE,
                   object=ref, details={})


# ---------------------------------------------------------------- no contact ever


@pytest.mark.parametrize("details", [
    {"note": "call 13812345678"},
    {"contacts": ["+86 138 1234 5678"]},
    {"who": {"email": "li.wei@example.org"}},
    {"openid": "oABCDEFGHIJKLMNOPQRSTUVWXYZa"},
    {"13812345678": "as a key"},
])
def test_details_carrying_a_contact_are_refused(details: dict[str, Any]) -> None:
    """A mobile number, email address or openid anywhere in details (values or keys) is refused."""
    with pytest.raises(AuditError, match="contact"):
        check_details(details)


def test_a_contact_in_the_department_is_refused() -> None:
    """The guard covers the entry's own text fields too, not only details."""
    with pytest.raises(AuditError, match="contact"):
        next_entry(None, at=T0, actor="cli", role=Role.ADMIN, department="ops@example.org",
                   action=AuditAction.SUBSCRIBER_ERASE, object="subscriber:1", details={})


def test_ids_counts_and_timestamps_are_not_mistaken_for_contacts() -> None:
    """Subscriber ids (32 hex), epoch seconds and counts pass the guard."""
    details = {"subscriber": "8613812345678abcdef0123456789abc", "rows": 13812345678, "at": 1779256980}
    assert check_details(details) == details


@pytest.mark.parametrize(("details", "match"), [
    ({"rate": 0.5}, "floats"),
    ({"big": 2**53}, "2\\*\\*53"),
    ({"名字": 1}, "ASCII"),
    ({"when": datetime(2026, 1, 1, tzinfo=UTC)}, "not a JSON value"),
])
def test_details_that_cannot_hash_the_same_everywhere_are_refused(details: dict[str, Any], match: str) -> None:
    """Floats, unsafe integers, non-ASCII keys and non-JSON values are refused: another verifier would differ."""
    with pytest.raises(AuditError, match=match):
        check_details(details)


# ---------------------------------------------------------------- verification


def test_an_intact_chain_verifies_with_its_count_and_head() -> None:
    """An untouched chain is OK; the CLI line names the count and the head hash."""
    rows = chain(5)
    result = verify_chain(rows)
    assert result == ChainOK(5, rows[-1]["hash"])
    assert result.line() == f"audit: OK 5 entries head {rows[-1]['hash']}"


def test_an_empty_chain_is_ok_with_the_genesis_head() -> None:
    """No entries yet: OK, 0 entries, head 64 zeros; the public head is seq 0 with no time."""
    assert verify_chain([]) == ChainOK(0, GENESIS)
    assert EMPTY_HEAD.as_json() == {"seq": 0, "hash": GENESIS, "at": None}


def test_the_first_entry_follows_the_empty_head() -> None:
    """Building from EMPTY_HEAD gives seq 1 linked to 64 zeros, like building from no head."""
    first = next_entry(EMPTY_HEAD, at=T0, actor="cli", role=Role.ADMIN, department=None,
                       action=AuditAction.POPULATION_PUT, object="population:140402", details={"rows": 13})
    assert (first.seq, first.prev_hash) == (1, GENESIS)


def test_an_edited_row_is_found() -> None:
    """Changing a detail of entry 3 (hash left as it was) breaks at 3: changed."""
    rows = chain(5)
    rows[2] = {**rows[2], "details": {**rows[2]["details"], "targeted": 1}}
    result = verify_chain(rows)
    assert broken(result) == (3, BreakKind.CHANGED)
    assert isinstance(result, ChainBroken) and result.line().startswith("audit: BROKEN at 3: changed")


def test_an_edited_and_rehashed_row_breaks_the_next_link() -> None:
    """A forger who recomputes entry 3's hash is caught at entry 4, whose prev_hash no longer links."""
    rows = chain(5)
    rows[2] = rehash({**rows[2], "actor": "cli"})
    assert broken(verify_chain(rows)) == (4, BreakKind.INSERTED)


def test_a_deleted_row_is_found() -> None:
    """Deleting entry 3 breaks at 3: removed."""
    rows = chain(5)
    del rows[2]
    result = verify_chain(rows)
    assert broken(result) == (3, BreakKind.REMOVED)
    assert isinstance(result, ChainBroken) and "entry 3 is missing" in result.why


def test_several_deleted_rows_are_named_as_a_range() -> None:
    """Deleting entries 2 to 4 names the range."""
    rows = chain(6)
    del rows[1:4]
    result = verify_chain(rows)
    assert isinstance(result, ChainBroken) and "entries 2 to 4 are missing" in result.why


def test_a_deleted_first_row_is_found() -> None:
    """Deleting entry 1 breaks at 1."""
    assert broken(verify_chain(chain(3)[1:])) == (1, BreakKind.REMOVED)


def test_rows_swapped_in_place_are_found() -> None:
    """Rows 3 and 4 returned in the wrong order break at 3: reordered."""
    rows = chain(5)
    rows[2], rows[3] = rows[3], rows[2]
    assert broken(verify_chain(rows)) == (3, BreakKind.REORDERED)


def test_rows_with_swapped_seq_numbers_are_found() -> None:
    """Swapping the seq values of entries 3 and 4 (read back in seq order) breaks at 3: reordered."""
    rows = chain(5)
    rows[2], rows[3] = {**rows[3], "seq": 3}, {**rows[2], "seq": 4}
    assert broken(verify_chain(rows)) == (3, BreakKind.REORDERED)


def test_an_inserted_row_with_a_taken_seq_is_found() -> None:
    """A forged entry that links properly after entry 2 but reuses seq 3 breaks at 3: inserted."""
    rows = chain(5)
    forged = next_entry(AuditHead(2, rows[1]["hash"], rows[1]["at"]), at=T0, actor="cli", role=Role.ADMIN,
                        department=None, action=AuditAction.KEY_REVOKE, object="key:x", details={})
    rows.insert(2, forged.as_json())
    assert broken(verify_chain(rows)) == (3, BreakKind.INSERTED)


def test_a_replaced_row_is_found() -> None:
    """A self-consistent forged entry 3 that does not link to entry 2 breaks at 3: inserted."""
    rows = chain(5)
    forged = next_entry(None, at=T0, actor="cli", role=Role.ADMIN, department=None,
                        action=AuditAction.KEY_REVOKE, object="key:x", details={})
    rows[2] = rehash({**forged.as_json(), "seq": 3})
    assert broken(verify_chain(rows)) == (3, BreakKind.INSERTED)


@pytest.mark.parametrize(("field", "value"), [("hash", "xyz"), ("at", "yesterday"), ("details", "[]")])
def test_a_malformed_field_is_a_change(field: str, value: str) -> None:
    """A stored entry whose field no longer has its form is reported as changed."""
    rows = chain(3)
    rows[1] = {**rows[1], field: value}
    assert broken(verify_chain(rows)) == (2, BreakKind.CHANGED)


def test_a_missing_column_is_a_change() -> None:
    """An entry that lost a field is reported as changed, naming the field."""
    rows = chain(3)
    rows[1] = {key: value for key, value in rows[1].items() if key != "department"}
    result = verify_chain(rows)
    assert broken(result) == (2, BreakKind.CHANGED) and isinstance(result, ChainBroken)
    assert "department" in result.why


def test_a_truncated_tail_is_found_against_a_witnessed_head() -> None:
    """Deleting the last entries is caught when the head was witnessed outside before."""
    rows = chain(5)
    witnessed = AuditEntry(**rows[4]).head()
    assert verify_chain(rows, witnessed) == ChainOK(5, rows[4]["hash"])
    assert broken(verify_chain(rows[:3], witnessed)) == (4, BreakKind.REMOVED)


def test_a_rewritten_chain_is_found_against_a_witnessed_head() -> None:
    """A forger who rebuilds the whole chain cannot match a head witnessed before."""
    rows = chain(4)
    witnessed = AuditEntry(**rows[3]).head()
    head: AuditHead | None = None
    forged = []
    for row in rows:
        entry = next_entry(head, at=T0, actor="cli", role=Role.ADMIN, department=None,
                           action=AuditAction(row["action"]), object=row["object"], details={})
        forged.append(entry.as_json())
        head = entry.head()
    assert isinstance(verify_chain(forged), ChainOK)
    assert broken(verify_chain(forged, witnessed)) == (4, BreakKind.CHANGED)


async def test_entries_streamed_one_by_one_verify_like_a_list() -> None:
    """ChainVerifier takes entries one at a time (as an async store cursor yields them) and finds the same break."""

    async def cursor(rows: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        for row in rows:
            yield row

    rows = chain(6)
    rows[3], rows[4] = rows[4], rows[3]
    verifier = ChainVerifier()
    async for row in cursor(rows):
        verifier.add(row)
    assert verifier.result() == verify_chain(rows)
    assert broken(verifier.result()) == (4, BreakKind.REORDERED)


def test_a_long_chain_verifies_from_a_stream() -> None:
    """Ten thousand entries verify from an iterator, as the store streams them in seq order."""
    rows = chain(10_000)
    assert verify_chain(iter(rows)) == ChainOK(10_000, rows[-1]["hash"])
