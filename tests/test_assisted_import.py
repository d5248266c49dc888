"""A sub-district office imports its lists of assisted people: each row checked as one person added to a proxy,
all or nothing unless the valid rows are asked for, reported without labels and with proxies' numbers masked;
and a registry row may name a voice number and the proxy role."""

from __future__ import annotations

import json

import pytest

from notifier.assisted_import import import_assisted
from notifier.importing import ImportOptions, ImportOutcome, import_bytes
from notifier.service import Service
from notifier.store.records import SubscriberRecord
from notifier.subscribers import create_subscriber
from subscriptions.models import SubscriberIn
from tests.cli_run import Cli

pytestmark = pytest.mark.both_backends

PROXY_MOBILE = "13900000009"
HEADER = "网格员,备注,区县,人群\n"


async def _proxy(service: Service, mobile: str = PROXY_MOBILE) -> SubscriberRecord:
    body = SubscriberIn.model_validate({
        "contacts": {"sms": mobile}, "region": "140402", "role": "proxy",
        "assists": [{"label": "1号楼 张奶奶", "region": "140402", "groups": ["elderly"]}],
        "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["sms"]}]})
    record, _ = await create_subscriber(service.store, body, allow_private_webhooks=True)
    return record


async def _people(service: Service, proxy_id: str) -> list[tuple[int, str, str, list[str]]]:
    record = await service.store.get_subscriber(proxy_id)
    assert record is not None
    return [(p.seq, p.label, p.region, p.groups) for p in record.assists]


async def test_a_list_adds_people_to_proxies_named_by_number_or_id(service: Service) -> None:
    """Rows naming a proxy by its mobile number or its id add people after the proxy's last number, with
    districts and groups given by name."""
    proxy = await _proxy(service)
    text = HEADER + f"{PROXY_MOBILE},3号楼2单元 王奶奶,城区,老年人、残疾人\n{proxy.id},5号楼 李大爷,140411,\n"
    report = await import_assisted(service.store, text.encode("gbk"), label="西街街道", partial=False)
    assert (report.outcome, report.stored, report.encoding) == (ImportOutcome.IMPORTED, 2, "gbk")
    assert (await _people(service, proxy.id))[1:] == [(2, "3号楼2单元 王奶奶", "140402", ["disabled", "elderly"]),
                                                      (3, "5号楼 李大爷", "140411", [])]


async def test_one_bad_row_and_nothing_is_stored(service: Service) -> None:
    """An unknown district and an unknown proxy number reject their rows by the header's own column names, and
    nothing is stored; the report holds no label and only a masked number."""
    proxy = await _proxy(service)
    text = HEADER + (f"{PROXY_MOBILE},3号楼 王奶奶,城区,\n{PROXY_MOBILE},4号楼 赵爷爷,城西,\n"
                     "13911112222,6号楼 孙阿姨,城区,\n")
    report = await import_assisted(service.store, text.encode(), label="西街街道", partial=False)
    assert (report.outcome, report.stored, report.rejected) == (ImportOutcome.REJECTED, 0, 2)
    assert {(p.row, p.field) for p in report.problems} == {(2, "区县"), (3, "网格员")}
    dumped = report.model_dump_json()
    assert "赵爷爷" not in dumped and "孙阿姨" not in dumped and "13911112222" not in dumped and "139****2222" in dumped
    assert len(await _people(service, proxy.id)) == 1


async def test_the_valid_rows_are_stored_when_asked(service: Service) -> None:
    """partial: the good row is stored, the bad one reported."""
    proxy = await _proxy(service)
    text = HEADER + f"{PROXY_MOBILE},3号楼 王奶奶,城区,\n{PROXY_MOBILE},,城区,\n"
    report = await import_assisted(service.store, text.encode(), label="西街街道", partial=True)
    assert (report.outcome, report.stored, [p.field for p in report.problems]) == (ImportOutcome.PARTIAL, 1, ["备注"])
    assert len(await _people(service, proxy.id)) == 2


async def test_a_person_listed_twice_is_a_duplicate(service: Service) -> None:
    """A label already on the proxy's list, or repeated in the file for the same proxy, is rejected."""
    await _proxy(service)
    text = HEADER + f"{PROXY_MOBILE},1号楼 张奶奶,城区,\n{PROXY_MOBILE},2号楼 刘奶奶,城区,\n" \
                    f"{PROXY_MOBILE},2号楼 刘奶奶,城区,\n"
    report = await import_assisted(service.store, text.encode(), label="西街街道", partial=False)
    assert [(p.row, p.message.split(":")[0]) for p in report.problems] == [(1, "duplicate"), (3, "duplicate")]


async def test_someone_who_is_no_proxy_gets_no_list(service: Service) -> None:
    """A row naming a subscriber without the proxy role is rejected."""
    body = SubscriberIn.model_validate({"contacts": {"sms": "13800000001"}, "region": "140402",
                                        "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["sms"]}]})
    await create_subscriber(service.store, body, allow_private_webhooks=True)
    report = await import_assisted(service.store, (HEADER + "13800000001,3号楼 王奶奶,城区,\n").encode(),
                                   label="西街街道", partial=False)
    assert [p.field for p in report.problems] == ["网格员"]


async def test_a_registry_row_takes_a_landline_and_the_proxy_role(service: Service) -> None:
    """The subscriber import reads 座机 (a fixed line for voice calls) and 角色 网格员 (a proxy)."""
    text = "座机,角色,区县,订阅主题,渠道\n0355-2021234,网格员,城区,重污染天气预警,语音\n"
    report = await import_bytes(service.store, text.encode(), "csv", ImportOptions(label="街道"))
    assert report.stored == 1, report.problems
    records, _ = await service.store.list_subscribers(10, None)
    assert (records[0].role, records[0].contacts, records[0].subscriptions[0][1]) == (
        "proxy", {"voice": "+863552021234"}, ["voice"])


def test_the_command_imports_a_list_with_assisted(cli: Cli) -> None:
    """`notifier import FILE --assisted` reads a list; an unknown proxy rejects it with exit status 1."""
    (cli.cwd / "list.csv").write_text(HEADER + "13911112222,3号楼 王奶奶,城区,\n", encoding="utf-8")
    result = cli("import", "list.csv", "--assisted", "--report", "report.json")
    assert result.returncode == 1 and "nothing stored" in result.stdout, result.stderr
    assert json.loads((cli.cwd / "report.json").read_text(encoding="utf-8"))["problems"][0]["field"] == "网格员"
    assert "王奶奶" not in result.stdout
