"""Per-recipient links in a message rendered once for many recipients.

Templates print the placeholders `{manage_url}` and `{unsubscribe_url}` (the renderer's `manage_url` and
`unsubscribe_url` variables); an adapter that sends one message per recipient (email) fills them with the
recipient's own signed links. Put each placeholder on a line of its own: a line whose link the recipient does not
have (a send without a server secret, a test) is dropped rather than shown with a hole in it.
"""

from __future__ import annotations

import html

from channels.base import Recipient

MANAGE_URL = "{manage_url}"
UNSUBSCRIBE_URL = "{unsubscribe_url}"


def fill_links(text: str, recipient: Recipient, *, markup: bool = False) -> str:
    """`text` with the recipient's links in place of the placeholders (HTML-escaped when `markup`)."""
    if "{" not in text:
        return text
    values = {MANAGE_URL: recipient.manage_url, UNSUBSCRIBE_URL: recipient.unsubscribe_url}
    if any(value is None and key in text for key, value in values.items()):
        missing = [key for key, value in values.items() if value is None]
        text = "".join(line for line in text.splitlines(keepends=True) if not any(k in line for k in missing))
    for key, value in values.items():
        if value is not None:
            text = text.replace(key, html.escape(value, quote=True) if markup else value)
    return text
