"""`notifier demo` as a new user meets it: the serving demo keeps delivering what is published through its API,
and the README's walk-through against it works as written."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from notifier.config import load_settings
from notifier.store import open_store
from tests.cli_run import cli_env
from tests.invariants import timestamp_violations

README = Path(__file__).resolve().parents[1] / "README.md"
WALKTHROUGH = "### Try it against the demo"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def walkthrough() -> str:
    """The bash block of the README's "Try it against the demo" section."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(WALKTHROUGH):]
    return section.split("```bash\n", 1)[1].split("```", 1)[0]


@pytest.fixture
def serving_demo(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`notifier demo` serving on a free port (its address and admin key), stopped with SIGINT afterwards."""
    port = _free_port()
    log = tmp_path / "demo.log"
    env = cli_env("en", PYTHONUNBUFFERED="1", NOTIFIER_SERVER__PORT=str(port))  # its narration read in English
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "notifier.cli", "demo", "--subscribers", "600"],
                                   stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 120
        key = None
        while key is None and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            key = re.search(r"admin key \(shown once\): (ntf_adm_\S+)", log.read_text(encoding="utf-8"))
        assert key is not None, log.read_text(encoding="utf-8")[-3000:]
        base = re.search(r"serving the API on (http://\S+)", log.read_text(encoding="utf-8"))
        assert base is not None
        yield base.group(1), key.group(1)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _coverage(base: str, key: str, alert_id: str) -> dict[str, int]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
        async with http.get(f"{base}/v1/alerts/{alert_id}/coverage") as response:
            assert response.status == 200, await response.text()
            data: dict[str, int] = await response.json()
            return data


@pytest.mark.slow
async def test_the_readme_walkthrough_shows_an_alert_arriving_at_the_serving_demo(
        serving_demo: tuple[str, str], tmp_path: Path) -> None:
    """The README's curl commands, run against the serving demo, publish a red warning that reaches people."""
    base, key = serving_demo
    script = re.sub(r"^BASE=.*$", f"BASE={base}", walkthrough(), count=1, flags=re.M)
    script = re.sub(r"^KEY=.*$", f"KEY={key}", script, count=1, flags=re.M)
    script = script.replace(".venv/bin/notifier", f"{sys.executable} -m notifier.cli")
    script += 'echo "ALERT=$ID"\n'
    result = await asyncio.to_thread(subprocess.run, ["bash", "-euo", "pipefail", "-c", script],
                                     capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    alert_id = re.search(r"ALERT=([0-9a-f]{32})", result.stdout)
    assert alert_id is not None, result.stdout
    assert '"reached"' in result.stdout and "Coverage" in result.stdout
    first = await _coverage(base, key, alert_id.group(1))
    assert first["targeted"] > 0
    for _ in range(150):  # the worker and the receipts keep going after the walk-through's snapshot
        coverage = await _coverage(base, key, alert_id.group(1))
        if coverage["reached"] >= 0.8 * coverage["targeted"]:
            break
        await asyncio.sleep(0.2)
    assert coverage["reached"] >= first["reached"] and coverage["reached"] > 0


@pytest.mark.slow
async def test_demo_deliveries_keep_their_timestamps_in_order(tmp_path: Path) -> None:
    """No delivery of the demo's warning is delivered before it was sent, nor finished before either."""
    result = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "notifier.cli", "demo", "--once"],
                                     capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
                                     env=cli_env("en"))
    assert result.returncode == 0, result.stderr[-3000:]
    alert_id = re.search(r"published ([0-9a-f]{32})", result.stdout)
    assert alert_id is not None
    database = {"database": {"url": f"sqlite:///{tmp_path / 'notifier-demo.db'}"}}
    store = await open_store(load_settings(None, {}, database))
    try:
        violations = await timestamp_violations(store, alert_id.group(1))
    finally:
        await store.close()
    assert violations == []
