"""Departments, approval and the audit chain from the command line, run as a user would: a real process, a real
database file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from notifier.audit import GENESIS

ALERT = {"topic": "env.heavy-pollution", "headline": "重污染天气红色预警", "severity": "extreme", "level": "red"}


def notifier(tmp_path: Path, *args: str, approval: str = "") -> subprocess.CompletedProcess[str]:
    config = tmp_path / "notifier.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "cli.db"}"\n{approval}', encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "notifier.cli", *args[:1], "--config", str(config), *args[1:]],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)


def test_a_publisher_key_is_created_with_its_department_and_listed_with_it(tmp_path: Path) -> None:
    """`keys create --role publisher --department 市环保局 --topics 'env.*'` names the department; `keys list`
    shows it."""
    created = notifier(tmp_path, "keys", "create", "--role", "publisher", "--department", "市环保局",
                       "--topics", "env.*")
    assert created.returncode == 0, created.stderr
    assert "department=市环保局" in created.stderr
    assert "市环保局" in notifier(tmp_path, "keys", "list").stdout


def test_a_publisher_key_without_a_known_department_is_one_line_and_nothing_is_created(tmp_path: Path) -> None:
    """A missing or unknown department is refused in one line naming the nearest department; exit 2."""
    missing = notifier(tmp_path, "keys", "create", "--role", "publisher", "--topics", "env.*")
    unknown = notifier(tmp_path, "keys", "create", "--role", "publisher", "--topics", "env.*",
                       "--department", "环保局")
    for result in (missing, unknown):
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--department" in missing.stderr
    assert "did you mean '市环保局'?" in unknown.stderr
    assert "publisher" not in notifier(tmp_path, "keys", "list").stdout


def test_publish_from_the_cli_waits_for_approval_when_the_rules_say_so(tmp_path: Path) -> None:
    """`notifier publish` goes through the same approval rules as the API: pending_approval, nothing sent."""
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps(ALERT, ensure_ascii=False), encoding="utf-8")
    result = notifier(tmp_path, "publish", str(alert), "--wait", approval='[approval]\nseverities = ["extreme"]\n')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[0])["status"] == "pending_approval"
    assert "waits for approval" in result.stderr


def test_audit_verify_on_a_new_database_is_ok_with_no_entries(tmp_path: Path) -> None:
    """Right after `db upgrade` the chain is empty and intact: exit 0, head 64 zeros."""
    assert notifier(tmp_path, "db", "upgrade").returncode == 0
    result = notifier(tmp_path, "audit", "verify")
    assert (result.returncode, result.stdout.strip()) == (0, f"audit: OK 0 entries head {GENESIS}")


def test_audit_verify_counts_the_cli_acts(tmp_path: Path) -> None:
    """Creating and revoking a key from the CLI adds entries (actor cli) that verify."""
    key = notifier(tmp_path, "keys", "create", "--role", "admin").stdout.strip().splitlines()[-1]
    before = notifier(tmp_path, "audit", "verify").stdout
    notifier(tmp_path, "keys", "revoke", key)
    after = notifier(tmp_path, "audit", "verify")
    assert after.returncode == 0
    assert int(after.stdout.split()[2]) == int(before.split()[2]) + 1


def test_audit_verify_without_a_database_creates_none(tmp_path: Path) -> None:
    """Verifying where no database exists says so in one line (exit 2) and creates no file."""
    result = notifier(tmp_path, "audit", "verify")
    assert result.returncode == 2 and "nothing to verify" in result.stderr
    assert not list(tmp_path.glob("cli.db*"))
