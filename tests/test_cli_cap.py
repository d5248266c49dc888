"""CAP 1.2 and the deadline contacts from the command line: `notifier publish` takes a CAP document as it takes
JSON, and refuses a hostile one or a wrong `[departments]` section in one line (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from notifier.localtime import LOCAL_TZ
from tests.cap.samples import document, zh_info
from tests.cli_run import Cli, one_line_failure

pytestmark = pytest.mark.both_backends


def cap_file(tmp_path: Path, prolog: str = '<?xml version="1.0" encoding="UTF-8"?>\n') -> Path:
    expires = (datetime.now(LOCAL_TZ) + timedelta(days=2)).replace(microsecond=0).isoformat()
    path = tmp_path / "warning.xml"
    path.write_bytes(document(infos=zh_info(**{"2026-11-28T18:00:00+08:00": expires}), prolog=prolog))
    return path


def test_publish_takes_a_cap_document(cli: Cli) -> None:
    """`notifier publish warning.xml` publishes the CAP alert; the same document again is the same alert."""
    path = cap_file(cli.cwd)
    first = cli("publish", str(path))
    assert first.returncode == 0, first.stderr
    accepted = json.loads(first.stdout.splitlines()[0])
    assert (accepted["status"], accepted["created"]) == ("active", True)
    again = json.loads(cli("publish", str(path)).stdout.splitlines()[0])
    assert (again["id"], again["created"]) == (accepted["id"], False)


def test_publish_refuses_a_cap_document_with_a_dtd_in_one_line(cli: Cli) -> None:
    """A document with an entity declaration: exit 2, one line naming the DTD, no traceback."""
    path = cap_file(cli.cwd, prolog='<?xml version="1.0"?>\n<!DOCTYPE alert [<!ENTITY x "扩展">]>\n')
    assert "DTD" in one_line_failure(cli("publish", str(path)))


def test_a_department_webhook_without_its_secret_is_a_configuration_error(cli: Cli) -> None:
    """[departments."市环保局"] webhook without webhook_secret: exit 2 naming the section and the fix."""
    cli.configure('[departments."市环保局"]\nwebhook = "https://hbj.example.org/hook"\n')
    line = one_line_failure(cli("publish", str(cap_file(cli.cwd))))
    assert "departments" in line and "webhook_secret" in line
