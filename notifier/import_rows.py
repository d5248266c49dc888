"""Rows of a bulk-import file, turned into subscriber bodies (the shape of `POST /v1/subscribers`) before any
validation: the CSV columns and their Chinese aliases, NDJSON lines, and the way a problem found in a body is
named back in the file's own terms (the CSV column as written in its header, or the JSON path of an NDJSON line).

CSV (header on the first line; columns in any order; one column per name, unknown columns refused so that a
misspelt column cannot silently drop data):

- `mobile` (sms, phone, 手机, 手机号, 手机号码, 联系电话): a mainland mobile number
- `email` (邮箱, 电子邮箱, 电子邮件): an email address
- `wechat` (openid, 微信, 微信openid): a WeChat openid
- `webhook` (回调地址) and `webhook_secret` (回调密钥): organisations; a secret is generated when none is given
- `voice` (语音, 语音电话, 固话, 座机, 固定电话): a number for voice calls, a mobile or a fixed line with its area
  code (`0355-2021234`)
- `role` (角色): `proxy` (网格员, 照护人) for a grid worker or caregiver whose people are imported with
  `--assisted`; empty for everyone else
- `region` (区县, 地区, 所在区县, 行政区划代码): the six-digit code, or the catalogue's name (`城区`) — required
- `groups` (group, 人群, 群体, 人群类别): group codes or catalogue names (`老年人`)
- `locale` (语言): `zh-CN` (default) or `en`
- `topics` (topic, 主题, 订阅主题, 订阅事项): topic keys or catalogue names, at least one — required
- `channels` (channel, 渠道, 推送渠道): `sms`, `wechat`, `email`, `webhook` (or 短信, 微信, 邮件), preferred first
- `min_severity` (最低级别): `minor`, `moderate`, `severe` or `extreme`
- `quiet_start`, `quiet_end` (免打扰开始, 免打扰结束): HH:MM, Asia/Shanghai

A header cell may also be bilingual (`mobile 手机号`): its first word is read. List cells (groups, topics,
channels) are separated by `;`, `|`, `；` or `、` — never `,`, which would need quoting in CSV. Every topic of a
row is subscribed with the same channels and minimum severity. Empty `channels`: every channel the row has a
contact for, the topic's catalogue channels first. Empty cells are absent values.

NDJSON: one subscriber body per line, exactly as `POST /v1/subscribers` takes it; blank lines are skipped.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from notifier.errors import FieldError, InvalidInput
from notifier.input_rules import CatalogueCodes
from subscriptions.masking import scrub
from subscriptions.models import CHANNEL_KINDS

# A sub-district office's list of assisted people (`import --assisted`, notifier.assisted_import): its columns here
# too, so that the command line's help names them without importing the import itself.
ASSISTED_COLUMNS: dict[str, tuple[str, ...]] = {
    "proxy": ("网格员", "网格员手机号", "照护人", "转告人"),
    "label": ("备注", "称呼", "受助人"),
    "region": ("区县", "地区", "所在区县", "行政区划代码"),
    "groups": ("group", "人群", "群体", "人群类别"),
}
MAX_LINE_CHARS = 65_536  # one NDJSON line: a subscriber body is a few hundred characters

COLUMNS: dict[str, tuple[str, ...]] = {
    "mobile": ("sms", "phone", "手机", "手机号", "手机号码", "联系电话"),
    "email": ("邮箱", "电子邮箱", "电子邮件"),
    "wechat": ("openid", "微信", "微信openid"),
    "webhook": ("回调地址",),
    "webhook_secret": ("回调密钥",),
    "voice": ("语音", "语音电话", "固话", "座机", "固定电话"),
    "role": ("角色",),
    "region": ("区县", "地区", "所在区县", "行政区划代码"),
    "groups": ("group", "人群", "群体", "人群类别"),
    "locale": ("语言",),
    "topics": ("topic", "主题", "订阅主题", "订阅事项"),
    "channels": ("channel", "渠道", "推送渠道"),
    "min_severity": ("最低级别",),
    "quiet_start": ("免打扰开始",),
    "quiet_end": ("免打扰结束",),
}
_ALIASES = {alias.lower(): name for name, aliases in COLUMNS.items() for alias in (name, *aliases)}
CONTACT_COLUMNS = {"mobile": "sms", "email": "email", "wechat": "wechat", "webhook": "webhook",
                   "webhook_secret": "webhook_secret", "voice": "voice"}
CHANNEL_ALIASES = {"短信": "sms", "手机": "sms", "mobile": "sms", "微信": "wechat", "邮件": "email",
                   "邮箱": "email", "电子邮件": "email", "语音": "voice", "语音电话": "voice", "电话": "voice"}
ROLE_ALIASES = {"网格员": "proxy", "照护人": "proxy", "转告人": "proxy"}
_LIST_SEPARATORS = re.compile(r"[;|；、]")
# Where a problem in a subscriber body lives in a CSV row (the first match wins; `.N` indexes are dropped).
_CSV_FIELDS = (("contacts.sms", "mobile"), ("contacts.email", "email"), ("contacts.wechat", "wechat"),
               ("contacts.voice", "voice"), ("role", "role"),
               ("contacts.webhook_secret", "webhook_secret"), ("contacts.webhook", "webhook"),
               ("quiet_hours.end", "quiet_end"), ("quiet_hours", "quiet_start"), ("region", "region"),
               ("groups", "groups"), ("locale", "locale"), ("subscriptions.topic", "topics"),
               ("subscriptions.channels", "channels"), ("subscriptions.min_severity", "min_severity"),
               ("subscriptions", "topics"))
_INDEX = re.compile(r"\.\d+(?=\.|$)")


@dataclass(frozen=True, slots=True)
class RawRow:
    """One data row: its 1-based number, the line of the file it starts on, and its subscriber body (None when
    the row could not even be read, `errors` then says why)."""

    row: int
    line: int
    body: dict[str, Any] | None
    errors: tuple[FieldError, ...] = ()


class RowReader(Protocol):
    """A file format: its rows as subscriber bodies, and where a body's field lives in the file."""

    format: str

    def rows(self) -> Iterator[RawRow]: ...
    def field(self, path: str) -> str: ...


def split_list(cell: str | None) -> list[str]:
    return [part.strip() for part in _LIST_SEPARATORS.split(cell or "") if part.strip()]


class CsvReader:
    """CSV rows (header first) as subscriber bodies; see the module docstring for the columns."""

    format = "csv"

    def __init__(self, stream: TextIO, codes: CatalogueCodes) -> None:
        self.codes = codes
        self._reader = csv.reader(stream)
        try:
            header = next(self._reader, [])
        except csv.Error as exc:
            raise InvalidInput("the CSV file is not valid", [FieldError("header", str(exc))]) from None
        self.columns = _header(header)
        self.written = {name: header[i].strip() for i, name in enumerate(self.columns)}

    def rows(self) -> Iterator[RawRow]:
        number, start = 0, self._reader.line_num + 1
        try:
            for cells in self._reader:
                line, start = start, self._reader.line_num + 1
                if not any(c.strip() for c in cells):
                    continue  # blank lines (spreadsheets add them at the end)
                number += 1
                if len(cells) != len(self.columns):
                    yield RawRow(number, line, None, (FieldError("", f"has {len(cells)} cells, the header has "
                                                                     f"{len(self.columns)}"),))
                    continue
                values = {name: cell.strip() for name, cell in zip(self.columns, cells, strict=True)}
                yield RawRow(number, line, self._body(values))
        except csv.Error as exc:
            raise InvalidInput(f"the CSV file is not valid at line {self._reader.line_num}",
                               [FieldError(f"rows.{number + 1}", str(exc))]) from None

    def _body(self, cells: dict[str, str]) -> dict[str, Any]:
        contacts = {kind: cells[column] for column, kind in CONTACT_COLUMNS.items() if cells.get(column)}
        body: dict[str, Any] = {"contacts": contacts,
                                "groups": [self.codes.code("group", g) for g in split_list(cells.get("groups"))]}
        if cells.get("region"):
            body["region"] = self.codes.code("region", cells["region"])
        if cells.get("locale"):
            body["locale"] = cells["locale"]
        if cells.get("role"):
            body["role"] = ROLE_ALIASES.get(cells["role"], cells["role"].lower())
        if cells.get("quiet_start") or cells.get("quiet_end"):
            body["quiet_hours"] = {key: cells[column] for key, column in (("start", "quiet_start"),
                                                                          ("end", "quiet_end")) if cells.get(column)}
        channels = [CHANNEL_ALIASES.get(c.lower(), c.lower()) for c in split_list(cells.get("channels"))]
        subscriptions = []
        for cell in split_list(cells.get("topics")):
            topic = self.codes.code("topic", cell)
            sub: dict[str, Any] = {"topic": topic, "channels": channels or self._default_channels(topic, contacts)}
            if cells.get("min_severity"):
                sub["min_severity"] = cells["min_severity"].lower()
            subscriptions.append(sub)
        body["subscriptions"] = subscriptions
        return body

    def _default_channels(self, topic: str, contacts: dict[str, str]) -> list[str]:
        preferred = self.codes.topics.get(topic, [])
        order = [*preferred, *(k for k in CHANNEL_KINDS if k not in preferred)]
        return [kind for kind in order if kind in contacts]

    def field(self, path: str) -> str:
        """`contacts.sms` → the mobile column as the header wrote it (`手机号`)."""
        bare = _INDEX.sub("", path)
        for prefix, column in _CSV_FIELDS:
            if bare == prefix or bare.startswith(prefix + "."):
                return self.written.get(column, column)
        return bare


def header_names(cells: Sequence[str], aliases: Mapping[str, str]) -> tuple[list[str], list[FieldError]]:
    """The canonical names of a header row's cells (by `aliases`, lower-cased; a bilingual cell such as
    `mobile 手机号` by its first word), and an error for every unknown or repeated column."""
    names: list[str] = []
    errors: list[FieldError] = []
    for cell in cells:
        text = cell.strip().lower()
        name = aliases.get(text) or aliases.get(text.split(" ", 1)[0])
        if name is None:
            # A file without a header would show its first row here: mask any contact in it.
            errors.append(FieldError("header", f"unknown column {scrub(cell.strip())!r}"))
        elif name in names:
            errors.append(FieldError("header", f"the column {name} is given twice"))
        names.append(name or "")
    return names, errors


def _header(cells: Sequence[str]) -> list[str]:
    """Canonical column names of a header row; InvalidInput naming every unknown or repeated column."""
    names, errors = header_names(cells, _ALIASES)
    if not errors:
        if "region" not in names or "topics" not in names:
            errors.append(FieldError("header", "the columns region and topics are required"))
        if not any(c in names for c in CONTACT_COLUMNS if c != "webhook_secret"):
            errors.append(FieldError("header", "a contact column is required: mobile, email, wechat, webhook or "
                                               "voice"))
    if errors:
        known = ", ".join(COLUMNS)
        raise InvalidInput(f"the CSV header is not valid; the columns are {known} (or their Chinese names)", errors)
    return names


class NdjsonReader:
    """NDJSON: one `POST /v1/subscribers` body per line."""

    format = "ndjson"

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def rows(self) -> Iterator[RawRow]:
        number, line = 0, 0
        while text := self._stream.readline(MAX_LINE_CHARS + 1):
            line += 1
            if len(text) > MAX_LINE_CHARS:
                raise InvalidInput(f"line {line} is longer than {MAX_LINE_CHARS} characters",
                                   [FieldError(f"rows.{number + 1}", "line too long")])
            if not text.strip():
                continue
            number += 1
            try:
                data = json.loads(text)
            except ValueError as exc:
                message = f"not valid JSON: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else "not valid JSON"
                yield RawRow(number, line, None, (FieldError("", message),))
                continue
            if not isinstance(data, dict):
                yield RawRow(number, line, None, (FieldError("", "each line must be a JSON object"),))
                continue
            yield RawRow(number, line, data)

    def field(self, path: str) -> str:
        return path
