"""Subscriber, subscription and quiet-hours models at the API edge: what is accepted, and what each refusal says."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from subscriptions.models import (
    CHANNEL_KINDS,
    LOCALES,
    Contacts,
    MinSeverity,
    QuietHours,
    SubscriberIn,
    SubscriberPatch,
    SubscriptionIn,
)

OPENID = "oAbCdEfGhIjKlMnOpQrStUvWxYz1"
SECRET = "whsec_" + "A" * 44  # base64 of 33 bytes


def body(**changes: Any) -> dict[str, Any]:
    """The subscriber body of the spec, with `changes` applied."""
    data: dict[str, Any] = {
        "contacts": {"sms": "+8613800000001", "email": "a@example.org", "wechat": OPENID,
                     "webhook": "https://hooks.example.org/in", "webhook_secret": SECRET},
        "region": "140402", "groups": ["elderly"], "locale": "zh-CN",
        "quiet_hours": {"start": "22:00", "end": "07:00"},
        "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["wechat", "sms"], "min_severity": "moderate"}],
    }
    data.update(changes)
    return data


def errors(model: type[SubscriberIn | SubscriberPatch], data: dict[str, Any]) -> dict[str, str]:
    """dotted field path → message, as the API reports them (input values left out)."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return {".".join(str(part) for part in error["loc"]): error["msg"].removeprefix("Value error, ")
            for error in caught.value.errors(include_url=False, include_input=False, include_context=False)}


def test_the_spec_example_body_is_accepted() -> None:
    """The subscriber body shown in the specification is accepted as it stands."""
    subscriber = SubscriberIn.model_validate(body())
    assert subscriber.contacts.addresses() == {
        "sms": "+8613800000001", "wechat": OPENID, "email": "a@example.org", "webhook": "https://hooks.example.org/in"}
    assert subscriber.subscriptions == [
        SubscriptionIn(topic="env.heavy-pollution", channels=["wechat", "sms"], min_severity=MinSeverity.MODERATE)]


def test_minimal_body_gets_the_defaults() -> None:
    """A body with one contact and a region gets locale zh-CN, no groups, no quiet hours, no subscriptions."""
    subscriber = SubscriberIn.model_validate({"contacts": {"email": "a@example.org"}, "region": "140402"})
    assert (subscriber.locale, subscriber.groups, subscriber.quiet_hours, subscriber.subscriptions) == (
        "zh-CN", [], None, [])
    assert subscriber.consent_source == "admin"


def test_contacts_are_stored_normalised() -> None:
    """A mobile number typed the local way and an upper-case email domain are stored in canonical form."""
    contacts = Contacts(sms="138 0013 8000", email="Alice@X.Gov.CN")
    assert (contacts.sms, contacts.email) == ("+8613800138000", "Alice@x.gov.cn")


def test_contact_addresses_list_only_the_channels_given() -> None:
    """A subscriber with only an email has only an email address to send to."""
    assert Contacts(email="a@example.org").addresses() == {"email": "a@example.org"}


def test_duplicate_groups_are_kept_once_in_order() -> None:
    """Groups listed twice are kept once, in the order first given."""
    subscriber = SubscriberIn.model_validate(body(groups=["elderly", "student", "elderly"]))
    assert subscriber.groups == ["elderly", "student"]


def test_quiet_hours_are_written_back_zero_padded() -> None:
    """Quiet hours typed 7:00 come back as 07:00, and give their minutes since midnight."""
    quiet = QuietHours(start="22:00", end="7:00")
    assert (quiet.end, quiet.minutes()) == ("07:00", (1320, 420))


def test_subscriber_is_immutable() -> None:
    """A validated subscriber cannot be changed afterwards by accident."""
    subscriber = SubscriberIn.model_validate(body())
    with pytest.raises(ValidationError, match="frozen"):
        subscriber.region = "140411"


def test_subscriber_without_any_contact_is_refused_at_contacts() -> None:
    """A body with no contact at all is refused, pointing at `contacts`."""
    assert errors(SubscriberIn, body(contacts={})) == {
        "contacts": "at least one contact is needed: sms, email, wechat, webhook or voice"}


@pytest.mark.parametrize(("contacts", "field", "message"), [
    ({"sms": "1380013800"}, "contacts.sms", "must be a mainland China mobile number"),
    ({"sms": "0355-2021234"}, "contacts.sms", "SMS needs a mobile number"),
    ({"email": "a@b"}, "contacts.email", "must be an email address"),
    ({"wechat": "not-an-openid"}, "contacts.wechat", "must be a WeChat openid"),
    ({"webhook": "ftp://example.org"}, "contacts.webhook", "http(s) URL"),
    ({"webhook": "https://h.example.org", "webhook_secret": "whsec_!!"}, "contacts.webhook_secret", "base64"),
    ({"email": "a@example.org", "webhook_secret": SECRET}, "contacts", "webhook_secret given without a webhook"),
    ({"phone": "13800138000"}, "contacts.phone", "Extra inputs are not permitted"),
    ({"sms": 13800138000}, "contacts.sms", "valid string"),
])
def test_bad_contact_is_refused_at_its_field_with_the_reason(contacts: dict[str, Any], field: str,
                                                             message: str) -> None:
    """Each bad contact is reported at its own field with a message that says what is expected."""
    found = errors(SubscriberIn, body(contacts=contacts))
    assert message in found[field]


def test_refusal_messages_never_repeat_the_contact() -> None:
    """No error message contains the mobile number, email address or openid that was refused."""
    bad = {"sms": "13900139", "email": "secret.person@nowhere", "wechat": "oSecretOpenid"}
    found = errors(SubscriberIn, body(contacts=bad))
    assert set(found) == {"contacts.sms", "contacts.email", "contacts.wechat"}
    for value in bad.values():
        assert not any(value in message for message in found.values())


@pytest.mark.parametrize("region", ["14040", "1404021", "abcdef", "140402\n", "１４０４０２", ""])
def test_region_that_is_not_a_six_digit_code_is_refused(region: str) -> None:
    """A region must be six ASCII digits (a GB/T 2260 code), nothing more or less."""
    assert errors(SubscriberIn, body(region=region)) == {"region": "region must be a six-digit administrative code"}


@pytest.mark.parametrize("group", ["Elderly", "low income", "1child", "", "elderly\n"])
def test_group_that_is_not_a_group_code_is_refused(group: str) -> None:
    """A group must be a lower-case code such as low_income."""
    assert "is not a group code" in errors(SubscriberIn, body(groups=[group]))["groups"]


def test_unsupported_locale_is_refused_with_the_choices() -> None:
    """A locale other than those offered is refused, listing the ones that are."""
    assert errors(SubscriberIn, body(locale="fr")) == {"locale": f"locale must be one of {', '.join(LOCALES)}"}


@pytest.mark.parametrize(("quiet", "field", "message"), [
    ({"start": "25:00", "end": "07:00"}, "quiet_hours.start", "between 00:00 and 23:59"),
    ({"start": "22:00", "end": "7"}, "quiet_hours.end", "time must be HH:MM"),
    ({"start": "22:00", "end": "22:00"}, "quiet_hours", "quiet hours need different start and end times"),
    ({"start": "22:00"}, "quiet_hours.end", "Field required"),
])
def test_bad_quiet_hours_are_refused_with_the_reason(quiet: dict[str, str], field: str, message: str) -> None:
    """Quiet hours with an impossible time, a missing end, or no length at all are refused at their field."""
    assert message in errors(SubscriberIn, body(quiet_hours=quiet))[field]


@pytest.mark.parametrize(("subscription", "field", "message"), [
    ({"topic": "env.heavy-pollution", "channels": ["fax"]}, "subscriptions.0.channels",
     "unknown channel 'fax'; one of " + ", ".join(CHANNEL_KINDS)),
    ({"topic": "env.heavy-pollution", "channels": ["sms", "sms"]}, "subscriptions.0.channels",
     "a channel is listed twice"),
    ({"topic": "env.heavy-pollution", "channels": []}, "subscriptions.0.channels", "at least 1 item"),
    ({"topic": "Heavy Pollution", "channels": ["sms"]}, "subscriptions.0.topic",
     "topic must be a dotted key such as env.heavy-pollution"),
    ({"topic": "env.heavy-pollution", "channels": ["sms"], "min_severity": "huge"},
     "subscriptions.0.min_severity", "'minor', 'moderate', 'severe' or 'extreme'"),
])
def test_bad_subscription_is_refused_at_its_field_with_the_reason(subscription: dict[str, Any], field: str,
                                                                  message: str) -> None:
    """A subscription with an unknown or repeated channel, a malformed topic or a wrong severity says which."""
    assert message in errors(SubscriberIn, body(subscriptions=[subscription]))[field]


def test_topic_subscribed_twice_is_refused_at_subscriptions() -> None:
    """Subscribing to the same topic twice in one body is refused, pointing at `subscriptions`."""
    twice = [{"topic": "env.heavy-pollution", "channels": ["sms"]}, {"topic": "env.heavy-pollution",
                                                                      "channels": ["wechat"]}]
    assert errors(SubscriberIn, body(subscriptions=twice)) == {"subscriptions": "a topic is subscribed twice"}


def test_unknown_top_level_field_is_refused() -> None:
    """A misspelt field is refused rather than silently ignored."""
    assert errors(SubscriberIn, body(regoin="140402")) == {"regoin": "Extra inputs are not permitted"}


def test_subscriber_schema_can_be_generated() -> None:
    """The subscriber body has a JSON schema (the OpenAPI document is generated from it)."""
    schema = SubscriberIn.model_json_schema()
    assert {"contacts", "region"} <= set(schema["required"])


# ---------------------------------------------------------------- patches


def test_empty_patch_is_accepted() -> None:
    """A patch that changes nothing is valid."""
    assert SubscriberPatch.model_validate({}) == SubscriberPatch()


def test_patch_replacing_contacts_with_none_is_refused() -> None:
    """A patch cannot leave a subscriber with no contact at all."""
    assert errors(SubscriberPatch, {"contacts": {}}) == {
        "contacts": "at least one contact is needed: sms, email, wechat, webhook or voice"}


def test_patch_setting_and_clearing_quiet_hours_at_once_is_refused() -> None:
    """A patch cannot both set new quiet hours and clear them."""
    patch = {"quiet_hours": {"start": "22:00", "end": "07:00"}, "clear_quiet_hours": True}
    assert errors(SubscriberPatch, patch) == {"": "give quiet_hours or clear_quiet_hours, not both"}


@pytest.mark.parametrize(("patch", "field"), [
    ({"region": "14"}, "region"), ({"groups": ["Bad Group"]}, "groups"), ({"locale": "de"}, "locale"),
    ({"contacts": {"sms": "123"}}, "contacts.sms"),
])
def test_patch_fields_are_checked_like_new_subscribers(patch: dict[str, Any], field: str) -> None:
    """A patch's region, groups, locale and contacts are held to the same rules as a new subscriber's."""
    assert field in errors(SubscriberPatch, patch)


def test_a_landline_alone_is_enough_for_a_voice_subscriber() -> None:
    """Someone with only a fixed line subscribes on `voice`; the number is stored in E.164."""
    subscriber = SubscriberIn.model_validate(body(
        contacts={"voice": "(0355) 202-1234"},
        subscriptions=[{"topic": "env.heavy-pollution", "channels": ["voice"]}]))
    assert subscriber.contacts.addresses() == {"voice": "+863552021234"}


def test_every_channel_kind_may_be_listed_once_in_a_subscription() -> None:
    """All five kinds, voice last, fit in one subscription's preference list."""
    assert SubscriptionIn.model_validate({"topic": "env.heavy-pollution", "channels": list(CHANNEL_KINDS)})
    assert CHANNEL_KINDS[-1] == "voice"
