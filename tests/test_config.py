"""Configuration: one TOML file, overridden by NOTIFIER_<SECTION>__<KEY> environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.config import load_settings
from notifier.config_errors import ConfigError
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


def test_a_misspelt_key_is_named_with_its_section_and_the_nearest_known_key(tmp_path: Path) -> None:
    """`prot` under [server] is refused in one line naming the section, the allowed keys and `port`."""
    with pytest.raises(ConfigError) as refused:
        load_settings(_write(tmp_path, "[server]\nprot = 1\n"), {})
    message = str(refused.value)
    assert message.startswith("[server] prot: unknown key; allowed: host, port,")
    assert "(did you mean port?)" in message and "\n" not in message and "pydantic" not in message


def test_an_unknown_section_is_named(tmp_path: Path) -> None:
    """A misspelt section is refused with the sections there are and the nearest one."""
    with pytest.raises(ConfigError, match=r"\[servr\]: unknown section; allowed: server, .*did you mean server"):
        load_settings(_write(tmp_path, "[servr]\nport = 1\n"), {})


def test_an_unsupported_database_url_is_refused() -> None:
    """Only sqlite:/// and postgresql:// URLs are accepted, and the error says which."""
    with pytest.raises(ConfigError, match=r"^\[database\] url: database url must be sqlite:///path or postgresql"):
        load_settings(None, {"NOTIFIER_DATABASE__URL": "mysql://db/notifier"})


def test_a_value_of_the_wrong_type_says_what_it_should_be(tmp_path: Path) -> None:
    """A port that is not a number is refused with the key and the expected type, never the pydantic URL."""
    with pytest.raises(ConfigError) as refused:
        load_settings(_write(tmp_path, '[server]\nport = "eighty"\n'), {})
    assert str(refused.value).startswith("[server] port: should be a valid integer")
    assert "errors.pydantic.dev" not in str(refused.value)


def test_broken_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    """A TOML syntax error is one line with the file and where the error is."""
    path = _write(tmp_path, "[server]\nport 8080\n")
    with pytest.raises(ConfigError, match=r"notifier\.toml is not valid TOML: .*line 2"):
        load_settings(path, {})


def test_a_missing_configuration_file_is_named(tmp_path: Path) -> None:
    """A --config path that does not exist is said so, with the path."""
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_settings(tmp_path / "nope.toml", {})
