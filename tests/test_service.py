"""Opening the service: a wrong configuration is found before anything is opened, and an operator is warned at
start-up about a configuration that works but will disappoint."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from notifier.config_errors import ConfigError
from notifier.service import WARN_NO_VERIFICATION_TEMPLATE, WARN_VOICE_RECEIPTS_REFUSED, Service
from tests.conftest import SettingsFactory

ALIYUN = {"provider": "aliyun", "endpoint": "http://127.0.0.1:9", "sign_name": "长治市人民政府",
          "template_code": "SMS_1", "receipt_token": "t" * 32, "access_key_id": "id", "access_key_secret": "secret"}


@pytest.mark.empty_database
async def test_a_wrong_channel_section_is_refused_before_the_database_is_opened(
        make_settings: SettingsFactory, tmp_path: Path) -> None:
    """An unknown `tls` value stops `Service.open` with one line; no database file is created."""
    settings = make_settings(channels={"email": {"sender": "notify@changzhi.gov.cn", "tls": "ssl"}})
    with pytest.raises(ConfigError, match=r"^\[channels\.email\] tls: 'ssl' is not allowed"):
        async with Service(settings):
            pass
    assert not (tmp_path / "notifier.db").exists()


async def test_an_unknown_channel_kind_names_the_known_ones(make_settings: SettingsFactory) -> None:
    """`[channels.mail]` is refused with the kinds there are and the nearest one."""
    with pytest.raises(ConfigError, match=r"\[channels\.mail\]: unknown channel; allowed: .*\(did you mean email\?\)"):
        async with Service(make_settings(channels={"mail": {}})):
            pass


async def test_sms_without_a_verification_template_is_warned_about(
        make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture) -> None:
    """SMS configured without verification_template_code warns that /subscribe offers no SMS sign-up."""
    with caplog.at_level(logging.WARNING, logger="notifier.service"):
        async with Service(make_settings(channels={"sms": ALIYUN})):
            pass
    assert WARN_NO_VERIFICATION_TEMPLATE in caplog.text


async def test_sms_with_a_verification_template_is_not_warned_about(
        make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture) -> None:
    """With verification_template_code set, start-up says nothing about sign-up."""
    with caplog.at_level(logging.WARNING, logger="notifier.service"):
        async with Service(make_settings(channels={"sms": {**ALIYUN, "verification_template_code": "SMS_2"}})):
            pass
    assert "verification_template_code" not in caplog.text


VOICE = {"provider": "aliyun", "endpoint": "http://127.0.0.1:9", "tts_code": "TTS_1", "access_key_id": "id",
         "access_key_secret": "secret"}


async def test_voice_without_a_receipt_token_is_warned_about(
        make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture) -> None:
    """Voice configured without receipt_token warns that no call will count as reached."""
    with caplog.at_level(logging.WARNING, logger="notifier.service"):
        async with Service(make_settings(channels={"voice": VOICE})):
            pass
    assert WARN_VOICE_RECEIPTS_REFUSED in caplog.text


async def test_voice_with_a_receipt_token_is_not_warned_about(
        make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture) -> None:
    """With receipt_token set, start-up says nothing about call results."""
    with caplog.at_level(logging.WARNING, logger="notifier.service"):
        async with Service(make_settings(channels={"voice": {**VOICE, "receipt_token": "v" * 32}})):
            pass
    assert "[channels.voice]" not in caplog.text
