"""Child processes of a benchmark run: fakes and notifier processes started with a READY line, stopped by SIGTERM,
and a sampler of their memory and CPU (psutil) while a phase is measured."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

MB = 1024 * 1024


def clean_env() -> dict[str, str]:
    """The environment of a child: no NOTIFIER_* settings of the caller's shell leak into a case."""
    return {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}


@dataclass
class Child:
    """One started process and the first line it printed (READY <url>, WORKER READY …)."""

    name: str
    proc: subprocess.Popen[bytes]
    line: str

    @property
    def url(self) -> str:
        return self.line.split()[1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def child_env(code: Path | None = None) -> dict[str, str]:
    """A child's environment; with `code`, a checkout whose packages it imports instead of ours."""
    return clean_env() | ({"PYTHONPATH": str(code)} if code else {})


def run(argv: Sequence[str], *, log: Path, code: Path | None = None) -> None:
    """Run `python argv…` to its end (its output appended to `log`); CalledProcessError when it fails."""
    with log.open("ab") as out:
        subprocess.run([sys.executable, *argv], stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=child_env(code),
                       cwd=code, check=True)


def start(name: str, argv: Sequence[str], *, ready: str | None = "READY", timeout: float = 60.0,
          cwd: Path | None = None, log: Path | None = None, code: Path | None = None) -> Child:
    """Start `python argv…` and return once it printed a line starting with `ready` (None: at once); its stderr
    goes to `log`. `code`: a checkout whose packages the child imports instead of ours (before/after runs)."""
    stderr = log.open("ab") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, *argv], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL if ready is None else subprocess.PIPE,
                            stderr=stderr, env=child_env(code), cwd=code or cwd)
    if log is not None:
        stderr.close()  # type: ignore[union-attr]
    if ready is None:
        return Child(name, proc, "")
    assert proc.stdout is not None
    buffer, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for line in buffer.decode(errors="replace").splitlines() if line.startswith(ready)]
        if lines:
            return Child(name, proc, lines[0].strip())
        if select.select([proc.stdout], [], [], 0.1)[0]:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buffer += chunk
    Child(name, proc, "").stop()
    raise RuntimeError(f"{name} did not start: {buffer.decode(errors='replace')[-500:]!r}"
                       + (f" (see {log})" if log else ""))


@dataclass
class Usage:
    """Peak RSS per process and CPU seconds (user + system) spent between `begin` and `end`."""

    peak_rss: dict[int, int] = field(default_factory=dict)
    cpu_start: dict[int, float] = field(default_factory=dict)
    cpu_end: dict[int, float] = field(default_factory=dict)

    @property
    def peak_rss_mb(self) -> float:
        """The largest process's peak."""
        return max(self.peak_rss.values(), default=0) / MB

    @property
    def peak_rss_sum_mb(self) -> float:
        return sum(self.peak_rss.values()) / MB

    @property
    def cpu_s(self) -> float:
        return sum(self.cpu_end.get(pid, cpu) - cpu for pid, cpu in self.cpu_start.items())


def _high_water(p: psutil.Process) -> int:
    """The process's peak RSS so far (Linux VmHWM: exact, whatever the sampling missed); 0 elsewhere."""
    try:
        for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cpu(p: psutil.Process) -> float:
    times = p.cpu_times()
    return float(times.user + times.system)


def named_cpu(name: str) -> float:
    """CPU seconds so far of every process called `name` (the PostgreSQL server's backends)."""
    total = 0.0
    for p in psutil.process_iter(["name"]):
        if p.info["name"] == name:
            try:
                total += _cpu(p)
            except psutil.Error:
                pass
    return total


class Sampler:
    """Samples the RSS of some processes every 0.1 s in a thread, and their CPU at the start and the end; with
    `server`, also the CPU of every process of that name (backends that exit meanwhile are not counted)."""

    def __init__(self, pids: Sequence[int], server: str | None = None, others: Sequence[int] = ()) -> None:
        self.procs = [psutil.Process(pid) for pid in pids]
        self.usage = Usage()
        self.server = server
        self.server_cpu_s: float | None = None
        # Processes whose CPU alone is wanted (the fake gateways: whether they, not notifier, set the pace)
        self.others = [psutil.Process(pid) for pid in others]
        self.others_cpu_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def begin(self) -> None:
        if self.server:
            self.server_cpu_s = -named_cpu(self.server)
        self.others_cpu_s = -sum(_cpu(p) for p in self.others)
        for p in self.procs:
            self.usage.cpu_start[p.pid] = _cpu(p)
            self.usage.peak_rss[p.pid] = p.memory_info().rss
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for p in self.procs:
                try:
                    self.usage.peak_rss[p.pid] = max(self.usage.peak_rss[p.pid], p.memory_info().rss)
                except psutil.Error:
                    pass

    def end(self) -> Usage:
        self._stop.set()
        self._thread.join()
        for p in self.procs:
            try:
                self.usage.cpu_end[p.pid] = _cpu(p)
                self.usage.peak_rss[p.pid] = max(self.usage.peak_rss[p.pid], p.memory_info().rss, _high_water(p))
            except psutil.Error:
                self.usage.cpu_end[p.pid] = self.usage.cpu_start[p.pid]
        if self.server and self.server_cpu_s is not None:
            self.server_cpu_s += named_cpu(self.server)
        self.others_cpu_s += sum(_cpu(p) for p in self.others)
        return self.usage
