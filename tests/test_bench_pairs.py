"""The benchmark's before/after comparison (`python -m bench.run --compare CHECKOUT --pairs N`): on a shared machine
the second case of a pair tends to be the slower, so every second pair runs the other code first."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import run


def test_compared_pairs_alternate_which_code_runs_first(tmp_path: Path) -> None:
    args = run.parse_args(["--only", "webhook", "--compare", str(tmp_path), "--pairs", "3"])
    cases = list(run.notifier_cases(args, {"webhook"}))
    assert [c.name for c in cases] == [
        "sqlite webhook [before]", "sqlite webhook [after]",
        "sqlite webhook [after #2]", "sqlite webhook [before #2]",
        "sqlite webhook [before #3]", "sqlite webhook [after #3]"]
    assert all((c.code == tmp_path.resolve()) == ("before" in c.name) for c in cases)


def test_one_pair_by_default_before_first(tmp_path: Path) -> None:
    args = run.parse_args(["--only", "sms", "--compare", str(tmp_path)])
    assert [c.name for c in run.notifier_cases(args, {"sms"})] == [
        "sqlite sms (aliyun) [before]", "sqlite sms (aliyun) [after]"]


@pytest.mark.parametrize("argv", [["--pairs", "0", "--compare", "."], ["--pairs", "2"]])
def test_pairs_that_cannot_be_run_are_refused_in_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """No pairs, or pairs with nothing to compare against: an error naming the flag, not a silent single run."""
    with pytest.raises(SystemExit) as exit_:
        run.parse_args(argv)
    assert exit_.value.code == 2
    assert "--pairs" in capsys.readouterr().err.splitlines()[-1]
