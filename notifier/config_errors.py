"""Configuration problems said in one line: which section, which key, what is allowed (with the nearest known key
for a typo), never a pydantic dump and never a secret's value.

Used for the settings file itself (`load_settings`) and for each `[channels.<kind>]` section, which the channel's
own adapter validates when the service opens (`channel_error`).
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from notifier.i18n import N_, Said

# The words of the messages: msgids of the one catalogue (notifier.i18n), said in the reader's language.
UNKNOWN_KEY = N_("[%(section)s] %(key)s: unknown key; allowed: %(allowed)s%(hint)s")
UNKNOWN_SECTION = N_("[%(key)s]: unknown section; allowed: %(allowed)s%(hint)s")
UNKNOWN_CHANNEL = N_("[channels.%(kind)s]: unknown channel; allowed: %(allowed)s%(hint)s")
MISSING = N_("[%(section)s] %(keys)s: required, not set")
NOT_ALLOWED = N_("[%(section)s] %(key)s: %(value)s is not allowed; use %(expected)s")
OTHER = N_("[%(section)s] %(key)s: %(message)s")
SECTION_PROBLEM = N_("[%(section)s]: %(message)s")
DID_YOU_MEAN = N_(" (did you mean %(name)s?)")
NOT_A_SECTION = N_("%(name)s: %(part)s is not a section")
UNREADABLE_FILE = N_("%(path)s: %(reason)s")
NO_FILE = N_("%(path)s: no such configuration file")
TOML_SYNTAX = N_("%(path)s is not valid TOML: %(reason)s")
NOT_UTF8 = N_("it is not UTF-8 text")
NO_KEYS = N_("none")
QUOTED = "%(message)s"  # a message from elsewhere (a channel adapter's own words), said as it is


class ConfigError(ValueError):
    """The configuration cannot be used; its lines say what to change in the reader's language (`in_lang`), and
    `str()` joins them into one English line."""

    def __init__(self, *lines: Said) -> None:
        super().__init__("; ".join(map(str, lines)))
        self.lines = lines

    def in_lang(self, lang: str) -> str:
        return "; ".join(dict.fromkeys(line.in_lang(lang) for line in self.lines))


def said(msgid: str, /, **values: object) -> Said:
    return Said(msgid, values)


def suggestion(word: str, known: Iterable[str]) -> Said | str:
    """` (did you mean port?)` for a word close to a known one, else ""."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return said(DID_YOU_MEAN, name=close[0]) if close else ""


def describe(exc: ValidationError, model: type[BaseModel] | None, section: str | None = None) -> ConfigError:
    """One line for every problem pydantic found in `model`'s data (`section` names where that data sits in
    the file; None for the whole file, whose first level is its sections)."""
    errors = exc.errors(include_url=False)
    missing: dict[str, list[str]] = {}  # section → keys not set, said once per section
    lines: list[Said] = []
    for error in errors:
        loc = [str(part) for part in error["loc"]]
        if error["type"] == "missing" and (section is not None or len(loc) > 1):
            missing.setdefault(_where(section, loc), []).append(loc[-1])
        else:
            lines.append(_one(error, model, section))
    lines += [said(MISSING, section=where, keys=", ".join(keys)) for where, keys in missing.items()]
    return ConfigError(*{str(line): line for line in lines}.values())  # each problem said once


def _where(section: str | None, loc: list[str]) -> str:
    return ".".join(part for part in ([section] if section else []) + loc[:-1]) or "?"


def _one(error: ErrorDetails, model: type[BaseModel] | None, section: str | None) -> Said:
    loc = [str(part) for part in error["loc"]]
    if section is None and len(loc) == 1:  # a whole section of the file is wrong
        if error["type"] == "extra_forbidden":
            fields = _fields(model)
            return said(UNKNOWN_SECTION, key=loc[0], allowed=", ".join(fields), hint=suggestion(loc[0], fields))
        return said(SECTION_PROBLEM, section=loc[0], message=_message(error))
    where = _where(section, loc)
    key = loc[-1] if loc else "?"
    kind = error["type"]
    if kind == "extra_forbidden":
        fields = _fields(_model_at(model, loc[:-1]))
        return said(UNKNOWN_KEY, section=where, key=key, allowed=", ".join(fields) or said(NO_KEYS),
                    hint=suggestion(key, fields))
    if kind in ("literal_error", "enum"):
        expected = str(error.get("ctx", {}).get("expected", ""))
        return said(NOT_ALLOWED, section=where, key=key, value=_shown(error["input"]), expected=expected)
    return said(OTHER, section=where, key=key, message=_message(error))


def _message(error: ErrorDetails) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    return message.replace("Input should be", "should be", 1)


def _shown(value: Any) -> str:
    # Only the values of closed choices (tls, provider) are shown: they are never secrets.
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "…'"


def _fields(model: type[BaseModel] | None) -> list[str]:
    return list(model.model_fields) if model is not None else []


def _model_at(model: type[BaseModel] | None, path: Sequence[str]) -> type[BaseModel] | None:
    """The sub-model that holds the keys at `path` (Settings → ServerSettings for ["server"])."""
    for part in path:
        if model is None or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return model


def channel_error(kind: str, factory_module: str | None, exc: Exception) -> ConfigError:
    """One line for a `[channels.<kind>]` section its adapter refused (pydantic errors, or the adapter's own
    ValueError, e.g. an unknown SMS provider)."""
    section = f"channels.{kind}"
    if isinstance(exc, ValidationError):
        return describe(exc, _adapter_model(exc.title, factory_module), section)
    message = " ".join(str(exc).split()) or type(exc).__name__
    return ConfigError(said(QUOTED, message=message) if message.startswith("[")
                       else said(SECTION_PROBLEM, section=section, message=message))


def unknown_channel(kind: str, known: Iterable[str]) -> ConfigError:
    names = sorted(known)
    return ConfigError(said(UNKNOWN_CHANNEL, kind=kind, allowed=", ".join(names), hint=suggestion(kind, names)))


def _adapter_model(name: str, factory_module: str | None) -> type[BaseModel] | None:
    """The pydantic model named in an adapter's ValidationError, found among the adapter's own modules (a
    channel with several providers keeps each provider's model in a submodule), to list its keys."""
    if not factory_module:
        return None
    for module_name, module in list(sys.modules.items()):
        if module_name == factory_module or module_name.startswith(factory_module + "."):
            candidate = getattr(module, name, None)
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                return candidate
    return None
