"""The disclosure catalogue: the bundled Changzhi data and the validation of other cities' files."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.catalogue import Catalogue, CatalogueError, Domain, load_catalogue
from notifier.models import Group, Region, TopicIn
from notifier.schedule import Every, Schedule, StoredSchedule

CHANGZHI_REGIONS = {
    "140402": "城区", "140411": "郊区", "140421": "长治县", "140423": "襄垣县", "140424": "屯留县",
    "140425": "平顺县", "140426": "黎城县", "140427": "壶关县", "140428": "长子县", "140429": "武乡县",
    "140430": "沁县", "140431": "沁源县", "140481": "潞城市",
}
DOMAINS = {"poverty", "assistance", "education", "health", "environment", "disaster", "culture", "transit"}
GROUPS = {"elderly", "child", "student", "disabled", "military", "low_income", "extreme_poverty", "orphan",
          "poverty_household"}
SEED_TOPICS = {
    "env.heavy-pollution", "env.air-forecast", "env.monthly-ranking", "disaster.relief-needs",
    "disaster.emergency", "transit.fare-change", "transit.route-change", "transit.concession",
    "assistance.subsidy", "assistance.minimum-living", "poverty.policy", "education.aid", "health.outbreak",
    "health.service", "culture.event",
}

MINIMAL = """
[[regions]]
code = "140402"
name = "城区"

[[groups]]
code = "elderly"
name = "老年人"

[[domains]]
code = "environment"
name = "环境保护"

[[topics]]
key = "{key}"
name = "重污染天气预警"
domain = "{domain}"
department = "市环保局"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalogue.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def bundled() -> Catalogue:
    return load_catalogue()


def test_bundled_has_the_13_regions_of_changzhi(bundled: Catalogue) -> None:
    """The default catalogue holds exactly the 13 counties/districts with their GB/T 2260 codes."""
    assert {r.code: r.name for r in bundled.regions} == CHANGZHI_REGIONS


def test_bundled_regions_have_english_names(bundled: Catalogue) -> None:
    """Every region has a pinyin name for English messages."""
    assert bundled.region("140402") == Region(code="140402", name="城区", name_en="Chengqu")
    assert all(r.name_en for r in bundled.regions)


def test_bundled_has_the_population_groups(bundled: Catalogue) -> None:
    """The seed's population groups are all present, named in both languages."""
    assert {g.code for g in bundled.groups} == GROUPS and all(g.name_en for g in bundled.groups)


def test_bundled_has_the_eight_domains(bundled: Catalogue) -> None:
    """The eight disclosure domains of the seed plan are the catalogue's domains."""
    assert {d.code for d in bundled.domains} == DOMAINS


def test_bundled_topics_cover_the_seed(bundled: Catalogue) -> None:
    """The seed's disclosure streams are topics, and every domain has at least one."""
    keys = {t.key for t in bundled.topics}
    assert SEED_TOPICS <= keys and {t.domain for t in bundled.topics} == DOMAINS


def test_bundled_topics_state_catalogue_entries(bundled: Catalogue) -> None:
    """Every topic names its department, method and supervision channel, as the seed's catalogue asks."""
    assert all(t.department and t.method and t.supervision and t.channels for t in bundled.topics)


def test_monthly_ranking_is_due_by_the_20th(bundled: Catalogue) -> None:
    """The monthly air-quality ranking carries a structured schedule: every month, by the 20th."""
    assert bundled.schedule("env.monthly-ranking").schedule == Schedule(every=Every.MONTH, by_day=20)


def test_regular_seed_schedules_are_data_and_the_rest_stay_text(bundled: Catalogue) -> None:
    """The daily forecast and monthly water report are structured; event-driven schedules keep their words."""
    assert bundled.schedule("env.air-forecast").schedule == Schedule(every=Every.DAY)
    assert bundled.schedule("env.water-quality").schedule == Schedule(every=Every.MONTH)
    assert bundled.schedule("env.heavy-pollution") == StoredSchedule(None, "预警发布、调整、解除时立即推送")


def test_topics_carry_the_stored_text_the_store_keeps(bundled: Catalogue) -> None:
    """A structured schedule reaches the store's schedule column as its canonical JSON text."""
    topic = bundled.topic("env.monthly-ranking")
    assert topic is not None and topic.schedule == '{"by_day":20,"every":"month"}'


def test_a_schedule_table_in_another_citys_file_loads(tmp_path: Path) -> None:
    """A topic's `schedule = { every = "week", by_weekday = 5 }` is read as a weekly deadline."""
    text = MINIMAL.format(key="env.heavy-pollution", domain="environment")
    text += 'schedule = { every = "week", by_weekday = 5, since = "2026-05" }\n'
    catalogue = load_catalogue(write(tmp_path, text))
    assert catalogue.schedule("env.heavy-pollution").schedule == Schedule(every=Every.WEEK, by_weekday=5,
                                                                          since="2026-05")


def test_a_bad_schedule_table_is_named(tmp_path: Path) -> None:
    """A malformed schedule is refused, naming the file, the topic and the key."""
    text = MINIMAL.format(key="env.heavy-pollution", domain="environment")
    text += 'schedule = { every = "month", by_day = 40 }\n'
    with pytest.raises(CatalogueError, match=r"topics\[0\] \(env\.heavy-pollution\): schedule: by_day"):
        load_catalogue(write(tmp_path, text))


def test_heavy_pollution_belongs_to_the_environment_bureau(bundled: Catalogue) -> None:
    """The heavy-pollution warning is published by the environment bureau named in the seed."""
    topic = bundled.topic("env.heavy-pollution")
    assert topic is not None and (topic.domain, topic.department) == ("environment", "市环保局")


def test_another_citys_file_loads(tmp_path: Path) -> None:
    """A catalogue file given by path replaces the bundled one."""
    catalogue = load_catalogue(write(tmp_path, MINIMAL.format(key="env.heavy-pollution", domain="environment")))
    assert [r.code for r in catalogue.regions] == ["140402"] and len(catalogue.topics) == 1


def test_topic_in_unknown_domain_is_rejected(tmp_path: Path) -> None:
    """A topic whose domain is not listed is refused, naming the topic and the domain."""
    path = write(tmp_path, MINIMAL.format(key="env.heavy-pollution", domain="weather"))
    with pytest.raises(CatalogueError, match=r"topic 'env\.heavy-pollution': unknown domain 'weather'"):
        load_catalogue(path)


def test_duplicate_region_code_is_rejected(tmp_path: Path) -> None:
    """Two regions with one code are refused, naming the code."""
    text = MINIMAL.format(key="env.heavy-pollution", domain="environment")
    text += '\n[[regions]]\ncode = "140402"\nname = "又一个城区"\n'
    with pytest.raises(CatalogueError, match="duplicate region code: '140402'"):
        load_catalogue(write(tmp_path, text))


def test_region_code_must_be_six_digits(tmp_path: Path) -> None:
    """A region code that is not a GB/T 2260 six-digit code is refused."""
    text = MINIMAL.format(key="env.heavy-pollution", domain="environment").replace('"140402"', '"1404"')
    with pytest.raises(CatalogueError, match="region '1404'"):
        load_catalogue(write(tmp_path, text))


def test_invalid_topic_entry_is_named(tmp_path: Path) -> None:
    """A topic failing its model's validation is reported by position and key."""
    path = write(tmp_path, MINIMAL.format(key="Not A Key", domain="environment"))
    with pytest.raises(CatalogueError, match=r"topics\[0\] \(Not A Key\): key"):
        load_catalogue(path)


def test_unknown_section_is_rejected(tmp_path: Path) -> None:
    """A misspelt section is refused instead of silently ignored."""
    text = MINIMAL.format(key="env.heavy-pollution", domain="environment") + '\n[[topic]]\nkey = "x.y"\n'
    with pytest.raises(CatalogueError, match="unknown section"):
        load_catalogue(write(tmp_path, text))


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    """A catalogue path that cannot be read is reported with the path."""
    with pytest.raises(CatalogueError, match=r"nowhere\.toml"):
        load_catalogue(tmp_path / "nowhere.toml")


def test_catalogue_object_checks_references() -> None:
    """A Catalogue built in code is held to the same rules as a file."""
    topic = TopicIn(key="env.heavy-pollution", name="重污染天气预警", domain="weather", department="市环保局")
    with pytest.raises(ValueError, match="unknown domain 'weather'"):
        Catalogue(regions=[Region(code="140402", name="城区")], groups=[Group(code="elderly", name="老年人")],
                  domains=[Domain(code="environment", name="环境保护")], topics=[topic])
