"""The benchmark's smoke run (`python -m bench.run --smoke`): every case runs end to end on tiny sizes, against the
fakes in their own processes, and reports exact coverage and no duplicates. Nothing here is timed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import world

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
NOTIFIER_SHAPED = "bare: notifier's webhook requests, no store"


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the smoke run keeps each case's folder."""
    return tmp_path_factory.mktemp("kept")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory, kept: Path) -> tuple[list[dict[str, object]], str]:
    results = tmp_path_factory.mktemp("bench") / "RESULTS.md"
    out = subprocess.run([sys.executable, "-m", "bench.run", "--smoke", "--results", str(results), "--keep",
                          str(kept)], capture_output=True, text=True, cwd=REPO, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return rows, results.read_text(encoding="utf-8")


def test_the_reports_apply_benchmark_applies_every_report_of_a_kept_case(
        smoke: tuple[list[dict[str, object]], str], kept: Path) -> None:
    """`bench.apply_reports` on the kept database of the smoke run's Aliyun SMS case: its deliveries back to `sent`,
    their reports kept and applied, every one."""
    aliyun = next(folder for folder in sorted(kept.iterdir()) if (folder / "fake-sms.log").exists()
                  and 'provider = "aliyun"' in (folder / "notifier.toml").read_text(encoding="utf-8"))
    out = subprocess.run([sys.executable, "-m", "bench.apply_reports", "--db", str(aliyun / "bench.db"),
                          "--reports", "100"], capture_output=True, text=True, cwd=REPO, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ours #1: 100 reports (100 applied)" in out.stdout, out.stdout


def test_every_case_runs(smoke: tuple[list[dict[str, object]], str]) -> None:
    """The ceiling (before and after), webhook, WeChat, SMS (Aliyun and Tencent), mixed channels, PostgreSQL workers
    and peers each give a row."""
    names = {str(r["case"]) for r in smoke[0]}
    expected = {"bare aiohttp ceiling (before)", "bare aiohttp ceiling (after)", NOTIFIER_SHAPED, "sqlite webhook",
                "sqlite wechat", "sqlite sms (aliyun)", "sqlite sms (tencent)", "sqlite mixed 0ms 0%",
                "sqlite mixed 50ms 5%", "peer: naive"}
    if world.pg_reachable() is None:
        expected |= {"postgresql webhook ×1", "postgresql webhook ×2"}
    assert expected <= names


def test_the_cases_with_delivery_reports_count_everyone_reached(smoke: tuple[list[dict[str, object]], str]) -> None:
    """The gateways push their reports back (Aliyun's SmsReport, WeChat's events): every person ends up reached, and
    the fakes' own CPU is told apart."""
    rows = {str(r["case"]): r for r in smoke[0] if str(r["case"]).endswith("+ reports")}
    assert set(rows) == {"sqlite sms (aliyun) + reports", "sqlite wechat + reports"}
    for name, row in rows.items():
        assert row["reached"] == row["subscribers"], name
        assert isinstance(row["reports_per_s"], float) and row["reports_per_s"] > 0, name
        assert isinstance(row["fakes_cpu_s"], float) and row["fakes_cpu_s"] > 0, name


def test_a_red_warning_whose_sms_fails_by_report_reaches_its_next_channel(
        smoke: tuple[list[dict[str, object]], str]) -> None:
    """In the Aliyun SMS case with reports, a red warning that falls back is published to one person whose number's
    report says UNDELIV: the webhook after it is reached, and the time to it reported."""
    [row] = [r for r in smoke[0] if r["case"] == "sqlite sms (aliyun) + reports"]
    assert row["fallback_unfinished"] == 0
    assert isinstance(row["fallback_ms"], list) and len(row["fallback_ms"]) >= 1
    assert isinstance(row["fallback_p50_ms"], float) and row["fallback_p50_ms"] > 0
    assert "| fallback p50 |" in smoke[1]


def test_every_notifier_case_reaches_everyone_once(smoke: tuple[list[dict[str, object]], str]) -> None:
    """Each notifier case hands every targeted person to a gateway exactly once and records each send."""
    cases = [r for r in smoke[0] if r.get("backend")]
    assert cases
    for row in cases:
        assert row["handed_over"] == row["subscribers"] == row["targeted"], row["case"]
        assert row["duplicates"] == 0, row["case"]
        assert row["accepted_rate"] == 1.0, row["case"]


def test_every_notifier_case_times_a_read_of_its_alerts_whole_coverage(
        smoke: tuple[list[dict[str, object]], str]) -> None:
    """Each notifier case reports how long the coverage of its fan-out's alert took to read, every send recorded,
    and the table shows it."""
    cases = [r for r in smoke[0] if r.get("backend")]
    for row in cases:
        assert isinstance(row["coverage_read_ms"], float) and row["coverage_read_ms"] > 0, row["case"]
    assert "| coverage read |" in smoke[1]


def test_notifier_shaped_ceiling_sends_each_request_once(smoke: tuple[list[dict[str, object]], str]) -> None:
    """notifier's own webhook requests without the store (the ceiling of the request itself) all reach the
    receiver, each once."""
    [row] = [r for r in smoke[0] if r["case"] == NOTIFIER_SHAPED]
    assert row["handed_over"] == row["requests"] == row["subscribers"]
    assert row["duplicates"] == 0


def test_webhook_case_probes_small_red_warnings(smoke: tuple[list[dict[str, object]], str]) -> None:
    """While the webhook fan-out runs, at least one small red warning is published and reaches its recipient."""
    [row] = [r for r in smoke[0] if r["case"] == "sqlite webhook"]
    assert isinstance(row["probes"], int) and row["probes"] >= 1
    assert row["probe_p99_ms"] is not None


def test_results_file_describes_the_machine(smoke: tuple[list[dict[str, object]], str]) -> None:
    """The Markdown written holds the machine's description, the table and every case's JSON line."""
    text = smoke[1]
    assert "Machine:" in text and "CPython" in text and "| case |" in text
    assert text.count('{"case": ') == len(smoke[0])
