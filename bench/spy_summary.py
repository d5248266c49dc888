"""A py-spy raw profile (`record --threads --format raw`) summed per thread: its samples, and the functions with the
most of them, including what they call and on their own.

    .venv/bin/python -m bench.spy_summary /tmp/serve.raw --rate 250 --top 30
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_LINE = re.compile(r":\d+\)$")  # a frame's line number: summed per function
_SITE = re.compile(r" \(/\S*?site-packages/")  # a library's path, from its package on


@dataclass
class Thread:
    name: str
    samples: int = 0
    inclusive: Counter[str] = field(default_factory=Counter)
    own: Counter[str] = field(default_factory=Counter)


def threads(lines: Iterable[str]) -> list[Thread]:
    """The raw lines (`thread;frame;…;frame count`) summed per thread, the busiest first."""
    by_name: dict[str, Thread] = {}
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        name, *frames = stack.split(";")
        thread = by_name.get(name)
        if thread is None:
            thread = by_name[name] = Thread(name)
        n = int(count)
        thread.samples += n
        named = [_SITE.sub(" (", _LINE.sub(")", frame)) for frame in frames]
        for function in set(named):
            thread.inclusive[function] += n
        if named:
            thread.own[named[-1]] += n
    return sorted(by_name.values(), key=lambda t: t.samples, reverse=True)


def report(found: Sequence[Thread], rate: float, top: int) -> str:
    out: list[str] = []
    for thread in found:
        out.append(f"== {thread.name}: {thread.samples} samples, {thread.samples / rate:.1f} s")
        for title, counts in (("with what it calls", thread.inclusive), ("on its own", thread.own)):
            out.append(f"  {title}:")
            out += [f"    {n / rate:7.2f} s  {function}" for function, n in counts.most_common(top)]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("raw", type=Path, help="py-spy's raw output")
    p.add_argument("--rate", type=float, default=100.0, help="py-spy's samples a second (its -r; default 100)")
    p.add_argument("--top", type=int, default=25, help="functions shown per thread and kind")
    args = p.parse_args(argv)
    with args.raw.open(encoding="utf-8") as raw:
        print(report(threads(raw), args.rate, args.top))


if __name__ == "__main__":
    main()
