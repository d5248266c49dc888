"""The sign-up core (notifier.verification): codes kept as HMACs, expiry, attempts, per-number and per-address
limits counted in the database, email links, WeChat scene binding, activation and the 24-hour purge.

SMS goes to a recording stand-in for the channel's `send_verification` (the web tests use the Aliyun fake over
HTTP); email goes to the fake SMTP server of the `service` fixture.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from channels.base import DeliveryResult, Message, Outcome, Recipient
from channels.wechat import WechatEvent
from notifier import limits, tokens, verification
from notifier.fakes.smtp import RunningSmtp
from notifier.models import AlertIn
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.verification import (
    CODE_TTL,
    CONSENT_VERSION,
    PENDING_TTL,
    SCENE_TTL,
    RateLimited,
    SignUp,
)
from subscriptions.models import SubscriberIn

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

MOBILE = "+8613812340002"
EMAIL = "wang.fang@example.org"
OPENID = "oVerifyBindTest0000000000001"
PUBLIC = "https://notify.example.gov.cn"
HOURLY_CAP = 1000


class RecordingSms:
    """Stands in for an SMS channel: records (number, code) of each verification it is asked to send."""

    kind = "sms"
    max_batch = 1
    max_chars = None
    rate_per_second = None
    confirms_by_receipt = True

    def __init__(self, outcome: Outcome = Outcome.ACCEPTED) -> None:
        self.sent: list[tuple[str, str]] = []
        self.outcome = outcome

    async def send(self, message: Message, recipients: list[Recipient]) -> list[DeliveryResult]:
        return []

    async def aclose(self) -> None:
        return None

    async def send_verification(self, phone: str, code: str) -> DeliveryResult:
        self.sent.append((phone, code))
        return DeliveryResult("verification", self.outcome)


@pytest.fixture
def sms() -> RecordingSms:
    return RecordingSms()


def _channels(service: Service, sms: RecordingSms) -> dict[str, Any]:
    return {**service.channels, "sms": sms, "wechat": object()}


async def _sign_up(service: Service, sms: RecordingSms, *, contacts: dict[str, str] | None = None,
                   wechat: bool = False, client: str = "192.0.2.1", now: float | None = None,
                   topic: str = "env.heavy-pollution", region: str = "140402") -> SignUp:
    contacts = contacts if contacts is not None else {"sms": MOBILE}
    subscriptions = [{"topic": topic, "channels": list(contacts)}]
    body = SubscriberIn.model_validate({"contacts": contacts, "region": region, "consent_source": "web",
                                        "subscriptions": subscriptions})
    return await verification.sign_up(service.store, _channels(service, sms), secret=service.secret,
                                      public_url=PUBLIC, body=body, wants_wechat=wechat, client=client,
                                      hourly_cap=HOURLY_CAP, now=now)


async def _resend(service: Service, sms: RecordingSms, subscriber_id: str, *, client: str = "192.0.2.1",
                  now: float | None = None) -> bool | None:
    return await verification.resend_code(service.store, _channels(service, sms), secret=service.secret,
                                          subscriber_id=subscriber_id, client=client, hourly_cap=HOURLY_CAP, now=now)


async def _rows(service: Service, sql: str, *params: Any) -> list[Any]:
    return [tuple(row) for row in await service.store.backend.reader.fetch(sql, *params)]


# ---------------------------------------------------------------- codes


def test_codes_are_six_random_digits() -> None:
    """Codes are six digits, leading zeros kept, and not all the same."""
    codes = [verification.new_code() for _ in range(200)]
    assert all(re.fullmatch(r"\d{6}", c) for c in codes)
    assert len(set(codes)) > 150


def test_a_code_hash_is_bound_to_its_subscriber() -> None:
    """The same code hashes differently for two subscribers, and the hash does not contain it."""
    one = verification.code_hash("secret", "a" * 32, "123456")
    assert one != verification.code_hash("secret", "b" * 32, "123456")
    assert "123456" not in one and len(one) == 64


@pytest.mark.parametrize(("typed", "code"), [("123456", "123456"), (" 123 456 ", "123456"), ("１２３４５６", "123456")])
def test_typed_codes_are_normalised(typed: str, code: str) -> None:
    """Spaces and full-width digits typed with a Chinese input method still make the code."""
    assert verification.normalise_code(typed) == code


@pytest.mark.parametrize("typed", ["12345", "1234567", "12a456", ""])
def test_what_cannot_be_a_code_is_rejected(typed: str) -> None:
    """Anything but six digits is not a code."""
    assert verification.normalise_code(typed) is None


async def test_sign_up_is_pending_with_unverified_contacts_and_consent(service: Service, sms: RecordingSms) -> None:
    """A sign-up is pending, its mobile unverified, its consent version recorded, and one code was texted."""
    signup = await _sign_up(service, sms)
    assert signup.subscriber.status == "pending" and signup.sms_sent is True
    assert await service.store.contact_states(signup.subscriber.id) == {"sms": None}
    assert await _rows(service, "SELECT version FROM consents WHERE subscriber_id = ?", signup.subscriber.id) == [
        (CONSENT_VERSION,)]
    assert [phone for phone, _ in sms.sent] == [MOBILE]


async def test_only_the_hmac_of_the_code_is_stored(service: Service, sms: RecordingSms) -> None:
    """The verifications table holds the code's HMAC, never the code."""
    signup = await _sign_up(service, sms)
    [(_, code)] = sms.sent
    [(stored,)] = await _rows(service, "SELECT secret_hash FROM verifications WHERE subscriber_id = ?",
                              signup.subscriber.id)
    assert code not in stored
    assert stored == verification.code_hash(service.secret, signup.subscriber.id, code)


async def test_the_right_code_verifies_and_activates(service: Service, sms: RecordingSms) -> None:
    """Entering the texted code verifies the mobile and makes the subscriber active."""
    signup = await _sign_up(service, sms)
    outcome, holder = await verification.check_code(service.store, service.secret, signup.subscriber.id,
                                                    sms.sent[0][1])
    assert (outcome, holder) == (verification.VERIFIED, signup.subscriber.id)
    assert (await service.store.contact_states(signup.subscriber.id))["sms"] is not None
    assert (await service.store.get_subscriber(signup.subscriber.id)).status == "active"  # type: ignore[union-attr]


async def test_five_wrong_codes_lock_the_code(service: Service, sms: RecordingSms) -> None:
    """Four wrong codes say wrong, the fifth locks, and then the right code is refused too."""
    signup = await _sign_up(service, sms)
    code = sms.sent[0][1]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    outcomes = [(await verification.check_code(service.store, service.secret, signup.subscriber.id, wrong))[0]
                for _ in range(5)]
    assert outcomes == [verification.WRONG] * 4 + [verification.LOCKED]
    assert (await verification.check_code(service.store, service.secret, signup.subscriber.id,
                                          code))[0] == verification.LOCKED


async def test_an_expired_code_is_refused(service: Service, sms: RecordingSms) -> None:
    """A code entered after ten minutes is expired, and the subscriber stays pending."""
    signup = await _sign_up(service, sms)
    later = time.time() + CODE_TTL + 1
    outcome, _ = await verification.check_code(service.store, service.secret, signup.subscriber.id,
                                               sms.sent[0][1], now=later)
    assert outcome == verification.EXPIRED
    assert (await service.store.get_subscriber(signup.subscriber.id)).status == "pending"  # type: ignore[union-attr]


async def test_a_pending_subscriber_is_not_targeted(service: Service, sms: RecordingSms) -> None:
    """An alert published before verification leaves the sign-up out of its targets."""
    await _sign_up(service, sms)
    alert, _ = await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="预警"), None)
    assert alert.targeted == 0


# ---------------------------------------------------------------- limits


async def test_a_second_code_to_a_number_within_a_minute_is_refused(service: Service, sms: RecordingSms) -> None:
    """Signing the same number up again within a minute raises RateLimited, creates nothing, texts nothing."""
    await _sign_up(service, sms)
    with pytest.raises(RateLimited) as refused:
        await _sign_up(service, sms)
    assert refused.value.scope == limits.SCOPE_SMS and 0 < refused.value.retry_after <= 60
    assert len(sms.sent) == 1 and await service.store.count_subscribers() == 1


async def test_a_number_gets_five_codes_a_day(service: Service, sms: RecordingSms) -> None:
    """Minutes apart (from different clients), a number gets its sign-up code and four new ones; the sixth waits
    until the first is a day old."""
    start = time.time()
    signup = await _sign_up(service, sms, now=start)
    for i in range(1, 5):
        assert await _resend(service, sms, signup.subscriber.id, client=f"192.0.2.{i + 1}", now=start + 61 * i)
    with pytest.raises(RateLimited) as refused:
        await _resend(service, sms, signup.subscriber.id, client="192.0.2.9", now=start + 3 * 3600)
    assert refused.value.scope == limits.SCOPE_SMS
    assert refused.value.retry_after == pytest.approx(86400 - 3 * 3600, abs=1)
    assert len(sms.sent) == 5


async def test_the_limit_table_holds_no_number(service: Service, sms: RecordingSms) -> None:
    """Counted numbers and client addresses are HMACs: neither the number nor the client address is in the
    table; the service-wide cap counts under one key."""
    await _sign_up(service, sms)
    rows = dict(await _rows(service, "SELECT scope, key_hash FROM rate_events"))
    assert rows == {limits.SCOPE_SMS: limits.limit_key(service.secret, limits.SCOPE_SMS, MOBILE),
                    limits.SCOPE_CLIENT: limits.limit_key(service.secret, limits.SCOPE_CLIENT, "192.0.2.1"),
                    limits.SCOPE_ALL: limits.ALL}
    assert all("13812340002" not in key and "192.0.2.1" not in key for key in rows.values())


async def test_one_client_gets_five_codes_or_links_an_hour(service: Service, sms: RecordingSms) -> None:
    """Five codes or links an hour from one client address; the sixth is refused, another address is not."""
    for i in range(5):
        await _sign_up(service, sms, contacts={"email": f"person{i}@example.org"})
    with pytest.raises(RateLimited) as refused:
        await _sign_up(service, sms, contacts={"email": "person5@example.org"})
    assert refused.value.scope == limits.SCOPE_CLIENT
    await _sign_up(service, sms, contacts={"email": "person5@example.org"}, client="192.0.2.2")
    assert await service.store.count_subscribers() == 6


async def test_resend_counts_against_the_client(service: Service, sms: RecordingSms) -> None:
    """A client whose codes are used up gets no more by resending, whatever the number (the SMS pump)."""
    start = time.time()
    signups = [await _sign_up(service, sms, contacts={"sms": f"+86138123400{i:02d}"}, now=start) for i in range(4)]
    assert await _resend(service, sms, signups[0].subscriber.id, now=start + 61) is True
    for signup in signups[1:]:
        with pytest.raises(RateLimited) as refused:
            await _resend(service, sms, signup.subscriber.id, now=start + 120)
        assert refused.value.scope == limits.SCOPE_CLIENT
    assert len(sms.sent) == 5


async def test_a_refusal_counts_nothing(service: Service, sms: RecordingSms) -> None:
    """A request refused by the number's limit takes nothing from the client's five."""
    await _sign_up(service, sms)
    for _ in range(3):
        with pytest.raises(RateLimited):
            await _sign_up(service, sms)
    for i in range(4):
        await _sign_up(service, sms, contacts={"email": f"person{i}@example.org"})
    with pytest.raises(RateLimited) as refused:
        await _sign_up(service, sms, contacts={"email": "person9@example.org"})
    assert refused.value.scope == limits.SCOPE_CLIENT and len(sms.sent) == 1


async def test_a_sign_up_with_a_mobile_and_an_email_counts_two(service: Service, sms: RecordingSms) -> None:
    """A code and a link are two of the client's five: after two such sign-ups only one more fits."""
    for i in range(2):
        await _sign_up(service, sms, contacts={"sms": f"+861381234010{i}", "email": f"both{i}@example.org"})
    with pytest.raises(RateLimited) as refused:
        await _sign_up(service, sms, contacts={"sms": "+8613812340120", "email": "both2@example.org"})
    assert refused.value.scope == limits.SCOPE_CLIENT
    await _sign_up(service, sms, contacts={"email": "both3@example.org"})


async def test_a_second_link_to_a_mailbox_within_a_minute_is_refused(service: Service, sms: RecordingSms,
                                                                     smtp: RunningSmtp) -> None:
    """The same email address signing up again within a minute is refused; the mailbox got one email."""
    await _sign_up(service, sms, contacts={"email": EMAIL})
    with pytest.raises(RateLimited) as refused:
        await _sign_up(service, sms, contacts={"email": EMAIL})
    assert refused.value.scope == limits.SCOPE_EMAIL
    assert len(smtp.messages_to(EMAIL)) == 1


async def test_resend_for_a_verified_number_sends_nothing(service: Service, sms: RecordingSms) -> None:
    """Once the mobile is verified there is nothing to resend."""
    signup = await _sign_up(service, sms)
    await verification.check_code(service.store, service.secret, signup.subscriber.id, sms.sent[0][1])
    assert await _resend(service, sms, signup.subscriber.id, now=time.time() + 120) is None
    assert len(sms.sent) == 1


# ---------------------------------------------------------------- email


def _token(smtp: RunningSmtp, *, last: bool = False) -> str:
    """The token of the confirmation link emailed to EMAIL (the only mail, or with `last`, the newest)."""
    mails = smtp.messages_to(EMAIL)
    if not last:
        assert len(mails) == 1
    body = mails[-1].message.get_body(("plain",))
    assert body is not None
    match = re.search(re.escape(PUBLIC) + r"/subscribe/confirm/(\S+)", body.get_content())
    assert match is not None
    return match.group(1)


async def test_the_emailed_link_verifies_and_activates(service: Service, sms: RecordingSms, smtp: RunningSmtp) -> None:
    """The link in the confirmation email verifies the address and activates the subscriber."""
    signup = await _sign_up(service, sms, contacts={"email": EMAIL})
    assert signup.email_sent is True
    assert await verification.confirm_email(service.store, service.secret, _token(smtp)) == signup.subscriber.id
    assert (await service.store.get_subscriber(signup.subscriber.id)).status == "active"  # type: ignore[union-attr]


async def test_a_link_for_a_changed_address_is_refused(service: Service, sms: RecordingSms,
                                                       smtp: RunningSmtp) -> None:
    """A link sent to an address the subscriber no longer has verifies nothing."""
    signup = await _sign_up(service, sms, contacts={"email": EMAIL})
    await service.store.update_subscriber(signup.subscriber.id, {}, {"email": "new@example.org"}, {}, None)
    assert await verification.confirm_email(service.store, service.secret, _token(smtp)) is None


async def test_a_token_for_another_purpose_is_not_a_confirmation(service: Service, sms: RecordingSms) -> None:
    """A manage token of the same subscriber does not confirm an email address."""
    signup = await _sign_up(service, sms, contacts={"email": EMAIL})
    manage = tokens.make_token(service.secret, tokens.MANAGE, signup.subscriber.id)
    assert await verification.confirm_email(service.store, service.secret, manage) is None


async def test_an_expired_link_is_refused(service: Service, sms: RecordingSms, smtp: RunningSmtp) -> None:
    """A confirmation link used after 24 hours verifies nothing."""
    await _sign_up(service, sms, contacts={"email": EMAIL})
    later = time.time() + 24 * 3600 + 1
    assert await verification.confirm_email(service.store, service.secret, _token(smtp), now=later) is None


async def test_one_verified_contact_is_enough_to_activate(service: Service, sms: RecordingSms,
                                                          smtp: RunningSmtp) -> None:
    """Confirming the email activates a sign-up whose mobile is still unverified (and stays so)."""
    signup = await _sign_up(service, sms, contacts={"sms": MOBILE, "email": EMAIL})
    await verification.confirm_email(service.store, service.secret, _token(smtp))
    states = await service.store.contact_states(signup.subscriber.id)
    assert states["email"] is not None and states["sms"] is None
    assert (await service.store.get_subscriber(signup.subscriber.id)).status == "active"  # type: ignore[union-attr]


# ---------------------------------------------------------------- WeChat


def _event(event: str, key: str | None, openid: str = OPENID) -> WechatEvent:
    return WechatEvent(msg_type="event", event=event, openid=openid, msg_id=None, status=None, event_key=key,
                       create_time=None)


async def test_a_follow_with_the_scene_binds_wechat_first(service: Service, sms: RecordingSms) -> None:
    """The follow's openid becomes a verified WeChat contact, first in each subscription; the subscriber is active."""
    signup = await _sign_up(service, sms, contacts={"email": EMAIL}, wechat=True)
    assert signup.wechat_scene is not None
    bound = await verification.bind_wechat(service.store, _event("subscribe", "qrscene_" + signup.wechat_scene))
    assert bound == signup.subscriber.id
    record = await service.store.get_subscriber(signup.subscriber.id)
    assert record is not None and record.status == "active" and record.contacts["wechat"] == OPENID
    assert record.subscriptions == [("env.heavy-pollution", ["wechat", "email"], 0)]
    assert (await service.store.contact_states(record.id))["wechat"] is not None


async def test_a_scan_by_a_follower_binds_too(service: Service, sms: RecordingSms) -> None:
    """Someone who already follows scans the code (a SCAN event, scene without prefix): that binds as well."""
    signup = await _sign_up(service, sms, contacts={"email": EMAIL}, wechat=True)
    assert signup.wechat_scene is not None
    assert await verification.bind_wechat(service.store, _event("SCAN", signup.wechat_scene)) == signup.subscriber.id


async def test_a_scene_binds_only_once(service: Service, sms: RecordingSms) -> None:
    """A second follow through the same code does not take the binding over."""
    signup = await _sign_up(service, sms, contacts={"email": EMAIL}, wechat=True)
    key = "qrscene_" + (signup.wechat_scene or "")
    await verification.bind_wechat(service.store, _event("subscribe", key))
    other = _event("subscribe", key, "oSomeoneElse0000000000000001")
    assert await verification.bind_wechat(service.store, other) is None
    record = await service.store.get_subscriber(signup.subscriber.id)
    assert record is not None and record.contacts["wechat"] == OPENID


async def test_an_expired_scene_binds_nothing(service: Service, sms: RecordingSms) -> None:
    """A follow a day after the sign-up binds nothing."""
    signup = await _sign_up(service, sms, contacts={"email": EMAIL}, wechat=True)
    event = _event("subscribe", "qrscene_" + (signup.wechat_scene or ""))
    assert await verification.bind_wechat(service.store, event, now=time.time() + SCENE_TTL + 1) is None


async def test_ordinary_follows_are_ignored(service: Service, sms: RecordingSms) -> None:
    """A follow without a scene, or with another account's scene, binds nothing."""
    assert await verification.bind_wechat(service.store, _event("subscribe", None)) is None
    assert await verification.bind_wechat(service.store, _event("subscribe", "qrscene_campaign42")) is None


# ---------------------------------------------------------------- retention


async def test_unverified_sign_ups_are_deleted_after_a_day(service: Service, sms: RecordingSms) -> None:
    """After 24 h the pending sign-up is gone with its contact, code and consent; an active one stays."""
    pending = await _sign_up(service, sms)
    active = await _sign_up(service, sms, contacts={"email": EMAIL})
    await service.store.verify_contact(active.subscriber.id, "email", time.time())
    assert await verification.purge_unverified(service.store, now=time.time() + PENDING_TTL - 60) == 0
    assert await verification.purge_unverified(service.store, now=time.time() + PENDING_TTL + 1) == 1
    assert await service.store.get_subscriber(pending.subscriber.id) is None
    assert await service.store.get_subscriber(active.subscriber.id) is not None
    for sql in ("SELECT 1 FROM contacts WHERE subscriber_id = ?", "SELECT 1 FROM verifications WHERE subscriber_id = ?",
                "SELECT 1 FROM consents WHERE subscriber_id = ?"):
        assert await _rows(service, sql, pending.subscriber.id) == []
    assert await _rows(service, "SELECT 1 FROM rate_events") == []


# ---------------------------------------------------------------- a repeat sign-up


async def _active(service: Service, sms: RecordingSms) -> str:
    """A subscriber made active by the sign-up flow: mobile verified, topic env.heavy-pollution, district 城区."""
    first = await _sign_up(service, sms)
    outcome, _ = await verification.check_code(service.store, service.secret, first.subscriber.id, sms.sent[-1][1])
    assert outcome == verification.VERIFIED
    return first.subscriber.id


async def test_a_repeat_sign_up_with_a_verified_mobile_joins_the_existing_subscriber(
        service: Service, sms: RecordingSms) -> None:
    """Signing up again with a mobile an active subscriber holds, for another topic and district: once the code
    proves the number, the new topic is added to the existing subscriber (whose district stays), and no second
    subscriber is left."""
    existing = await _active(service, sms)
    later = time.time() + 120  # past the one-code-a-minute limit of the number
    again = await _sign_up(service, sms, topic="transit.fare-change", region="140411", now=later)
    assert again.subscriber.id != existing
    outcome, holder = await verification.check_code(service.store, service.secret, again.subscriber.id,
                                                    sms.sent[-1][1], now=later)
    assert (outcome, holder) == (verification.VERIFIED, existing)
    assert await service.store.get_subscriber(again.subscriber.id) is None
    record = await service.store.get_subscriber(existing)
    assert record is not None and record.region == "140402"
    assert sorted(topic for topic, _, _ in record.subscriptions) == ["env.heavy-pollution", "transit.fare-change"]
    assert await _rows(service, "SELECT COUNT(*) FROM contacts WHERE address = ?", MOBILE) == [(1,)]
    assert await _rows(service, "SELECT COUNT(*) FROM subscribers") == [(1,)]


async def test_a_repeat_sign_up_brings_a_contact_the_subscriber_lacked(
        service: Service, sms: RecordingSms, smtp: RunningSmtp) -> None:
    """A repeat sign-up with the same mobile and a new email: after the code, the email (still to be confirmed)
    belongs to the existing subscriber."""
    existing = await _active(service, sms)
    again = await _sign_up(service, sms, contacts={"sms": MOBILE, "email": EMAIL}, now=time.time() + 120)
    await verification.check_code(service.store, service.secret, again.subscriber.id, sms.sent[-1][1],
                                  now=time.time() + 120)
    assert await service.store.contact_states(existing) == {"sms": pytest.approx(time.time(), abs=300),
                                                            "email": None}


async def test_an_unproven_repeat_sign_up_changes_nothing_of_the_existing_subscriber(
        service: Service, sms: RecordingSms) -> None:
    """Someone typing another person's number into the form gets nowhere: without the code the existing
    subscriber keeps exactly their topics, and the sign-up stays a separate pending one."""
    existing = await _active(service, sms)
    again = await _sign_up(service, sms, topic="transit.fare-change", now=time.time() + 120)
    wrong = f"{(int(sms.sent[-1][1]) + 1) % 1_000_000:06d}"
    outcome, holder = await verification.check_code(service.store, service.secret, again.subscriber.id, wrong,
                                                    now=time.time() + 120)
    assert (outcome, holder) == (verification.WRONG, again.subscriber.id)
    record = await service.store.get_subscriber(existing)
    assert record is not None and [t for t, _, _ in record.subscriptions] == ["env.heavy-pollution"]
    assert (await service.store.get_subscriber(again.subscriber.id)).status == "pending"  # type: ignore[union-attr]


async def test_a_repeat_email_sign_up_joins_through_the_confirmation_link(service: Service, sms: RecordingSms,
                                                                          smtp: RunningSmtp) -> None:
    """The same with an email address: the confirmation link of the second sign-up returns the existing
    subscriber, which now has both topics."""
    first = await _sign_up(service, sms, contacts={"email": EMAIL})
    existing = await verification.confirm_email(service.store, service.secret, _token(smtp))
    assert existing == first.subscriber.id
    await _sign_up(service, sms, contacts={"email": EMAIL}, topic="transit.fare-change", now=time.time() + 120)
    holder = await verification.confirm_email(service.store, service.secret, _token(smtp, last=True))
    assert holder == existing
    record = await service.store.get_subscriber(existing)
    assert record is not None and len(record.subscriptions) == 2
    assert await _rows(service, "SELECT COUNT(*) FROM subscribers") == [(1,)]
