"""The sign-up pages' words (/subscribe and its verification steps), in Simplified Chinese (the default) and
English, and the consent text, versioned: the version a citizen agreed to is stored with their consent, so a
change of wording is a new version (`notifier.verification.CONSENT_VERSION`) and a new entry in `CONSENT`.

The language comes from `?lang=` on a GET and the form's `lang` field on a POST. Region, group, domain and topic
names come from the catalogue, not from here.
"""

from __future__ import annotations

from collections.abc import Callable

LANGS = ("zh-CN", "en")
DEFAULT_LANG = "zh-CN"

_ZH: dict[str, str] = {
    "app": "长治市公益信息定向推送",
    "skip": "跳到正文",
    "switch_lang": "English",
    "back": "返回订阅页面",
    "subscribe.title": "订阅公益信息",
    "subscribe.intro": "选择您关心的信息、所在区县和接收方式。确认联系方式之前，我们不会向您发送任何信息。",
    "topics.legend": "您想接收哪些信息（可多选）",
    "region.label": "所在区县",
    "region.choose": "请选择",
    "groups.legend": "您是否属于以下人群（可选，用于定向发布面向特定人群的信息）",
    "channels.legend": "接收方式（可多选；信息先发到排在前面的方式）",
    "channel.wechat": "微信公众号",
    "channel.sms": "短信",
    "channel.email": "电子邮件",
    "contacts.legend": "联系方式",
    "mobile.label": "手机号码",
    "mobile.hint": "选择短信时必填，限中国大陆手机号码；我们会发送6位验证码。",
    "email.label": "电子邮箱",
    "email.hint": "选择电子邮件时必填；我们会发送确认链接。",
    "wechat.hint": "选择微信时，提交后用微信扫码关注公众号即完成绑定；请同时选择短信或电子邮件。",
    "locale.label": "信息语言",
    "locale.zh-CN": "简体中文",
    "locale.en": "English（英文）",
    "quiet.legend": "免打扰时段（可选，北京时间）",
    "quiet.hint": "此时段内的一般信息推迟到时段结束后发送；紧急预警照常立即发送。",
    "quiet.start": "开始",
    "quiet.end": "结束",
    "consent.legend": "个人信息处理说明",
    "consent.version": "说明版本：{version}",
    "consent.agree": "我已阅读并同意上述个人信息处理说明",
    "submit": "提交订阅",
    "errors.summary": "请修改以下问题后再提交：",
    "err.topics": "请至少选择一项信息。",
    "err.region": "请选择所在区县。",
    "err.groups": "人群选择无效，请重新选择。",
    "err.channels": "请至少选择一种接收方式。",
    "err.channels_unavailable": "所选接收方式暂不可用，请选择其他方式。",
    "err.wechat_alone": "选择微信时，请同时选择短信或电子邮件。",
    "err.mobile": "请输入有效的中国大陆手机号码（11位，以1开头）。",
    "err.mobile_missing": "选择短信时请填写手机号码。",
    "err.email": "请输入有效的电子邮箱地址，例如 name@example.org。",
    "err.email_missing": "选择电子邮件时请填写电子邮箱。",
    "err.locale": "请选择信息语言。",
    "err.quiet": "免打扰时段请同时填写开始和结束时间，且两者不能相同。",
    "err.consent": "请阅读并勾选同意个人信息处理说明。",
    "err.consent_changed": "说明已更新，请重新阅读并勾选同意。",
    "err.form": "提交的内容无效，请检查后重试。",
    "check.title": "请确认您的联系方式",
    "check.pending": "订阅已提交，目前为“待确认”状态。至少确认一种联系方式后才会开始推送；"
                     "24小时内未确认的订阅及其信息将被自动删除。",
    "code.legend": "短信验证码",
    "code.sent": "验证码已发送至 {mobile}，10分钟内有效。",
    "code.not_sent": "验证码暂时未能发出，请稍后点击“重新发送验证码”。",
    "code.label": "6位验证码",
    "code.submit": "确认",
    "code.resend": "重新发送验证码",
    "code.resent": "新的验证码已发送，之前的验证码已失效。",
    "code.wrong": "验证码不正确，请重新输入。",
    "code.locked": "输入错误次数过多，此验证码已失效。请重新获取验证码。",
    "code.expired": "验证码已过期，请重新获取验证码。",
    "code.missing": "没有待确认的验证码，请重新获取。",
    "code.nothing": "此手机号码已确认，或订阅已不存在。",
    "email.sent": "确认邮件已发送至 {email}，请在24小时内打开邮件中的链接完成确认。",
    "email.not_sent": "确认邮件暂时未能发出，请稍后重新提交订阅。",
    "wechat.legend": "绑定微信",
    "wechat.scan": "请用微信扫描下方二维码并关注公众号，关注后即完成绑定（24小时内有效）。",
    "wechat.qr_alt": "关注公众号的二维码",
    "wechat.no_qr": "二维码暂时无法显示。关注公众号时需要使用以下绑定码，请联系客服协助：",
    "done.title": "订阅已生效",
    "done.body": "联系方式已确认，您将开始收到所订阅的信息。",
    "done.manage": "管理我的订阅",
    "done.manage_hint": "在管理页面可以修改订阅、查看或下载我们保存的您的信息，或删除全部信息。"
                        "请保存此链接；每封邮件中也附有管理和退订链接，回复短信“TD”即可退订短信。",
    "confirm.title": "确认电子邮箱",
    "confirm.body": "请点击下方按钮，确认使用此电子邮箱接收公益信息。",
    "confirm.submit": "确认订阅",
    "invalid.title": "链接无效或已过期",
    "invalid.body": "此链接无效、已使用或已超过24小时。如需订阅，请重新提交。",
    "forbidden.title": "页面已过期",
    "forbidden.body": "表单已过期或无法确认来自本网站，请返回重新提交。",
    "limited.title": "请求过于频繁",
    "limited.sms-code": "此手机号码获取验证码的次数已达上限（每分钟1次、每小时5次、每天10次），"
                        "请在约 {minutes} 分钟后再试。",
    "limited.email-link": "此电子邮箱接收确认邮件的次数已达上限（每分钟1次、每小时5次、每天10次），"
                          "请在约 {minutes} 分钟后再试。",
    "limited.signup": "来自您所在网络的提交次数过多，请在约 {minutes} 分钟后再试。",
}

_EN: dict[str, str] = {
    "app": "Changzhi public-welfare notifications",
    "skip": "Skip to content",
    "switch_lang": "中文",
    "back": "Back to the subscription page",
    "subscribe.title": "Subscribe to public-welfare information",
    "subscribe.intro": "Choose what you want to hear about, your county or district and how to reach you. "
                       "Nothing is sent to you before you confirm your contact details.",
    "topics.legend": "What would you like to receive (choose any)",
    "region.label": "Your county or district",
    "region.choose": "Choose…",
    "groups.legend": "Do you belong to any of these groups (optional; some disclosures are aimed at them)",
    "channels.legend": "How to reach you (choose any; messages go first to the one listed first)",
    "channel.wechat": "WeChat official account",
    "channel.sms": "SMS",
    "channel.email": "Email",
    "contacts.legend": "Contact details",
    "mobile.label": "Mobile number",
    "mobile.hint": "Needed for SMS; mainland China numbers only. We will text you a 6-digit code.",
    "email.label": "Email address",
    "email.hint": "Needed for email. We will send you a confirmation link.",
    "wechat.hint": "For WeChat, scan the code shown after you submit and follow the official account. "
                   "Please also choose SMS or email.",
    "locale.label": "Language of messages",
    "locale.zh-CN": "简体中文 (Simplified Chinese)",
    "locale.en": "English",
    "quiet.legend": "Quiet hours (optional, Beijing time)",
    "quiet.hint": "Ordinary messages wait until the quiet hours end; urgent warnings are sent at once.",
    "quiet.start": "From",
    "quiet.end": "Until",
    "consent.legend": "How your personal information is handled",
    "consent.version": "Text version: {version}",
    "consent.agree": "I have read and agree to how my personal information is handled",
    "submit": "Subscribe",
    "errors.summary": "Please correct the following and submit again:",
    "err.topics": "Choose at least one kind of information.",
    "err.region": "Choose your county or district.",
    "err.groups": "The group choice is not valid; please choose again.",
    "err.channels": "Choose at least one way to reach you.",
    "err.channels_unavailable": "A way you chose is not available; please choose another.",
    "err.wechat_alone": "With WeChat, please also choose SMS or email.",
    "err.mobile": "Enter a valid mainland China mobile number (11 digits starting with 1).",
    "err.mobile_missing": "Enter your mobile number to receive SMS.",
    "err.email": "Enter a valid email address, such as name@example.org.",
    "err.email_missing": "Enter your email address to receive email.",
    "err.locale": "Choose the language of messages.",
    "err.quiet": "Give both the start and the end of the quiet hours, and make them different.",
    "err.consent": "Please read and agree to how your personal information is handled.",
    "err.consent_changed": "The text has changed; please read it again and agree.",
    "err.form": "The form could not be read; please check it and try again.",
    "check.title": "Confirm your contact details",
    "check.pending": "Your subscription is waiting for confirmation. Nothing is sent until at least one contact is "
                     "confirmed; unconfirmed subscriptions and their data are deleted after 24 hours.",
    "code.legend": "SMS code",
    "code.sent": "A code was sent to {mobile}; it is valid for 10 minutes.",
    "code.not_sent": "The code could not be sent just now; please press \"Send a new code\" in a moment.",
    "code.label": "6-digit code",
    "code.submit": "Confirm",
    "code.resend": "Send a new code",
    "code.resent": "A new code was sent; the previous one no longer works.",
    "code.wrong": "That code is not right; please try again.",
    "code.locked": "Too many wrong tries: this code no longer works. Please ask for a new code.",
    "code.expired": "The code has expired; please ask for a new one.",
    "code.missing": "There is no code waiting; please ask for a new one.",
    "code.nothing": "This mobile number is already confirmed, or the subscription no longer exists.",
    "email.sent": "A confirmation email was sent to {email}; open its link within 24 hours.",
    "email.not_sent": "The confirmation email could not be sent just now; please subscribe again later.",
    "wechat.legend": "Link WeChat",
    "wechat.scan": "Scan the QR code below with WeChat and follow the official account; following links it "
                   "(valid for 24 hours).",
    "wechat.qr_alt": "QR code to follow the official account",
    "wechat.no_qr": "The QR code cannot be shown just now. Following the account needs this link code; please "
                    "ask the help desk:",
    "done.title": "Your subscription is active",
    "done.body": "Your contact is confirmed: you will now receive the information you chose.",
    "done.manage": "Manage my subscription",
    "done.manage_hint": "There you can change your subscription, see or download the data we hold about you, or "
                        "delete it all. Keep this link; every email also carries manage and unsubscribe links, "
                        "and replying \"TD\" to an SMS stops SMS.",
    "confirm.title": "Confirm your email address",
    "confirm.body": "Press the button below to confirm that this address should receive public-welfare information.",
    "confirm.submit": "Confirm",
    "invalid.title": "This link is not valid",
    "invalid.body": "The link is not valid, was already used, or is older than 24 hours. Please subscribe again.",
    "forbidden.title": "This page has expired",
    "forbidden.body": "The form has expired or could not be confirmed as coming from this site. Please go back and "
                      "submit it again.",
    "limited.title": "Too many requests",
    "limited.sms-code": "This number has had as many codes as allowed (1 a minute, 5 an hour, 10 a day). "
                        "Please try again in about {minutes} minutes.",
    "limited.email-link": "This address has had as many confirmation emails as allowed (1 a minute, 5 an hour, "
                          "10 a day). Please try again in about {minutes} minutes.",
    "limited.signup": "Too many sign-ups came from your network. Please try again in about {minutes} minutes.",
}

TEXT: dict[str, dict[str, str]] = {"zh-CN": _ZH, "en": _EN}

# The consent text, by version and language: shown on the form, its version stored with the consent.
CONSENT: dict[str, dict[str, tuple[str, ...]]] = {
    "2026-11": {
        "zh-CN": (
            "我们收集：您选择的区县、人群类别、信息主题、信息语言和免打扰时段，以及您提供的手机号码、电子邮箱或"
            "微信 openid。",
            "用途：仅用于向您定向推送您所订阅的公益信息，并统计信息的送达情况（统计结果不含任何联系方式）。",
            "不用于其他目的，不出售、不向第三方提供；短信、邮件和微信服务商仅为发送信息处理您的联系方式。",
            "保存期限：直至您退订或删除；24小时内未确认的订阅将被自动删除。",
            "您的权利：每条信息都附有链接，您可以随时查看、修改、下载或删除您的信息，或一键退订；"
            "回复短信“TD”也可退订短信。",
            "投诉与监督：各类信息的责任部门和监督渠道见“公开目录”页面。",
        ),
        "en": (
            "What we collect: the county or district, population groups, topics, message language and quiet hours "
            "you choose, and the mobile number, email address or WeChat openid you give.",
            "Why: only to send you the public-welfare information you subscribed to, and to count how much of it "
            "reached people (the counts contain no contact details).",
            "Nothing else: your details are not sold or given to anyone; the SMS, email and WeChat providers handle "
            "your contact only to deliver messages.",
            "How long: until you unsubscribe or delete it; a subscription not confirmed within 24 hours is deleted.",
            "Your rights: every message carries a link to see, change, download or delete your data, or to "
            "unsubscribe in one step; replying \"TD\" to an SMS also stops SMS.",
            "Complaints and supervision: the responsible department and supervision channel of every kind of "
            "information are on the catalogue page.",
        ),
    },
    "2026-12": {
        "zh-CN": (
            "我们收集：您选择的区县、人群类别、信息主题、信息语言和免打扰时段，以及您提供的手机号码、电子邮箱或"
            "微信 openid。",
            "用途：仅用于向您定向推送您所订阅的公益信息，并统计信息的送达情况（统计结果不含任何联系方式）。",
            "不用于其他目的，不出售、不向第三方提供；短信、邮件和微信服务商仅为发送信息处理您的联系方式。",
            "保存期限：直至您退订或删除；24小时内未确认的订阅将被自动删除。",
            "您的权利：每封邮件都附有链接，您可以随时查看、修改、下载或删除您的信息，或一键退订；"
            "订阅成功页面也给出管理链接；回复短信“TD”即可退订短信。",
            "投诉与监督：各类信息的责任部门和监督渠道见“公开目录”页面。",
        ),
        "en": (
            "What we collect: the county or district, population groups, topics, message language and quiet hours "
            "you choose, and the mobile number, email address or WeChat openid you give.",
            "Why: only to send you the public-welfare information you subscribed to, and to count how much of it "
            "reached people (the counts contain no contact details).",
            "Nothing else: your details are not sold or given to anyone; the SMS, email and WeChat providers handle "
            "your contact only to deliver messages.",
            "How long: until you unsubscribe or delete it; a subscription not confirmed within 24 hours is deleted.",
            "Your rights: every email carries a link to see, change, download or delete your data, or to "
            "unsubscribe in one step, and the confirmation page gives you the manage link; replying \"TD\" to an "
            "SMS stops SMS.",
            "Complaints and supervision: the responsible department and supervision channel of every kind of "
            "information are on the catalogue page.",
        ),
    },
}

Translate = Callable[..., str]


def pick_lang(*candidates: str | None) -> str:
    """The first candidate that is a supported language, else Chinese."""
    for candidate in candidates:
        if candidate in LANGS:
            return candidate
    return DEFAULT_LANG


def translator(lang: str) -> Translate:
    """`t(key, **values)`: the text of `key` in `lang` with `{name}` filled in; an unknown key shows itself."""
    table = TEXT.get(lang, _ZH)

    def t(key: str, **values: object) -> str:
        text = table.get(key)
        if text is None:
            return key
        return text.format(**values) if values else text

    return t
