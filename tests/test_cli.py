"""The `notifier` command line, run as a user would: a real process, a real database file."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from notifier.cli import _parser


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
    # Voice calls and grid workers' confirmations raise the elderly group's coverage.
    elderly = re.search(r"elderly: \d+ targeted, .* — (\d+) first reached by a voice call.*, (\d+) told by grid "
                        r"workers.*; without them", result.stdout)
    assert elderly is not None and int(elderly[1]) > 0 and int(elderly[2]) > 0, result.stdout[-3000:]


def _import_sms_residents(tmp_path: Path, count: int = 4) -> None:
    registry = tmp_path / "registry.csv"
    rows = "".join(f"1380000{i:04d},城区,老年人,重污染天气预警,短信\n" for i in range(count))
    registry.write_text("手机号,区县,人群,订阅主题,渠道\n" + rows, encoding="utf-8")
    result = notifier(tmp_path, "import", str(registry))
    assert result.returncode == 0, result.stdout + result.stderr


def test_publish_wait_with_no_channel_to_send_on_says_why_and_fails(tmp_path: Path) -> None:
    """Subscribers on SMS, SMS not configured: `publish --wait` names the cause in words and exits 1."""
    _import_sms_residents(tmp_path)
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps({"topic": "env.heavy-pollution", "headline": "重污染天气红色预警",
                                 "severity": "extreme", "regions": ["城区"]}, ensure_ascii=False), encoding="utf-8")
    result = notifier(tmp_path, "publish", str(alert), "--wait")
    assert result.returncode == 1, result.stderr
    assert "该渠道未配置（配置文件缺少 [channels.sms]）" in result.stdout
    assert "channel sms is not configured" in result.stdout  # the raw text, beside the words
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("nothing could be attempted for alert ") and "[channels.sms] is missing" in line


def test_coverage_shows_the_causes_of_failure_in_words(tmp_path: Path) -> None:
    """`notifier coverage` of an alert whose deliveries failed lists them by cause, with the raw text."""
    _import_sms_residents(tmp_path, count=2)
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps({"topic": "env.heavy-pollution", "headline": "重污染天气预警",
                                 "severity": "severe"}), encoding="utf-8")
    published = notifier(tmp_path, "publish", str(alert), "--wait")
    alert_id = json.loads(published.stdout.splitlines()[0])["id"]
    result = notifier(tmp_path, "coverage", alert_id)
    assert result.returncode == 0, result.stderr
    assert "Why deliveries failed" in result.stdout and "this channel is not configured" in result.stdout
    assert "所有渠道均失败 every channel failed: 2" in result.stdout


def test_an_alert_that_targets_nobody_is_published_with_a_warning(tmp_path: Path) -> None:
    """Publishing to a topic nobody subscribed to warns on stderr and still succeeds."""
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps({"topic": "transit.route-change", "headline": "3路公交线路调整"}),
                     encoding="utf-8")
    result = notifier(tmp_path, "publish", str(alert))
    assert result.returncode == 0
    assert "targets nobody" in result.stderr and "transit.route-change" in result.stderr


def test_tables_keep_their_headers_when_piped(tmp_path: Path) -> None:
    """Piped output (not a terminal) shows whole column headers, never `awaiti…`."""
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps({"topic": "env.air-forecast", "headline": "明日空气质量良"}), encoding="utf-8")
    result = notifier(tmp_path, "publish", str(alert), "--wait")
    assert "awaiting receipt" in result.stdout and "reach rate" in result.stdout and "…" not in result.stdout


def test_version_is_printed(tmp_path: Path) -> None:
    """`notifier --version` prints the installed version."""
    result = subprocess.run([sys.executable, "-m", "notifier.cli", "--version"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0 and result.stdout.startswith("notifier 0.")


def test_import_help_lists_the_csv_columns(tmp_path: Path) -> None:
    """`notifier import --help` names every CSV column and its Chinese aliases."""
    result = subprocess.run([sys.executable, "-m", "notifier.cli", "import", "--help"], capture_output=True,
                            text=True, timeout=60, check=False, env={**os.environ, "COLUMNS": "200"})
    for column in ("mobile (sms, phone, 手机", "region (区县", "topics (topic, 主题", "quiet_start", "NDJSON"):
        assert column in result.stdout


def test_every_option_has_help_text() -> None:
    """No option or argument of any command is left without a line of help."""
    parser = _parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in [("notifier", parser), *subparsers.choices.items()]:
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"{name}: {action.dest} has no help"
