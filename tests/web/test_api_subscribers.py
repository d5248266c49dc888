"""Managing subscribers over the HTTP API: contacts are masked in every answer, webhook destinations are guarded."""

from __future__ import annotations

import pytest

from notifier.models import Role
from tests.web.conftest import EMAIL, MOBILE, MOBILE_DIGITS, Api, ApiFactory, subscriber_body

pytestmark = pytest.mark.both_backends

SSRF_URLS = [
    "http://127.0.0.1/x",
    "http://10.0.0.1/",
    "http://169.254.169.254/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://2130706433/",
    "http://0x7f000001/",
]


async def _subscribers_total(api: Api) -> int:
    response = await api.client.get("/v1/subscribers", headers=api.auth())
    total: int = (await response.json())["total"]
    return total


async def test_create_answers_201_with_masked_contacts(api: Api) -> None:
    """A new subscriber comes back with an id and its mobile number and email masked."""
    response = await api.client.post("/v1/subscribers", json=subscriber_body(), headers=api.auth())
    assert response.status == 201
    body = await response.json()
    assert body["id"]
    assert body["contacts"] == {"sms": "138****5678", "email": "z***@example.org"}


async def test_create_never_echoes_the_raw_contacts(api: Api) -> None:
    """The 201 answer text contains neither the mobile number nor the email address."""
    response = await api.client.post("/v1/subscribers", json=subscriber_body(), headers=api.auth())
    text = await response.text()
    assert MOBILE_DIGITS not in text and MOBILE not in text and EMAIL not in text


async def test_get_shows_masked_contacts_and_never_the_raw_number(api: Api) -> None:
    """Reading a subscriber shows 138****5678 and the raw number appears nowhere in the answer."""
    created = await api.subscriber()
    response = await api.client.get(f"/v1/subscribers/{created['id']}", headers=api.auth())
    text = await response.text()
    assert MOBILE_DIGITS not in text and MOBILE not in text
    assert (await response.json())["contacts"]["sms"] == "138****5678"


async def test_generated_webhook_secret_is_shown_once(api: Api) -> None:
    """A webhook without a secret gets a whsec_ secret in the 201 answer, and never again on GET."""
    created = await api.subscriber(contacts={"webhook": "http://localhost:9/hook"},
                                   subscriptions=[{"topic": "env.heavy-pollution", "channels": ["webhook"]}])
    assert created["contacts"]["webhook_secret"].startswith("whsec_")
    again = await (await api.client.get(f"/v1/subscribers/{created['id']}", headers=api.auth())).json()
    assert "webhook_secret" not in again["contacts"]
    assert again["contacts"]["webhook"] == "http://localhost/…"


async def test_unknown_subscriber_is_404_problem(api: Api) -> None:
    """Reading a subscriber id that does not exist is a 404 problem."""
    response = await api.client.get("/v1/subscribers/nope", headers=api.auth())
    assert response.status == 404
    assert response.content_type == "application/problem+json"


async def test_listing_is_paged_with_next_cursor_and_total(api: Api) -> None:
    """limit=2 over three subscribers gives two, a next_cursor and total 3; the cursor gives the third."""
    ids = [(await api.subscriber(contacts={"sms": f"+861381234567{i}"}, subscriptions=[]))["id"] for i in range(3)]
    first = await (await api.client.get("/v1/subscribers?limit=2", headers=api.auth())).json()
    assert first["total"] == 3 and len(first["items"]) == 2 and first["next_cursor"]
    second = await (await api.client.get("/v1/subscribers", params={"limit": 2, "cursor": first["next_cursor"]},
                                         headers=api.auth())).json()
    assert [s["id"] for s in first["items"] + second["items"]] == ids
    assert second["next_cursor"] is None


async def test_listing_masks_contacts(api: Api) -> None:
    """The subscriber listing never contains a raw mobile number."""
    await api.subscriber()
    text = await (await api.client.get("/v1/subscribers", headers=api.auth())).text()
    assert MOBILE_DIGITS not in text and "138****5678" in text


async def test_patch_changes_the_region(api: Api) -> None:
    """PATCH with a new region answers the changed subscriber."""
    created = await api.subscriber()
    response = await api.client.patch(f"/v1/subscribers/{created['id']}", json={"region": "140411"},
                                      headers=api.auth())
    assert response.status == 200
    assert (await response.json())["region"] == "140411"


async def test_patch_with_unknown_region_is_422(api: Api) -> None:
    """PATCH to a region not in the catalogue is refused naming region."""
    created = await api.subscriber()
    response = await api.client.patch(f"/v1/subscribers/{created['id']}", json={"region": "999999"},
                                      headers=api.auth())
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["region"]


async def test_delete_answers_204_and_the_subscriber_is_gone(api: Api) -> None:
    """DELETE answers 204; reading the subscriber afterwards is 404."""
    created = await api.subscriber()
    response = await api.client.delete(f"/v1/subscribers/{created['id']}", headers=api.auth())
    assert response.status == 204
    assert (await api.client.get(f"/v1/subscribers/{created['id']}", headers=api.auth())).status == 404


async def test_delete_of_unknown_subscriber_is_404(api: Api) -> None:
    """Deleting a subscriber that does not exist is a 404 problem."""
    response = await api.client.delete("/v1/subscribers/nope", headers=api.auth())
    assert response.status == 404


async def test_add_subscription_answers_201(api: Api) -> None:
    """Subscribing an existing subscriber to another topic answers 201 with the subscription."""
    created = await api.subscriber()
    response = await api.client.post(f"/v1/subscribers/{created['id']}/subscriptions",
                                     json={"topic": "transit.fare-change", "channels": ["sms"]}, headers=api.auth())
    assert response.status == 201
    assert await response.json() == {"topic": "transit.fare-change", "channels": ["sms"], "min_severity": None}


async def test_add_subscription_to_unknown_topic_is_422(api: Api) -> None:
    """Subscribing to a topic not in the catalogue is refused naming topic."""
    created = await api.subscriber()
    response = await api.client.post(f"/v1/subscribers/{created['id']}/subscriptions",
                                     json={"topic": "env.nothing", "channels": ["sms"]}, headers=api.auth())
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["topic"]


async def test_unknown_topic_in_a_new_subscriber_names_the_dotted_path(api: Api) -> None:
    """An unknown topic in the first subscription is reported on subscriptions.0.topic."""
    body = subscriber_body(subscriptions=[{"topic": "env.nothing", "channels": ["sms"]}])
    response = await api.client.post("/v1/subscribers", json=body, headers=api.auth())
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["subscriptions.0.topic"]


async def test_invalid_mobile_is_422_naming_contacts_sms(api: Api) -> None:
    """A mobile number that cannot be a mobile is refused on contacts.sms, without echoing it."""
    body = subscriber_body(contacts={"sms": "12345", "email": EMAIL})
    response = await api.client.post("/v1/subscribers", json=body, headers=api.auth())
    assert response.status == 422
    problem = await response.json()
    assert [e["field"] for e in problem["errors"]] == ["contacts.sms"]
    assert "12345" not in await response.text()


async def test_invalid_email_is_422_naming_contacts_email(api: Api) -> None:
    """A malformed email address is refused on contacts.email, without echoing it."""
    body = subscriber_body(contacts={"email": "wang@@example"}, subscriptions=[])
    response = await api.client.post("/v1/subscribers", json=body, headers=api.auth())
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["contacts.email"]
    assert "wang@@example" not in await response.text()


async def test_create_takes_catalogue_names_as_import_does(api: Api) -> None:
    """District, group and topic names (城区, 老年人, 重污染天气预警) are accepted and stored as their codes."""
    body = subscriber_body(region="城区", groups=["老年人"],
                           subscriptions=[{"topic": "重污染天气预警", "channels": ["sms"]}])
    response = await api.client.post("/v1/subscribers", json=body, headers=api.auth())
    assert response.status == 201, await response.text()
    created = await response.json()
    assert (created["region"], created["groups"]) == ("140402", ["elderly"])
    assert created["subscriptions"][0]["topic"] == "env.heavy-pollution"


async def test_create_lists_every_problem_of_the_body_at_once(api: Api) -> None:
    """A bad mobile, an unknown district name, an unknown topic and a channel without its contact: one 422 names
    all four, the district with the nearest known name, and nothing is created."""
    body = subscriber_body(contacts={"sms": "12345"}, region="城西",
                           subscriptions=[{"topic": "env.nothing", "channels": ["sms"]},
                                          {"topic": "env.air-forecast", "channels": ["wechat"]}])
    response = await api.client.post("/v1/subscribers", json=body, headers=api.auth())
    assert response.status == 422
    errors = {e["field"]: e["message"] for e in (await response.json())["errors"]}
    assert set(errors) == {"contacts.sms", "region", "subscriptions.0.topic", "subscriptions.1.channels"}
    assert errors["region"] == "unknown region '城西' (did you mean 城区?)"
    assert await _subscribers_total(api) == 0


async def test_viewer_cannot_manage_subscribers(api: Api) -> None:
    """Subscriber management is for admins: a viewer listing subscribers gets 403."""
    response = await api.client.get("/v1/subscribers", headers=api.auth(Role.VIEWER))
    assert response.status == 403


@pytest.mark.parametrize("url", SSRF_URLS)
async def test_private_webhook_destinations_are_refused(make_api: ApiFactory, url: str) -> None:
    """Without allow_private_networks, a webhook pointing into our own network is 422 and nothing is created."""
    api = await make_api("strict", allow_private=False)
    body = subscriber_body(contacts={"webhook": url},
                           subscriptions=[{"topic": "env.heavy-pollution", "channels": ["webhook"]}])
    response = await api.client.post("/v1/subscribers", json=body, headers=api.auth())
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["contacts.webhook"]
    assert await _subscribers_total(api) == 0


async def test_private_webhook_destination_is_accepted_when_allowed(api: Api) -> None:
    """With allow_private_networks, a loopback webhook (an internal partner) is accepted."""
    created = await api.subscriber(contacts={"webhook": "http://127.0.0.1:9/hook"},
                                   subscriptions=[{"topic": "env.heavy-pollution", "channels": ["webhook"]}])
    assert created["contacts"]["webhook"] == "http://127.0.0.1/…"
