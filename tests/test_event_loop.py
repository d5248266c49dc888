"""The event loop every command runs on (notifier.event_loop): uvloop when installed, asyncio's own when the
operator asks for it, and a clear one-line refusal of anything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier import cli, event_loop


async def _loop_name() -> str:
    return event_loop.running_loop_name()


def test_commands_run_on_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(event_loop.ENV, raising=False)
    assert event_loop.run(_loop_name).startswith("uvloop ")


def test_the_operator_can_ask_for_asyncios_own_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.ENV, "asyncio")
    assert event_loop.run(_loop_name) == "asyncio"


def test_an_unknown_loop_is_one_line_and_exit_2_and_nothing_runs(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setenv(event_loop.ENV, "tokio")
    for name in ("NOTIFIER_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "notifier.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "notifier.db"}"\n', encoding="utf-8")

    assert cli.main(["db", "upgrade", "--config", str(config)]) == 2

    said = capsys.readouterr().err
    assert said == "notifier：NOTIFIER_EVENT_LOOP='tokio' 不是可用的事件循环；请使用 uvloop, asyncio，或不设置该变量\n"
    assert not (tmp_path / "notifier.db").exists()  # the command never ran


def test_the_refusal_speaks_english_when_asked(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setenv(event_loop.ENV, "tokio")
    config = tmp_path / "notifier.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "notifier.db"}"\n', encoding="utf-8")
    assert cli.main(["--lang", "en", "db", "upgrade", "--config", str(config)]) == 2
    assert capsys.readouterr().err == ("notifier: NOTIFIER_EVENT_LOOP='tokio' is no event loop; use uvloop, asyncio, "
                                       "or leave it unset\n")


async def test_the_tests_run_on_the_products_loop() -> None:
    """What the suite checks is what runs in production: its async tests run on uvloop too (tests/conftest.py)."""
    assert event_loop.running_loop_name().startswith("uvloop ")
