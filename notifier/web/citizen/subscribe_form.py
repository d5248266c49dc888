"""Reading the /subscribe form: what was typed (to show it again) and either a `SubscriberIn` for
`notifier.verification.sign_up` or, per form field, the key of the message that says what to fix.

Only the contacts of the chosen channels are kept (a mobile number typed but not wanted for SMS is dropped: the
minimum data). WeChat has no contact yet at sign-up — following the official account provides it — so the
subscriptions start with the other chosen channels and WeChat joins them when the follow binds. Contacts are
checked with the same validators as the API (`subscriptions.contacts`: mainland mobile numbers, email).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from multidict import MultiMapping
from pydantic import ValidationError

from notifier.i18n import N_
from notifier.verification import CHANNEL_ORDER, CONSENT_SOURCE, CONSENT_VERSION
from subscriptions.contacts import normalize_email, normalize_mobile
from subscriptions.models import LOCALES, Contacts, QuietHours, SubscriberIn, SubscriptionIn

MAX_TOPICS = 200
MAX_GROUPS = 20
MAX_TEXT = 254  # longest single-line value kept from the form (an email address at most)

# What each problem of the form tells the citizen, by its code (msgids: the page translates them)
ERRORS = {
    "topics": N_("Choose at least one kind of information."),
    "region": N_("Choose your county or district."),
    "groups": N_("The group choice is not valid; please choose again."),
    "channels": N_("Choose at least one way to reach you."),
    "channels_unavailable": N_("A way you chose is not available; please choose another."),
    "wechat_alone": N_("With WeChat, please also choose SMS or email."),
    "mobile": N_("Enter a valid mainland China mobile number (11 digits starting with 1)."),
    "mobile_missing": N_("Enter your mobile number to receive SMS."),
    "email": N_("Enter a valid email address, such as name@example.org."),
    "email_missing": N_("Enter your email address to receive email."),
    "locale": N_("Choose the language of messages."),
    "quiet": N_("Give both the start and the end of the quiet hours, and make them different."),
    "consent": N_("Please read and agree to how your personal information is handled."),
    "consent_changed": N_("The text has changed; please read it again and agree."),
    "form": N_("The form could not be read; please check it and try again."),
}


FormData = MultiMapping[object]  # what aiohttp's `request.post()` gives


@dataclass(frozen=True, slots=True)
class Known:
    """The catalogue's codes the form may name."""

    topics: Collection[str]
    regions: Collection[str]
    groups: Collection[str]


@dataclass(frozen=True, slots=True)
class FormValues:
    """What the citizen typed and chose, to fill the form again when something must be fixed."""

    topics: list[str] = field(default_factory=list)
    region: str = ""
    groups: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    locale: str = "zh-CN"
    quiet_start: str = ""
    quiet_end: str = ""
    mobile: str = ""
    email: str = ""
    consent: bool = False


@dataclass(frozen=True, slots=True)
class ParsedForm:
    values: FormValues
    body: SubscriberIn | None  # None when errors
    wants_wechat: bool
    errors: dict[str, str]  # form field → what to tell the citizen (a msgid of ERRORS)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip()[:MAX_TEXT] if isinstance(value, str) else ""


def _many(form: FormData, name: str, most: int) -> list[str]:
    values = [v.strip() for v in form.getall(name, []) if isinstance(v, str)]
    return list(dict.fromkeys(v for v in values if v))[:most + 1]  # one over the most, so that it shows


def form_values(form: FormData, default_locale: str) -> FormValues:
    return FormValues(
        topics=_many(form, "topic", MAX_TOPICS), region=_text(form, "region"), groups=_many(form, "group", MAX_GROUPS),
        channels=_many(form, "channel", len(CHANNEL_ORDER)), locale=_text(form, "locale") or default_locale,
        quiet_start=_text(form, "quiet_start"), quiet_end=_text(form, "quiet_end"), mobile=_text(form, "mobile"),
        email=_text(form, "email"), consent=_text(form, "consent") == CONSENT_VERSION)


def _choice_errors(values: FormValues, known: Known, available: Sequence[str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not values.topics or len(values.topics) > MAX_TOPICS or any(t not in known.topics for t in values.topics):
        errors["topics"] = ERRORS["topics"]
    if values.region not in known.regions:
        errors["region"] = ERRORS["region"]
    if len(values.groups) > MAX_GROUPS or any(g not in known.groups for g in values.groups):
        errors["groups"] = ERRORS["groups"]
    if not values.channels:
        errors["channels"] = ERRORS["channels"]
    elif any(kind not in available for kind in values.channels):
        errors["channels"] = ERRORS["channels_unavailable"]
    elif values.channels == ["wechat"]:
        errors["channels"] = ERRORS["wechat_alone"]
    if values.locale not in LOCALES:
        errors["locale"] = ERRORS["locale"]
    return errors


def _contact(values: FormValues, kind: str, errors: dict[str, str]) -> str | None:
    """The normalised contact for a chosen channel (or None, with the error recorded)."""
    name, raw = ("mobile", values.mobile) if kind == "sms" else ("email", values.email)
    if kind not in values.channels:
        return None
    if not raw:
        errors[name] = ERRORS[f"{name}_missing"]
        return None
    try:
        return normalize_mobile(raw) if kind == "sms" else normalize_email(raw)
    except ValueError:
        errors[name] = ERRORS[name]
        return None


def _quiet(values: FormValues, errors: dict[str, str]) -> QuietHours | None:
    if not values.quiet_start and not values.quiet_end:
        return None
    try:
        return QuietHours(start=values.quiet_start, end=values.quiet_end)
    except ValidationError:
        errors["quiet"] = ERRORS["quiet"]
        return None


def read_form(form: FormData, known: Known, available: Sequence[str], default_locale: str) -> ParsedForm:
    """The form, checked: a SubscriberIn (pending, consent source "web"), or the errors to show."""
    values = form_values(form, default_locale)
    errors = _choice_errors(values, known, available)
    sms, email = _contact(values, "sms", errors), _contact(values, "email", errors)
    quiet = _quiet(values, errors)
    consent = _text(form, "consent")
    if consent != CONSENT_VERSION:
        errors["consent"] = ERRORS["consent_changed"] if consent else ERRORS["consent"]
    if errors:
        return ParsedForm(values, None, False, errors)
    channels = [kind for kind in CHANNEL_ORDER if kind in values.channels and kind != "wechat"]
    try:
        body = SubscriberIn(
            contacts=Contacts(sms=sms, email=email), region=values.region, groups=values.groups,
            locale=values.locale, quiet_hours=quiet, consent_source=CONSENT_SOURCE,
            subscriptions=[SubscriptionIn(topic=topic, channels=channels) for topic in values.topics])
    except ValidationError:
        return ParsedForm(values, None, False, {"form": ERRORS["form"]})
    return ParsedForm(values, body, "wechat" in values.channels, {})
