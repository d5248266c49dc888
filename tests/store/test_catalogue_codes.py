"""Input is checked against the catalogue read in one go (`Store.catalogue_codes`, one packed read a publish):
it names exactly what the catalogue's lists name."""

from __future__ import annotations

import pytest

from notifier.input_rules import CatalogueCodes
from notifier.keys import create_key, hash_key, revoke_key
from notifier.models import AlertIn, Role
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.store.catalogue import Unvouched, Vouched

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)


async def test_the_catalogue_read_in_one_go_names_what_its_lists_name(service: Service) -> None:
    regions, groups, topics = await service.store.catalogue_codes()
    assert regions == [list(r) for r in await service.store.list_regions()]
    assert groups == [list(g) for g in await service.store.list_groups()]
    assert topics == [[t["key"], t["name"], t.get("name_en"), t["channels"], t["department"]]
                      for t in await service.store.list_topics()]


async def test_a_region_named_in_chinese_or_english_is_known_by_its_code(service: Service) -> None:
    codes = await CatalogueCodes.load(service.store)
    assert codes.code("region", "城区") == "140402" and codes.known("region", "140402")
    assert codes.topics["env.heavy-pollution"] and codes.labels["topic"]["env.heavy-pollution"]
    assert codes.departments["env.heavy-pollution"] == (await service.store.get_topic("env.heavy-pollution") or {})[
        "department"]


async def test_a_key_is_read_with_the_catalogue_codes_in_one_go(service: Service) -> None:
    record, raw = await create_key(service.store, Role.PUBLISHER, ["env.*"], department="市环保局")
    found = await service.store.key_and_codes(hash_key(raw))
    assert found is not None
    key, codes = found
    assert key == record
    assert codes == await service.store.catalogue_codes()


async def test_no_codes_are_read_for_a_key_never_issued(service: Service) -> None:
    assert await service.store.key_and_codes(hash_key("ntf_adm_made-up")) is None


async def _vouched_publish(service: Service, vouched: Vouched) -> None:
    alert = AlertIn.model_validate({"topic": "env.heavy-pollution", "headline": "重污染天气橙色预警",
                                    "body": "明日起启动重污染天气橙色预警。", "severity": "moderate"})
    await publish_alert(service.store, alert, vouched.key, codes=CatalogueCodes.of(vouched.codes), vouched=vouched)


async def _vouched_for(service: Service, raw: str) -> Vouched:
    found = await service.store.key_and_codes(hash_key(raw))
    assert found is not None
    return Vouched(hash_key(raw), *found)


async def test_a_publish_vouched_for_a_key_revoked_since_stores_nothing(service: Service) -> None:
    """A key known to a process from an earlier request and revoked since (by `notifier keys revoke`, say) is
    found out in the publish's own transaction: nothing is stored."""
    _, raw = await create_key(service.store, Role.PUBLISHER, ["env.*"], department="市环保局")
    vouched = await _vouched_for(service, raw)
    await revoke_key(service.store, raw)
    with pytest.raises(Unvouched):
        await _vouched_publish(service, vouched)
    assert (await service.store.list_alerts(10, None))[1] == 0


async def test_a_publish_vouched_for_a_catalogue_changed_since_stores_nothing(service: Service) -> None:
    """A region added after the codes were read: the alert was checked against another catalogue, so it is not
    stored on that check."""
    _, raw = await create_key(service.store, Role.PUBLISHER, ["env.*"], department="市环保局")
    vouched = await _vouched_for(service, raw)
    await service.store.add_catalogue([("140499", "新区", "New District")], [], [], [])
    with pytest.raises(Unvouched):
        await _vouched_publish(service, vouched)
    assert (await service.store.list_alerts(10, None))[1] == 0


async def test_a_publish_vouched_for_what_the_store_still_holds_is_stored(service: Service) -> None:
    _, raw = await create_key(service.store, Role.PUBLISHER, ["env.*"], department="市环保局")
    await _vouched_publish(service, await _vouched_for(service, raw))
    assert (await service.store.list_alerts(10, None))[1] == 1
