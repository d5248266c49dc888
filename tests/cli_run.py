"""The `notifier` command line run as a user runs it: a real process, a TOML file naming this test's database (a
SQLite file, or a PostgreSQL schema of its own under `both_backends`), and an explicit language."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# What decides the command line's language (notifier.i18n.cli_lang); cleared so that only the test decides.
LANGUAGE_VARIABLES = ("NOTIFIER_LANG", "LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE")
Result = subprocess.CompletedProcess[str]


def cli_env(lang: str | None, **extra: str) -> dict[str, str]:
    """The environment without any language variable, then NOTIFIER_LANG=`lang` (None: the default, Chinese)."""
    env = {k: v for k, v in os.environ.items() if k not in LANGUAGE_VARIABLES}
    if lang is not None:
        env["NOTIFIER_LANG"] = lang
    return {**env, **extra}


class Cli:
    """`cli("publish", "alert.json", "--wait")` runs `notifier publish --config notifier.toml alert.json --wait` in
    `cwd`. English unless `lang` says otherwise (`lang=None`: what a user gets when nothing names a language)."""

    def __init__(self, cwd: Path, database_url: str) -> None:
        self.cwd = cwd
        self.database_url = database_url
        self.config = cwd / "notifier.toml"
        self.configure()

    def configure(self, extra: str = "") -> None:
        """The configuration file: this test's database, then `extra` TOML (channel sections…)."""
        self.config.write_text(f'[database]\nurl = "{self.database_url}"\n{extra}', encoding="utf-8")

    def __call__(self, command: str, *args: str, lang: str | None = "en", stdin: str | None = None,
                 timeout: float = 120, module: str = "notifier.cli") -> Result:
        head = [command] if module == "notifier.cli" else []
        return subprocess.run([sys.executable, "-m", module, *head, "--config", str(self.config), *args],
                              input=stdin, capture_output=True, text=True, timeout=timeout, cwd=self.cwd,
                              env=cli_env(lang), check=False)


def one_line_failure(result: Result, code: int = 2) -> str:
    """The single stderr line of a failed command (asserting there is exactly one, and no traceback)."""
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr and "Unclosed" not in result.stderr, result.stderr
    return lines[0]
