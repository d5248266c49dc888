"""An alert as a CAP 1.2 document (`application/cap+xml`), valid against the OASIS schema.

Inputs are plain: the stored alert (anything shaped like `store.records.AlertRow`), the envelope (sender,
identifier, sent, status and references — fixed when the alert was stored: see `notifier.cap.ids`), names from
the catalogue, the English texts when there are any, the public page, and for an imported alert its `CapOrigin`.

What is written: `msgType` Alert/Update/Cancel with `references` for the last two; `scope` Public, or Restricted
for an alert kept out of the public column; one `info` per language (zh-CN, then en when English texts exist) with
`category` (the topic's domain, or the origin's), `event` (the topic's name, or the origin's), urgency, severity,
certainty (the origin's, else Likely), `expires`, `senderName` (the department), headline, description,
instruction, `web`, the parameters `topic`, `groups` and `level`, and one `area` per target region with its
GB/T 2260 geocode (no area when the alert is for every region). Times are Beijing time with `+08:00`, whole
seconds, as CAP's schema requires. Parsing the result with `parse_cap` + `import_cap` gives the alert back.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from notifier.cap.imports import CapOrigin, CapTexts
from notifier.cap.model import (
    CAP_NS,
    DEFAULT_CERTAINTY,
    DOMAIN_CATEGORY,
    GBT_2260,
    MSG_TYPE_TO_CAP,
    SEVERITY_TO_CAP,
    URGENCY_TO_CAP,
    CapReference,
    CapScope,
    CapStatus,
    format_cap_time,
    xml_text,
)
from notifier.models import MsgType, Severity, Urgency

RESTRICTION = "不在公开栏目发布，仅推送订阅者 / Not for the public column: delivered to subscribers only"


class CapSource(Protocol):
    """The fields of a stored alert that CAP carries (`store.records.AlertRow` has them all)."""

    @property
    def topic(self) -> str: ...
    @property
    def msg_type(self) -> str: ...
    @property
    def headline(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def instruction(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def urgency(self) -> str: ...
    @property
    def level(self) -> str | None: ...
    @property
    def target_regions(self) -> list[str]: ...
    @property
    def target_groups(self) -> list[str]: ...
    @property
    def expires_at(self) -> float | None: ...
    @property
    def public(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class CapEnvelope:
    """Who says this message, its name and time, and what it refers to."""

    sender: str
    identifier: str
    sent: datetime
    status: CapStatus = CapStatus.ACTUAL
    references: tuple[CapReference, ...] = ()

    @classmethod
    def of_origin(cls, origin: CapOrigin, references: Sequence[CapReference] = ()) -> CapEnvelope:
        """An imported alert keeps the sender, identifier, time and status it came with."""
        return cls(origin.sender, origin.identifier, origin.sent, origin.status, tuple(references))

    def reference(self) -> CapReference:
        """How a later update or cancel of this message refers to it."""
        return CapReference(self.sender, self.identifier, self.sent)


@dataclass(frozen=True, slots=True)
class CapNames:
    """Catalogue names the document shows (Chinese first, English where known)."""

    topic_name: str
    domain: str
    topic_name_en: str | None = None
    department: str | None = None
    department_en: str | None = None
    regions: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)  # code → (name, English name)


def _sub(parent: ET.Element, local: str, text: str | None = None) -> ET.Element:
    node = ET.SubElement(parent, f"{{{CAP_NS}}}{local}")
    if text is not None:
        node.text = xml_text(text)
    return node


def _pair(parent: ET.Element, local: str, name: str, value: str) -> None:
    node = _sub(parent, local)
    _sub(node, "valueName", name)
    _sub(node, "value", value)


@dataclass(frozen=True, slots=True)
class _Block:
    language: str
    texts: CapTexts
    event: str
    sender_name: str | None
    english: bool


def _info(root: ET.Element, alert: CapSource, block: _Block, names: CapNames, web: str | None,
          origin: CapOrigin | None) -> None:
    info = _sub(root, "info")
    _sub(info, "language", block.language)
    for category in origin.categories if origin else (DOMAIN_CATEGORY.get(names.domain, "Other"),):
        _sub(info, "category", category)
    _sub(info, "event", block.event)
    _sub(info, "urgency", URGENCY_TO_CAP[Urgency(alert.urgency)])
    _sub(info, "severity", SEVERITY_TO_CAP[Severity(alert.severity)])
    _sub(info, "certainty", origin.certainty if origin else DEFAULT_CERTAINTY)
    if alert.expires_at is not None:
        _sub(info, "expires", format_cap_time(alert.expires_at))
    if block.sender_name:
        _sub(info, "senderName", block.sender_name)
    _sub(info, "headline", block.texts.headline)
    for local, text in (("description", block.texts.body), ("instruction", block.texts.instruction), ("web", web)):
        if text:
            _sub(info, local, text)
    _pair(info, "parameter", "topic", alert.topic)
    if alert.target_groups:
        _pair(info, "parameter", "groups", ",".join(alert.target_groups))
    if alert.level:
        _pair(info, "parameter", "level", alert.level)
    for code in alert.target_regions:
        name, name_en = names.regions.get(code, (code, None))
        area = _sub(info, "area")
        _sub(area, "areaDesc", (name_en or name) if block.english else name)
        _pair(area, "geocode", GBT_2260, code)


def _blocks(alert: CapSource, names: CapNames, en: CapTexts | None, origin: CapOrigin | None) -> list[_Block]:
    zh = _Block("zh-CN", CapTexts(alert.headline, alert.body, alert.instruction),
                origin.event if origin else names.topic_name, names.department, english=False)
    if en is None:
        return [zh]
    event_en = (origin.event_en if origin else None) or names.topic_name_en or alert.topic
    return [zh, _Block("en", en, event_en, names.department_en or names.department, english=True)]


def render_cap(alert: CapSource, envelope: CapEnvelope, names: CapNames, *, en: CapTexts | None = None,
               web: str | None = None, origin: CapOrigin | None = None) -> bytes:
    """The CAP 1.2 document, UTF-8 with an XML declaration."""
    root = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(root, "identifier", envelope.identifier)
    _sub(root, "sender", envelope.sender)
    _sub(root, "sent", format_cap_time(envelope.sent))
    _sub(root, "status", envelope.status.value)
    _sub(root, "msgType", MSG_TYPE_TO_CAP[MsgType(alert.msg_type)])
    _sub(root, "scope", (CapScope.PUBLIC if alert.public else CapScope.RESTRICTED).value)
    if not alert.public:
        _sub(root, "restriction", RESTRICTION)
    if envelope.references:
        _sub(root, "references", " ".join(ref.text() for ref in envelope.references))
    for block in _blocks(alert, names, en, origin):
        _info(root, alert, block, names, web, origin)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True, default_namespace=CAP_NS)
    return document
