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

# The words of the messages, in one place (they move to the gettext catalogue later).
UNKNOWN_KEY = "[{section}] {key}: unknown key; allowed: {allowed}{hint}"
UNKNOWN_SECTION = "[{key}]: unknown section; allowed: {allowed}{hint}"
UNKNOWN_CHANNEL = "[channels.{kind}]: unknown channel; allowed: {allowed}{hint}"
MISSING = "[{section}] {keys}: required, not set"
NOT_ALLOWED = "[{section}] {key}: {value} is not allowed; use {expected}"
OTHER = "[{section}] {key}: {message}"
SECTION_PROBLEM = "[{section}]: {message}"
DID_YOU_MEAN = " (did you mean {0}?)"
NOT_A_SECTION = "{name}: {part!r} is not a section"
UNREADABLE_FILE = "{path}: {reason}"
NO_FILE = "{path}: no such configuration file"
TOML_SYNTAX = "{path} is not valid TOML: {reason}"


class ConfigError(ValueError):
    """The configuration cannot be used; the message is one line that says what to change."""


def suggestion(word: str, known: Iterable[str]) -> str:
    """` (did you mean port?)` for a word close to a known one, else ""."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return DID_YOU_MEAN.format(close[0]) if close else ""


def describe(exc: ValidationError, model: type[BaseModel] | None, section: str | None = None) -> ConfigError:
    """One line for every problem pydantic found in `model`'s data (`section` names where that data sits in
    the file; None for the whole file, whose first level is its sections)."""
    errors = exc.errors(include_url=False)
    missing: dict[str, list[str]] = {}  # section → keys not set, said once per section
    lines = []
    for error in errors:
        loc = [str(part) for part in error["loc"]]
        if error["type"] == "missing" and (section is not None or len(loc) > 1):
            missing.setdefault(_where(section, loc), []).append(loc[-1])
        else:
            lines.append(_one(error, model, section))
    lines += [MISSING.format(section=where, keys=", ".join(keys)) for where, keys in missing.items()]
    return ConfigError("; ".join(dict.fromkeys(lines)))


def _where(section: str | None, loc: list[str]) -> str:
    return ".".join(part for part in ([section] if section else []) + loc[:-1]) or "?"


def _one(error: ErrorDetails, model: type[BaseModel] | None, section: str | None) -> str:
    loc = [str(part) for part in error["loc"]]
    if section is None and len(loc) == 1:  # a whole section of the file is wrong
        if error["type"] == "extra_forbidden":
            fields = _fields(model)
            return UNKNOWN_SECTION.format(key=loc[0], allowed=", ".join(fields), hint=suggestion(loc[0], fields))
        return SECTION_PROBLEM.format(section=loc[0], message=_message(error))
    where = _where(section, loc)
    key = loc[-1] if loc else "?"
    kind = error["type"]
    if kind == "extra_forbidden":
        fields = _fields(_model_at(model, loc[:-1]))
        return UNKNOWN_KEY.format(section=where, key=key, allowed=", ".join(fields) or "none",
                                  hint=suggestion(key, fields))
    if kind in ("literal_error", "enum"):
        expected = str(error.get("ctx", {}).get("expected", ""))
        return NOT_ALLOWED.format(section=where, key=key, value=_shown(error["input"]), expected=expected)
    return OTHER.format(section=where, key=key, message=_message(error))


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
    return ConfigError(message if message.startswith("[") else SECTION_PROBLEM.format(section=section,
                                                                                       message=message))


def unknown_channel(kind: str, known: Iterable[str]) -> ConfigError:
    names = sorted(known)
    return ConfigError(UNKNOWN_CHANNEL.format(kind=kind, allowed=", ".join(names), hint=suggestion(kind, names)))


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
