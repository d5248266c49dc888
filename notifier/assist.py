"""Assisted reach in messages and links: what a proxy's message adds — whom to tell, and how to confirm each one
told — and the signed links it carries (SPEC "Reach without a smartphone").

A proxy gets ONE message per alert on its own channel (its own delivery when it is a target too, else a relay row;
`store/audience.py`). The dispatcher renders the alert as for anyone, then `decorate` adds the list, in the
proxy's language:
- webhook: `"assisted": [{"id", "label", "confirm_url"}]` and `"assisted_url"` in the body, the list in `text`;
- email, SMS: the list and the link to the proxy's page (`/assist/<token>`: everyone on the list with a confirm
  button each); SMS also says that replying a person's number confirms them (`reply_numbers` reads the reply);
- WeChat: the template's link opens that page; the list goes in the remark;
- voice: the list read out first (`speech.spoken`; a call's text has a budget), no link.
Tokens (`notifier.tokens`, nothing stored): ASSIST for the page (the proxy, the alert), ASSIST_CONFIRM for one
person's delivery. Labels are the proxy's own notes: they go to the proxy and nowhere else (never a log).
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from pydantic import Field

from channels.base import Message
from channels.voice.speech import spoken
from notifier import tokens
from notifier.errors import NotFoundError
from notifier.i18n import N_, gettext_in
from notifier.models import Frozen
from notifier.states import DeliveryStatus
from notifier.store import Store
from notifier.store.records import AlertRow, AssistItem, ClaimedDelivery
from notifier.terms import Terms

PAGE_PATH = "/assist/"
CONFIRM_PATH = "/assist/confirm/"
LINKED = frozenset({"sms", "email", "webhook", "wechat"})  # channels whose message carries the page's link

LIST = N_("Please tell these %(count)s people about this message: %(people)s.")
PERSON = N_("(%(number)s) %(label)s")
MORE = N_("%(count)s more on the page")
CONFIRM_HERE = N_("Once you have told them, confirm each one here: %(url)s")
CONFIRM_LINK = N_("Confirm each person told")
REPLY_NUMBERS = N_("Or reply with the number of each person you told, e.g. %(number)s.")
_NUMBERS = re.compile(r"\d{1,4}")
_REPLY = re.compile(r"[\d\s,，、;；.。]+")


def page_url(public_url: str, secret: str, proxy_id: str, alert_id: str, issued: datetime) -> str:
    """The proxy's page of whom to tell about `alert_id`."""
    token = tokens.make_token(secret, tokens.ASSIST, proxy_id, data=alert_id, now=issued)
    return f"{public_url.rstrip('/')}{PAGE_PATH}{token}"


def confirm_url(public_url: str, secret: str, delivery_id: str, issued: datetime) -> str:
    """POST here (no key) to confirm the person of this `proxy` delivery told."""
    token = tokens.make_token(secret, tokens.ASSIST_CONFIRM, delivery_id, now=issued)
    return f"{public_url.rstrip('/')}{CONFIRM_PATH}{token}"


def reply_numbers(text: str) -> list[int]:
    """The people's numbers of an SMS reply made only of numbers (`1`, `1 3`, `2，5`), else none: any other
    reply (a stop word, a question) is not a confirmation."""
    if not _REPLY.fullmatch(text.strip()):
        return []
    return sorted({int(n) for n in _NUMBERS.findall(text) if int(n) > 0})


class AssistNotes:
    """The dispatcher's helper for proxies: which claimed recipients have people to tell, and their messages."""

    def __init__(self, store: Store, secret: str | None, public_url: str | None) -> None:
        self.store = store
        self._secret = secret
        self._public_url = public_url

    async def lists(self, claimed: Sequence[ClaimedDelivery],
                    assisted: set[str]) -> dict[tuple[str, str], list[AssistItem]]:
        """(alert id, subscriber id) → the people that recipient is to tell, for the claimed deliveries of the
        `assisted` alerts (those with assisted people among their targets): one query per claim that has any."""
        pairs = {(d.alert_id, d.subscriber_id) for d in claimed if d.alert_id in assisted}
        return await self.store.assist_lists(sorted(pairs)) if pairs else {}

    def decorate(self, message: Message, kind: str, proxy_id: str, items: Sequence[AssistItem],
                 issued: datetime, limit: int | None = None) -> Message:
        """`message` as the proxy `proxy_id` gets it on channel `kind`: with the list of `items` to tell (within
        the channel's `limit` of characters, the first people only and "and N more" when all do not fit)."""
        lang = message.locale
        listed = _listed(lang, items, len(items))
        if kind == "voice":  # read out first: a call's text has a budget, and whom to tell is the point
            return replace(message, text=f"{spoken(listed, lang)}\n{message.text}".strip())
        if kind not in LINKED or not self._secret or not self._public_url:
            return replace(message, text=f"{message.text}\n{listed}".strip())
        page = page_url(self._public_url, self._secret, proxy_id, message.alert_id, issued)
        tail = [gettext_in(lang, CONFIRM_HERE, url=page)]
        if kind == "sms":
            tail.append(gettext_in(lang, REPLY_NUMBERS, number=items[0].seq))
        shown = len(items)
        while limit and shown > 1 and len(_text(message.text, listed, tail)) > limit:
            shown -= 1
            listed = _listed(lang, items, shown)
        assisted = [{"id": i.assisted_id, "label": i.label,
                     "confirm_url": confirm_url(self._public_url, self._secret, i.delivery_id, issued)}
                    for i in items]
        return replace(
            message, text=_text(message.text, listed, tail),
            html=None if message.html is None else message.html + _html_note(listed, page, lang),
            url=page if kind == "wechat" else message.url,
            fields={**message.fields, "remark": listed} if kind == "wechat" else message.fields,
            payload={**message.payload, "assisted": assisted, "assisted_url": page})


def _listed(lang: str, items: Sequence[AssistItem], shown: int) -> str:
    """Whom to tell: the first `shown` people by number and label, and how many more there are."""
    names = [gettext_in(lang, PERSON, number=i.seq, label=i.label) for i in items[:shown]]
    if shown < len(items):
        names.append(gettext_in(lang, MORE, count=len(items) - shown))
    return gettext_in(lang, LIST, count=len(items), people=Terms(lang).join(names))


def _text(text: str, listed: str, tail: Sequence[str]) -> str:
    return f"{text}\n\n" + "\n".join((listed, *tail))


def _html_note(listed: str, page: str, lang: str) -> str:
    return (f"<p>{html.escape(listed)}</p>"
            f'<p><a href="{html.escape(page, quote=True)}">{html.escape(gettext_in(lang, CONFIRM_LINK))}</a></p>')


def issued_at(created_at: float) -> datetime:
    """Links count from the alert's time, so that every retry of a proxy's message sends the same links."""
    return datetime.fromtimestamp(created_at, UTC)


# ---------------------------------------------------------------- the proxy's page and confirmations


class ConfirmAnswer(Frozen):
    """What a POST to a confirm link answers, the same every time for one person."""

    id: str = Field(description="the assisted person's id (as in the webhook's `assisted`)")
    alert_id: str
    status: str = Field(description="`delivered`: the person counts as reached on channel `proxy`")
    confirmed_at: datetime


async def confirm_told(store: Store, delivery_id: str, now: float) -> ConfirmAnswer:
    """Mark the person of this `proxy` delivery told, once (NotFoundError: no such delivery; ConflictError: its
    alert is over)."""
    done = await store.confirm_assisted(delivery_id, now)
    if done is None:
        raise NotFoundError("no such person to confirm")
    return ConfirmAnswer(id=done.assisted_id, alert_id=done.alert_id, status=DeliveryStatus.DELIVERED.value,
                         confirmed_at=datetime.fromtimestamp(done.confirmed_at, UTC))


async def proxy_list(store: Store, proxy_id: str, alert_id: str) -> tuple[AlertRow, list[AssistItem]] | None:
    """The alert and the people the proxy is to tell about it; None when there are none (any more)."""
    alert = await store.get_alert(alert_id)
    items = (await store.assist_lists([(alert_id, proxy_id)])).get((alert_id, proxy_id), [])
    return (alert, items) if alert is not None and items else None


async def confirm_replies(store: Store, channel: str, address: str, text: str) -> int:
    """An SMS reply made of people's numbers, from a proxy's number: those people are told. Returns how many."""
    numbers = reply_numbers(text)
    if not numbers:
        return 0
    return len(await store.confirm_by_reply(channel, address, numbers, time.time()))
