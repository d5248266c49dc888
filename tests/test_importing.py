"""Bulk import of subscribers: CSV (UTF-8 or GBK, English or Chinese headers) and NDJSON, validated row by row,
all or nothing unless the valid rows are asked for, reported without contacts; and the `notifier import` command."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from notifier.errors import InvalidInput
from notifier.importing import ImportOptions, ImportOutcome, ImportProgress, ImportReport, import_bytes, import_file
from notifier.models import AlertIn, Severity
from notifier.publish import publish_alert
from notifier.service import Service
from notifier.textcoding import UnreadableUpload
from subscriptions.models import SubscriberStatus
from tests.cli_run import Cli
from tests.conftest import SubscriberFactory

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)

HEADER = "mobile,email,region,groups,topics,channels\n"
GOOD = ("13800000001,li.na@example.org,140402,elderly;disabled,env.heavy-pollution|env.air-forecast,sms|email\n"
        "13800000002,,140411,,env.heavy-pollution,\n"
        ",wang.fang@example.org,140402,student,env.air-forecast,email\n")
BAD_ROWS = (
    "12345,,140402,,env.heavy-pollution,sms\n"  # row 4: invalid mobile
    "13800000004,,999999,,env.heavy-pollution,sms\n"  # row 5: unknown region
    "13800000005,,140402,,env.no-such-topic,sms\n"  # row 6: unknown topic
    "13800000006,,140402,,env.heavy-pollution,sms|email\n"  # row 7: no email for the email channel
    "13800000001,,140402,,env.heavy-pollution,sms\n"  # row 8: repeats row 1
)
GBK_FILE = ("手机号,邮箱,区县,人群,订阅主题,渠道\n"
            "13800000011,,城区,老年人、残疾人,重污染天气预警,短信\n"
            "13800000012,zhao.lei@example.org,140411,学生,env.air-forecast,邮件;短信\n")
NDJSON = (json.dumps({"contacts": {"sms": "+8613800000021"}, "region": "140402", "groups": ["elderly"],
                      "subscriptions": [{"topic": "env.heavy-pollution", "channels": ["sms"]}]}) + "\n\n"
          + json.dumps({"contacts": {"email": "chen.jie@example.org"}, "region": "140411",
                        "subscriptions": [{"topic": "env.air-forecast", "channels": ["email"],
                                           "min_severity": "severe"}]}) + "\n")


def options(**kw: Any) -> ImportOptions:
    return replace(ImportOptions(label="民政局低保名册.csv", allow_private_webhooks=True), **kw)


async def run(service: Service, text: str, fmt: str = "csv", encoding: str = "utf-8", **kw: Any) -> ImportReport:
    return await import_bytes(service.store, text.encode(encoding), fmt, options(**kw))


def by_row(report: ImportReport) -> dict[int, list[tuple[str, str]]]:
    rows: dict[int, list[tuple[str, str]]] = {}
    for p in report.problems:
        rows.setdefault(p.row, []).append((p.field, p.message))
    return rows


async def stored(service: Service) -> int:
    return await service.store.count_subscribers()


# ---------------------------------------------------------------- formats


async def test_a_utf8_csv_is_imported_whole(service: Service) -> None:
    """Every row of a good UTF-8 CSV is stored, and the report says so."""
    report = await run(service, HEADER + GOOD)
    assert (report.outcome, report.rows, report.accepted, report.rejected, report.stored) == (
        ImportOutcome.IMPORTED, 3, 3, 0, 3)
    assert report.encoding == "utf-8" and await stored(service) == 3


async def test_csv_cells_become_the_subscriber(service: Service) -> None:
    """Groups, topics and channels lists are split on `;` and `|`; every topic gets the row's channels."""
    await run(service, HEADER + GOOD.splitlines(keepends=True)[0])
    records, _ = await service.store.list_subscribers(10, None)
    record = records[0]
    assert record.contacts == {"sms": "+8613800000001", "email": "li.na@example.org"}
    assert (record.region, record.groups) == ("140402", ["disabled", "elderly"])
    assert record.subscriptions == [("env.air-forecast", ["sms", "email"], 0),
                                    ("env.heavy-pollution", ["sms", "email"], 0)]


async def test_imported_subscribers_are_active_with_the_import_as_consent(service: Service) -> None:
    """The bureau vouches for its registry: subscribers are active, consent source `import:<label>`."""
    await run(service, HEADER + GOOD)
    records, _ = await service.store.list_subscribers(10, None)
    assert {r.status for r in records} == {"active"}
    assert {r.consent_source for r in records} == {"import:民政局低保名册.csv"}


async def test_empty_channels_follow_the_topic_preference(service: Service) -> None:
    """An empty channels cell means every contact given, the topic's catalogue channels first."""
    await run(service, "email,mobile,region,topics\nli.na@example.org,13800000001,140402,env.heavy-pollution\n")
    records, _ = await service.store.list_subscribers(10, None)
    assert records[0].subscriptions == [("env.heavy-pollution", ["sms", "email"], 0)]


async def test_a_utf8_file_with_bom_is_read(service: Service) -> None:
    """A spreadsheet's byte-order mark does not spoil the first column name."""
    report = await run(service, "\ufeff" + HEADER + GOOD)
    assert report.stored == 3


async def test_a_gbk_csv_with_chinese_headers_and_names_is_imported(service: Service) -> None:
    """GBK bytes, Chinese column names and catalogue names for region, groups, topic and channels."""
    report = await run(service, GBK_FILE, encoding="gbk")
    assert (report.encoding, report.stored) == ("gbk", 2)
    records, _ = await service.store.list_subscribers(10, None)
    first = next(r for r in records if r.contacts.get("sms") == "+8613800000011")
    assert (first.region, first.groups) == ("140402", ["disabled", "elderly"])
    assert first.subscriptions == [("env.heavy-pollution", ["sms"], 0)]


async def test_problems_name_the_column_as_the_header_wrote_it(service: Service) -> None:
    """A bad cell under 手机号 is reported as 手机号."""
    report = await run(service, "手机号,区县,订阅主题\n12345,城区,env.heavy-pollution\n", encoding="gbk")
    assert [(p.field, p.row, p.line) for p in report.problems] == [("手机号", 1, 2)]


async def test_ndjson_bodies_are_imported(service: Service) -> None:
    """Each NDJSON line is a subscriber body; blank lines are skipped."""
    report = await run(service, NDJSON, fmt="ndjson")
    assert (report.format, report.rows, report.stored) == ("ndjson", 2, 2)
    records, _ = await service.store.list_subscribers(10, None)
    assert ("env.air-forecast", ["email"], 3) in [s for r in records for s in r.subscriptions]


async def test_ndjson_bodies_may_name_districts_groups_and_topics_as_csv_rows_do(service: Service) -> None:
    """An NDJSON body with 城区, 老年人 and 重污染天气预警 is stored with their codes, like a CSV row."""
    line = json.dumps({"contacts": {"sms": "+8613800000031"}, "region": "城区", "groups": ["老年人"],
                       "subscriptions": [{"topic": "重污染天气预警", "channels": ["sms"]}]}, ensure_ascii=False)
    report = await run(service, line + "\n", fmt="ndjson")
    assert (report.rejected, report.stored) == (0, 1), report.problems
    [record], _ = await service.store.list_subscribers(10, None)
    assert (record.region, record.groups, record.subscriptions[0][0]) == ("140402", ["elderly"],
                                                                         "env.heavy-pollution")


async def test_an_ndjson_line_that_is_not_json_is_named_with_its_line(service: Service) -> None:
    """A broken line is rejected with its line number; nothing is stored."""
    report = await run(service, NDJSON + "{not json\n", fmt="ndjson")
    assert [(p.row, p.line, p.field) for p in report.problems] == [(3, 4, "")]
    assert "not valid JSON" in report.problems[0].message and await stored(service) == 0


# ---------------------------------------------------------------- rejection


async def test_one_bad_row_stores_nothing(service: Service) -> None:
    """All or nothing: with rejected rows, not even the good rows are stored."""
    report = await run(service, HEADER + GOOD + BAD_ROWS)
    assert (report.outcome, report.accepted, report.rejected, report.stored) == (ImportOutcome.REJECTED, 3, 5, 0)
    assert await stored(service) == 0


async def test_the_report_names_each_bad_row_and_its_reason(service: Service) -> None:
    """Invalid mobile, unknown region, unknown topic, missing channel contact and duplicate, each by row."""
    rows = by_row(await run(service, HEADER + GOOD + BAD_ROWS))
    assert rows[4] == [("mobile", "must be a mainland China mobile number: 11 digits starting with 1, +86 optional")]
    assert rows[5] == [("region", "unknown region '999999'")]
    assert rows[6] == [("topics", "unknown topic 'env.no-such-topic'")]
    assert rows[7] == [("channels", "no email contact was given for this channel")]
    assert rows[8] == [("mobile", "duplicate: 138****0001 is already in row 1")]


async def test_the_report_never_holds_a_contact_in_clear(service: Service) -> None:
    """No mobile number or email address of the file appears in the report."""
    report = await run(service, HEADER + GOOD + BAD_ROWS + "1380000000x,bad@@example,140402,,env.air-forecast,\n")
    text = report.model_dump_json()
    for contact in ("13800000001", "13800000006", "12345", "1380000000x", "bad@@example", "li.na@"):
        assert contact not in text


async def test_every_problem_of_a_row_is_reported(service: Service) -> None:
    """A row with a bad mobile number also hears about its unknown region and group."""
    report = await run(service, HEADER + "12345,,999999,nobody,env.heavy-pollution,sms\n")
    assert {f for f, _ in by_row(report)[1]} == {"mobile", "region", "groups"}


async def test_an_unknown_district_is_reported_as_an_unknown_district(service: Service) -> None:
    """A district name the catalogue does not hold is "unknown region", with the nearest name, not a format error."""
    rows = by_row(await run(service, HEADER + "13800000001,,城西,老人,env.heavy-pollution,sms\n"))
    assert rows[1] == [("region", "unknown region '城西' (did you mean 城区?)"),
                       ("groups", "unknown group '老人' (did you mean 老年人?)")]


async def test_rejected_rows_are_listed_in_the_order_of_the_file(service: Service) -> None:
    """Repeats and malformed rows are reported row after row, as the file has them."""
    text = HEADER + ("13800000001,,140402,,env.heavy-pollution,sms\n"  # row 1: fine
                     "13800000001,,140402,,env.heavy-pollution,sms\n"  # row 2: repeats row 1
                     "12345,,140402,,env.heavy-pollution,sms\n"  # row 3: malformed mobile
                     "13800000001,,140411,,env.air-forecast,sms\n")  # row 4: repeats row 1
    report = await run(service, text)
    assert [p.row for p in report.problems] == [2, 3, 4]


async def test_a_repeated_contact_is_reported_with_the_rest_of_a_bad_row(service: Service) -> None:
    """A row that repeats an earlier contact and names an unknown district hears both at once."""
    text = HEADER + ("13800000001,,140402,,env.heavy-pollution,sms\n"
                     "13800000001,,城西,,env.heavy-pollution,sms\n")
    assert {f for f, _ in by_row(await run(service, text))[2]} == {"region", "mobile"}


async def test_a_row_without_a_topic_is_rejected(service: Service) -> None:
    """An imported subscriber must subscribe to something."""
    report = await run(service, HEADER + "13800000001,,140402,,,\n")
    assert by_row(report)[1] == [("topics", "at least one topic is needed")]


async def test_a_contact_already_held_is_a_duplicate(service: Service, make_subscriber: SubscriberFactory) -> None:
    """Re-importing someone who is already subscribed is refused, masked."""
    await make_subscriber(contacts={"sms": "+8613800000002"})
    report = await run(service, HEADER + GOOD)
    assert by_row(report) == {2: [("mobile", "duplicate: 138****0002 is already held by a subscriber")]}


async def test_duplicates_are_found_across_chunks(service: Service) -> None:
    """A repeat far from its first row, in another chunk, is still found."""
    rows = "".join(f"1380000{i:04d},,140402,,env.heavy-pollution,sms\n" for i in range(1, 8))
    report = await run(service, HEADER + rows + "13800000001,,140402,,env.heavy-pollution,sms\n", chunk_rows=3)
    assert (report.rejected, by_row(report)[8][0][1]) == (1, "duplicate: 138****0001 is already in row 1")


async def test_a_private_webhook_is_refused_unless_allowed(service: Service) -> None:
    """The SSRF guard of the API applies to imported webhooks."""
    text = "webhook,region,topics\nhttp://127.0.0.1:9/hook,140402,env.heavy-pollution\n"
    report = await run(service, text, allow_private_webhooks=False)
    assert [p.field for p in report.problems] == ["webhook"]


# ---------------------------------------------------------------- modes


async def test_accept_valid_stores_the_good_rows(service: Service) -> None:
    """With partial, the valid rows are stored and the others reported."""
    report = await run(service, HEADER + GOOD + BAD_ROWS, partial=True)
    assert (report.outcome, report.stored, report.rejected) == (ImportOutcome.PARTIAL, 3, 5)
    assert await stored(service) == 3


async def test_pending_imports_wait_for_verification(service: Service) -> None:
    """With the pending status, subscribers are stored pending and no alert targets them."""
    await run(service, HEADER + GOOD, status=SubscriberStatus.PENDING)
    records, _ = await service.store.list_subscribers(10, None)
    alert, _ = await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="预警",
                                                          severity=Severity.MODERATE), None)
    assert {r.status for r in records} == {"pending"} and alert.targeted == 0


async def test_imported_subscribers_are_targeted_by_a_publish(service: Service) -> None:
    """An alert to a topic reaches the imported subscribers of that topic."""
    await run(service, HEADER + GOOD)
    alert, _ = await publish_alert(service.store, AlertIn(topic="env.heavy-pollution", headline="重污染预警",
                                                          severity=Severity.MODERATE), None)
    assert alert.targeted == 2


async def test_a_generated_webhook_secret_is_in_the_report(service: Service) -> None:
    """A webhook row without a secret gets one, shown once in the report."""
    report = await run(service, "webhook,region,topics\nhttp://localhost:9/hook,140402,env.air-forecast\n")
    (secret,) = report.webhook_secrets
    assert secret.row == 1 and secret.webhook_secret.startswith("whsec_")


async def test_a_crash_while_storing_leaves_nothing(service: Service) -> None:
    """The store's one transaction: a failure after some batches were written rolls them all back."""

    def crash(counts: ImportProgress) -> None:
        if counts.phase == "storing" and counts.stored >= 2:
            raise RuntimeError("power cut")

    rows = "".join(f"1380000{i:04d},,140402,,env.heavy-pollution,sms\n" for i in range(1, 7))
    with pytest.raises(RuntimeError):
        await import_bytes(service.store, (HEADER + rows).encode(), "csv", options(chunk_rows=2), crash)
    assert await stored(service) == 0


# ---------------------------------------------------------------- the file as a whole


async def test_an_unknown_column_refuses_the_file(service: Service) -> None:
    """A column the import does not know (a misspelling, or data it must not hold) is named, nothing read."""
    with pytest.raises(InvalidInput) as caught:
        await run(service, "mobile,姓名,region,topics\n13800000001,张三,140402,env.air-forecast\n")
    assert [e.message for e in caught.value.errors] == ["unknown column '姓名'"]


async def test_a_header_without_region_or_topics_is_refused(service: Service) -> None:
    """The region and topics columns are required."""
    with pytest.raises(InvalidInput):
        await run(service, "mobile\n13800000001\n")


async def test_a_file_with_no_rows_is_refused(service: Service) -> None:
    """A header alone imports nothing and says so."""
    with pytest.raises(InvalidInput):
        await run(service, HEADER + "\n\n")


async def test_bytes_that_are_not_text_are_unreadable(service: Service) -> None:
    """Neither UTF-8 nor GBK: refused as unreadable."""
    with pytest.raises(UnreadableUpload):
        await import_bytes(service.store, b"mobile\n\x81\xff\xfe\n", "csv", options())


@pytest.fixture
async def csv_file(tmp_path: Path) -> AsyncIterator[Path]:
    path = tmp_path / "registry.csv"
    path.write_bytes(GBK_FILE.encode("gbk"))
    yield path


async def test_a_file_on_disk_is_streamed(service: Service, csv_file: Path) -> None:
    """import_file detects the encoding and format of a file and reports progress as it reads."""
    seen: list[tuple[str, int]] = []
    report = await import_file(service.store, csv_file, None, options(chunk_rows=2),
                               lambda p: seen.append((p.phase, p.rows)))
    assert (report.format, report.encoding, report.stored) == ("csv", "gbk", 2)
    assert seen[0] == ("validating", 2) and seen[-1] == ("storing", 2)


# ---------------------------------------------------------------- the command


def test_the_command_imports_and_prints_the_summary(cli: Cli) -> None:
    """`notifier import FILE` stores the rows and prints the counts."""
    (cli.cwd / "registry.csv").write_text(HEADER + GOOD, encoding="utf-8")
    result = cli("import", "registry.csv")
    assert result.returncode == 0, result.stderr
    assert "3 rows read, 3 accepted, 0 rejected, 3 stored" in result.stdout


def test_the_command_says_its_summary_in_chinese_by_default(cli: Cli) -> None:
    """With no language named, the summary is Chinese, its heading and verdict with the English beside."""
    (cli.cwd / "registry.csv").write_text(HEADER + GOOD, encoding="utf-8")
    result = cli("import", "registry.csv", lang=None)
    assert result.returncode == 0, result.stderr
    summary = "导入结果 Import registry.csv（csv，utf-8）：读取 3 行，通过 3 行，拒绝 0 行，以 active 状态入库 3 行"
    assert summary in result.stdout
    assert "全部导入 every row stored" in result.stdout


def test_the_command_exits_non_zero_when_rows_are_rejected(cli: Cli) -> None:
    """All or nothing: rejected rows, nothing stored, exit status 1, each row listed without its contact."""
    (cli.cwd / "registry.csv").write_text(HEADER + GOOD + BAD_ROWS, encoding="utf-8")
    result = cli("import", "registry.csv", "--report", "report.json")
    report = json.loads((cli.cwd / "report.json").read_text(encoding="utf-8"))
    assert result.returncode == 1 and "nothing stored" in result.stdout
    assert (report["stored"], report["rejected"]) == (0, 5)
    assert "13800000006" not in result.stdout + result.stderr


def test_the_command_with_accept_valid_stores_the_good_rows(cli: Cli) -> None:
    """--accept-valid stores the valid rows and exits 0."""
    (cli.cwd / "registry.ndjson").write_text(NDJSON + "{}\n", encoding="utf-8")
    result = cli("import", "registry.ndjson", "--accept-valid")
    assert result.returncode == 0, result.stderr
    assert "3 rows read, 2 accepted, 1 rejected, 2 stored" in result.stdout


def test_the_command_refuses_an_unreadable_header(cli: Cli) -> None:
    """A file the import cannot read at all exits 2 with the reason."""
    (cli.cwd / "registry.csv").write_text("who,where\n", encoding="utf-8")
    result = cli("import", "registry.csv")
    assert result.returncode == 2 and "unknown column" in result.stderr
