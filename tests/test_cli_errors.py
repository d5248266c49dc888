"""Every `notifier` failure a new user can cause is one actionable line and a non-zero exit, never a traceback:
run as a user runs it, in a real process, on a real (or deliberately absent) database — the commands that reach
their database on SQLite and on PostgreSQL — in English (`NOTIFIER_LANG=en`) unless a test says otherwise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_run import Cli, cli_env, one_line_failure

pytestmark = pytest.mark.both_backends  # the tests that use `cli` run on SQLite and on PostgreSQL

BAD_CHANNELS = {
    "unknown provider": ('[channels.sms]\nprovider = "aliyn"\n',
                         "[channels.sms] provider must be one of aliyun, tencent; got 'aliyn'"),
    "missing keys": ('[channels.sms]\nprovider = "aliyun"\nsign_name = "长治市人民政府"\n',
                     "[channels.sms] template_code, access_key_id, access_key_secret: required, not set"),
    "bad tls": ('[channels.email]\nsender = "notify@changzhi.gov.cn"\ntls = "ssl"\n',
                "[channels.email] tls: 'ssl' is not allowed; use 'none', 'starttls' or 'tls'"),
    "unknown channel": ("[channels.smss]\nprovider = \"aliyun\"\n",
                        "[channels.smss]: unknown channel; allowed: email, sms, voice, webhook, wechat "
                        "(did you mean sms?)"),
    "misspelt key": ('[channels.email]\nsender = "notify@changzhi.gov.cn"\nprot = 25\n',
                     "[channels.email] prot: unknown key; allowed: host, port,"),
}


def run(tmp_path: Path, *args: str, config: str = "", timeout: float = 60, module: str = "notifier.cli",
        lang: str | None = "en") -> subprocess.CompletedProcess[str]:
    """`notifier ARGS --config notifier.toml` with `config` after a [database] on a SQLite file in tmp_path (for
    failures that come before any database is reached)."""
    path = tmp_path / "notifier.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "cli.db"}"\n{config}', encoding="utf-8")
    return subprocess.run([sys.executable, "-m", module, *args, "--config", str(path)], capture_output=True,
                          text=True, timeout=timeout, cwd=tmp_path, env=cli_env(lang), check=False)


def bare(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`notifier ARGS` without --config, in English, in tmp_path."""
    return subprocess.run([sys.executable, "-m", "notifier.cli", *args], capture_output=True, text=True,
                          timeout=60, check=False, cwd=tmp_path, env=cli_env("en"))


@pytest.mark.parametrize("case", list(BAD_CHANNELS))
def test_serve_with_a_wrong_channel_section_exits_at_once_with_one_line(tmp_path: Path, case: str) -> None:
    """A wrong [channels.*] section stops `notifier serve` at once: exit 2, one line naming section and key."""
    config, expected = BAD_CHANNELS[case]
    line = one_line_failure(run(tmp_path, "serve", config=config, timeout=30))
    assert line.startswith("notifier: configuration error: ") and expected in line
    assert not (tmp_path / "cli.db").exists()  # refused before the database was touched


@pytest.mark.parametrize("command", ["worker", "publish"])
def test_worker_and_publish_refuse_a_wrong_channel_section_in_one_line(tmp_path: Path, command: str) -> None:
    """`worker` and `publish` say the same line as serve for a bad `tls`, not a traceback."""
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps({"topic": "env.air-forecast", "headline": "明日空气质量良"}), encoding="utf-8")
    config, expected = BAD_CHANNELS["bad tls"]
    args = [command, str(alert)] if command == "publish" else [command]
    assert expected in one_line_failure(run(tmp_path, *args, config=config, timeout=30))


def test_python_m_notifier_worker_refuses_a_wrong_channel_section_like_notifier_worker(tmp_path: Path) -> None:
    """`python -m notifier.worker` with a bad channel section: the same one line and exit 2 as `notifier worker`."""
    config, expected = BAD_CHANNELS["unknown provider"]
    line = one_line_failure(run(tmp_path, config=config, timeout=30, module="notifier.worker"))
    assert line == one_line_failure(run(tmp_path, "worker", config=config, timeout=30))
    assert line.startswith("notifier: configuration error: ") and expected in line


def test_a_misspelt_server_key_suggests_the_right_one(tmp_path: Path) -> None:
    """`prot` under [server] is named with the allowed keys and `port` suggested; no pydantic dump."""
    line = one_line_failure(run(tmp_path, "serve", config="[server]\nprot = 8080\n"))
    assert "[server] prot: unknown key" in line and "(did you mean port?)" in line
    assert "pydantic" not in line


def test_configuration_errors_are_said_in_chinese_by_default(tmp_path: Path) -> None:
    """With no language named, the same mistake is one Chinese line, section and key as written."""
    line = one_line_failure(run(tmp_path, "serve", config="[server]\nprot = 8080\n", lang=None))
    assert line.startswith("notifier：配置错误：[server] prot：未知的配置项；可用：host, port")
    assert line.endswith("（是否应为 port？）")


def test_publish_of_a_missing_file_says_so(tmp_path: Path) -> None:
    """A publish file that is not there is one line naming it."""
    assert one_line_failure(run(tmp_path, "publish", "nope.json")) == "notifier: no such file: nope.json"


def test_publish_of_broken_json_names_line_and_column(tmp_path: Path) -> None:
    """A file that is not JSON is one line with where the JSON breaks."""
    alert = tmp_path / "alert.json"
    alert.write_text('{"topic": "env.air-forecast",\n "headline" "x"}', encoding="utf-8")
    line = one_line_failure(run(tmp_path, "publish", str(alert)))
    assert "is not valid JSON" in line and "line 2, column 13" in line


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig"])
def test_publish_reads_gbk_and_utf8_with_a_bom_like_import(cli: Cli, encoding: str) -> None:
    """An alert saved as GBK or as UTF-8 with a BOM is published, Chinese intact."""
    alert = cli.cwd / "alert.json"
    alert.write_bytes(json.dumps({"topic": "env.air-forecast", "headline": "明日空气质量良", "regions": ["城区"]},
                                 ensure_ascii=False).encode(encoding))
    result = cli("publish", str(alert))
    assert result.returncode == 0, result.stderr
    alert_id = json.loads(result.stdout.splitlines()[0])["id"]
    shown = json.loads(cli("coverage", alert_id, "--json").stdout)
    assert shown["alert_id"] == alert_id


def test_publish_lists_every_problem_of_the_body_at_once(cli: Cli) -> None:
    """A bad severity, an unknown district and an unknown group are reported together, names suggested."""
    alert = cli.cwd / "alert.json"
    alert.write_text(json.dumps({"topic": "env.air-forecast", "headline": "x", "severity": "huge",
                                 "regions": ["城西"], "groups": ["老人"]}, ensure_ascii=False), encoding="utf-8")
    line = one_line_failure(cli("publish", str(alert)))
    assert "severity:" in line
    assert "regions: unknown region '城西' (did you mean 城区?)" in line
    assert "groups: unknown group '老人' (did you mean 老年人?)" in line


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    """A PostgreSQL url nobody answers on is named (password hidden), not a traceback."""
    path = tmp_path / "pg.toml"
    path.write_text('[database]\nurl = "postgresql://notifier:s3cret@127.0.0.1:1/notifier"\n', encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "notifier.cli", "keys", "list", "--config", str(path)],
                            capture_output=True, text=True, timeout=60, check=False, env=cli_env("en"))
    line = one_line_failure(result)
    assert "cannot open the database postgresql://notifier:***@127.0.0.1:1/notifier" in line
    assert "s3cret" not in result.stderr


def test_a_usage_mistake_is_one_line_pointing_at_help(tmp_path: Path) -> None:
    """A misspelt command is one line that points at --help."""
    result = bare(tmp_path, "pubish")
    assert "invalid choice: 'pubish'" in one_line_failure(result) and "--help" in result.stderr


@pytest.mark.parametrize("args", [["templates", "check"], ["keys", "list"], ["coverage", "0" * 32],
                                  ["keys", "revoke", "ntf_adm_x"]])
def test_read_only_commands_never_create_a_database(tmp_path: Path, args: list[str]) -> None:
    """Without --config, `templates check`, `keys list`, `coverage` and `keys revoke` leave no notifier.db."""
    result = bare(tmp_path, *args)
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("notifier.db*")), result.stderr
    if args[0] == "coverage":
        assert "there is no database at notifier.db" in one_line_failure(result)


def test_a_publisher_key_needs_explicit_topics(cli: Cli) -> None:
    """`keys create --role publisher` without --topics is refused: every topic must be asked for with '*'."""
    line = one_line_failure(cli("keys", "create", "--role", "publisher"))
    assert line.startswith("notifier: the topic patterns are not valid: topics: a publisher key needs topic "
                           "patterns (--topics)") and "'*' for every topic" in line
    everything = cli("keys", "create", "--role", "publisher", "--topics", "*")
    assert everything.returncode == 0 and "for the topics *;" in everything.stderr


def test_a_topic_pattern_must_match_the_catalogue(cli: Cli) -> None:
    """A malformed pattern and one that matches no topic are both refused, in one line, nothing created."""
    line = one_line_failure(cli("keys", "create", "--role", "publisher", "--topics", "not a pattern!!", "envv.*"))
    assert "'not a pattern!!' is not a topic pattern" in line
    assert "'envv.*' matches no topic in the catalogue (did you mean 'env.*'?)" in line
    assert "ntf_" not in cli("keys", "list").stdout


def test_a_refusal_of_the_core_is_framed_in_chinese_by_default(cli: Cli) -> None:
    """The catalogue's words for the refusal itself, the field's reason as the API says it."""
    line = one_line_failure(cli("keys", "create", "--role", "publisher", "--topics", "envv.*", lang=None))
    assert line.startswith("notifier：主题模式无效：topics: 'envv.*' matches no topic in the catalogue")
