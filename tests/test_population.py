"""Population denominators: uploads validated row by row, and coverage read against the residents on record,
checked exactly against a scenario computed by hand."""

from __future__ import annotations

import pytest

from notifier.coverage import alert_coverage
from notifier.errors import InvalidInput
from notifier.fakes.webhook_receiver import Reply, RunningReceiver
from notifier.models import AlertIn, Policy, Severity
from notifier.population import (
    RawRow,
    UnreadableUpload,
    population_table,
    replace_population,
    rows_from_csv,
    rows_from_json,
    validate_rows,
)
from notifier.publish import publish_alert
from notifier.service import Service
from tests.conftest import SubscriberFactory, settle

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

CHENGQU, JIAOQU = "140402", "140411"
# Residents on record. 城区: 480,000 in all, of whom 41,200 elderly, 6,300 disabled, 52,000 children; 郊区: 300,000,
# of whom 38,500 elderly. No other region has figures.
TABLE = [
    {"region": CHENGQU, "group": None, "residents": 480_000},
    {"region": CHENGQU, "group": "elderly", "residents": 41_200},
    {"region": CHENGQU, "group": "disabled", "residents": 6_300},
    {"region": CHENGQU, "group": "child", "residents": 52_000},
    {"region": JIAOQU, "group": None, "residents": 300_000},
    {"region": JIAOQU, "group": "elderly", "residents": 38_500},
]


async def _load(service: Service) -> None:
    await replace_population(service.store, rows_from_json({"rows": TABLE}))


async def _subscribers(make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """城区: A elderly (reached), B elderly + disabled (webhook gone: not reached), C a child (reached);
    郊区: D elderly (reached)."""
    await make_subscriber(contacts={"webhook": receiver.url_for("/a")}, region=CHENGQU, groups=["elderly"])
    receiver.script("/b", [Reply(status=410)])
    await make_subscriber(contacts={"webhook": receiver.url_for("/b")}, region=CHENGQU,
                          groups=["elderly", "disabled"])
    await make_subscriber(contacts={"webhook": receiver.url_for("/c")}, region=CHENGQU, groups=["child"])
    await make_subscriber(contacts={"webhook": receiver.url_for("/d")}, region=JIAOQU, groups=["elderly"])


async def _publish(service: Service, regions: list[str], groups: list[str]) -> str:
    alert, _ = await publish_alert(service.store, AlertIn(
        topic="env.heavy-pollution", headline="重污染天气橙色预警", severity=Severity.SEVERE, regions=regions,
        groups=groups, policy=Policy.ALL), None)
    await settle(service)
    return alert.id


# ---------------------------------------------------------------- coverage against population


async def test_elderly_of_two_districts_is_the_sum_of_their_elderly_rows(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """An alert to the elderly of 城区 and 郊区 reached 2 of 41,200 + 38,500 = 79,700 elderly residents."""
    await _load(service)
    await _subscribers(make_subscriber, receiver)
    coverage = await alert_coverage(service.store, await _publish(service, [CHENGQU, JIAOQU], ["elderly"]))
    assert (coverage.targeted, coverage.reached, coverage.population) == (3, 2, 79_700)
    assert coverage.population_rate == 2 / 79_700


async def test_of_the_41200_elderly_of_chengqu_one_was_reached(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Of the 41,200 elderly residents of 城区, 1 was reached: the region and the region × group cell say so."""
    await _load(service)
    await _subscribers(make_subscriber, receiver)
    coverage = await alert_coverage(service.store, await _publish(service, [CHENGQU, JIAOQU], ["elderly"]))
    chengqu = coverage.by_region[CHENGQU]
    assert (chengqu.targeted, chengqu.reached, chengqu.population) == (2, 1, 41_200)
    assert chengqu.population_rate == 1 / 41_200
    cells = {(c.region, c.group): (c.reached, c.population) for c in coverage.cells}
    assert cells[(CHENGQU, "elderly")] == (1, 41_200)
    assert cells[(JIAOQU, "elderly")] == (1, 38_500)
    assert coverage.by_region[JIAOQU].population_rate == 1 / 38_500


async def test_a_group_the_alert_did_not_target_gets_no_population(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """B is also disabled, but the alert was for the elderly: the disabled group and cell show no population."""
    await _load(service)
    await _subscribers(make_subscriber, receiver)
    coverage = await alert_coverage(service.store, await _publish(service, [CHENGQU, JIAOQU], ["elderly"]))
    assert coverage.by_group["elderly"].population == 79_700
    assert coverage.by_group["disabled"].targeted == 1
    assert coverage.by_group["disabled"].population is None
    disabled = next(c for c in coverage.cells if c.group == "disabled")
    assert (disabled.population, disabled.population_rate) == (None, None)


async def test_an_alert_to_everybody_in_a_district_uses_its_total(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """An alert to all of 城区 reached 2 (A and C) of its 480,000 residents; each group reads against its row."""
    await _load(service)
    await _subscribers(make_subscriber, receiver)
    coverage = await alert_coverage(service.store, await _publish(service, [CHENGQU], []))
    assert (coverage.targeted, coverage.reached, coverage.population) == (3, 2, 480_000)
    assert coverage.population_rate == 2 / 480_000
    assert coverage.by_region[CHENGQU].population == 480_000
    groups = {code: (c.reached, c.population) for code, c in coverage.by_group.items()}
    assert groups == {"child": (1, 52_000), "disabled": (0, 6_300), "elderly": (1, 41_200)}


async def test_a_figure_missing_a_row_is_null_not_a_partial_sum(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Aimed at the elderly of every region, with rows for only two: the total and the group are null."""
    await _load(service)
    await _subscribers(make_subscriber, receiver)
    coverage = await alert_coverage(service.store, await _publish(service, [], ["elderly"]))
    assert (coverage.population, coverage.population_rate) == (None, None)
    assert coverage.by_group["elderly"].population is None
    assert coverage.by_region[CHENGQU].population == 41_200


async def test_subscribers_in_no_group_have_no_population_cell(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """The cell of subscribers in no group has no residents to compare with."""
    await _load(service)
    await make_subscriber(contacts={"webhook": receiver.url_for("/x")}, region=CHENGQU)
    coverage = await alert_coverage(service.store, await _publish(service, [CHENGQU], []))
    assert [(c.group, c.population) for c in coverage.cells] == [(None, None)]
    assert coverage.population == 480_000


async def test_without_a_table_coverage_has_no_population(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """Before any upload the population fields are null everywhere."""
    await _subscribers(make_subscriber, receiver)
    coverage = await alert_coverage(service.store, await _publish(service, [CHENGQU], []))
    assert coverage.population is None
    assert all(c.population is None for c in [*coverage.cells, *coverage.by_region.values()])


async def test_suppressed_cells_show_no_population(
        service: Service, make_subscriber: SubscriberFactory, receiver: RunningReceiver) -> None:
    """For a viewer (k = 2) the hidden cells hide their population too; the alert's own figure stays."""
    await _load(service)
    await _subscribers(make_subscriber, receiver)
    alert_id = await _publish(service, [CHENGQU, JIAOQU], ["elderly"])
    coverage = await alert_coverage(service.store, alert_id, suppress_below=2)
    hidden = [c for c in [*coverage.cells, *coverage.by_region.values(), *coverage.by_group.values()] if c.suppressed]
    assert hidden and all(c.population is None and c.population_rate is None for c in hidden)
    assert coverage.population == 79_700


# ---------------------------------------------------------------- uploads


async def test_an_upload_replaces_the_whole_table(service: Service) -> None:
    """A second upload leaves only its own rows."""
    await _load(service)
    await replace_population(service.store, rows_from_json([{"region": JIAOQU, "group": "", "residents": 1}]))
    table = await population_table(service.store)
    assert [(r.region, r.group, r.residents) for r in table.rows] == [(JIAOQU, None, 1)]
    assert table.updated_at is not None


async def test_bad_rows_are_each_named_and_nothing_is_stored(service: Service) -> None:
    """An unknown region, an unknown group, a negative and a fractional count, and a repeat: five errors, no rows."""
    await _load(service)
    rows = rows_from_json([
        {"region": CHENGQU, "group": "elderly", "residents": 10},
        {"region": "999999", "residents": 10},
        {"region": CHENGQU, "group": "martians", "residents": 10},
        {"region": JIAOQU, "residents": -1},
        {"region": JIAOQU, "group": "child", "residents": 1.5},
        {"region": CHENGQU, "group": "elderly", "residents": 12},
    ])
    with pytest.raises(InvalidInput) as caught:
        await replace_population(service.store, rows)
    assert [e.field for e in caught.value.errors] == [
        "rows.1.region", "rows.2.group", "rows.3.residents", "rows.4.residents", "rows.5"]
    assert len((await population_table(service.store)).rows) == len(TABLE)


def test_csv_with_bom_and_bilingual_header_is_read() -> None:
    """A UTF-8 file with BOM whose header is an export's (`residents 在册人口`) gives its rows, separators removed."""
    raw = ("\ufeffregion 区县代码,region_name 区县,group 人群代码,residents 在册人口\r\n"
           "140402,城区,,\"480,000\"\r\n140402,城区,elderly,41200\r\n\r\n").encode()
    assert [r.data for r in rows_from_csv(raw)] == [
        {"region": CHENGQU, "group": "", "residents": 480_000},
        {"region": CHENGQU, "group": "elderly", "residents": 41_200}]


def test_gbk_csv_is_read() -> None:
    """A file saved as GBK by older spreadsheet software is decoded."""
    raw = "region,group,residents,备注\n140402,elderly,41200,城区老年人\n".encode("gbk")
    rows = rows_from_csv(raw)
    assert rows[0].data["residents"] == 41_200 and rows[0].line == 2


def test_csv_without_the_columns_is_refused() -> None:
    """A header that does not name region, group and residents is a 422 on `header`."""
    with pytest.raises(InvalidInput) as caught:
        rows_from_csv(b"district,people\n140402,5\n")
    assert [e.field for e in caught.value.errors] == ["header"]


def test_unreadable_bytes_are_a_400() -> None:
    """Bytes that are neither UTF-8 nor GBK are refused as unreadable."""
    with pytest.raises(UnreadableUpload):
        rows_from_csv(b"region,group,residents\n\xff\xfe\xff,1,2\n")


def test_csv_row_errors_name_the_line() -> None:
    """A CSV row's error names its field path and its line in the file."""
    rows = rows_from_csv(b"region,group,residents\n140402,,lots\n")
    with pytest.raises(InvalidInput) as caught:
        validate_rows(rows, {CHENGQU}, set())
    (error,) = caught.value.errors
    assert error.field == "rows.0.residents" and "CSV line 2" in error.message


def test_json_body_must_be_rows() -> None:
    """A JSON object with fields other than `rows` is refused, naming the field."""
    with pytest.raises(InvalidInput) as caught:
        rows_from_json({"rows": [], "region": CHENGQU})
    assert [e.field for e in caught.value.errors] == ["region"]
    assert rows_from_json([]) == [] and rows_from_json({"rows": [{"x": 1}]}) == [RawRow({"x": 1})]
