"""`notifier serve` as an operator runs it: a real process with API and workers, driven over HTTP."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from notifier.fakes.webhook_receiver import RunningReceiver
from tests.cli_run import cli_env
from tests.served import free_port, serve, wait_listening


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A `notifier serve` process on a free port (webhooks to loopback allowed) and an admin key for it."""
    with serve(tmp_path) as running:
        yield running


async def test_publish_over_http_reaches_a_webhook_subscriber(served: tuple[str, str],
                                                              receiver: RunningReceiver) -> None:
    """Create a subscriber, publish, and watch coverage reach 100 % — all through the running server's API."""
    base, key = served
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(f"{base}/healthz") as r:
            assert r.status == 200
        body = {"contacts": {"webhook": receiver.url_for("/serve")}, "region": "140402", "groups": ["elderly"],
                "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["webhook"]}]}
        async with http.post(f"{base}/v1/subscribers", json=body) as r:
            assert r.status == 201, await r.text()
            secret = (await r.json())["contacts"]["webhook_secret"]
        alert = {"topic": "env.heavy-pollution", "headline": "重污染天气橙色预警", "severity": "severe",
                 "level": "orange", "regions": ["140402"], "groups": ["elderly"]}
        async with http.post(f"{base}/v1/alerts", json=alert, headers={"Idempotency-Key": "serve-1"}) as r:
            assert r.status == 202, await r.text()
            accepted = await r.json()
        assert accepted["targeted"] == 1
        coverage: dict[str, object] = {}
        for _ in range(100):
            async with http.get(f"{base}/v1/alerts/{accepted['id']}/coverage") as r:
                coverage = await r.json()
            if coverage["reached"] == 1:
                break
            await asyncio.sleep(0.1)
    assert coverage["coverage_rate"] == 1.0
    [request] = receiver.requests_to("/serve")
    assert json.loads(request.body)["headline"] == "重污染天气橙色预警"
    assert secret.startswith("whsec_")


def test_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """SIGTERM (systemd, docker stop) ends `notifier serve` with exit code 0 after finishing what is in flight."""
    port = free_port()
    config = tmp_path / "notifier.toml"
    config.write_text(f'[server]\nport = {port}\n[database]\nurl = "sqlite:///{tmp_path / "stop.db"}"\n',
                      encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "notifier.cli", "serve", "--config", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_on_a_taken_port_says_so(tmp_path: Path) -> None:
    """A port already in use is a clear error and a non-zero exit, not a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "notifier.toml"
        config.write_text(f'[server]\nport = {port}\n[database]\nurl = "sqlite:///{tmp_path / "t.db"}"\n',
                          encoding="utf-8")
        result = subprocess.run([sys.executable, "-m", "notifier.cli", "serve", "--config", str(config)],
                                capture_output=True, text=True, timeout=60, check=False, env=cli_env("en"))
    assert result.returncode == 2
    assert "cannot serve" in result.stderr and "Traceback" not in result.stderr
