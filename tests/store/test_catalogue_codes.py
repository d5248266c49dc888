"""Input is checked against the catalogue read in one go (`Store.catalogue_codes`, one packed read a publish):
it names exactly what the catalogue's lists name."""

from __future__ import annotations

import pytest

from notifier.input_rules import CatalogueCodes
from notifier.service import Service

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
