"""Why a delivery failed, in words an official can act on: `explain(channel, status, last_error) -> Cause`.

Every `last_error` text the service writes maps to a cause — the adapters' classifiers (channels/webhook.py,
channels/email.py, channels/wechat.py + wechat_token.py, channels/sms/aliyun.py and tencent.py), the dispatcher
(`channel X is not configured`, `no usable contact`, `…; gave up after N attempts`), the store's sweep (`lease
expired: …`), receipts (`receipt: UNDELIV`, `receipt: failed:user block`) and erasure (`subscriber deleted`).
A text matched by no rule gets the generic cause `other`. The raw text is always kept beside the words (masked:
a provider's answer could quote a contact), so that the code can be looked up with the provider.

`fold(rows)` adds up the store's failure groups (`failure_errors`: channel, status, last_error, count) by cause,
for `notifier coverage`, `notifier publish --wait` and the dashboard; `alert_causes(store, alert_id)` does the
reading too. `UNREACHABLE` words the coverage object's
`unreachable` keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from notifier.store import Store
from subscriptions.masking import scrub

# cause key → (zh-CN, en). `{channel}` is filled with the delivery's channel. One table: the gettext move later
# is mechanical.
WORDS: dict[str, tuple[str, str]] = {
    "not_configured": ("该渠道未配置（配置文件缺少 [channels.{channel}]），未能发送",
                       "this channel is not configured ([channels.{channel}] is missing): nothing was sent"),
    "no_contact": ("订阅人在该渠道没有可用的联系方式（未验证、已停用或已退订）",
                   "the subscriber has no usable contact on this channel (unverified, disabled or unsubscribed)"),
    "lease_expired": ("发送进程中途停止，重发次数已用尽（请检查工作进程日志）",
                      "the worker stopped mid-send and the resends were used up (check the worker's logs)"),
    "internal": ("系统内部错误（请查看服务日志）", "internal error (see the service's log)"),
    "timeout": ("服务商或接收方长时间无应答", "the provider or receiver did not answer in time"),
    "unreachable": ("无法连接服务商或接收方（网络或地址问题）",
                    "could not connect to the provider or receiver (network or address)"),
    "provider_error": ("服务商系统故障或应答异常", "the provider failed or gave an unreadable answer"),
    "expired": ("预警到期时仍未发出", "the alert expired before this delivery could go out"),
    "cancelled": ("预警已撤回，未再发送", "the alert was cancelled before this delivery went out"),
    "subscriber_deleted": ("订阅人已删除本人信息", "the subscriber deleted their data"),
    "gave_up": ("多次重试仍未成功：{inner}", "retries used up: {inner}"),
    "gave_up_expiring": ("预警到期前未能重试成功：{inner}", "the alert expires before another retry: {inner}"),
    "other": ("其他原因（见原始错误码）", "another reason (see the raw code)"),
    "unknown": ("未记录失败原因", "no reason was recorded"),
    # webhook
    "webhook.private": ("回调地址指向内网或本机，按安全策略拒绝",
                        "the webhook URL points to a private or local address and is refused"),
    "webhook.bad_url": ("回调地址无效", "the webhook URL is not valid"),
    "webhook.secret": ("回调签名密钥缺失或无效", "the webhook signing secret is missing or invalid"),
    "webhook.gone": ("接收方已停用该回调地址（HTTP 410），以后不再推送",
                     "the receiver retired this endpoint (HTTP 410); it is disabled for later alerts"),
    "webhook.redirect": ("回调地址返回重定向，按安全策略不跟随", "the endpoint redirected; redirects are not followed"),
    "webhook.auth": ("接收方拒绝了请求（签名或权限问题）",
                     "the receiver refused the request (signature or permission)"),
    "webhook.not_found": ("回调地址不存在（HTTP 404）", "the webhook URL does not exist (HTTP 404)"),
    "webhook.busy": ("接收方繁忙或限流", "the receiver is busy or rate-limiting"),
    "webhook.refused": ("接收方拒收请求", "the receiver refused the request"),
    "webhook.server_error": ("接收方服务器出错", "the receiver's server failed"),
    # WeChat
    "wechat.not_following": ("用户未关注或已取消关注公众号，无法接收模板消息",
                             "the user does not follow (or has unfollowed) the official account"),
    "wechat.refused": ("用户拒收本公众号的消息", "the user refuses messages from the official account"),
    "wechat.blocked": ("用户已屏蔽本公众号的模板消息", "the user blocked the account's template messages"),
    "wechat.bad_openid": ("openid 无效（不属于本公众号）", "the openid is not valid for this official account"),
    "wechat.bad_template": ("模板 ID 无效，请检查 template_id 配置", "the template id is not valid: check template_id"),
    "wechat.bad_data": ("模板内容不合规（关键词不匹配或超长），请检查 field_map",
                        "the template data was refused (keywords or lengths): check field_map"),
    "wechat.credentials": ("公众号凭证无效：请检查 AppID、AppSecret 和 IP 白名单",
                           "the account's credentials were refused: check app_id, app_secret and the IP whitelist"),
    "wechat.quota": ("公众号接口调用超出频率或每日配额", "the account's API rate or daily quota was exceeded"),
    "wechat.system": ("微信系统原因发送失败", "WeChat failed to deliver it (system failure)"),
    # SMS
    "sms.bad_number": ("手机号码无效或不是中国大陆手机号", "not a valid mainland mobile number"),
    "sms.international": ("境外号码需要国际短信模板", "a number outside the mainland needs an international template"),
    "sms.number_limit": ("该号码接收短信已达服务商频率上限", "this number reached the provider's per-number limit"),
    "sms.account_cap": ("账户发送量达到控制台设定的日或月上限", "the account reached its daily or monthly sending cap"),
    "sms.credentials": ("短信服务凭证或权限错误：请检查 AccessKey/SecretKey 和授权",
                        "the SMS credentials or permissions were refused: check the access keys and grants"),
    "sms.template": ("短信签名或模板未审核通过或与配置不符",
                     "the SMS signature or template is not approved or not as configured"),
    "sms.params": ("短信模板变量不合规（缺少、超长或含链接）",
                   "the template variables were refused (missing, too long or holding a link)"),
    "sms.balance": ("短信账户余额或套餐不足", "the SMS account has no balance or package left"),
    "sms.suspended": ("短信服务已停用", "the SMS service is suspended for the account"),
    "sms.content": ("短信内容被判定为敏感或违规而拦截", "the content was blocked as sensitive"),
    "sms.blocked": ("用户已退订或号码在运营商免打扰名单中",
                    "the user unsubscribed or the number is on a do-not-disturb list"),
    "sms.no_verification_template": ("未配置验证码模板 verification_template_code",
                                     "verification_template_code is not configured"),
    "sms.undeliverable": ("手机停机、关机或暂停服务，短信无法送达",
                          "the handset could not take it (number suspended, switched off or barred)"),
    "sms.expired": ("手机长时间关机或不在服务区，短信过期未送达",
                    "the handset was off or out of coverage until the message expired"),
    "sms.rejected": ("运营商拒收（内容拦截、黑名单或号码异常）",
                     "the carrier rejected it (content filter, blacklist or number problem)"),
    "sms.handset": ("空号、停机、关机或无法接通（短信中心报告）",
                    "no such number, suspended, switched off or unreachable (SMS centre report)"),
    "sms.carrier_refused": ("运营商网关拒收：号码无效、停机或在黑名单中",
                            "the carrier's gateway refused it: invalid, suspended or blacklisted number"),
    "sms.carrier_error": ("运营商网络内部错误", "an error inside the carrier's network"),
    "sms.receipt_failed": ("运营商回执：未送达（未说明原因）", "the carrier reported it undelivered, without a reason"),
    # voice (call results; `gave up after N calls` wraps the last one)
    "voice.no_answer": ("电话未接通：无人接听、占线、关机或不在服务区",
                        "the call was not answered: no answer, busy, switched off or out of coverage"),
    "voice.rejected": ("被叫拒接电话", "the person declined the call"),
    "voice.bad_number": ("空号、停机、欠费或号码被限制呼入", "no such number, suspended, in arrears or barred"),
    "voice.landline": ("语音服务商只能呼叫手机，不能呼叫固定电话",
                       "the voice provider calls mobiles only, not landlines"),
    # assisted reach
    "proxy.not_told": ("网格员（照护人）的所有渠道均未送达，无人转告",
                       "the grid worker or caregiver could not be reached on any channel, so nobody told them"),
    # email
    "email.no_mailbox": ("收件邮箱不存在", "the mailbox does not exist"),
    "email.mailbox_full": ("收件邮箱已满", "the mailbox is full"),
    "email.policy": ("收件方邮件服务器按策略拒收（反垃圾或权限）",
                     "the receiving mail server refused it by policy (spam filter or permission)"),
    "email.auth": ("SMTP 登录失败：请检查用户名和密码", "SMTP login failed: check username and password"),
    "email.extension": ("SMTP 服务器不支持所需的 STARTTLS 或 AUTH", "the SMTP server lacks STARTTLS or AUTH"),
    "email.tls": ("SMTP 加密握手失败（证书不受信任或已过期）",
                  "the SMTP TLS handshake failed (untrusted or expired certificate)"),
    "email.utf8": ("收件方服务器不支持中文邮箱地址（SMTPUTF8）",
                   "the server cannot take this non-ASCII address (SMTPUTF8)"),
    "email.bad_address": ("邮箱地址无效", "the email address is not valid"),
    "email.temporary": ("收件方服务器暂时拒收（如灰名单）", "the receiving server deferred it (e.g. greylisting)"),
    "email.refused": ("收件方服务器拒收", "the receiving server refused it"),
}

# The coverage object's `unreachable` keys (targeted but not reached, by cause), worded.
UNREACHABLE: dict[str, tuple[str, str]] = {
    "no_contact": ("无可用联系方式", "no usable contact"),
    "all_failed": ("所有渠道均失败", "every channel failed"),
    "pending": ("仍在发送或等待回执", "still sending or awaiting a receipt"),
    "expired": ("已过期", "expired"),
    "cancelled": ("已撤回", "cancelled"),
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
    """Why a delivery failed: a stable key, the words (zh-CN first, en second) and the raw text as stored
    (masked), or None when nothing was stored."""

    key: str
    zh: str
    en: str
    raw: str | None = None


@dataclass(frozen=True, slots=True)
class CauseCount:
    """Deliveries of one channel that failed for one cause (`cause.raw`: the most frequent raw text)."""

    channel: str
    cause: Cause
    count: int


def _worded(key: str, channel: str, raw: str | None, inner: Cause | None = None) -> Cause:
    zh, en = WORDS[key]
    fill = {"channel": channel, "inner": inner.zh if inner else ""}
    fill_en = {"channel": channel, "inner": inner.en if inner else ""}
    full_key = f"{key}:{inner.key}" if inner else key
    return Cause(full_key, zh.format(**fill), en.format(**fill_en), raw)


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
