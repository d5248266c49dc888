"""The audit chain as stored (SPEC "Audit"): every act appends one entry in its own transaction, the stored chain
verifies, `notifier audit verify` finds an edited, a deleted and a swapped row (tampered with in the table
itself), concurrent writers never fork it, and no entry ever holds a contact."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from notifier.approval import approve_alert, reject_alert
from notifier.audit import AuditAction, BreakKind, ChainBroken, ChainOK, ChainVerifier, verify_chain
from notifier.config import ApprovalSettings
from notifier.errors import ConflictError
from notifier.importing import ImportOptions, import_bytes
from notifier.keys import create_key, revoke_key
from notifier.models import AlertIn, Role
from notifier.population import replace_population, rows_from_json
from notifier.publish import cancel_alert, publish_alert
from notifier.service import Service
from notifier.store import Store
from notifier.store.audit_log import AuditFilter
from notifier.store.records import KeyRecord
from subscriptions.masking import scrub
from tests.cli_run import Cli
from tests.conftest import SettingsFactory, SubscriberFactory

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

MOBILE, EMAIL, OPENID = "+8613912345678", "wang.fang@example.org", "oABCD1234567890abcdefghijklm"
HOOK = "https://school.example.org/hooks/notifier"
CONTACTS = ("13912345678", MOBILE, EMAIL, OPENID, HOOK, "13700001111", "chen.jie@example.org")
REGISTRY = ("mobile,email,region,groups,topics\n13700001111,chen.jie@example.org,城区,老年人,env.heavy-pollution\n"
            ).encode()
HELD = ApprovalSettings(severities=["extreme"])


def _alert(**fields: Any) -> AlertIn:
    body = {"topic": "env.heavy-pollution", "headline": "重污染天气橙色预警", "severity": "severe", **fields}
    return AlertIn.model_validate(body)


async def _entries(store: Store) -> list[dict[str, Any]]:
    return [entry async for entry in store.audit_stream()]


async def _verify(store: Store) -> ChainOK | ChainBroken:
    verifier = ChainVerifier()
    async for entry in store.audit_stream():
        verifier.add(entry)
    return verifier.result()


async def _every_act(service: Service, make_subscriber: SubscriberFactory) -> None:
    """One of each audited act, through the core functions the API and CLI call."""
    store = service.store
    subscriber = await make_subscriber(contacts={"sms": MOBILE, "email": EMAIL, "wechat": OPENID, "webhook": HOOK})
    publisher, _ = await create_key(store, Role.PUBLISHER, ["env.*"], department="市环保局")
    colleague, _ = await create_key(store, Role.PUBLISHER, ["env.*"], department="市环保局")
    await store.create_topic({"key": "env.noise", "name": "噪声监测", "domain": "environment",
                              "department": "市环保局", "channels": ["sms"], "supervision": "监督电话 12369"})
    await store.update_topic("env.noise", {"name": "噪声监测公告", "supervision": "监督电话 12369"})
    alert, _ = await publish_alert(store, _alert(), publisher)
    await publish_alert(store, _alert(msg_type="update", references=alert.id, headline="橙色预警调整"), publisher)
    other, _ = await publish_alert(store, _alert(), None)
    await cancel_alert(store, other.id, None)
    held, _ = await publish_alert(store, _alert(severity="extreme"), publisher, approval=HELD)
    await approve_alert(store, held.id, colleague)
    refused, _ = await publish_alert(store, _alert(severity="extreme"), publisher, approval=HELD)
    await reject_alert(store, refused.id, colleague, "数据未复核")
    await replace_population(store, rows_from_json([{"region": "140402", "group": None, "residents": 1000}]))
    await import_bytes(store, REGISTRY, "csv", ImportOptions(label="民政局 13700001111.csv"))
    await store.delete_subscriber(subscriber.id)
    await revoke_key(store, colleague.id)


async def test_every_act_is_one_entry_and_the_stored_chain_verifies(service: Service,
                                                                     make_subscriber: SubscriberFactory) -> None:
    """Publish, update, cancel, approve, reject, key create and revoke, topic create and update, population
    upload, import and erasure each append their entry; the chain read back from the table verifies."""
    await _every_act(service, make_subscriber)
    entries = await _entries(service.store)
    actions = {e["action"] for e in entries}
    assert actions == {a.value for a in AuditAction}
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    result = verify_chain(entries)
    assert isinstance(result, ChainOK) and result.count == len(entries)
    assert (await service.store.audit_head()).hash == result.head


async def test_acts_record_actor_role_department_and_object(service: Service) -> None:
    """A publisher's publish names its key, role and department, and the object `alert:<id>`."""
    publisher, _ = await create_key(service.store, Role.PUBLISHER, ["env.*"], department="市环保局")
    alert, _ = await publish_alert(service.store, _alert(), publisher)
    entries, _ = await service.store.audit_page(AuditFilter(action="alert.publish"), 10, None)
    assert [(e["actor"], e["role"], e["department"], e["object"]) for e in entries] == [
        (publisher.id, "publisher", "市环保局", f"alert:{alert.id}")]
    assert entries[0]["details"]["targeted"] == 0 and entries[0]["details"]["status"] == "active"


async def test_a_refused_act_leaves_no_entry(service: Service) -> None:
    """A publish refused inside its transaction (an update of a rejected alert) appends nothing."""
    publisher, _ = await create_key(service.store, Role.PUBLISHER, ["env.*"], department="市环保局")
    alert, _ = await publish_alert(service.store, _alert(severity="extreme"), publisher, approval=HELD)
    await reject_alert(service.store, alert.id, await _admin(service.store), "否")
    before = await service.store.audit_head()
    with pytest.raises(ConflictError, match="cannot be updated"):
        await publish_alert(service.store, _alert(msg_type="update", references=alert.id), publisher)
    assert await service.store.audit_head() == before


async def _admin(store: Store) -> KeyRecord:
    record, _ = await create_key(store, Role.ADMIN)
    return record


async def test_no_entry_ever_holds_a_contact(service: Service, make_subscriber: SubscriberFactory) -> None:
    """After every kind of act with subscribers' numbers, emails, openids and webhooks about, no entry holds
    one, and the log scrubber finds nothing to mask in any entry."""
    await _every_act(service, make_subscriber)
    text = json.dumps(await _entries(service.store), ensure_ascii=False)
    assert not [c for c in CONTACTS if c in text]
    assert scrub(text) == text
    assert "监督电话" not in text  # a topic's free texts stay out of its entries (digits alone could be in a hash)


# ---------------------------------------------------------------- tampering with the table itself


async def _tamper(store: Store, *statements: tuple[Any, ...]) -> None:
    """Change the table directly, as someone with the database's password would: (SQL, parameters…) each."""
    async with store.backend.transaction() as db:
        for statement, *params in statements:
            await db.execute(statement, *params)


async def _chain_of(service: Service, n: int) -> None:
    """n key creations after the catalogue's own entries."""
    for i in range(n):
        await create_key(service.store, Role.VIEWER, label=f"viewer {i}")


async def test_an_edited_row_is_found(service: Service) -> None:
    """Changing one entry's details is reported at that seq as changed."""
    await _chain_of(service, 3)
    head = (await service.store.audit_head()).seq
    await _tamper(service.store, ("UPDATE audit_log SET details = '{\"role\":\"admin\"}' WHERE seq = ?", head - 1))
    result = await _verify(service.store)
    assert isinstance(result, ChainBroken) and (result.seq, result.kind) == (head - 1, BreakKind.CHANGED)


async def test_a_deleted_row_is_found(service: Service) -> None:
    """Removing one entry is reported at its seq as removed."""
    await _chain_of(service, 3)
    head = (await service.store.audit_head()).seq
    await _tamper(service.store, ("DELETE FROM audit_log WHERE seq = ?", head - 1))
    result = await _verify(service.store)
    assert isinstance(result, ChainBroken) and (result.seq, result.kind) == (head - 1, BreakKind.REMOVED)


async def test_a_swapped_pair_of_rows_is_found(service: Service) -> None:
    """Swapping two entries' places (their seq numbers) is reported at the first as reordered."""
    await _chain_of(service, 3)
    a = (await service.store.audit_head()).seq - 2
    await _tamper(service.store, ("UPDATE audit_log SET seq = -1 WHERE seq = ?", a),
                  ("UPDATE audit_log SET seq = ? WHERE seq = ?", a, a + 1),
                  ("UPDATE audit_log SET seq = ? WHERE seq = -1", a + 1))
    result = await _verify(service.store)
    assert isinstance(result, ChainBroken) and (result.seq, result.kind) == (a, BreakKind.REORDERED)


async def test_the_cli_verifies_and_names_the_first_broken_entry(service: Service, tmp_path: Path) -> None:
    """`notifier audit verify` in its own process: exit 0 `audit: OK <n> entries head <hash>`; after a row is
    edited in the table, exit 1 `audit: BROKEN at <seq>: …` (SPEC's words, in any language)."""
    await _chain_of(service, 2)
    head = await service.store.audit_head()
    cli = Cli(tmp_path, service.settings.database.url)
    ok = await asyncio.to_thread(cli, "audit", "verify", lang=None)
    assert (ok.returncode, ok.stdout.strip()) == (0, f"audit: OK {head.seq} entries head {head.hash}"), ok.stderr
    await _tamper(service.store, ("UPDATE audit_log SET actor = 'someone-else' WHERE seq = ?", head.seq))
    broken = await asyncio.to_thread(cli, "audit", "verify", lang=None)
    assert broken.returncode == 1
    assert broken.stdout.startswith(f"audit: BROKEN at {head.seq}: changed")


# ---------------------------------------------------------------- concurrent writers


async def test_two_stores_writing_at_once_never_fork_the_chain(service: Service,
                                                               make_settings: SettingsFactory) -> None:
    """Two processes' stores on one database appending at once (key creations): seqs 1…n without a gap or a
    repeat, and the chain verifies (PostgreSQL: the advisory lock; SQLite: the write lock)."""
    from notifier.store import open_store

    other = await open_store(service.settings)
    try:
        await asyncio.gather(*(create_key(store, Role.VIEWER, label=f"k{i}")
                               for i in range(20) for store in (service.store, other)))
    finally:
        await other.close()
    entries = await _entries(service.store)
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert isinstance(verify_chain(entries), ChainOK)
    assert sum(e["action"] == "key.create" for e in entries) == 40
