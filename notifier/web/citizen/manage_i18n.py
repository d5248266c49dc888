"""The words of the subscriber's own pages (manage, unsubscribe, delete), in Simplified Chinese (the default) and
English. Pages look every label up here with `t(key)`; topic, region and group names come from the catalogue."""

from __future__ import annotations

from collections.abc import Callable

LANGS = ("zh-CN", "en")
DEFAULT_LANG = "zh-CN"

_ZH: dict[str, str] = {
    "app": "长治市公益信息定向推送",
    "skip": "跳到正文",
    "switch_lang": "English",
    "colon": "：",
    "channel.sms": "短信",
    "channel.wechat": "微信",
    "channel.email": "电子邮件",
    "channel.webhook": "Webhook 接口",
    "none": "无",
    "unsub.title": "退订",
    "unsub.lead": "确认后将停止向您推送以下信息：",
    "unsub.topic": "主题",
    "unsub.channels": "推送渠道",
    "unsub.not_subscribed": "您目前没有订阅此主题，无需退订。",
    "unsub.this": "退订此主题",
    "unsub.all": "退订全部主题",
    "unsub.all_hint": "退订全部主题后，我们仍保存您的联系方式，直到您在管理页面删除个人信息。",
    "unsub.done.title": "已退订",
    "unsub.done.topic": "您已退订“{topic}”，不会再收到此类信息。",
    "unsub.done.all": "您已退订全部主题，不会再收到任何信息。",
    "unsub.manage": "管理订阅、重新订阅或删除个人信息",
    "unsub.subscribe": "重新订阅",
    "manage.title": "我的订阅",
    "manage.lead": "这里是我们保存的关于您的全部信息。联系方式已部分隐藏；下载的数据文件中是完整内容。",
    "manage.held": "我们保存的信息",
    "manage.contacts": "联系方式",
    "manage.verified": "已验证",
    "manage.unverified": "未验证",
    "manage.disabled": "已停用",
    "manage.region": "所在区县",
    "manage.groups": "所属人群",
    "manage.locale": "接收语言",
    "manage.quiet": "免打扰时段",
    "manage.quiet_none": "未设置",
    "manage.consent": "同意记录",
    "manage.consent_at": "{at}，方式：{source}",
    "manage.subscriptions": "订阅的主题",
    "manage.subscriptions_none": "目前没有订阅任何主题。",
    "manage.topics.title": "修改订阅的主题和渠道",
    "manage.topics.hint": "勾选希望接收的主题和渠道；某个主题一个渠道都不勾选即为退订该主题。",
    "manage.topics.save": "保存订阅",
    "manage.settings.title": "修改语言和免打扰时段",
    "manage.quiet_start": "免打扰开始时间",
    "manage.quiet_end": "免打扰结束时间",
    "manage.quiet_hint": "24 小时制，如 22:00 至 07:00（北京时间）；两项都留空表示不设免打扰。紧急信息不受免打扰限制。",
    "manage.settings.save": "保存设置",
    "manage.saved": "已保存。",
    "manage.errors": "未保存：请修改以下标出的内容。",
    "manage.download.title": "下载我的数据",
    "manage.download.hint": "下载我们保存的关于您的全部信息（JSON 格式，含完整联系方式和推送记录）。",
    "manage.download": "下载数据（JSON）",
    "manage.delete.title": "删除我的全部信息",
    "manage.delete.hint": "删除后，您的联系方式、订阅和设置将从系统中彻底清除，不再收到任何信息，且无法恢复。"
                          "已发布信息的统计数字（人数）不受影响，但不再包含任何能识别您的内容。",
    "manage.delete.go": "删除我的全部信息…",
    "delete.title": "确认删除全部信息",
    "delete.lead": "将删除：",
    "delete.what": "联系方式（{channels}）、所在区县、所属人群、订阅、免打扰设置和同意记录；尚未发出的推送将被取消。",
    "delete.confirm": "确认删除",
    "delete.cancel": "返回，不删除",
    "deleted.title": "已删除",
    "deleted.body": "您的全部信息已删除。如需再次接收信息，请重新订阅。",
    "error.invalid.title": "链接无效",
    "error.invalid.body": "此链接无效或不完整。请使用最近一条信息中的链接。",
    "error.expired.title": "链接已过期",
    "error.expired.body": "此链接已过期。请使用最近一条信息中的链接；短信用户也可回复 TD 退订。",
    "error.gone.title": "找不到订阅",
    "error.gone.body": "找不到此订阅，可能已经删除。",
    "error.form.title": "请重新提交",
    "error.form.body": "表单已过期或来源不明，未做任何更改。请返回页面重新提交。",
    "error.back": "返回",
    "locale.zh-CN": "简体中文",
    "locale.en": "English（英文）",
    "field.locale": "接收语言",
    "field.quiet_start": "免打扰开始时间",
    "field.quiet_end": "免打扰结束时间",
    "field.quiet_hours": "免打扰时段",
    "err.locale": "请选择列出的语言之一。",
    "err.time": "请按 24 小时制填写，如 22:00。",
    "err.same": "开始和结束时间不能相同。",
    "err.channel": "您没有可用的该渠道联系方式。",
    "err.topic": "没有这个主题。",
}

_EN: dict[str, str] = {
    "app": "Changzhi public-welfare notifications",
    "skip": "Skip to content",
    "switch_lang": "简体中文",
    "colon": ": ",
    "channel.sms": "SMS",
    "channel.wechat": "WeChat",
    "channel.email": "Email",
    "channel.webhook": "Webhook",
    "none": "none",
    "unsub.title": "Unsubscribe",
    "unsub.lead": "Once you confirm, we will stop sending you:",
    "unsub.topic": "Topic",
    "unsub.channels": "Channels",
    "unsub.not_subscribed": "You are not subscribed to this topic; there is nothing to stop.",
    "unsub.this": "Unsubscribe from this topic",
    "unsub.all": "Unsubscribe from everything",
    "unsub.all_hint": "After unsubscribing from everything we still hold your contacts until you delete your data "
                      "on the manage page.",
    "unsub.done.title": "Unsubscribed",
    "unsub.done.topic": "You are unsubscribed from “{topic}” and will get no more of these messages.",
    "unsub.done.all": "You are unsubscribed from every topic and will get no more messages.",
    "unsub.manage": "Manage, subscribe again or delete your data",
    "unsub.subscribe": "Subscribe again",
    "manage.title": "My subscription",
    "manage.lead": "This is everything we hold about you. Contacts are partly hidden here; the download has them "
                   "in full.",
    "manage.held": "What we hold",
    "manage.contacts": "Contacts",
    "manage.verified": "verified",
    "manage.unverified": "not verified",
    "manage.disabled": "disabled",
    "manage.region": "District",
    "manage.groups": "Groups",
    "manage.locale": "Language",
    "manage.quiet": "Quiet hours",
    "manage.quiet_none": "not set",
    "manage.consent": "Consent",
    "manage.consent_at": "{at}, via {source}",
    "manage.subscriptions": "Topics",
    "manage.subscriptions_none": "You are not subscribed to any topic.",
    "manage.topics.title": "Change topics and channels",
    "manage.topics.hint": "Tick the topics and channels you want; a topic with no channel ticked is unsubscribed.",
    "manage.topics.save": "Save topics",
    "manage.settings.title": "Change language and quiet hours",
    "manage.quiet_start": "Quiet hours start",
    "manage.quiet_end": "Quiet hours end",
    "manage.quiet_hint": "24-hour clock, e.g. 22:00 to 07:00 (Beijing time); leave both empty for none. "
                         "Urgent warnings are sent even in quiet hours.",
    "manage.settings.save": "Save settings",
    "manage.saved": "Saved.",
    "manage.errors": "Not saved: please correct the fields marked below.",
    "manage.download.title": "Download my data",
    "manage.download.hint": "Everything we hold about you, as JSON, with your contacts in full and the messages "
                            "sent to you.",
    "manage.download": "Download data (JSON)",
    "manage.delete.title": "Delete all my data",
    "manage.delete.hint": "Your contacts, subscriptions and settings are erased for good and you will get no more "
                          "messages. Counts of past disclosures stay as they were, with nothing that identifies "
                          "you.",
    "manage.delete.go": "Delete all my data…",
    "delete.title": "Confirm deletion",
    "delete.lead": "This deletes:",
    "delete.what": "your contacts ({channels}), district, groups, subscriptions, quiet hours and consent record; "
                   "messages not yet sent are cancelled.",
    "delete.confirm": "Delete everything",
    "delete.cancel": "Go back, delete nothing",
    "deleted.title": "Deleted",
    "deleted.body": "All your data has been deleted. To get messages again, subscribe anew.",
    "error.invalid.title": "Invalid link",
    "error.invalid.body": "This link is invalid or incomplete. Please use the link in your latest message.",
    "error.expired.title": "Link expired",
    "error.expired.body": "This link has expired. Please use the link in your latest message; by SMS you can also "
                          "reply TD to unsubscribe.",
    "error.gone.title": "Subscription not found",
    "error.gone.body": "This subscription cannot be found; it may have been deleted.",
    "error.form.title": "Please submit again",
    "error.form.body": "The form expired or came from elsewhere; nothing was changed. Go back and submit again.",
    "error.back": "Back",
    "locale.zh-CN": "简体中文 (Simplified Chinese)",
    "locale.en": "English",
    "field.locale": "Language",
    "field.quiet_start": "Quiet hours start",
    "field.quiet_end": "Quiet hours end",
    "field.quiet_hours": "Quiet hours",
    "err.locale": "Choose one of the listed languages.",
    "err.time": "Use the 24-hour clock, e.g. 22:00.",
    "err.same": "Start and end must differ.",
    "err.channel": "You have no usable contact for this channel.",
    "err.topic": "There is no such topic.",
}

TEXT = {"zh-CN": _ZH, "en": _EN}
Translate = Callable[..., str]


def pick_lang(query: str | None, preferred: str | None) -> str:
    """`?lang=` first, then the subscriber's own locale, then Chinese."""
    for candidate in (query, preferred):
        if candidate in LANGS:
            return candidate
    return DEFAULT_LANG


def translator(lang: str) -> Translate:
    """`t(key, **values)`: the text of `key` in `lang`, `{name}` filled in; an unknown key shows as itself."""
    table = TEXT.get(lang, _ZH)

    def t(key: str, **values: object) -> str:
        text = table.get(key, key)
        return text.format(**values) if values else text

    return t
