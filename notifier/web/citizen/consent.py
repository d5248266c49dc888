"""The consent text of the sign-up form, by version. The version a citizen agreed to is stored with their consent
(`notifier.verification.CONSENT_VERSION` names the one shown now), so the words of a version never change: each
version's paragraphs are msgids of their own context (`consent <version>`) in the catalogue, and a change of
wording is a new version here, a new context there. Earlier versions stay, as the record of what was agreed to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from notifier.i18n import NP_, translator

CONSENT: Mapping[str, Sequence[tuple[str, str]]] = {
    "2026-11": (
        NP_("consent 2026-11",
            "What we collect: the county or district, population groups, topics, message language and quiet "
            "hours you choose, and the mobile number, email address or WeChat openid you give."),
        NP_("consent 2026-11",
            "Why: only to send you the public-welfare information you subscribed to, and to count how much of "
            "it reached people (the counts contain no contact details)."),
        NP_("consent 2026-11",
            "Nothing else: your details are not sold or given to anyone; the SMS, email and WeChat providers "
            "handle your contact only to deliver messages."),
        NP_("consent 2026-11",
            "How long: until you unsubscribe or delete it; a subscription not confirmed within 24 hours is "
            "deleted."),
        NP_("consent 2026-11",
            "Your rights: every message carries a link to see, change, download or delete your data, or to "
            "unsubscribe in one step; replying \"TD\" to an SMS also stops SMS."),
        NP_("consent 2026-11",
            "Complaints and supervision: the responsible department and supervision channel of every kind of "
            "information are on the catalogue page."),
    ),
    "2026-12": (
        NP_("consent 2026-12",
            "What we collect: the county or district, population groups, topics, message language and quiet "
            "hours you choose, and the mobile number, email address or WeChat openid you give."),
        NP_("consent 2026-12",
            "Why: only to send you the public-welfare information you subscribed to, and to count how much of "
            "it reached people (the counts contain no contact details)."),
        NP_("consent 2026-12",
            "Nothing else: your details are not sold or given to anyone; the SMS, email and WeChat providers "
            "handle your contact only to deliver messages."),
        NP_("consent 2026-12",
            "How long: until you unsubscribe or delete it; a subscription not confirmed within 24 hours is "
            "deleted."),
        NP_("consent 2026-12",
            "Your rights: every email carries a link to see, change, download or delete your data, or to "
            "unsubscribe in one step, and the confirmation page gives you the manage link; replying \"TD\" to "
            "an SMS stops SMS."),
        NP_("consent 2026-12",
            "Complaints and supervision: the responsible department and supervision channel of every kind of "
            "information are on the catalogue page."),
    ),
}


def consent_text(version: str, lang: str) -> list[str]:
    """The paragraphs of a consent version in `lang`."""
    tr = translator(lang)
    return [tr.pgettext(context, message) for context, message in CONSENT[version]]
