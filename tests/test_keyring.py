"""The server secret from configuration or the environment, with key ids: after a rotation the new key signs and
the old keys still verify the links they signed, until the operator drops them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from notifier import tokens
from notifier.config import load_settings
from notifier.config_errors import ConfigError
from notifier.keyring import Keyring
from notifier.links import manage_url
from notifier.service import Service
from notifier.subscribers import create_subscriber
from notifier.tokens import InvalidToken, make_token, read_token
from notifier.web import create_app
from subscriptions.models import SubscriberIn

SUBJECT = uuid.uuid4().hex
NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
OLD, NEW = "old-secret-0123456789abcdef", "new-secret-0123456789abcdef"


def test_a_new_link_names_its_key_and_only_that_key_verifies_it() -> None:
    """A token signed by key k2 carries `k2.` and is refused by a ring that does not hold k2 (or holds another
    secret under that id)."""
    token = make_token(Keyring(NEW, "k2"), tokens.MANAGE, SUBJECT, now=NOW)
    assert token.startswith("k2.")
    assert read_token(Keyring(NEW, "k2"), tokens.MANAGE, token, now=NOW).subject == SUBJECT
    for ring in (Keyring(OLD, "k1"), Keyring(OLD, "k2"), Keyring(NEW)):
        with pytest.raises(InvalidToken):
            read_token(ring, tokens.MANAGE, token, now=NOW)


def test_after_a_rotation_old_links_verify_and_new_links_use_the_new_key() -> None:
    """k1 signed a link; the ring rotated to k2 with k1 kept as previous: the old link still reads, new links say
    k2; once k1 is dropped the old link is refused."""
    old_link = make_token(Keyring(OLD, "k1"), tokens.UNSUBSCRIBE, SUBJECT, now=NOW)
    rotated = Keyring(NEW, "k2", {"k1": OLD})
    assert read_token(rotated, tokens.UNSUBSCRIBE, old_link, now=NOW).subject == SUBJECT
    assert make_token(rotated, tokens.UNSUBSCRIBE, SUBJECT, now=NOW).startswith("k2.")
    with pytest.raises(InvalidToken):
        read_token(Keyring(NEW, "k2"), tokens.UNSUBSCRIBE, old_link, now=NOW)


def test_a_link_from_before_key_ids_verifies_with_the_key_that_signed_it() -> None:
    """A link without a key id (signed by the secret of old) verifies once that secret is a previous key, and
    with no other."""
    legacy = make_token(OLD, tokens.MANAGE, SUBJECT, now=NOW)
    assert legacy.count(".") == 1
    assert read_token(Keyring(NEW, "k2", {"legacy": OLD}), tokens.MANAGE, legacy, now=NOW).subject == SUBJECT
    with pytest.raises(InvalidToken):
        read_token(Keyring(NEW, "k2", {"other": "another-secret-0123456789"}), tokens.MANAGE, legacy, now=NOW)


@pytest.mark.parametrize("token", ["k9.AAAA.BBBB", "bad id.AAAA.BBBB", "a.b.c.d", "k1..", "x"])
def test_malformed_or_unknown_key_ids_are_refused(token: str) -> None:
    """An unknown key id, a key id with other characters, or too many parts is an invalid token, not an error."""
    with pytest.raises(InvalidToken):
        read_token(Keyring(NEW, "k2", {"k1": OLD}), tokens.MANAGE, token, now=NOW)


def test_the_secret_and_its_rotation_come_from_the_environment() -> None:
    """NOTIFIER_SERVER__SECRET, __SECRET_ID and __PREVIOUS_SECRETS (a JSON table) make the ring."""
    settings = load_settings(None, {"NOTIFIER_SERVER__SECRET": NEW, "NOTIFIER_SERVER__SECRET_ID": "2026b",
                                    "NOTIFIER_SERVER__PREVIOUS_SECRETS": f'{{"2026a": "{OLD}"}}'})
    ring = settings.server.keyring()
    assert (str(ring), ring.key_id, dict(ring.previous)) == (NEW, "2026b", {"2026a": OLD})
    assert NEW not in repr(settings) and OLD not in repr(settings)  # secrets stay masked when printed


@pytest.mark.parametrize("server", [
    {"secret": NEW, "secret_id": "has.dot"},
    {"secret_id": "k1"},  # an id for a secret that is not configured
    {"secret": NEW, "secret_id": "k1", "previous_secrets": {"k1": OLD}},
    {"secret": NEW, "previous_secrets": {"bad id": OLD}},
])
def test_a_wrong_key_configuration_is_a_config_error(server: dict[str, Any]) -> None:
    """Key ids that could not travel in a link, an id without its secret, or one id for two keys: refused."""
    with pytest.raises(ConfigError):
        load_settings(None, {}, {"server": server})


async def _manage_status(db: Path, server: dict[str, Any], path: str) -> int:
    """The status of GET `path` on an app over `db` configured with `server`."""
    settings = load_settings(None, {}, {"database": {"url": f"sqlite:///{db}"}, "server": server,
                                        "worker": {"enabled": False}})
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        return (await client.get(path)).status


async def test_a_manage_link_sent_before_a_rotation_still_opens_the_page(tmp_path: Path) -> None:
    """An installation keyed from configuration (k1) sends a manage link; after rotating to k2 with k1 kept, the
    link opens the page; after dropping k1 it does not. The generated database secret is never made."""
    db = tmp_path / "rotate.db"
    first = {"secret": OLD, "secret_id": "k1"}
    settings = load_settings(None, {}, {"database": {"url": f"sqlite:///{db}"}, "server": first,
                                        "worker": {"enabled": False}})
    async with Service(settings) as service:
        body = SubscriberIn.model_validate({"contacts": {"email": "li.na@example.org"}, "region": "140402",
                                            "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["email"]}]})
        record, _ = await create_subscriber(service.store, body, allow_private_webhooks=False)
        link = manage_url("", service.secret, record.id)
        assert await service.store.get_meta("server_secret") is None
    assert link.startswith("/manage/k1.")
    assert await _manage_status(db, first, link) == 200
    assert await _manage_status(db, {"secret": NEW, "secret_id": "k2", "previous_secrets": {"k1": OLD}}, link) == 200
    assert await _manage_status(db, {"secret": NEW, "secret_id": "k2"}, link) == 404
