"""SQLite: processes on one database file tell each other of queued deliveries through FIFOs beside it
(`notifier/store/queued_signs.py`), so that a red warning published by `notifier publish` beside `notifier serve`, or
by `notifier serve` beside a `notifier worker`, is sent at once rather than at the other process's next poll. Two
stores on one file here are two processes there: each has its own FIFO, and neither is told of its own work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from notifier.approval import approve_alert
from notifier.config import ApprovalSettings, Settings
from notifier.fakes.webhook_receiver import RunningReceiver
from notifier.keys import create_key
from notifier.models import Role
from notifier.publish import cancel_alert, publish_alert
from notifier.service import Service
from notifier.states import DeliveryStatus, Priority
from notifier.store.queued_signs import SUFFIX, QueuedSigns
from notifier.store.records import DeliveryUpdate
from tests.conftest import SettingsFactory
from tests.store.test_queue_wakes import (
    RED_WARNING,
    ROUTINE_NOTICE,
    WITHIN,
    _sent_once,
    _subscribe,
    failed_by_report,
)

Heard = tuple[str, int, str | None]


def _signs_dir(settings: Settings) -> Path:
    return Path(settings.database.url.removeprefix("sqlite:///") + SUFFIX)


def _listeners(settings: Settings) -> list[str]:
    """The FIFOs in place (a hidden one is still being made)."""
    with contextlib.suppress(FileNotFoundError):
        return [name for name in os.listdir(_signs_dir(settings)) if not name.startswith(".")]
    return []


@contextlib.asynccontextmanager
async def _watched(settings: Settings) -> AsyncIterator[tuple[Service, asyncio.Queue[Heard]]]:
    """A publishing service, and what another one's watch of the queue hears: ("queued", priority, alert id) and
    ("coming", priority, None)."""
    heard: asyncio.Queue[Heard] = asyncio.Queue()
    async with Service(settings) as publisher, Service(settings) as worker, worker.store.backend.queue_watch(
            lambda priority, alert_id: heard.put_nowait(("queued", priority, alert_id)),
            lambda priority: heard.put_nowait(("coming", priority, None))) as watch:
        assert watch.listening  # told of every delivery row queued: routine claims leave red ones to be told of
        yield publisher, heard


async def test_a_fan_out_committed_elsewhere_wakes_the_watcher_and_a_red_warning_is_announced_first(
        make_settings: SettingsFactory) -> None:
    async with _watched(make_settings()) as (publisher, heard):
        await _subscribe(publisher, "https://hooks.example.org/a")
        notice, _ = await publish_alert(publisher.store, ROUTINE_NOTICE, None)
        red, _ = await publish_alert(publisher.store, RED_WARNING, None)
        async with asyncio.timeout(WITHIN):
            assert [await heard.get() for _ in range(3)] == [
                ("queued", Priority.ROUTINE, notice.id), ("coming", Priority.LIFE_SAFETY, None),
                ("queued", Priority.LIFE_SAFETY, red.id)]


async def test_a_cancel_notice_queued_by_a_record_is_told_like_a_fan_out(make_settings: SettingsFactory) -> None:
    """A send in flight at its alert's cancel lands: the record that writes it queues the cancel notice's delivery
    (created now: nobody had been reached at the cancel) — a life-safety row the others are told of."""
    async with _watched(make_settings()) as (publisher, heard):
        await _subscribe(publisher, "https://hooks.example.org/a")
        alert, _ = await publish_alert(publisher.store, ROUTINE_NOTICE, None)
        now = time.time()
        [claimed] = await publisher.store.claim("slow-worker", now, now + 60, 10)
        await cancel_alert(publisher.store, alert.id, None)
        landed = DeliveryUpdate(claimed.id, alert.id, DeliveryStatus.DELIVERED, time.time())
        [notice] = (await publisher.store.record("slow-worker", [landed], time.time())).noticed
        async with asyncio.timeout(WITHIN):
            assert [await heard.get() for _ in range(2)] == [
                ("queued", Priority.ROUTINE, alert.id), ("queued", Priority.LIFE_SAFETY, notice.id)]


async def test_a_red_warnings_next_channel_queued_by_a_report_is_told_like_a_fan_out(
        make_settings: SettingsFactory) -> None:
    """A report that fails a red warning's WeChat message queues the person's next channel — a row updated, which no
    fan-out tells of: the store that applied it tells the others."""
    async with _watched(make_settings()) as (publisher, heard):
        red = await failed_by_report(publisher)
        async with asyncio.timeout(WITHIN):
            assert [await heard.get() for _ in range(3)] == [
                ("coming", Priority.LIFE_SAFETY, None), ("queued", Priority.LIFE_SAFETY, red),
                ("queued", Priority.LIFE_SAFETY, red)]


async def test_a_held_alert_tells_nobody_until_it_is_approved(make_settings: SettingsFactory) -> None:
    """Nothing is queued while it waits for approval; its approval queues its deliveries and says so."""
    async with _watched(make_settings()) as (publisher, heard):
        await _subscribe(publisher, "https://hooks.example.org/a")
        held, _ = await publish_alert(publisher.store, ROUTINE_NOTICE, None,
                                      approval=ApprovalSettings(topics=["env.*"]))
        await asyncio.sleep(0.1)
        assert heard.empty()
        admin, _ = await create_key(publisher.store, Role.ADMIN)
        await approve_alert(publisher.store, held.id, admin)
        async with asyncio.timeout(WITHIN):
            assert await heard.get() == ("queued", Priority.ROUTINE, held.id)


@contextlib.asynccontextmanager
async def _worker_beside(settings: SettingsFactory, webhook: str) -> AsyncIterator[Service]:
    """A publishing service with one subscriber (at `webhook`), and a worker on the same file that polls once an
    hour, listening already, its loops' first claims (which found nothing) over: only being told moves it."""
    publishing = settings()
    async with Service(publishing) as publisher, \
            Service(settings(worker={"enabled": True, "poll_interval": 3600})) as worker:
        await _subscribe(publisher, webhook)
        worker.start_worker()
        async with asyncio.timeout(WITHIN):
            while not _listeners(publishing):  # noqa: ASYNC110 - another task makes it
                await asyncio.sleep(0.01)  # its FIFO is in place: it listens
        await asyncio.sleep(0.5)
        yield publisher


async def test_a_worker_on_the_same_file_sends_a_red_warning_without_waiting_for_its_poll(
        make_settings: SettingsFactory, receiver: RunningReceiver) -> None:
    """The worker polls once an hour: only being told can make it claim the red warning."""
    async with _worker_beside(make_settings, receiver.url_for("/red")) as publisher:
        await publish_alert(publisher.store, RED_WARNING, None)
        await _sent_once(receiver, "/red")


async def test_a_red_warning_scheduled_elsewhere_is_sent_when_due_by_a_worker_that_polls_once_an_hour(
        make_settings: SettingsFactory, receiver: RunningReceiver) -> None:
    """Told of it when it is stored, the worker's life-safety loop sleeps until it is due, not for the hour."""
    async with _worker_beside(make_settings, receiver.url_for("/scheduled")) as publisher:
        soon = datetime.now(UTC) + timedelta(seconds=1)
        scheduled, _ = await publish_alert(publisher.store, RED_WARNING.model_copy(update={"scheduled_at": soon}),
                                           None)
        assert scheduled.status == "scheduled"
        await _sent_once(receiver, "/scheduled")


async def test_a_fifo_whose_process_is_gone_is_removed_and_the_others_are_still_told(tmp_path: Path) -> None:
    database = tmp_path / "notifier.db"
    heard: list[str] = []
    async with QueuedSigns(database).listening(heard.append):
        gone = Path(f"{database}{SUFFIX}") / "12345-0123456789abcdef"
        os.mkfifo(gone, 0o600)  # nobody reads it, as after a process was killed
        QueuedSigns(database).tell("3:alert")
        assert not gone.exists()
        async with asyncio.timeout(WITHIN):
            while not heard:  # noqa: ASYNC110 - the FIFO is read by the event loop
                await asyncio.sleep(0.01)
    assert heard == ["3:alert"]


async def test_a_listener_that_is_behind_never_holds_up_the_one_that_tells(tmp_path: Path) -> None:
    """Its pipe full (its process busy), what is told is dropped, not waited for; it hears what came before."""
    database = tmp_path / "notifier.db"
    heard: list[str] = []
    async with QueuedSigns(database).listening(heard.append):
        teller = QueuedSigns(database)
        for _ in range(5000):  # ~ 200 KB of lines, without giving the listener a turn: its pipe holds 64 KB
            teller.tell(f"{Priority.ROUTINE}:{'a' * 32}")
        async with asyncio.timeout(WITHIN):
            while len(heard) < 1000:  # noqa: ASYNC110 - the FIFO is read by the event loop
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
    assert 1000 <= len(heard) < 5000
    assert set(heard) == {f"{Priority.ROUTINE}:{'a' * 32}"}


async def test_a_line_that_is_no_sign_is_ignored_and_the_next_one_heard(
        make_settings: SettingsFactory) -> None:
    settings = make_settings()
    async with _watched(settings) as (publisher, heard):
        [name] = _listeners(settings)
        fifo = os.open(_signs_dir(settings) / name, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fifo, b"nonsense\n\xff\xfe\ncoming:\n")
        finally:
            os.close(fifo)
        publisher.store.backend.queued(Priority.LIFE_SAFETY, "an-alert")
        async with asyncio.timeout(WITHIN):
            assert await heard.get() == ("queued", Priority.LIFE_SAFETY, "an-alert")


async def test_a_store_is_not_told_of_its_own_fan_outs(make_settings: SettingsFactory) -> None:
    """A process wakes its own dispatcher itself (`Dispatcher.wake`); its FIFO is for the others' work."""
    heard: list[tuple[int, str | None]] = []
    async with Service(make_settings()) as service, service.store.backend.queue_watch(
            lambda priority, alert_id: heard.append((priority, alert_id))):
        await _subscribe(service, "https://hooks.example.org/a")
        await publish_alert(service.store, RED_WARNING, None)
        await asyncio.sleep(0.1)
    assert heard == []


async def test_a_process_that_cannot_make_its_fifo_still_runs_and_polls(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Its directory taken by a plain file (as a file system without FIFOs, or one it may not write, would refuse
    it): a warning, and the block runs; telling it costs its publisher nothing."""
    database = tmp_path / "notifier.db"
    Path(f"{database}{SUFFIX}").touch()  # noqa: ASYNC240 - a test's setup
    heard: list[str] = []
    with caplog.at_level(logging.WARNING, logger="notifier.store.queued_signs"):
        async with QueuedSigns(database).listening(heard.append) as listening:
            QueuedSigns(database).tell("3:alert")
            await asyncio.sleep(0.05)
    assert (listening, heard) == (False, [])  # its dispatcher's routine claims still take red rows: nothing tells
    assert "cannot listen for deliveries queued by other processes" in caplog.text
