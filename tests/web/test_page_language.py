"""One language rule for every page: `?lang=`, then the remembered choice, then the reader's own language, then
the browser's, then Chinese — on the admin, citizen and public pages alike."""

from __future__ import annotations

import pytest

from notifier.links import manage_url
from notifier.web.pages import LANG_COOKIE
from tests.web.conftest import Api

PAGES = ["/subscribe", "/disclosures", "/catalogue", "/admin/login"]


@pytest.mark.parametrize("path", PAGES)
async def test_a_browser_that_asks_for_english_gets_english(api: Api, path: str) -> None:
    """Without `?lang=`, Accept-Language decides (en-GB is English)."""
    response = await api.client.get(path, headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"})
    assert '<html lang="en">' in await response.text()


@pytest.mark.parametrize("path", PAGES)
async def test_a_chinese_or_unknown_browser_gets_chinese(api: Api, path: str) -> None:
    """Chinese, an unsupported language or no header at all: Simplified Chinese."""
    for header in ({"Accept-Language": "zh-CN,zh;q=0.9"}, {"Accept-Language": "fr"}, {}):
        assert '<html lang="zh-CN">' in await (await api.client.get(path, headers=header)).text()


async def test_a_choice_made_on_one_page_holds_on_the_others(api: Api) -> None:
    """Choosing English on the sign-up form is remembered, and the public column and dashboard follow it even
    against a Chinese browser."""
    chosen = await api.client.get("/subscribe?lang=en")
    cookie = chosen.cookies[LANG_COOKIE]
    assert cookie.value == "en" and cookie["path"] == "/" and cookie["httponly"]
    chinese_browser = {"Accept-Language": "zh-CN"}
    for path in ("/disclosures", "/catalogue", "/admin/login"):
        assert '<html lang="en">' in await (await api.client.get(path, headers=chinese_browser)).text()


async def test_the_explicit_choice_beats_the_remembered_one(api: Api) -> None:
    """`?lang=zh-CN` wins over an English cookie, and is remembered in its place."""
    await api.client.get("/subscribe?lang=en")
    response = await api.client.get("/subscribe?lang=zh-CN")
    assert '<html lang="zh-CN">' in await response.text() and response.cookies[LANG_COOKIE].value == "zh-CN"


async def test_public_pages_never_set_the_cookie_and_vary_when_the_url_does_not_say(api: Api) -> None:
    """Shared caches keep public pages: no Set-Cookie; Vary when the language came from the reader, not the URL."""
    named = await api.client.get("/disclosures?lang=en")
    unnamed = await api.client.get("/disclosures", headers={"Accept-Language": "en"})
    assert "Set-Cookie" not in named.headers and "Set-Cookie" not in unnamed.headers
    assert "Vary" not in named.headers and unnamed.headers["Vary"] == "Accept-Language, Cookie"
    assert 'href="/catalogue?lang=en"' in await named.text()  # links keep the language the URL named


async def test_the_manage_page_speaks_the_subscribers_language(api: Api) -> None:
    """A subscriber who chose English messages gets the manage page in English from a Chinese browser."""
    created = await api.subscriber(locale="en")
    path = manage_url("", api.service.secret, str(created["id"]))
    page = await (await api.client.get(path, headers={"Accept-Language": "zh-CN"})).text()
    assert '<html lang="en">' in page and "My subscription" in page


async def test_a_form_keeps_the_language_of_the_page_it_was_on(api: Api) -> None:
    """A POST answers in its form's `lang`, without remembering it as a new choice."""
    await api.client.get("/subscribe")  # the CSRF cookie
    response = await api.client.post("/subscribe", data={"lang": "en", "csrf": "forged"})
    assert response.status == 403 and '<html lang="en">' in await response.text()
    assert LANG_COOKIE not in response.cookies
