"""The self-service links a subscriber is given: `/manage/<token>` and `/unsubscribe/<token>`, under
`[server] public_url`, signed with the server secret (`notifier.tokens`).

Which message carries which link (decided here, used by the dispatcher):
- email: both links, in the text and HTML parts (templates print `{manage_url}` / `{unsubscribe_url}`, filled per
  recipient by `channels.links.fill_links`), and `List-Unsubscribe` + `List-Unsubscribe-Post` (RFC 8058).
- webhook: both, as `manage_url` and `unsubscribe_url` in the JSON body (an organisation's system can stop or
  change its subscription without a person reading a message).
- SMS: none of its own. A 51-character token makes a link of 80+ characters, and providers send pre-approved
  templates with identical content for a whole batch (one SendSms for up to 1000 numbers): a per-recipient link
  would split every batch. SMS says 退订回TD (the uplink endpoint turns the reply into an unsubscribe) and names
  `<public_url>/manage`, the page where anyone gets back to their subscription with their number and a texted
  code (`notifier.manage_request`).
- WeChat: none; the template's `url` stays the public disclosure page (anyone may open a forwarded message), and
  the remark says 回复TD可退订; unfollowing the account stops WeChat.
"""

from __future__ import annotations

from datetime import datetime

from notifier import tokens

LINK_CHANNELS = frozenset({"email", "webhook"})


def manage_url(public_url: str, secret: str, subscriber_id: str, *, now: datetime | None = None) -> str:
    """`{public_url}/manage/<token>`: the subscriber's own page (what is held, changes, download, deletion);
    valid for the MANAGE lifetime from `now` (default: the present)."""
    return _link(public_url, "manage", tokens.make_token(secret, tokens.MANAGE, subscriber_id, now=now))


def unsubscribe_url(public_url: str, secret: str, subscriber_id: str, topic: str | None = None, *,
                    now: datetime | None = None) -> str:
    """`{public_url}/unsubscribe/<token>`: stops `topic` (or everything when None) after one confirmation."""
    token = tokens.make_token(secret, tokens.UNSUBSCRIBE, subscriber_id, data=topic, now=now)
    return _link(public_url, "unsubscribe", token)


class MessageLinks:
    """Both links of one alert's message, for each of its recipients: what `manage_url` and `unsubscribe_url`
    give with `now` = `issued`, with what the recipients share (expiry, key, the links' start) worked out once —
    a webhook fan-out makes two tokens per request."""

    __slots__ = ("_manage", "_manage_at", "_unsubscribe", "_unsubscribe_at")

    def __init__(self, public_url: str, secret: str, topic: str | None, *, issued: datetime) -> None:
        self._manage = tokens.Minter(secret, tokens.MANAGE, now=issued)
        self._unsubscribe = tokens.Minter(secret, tokens.UNSUBSCRIBE, data=topic, now=issued)
        self._manage_at = _link(public_url, "manage", "")
        self._unsubscribe_at = _link(public_url, "unsubscribe", "")

    def of(self, subscriber_id: str) -> tuple[str, str]:
        """(manage link, unsubscribe link) of one subscriber."""
        subject = tokens.encode_subject(subscriber_id)
        return (self._manage_at + self._manage.sealed(subject),
                self._unsubscribe_at + self._unsubscribe.sealed(subject))


def _link(public_url: str, page: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/{page}/{token}"
