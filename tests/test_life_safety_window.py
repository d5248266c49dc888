"""The life-safety window (notifier.life_safety): while a red warning is being published, claimed and sent, this
process starts no new routine work; routine work resumes as soon as nothing holds the window, and a hand-over
nobody takes cannot stall it."""

from __future__ import annotations

import asyncio
import contextlib

from notifier.life_safety import ROUTINE_SLICE, LifeSafetyWindow


async def _waits(window: LifeSafetyWindow, seconds: float = 0.05) -> bool:
    """Whether routine work asking for its turn now would still be waiting after `seconds`."""
    turn = asyncio.create_task(window.routine_turn())
    done, _ = await asyncio.wait([turn], timeout=seconds)
    if not done:
        turn.cancel()
    return not done


async def test_routine_work_goes_at_once_when_no_life_safety_work_is_at_hand() -> None:
    assert not await _waits(LifeSafetyWindow())


async def test_routine_work_waits_while_the_window_is_held_and_resumes_after() -> None:
    window = LifeSafetyWindow()
    with window.held():
        assert window.is_open
        turn = asyncio.create_task(window.routine_turn())
        await asyncio.sleep(0.02)
        assert not turn.done()
    await asyncio.wait_for(turn, 1)
    assert not window.is_open


async def test_routine_work_that_waits_at_most_a_while_goes_on_after_it_while_the_window_is_held() -> None:
    window = LifeSafetyWindow()
    with window.held():
        await asyncio.wait_for(window.routine_turn(at_most=0.05), 1)
        assert window.is_open


async def test_routine_work_on_many_items_lets_what_comes_meanwhile_run_after_a_slice() -> None:
    """A thousand items of routine work (a chunk's recipients, its answers) do not hold the event loop to the end:
    what becomes ready while the first ones are done — a red warning's request, read — runs after one slice."""
    window = LifeSafetyWindow()
    loop = asyncio.get_running_loop()
    done = 0
    came_after: list[int] = []

    def work(n: int) -> int:
        nonlocal done
        if n == 0:
            loop.call_soon(lambda: came_after.append(done))
        done += 1
        return n * 2

    assert await window.routine_map(work, range(1000)) == [n * 2 for n in range(1000)]
    assert came_after == [ROUTINE_SLICE]


async def test_what_follows_routine_work_on_many_items_gets_a_turn_of_its_own() -> None:
    """After more than a slice, what the caller does next with the items (a channel's own work on a chunk's
    recipients) is not joined to the last slice: what became ready during that slice runs first."""
    window = LifeSafetyWindow()
    loop = asyncio.get_running_loop()
    came: list[str] = []

    def work(n: int) -> int:
        if n == 999:
            loop.call_soon(came.append, "request")
        return n

    await window.routine_map(work, range(1000))
    came.append("the caller's next step")
    assert came == ["request", "the caller's next step"]


async def test_life_safety_work_on_many_items_is_done_at_once_even_while_the_window_is_held() -> None:
    window = LifeSafetyWindow()
    with window.held():
        assert await asyncio.wait_for(window.routine_map(str, range(1000), life_safety=True), 0.5) == [
            str(n) for n in range(1000)]


async def test_routine_work_on_many_items_does_none_of_them_while_the_window_is_held() -> None:
    window = LifeSafetyWindow()
    done: list[int] = []
    with window.held():
        work = asyncio.create_task(window.routine_map(done.append, range(1000)))
        await asyncio.sleep(0.05)
        assert done == []
    await asyncio.wait_for(work, 1)
    assert done == list(range(1000))


async def test_routine_work_on_many_items_waits_for_the_window_at_most_a_while_in_all() -> None:
    """Answers already in (sent, not recorded) wait `at_most` in all, not a wait a slice."""
    window = LifeSafetyWindow()
    with window.held():
        started = asyncio.get_running_loop().time()
        assert len(await asyncio.wait_for(window.routine_map(str, range(1000), at_most=0.1), 2)) == 1000
        assert asyncio.get_running_loop().time() - started < 0.35  # a wait a slice: 0.5 s or more
        assert window.is_open


async def test_the_window_stays_open_until_its_last_holder_lets_go() -> None:
    window = LifeSafetyWindow()
    with window.held():
        with window.held():
            pass
        assert await _waits(window)
    assert not await _waits(window)


async def test_a_hand_over_stays_open_until_the_life_safety_loop_has_taken_and_closed_it() -> None:
    """A publish hands the window over; it stays open across the gap until the claim loop's cycle closes it."""
    window = LifeSafetyWindow(hand_over_limit=10)
    with window.held():  # the publish
        window.hand_over()
    assert await _waits(window)
    taken = window.take_hand_overs()  # the life-safety loop's next cycle
    assert taken == 1 and await _waits(window)
    window.close_hand_overs(taken)
    assert not await _waits(window)


async def test_a_hand_over_nobody_takes_closes_by_itself() -> None:
    """A process whose claim loop is not running (or stuck) does not hold back routine work for ever."""
    window = LifeSafetyWindow(hand_over_limit=0.05)
    window.hand_over()
    assert window.is_open
    await asyncio.wait_for(window.routine_turn(), 1)
    assert not window.is_open and window.take_hand_overs() == 0


async def test_routine_work_waits_while_a_publish_has_its_key_checked() -> None:
    window = LifeSafetyWindow()
    with window.tentatively():
        assert await _waits(window)
    assert not await _waits(window)


async def test_a_refused_key_suspends_tentative_holds_for_a_second() -> None:
    """Requests with bad keys cannot keep routine work paused: after one is refused, the next key checks within a
    second hold nothing, and a held window still opens as before."""
    window = LifeSafetyWindow()
    with contextlib.suppress(PermissionError), window.tentatively():
        raise PermissionError("unknown API key")
    assert not window.is_open
    with window.tentatively():
        assert not await _waits(window)
    with window.held():
        assert window.is_open
