"""`python -m notifier.worker --config FILE`: delivery workers without the API — exactly `notifier worker`.

For scale-out: several worker processes can run against one database, beside or instead of `notifier serve`;
leases keep them from sending the same delivery twice, and a worker that dies has its claims reclaimed by the
others. Prints `WORKER READY` once it is working; SIGTERM or SIGINT stops it gracefully (the batches in flight
are finished and recorded first). This module is only the entry point: the command line (`notifier.cli`) reads
the arguments and the configuration and says any failure in one line, and `notifier.commands.cmd_worker` works.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from notifier import cli


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(["worker", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
