"""The `notifier` command line, run as a user would: a real process, a real database file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def notifier(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "notifier.toml"
    if not config.exists():
        config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "cli.db"}"\n', encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "notifier.cli", *args[:1], "--config", str(config), *args[1:]],
                          capture_output=True, text=True, timeout=timeout, cwd=tmp_path, check=False)


def test_keys_create_prints_the_key_alone_on_the_last_line(tmp_path: Path) -> None:
    """`keys create` shows the new key once, alone on the last line of stdout."""
    result = notifier(tmp_path, "keys", "create", "--role", "publisher", "--topics", "env.*")
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("ntf_pub_") and " " not in key


def test_keys_can_be_listed_and_revoked(tmp_path: Path) -> None:
    """A revoked key is listed as revoked."""
    key = notifier(tmp_path, "keys", "create", "--role", "admin").stdout.strip().splitlines()[-1]
    assert notifier(tmp_path, "keys", "revoke", key).returncode == 0
    listing = notifier(tmp_path, "keys", "list").stdout
    assert "revoked" in listing and key not in listing


def test_revoking_an_unknown_key_is_an_error(tmp_path: Path) -> None:
    """Revoking a key that does not exist says so and exits non-zero."""
    result = notifier(tmp_path, "keys", "revoke", "no-such-key")
    assert result.returncode == 2 and "no such key" in result.stderr


def test_db_upgrade_applies_migrations_once(tmp_path: Path) -> None:
    """The first upgrade applies the migrations; the second finds nothing to do."""
    first = notifier(tmp_path, "db", "upgrade")
    second = notifier(tmp_path, "db", "upgrade")
    assert "applied migrations: 1" in first.stdout
    assert "up to date" in second.stdout


def test_templates_check_passes_for_the_shipped_templates(tmp_path: Path) -> None:
    """Every catalogue topic renders on every channel in both locales."""
    result = notifier(tmp_path, "templates", "check")
    assert result.returncode == 0, result.stdout[-2000:]
    assert "0 with errors" in result.stdout


def test_publish_wait_delivers_and_prints_coverage(tmp_path: Path) -> None:
    """`publish FILE --wait` stores the alert and prints its coverage table."""
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps({"topic": "env.air-forecast", "headline": "明日空气质量良"}), encoding="utf-8")
    result = notifier(tmp_path, "publish", str(alert), "--wait")
    assert result.returncode == 0, result.stderr
    accepted = json.loads(result.stdout.splitlines()[0])
    assert accepted["targeted"] == 0 and accepted["created"] is True
    assert "Coverage" in result.stdout


def test_publish_refuses_a_bad_alert_with_a_clear_message(tmp_path: Path) -> None:
    """An alert with an unknown topic is refused with the field named."""
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps({"topic": "env.unknown", "headline": "x"}), encoding="utf-8")
    result = notifier(tmp_path, "publish", str(alert))
    assert result.returncode == 2 and "topic" in result.stderr


def test_coverage_of_an_unknown_alert_is_an_error(tmp_path: Path) -> None:
    """Asking for the coverage of an alert that does not exist says so."""
    result = notifier(tmp_path, "coverage", "0" * 32)
    assert result.returncode == 2 and "no alert" in result.stderr


@pytest.mark.slow
def test_demo_once_runs_the_whole_pipeline(tmp_path: Path) -> None:
    """`notifier demo --once` delivers a warning to thousands over fake gateways and prints its coverage."""
    result = subprocess.run([sys.executable, "-m", "notifier.cli", "demo", "--once"], capture_output=True,
                            text=True, timeout=300, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Coverage" in result.stdout and "By region" in result.stdout
    assert "targeted" in result.stdout
