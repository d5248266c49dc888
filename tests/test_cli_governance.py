"""Departments, approval and the audit chain from the command line, run as a user would: a real process, a real
database (tests/cli_run.py)."""

from __future__ import annotations

import json

import pytest

from notifier.audit import GENESIS
from notifier.config import load_settings
from notifier.database import open_database
from notifier.keys import create_key
from notifier.models import Role
from notifier.publish import check_alert, publish_alert
from tests.cli_run import Cli, one_line_failure

pytestmark = pytest.mark.both_backends

ALERT = {"topic": "env.heavy-pollution", "headline": "重污染天气红色预警", "severity": "extreme", "level": "red"}


def test_a_publisher_key_is_created_with_its_department_and_listed_with_it(cli: Cli) -> None:
    """`keys create --role publisher --department 市环保局 --topics 'env.*'` names the department; `keys list`
    shows it."""
    created = cli("keys", "create", "--role", "publisher", "--department", "市环保局", "--topics", "env.*")
    assert created.returncode == 0, created.stderr
    assert "of 市环保局" in created.stderr
    assert "市环保局" in cli("keys", "list").stdout


def test_a_publisher_key_without_a_known_department_is_one_line_and_nothing_is_created(cli: Cli) -> None:
    """A missing or unknown department is refused in one line naming the nearest department; exit 2."""
    missing = one_line_failure(cli("keys", "create", "--role", "publisher", "--topics", "env.*"))
    unknown = one_line_failure(cli("keys", "create", "--role", "publisher", "--topics", "env.*",
                                   "--department", "环保局"))
    assert "--department" in missing
    assert "did you mean '市环保局'?" in unknown
    assert "publisher" not in cli("keys", "list").stdout


def test_the_refusal_is_said_in_chinese_by_default(cli: Cli) -> None:
    """Without a language named, the one line starts in Chinese (the field's reason is the API's words)."""
    line = one_line_failure(cli("keys", "create", "--role", "publisher", "--topics", "env.*", lang=None))
    assert line.startswith("notifier：部门无效：department: ")


def test_publish_from_the_cli_waits_for_approval_when_the_rules_say_so(cli: Cli) -> None:
    """`notifier publish` goes through the same approval rules as the API: pending_approval, nothing sent."""
    cli.configure('[approval]\nseverities = ["extreme"]\n')
    alert = cli.cwd / "alert.json"
    alert.write_text(json.dumps(ALERT, ensure_ascii=False), encoding="utf-8")
    result = cli("publish", str(alert), "--wait")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[0])["status"] == "pending_approval"
    assert "waits for approval" in result.stderr


def test_audit_verify_on_a_new_database_is_ok_with_no_entries(cli: Cli) -> None:
    """Right after `db upgrade` the chain is empty and intact: exit 0, head 64 zeros — in any language."""
    assert cli("db", "upgrade").returncode == 0
    result = cli("audit", "verify", lang=None)
    assert (result.returncode, result.stdout.strip()) == (0, f"audit: OK 0 entries head {GENESIS}")


def test_audit_verify_counts_the_cli_acts(cli: Cli) -> None:
    """Creating and revoking a key from the CLI adds entries (actor cli) that verify."""
    key = cli("keys", "create", "--role", "admin").stdout.strip().splitlines()[-1]
    before = cli("audit", "verify").stdout
    cli("keys", "revoke", key)
    after = cli("audit", "verify")
    assert after.returncode == 0
    assert int(after.stdout.split()[2]) == int(before.split()[2]) + 1



async def test_audit_verify_against_a_witnessed_head_finds_a_cut_tail(cli: Cli) -> None:
    """Deleting the newest entries leaves a chain that checks by itself; `--witness SEQ:HASH` (the head seen before)
    still finds it: exit 1 naming the first missing seq."""
    store = await open_database(load_settings(cli.config, {}))
    try:
        for _ in range(3):  # three acts in the chain (in-process: the command under test is `audit verify`)
            await create_key(store, Role.VIEWER)
    finally:
        await store.close()
    _, _, count, _, _, head = cli("audit", "verify").stdout.split()
    assert cli("audit", "verify", "--witness", f"{count}:{head}").returncode == 0
    store = await open_database(load_settings(cli.config, {}))
    try:
        async with store.backend.transaction() as db:
            await db.execute("DELETE FROM audit_log WHERE seq >= ?", int(count) - 1)
    finally:
        await store.close()
    assert cli("audit", "verify").returncode == 0
    witnessed = cli("audit", "verify", "--witness", f"{count}:{head}")
    assert (witnessed.returncode, witnessed.stdout.split()[:4]) == (1, ["audit:", "BROKEN", "at", f"{int(count) - 1}:"])


def test_a_malformed_witness_is_one_line(cli: Cli) -> None:
    """`--witness` that is not SEQ:HASH is refused in one line before anything is read; exit 2."""
    assert "SEQ:HASH" in one_line_failure(cli("audit", "verify", "--witness", "3:nothex"))


APPROVAL = '[approval]\nseverities = ["extreme"]\n'


async def _held_by_a_publisher(cli: Cli) -> str:
    """A red warning held for approval, published by a publisher key of 市环保局 (not by the command line)."""
    cli.configure(APPROVAL)
    assert cli("keys", "create", "--role", "publisher", "--department", "市环保局", "--topics", "env.*").returncode == 0
    settings = load_settings(cli.config, {})
    store = await open_database(settings)
    try:
        key = next(k for k in await store.list_keys() if k.role == "publisher")
        alert, _ = await publish_alert(store, await check_alert(store, ALERT, key), key, approval=settings.approval)
    finally:
        await store.close()
    assert alert.status == "pending_approval"
    return alert.id


async def _status(cli: Cli, alert_id: str) -> str:
    store = await open_database(load_settings(cli.config, {}))
    try:
        alert = await store.get_alert(alert_id)
    finally:
        await store.close()
    assert alert is not None
    return alert.status


async def test_approvals_list_shows_what_waits_with_its_timeout(cli: Cli) -> None:
    """`approvals list` prints each held alert: its id, department, topic, severity in words and when the timeout
    rejects it."""
    alert_id = await _held_by_a_publisher(cli)
    listed = cli("approvals", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if alert_id in line)
    assert "市环保局" in line and "env.heavy-pollution" in line and "rejected as timed out at" in line
    assert "特别严重" in cli("approvals", "list", lang="zh-CN").stdout


async def test_an_admin_at_the_terminal_approves_a_publishers_alert(cli: Cli) -> None:
    """`approvals approve ID` releases the alert (active) and records `alert.approve` by actor cli in a chain that
    still verifies."""
    alert_id = await _held_by_a_publisher(cli)
    approved = cli("approvals", "approve", alert_id)
    assert approved.returncode == 0, approved.stderr
    assert f"approved {alert_id}" in approved.stdout
    assert await _status(cli, alert_id) == "active"
    store = await open_database(load_settings(cli.config, {}))
    try:
        entries = [e async for e in store.audit_stream()]
    finally:
        await store.close()
    assert (entries[-1]["action"], entries[-1]["actor"]) == ("alert.approve", "cli")
    assert cli("audit", "verify").returncode == 0
    assert "no alert waits for approval" in cli("approvals", "list").stdout


async def test_a_rejection_needs_a_reason_and_then_nothing_is_ever_sent(cli: Cli) -> None:
    """`approvals reject ID` without --reason is one line and changes nothing; with one the alert is rejected,
    and approving it afterwards is refused in one line (no longer waiting)."""
    alert_id = await _held_by_a_publisher(cli)
    assert "--reason" in one_line_failure(cli("approvals", "reject", alert_id))
    assert await _status(cli, alert_id) == "pending_approval"
    rejected = cli("approvals", "reject", alert_id, "--reason", "数据有误")
    assert rejected.returncode == 0, rejected.stderr
    assert await _status(cli, alert_id) == "rejected"
    assert "not waiting for approval" in one_line_failure(cli("approvals", "approve", alert_id))


def test_the_command_line_cannot_approve_what_it_published_itself(cli: Cli) -> None:
    """An alert published with `notifier publish` waits for someone else: the command line's approve is refused in
    one line and the alert still waits."""
    cli.configure(APPROVAL)
    alert = cli.cwd / "alert.json"
    alert.write_text(json.dumps(ALERT, ensure_ascii=False), encoding="utf-8")
    alert_id = json.loads(cli("publish", str(alert)).stdout.splitlines()[0])["id"]
    assert "published from the command line" in one_line_failure(cli("approvals", "approve", alert_id))
    assert alert_id in cli("approvals", "list").stdout


def test_approving_an_unknown_alert_is_one_line(cli: Cli) -> None:
    """A mistyped id: one line saying there is no such alert, exit 2."""
    assert cli("db", "upgrade").returncode == 0
    assert "no such alert" in one_line_failure(cli("approvals", "approve", "nope"))
