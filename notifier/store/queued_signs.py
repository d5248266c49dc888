"""On SQLite, processes on one database file tell each other of queued deliveries, as PostgreSQL's LISTEN/NOTIFY
does for its workers: without it a red warning published by `notifier publish` beside `notifier serve`, or by
`notifier serve` beside a `notifier worker`, waited for the other process's next poll (`[worker] poll_interval`,
0.5 s by default).

Each process that delivers keeps a FIFO of its own in `<database>-queued/` (mode 0700) and reads it on its event
loop; a process that queued deliveries writes one line to every FIFO there but its own — the same payloads as
PostgreSQL's channel: `<priority>:<alert id>` once they are committed, `coming:<priority>` when a life-safety
publish begins. FIFOs, not sockets: a Unix socket's path is limited to 108 bytes, a database's is not. Nothing here
is needed for correctness — the poll stays beneath it — so every failure to tell is ignored: a FIFO whose process is
gone (no reader: ENXIO) is removed, one whose reader is behind (its pipe full) already has wakes enough waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path

log = logging.getLogger(__name__)

SUFFIX = "-queued"
_READ_BYTES = 65536
_MESSAGE_BYTES = 512  # under PIPE_BUF (POSIX: at least 512): a line is written whole or not at all


class QueuedSigns:
    """The FIFOs of the processes delivering from one database file."""

    def __init__(self, database: Path) -> None:
        self._dir = Path(f"{database}{SUFFIX}")
        self._own: set[str] = set()  # this store's own FIFOs: it wakes its own dispatcher itself

    @contextlib.asynccontextmanager
    async def listening(self, heard: Callable[[str], None]) -> AsyncIterator[bool]:
        """Every line written to this process's FIFO goes to `heard`, on the event loop, while the block runs;
        the block is given whether the FIFO could be made (else nothing is heard)."""
        name = f"{os.getpid()}-{secrets.token_hex(8)}"
        fifo = self._made(name)
        if fifo is None:
            yield False
            return
        reading, keeping = fifo
        self._own.add(name)
        loop = asyncio.get_running_loop()
        loop.add_reader(reading, _Lines(heard).read, reading)
        try:
            yield True
        finally:
            loop.remove_reader(reading)
            self._own.discard(name)
            (self._dir / name).unlink(missing_ok=True)
            os.close(keeping)
            os.close(reading)

    def _made(self, name: str) -> tuple[int, int] | None:
        """The FIFO `name`, made and opened: its read end and a write end of its own; None when it cannot be."""
        hidden, opened = self._dir / f".{name}", []
        try:
            self._dir.mkdir(mode=0o700, exist_ok=True)
            os.mkfifo(hidden, 0o600)
            # The reader first (a FIFO opened to write without one fails), and a writer of its own, without which
            # a read finds the end of the file after each writer closes (and the loop would be told it is readable
            # forever); renamed into place only then, so that nobody takes it for a dead process's FIFO.
            opened.append(os.open(hidden, os.O_RDONLY | os.O_NONBLOCK))
            opened.append(os.open(hidden, os.O_WRONLY | os.O_NONBLOCK))
            os.rename(hidden, self._dir / name)
            return opened[0], opened[1]
        except OSError as exc:  # a directory it may not write, a file system without FIFOs: the poll it is
            log.warning("cannot listen for deliveries queued by other processes in %s (%s): found at each poll",
                        self._dir, exc)
            for fd in opened:
                os.close(fd)
            with contextlib.suppress(OSError):
                hidden.unlink(missing_ok=True)
            return None

    def tell(self, message: str) -> None:
        """Write `message` as a line to every other process's FIFO, never waiting for any of them."""
        data = f"{message}\n".encode()
        if len(data) > _MESSAGE_BYTES:
            raise ValueError(f"a queued sign is at most {_MESSAGE_BYTES} bytes")
        try:
            names = os.listdir(self._dir)
        except FileNotFoundError:
            return  # nobody has listened on this database yet
        except OSError as exc:
            log.debug("cannot tell of queued deliveries in %s: %s", self._dir, exc)
            return
        for name in names:
            if name.startswith(".") or name in self._own:
                continue
            path = self._dir / name
            try:
                fifo = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # nobody reads it: its process is gone
                    path.unlink(missing_ok=True)
                else:
                    log.debug("cannot tell %s of queued deliveries: %s", name, exc)
                continue
            try:
                os.write(fifo, data)
            except BlockingIOError:
                pass  # its reader is behind: wakes enough are waiting for it
            except OSError as exc:
                log.debug("cannot tell %s of queued deliveries: %s", name, exc)
            finally:
                os.close(fifo)


class _Lines:
    """What a FIFO gives, a line at a time (a read may end within one)."""

    def __init__(self, heard: Callable[[str], None]) -> None:
        self._heard = heard
        self._rest = b""

    def read(self, fifo: int) -> None:
        try:
            data = os.read(fifo, _READ_BYTES)
        except BlockingIOError:
            return
        *lines, self._rest = (self._rest + data).split(b"\n")
        self._rest = self._rest[-_MESSAGE_BYTES:]  # never a line that long: whatever wrote it is not ours
        for line in lines:
            try:
                self._heard(line.decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                log.debug("ignored a line in the queued FIFO that is not a queued sign")
