"""Markup every page owes its readers (screen readers included): each form control has a name, each page one h1
and its language; and the check that says so catches a control without a label even when it has no id."""

from __future__ import annotations

import pytest

from notifier import tokens
from notifier.links import manage_url
from tests.web.conftest import Api, admin_page
from tests.web.markup import unlabelled_controls


def test_the_label_check_catches_a_control_without_id_or_label() -> None:
    """A checkbox with neither id nor wrapping label, or a select whose id no label names, is reported."""
    html = ('<label><input type="checkbox" name="ok"> fine</label><label for="a">A</label><input id="a" name="a">'
            '<input type="checkbox" name="bare"><select id="orphan" name="s"></select>'
            '<input type="hidden" name="csrf"><input aria-label="Search" name="q">')
    assert unlabelled_controls(html) == ["<input name='bare' id=None>", "<select name='s' id='orphan'>"]


async def _citizen_paths(api: Api) -> list[str]:
    created = await api.subscriber()
    subscriber_id = str(created["id"])
    manage = manage_url("", api.service.secret, subscriber_id)
    unsubscribe = "/unsubscribe/" + tokens.make_token(api.service.secret, tokens.UNSUBSCRIBE, subscriber_id,
                                                      data="env.heavy-pollution")
    return ["/subscribe", "/manage", manage, manage + "/delete", unsubscribe]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
async def test_every_page_names_its_controls_and_has_one_heading(api: Api, lang: str) -> None:
    """Citizen, public and admin pages: no unnamed control, one h1, the page's language on <html>."""
    status, accepted = await api.publish(public=True, level="orange")
    assert status == 202
    paths = [*await _citizen_paths(api), "/disclosures", f"/disclosures/{accepted['id']}", "/catalogue",
             "/admin/login"]
    pages = {path: await (await api.client.get(f"{path}?lang={lang}")).text() for path in paths}
    for path in ("/admin", f"/admin/alerts/{accepted['id']}"):
        pages[path] = await admin_page(api, f"{path}?lang={lang}")
    for path, html in pages.items():
        assert unlabelled_controls(html) == [], path
        assert html.count("<h1") == 1, path
        assert f'<html lang="{lang}">' in html, path


async def test_a_form_shown_again_with_errors_still_names_every_control(api: Api) -> None:
    """The sign-up form returned with errors (422) ties each error to its control and leaves none unnamed."""
    form = await api.client.get("/subscribe")
    csrf = (await form.text()).split('name="csrf" value="', 1)[1].split('"', 1)[0]
    response = await api.client.post("/subscribe", data={"csrf": csrf, "lang": "zh-CN"})
    html = await response.text()
    assert response.status == 422 and unlabelled_controls(html) == [] and 'aria-invalid="true"' in html
