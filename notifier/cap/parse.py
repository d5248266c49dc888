"""Reading a CAP 1.2 document (`application/cap+xml`) into `CapAlert`, safely and strictly.

Safety: defusedxml with every defence on. Any DTD (so no internal entity, no billion laughs, no external DTD or
entity) is refused before anything is expanded or fetched → `CapNotWellFormed` (400), as is XML that does not
parse. XInclude is never processed: an `xi:include` is an element CAP does not know → 422. Documents are limited to
MAX_DOCUMENT_BYTES (413). Encodings: whatever expat reads (UTF-8, UTF-16, ISO-8859-1, US-ASCII); a GBK document is
refused as not well-formed.

Strictness mirrors the OASIS schema: the root is `alert` in the CAP 1.2 namespace; every element is one CAP knows
at that place (a `ds:Signature` is allowed at the end of `alert`, and ignored); required elements are present,
single ones appear once; enumerated values match exactly; times have seconds and an offset. Every problem found is
reported at once, as field errors naming the element (`alert.info[0].area[1].geocode[0].value`) → `CapInvalid`
(422). Whether the alert is one we publish (status, msgType, languages, geocodes, topic) is `notifier.cap.imports`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # types and ParseError only: parsing goes through defusedxml
from collections.abc import Mapping
from datetime import datetime

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException, DTDForbidden

from notifier.cap.model import (
    CAP_NS,
    CATEGORIES,
    CERTAINTIES,
    MAX_DOCUMENT_BYTES,
    SEVERITIES,
    URGENCIES,
    XMLDSIG_NS,
    CapAlert,
    CapArea,
    CapGeocode,
    CapInfo,
    CapInvalid,
    CapMsgType,
    CapNotWellFormed,
    CapReference,
    CapScope,
    CapStatus,
    CapTooLarge,
    parse_cap_time,
)
from notifier.errors import FieldError

# element name → (required, repeatable), in the schema's order
_ALERT = {"identifier": (True, False), "sender": (True, False), "sent": (True, False), "status": (True, False),
          "msgType": (True, False), "source": (False, False), "scope": (True, False),
          "restriction": (False, False), "addresses": (False, False), "code": (False, True), "note": (False, False),
          "references": (False, False), "incidents": (False, False), "info": (False, True)}
_INFO = {"language": (False, False), "category": (True, True), "event": (True, False),
         "responseType": (False, True), "urgency": (True, False), "severity": (True, False),
         "certainty": (True, False), "audience": (False, False), "eventCode": (False, True),
         "effective": (False, False), "onset": (False, False), "expires": (False, False),
         "senderName": (False, False), "headline": (False, False), "description": (False, False),
         "instruction": (False, False), "web": (False, False), "contact": (False, False),
         "parameter": (False, True), "resource": (False, True), "area": (False, True)}
_AREA = {"areaDesc": (True, False), "polygon": (False, True), "circle": (False, True), "geocode": (False, True),
         "altitude": (False, False), "ceiling": (False, False)}
_PAIR = {"valueName": (True, False), "value": (True, False)}
_RESOURCE = {"resourceDesc": (True, False), "mimeType": (True, False), "size": (False, False),
             "uri": (False, False), "derefUri": (False, False), "digest": (False, False)}
_RESPONSE_TYPES = ("Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None")
_FORBIDDEN_IN_IDS = (",", "<", "&")

Found = dict[str, list[ET.Element]]


def _name(tag: str) -> tuple[str, str]:
    namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return namespace, local


class _Reader:
    """Walks the tree against the schema's shapes, collecting every problem as a field error."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def children(self, element: ET.Element, shape: Mapping[str, tuple[bool, bool]], path: str,
                 ignore_namespace: str | None = None) -> Found:
        found: Found = {}
        for child in element:
            namespace, local = _name(child.tag)
            if namespace == CAP_NS and local in shape:
                found.setdefault(local, []).append(child)
            elif ignore_namespace is None or namespace != ignore_namespace:
                shown = local if namespace == CAP_NS else child.tag
                self.error(path, f"unexpected element {shown!r}")
        for local, (required, repeatable) in shape.items():
            count = len(found.get(local, []))
            if required and count == 0:
                self.error(f"{path}.{local}", "is required")
            elif count > 1 and not repeatable:
                self.error(f"{path}.{local}", "appears more than once")
        return found

    def _text_of(self, element: ET.Element, path: str) -> str | None:
        if len(element):
            self.error(path, "must hold text, not elements")
            return None
        return (element.text or "").strip()

    def text(self, found: Found, local: str, path: str) -> str | None:
        items = found.get(local)
        return self._text_of(items[0], f"{path}.{local}") if items else None

    def texts(self, found: Found, local: str, path: str) -> list[str]:
        out = []
        for index, element in enumerate(found.get(local, [])):
            value = self._text_of(element, f"{path}.{local}[{index}]")
            if value is not None:
                out.append(value)
        return out

    def choice(self, found: Found, local: str, path: str, allowed: tuple[str, ...]) -> str | None:
        value = self.text(found, local, path)
        if value is not None and value not in allowed:
            self.error(f"{path}.{local}", f"{value!r} is not one of {', '.join(allowed)}")
            return None
        return value

    def time(self, found: Found, local: str, path: str) -> datetime | None:
        value = self.text(found, local, path)
        if value is None:
            return None
        try:
            return parse_cap_time(value)
        except ValueError as exc:
            self.error(f"{path}.{local}", str(exc))
            return None

    def token(self, found: Found, local: str, path: str) -> str:
        """identifier / sender: CAP forbids spaces, commas and the XML-restricted `<` and `&`."""
        value = self.text(found, local, path) or ""
        if value and (any(c.isspace() for c in value) or any(c in value for c in _FORBIDDEN_IN_IDS)):
            self.error(f"{path}.{local}", "must not contain spaces, commas, '<' or '&'")
        elif not value and local in found:
            self.error(f"{path}.{local}", "is empty")
        return value

    def pairs(self, found: Found, local: str, path: str) -> list[tuple[str, str]]:
        out = []
        for index, element in enumerate(found.get(local, [])):
            where = f"{path}.{local}[{index}]"
            inner = self.children(element, _PAIR, where)
            name, value = self.text(inner, "valueName", where), self.text(inner, "value", where)
            if name is not None and value is not None:
                out.append((name, value))
        return out


def _references(reader: _Reader, text: str | None) -> tuple[CapReference, ...]:
    out = []
    for index, triple in enumerate((text or "").split()):
        parts = triple.split(",")
        where = f"alert.references[{index}]"
        if len(parts) != 3 or not all(parts):
            reader.error(where, f"{triple!r} is not sender,identifier,sent")
            continue
        try:
            out.append(CapReference(parts[0], parts[1], parse_cap_time(parts[2])))
        except ValueError as exc:
            reader.error(where, str(exc))
    return tuple(out)


def _area(reader: _Reader, element: ET.Element, path: str) -> CapArea:
    found = reader.children(element, _AREA, path)
    geocodes = tuple(CapGeocode(name, value) for name, value in reader.pairs(found, "geocode", path))
    return CapArea(description=reader.text(found, "areaDesc", path) or "", geocodes=geocodes,
                   polygons=tuple(reader.texts(found, "polygon", path)),
                   circles=tuple(reader.texts(found, "circle", path)))


def _info(reader: _Reader, element: ET.Element, path: str) -> CapInfo:
    found = reader.children(element, _INFO, path)
    categories = reader.texts(found, "category", path)
    for index, category in enumerate(categories):
        if category not in CATEGORIES:
            reader.error(f"{path}.category[{index}]", f"{category!r} is not one of {', '.join(CATEGORIES)}")
    for index, response in enumerate(reader.texts(found, "responseType", path)):
        if response not in _RESPONSE_TYPES:
            reader.error(f"{path}.responseType[{index}]", f"{response!r} is not one of {', '.join(_RESPONSE_TYPES)}")
    reader.pairs(found, "eventCode", path)
    for index, resource in enumerate(found.get("resource", [])):
        reader.children(resource, _RESOURCE, f"{path}.resource[{index}]")
    for local in ("effective", "onset"):
        reader.time(found, local, path)
    return CapInfo(
        language=reader.text(found, "language", path) or "en-US", categories=tuple(categories),
        event=reader.text(found, "event", path) or "", urgency=reader.choice(found, "urgency", path, URGENCIES) or "",
        severity=reader.choice(found, "severity", path, SEVERITIES) or "",
        certainty=reader.choice(found, "certainty", path, CERTAINTIES) or "",
        headline=reader.text(found, "headline", path), description=reader.text(found, "description", path),
        instruction=reader.text(found, "instruction", path), expires=reader.time(found, "expires", path),
        sender_name=reader.text(found, "senderName", path), web=reader.text(found, "web", path),
        parameters=tuple(reader.pairs(found, "parameter", path)),
        areas=tuple(_area(reader, area, f"{path}.area[{index}]") for index, area in enumerate(found.get("area", []))))


def _root(data: bytes) -> ET.Element:
    if len(data) > MAX_DOCUMENT_BYTES:
        raise CapTooLarge(f"a CAP document may be at most {MAX_DOCUMENT_BYTES} bytes")
    try:
        root: ET.Element = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DTDForbidden:
        raise CapNotWellFormed("a DTD (<!DOCTYPE …>) is not allowed in a CAP document") from None
    except DefusedXmlException as exc:
        raise CapNotWellFormed(f"forbidden XML construct: {type(exc).__name__}") from None
    except ET.ParseError as exc:
        raise CapNotWellFormed(f"not well-formed XML: {exc}") from None
    except ValueError as exc:  # expat: "multi-byte encodings are not supported" (GBK, GB2312 …)
        raise CapNotWellFormed(f"not well-formed XML: {exc}; send UTF-8") from None
    if root.tag != f"{{{CAP_NS}}}alert":
        namespace, local = _name(root.tag)
        raise CapInvalid("not a CAP 1.2 alert", [FieldError(
            "alert", f"the root element is {local!r} in {namespace or 'no namespace'!r}; expected 'alert' in "
                     f"{CAP_NS!r}")])
    return root


def parse_cap(data: bytes) -> CapAlert:
    """The document as a `CapAlert`, or CapNotWellFormed (400) / CapTooLarge (413) / CapInvalid (422)."""
    root = _root(data)
    reader = _Reader()
    found = reader.children(root, _ALERT, "alert", ignore_namespace=XMLDSIG_NS)
    identifier, sender = reader.token(found, "identifier", "alert"), reader.token(found, "sender", "alert")
    sent = reader.time(found, "sent", "alert")
    status = reader.choice(found, "status", "alert", tuple(CapStatus))
    msg_type = reader.choice(found, "msgType", "alert", tuple(CapMsgType))
    scope = reader.choice(found, "scope", "alert", tuple(CapScope))
    references = _references(reader, reader.text(found, "references", "alert"))
    infos = tuple(_info(reader, info, f"alert.info[{index}]") for index, info in enumerate(found.get("info", [])))
    if reader.errors or sent is None or status is None or msg_type is None or scope is None:
        raise CapInvalid("the document is not valid CAP 1.2", reader.errors)
    return CapAlert(identifier=identifier, sender=sender, sent=sent, status=CapStatus(status),
                    msg_type=CapMsgType(msg_type), scope=CapScope(scope), references=references, infos=infos,
                    restriction=reader.text(found, "restriction", "alert"), note=reader.text(found, "note", "alert"))
