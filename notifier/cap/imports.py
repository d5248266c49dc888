"""A parsed CAP alert → the body of our `AlertIn` (the zh-CN block), the en block's texts, and its CAP origin.

Rules (each refusal is a field error, 422):
- `status` Actual publishes; Exercise and Test are imported with `exercise = True` (recorded, delivered to no one,
  kept out of the public column); System and Draft are refused. `msgType` Alert, Update, Cancel; Ack and Error are
  refused. Update and Cancel need `references`; the last one (by `sent`) that the store knows decides which of our
  alerts it acts on (`resolved`: (sender, identifier) → our alert id); none known is refused.
- Languages: the block whose `language` is zh (zh, zh-CN, zh-Hans…) is the alert; one in en (en, en-US…) gives the
  English texts; others are ignored. A missing `language` means en-US, as CAP says, so a Chinese block must say
  `zh-CN`. No zh block, or two, is refused. Targeting, severity and parameters come from the zh block.
- `severity` Extreme/Severe/Moderate/Minor → ours; Unknown is refused. `urgency` Immediate/Expected/Future → ours;
  Past and Unknown → expected. `certainty`, `event` and `category` are kept in the origin (for reading back).
- `headline` (else `event`) → headline, `description` → body, `instruction` → instruction, `expires` → expires_at.
  `scope` other than Public → `public = false`.
- Regions: every `geocode` whose valueName is GB/T 2260 (spacing and case aside) with a six-digit code. No area at
  all, or areas with only an `areaDesc`, means all regions. An area that marks a place we cannot target — a
  polygon, a circle, or only other geocodes (e.g. a 12-digit township code) — is refused rather than widened to the
  whole city; GB/T 2260 geocodes beside other ones are used and the others ignored.
- Parameters: `topic` (required: our topic key), `groups` (optional, comma-separated codes), `level` (optional:
  blue/yellow/orange/red, our warning colour). Other parameters are ignored.
- The same sender + identifier is the same alert: its idempotency key is `cap_key(sender, identifier)`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from notifier.cap.ids import cap_key
from notifier.cap.model import (
    GBT_2260,
    MSG_TYPE_FROM_CAP,
    SEVERITY_FROM_CAP,
    URGENCY_FROM_CAP,
    CapAlert,
    CapArea,
    CapInfo,
    CapInvalid,
    CapMsgType,
    CapScope,
    CapStatus,
    format_cap_time,
    parse_cap_time,
)
from notifier.errors import FieldError
from notifier.models import REGION_CODE, AlertIn, Level, MsgType

_EXERCISES = (CapStatus.EXERCISE, CapStatus.TEST)
# Where an AlertIn field came from, to name CAP's element in a validation error.
_SOURCE = {"headline": "headline", "body": "description", "instruction": "instruction", "expires_at": "expires",
           "regions": "area", "groups": "parameter(groups)", "topic": "parameter(topic)",
           "level": "parameter(level)"}


@dataclass(frozen=True, slots=True)
class CapTexts:
    """One language's words of an alert (what an English subscriber reads, when there is an en block)."""

    headline: str
    body: str = ""
    instruction: str = ""


@dataclass(frozen=True, slots=True)
class CapOrigin:
    """What an imported alert keeps of its CAP document so that reading it back as CAP says the same thing."""

    sender: str
    identifier: str
    sent: datetime
    status: CapStatus
    event: str
    categories: tuple[str, ...]
    certainty: str
    event_en: str | None = None

    def to_json(self) -> str:
        """For one TEXT column."""
        return json.dumps({"sender": self.sender, "identifier": self.identifier, "sent": format_cap_time(self.sent),
                           "status": self.status.value, "event": self.event, "categories": list(self.categories),
                           "certainty": self.certainty, "event_en": self.event_en},
                          ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CapOrigin:
        data: dict[str, Any] = json.loads(text)
        return cls(sender=data["sender"], identifier=data["identifier"], sent=parse_cap_time(data["sent"]),
                   status=CapStatus(data["status"]), event=data["event"], categories=tuple(data["categories"]),
                   certainty=data["certainty"], event_en=data.get("event_en"))


@dataclass(frozen=True, slots=True)
class CapImport:
    alert: AlertIn  # publish it like a JSON body (catalogue checks, approval, idempotency all apply)
    en: CapTexts | None  # store beside the alert for English subscribers
    origin: CapOrigin  # store beside the alert (CapOrigin.to_json) for GET …/cap
    exercise: bool  # Exercise / Test: record with status `exercise`, target no one, keep out of the public column


def _is(language: str, prefix: str) -> bool:
    return language.lower() == prefix or language.lower().startswith(prefix + "-")


def _blocks(doc: CapAlert, errors: list[FieldError]) -> tuple[int, CapInfo | None]:
    """(index, zh block) and the en block."""
    zh = [i for i, info in enumerate(doc.infos) if _is(info.language, "zh")]
    en = [i for i, info in enumerate(doc.infos) if _is(info.language, "en")]
    if not doc.infos:
        errors.append(FieldError("alert.info", "an info block in zh-CN is required"))
    elif not zh:
        errors.append(FieldError("alert.info", "no info block in Chinese: give one <language>zh-CN</language> "
                                               "(a block without language is en-US)"))
    for name, found in (("zh-CN", zh), ("en", en)):
        if len(found) > 1:
            errors.append(FieldError(f"alert.info[{found[1]}].language", f"a second info block in {name}"))
    return (zh[0] if zh else -1), (doc.infos[en[0]] if en else None)


def _regions(info: CapInfo, path: str, errors: list[FieldError]) -> list[str]:
    codes: list[str] = []
    for a, area in enumerate(info.areas):
        ours = _area_codes(area, f"{path}.area[{a}]", errors)
        if not ours and (area.polygons or area.circles or area.geocodes):
            errors.append(FieldError(f"{path}.area[{a}]", "marks a place by polygon, circle or another code; give "
                                                          f"its county/district as a geocode with valueName "
                                                          f"{GBT_2260!r} (refused rather than sent city-wide)"))
        codes += ours
    return codes


def _area_codes(area: CapArea, path: str, errors: list[FieldError]) -> list[str]:
    codes = []
    for g, geocode in enumerate(area.geocodes):
        if geocode.value_name.replace(" ", "").upper() != GBT_2260.replace(" ", ""):
            continue
        if REGION_CODE.fullmatch(geocode.value):
            codes.append(geocode.value)
        else:
            errors.append(FieldError(f"{path}.geocode[{g}].value",
                                     f"{geocode.value!r} is not a six-digit GB/T 2260 code"))
    return codes


def _reference(doc: CapAlert, resolved: Mapping[tuple[str, str], str], errors: list[FieldError]) -> str | None:
    if doc.msg_type is CapMsgType.ALERT:
        return None
    if not doc.references:
        errors.append(FieldError("alert.references", f"a {doc.msg_type.value} needs the alert it refers to"))
        return None
    for ref in sorted(doc.references, key=lambda r: r.sent, reverse=True):
        if (ref.sender, ref.identifier) in resolved:
            return resolved[(ref.sender, ref.identifier)]
    errors.append(FieldError("alert.references", "none of the referenced alerts is known here"))
    return None


def _envelope_errors(doc: CapAlert) -> list[FieldError]:
    errors = []
    if doc.status not in (CapStatus.ACTUAL, *_EXERCISES):
        errors.append(FieldError("alert.status", f"{doc.status.value} is not accepted: Actual, Exercise or Test"))
    if doc.msg_type not in MSG_TYPE_FROM_CAP:
        errors.append(FieldError("alert.msgType", f"{doc.msg_type.value} is not accepted: Alert, Update or Cancel"))
    return errors


def _body(doc: CapAlert, info: CapInfo, path: str, errors: list[FieldError]) -> dict[str, Any]:
    severity = SEVERITY_FROM_CAP.get(info.severity)
    if severity is None:
        errors.append(FieldError(f"{path}.severity", f"{info.severity} is not accepted: Extreme, Severe, Moderate "
                                                     "or Minor"))
    topic = info.parameter("topic")
    if not topic:
        errors.append(FieldError(f"{path}.parameter", "a parameter with valueName 'topic' (our topic key) is "
                                                       "required"))
    groups = [g.strip() for g in (info.parameter("groups") or "").replace("，", ",").split(",") if g.strip()]
    level = info.parameter("level")
    return {"topic": topic or "", "headline": info.headline or info.event, "body": info.description or "",
            "instruction": info.instruction or "", "severity": severity, "urgency": URGENCY_FROM_CAP[info.urgency],
            "level": Level(level.lower()) if level and level.lower() in tuple(Level) else level,
            "msg_type": MSG_TYPE_FROM_CAP.get(doc.msg_type, MsgType.ALERT), "regions": _regions(info, path, errors),
            "groups": groups, "expires_at": info.expires, "public": doc.scope is CapScope.PUBLIC
            and doc.status is CapStatus.ACTUAL, "idempotency_key": cap_key(doc.sender, doc.identifier)}


def _alert_in(body: dict[str, Any], path: str) -> AlertIn:
    try:
        return AlertIn.model_validate(body)
    except ValidationError as exc:
        raise CapInvalid("the CAP alert does not make a valid alert", [
            FieldError(f"{path}.{_SOURCE.get(str(err['loc'][0]), str(err['loc'][0]))}" if err["loc"] else path,
                       err["msg"]) for err in exc.errors()]) from None


def import_cap(doc: CapAlert, resolved: Mapping[tuple[str, str], str] | None = None) -> CapImport:
    """The alert to publish, its English texts and its origin; CapInvalid (422) lists every problem at once.

    `resolved`: our alert id for each (sender, identifier) in `doc.reference_keys()` that the store knows."""
    errors = _envelope_errors(doc)
    index, en = _blocks(doc, errors)
    if index < 0:
        raise CapInvalid("the CAP alert cannot be published", errors)
    info, path = doc.infos[index], f"alert.info[{index}]"
    body = _body(doc, info, path, errors)
    body["references"] = _reference(doc, resolved or {}, errors)
    if errors:
        raise CapInvalid("the CAP alert cannot be published", errors)
    origin = CapOrigin(sender=doc.sender, identifier=doc.identifier, sent=doc.sent, status=doc.status,
                       event=info.event, categories=info.categories, certainty=info.certainty,
                       event_en=en.event if en else None)
    texts = CapTexts(en.headline or en.event, en.description or "", en.instruction or "") if en else None
    return CapImport(alert=_alert_in(body, path), en=texts, origin=origin, exercise=doc.status in _EXERCISES)
