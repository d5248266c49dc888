"""Stopping the service's worker: a shutdown that is itself cancelled stops where it is."""

from __future__ import annotations

import asyncio

import pytest

from notifier.service import Service
from tests.conftest import SettingsFactory


async def test_a_shutdown_cancelled_as_the_worker_ends_stops_there(make_settings: SettingsFactory) -> None:
    """The process is told to stop (its shutdown cancelled) in the very turn the worker finishes: stopping the
    worker raises the cancellation instead of taking it for the worker's end and carrying on closing (asyncio's
    `wait_for` in Python 3.11 swallowed it)."""
    async with Service(make_settings(worker={"enabled": True})) as service:
        assert service.applier is not None
        service.applier.start()  # the delivery reports' task, which start_worker starts too
        before = asyncio.all_tasks()
        service.start_worker()
        [worker] = asyncio.all_tasks() - before
        stopping = asyncio.ensure_future(service.stop_worker())
        worker.add_done_callback(lambda _: stopping.cancel())  # runs before stop_worker hears of the end
        with pytest.raises(asyncio.CancelledError):
            await stopping
        assert worker.done()
