"""Departments, approval and the audit chain from the command line, run as a user would: a real process, a real
database (tests/cli_run.py)."""

from __future__ import annotations

import json

import pytest

from notifier.audit import GENESIS
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
