"""A before/after run of the benchmark (`--compare CHECKOUT`) puts each case on its own code's schema: the "before"
case's database is migrated by the checkout it runs, not by the benchmark's own code — otherwise a pair of a
migration would compare one schema twice."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from notifier.store.migrate import migrations

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def _latest_version(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        return int(conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0])


def test_the_before_case_runs_on_the_schema_of_its_own_checkout(tmp_path: Path) -> None:
    # A checkout with one migration more than ours (harmless: a table nobody reads). Not one with a migration
    # fewer: our code may name what our newest migration makes (an index hint), which that schema would lack.
    before = tmp_path / "before"
    for package in ("notifier", "channels", "subscriptions", "templates"):
        shutil.copytree(REPO / package, before / package, ignore=shutil.ignore_patterns("__pycache__"))
    newest, _ = migrations()[-1]
    (before / f"notifier/store/migrations/{newest + 1:04d}_only_before.sql").write_text(
        "CREATE TABLE only_before (x INTEGER);\n", encoding="utf-8")
    kept = tmp_path / "kept"
    out = subprocess.run([sys.executable, "-m", "bench.run", "--only", "sms", "--sms", "60", "--probes", "0",
                          "--compare", str(before), "--keep", str(kept), "--results", str(tmp_path / "RESULTS.md")],
                         capture_output=True, text=True, cwd=REPO, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    first, second = sorted(kept.iterdir())  # the before case, then the after case
    assert _latest_version(first / "bench.db") == newest + 1
    assert _latest_version(second / "bench.db") == newest
