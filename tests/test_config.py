"""Configuration: one TOML file, overridden by NOTIFIER_<SECTION>__<KEY> environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from notifier.config import load_settings
from notifier.service import webhook_allows_private


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "notifier.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_use_an_embedded_sqlite_file() -> None:
    """With no file and no environment the service runs on sqlite:///notifier.db at 127.0.0.1:8080."""
    settings = load_settings(None, {})
    assert settings.database.url == "sqlite:///notifier.db"
    assert settings.server.base_url() == "http://127.0.0.1:8080"


def test_file_values_are_read(tmp_path: Path) -> None:
    """Sections of the TOML file set the matching settings, channel sections included."""
    path = _write(tmp_path, '[server]\nport = 9000\npublic_url = "https://notify.changzhi.gov.cn"\n'
                            '[channels.email]\nhost = "smtp.changzhi.gov.cn"\n')
    settings = load_settings(path, {})
    assert settings.server.port == 9000
    assert settings.server.base_url() == "https://notify.changzhi.gov.cn"
    assert settings.channels["email"]["host"] == "smtp.changzhi.gov.cn"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    """NOTIFIER_SERVER__PORT and NOTIFIER_DATABASE__URL win over the file."""
    path = _write(tmp_path, "[server]\nport = 9000\n")
    settings = load_settings(path, {"NOTIFIER_SERVER__PORT": "9100",
                                    "NOTIFIER_DATABASE__URL": "sqlite:////var/lib/notifier/n.db"})
    assert settings.server.port == 9100
    assert settings.sqlite_path() == Path("/var/lib/notifier/n.db")


def test_environment_reaches_nested_channel_sections() -> None:
    """NOTIFIER_CHANNELS__WEBHOOK__ALLOW_PRIVATE_NETWORKS=false is read as false, not as a non-empty string."""
    on = load_settings(None, {"NOTIFIER_CHANNELS__WEBHOOK__ALLOW_PRIVATE_NETWORKS": "true"})
    off = load_settings(None, {"NOTIFIER_CHANNELS__WEBHOOK__ALLOW_PRIVATE_NETWORKS": "false"})
    assert (webhook_allows_private(on), webhook_allows_private(off)) == (True, False)


def test_a_password_of_digits_stays_text() -> None:
    """A numeric password from the environment is kept exactly as written."""
    settings = load_settings(None, {"NOTIFIER_CHANNELS__EMAIL__PASSWORD": "00123"})
    assert settings.channels["email"]["password"] == "00123"


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    """A misspelt setting is an error, not silently ignored."""
    with pytest.raises(ValidationError):
        load_settings(_write(tmp_path, "[server]\nprot = 1\n"), {})


def test_an_unsupported_database_url_is_refused() -> None:
    """Only sqlite:/// and postgresql:// URLs are accepted."""
    with pytest.raises(ValidationError):
        load_settings(None, {"NOTIFIER_DATABASE__URL": "mysql://db/notifier"})
