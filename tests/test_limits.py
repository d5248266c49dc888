"""The one rule of verification limits and the dashboard's sign-in throttle (notifier.limits), counted in the
store: a service-wide hourly cap, limits that two services on one database share, and a lockout after ten failed
sign-ins. Per client and per number limits through sign-up and resend: tests/test_verification.py; through the
pages (and /manage): tests/web/test_manage_request.py."""

from __future__ import annotations

import logging
import time

import pytest

from notifier import limits
from notifier.config import Settings
from notifier.limits import LoginThrottled, RateLimited, take_verification
from notifier.service import Service
from tests.conftest import SettingsFactory

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

SECRET = "limits-test-secret"


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings(server={"secret": SECRET}, verification={"hourly_cap": 3})


async def _ask(service: Service, client: str, mobile: str, now: float) -> None:
    await take_verification(service.store, service.secret, client=client, contacts=[("sms", mobile)],
                            hourly_cap=service.settings.verification.hourly_cap, now=now)


async def test_the_service_wide_cap_holds_across_clients_and_numbers(settings: Settings) -> None:
    """With `hourly_cap = 3`, three different clients and numbers get their codes; the fourth is refused until
    the first is an hour old."""
    now = time.time()
    async with Service(settings) as service:
        for i in range(3):
            await _ask(service, f"198.51.100.{i}", f"+86138000000{i:02d}", now + i)
        with pytest.raises(RateLimited) as refused:
            await _ask(service, "198.51.100.9", "+8613800000099", now + 10)
        assert refused.value.scope == limits.SCOPE_ALL and refused.value.retry_after == 3590
        await _ask(service, "198.51.100.9", "+8613800000099", now + 3601)


async def test_two_services_on_one_database_share_the_limits(settings: Settings) -> None:
    """A number's code counted by one web process is refused by another on the same database, and so is the
    cap; a service opened afresh (a restart) still remembers both."""
    now = time.time()
    async with Service(settings) as first, Service(settings) as second:
        await _ask(first, "198.51.100.1", "+8613800000001", now)
        with pytest.raises(RateLimited) as refused:
            await _ask(second, "198.51.100.2", "+8613800000001", now + 1)
        assert refused.value.scope == limits.SCOPE_SMS
        await _ask(second, "198.51.100.2", "+8613800000002", now + 2)
        await _ask(first, "198.51.100.3", "+8613800000003", now + 3)
    async with Service(settings) as restarted:
        with pytest.raises(RateLimited) as capped:
            await _ask(restarted, "198.51.100.4", "+8613800000004", now + 4)
        assert capped.value.scope == limits.SCOPE_ALL


async def test_a_refusal_is_logged_with_the_contact_and_client_masked(settings: Settings,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    """The log line of a refusal names the limit, the masked number and the client's network only."""
    now = time.time()
    async with Service(settings) as service:
        await _ask(service, "203.0.113.77", "+8613812345678", now)
        with caplog.at_level(logging.WARNING, logger="notifier.limits"), pytest.raises(RateLimited):
            await _ask(service, "203.0.113.77", "+8613812345678", now + 1)
    [line] = [r.getMessage() for r in caplog.records if r.name == "notifier.limits"]
    assert "sms-code" in line and "138****5678" in line and "203.0.x.x" in line and "203.0.113.77" not in line


async def test_ten_failed_sign_ins_lock_the_client_out_for_ten_minutes(settings: Settings) -> None:
    """Nine failures leave the client free; the tenth locks it for 10 minutes (other clients are free); after
    them it may try again."""
    now = time.time()
    async with Service(settings) as service:
        store, secret = service.store, service.secret
        for i in range(9):
            await limits.check_login(store, secret, "198.51.100.5", now + i)
            assert await limits.login_failed(store, secret, "198.51.100.5", now + i) is False
        assert await limits.login_failed(store, secret, "198.51.100.5", now + 9) is True
        with pytest.raises(LoginThrottled) as locked:
            await limits.check_login(store, secret, "198.51.100.5", now + 10)
        assert locked.value.status == 429 and locked.value.retry_after == 599
        await limits.check_login(store, secret, "198.51.100.6", now + 10)
        await limits.check_login(store, secret, "198.51.100.5", now + 9 + 600)
        assert await limits.login_failed(store, secret, "198.51.100.5", now + 9 + 600) is False


async def test_failures_spread_over_more_than_ten_minutes_do_not_lock(settings: Settings) -> None:
    """Ten failures, each more than a minute apart (never ten within 10 minutes), lock nothing."""
    now = time.time()
    async with Service(settings) as service:
        for i in range(12):
            assert await limits.login_failed(service.store, service.secret, "198.51.100.7", now + 67 * i) is False
        await limits.check_login(service.store, service.secret, "198.51.100.7", now + 67 * 12)
