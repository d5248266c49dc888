"""A proxy's links (grid workers, caregivers; core in `notifier.assist`): `/assist/<token>`, the page of whom to
tell about one alert, with a confirm button for each person; and `POST /assist/confirm/<token>`, one person's
confirm link, which a webhook proxy's system may also call directly.

Who may act: whoever holds the link (as for `/manage`: the signed token is the credential; a GET changes nothing).
A confirmation from the page carries the page's nonce and must come from our own pages; a direct POST (no form)
needs neither, as the token alone names one person of one alert. A repeat answers the same and changes nothing; a
tampered token is 404, an expired one 410, an alert that is over 409.
"""

from __future__ import annotations

import time

from aiohttp import web

from notifier import tokens
from notifier.assist import ConfirmAnswer, confirm_told, proxy_list
from notifier.web.citizen.manage_pages import (
    HTML,
    Link,
    LinkProblem,
    check_post,
    form_nonce,
    guarded,
    here,
    lang_of,
    read_link,
    render,
)
from notifier.web.openapi import operation
from notifier.web.problems import read_form_body
from notifier.web.state import SERVICE

routes = web.RouteTableDef()
PAGE_FIELD = "page"  # a confirmation from the page names the page's token, to go back to it


@routes.get("/assist/{token}")
@operation("A proxy's page: whom to tell about one alert, with a confirm button each (HTML)", "citizen",
           {200: ("an HTML page", None)}, auth=False, media_type=HTML, errors=(404, 410),
           description="The token from the proxy's message is the credential. Lists the people with their "
                       "labels and whether each is confirmed told; changes nothing. `?lang=en` for English.")
@guarded
async def assist_page(request: web.Request) -> web.StreamResponse:
    link = read_link(request, tokens.ASSIST)
    service = request.app[SERVICE]
    found = await proxy_list(service.store, link.claims.subject, link.claims.data or "")
    if found is None:
        raise LinkProblem("gone")
    alert, items = found
    secret, issued = service.secret, link.claims.expires_at - tokens.TTL[tokens.ASSIST]
    confirm = {i.delivery_id: tokens.make_token(secret, tokens.ASSIST_CONFIRM, i.delivery_id, now=issued)
               for i in items}
    return render(request, "assist.html", lang=lang_of(request), alert=alert, items=items,
                  confirm=confirm, page_token=link.token, nonce_value=form_nonce(request, link),
                  query=here(request)[len(request.path):])


@routes.post("/assist/confirm/{token}")
@operation("Confirm that a proxy told one assisted person (the person counts as reached on channel proxy)",
           "citizen", {200: ("the confirmation, the same on every repeat", ConfirmAnswer),
                       303: ("back to the proxy's page (a form from that page)", None)},
           auth=False, errors=(403, 404, 409, 410),
           description="No key: the signed token in the path names one person of one alert. From the proxy's "
                       "page the form carries `page` (the page's token) and `nonce`, and the answer goes back to "
                       "the page.")
@guarded
async def confirm(request: web.Request) -> web.StreamResponse:
    link = read_link(request, tokens.ASSIST_CONFIRM)
    form = await read_form_body(request) if request.content_type == "application/x-www-form-urlencoded" else {}
    page = form.get(PAGE_FIELD)
    if isinstance(page, str):
        back = _page_link(request, page)
        nonce = form.get("nonce")
        check_post(request, back, nonce if isinstance(nonce, str) else None)
    answer = await confirm_told(request.app[SERVICE].store, link.claims.subject, time.time())
    if isinstance(page, str):
        lang = request.query.get("lang")
        raise web.HTTPSeeOther(f"/assist/{page}" + (f"?lang={lang}" if lang in ("zh-CN", "en") else ""))
    return web.json_response(text=answer.model_dump_json())


def _page_link(request: web.Request, token: str) -> Link:
    """The page a form came from, verified like any link (its nonce is bound to it)."""
    try:
        return Link(token, tokens.read_token(request.app[SERVICE].secret, tokens.ASSIST, token))
    except tokens.InvalidToken as exc:
        raise LinkProblem("form") from exc
