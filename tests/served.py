"""`notifier serve` as a real process on a free loopback port, for tests that drive it over HTTP from outside
(the serve tests, the schema fuzzer, whose HTTP client is synchronous and so cannot share the test's loop)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, seconds: float = 30) -> bool:
    """Whether something listens on 127.0.0.1:`port` within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.1)
    return False


@contextlib.contextmanager
def serve(folder: Path, extra_config: str = "") -> Iterator[tuple[str, str]]:
    """(base url, admin key) of a `notifier serve` on a SQLite file in `folder` (webhooks to loopback allowed;
    `extra_config`: more TOML), stopped with SIGTERM at the end; its output is in `folder/serve.log`."""
    port = free_port()
    config = folder / "notifier.toml"
    config.write_text(f'[server]\nport = {port}\n[database]\nurl = "sqlite:///{folder / "serve.db"}"\n'
                      f'[channels.webhook]\nallow_private_networks = true\n{extra_config}', encoding="utf-8")
    key = subprocess.run([sys.executable, "-m", "notifier.cli", "keys", "create", "--role", "admin", "--config",
                          str(config)], capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    log = (folder / "serve.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "notifier.cli", "serve", "--config", str(config)],
                               stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert wait_listening(port), "notifier serve did not start listening"
        yield f"http://127.0.0.1:{port}", key
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
