"""Why a delivery failed, in words an official can act on: `explain(channel, status, last_error) -> Cause`.

Every `last_error` text the service writes maps to a cause — the adapters' classifiers (channels/webhook.py,
channels/email.py, channels/wechat.py + wechat_token.py, channels/sms/aliyun.py and tencent.py), the dispatcher
(`channel X is not configured`, `no usable contact`, `…; gave up after N attempts`), the store's sweep (`lease
expired: …`), receipts (`receipt: UNDELIV`, `receipt: failed:user block`) and erasure (`subscriber deleted`).
A text matched by no rule gets the generic cause `other`. The raw text is always kept beside the words (masked:
a provider's answer could quote a contact), so that the code can be looked up with the provider.

`fold(rows)` adds up the store's failure groups (`failure_errors`: channel, status, last_error, count) by cause,
for `notifier coverage`, `notifier publish --wait` and the dashboard; `alert_causes(store, alert_id)` does the
reading too. The words are the one catalogue's (`Cause.words(lang)`); why a targeted person was not reached at
all (the coverage object's `unreachable`) is worded by `notifier.terms.CAUSE`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from notifier.i18n import NP_, Said
from notifier.store import Store
from notifier.terms import Term
from subscriptions.masking import scrub

# cause key → its words: a msgid of the one catalogue (context "failure cause"; the Chinese is in
# notifier/locale/zh_CN). `%(channel)s` is the delivery's channel, `%(inner)s` the cause under a retry's.
WORDS: Mapping[str, Term] = {
    "not_configured": NP_("failure cause",
        "this channel is not configured ([channels.%(channel)s] is missing): nothing was sent"),
    "no_contact": NP_("failure cause",
        "the subscriber has no usable contact on this channel (unverified, disabled or unsubscribed)"),
    "lease_expired": NP_("failure cause",
        "the worker stopped mid-send and the resends were used up (check the worker's logs)"),
    "internal": NP_("failure cause", "internal error (see the service's log)"),
    "timeout": NP_("failure cause", "the provider or receiver did not answer in time"),
    "unreachable": NP_("failure cause", "could not connect to the provider or receiver (network or address)"),
    "provider_error": NP_("failure cause", "the provider failed or gave an unreadable answer"),
    "expired": NP_("failure cause", "the alert expired before this delivery could go out"),
    "cancelled": NP_("failure cause", "the alert was cancelled before this delivery went out"),
    "subscriber_deleted": NP_("failure cause", "the subscriber deleted their data"),
    "gave_up": NP_("failure cause", "retries used up: %(inner)s"),
    "gave_up_expiring": NP_("failure cause", "the alert expires before another retry: %(inner)s"),
    "other": NP_("failure cause", "another reason (see the raw code)"),
    "unknown": NP_("failure cause", "no reason was recorded"),
    # webhook
    "webhook.private": NP_("failure cause", "the webhook URL points to a private or local address and is refused"),
    "webhook.bad_url": NP_("failure cause", "the webhook URL is not valid"),
    "webhook.secret": NP_("failure cause", "the webhook signing secret is missing or invalid"),
    "webhook.gone": NP_("failure cause",
        "the receiver retired this endpoint (HTTP 410); it is disabled for later alerts"),
    "webhook.redirect": NP_("failure cause", "the endpoint redirected; redirects are not followed"),
    "webhook.auth": NP_("failure cause", "the receiver refused the request (signature or permission)"),
    "webhook.not_found": NP_("failure cause", "the webhook URL does not exist (HTTP 404)"),
    "webhook.busy": NP_("failure cause", "the receiver is busy or rate-limiting"),
    "webhook.refused": NP_("failure cause", "the receiver refused the request"),
    "webhook.server_error": NP_("failure cause", "the receiver's server failed"),
    # WeChat
    "wechat.not_following": NP_("failure cause", "the user does not follow (or has unfollowed) the official account"),
    "wechat.refused": NP_("failure cause", "the user refuses messages from the official account"),
    "wechat.blocked": NP_("failure cause", "the user blocked the account's template messages"),
    "wechat.bad_openid": NP_("failure cause", "the openid is not valid for this official account"),
    "wechat.bad_template": NP_("failure cause", "the template id is not valid: check template_id"),
    "wechat.bad_data": NP_("failure cause", "the template data was refused (keywords or lengths): check field_map"),
    "wechat.credentials": NP_("failure cause",
        "the account's credentials were refused: check app_id, app_secret and the IP whitelist"),
    "wechat.quota": NP_("failure cause", "the account's API rate or daily quota was exceeded"),
    "wechat.system": NP_("failure cause", "WeChat failed to deliver it (system failure)"),
    # SMS
    "sms.bad_number": NP_("failure cause", "not a valid mainland mobile number"),
    "sms.international": NP_("failure cause", "a number outside the mainland needs an international template"),
    "sms.number_limit": NP_("failure cause", "this number reached the provider's per-number limit"),
    "sms.account_cap": NP_("failure cause", "the account reached its daily or monthly sending cap"),
    "sms.credentials": NP_("failure cause",
        "the SMS credentials or permissions were refused: check the access keys and grants"),
    "sms.template": NP_("failure cause", "the SMS signature or template is not approved or not as configured"),
    "sms.params": NP_("failure cause", "the template variables were refused (missing, too long or holding a link)"),
    "sms.balance": NP_("failure cause", "the SMS account has no balance or package left"),
    "sms.suspended": NP_("failure cause", "the SMS service is suspended for the account"),
    "sms.content": NP_("failure cause", "the content was blocked as sensitive"),
    "sms.blocked": NP_("failure cause", "the user unsubscribed or the number is on a do-not-disturb list"),
    "sms.no_verification_template": NP_("failure cause", "verification_template_code is not configured"),
    "sms.undeliverable": NP_("failure cause",
        "the handset could not take it (number suspended, switched off or barred)"),
    "sms.expired": NP_("failure cause", "the handset was off or out of coverage until the message expired"),
    "sms.rejected": NP_("failure cause", "the carrier rejected it (content filter, blacklist or number problem)"),
    "sms.handset": NP_("failure cause", "no such number, suspended, switched off or unreachable (SMS centre report)"),
    "sms.carrier_refused": NP_("failure cause",
        "the carrier's gateway refused it: invalid, suspended or blacklisted number"),
    "sms.carrier_error": NP_("failure cause", "an error inside the carrier's network"),
    "sms.receipt_failed": NP_("failure cause", "the carrier reported it undelivered, without a reason"),
    # voice (call results; `gave up after N calls` wraps the last one)
    "voice.no_answer": NP_("failure cause",
        "the call was not answered: no answer, busy, switched off or out of coverage"),
    "voice.rejected": NP_("failure cause", "the person declined the call"),
    "voice.bad_number": NP_("failure cause", "no such number, suspended, in arrears or barred"),
    "voice.landline": NP_("failure cause", "the voice provider calls mobiles only, not landlines"),
    # assisted reach
    "proxy.not_told": NP_("failure cause",
        "the grid worker or caregiver could not be reached on any channel, so nobody told them"),
    # email
    "email.no_mailbox": NP_("failure cause", "the mailbox does not exist"),
    "email.mailbox_full": NP_("failure cause", "the mailbox is full"),
    "email.policy": NP_("failure cause", "the receiving mail server refused it by policy (spam filter or permission)"),
    "email.auth": NP_("failure cause", "SMTP login failed: check username and password"),
    "email.extension": NP_("failure cause", "the SMTP server lacks STARTTLS or AUTH"),
    "email.tls": NP_("failure cause", "the SMTP TLS handshake failed (untrusted or expired certificate)"),
    "email.utf8": NP_("failure cause", "the server cannot take this non-ASCII address (SMTPUTF8)"),
    "email.bad_address": NP_("failure cause", "the email address is not valid"),
    "email.temporary": NP_("failure cause", "the receiving server deferred it (e.g. greylisting)"),
    "email.refused": NP_("failure cause", "the receiving server refused it"),
}

_ANY = None  # a rule for every channel
_SMS_CODES = ("sms",)
# (channels or None, pattern on the text, cause key); the first match wins. Receipts are matched without their
# `receipt: ` prefix, retries without their `; gave up …` suffix.
_RULES: tuple[tuple[tuple[str, ...] | None, str, str], ...] = (
    (_ANY, r"channel \S+ is not configured", "not_configured"),
    (_ANY, r"no usable contact", "no_contact"),
    (_ANY, r"lease expired\b.*", "lease_expired"),
    (_ANY, r"subscriber deleted", "subscriber_deleted"),
    (_ANY, r"(adapter returned no result|adapter error.*|internal error.*)", "internal"),
    (_ANY, r"(SMTP |Tencent SMS: )?timeout|access token request timed out", "timeout"),
    (_ANY, r"(Tencent SMS: )?(connection failed|connection error.*)|access token request failed.*"
           r"|SMTP connection (failed|lost before send)", "unreachable"),
    # webhook
    (("webhook",), r"destination refused.*", "webhook.private"),
    (("webhook",), r"invalid webhook URL", "webhook.bad_url"),
    (("webhook",), r"webhook secret (missing|invalid)", "webhook.secret"),
    (("webhook",), r"HTTP 410.*", "webhook.gone"),
    (("webhook",), r"HTTP 3\d\d.*", "webhook.redirect"),
    (("webhook",), r"HTTP 40[13].*", "webhook.auth"),
    (("webhook",), r"HTTP 404.*", "webhook.not_found"),
    (("webhook",), r"HTTP (408|429).*", "webhook.busy"),
    (("webhook",), r"HTTP 4\d\d.*", "webhook.refused"),
    (("webhook",), r"HTTP \d+.*", "webhook.server_error"),
    # WeChat: send answers (errcode), token errors, TEMPLATESENDJOBFINISH statuses
    (("wechat",), r"errcode 43004\b.*", "wechat.not_following"),
    (("wechat",), r"errcode 43101\b.*", "wechat.refused"),
    (("wechat",), r"errcode 40003\b.*", "wechat.bad_openid"),
    (("wechat",), r"errcode 4003[67]\b.*", "wechat.bad_template"),
    (("wechat",), r"errcode 47003\b.*", "wechat.bad_data"),
    (("wechat",), r"(access token.*errcode (40001|40013|40125|40164|41001|40014|42001)\b.*"
                  r"|errcode (40001|40014|42001)\b.*|access token refused.*)", "wechat.credentials"),
    (("wechat",), r"(access token: )?errcode (-1|45009|45011|45066)\b.*|failed: ?freq limit", "wechat.quota"),
    (("wechat",), r"failed: ?user block", "wechat.blocked"),
    (("wechat",), r"failed: ?system failed", "wechat.system"),
    (("wechat",), r"access token.*|unreadable answer|HTTP \d+", "provider_error"),
    # SMS: Aliyun codes (isv.*, isp.*), Tencent codes (`Tencent SMS <Code>`), then carrier receipt codes
    (_SMS_CODES, r"not a mainland mobile number|invalid mobile number|.*isv\.MOBILE_NUMBER_ILLEGAL"
                 r"|.*InvalidParameterValue\.IncorrectPhoneNumber", "sms.bad_number"),
    (_SMS_CODES, r"not a mainland number.*", "sms.international"),
    (_SMS_CODES, r".*isv\.BUSINESS_LIMIT_CONTROL.*|.*LimitExceeded\.PhoneNumber\w*", "sms.number_limit"),
    (_SMS_CODES, r".*isv\.(DAY|MONTH)_LIMIT_CONTROL.*|.*LimitExceeded\.\w*", "sms.account_cap"),
    (_SMS_CODES, r".*(SignatureDoesNotMatch|InvalidAccessKeyId|RAM_PERMISSION_DENY|AuthFailure|"
                 r"UnauthorizedOperation|isv\.DENY_IP_RANGE).*", "sms.credentials"),
    (_SMS_CODES, r".*(SIGNATURE|TEMPLATE)_?\w*ILLEGAL.*|.*(Signature|Template)IncorrectOrUnapproved.*",
     "sms.template"),
    (_SMS_CODES, r".*(TEMPLATE_MISSING_PARAMETERS|INVALID_JSON_PARAM|INVALID_PARAMETERS|PARAM_LENGTH_LIMIT|"
                 r"PARAM_NOT_SUPPORT_URL|InvalidParameter\w*|ProhibitedUseUrl\w*|ContentLengthLimit).*",
     "sms.params"),
    (_SMS_CODES, r".*(AMOUNT_NOT_ENOUGH|InsufficientBalance\w*|PackageNotEnough\w*).*", "sms.balance"),
    (_SMS_CODES, r".*(OUT_OF_SERVICE|ACCOUNT_NOT_EXISTS).*", "sms.suspended"),
    (_SMS_CODES, r".*(BLACK_KEY_CONTROL_LIMIT|SMS_CONTENT_ILLEGAL|ContainSensitiveWord).*", "sms.content"),
    (_SMS_CODES, r".*PhoneNumber(In|On)Blacklist.*", "sms.blocked"),
    (_SMS_CODES, r"verification_template_code.*not configured", "sms.no_verification_template"),
    (_SMS_CODES, r"UNDELIV", "sms.undeliverable"),
    (_SMS_CODES, r"EXPIRED", "sms.expired"),
    (_SMS_CODES, r"REJECTD?|REJECTED", "sms.rejected"),
    (_SMS_CODES, r"(MK|MN|MI|MB|LT):?\d+", "sms.handset"),
    (_SMS_CODES, r"(DB|HD):?\d+|(DB|MB)?BLACK|BLOCKED|BLACKLIST", "sms.carrier_refused"),
    (_SMS_CODES, r"(IA|IB|IC|ID|CA|CB|DA|MA):?\d+", "sms.carrier_error"),
    (_SMS_CODES, r"FAIL(ED)?|failed", "sms.receipt_failed"),
    (_SMS_CODES, r".*(isp\.\w+|InternalError\w*|RequestLimitExceeded\w*|Throttling\w*|HTTP \d+).*"
                 r"|.*(unreadable answer|no status for this number|answer too large).*", "provider_error"),
    # voice: call results (Aliyun `<code> <what>`, Tencent `result|failure <code> <what>`), adapter refusals
    (("voice",), r"(result |failure )?\S+ (not answered|no one answered|no answer|busy|in a call|circuit busy|"
                 r"switched off|unreachable|temporarily unreachable|out of the service area|network busy|forwarded|"
                 r"call failed)",
     "voice.no_answer"),
    (("voice",), r"\S+ rejected", "voice.rejected"),
    (("voice",), r"(failure )?\S+ (invalid number|empty number|suspended|in arrears|number unavailable|"
                 r"incoming calls barred|called number restricted|call restricted|number does not exist|"
                 r"number expired|service paused|voice calls not enabled)|not a mainland number",
     "voice.bad_number"),
    (("voice",), r"Tencent VMS calls mainland mobiles only.*", "voice.landline"),
    (("proxy",), r"proxy not told.*", "proxy.not_told"),
    # email (reply codes and RFC 3463 enhanced codes)
    (("email",), r"SMTP \d+ .*authentication failed", "email.auth"),
    (("email",), r"SMTP server lacks a required extension.*", "email.extension"),
    (("email",), r"SMTP TLS handshake failed", "email.tls"),
    (("email",), r"SMTP server lacks SMTPUTF8.*", "email.utf8"),
    (("email",), r"invalid email address", "email.bad_address"),
    (("email",), r"SMTP 5\d\d 5\.1\.\d+", "email.no_mailbox"),
    (("email",), r"SMTP 5\d\d 5\.2\.2|SMTP 552\b.*", "email.mailbox_full"),
    (("email",), r"SMTP 5\d\d 5\.7\.\d+", "email.policy"),
    (("email",), r"SMTP 4\d\d.*", "email.temporary"),
    (("email",), r"SMTP 5\d\d.*|SMTP error", "email.refused"),
)
_COMPILED = tuple((channels, re.compile(pattern), key) for channels, pattern, key in _RULES)
_GAVE_UP = re.compile(r"(?P<inner>.*); gave up(?P<why>.*)")
_RECEIPT = "receipt: "


@dataclass(frozen=True, slots=True)
class Cause:
    """Why a delivery failed: a stable key, its words in any language (`words(lang)`; `zh` and `en`) and the raw
    text as stored (masked), or None when nothing was stored."""

    key: str
    said: Said
    raw: str | None = None

    def words(self, lang: str) -> str:
        return self.said.in_lang(lang)

    @property
    def zh(self) -> str:
        return self.words("zh-CN")

    @property
    def en(self) -> str:
        return self.words("en")


@dataclass(frozen=True, slots=True)
class CauseCount:
    """Deliveries of one channel that failed for one cause (`cause.raw`: the most frequent raw text)."""

    channel: str
    cause: Cause
    count: int


def _worded(key: str, channel: str, raw: str | None, inner: Cause | None = None) -> Cause:
    context, msgid = WORDS[key]
    said = Said(msgid, {"channel": channel, "inner": inner.said if inner else ""}, context)
    return Cause(f"{key}:{inner.key}" if inner else key, said, raw)


def _match(channel: str, text: str) -> str:
    for channels, pattern, key in _COMPILED:
        if (channels is None or channel in channels) and pattern.fullmatch(text):
            return key
    return "other"


def explain(channel: str, status: str, last_error: str | None) -> Cause:
    """The cause of one final failure (`status` failed, expired or cancelled) from its stored text."""
    raw = scrub(last_error) if last_error else None
    if status == "expired":
        return _worded("expired", channel, raw)
    if status == "cancelled":
        return _worded("subscriber_deleted" if last_error == "subscriber deleted" else "cancelled", channel, raw)
    if not last_error:
        return _worded("unknown", channel, None)
    text = last_error.strip()
    gave_up = _GAVE_UP.fullmatch(text)
    if gave_up:
        inner = explain(channel, status, gave_up["inner"])
        key = "gave_up_expiring" if "expires" in gave_up["why"] else "gave_up"
        return _worded(key, channel, raw, inner)
    return _worded(_match(channel, text.removeprefix(_RECEIPT)), channel, raw)


def fold(rows: Iterable[tuple[str, str, str | None, int]]) -> list[CauseCount]:
    """The store's failure groups (channel, status, last_error, deliveries) added up by channel and cause, the
    most frequent first; each keeps the raw text seen most often."""
    totals: dict[tuple[str, str], int] = {}
    examples: dict[tuple[str, str], tuple[int, Cause]] = {}
    for channel, status, text, count in rows:
        cause = explain(channel, status, text)
        slot = (channel, cause.key)
        totals[slot] = totals.get(slot, 0) + count
        if slot not in examples or count > examples[slot][0]:
            examples[slot] = (count, cause)
    ordered = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return [CauseCount(channel, examples[(channel, key)][1], total) for (channel, key), total in ordered]


async def alert_causes(store: Store, alert_id: str) -> list[CauseCount]:
    """The causes of an alert's failed deliveries, read through the store's `failure_errors`."""
    return fold(await store.failure_errors(alert_id))
