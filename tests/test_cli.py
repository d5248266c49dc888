"""The `notifier` command line, run as a user would: a real process, a real database (a SQLite file, and a
PostgreSQL schema of its own for the commands that use one), in the language the user's environment names."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from notifier.cli import _parser
from notifier.fakes.webhook_receiver import RunningReceiver
from notifier.store.sqlite_db import BIG_TRANSACTION_ROWS
from tests.cli_run import Cli, cli_env, one_line_failure

pytestmark = pytest.mark.both_backends  # the tests that use `cli` run on SQLite and on PostgreSQL


def bare(*args: str, lang: str | None = "en", **env: str) -> subprocess.CompletedProcess[str]:
    """`notifier ARGS` with no configuration (what needs no database)."""
    return subprocess.run([sys.executable, "-m", "notifier.cli", *args], capture_output=True, text=True, timeout=60,
                          env=cli_env(lang, **env), check=False)


def write_alert(cli: Cli, **body: object) -> str:
    path = cli.cwd / "alert.json"
    path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    return str(path)


def test_keys_create_prints_the_key_alone_on_the_last_line(cli: Cli) -> None:
    """`keys create` shows the new key once, alone on the last line of stdout."""
    result = cli("keys", "create", "--role", "publisher", "--topics", "env.*", "--department", "市环保局")
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("ntf_pub_") and " " not in key


def test_keys_can_be_listed_and_revoked(cli: Cli) -> None:
    """A revoked key is listed as revoked."""
    key = cli("keys", "create", "--role", "admin").stdout.strip().splitlines()[-1]
    assert cli("keys", "revoke", key).returncode == 0
    listing = cli("keys", "list").stdout
    assert "revoked" in listing and key not in listing


def test_revoking_an_unknown_key_is_an_error(cli: Cli) -> None:
    """Revoking a key that does not exist says so and exits non-zero."""
    cli("db", "upgrade")
    assert one_line_failure(cli("keys", "revoke", "no-such-key")) == "notifier: no such key"


@pytest.mark.empty_database
def test_db_upgrade_applies_migrations_once(cli: Cli) -> None:
    """The first upgrade applies the migrations; the second finds nothing to do."""
    first = cli("db", "upgrade")
    second = cli("db", "upgrade")
    assert first.stdout.startswith("applied migrations: 1, ")
    assert second.stdout.strip() == "the database is up to date"


def test_templates_check_passes_for_the_shipped_templates(tmp_path: Path) -> None:
    """Every catalogue topic renders on every channel in both locales."""
    result = bare("templates", "check")
    assert result.returncode == 0, result.stdout[-2000:]
    assert "0 with errors" in result.stdout


def test_publish_wait_delivers_and_prints_coverage(cli: Cli) -> None:
    """`publish FILE --wait` stores the alert and prints its coverage table."""
    result = cli("publish", write_alert(cli, topic="env.air-forecast", headline="明日空气质量良"), "--wait")
    assert result.returncode == 0, result.stderr
    accepted = json.loads(result.stdout.splitlines()[0])
    assert accepted["targeted"] == 0 and accepted["created"] is True
    assert f"Coverage alert {accepted['id']}: targeted 0" in result.stdout


def test_a_district_imported_and_warned_from_the_command_line_ends_both_commands(cli: Cli) -> None:
    """A bureau imports 10,000 people and publishes to all of them: each command answers and exits (both used to
    hang for ever after storing a transaction that large, their store never closing)."""
    registry = cli.cwd / "registry.csv"
    registry.write_text("mobile,region,topics\n" + "".join(
        f"+86137{n:08d},140402,env.heavy-pollution\n" for n in range(BIG_TRANSACTION_ROWS)), encoding="utf-8")
    imported = cli("import", str(registry), timeout=60)
    assert imported.returncode == 0, imported.stderr
    published = cli("publish", write_alert(cli, topic="env.heavy-pollution", severity="moderate",
                                           urgency="expected", headline="重污染天气黄色预警", body="减少户外活动。"),
                    timeout=60)
    assert published.returncode == 0, published.stderr
    assert json.loads(published.stdout.splitlines()[0])["targeted"] == BIG_TRANSACTION_ROWS


def test_publish_refuses_a_bad_alert_with_a_clear_message(cli: Cli) -> None:
    """An alert with an unknown topic is refused with the field named."""
    line = one_line_failure(cli("publish", write_alert(cli, topic="env.unknown", headline="x")))
    assert line.startswith("notifier: the alert cannot be published as given: ") and "topic: " in line


def test_coverage_of_an_unknown_alert_is_an_error(cli: Cli) -> None:
    """Asking for the coverage of an alert that does not exist says so."""
    cli("db", "upgrade")
    assert one_line_failure(cli("coverage", "0" * 32)) == f"notifier: no alert {'0' * 32}"


@pytest.mark.slow
def test_demo_once_runs_the_whole_pipeline(tmp_path: Path) -> None:
    """`notifier demo --once` delivers a warning to thousands over fake gateways and prints its coverage."""
    result = subprocess.run([sys.executable, "-m", "notifier.cli", "demo", "--once"], capture_output=True,
                            text=True, timeout=300, cwd=tmp_path, env=cli_env("en"), check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Coverage" in result.stdout and "By district" in result.stdout
    assert "targeted" in result.stdout
    # Voice calls and grid workers' confirmations raise the elderly group's coverage.
    elderly = re.search(r"elderly: \d+ targeted, .* — (\d+) first reached by a voice call.*, (\d+) told by grid "
                        r"workers.*; without them", result.stdout)
    assert elderly is not None and int(elderly[1]) > 0 and int(elderly[2]) > 0, result.stdout[-3000:]


def import_sms_residents(cli: Cli, count: int = 4) -> None:
    registry = cli.cwd / "registry.csv"
    rows = "".join(f"1380000{i:04d},城区,老年人,重污染天气预警,短信\n" for i in range(count))
    registry.write_text("手机号,区县,人群,订阅主题,渠道\n" + rows, encoding="utf-8")
    result = cli("import", str(registry))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{count} rows read, {count} accepted, 0 rejected, {count} stored as active" in result.stdout


NOTHING_ATTEMPTED = {
    "en": ("nothing could be attempted for alert ", ": sms: this channel is not configured ([channels.sms] is "
                                                    "missing): nothing was sent (4)"),
    None: ("预警 ", " 没有任何投递能够尝试：sms：该渠道未配置（配置文件缺少 [channels.sms]），未能发送 / this channel "
                 "is not configured ([channels.sms] is missing): nothing was sent（4）"),
}


@pytest.mark.parametrize("lang", ["en", None])
def test_publish_wait_with_no_channel_to_send_on_says_why_and_fails(cli: Cli, lang: str | None) -> None:
    """Subscribers on SMS, SMS not configured: `publish --wait` names the cause in words and exits 1 — in
    Chinese with the English beside it by default, in English alone when asked."""
    import_sms_residents(cli)
    alert = write_alert(cli, topic="env.heavy-pollution", headline="重污染天气红色预警", severity="extreme",
                        regions=["城区"])
    result = cli("publish", alert, "--wait", lang=lang)
    assert result.returncode == 1, result.stderr
    assert "this channel is not configured ([channels.sms] is missing)" in result.stdout
    assert ("该渠道未配置（配置文件缺少 [channels.sms]）" in result.stdout) is (lang is None)
    assert "channel sms is not configured" in result.stdout  # the raw text, beside the words
    alert_id = json.loads(result.stdout.splitlines()[0])["id"]
    before, after = NOTHING_ATTEMPTED[lang]
    assert result.stderr.strip() == f"{before}{alert_id}{after}"


def test_coverage_shows_the_causes_of_failure_in_words(cli: Cli) -> None:
    """`notifier coverage` of an alert whose deliveries failed lists them by cause, with the raw text."""
    import_sms_residents(cli, count=2)
    published = cli("publish", write_alert(cli, topic="env.heavy-pollution", headline="重污染天气预警",
                                           severity="severe"), "--wait")
    alert_id = json.loads(published.stdout.splitlines()[0])["id"]
    result = cli("coverage", alert_id, lang=None)
    assert result.returncode == 0, result.stderr
    assert "失败原因 Why deliveries failed" in result.stdout and "this channel is not configured" in result.stdout
    assert "未送达原因 Why some were not reached — 所有渠道均失败 every channel failed: 2" in result.stdout


def test_an_alert_that_targets_nobody_is_published_with_a_warning(cli: Cli) -> None:
    """Publishing to a topic nobody subscribed to warns on stderr and still succeeds."""
    result = cli("publish", write_alert(cli, topic="transit.route-change", headline="3路公交线路调整"))
    assert result.returncode == 0
    assert "targets nobody" in result.stderr and "transit.route-change" in result.stderr


@pytest.mark.parametrize(("lang", "headers"), [("en", ("Awaiting receipt", "Reach rate")),
                                             (None, ("待回执", "送达率"))])
def test_tables_keep_their_headers_when_piped(cli: Cli, lang: str | None, headers: tuple[str, ...]) -> None:
    """Piped output (not a terminal) shows whole column headers, never `Awaiti…`, in either language."""
    result = cli("publish", write_alert(cli, topic="env.air-forecast", headline="明日空气质量良"), "--wait",
                 lang=lang)
    assert all(header in result.stdout for header in headers) and "…" not in result.stdout


# ---------------------------------------------------------------- the command line's language


def test_the_default_language_is_chinese(tmp_path: Path) -> None:
    """With no language named anywhere (or only the C locale), help and failures are in Chinese."""
    assert "显示本帮助并退出" in bare("--help", lang=None).stdout
    assert "显示本帮助并退出" in bare("--help", lang=None, LANG="C.UTF-8").stdout
    assert bare("pubish", lang=None).stderr.startswith("notifier：argument COMMAND: invalid choice")


@pytest.mark.parametrize("variable", ["LANG", "LC_MESSAGES", "LC_ALL"])
def test_an_english_locale_gives_english(tmp_path: Path, variable: str) -> None:
    """LANG, LC_MESSAGES or LC_ALL set to an English locale makes the command line speak English."""
    assert "show this help and exit" in bare("--help", lang=None, **{variable: "en_GB.UTF-8"}).stdout


def test_lang_option_beats_the_environment(tmp_path: Path) -> None:
    """`--lang zh-CN` wins over NOTIFIER_LANG=en and LANG; `--lang en` over NOTIFIER_LANG=zh-CN."""
    assert "显示本帮助并退出" in bare("--lang", "zh-CN", "--help", lang="en", LANG="en_US.UTF-8").stdout
    assert "show this help and exit" in bare("keys", "--help", "--lang=en", lang="zh-CN").stdout


def test_an_unsupported_language_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """`--lang fr` is refused in one line naming the languages there are."""
    line = one_line_failure(bare("--lang", "fr", "keys", "list"))
    assert line == "notifier：不支持的语言 'fr'，请使用 zh-CN, en"


def test_every_word_of_the_help_is_in_the_language(tmp_path: Path) -> None:
    """`notifier import --help` in Chinese: usage, section titles, options and the CSV columns epilog."""
    text = bare("import", "--help", lang="zh-CN", COLUMNS="200").stdout
    for words in ("用法：notifier import", "位置参数", "选项", "CSV 或 NDJSON 文件", "即使有行被拒绝", "CSV 列"):
        assert words in text, words
    assert "usage:" not in text and "show this help" not in text


def test_version_is_printed(tmp_path: Path) -> None:
    """`notifier --version` prints the installed version."""
    result = bare("--version")
    assert result.returncode == 0 and result.stdout.startswith("notifier 0.")


def test_import_help_lists_the_csv_columns(tmp_path: Path) -> None:
    """`notifier import --help` names every CSV column and its Chinese aliases."""
    result = bare("import", "--help", COLUMNS="200")
    for column in ("mobile (sms, phone, 手机", "region (区县", "topics (topic, 主题", "quiet_start", "NDJSON"):
        assert column in result.stdout


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_option_has_help_text(lang: str) -> None:
    """No option or argument of any command is left without a line of help, in either language."""
    from notifier.i18n import Words

    parser = _parser(Words(lang))
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in [("notifier", parser), *subparsers.choices.items()]:
        for action in sub._actions:
            assert action.help, f"{name}: {action.dest} has no help"


async def test_publish_wait_to_many_waits_for_the_rows_added_after_its_answer(
        cli: Cli, receiver: RunningReceiver) -> None:
    """A publish large enough to answer before its delivery rows exist (here 3 people or more, the rows added in one
    transaction after the answer): `--wait` sends to everyone and reports them reached — it does not take the moment
    before the rows for the end, and say nothing was attempted."""
    people = 3_000
    cli.configure(extra=f"deliveries_after_answer_from = 3\nfan_out_slice = {people}\n"
                        "[channels.webhook]\nallow_private_networks = true\n")
    registry = cli.cwd / "registry.csv"
    registry.write_text("webhook,region,topics\n" + "".join(
        f"{receiver.url_for(f'/p{n}')},140402,env.heavy-pollution\n" for n in range(people)), encoding="utf-8")
    imported = await asyncio.to_thread(cli, "import", str(registry))
    assert imported.returncode == 0, imported.stderr
    published = await asyncio.to_thread(cli, "publish", write_alert(
        cli, topic="env.heavy-pollution", severity="moderate", urgency="expected", headline="重污染天气黄色预警"),
        "--wait")
    assert published.returncode == 0, published.stderr
    assert f"targeted {people}, reached {people}" in published.stdout
    assert sum(len(receiver.requests_to(f"/p{n}")) for n in range(people)) == people
