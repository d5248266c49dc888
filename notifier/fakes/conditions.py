"""Weather for a fake gateway run as a process (benchmarks, soak runs): a fixed latency before every answer, a
share of requests refused as a transient failure at random, and a tally of what was accepted — how many, how many
of them repeated an item already accepted (the same webhook-id, the same phone number), and when the first and
the last were accepted (wall-clock seconds, so another process on the same machine can compare them with its own
`time.time()`).

    parser = argparse.ArgumentParser(); conditions.add_arguments(parser)
    weather = Conditions.from_args(args)
    if await weather.refuse():      # after the latency; True for about `fail_rate` of the requests
        return <the gateway's transient failure>
    weather.tally.accepted(keys)    # the items this request took (ids, or numbers — kept as hashes only)

Repeats are found with a set of the keys' hashes, so they cost ~60 bytes an item in the fake's process; only
`count_repeats` turns that on (a soak run of millions keeps counts only).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Tally:
    """What a fake accepted (never the items themselves: hashes, and only when counting repeats)."""

    count_repeats: bool = False
    accepted_items: int = 0
    requests: int = 0
    repeats: int = 0
    first_at: float | None = None
    last_at: float | None = None
    _seen: set[int] = field(default_factory=set)

    def accepted(self, keys: Iterable[str]) -> None:
        now = time.time()
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        self.requests += 1
        for key in keys:
            self.accepted_items += 1
            if self.count_repeats:
                digest = hash(key)
                if digest in self._seen:
                    self.repeats += 1
                else:
                    self._seen.add(digest)

    def reset(self) -> None:
        self.accepted_items = self.requests = self.repeats = 0
        self.first_at = self.last_at = None
        self._seen.clear()

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted_items, "accepted_requests": self.requests,
                "repeats": self.repeats if self.count_repeats else None,
                "first_at": self.first_at, "last_at": self.last_at}


@dataclass
class Conditions:
    """Latency and transient failures a fake applies to every request, and its tally."""

    latency: float = 0.0  # seconds before every answer
    fail_rate: float = 0.0  # share of requests refused as a transient failure
    tally: Tally = field(default_factory=Tally)
    _random: random.Random = field(default_factory=random.Random)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Conditions:
        return cls(latency=args.latency, fail_rate=args.fail_rate, tally=Tally(count_repeats=args.count_repeats),
                   _random=random.Random(args.seed))  # noqa: S311 - weather, not secrets

    async def refuse(self) -> bool:
        """Wait the latency; then whether this request is to fail transiently."""
        if self.latency:
            await asyncio.sleep(self.latency)
        return self.fail_rate > 0 and self._random.random() < self.fail_rate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before every answer (default 0)")
    parser.add_argument("--fail-rate", type=float, default=0.0,
                        help="share of requests answered with a transient failure, at random (default 0)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the random failures")
    parser.add_argument("--count-repeats", action="store_true",
                        help="count accepted items seen before (keeps a hash of each: ~60 bytes an item)")
