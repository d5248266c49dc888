"""The PostgreSQL cases' gateway latency (`python -m bench.run --pg-latency MS`): the scale-out curve measured where
each worker is bound by its requests in flight, as against real endpoints, rather than by the machine's cores."""

from __future__ import annotations

import pytest

from bench import run


def test_postgresql_cases_wait_for_a_receiver_that_answers_late() -> None:
    args = run.parse_args(["--only", "pg", "--pg-workers", "1,2", "--pg-latency", "50"])
    cases = list(run.notifier_cases(args, {"pg"}))
    assert [(c.name, c.workers, c.weather.latency) for c in cases] == [
        ("postgresql webhook ×1 50ms", 1, 0.05), ("postgresql webhook ×2 50ms", 2, 0.05)]


def test_without_it_the_receiver_answers_at_once_and_the_cases_keep_their_names() -> None:
    args = run.parse_args(["--only", "pg", "--pg-workers", "1"])
    assert [(c.name, c.weather.latency) for c in run.notifier_cases(args, {"pg"})] == [
        ("postgresql webhook ×1", 0.0)]


def test_a_negative_delay_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        run.parse_args(["--only", "pg", "--pg-latency", "-5"])
    assert exit_.value.code == 2
    assert "--pg-latency" in capsys.readouterr().err.splitlines()[-1]
