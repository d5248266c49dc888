"""The command line starts quickly for the commands an operator types most: those that only read or change the
database (keys, audit, approvals, db, coverage) do not import the service's channels, templates and HTTP client,
which took most of a second of every command's start-up (bench/RESULTS.md, twenty-first round). Checked in a
fresh interpreter, where nothing was imported before."""

from __future__ import annotations

import json
import subprocess
import sys

# Modules that only sending (the service, its channels, the templates, the HTTP client) needs.
SENDING = ("aiohttp", "jinja2", "notifier.service", "notifier.dispatch", "notifier.rendering", "channels.webhook")


def _imported_after(code: str) -> set[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    return set(json.loads(done.stdout))


def test_the_read_and_change_commands_start_without_the_sending_machinery() -> None:
    """Every handler of keys, audit, db, approvals and coverage, resolved as the command line resolves it."""
    loaded = _imported_after("from notifier import cli\n"
                             "for name in ('keys', 'audit', 'db', 'approvals', 'coverage'): cli.handler(name)")
    assert not loaded & set(SENDING), sorted(loaded & set(SENDING))


def test_the_modules_looked_for_are_those_the_service_loads() -> None:
    """A control, so that the test above cannot pass by looking for modules that do not exist: the service, as
    `publish` and `serve` import it when they run, loads every one of them."""
    loaded = _imported_after("from notifier import cli\ncli.handler('publish')\nimport notifier.service")
    assert set(SENDING) <= loaded
