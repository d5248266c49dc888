"""Settings: one TOML file overlaid with `NOTIFIER_<SECTION>__<KEY>` environment variables, parsed once by
`load_settings(path, environ)` and passed down explicitly. Nothing reads the environment at import time."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from notifier.cap.ids import CapSettings
from notifier.config_errors import (
    NO_FILE,
    NOT_A_SECTION,
    NOT_UTF8,
    TOML_SYNTAX,
    UNREADABLE_FILE,
    ConfigError,
    describe,
    said,
)
from notifier.keyring import KEY_ID, KEY_ID_RULE, Keyring
from notifier.models import Severity

ENV_PREFIX = "NOTIFIER_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = None  # base of every link put in a message; default http://host:port
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Signs manage/unsubscribe tokens; generated and stored in the database when not set. Rotation: secret_id is
    # written into new links, previous_secrets ({id = secret}) still verify old ones (notifier/keyring.py).
    secret: SecretStr | None = None
    # Reverse proxies (addresses or networks) whose X-Forwarded-For is believed (notifier.web.clients).
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    secret_id: str | None = Field(default=None, pattern=KEY_ID.pattern)
    previous_secrets: dict[str, SecretStr] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _key_ids(self) -> ServerSettings:
        for key_id in self.previous_secrets:
            if not KEY_ID.match(key_id):
                raise ValueError(f"previous_secrets: {KEY_ID_RULE}")
        if self.secret_id is not None and self.secret is None:
            raise ValueError("secret_id names the key of `secret`, which is not set")
        if self.secret_id is not None and self.secret_id in self.previous_secrets:
            raise ValueError("secret_id must differ from every id in previous_secrets")
        return self

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def keyring(self, generated: str | None = None) -> Keyring:
        """The configured keys (`generated`: the database's own secret, used when none is configured)."""
        previous = {key_id: value.get_secret_value() for key_id, value in self.previous_secrets.items()}
        signing = self.secret.get_secret_value() if self.secret is not None else generated
        if not signing:
            raise ValueError("no server secret")
        return Keyring(signing, self.secret_id, previous)


class DatabaseSettings(_Section):
    url: str = "sqlite:///notifier.db"
    # A publish to at least this many people answers once its target set is stored; its delivery rows follow, a
    # slice a transaction (`store/fan_out_later.py`). Below it they are stored with the alert — one commit less
    # before a red warning's first send —, and the answer is quick anyway (PostgreSQL, 50,000 people: ~0.5 s).
    deliveries_after_answer_from: int = Field(default=50_000, ge=1)
    # How many people's delivery rows one of those transactions adds; unset: the database's own (SQLite 2,000, its
    # single writer held ~11 ms; PostgreSQL 100,000, where nobody waits for it: `Dialect.fan_out_slice`).
    fan_out_slice: int | None = Field(default=None, ge=1)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not (value.startswith("sqlite:///") or value.startswith(("postgresql://", "postgres://"))):
            raise ValueError("database url must be sqlite:///path or postgresql://…")
        return value


class WorkerSettings(_Section):
    enabled: bool = True
    claim_batch: int = Field(default=500, ge=1, le=10_000)  # per claim; rounded up to whole batch requests
    concurrency: int = Field(default=200, ge=1)  # recipients in flight per process (also the connection pool)
    lease_seconds: float = Field(default=120.0, gt=0)  # a claim not finished by then is reclaimed
    poll_interval: float = Field(default=0.5, gt=0)
    max_attempts: int = Field(default=10, ge=1)
    max_retry_seconds: float = Field(default=6 * 3600, gt=0)  # stop retrying a delivery this long after publish
    backoff_initial: float = Field(default=1.0, gt=0)
    backoff_max: float = Field(default=600.0, gt=0)
    # Share of every provider's rate that routine sends leave free for life-safety alerts (extreme or red).
    life_safety_share: float = Field(default=0.2, ge=0, lt=1)
    # Delivery reports that matched no delivery (early ones wait for their send to be recorded) are deleted after
    # this many days: some name a number (as a keyed digest), and one that never matched never will.
    early_receipts_days: float = Field(default=7.0, gt=0)


class CatalogueSettings(_Section):
    path: Path | None = None  # another city's catalogue (TOML); default: the bundled Changzhi catalogue


class TemplatesSettings(_Section):
    path: Path | None = None  # default: the project's templates/ folder


class AuthSettings(_Section):
    # Keys may be created with the CLI (`notifier keys create`); none are needed in the config file.
    viewer_min_cell: int = Field(default=5, ge=1)  # small-cell suppression threshold for viewers


class VerificationSettings(_Section):
    """`[verification]`: codes and links sent to prove a contact (sign-up, resend, /manage). The per-client and
    per-number limits are fixed by SPEC (`notifier.limits`); this caps the whole service."""

    hourly_cap: int = Field(default=1000, ge=1)  # codes and links the whole service sends in any hour


class ApprovalSettings(_Section):
    """`[approval]`: which alerts wait for a second key of the same department, or an admin, before anything is
    sent (SPEC "Departments and approval"). Each key given narrows the rule; an alert matching all of them is held.
    With none of `severities`, `min_regions`, `topics` given, nothing is held. The rule itself is
    `notifier.approval.holds`."""

    severities: list[Severity] = Field(default_factory=list)
    min_regions: int | None = Field(default=None, ge=1)  # targeting at least this many regions (none given: all)
    topics: list[str] = Field(default_factory=list)  # topic patterns, as publisher keys take them (`env.*`)
    timeout: float = Field(default=3600.0, gt=0)  # seconds; undecided by then → rejected, reason `timeout`

    @field_validator("topics")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        from notifier.keys import NOT_A_PATTERN, PATTERN  # the keys' own pattern syntax (imported late: no cycle)

        bad = [p for p in value if not PATTERN.fullmatch(p)]
        if bad:
            raise ValueError("; ".join(NOT_A_PATTERN.format(pattern=p) for p in bad))
        return value

    def active(self) -> bool:
        return bool(self.severities or self.min_regions or self.topics)
class DepartmentContacts(_Section):
    """`[departments."<name>"]`: where a department hears that a scheduled disclosure of its topics is overdue."""

    email: list[str] = Field(default_factory=list, description="addresses, e.g. [\"gongkai@hbj.changzhi.gov.cn\"]")
    webhook: str | None = Field(default=None, description="an https endpoint, signed like subscriber webhooks")
    webhook_secret: SecretStr | None = Field(default=None, description="whsec_… (required with webhook)")

    @field_validator("email", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("email")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address.strip("@") or any(c.isspace() for c in address):
                raise ValueError("each email is an address such as gongkai@hbj.changzhi.gov.cn")
        return value

    @model_validator(mode="after")
    def _signed(self) -> DepartmentContacts:
        if self.webhook is not None and self.webhook_secret is None:
            raise ValueError("webhook_secret (whsec_…) is required with webhook: receivers verify the signature")
        if self.webhook is not None and not self.webhook.startswith(("https://", "http://")):
            raise ValueError("webhook must be an http(s) URL")
        return self


class Settings(_Section):
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    worker: WorkerSettings = WorkerSettings()
    catalogue: CatalogueSettings = CatalogueSettings()
    templates: TemplatesSettings = TemplatesSettings()
    auth: AuthSettings = AuthSettings()
    approval: ApprovalSettings = ApprovalSettings()
    verification: VerificationSettings = VerificationSettings()
    # Raw per-kind sections; each adapter validates its own with its pydantic model.
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)
    cap: CapSettings = CapSettings()  # CAP 1.2: sender and GB/T 35965.1 unit code of our alerts
    departments: dict[str, DepartmentContacts] = Field(default_factory=dict)  # overdue-disclosure contacts

    def sqlite_path(self) -> Path | None:
        """The SQLite file of a sqlite:/// url (relative paths are relative to the working directory)."""
        url = self.database.url
        if not url.startswith("sqlite:///"):
            return None
        return Path(url.removeprefix("sqlite:///"))


def _parse_env_value(raw: str) -> Any:
    """Environment values stay strings (pydantic converts "8080" or "true" where a field wants a number or a
    flag, and a password of digits stays text); only JSON arrays and tables are parsed, for list settings."""
    if raw.strip().startswith(("[", "{")):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _overlay_environment(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        parts = [p.lower() for p in name.removeprefix(ENV_PREFIX).split("__")]
        node = data
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(said(NOT_A_SECTION, name=name, part=repr(part)))
            node = child
        node[parts[-1]] = _parse_env_value(raw)


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Settings:
    """Read the TOML file (if any), overlay NOTIFIER_* variables, then `overrides` (a nested dict), validate.

    ConfigError (a ValueError) says in one line what is wrong: the file, its TOML, or a section's key."""
    data = _read_file(Path(path)) if path is not None else {}
    _overlay_environment(data, os.environ if environ is None else environ)
    if overrides:
        _deep_merge(data, overrides)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise describe(exc, Settings) from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(said(NO_FILE, path=path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(said(TOML_SYNTAX, path=path, reason=str(exc))) from None
    except UnicodeDecodeError:
        raise ConfigError(said(TOML_SYNTAX, path=path, reason=said(NOT_UTF8))) from None
    except OSError as exc:
        raise ConfigError(said(UNREADABLE_FILE, path=path, reason=exc.strerror or str(exc))) from None


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value
