"""CAP 1.2 and the deadline contacts from the command line: `notifier publish` takes a CAP document as it takes
JSON, and refuses a hostile one or a wrong `[departments]` section in one line."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from notifier.localtime import LOCAL_TZ
from tests.cap.samples import document, zh_info
from tests.test_cli import notifier


def cap_file(tmp_path: Path, prolog: str = '<?xml version="1.0" encoding="UTF-8"?>\n') -> Path:
    expires = (datetime.now(LOCAL_TZ) + timedelta(days=2)).replace(microsecond=0).isoformat()
    path = tmp_path / "warning.xml"
    path.write_bytes(document(infos=zh_info(**{"2026-11-28T18:00:00+08:00": expires}), prolog=prolog))
    return path


def test_publish_takes_a_cap_document(tmp_path: Path) -> None:
    """`notifier publish warning.xml` publishes the CAP alert; the same document again is the same alert."""
    path = cap_file(tmp_path)
    first = notifier(tmp_path, "publish", str(path))
    assert first.returncode == 0, first.stderr
    accepted = json.loads(first.stdout.splitlines()[0])
    assert (accepted["status"], accepted["created"]) == ("active", True)
    again = json.loads(notifier(tmp_path, "publish", str(path)).stdout.splitlines()[0])
    assert (again["id"], again["created"]) == (accepted["id"], False)


def test_publish_refuses_a_cap_document_with_a_dtd_in_one_line(tmp_path: Path) -> None:
    """A document with an entity declaration: exit 2, one line naming the DTD, no traceback."""
    path = cap_file(tmp_path, prolog='<?xml version="1.0"?>\n<!DOCTYPE alert [<!ENTITY x "扩展">]>\n')
    result = notifier(tmp_path, "publish", str(path))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "DTD" in result.stderr


def test_a_department_webhook_without_its_secret_is_a_configuration_error(tmp_path: Path) -> None:
    """[departments."市环保局"] webhook without webhook_secret: exit 2 naming the section and the fix."""
    config = tmp_path / "notifier.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "cli.db"}"\n'
                      '[departments."市环保局"]\nwebhook = "https://hbj.example.org/hook"\n', encoding="utf-8")
    result = notifier(tmp_path, "publish", str(cap_file(tmp_path)))
    assert result.returncode == 2
    assert "departments" in result.stderr and "webhook_secret" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
