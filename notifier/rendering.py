"""Alerts rendered into channel messages: the one sandboxed Jinja2 environment over `templates/`.

Where a template is looked up (first existing file wins)::

    templates/<topic key>/<channel>.<locale>.j2          e.g. templates/env.heavy-pollution/sms.zh-CN.j2
    templates/_domain/<domain>/<channel>.<locale>.j2     e.g. templates/_domain/environment/sms.zh-CN.j2
    templates/_default/<channel>.<locale>.j2

and, when no level has a file for the requested locale, the same three levels again in zh-CN. A locale without a
gettext catalogue (`notifier.i18n.LANGS`) is rendered in zh-CN. The message is rendered in the locale of the file
that was found (variables such as `level_name` follow it), and `Message.locale` says which one that was. The words
lent to the variables (level, severity and urgency names, 全市, the date format…) are the shared terms of every
page (`notifier.terms`), so a message says 特别严重 exactly where the disclosure's page does.

Template files are made of named blocks, each rendered on its own (text outside blocks is ignored, so put any
`{% set %}` or `{% from … import %}` inside the block that needs it; `{% extends %}` is not used):

    channel   blocks                                   becomes
    sms       text                                     Message.text (the 【signature】 is added by the adapter)
    wechat    text, field_<name>…                      Message.text; Message.fields[<name>] for each field block,
                                                       in file order: headline, department, time, level, detail,
                                                       remark (the adapter maps names to the template's keywords)
    email     subject, text, html                      Message.subject (whitespace collapsed to one line),
                                                       Message.text, Message.html
    webhook   text                                     Message.text; Message.payload is built here, not templated
    voice     text, field_<name>…                      Message.text, the words read out (no link, no symbol, short:
                                                       the provider reads its template variables, 250 characters
                                                       at most); field blocks (headline, level, department, topic)
                                                       fill other template variables, written for the ear too

Autoescaping is off for the environment and on inside the html block: every expression printed in an email's
html block must sit inside `{% autoescape true %}…{% endautoescape %}` (and `{% include %}` is refused there,
because an included file would be compiled unescaped); a file that breaks this rule is refused when loaded.
An English message of an alert that came with English words (a CAP `info` block in en) uses them for the
headline, body and instruction (`in_language`); without them every locale reads the publisher's own words.
Publisher text (headline, body, instruction, data) is only ever passed as variables, never compiled, so
`{{ 7*7 }}` in a body is delivered as those seven characters, and `<script>` is literal in text and escaped in HTML.

Variables available to every block:

    alert            id, topic, msg_type, references, headline, body, instruction, severity, urgency, level,
                     regions, groups, data (dict; use alert.data.get("key") for optional keys), department,
                     created_at, expires_at (ISO strings)
    topic            key, name, name_en, domain, department, channels, schedule, method, supervision
    topic_name, domain_name, department      localised names (English where the catalogue has one)
    level_name       e.g. 橙色预警 / "Orange warning" ("" without a level); level_colour: 橙色 / "Orange"
    severity_name, urgency_name
    msg_type_name    发布/更新/撤销, or 解除 for a cancelled warning (one with a level); issued/updated/withdrawn/lifted
    region_names, group_names                lists of localised names of the targeted regions and groups
    regions_text     names joined, or 全市 / "citywide" when the alert targets every region
    groups_text      names joined, or "" when the alert targets everyone
    url              f"{public_url}/disclosures/{alert.id}", the disclosure's public page
    unsubscribe_hint the channel's one-step unsubscribe wording for the locale (SMS: 退订回TD，管理订阅请访问…/manage)
    manage_url, unsubscribe_url   email only ("" elsewhere): placeholders the adapter replaces with the recipient's
                     own signed links (channels.links); print each on a line of its own
    supervision      the topic's complaint/supervision channel ("" if none)
    sent_at_local, expires_at_local          Asia/Shanghai, formatted for the locale ("" when absent)
    locale, channel
Filters beyond Jinja's own: `sentence` (ends text with 。 or . unless it already ends in punctuation),
`paragraphs` (escapes text and wraps it in <p>, for html blocks) and `spoken(locale)` (text for the ear: links
dropped, symbols silenced, PM2.5 → 细颗粒物, numbers in words; channels.voice.speech).
"""

from __future__ import annotations

import json
import re
import sysconfig
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateError, TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape

from channels.base import Message
from channels.links import MANAGE_URL, UNSUBSCRIBE_URL
from channels.voice.speech import spoken
from notifier.catalogue import Catalogue, load_catalogue
from notifier.i18n import LANGS, NP_, translator
from notifier.localtime import LOCAL_TZ as LOCAL_TZ
from notifier.models import Alert, AlertStatus, MsgType, Policy, Topic, TopicIn
from notifier.terms import Terms
from subscriptions.models import CHANNEL_KINDS

CHANNELS = CHANNEL_KINDS
FALLBACK_LOCALE = "zh-CN"
FIELD_PREFIX = "field_"
REQUIRED_BLOCKS: Mapping[str, tuple[str, ...]] = {"email": ("subject", "text", "html")}
LINKED_TEXT_CHANNELS = ("email",)  # channels whose text carries the recipient's manage/unsubscribe links
SMS_SINGLE = 70  # characters in a one-part SMS (UCS-2, as Chinese providers count every message)
SMS_PART = 67  # characters per part once split: 3 go to the concatenation header
LOCALE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_SENTENCE_END = "。！？；…!?.;"



class RenderError(Exception):
    """A template could not be found, loaded or rendered; carries where it happened."""

    def __init__(self, message: str, *, topic: str, channel: str, locale: str, template: str | None = None):
        super().__init__(message)
        self.topic = topic
        self.channel = channel
        self.locale = locale
        self.template = template


# One-step unsubscribe wording per channel (messages only); the SMS uplink endpoint treats a TD reply as
# unsubscribe. SMS carries no per-recipient link, so it names the page where anyone gets back to their subscription
# with their number (`%(manage)s`: <public_url>/manage, SPEC "Citizens without a link"). A webhook's reader is a
# machine: no hint.
UNSUBSCRIBE_HINTS: Mapping[str, tuple[str, str]] = {
    "sms": NP_("unsubscribe hint", "Reply TD to unsubscribe; manage: %(manage)s"),
    "wechat": NP_("unsubscribe hint", "Reply TD to stop these messages"),
    "email": NP_("unsubscribe hint", "If you no longer wish to receive these messages, use the unsubscribe link "
                                     "in this email."),
}


def default_templates_dir() -> Path:
    """The project's `templates/` folder: beside the `notifier` package in a source checkout (editable install),
    else where a wheel installs it (<prefix>/share/notifier/templates)."""
    beside = Path(__file__).resolve().parent.parent / "templates"
    if beside.is_dir():
        return beside
    return Path(sysconfig.get_path("data")) / "share" / "notifier" / "templates"


def _sentence(value: object) -> str:
    """End a phrase with a full stop in its own script, unless it already ends with punctuation."""
    text = str(value).strip()
    if not text or text[-1] in _SENTENCE_END:
        return text
    return text + ("。" if ord(text[-1]) > 0x2E7F else ".")


def _paragraphs(value: object) -> Markup:
    """Escaped text as HTML paragraphs: blank lines part paragraphs, single newlines become <br>."""
    parts = [p for p in re.split(r"\n\s*\n", str(value).strip()) if p.strip()]
    html = [Markup("<p>{}</p>").format(Markup("<br>\n").join(escape(line) for line in p.splitlines()))
            for p in parts]
    return Markup("\n").join(html)


def _escapes_html(node: nodes.Node, escaped: bool = False) -> bool:
    """True when every expression printed under `node` is autoescaped (see the module docstring)."""
    if isinstance(node, nodes.Include):
        return False
    if isinstance(node, nodes.ScopedEvalContextModifier):
        for option in node.options:
            if option.key == "autoescape":
                escaped = isinstance(option.value, nodes.Const) and option.value.value is True
    if isinstance(node, nodes.Output) and not escaped:
        if any(not isinstance(child, nodes.TemplateData) for child in node.nodes):
            return False
    return all(_escapes_html(child, escaped) for child in node.iter_child_nodes())


def _template_locale(name: str) -> str:
    """`env.heavy-pollution/sms.zh-CN.j2` → `zh-CN`."""
    return name.rsplit("/", 1)[-1].removesuffix(".j2").split(".", 1)[1]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def published_at(alert: Alert) -> datetime:
    """When the alert goes out: its scheduled time when later than its creation, else its creation."""
    created = _aware(alert.created_at)
    if alert.scheduled_at is not None and _aware(alert.scheduled_at) > created:
        return _aware(alert.scheduled_at)
    return created


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else _aware(moment).astimezone(LOCAL_TZ).isoformat()


class Renderer:
    """Renders an alert for one channel and locale; compiled templates are cached for the process's life."""

    def __init__(self, templates_dir: Path | None = None, *, public_url: str,
                 catalogue: Catalogue | None = None) -> None:
        self.templates_dir = Path(templates_dir) if templates_dir is not None else default_templates_dir()
        if not self.templates_dir.is_dir():
            raise ValueError(f"templates folder {self.templates_dir} does not exist")
        self.public_url = public_url.rstrip("/")
        self.catalogue = catalogue if catalogue is not None else load_catalogue()
        self._loader = FileSystemLoader(self.templates_dir)
        self.env = ImmutableSandboxedEnvironment(
            loader=self._loader,
            undefined=StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,  # templates do not change under a running service: no stat on every render
        )
        self.env.filters["sentence"] = _sentence
        self.env.filters["paragraphs"] = _paragraphs
        self.env.filters["spoken"] = spoken
        self._templates: dict[tuple[str, str, str, str], Template] = {}

    @property
    def locales(self) -> tuple[str, ...]:
        """Locales with a catalogue, hence renderable in their own language."""
        return LANGS

    def candidates(self, topic: Topic | TopicIn, channel: str, locale: str) -> list[str]:
        """Template names tried for this topic, channel and locale, in order."""
        locales = [self._locale(locale)]
        if locales[0] != FALLBACK_LOCALE:
            locales.append(FALLBACK_LOCALE)
        if not NAME_RE.match(channel):
            raise ValueError(f"channel {channel!r} is not a channel kind")
        folders = [topic.key]
        if NAME_RE.match(topic.domain):  # a domain that is not a folder name cannot have templates
            folders.append(f"_domain/{topic.domain}")
        folders.append("_default")
        return [f"{folder}/{channel}.{loc}.j2" for loc in locales for folder in folders]

    def template_name(self, topic: Topic | TopicIn, channel: str, locale: str) -> str:
        """The file that renders this topic, channel and locale."""
        return self._template(topic, channel, locale).name or ""

    def render(self, alert: Alert, topic: Topic | TopicIn, channel: str, locale: str) -> Message:
        """Render `alert` for `channel` in `locale`; RenderError says which template failed and why."""
        template = self._template(topic, channel, locale)
        name = template.name or "?"
        used_locale = _template_locale(name)
        alert = in_language(alert, used_locale)
        variables = self._variables(alert, topic, channel, used_locale)

        def block(block_name: str) -> str:
            try:
                return "".join(template.blocks[block_name](template.new_context(variables))).strip()
            except Exception as exc:  # any failure inside a template (undefined, sandbox, type) is one error kind
                raise RenderError(f"{name}: block {block_name!r}: {type(exc).__name__}: {exc}",
                                  topic=topic.key, channel=channel, locale=locale, template=name) from exc

        subject = html = None
        if channel == "email":
            subject = " ".join(block("subject").split())  # one header line, whatever the publisher typed
            html = block("html")
        fields = {b.removeprefix(FIELD_PREFIX): block(b) for b in template.blocks if b.startswith(FIELD_PREFIX)}
        return Message(
            alert_id=alert.id, topic=alert.topic, msg_type=alert.msg_type.value, severity=alert.severity.value,
            urgency=alert.urgency.value, level=alert.level.value if alert.level else None, locale=used_locale,
            headline=alert.headline, text=block("text"), subject=subject, html=html, url=variables["url"],
            fields=fields, payload=self.payload(alert, topic) if channel == "webhook" else {},
            sent_at=published_at(alert).timestamp(),
        )

    def disclosure_url(self, alert_id: str) -> str:
        return f"{self.public_url}/disclosures/{alert_id}"

    def payload(self, alert: Alert, topic: Topic | TopicIn) -> dict[str, Any]:
        """The structured alert machine consumers get (webhook body); carries no contact of anyone."""
        return {
            "id": alert.id, "topic": alert.topic, "msg_type": alert.msg_type.value,
            "references": alert.references, "severity": alert.severity.value, "urgency": alert.urgency.value,
            "level": alert.level.value if alert.level else None, "headline": alert.headline, "body": alert.body,
            "instruction": alert.instruction, "regions": list(alert.regions), "groups": list(alert.groups),
            "department": alert.department or topic.department, "sent_at": _iso(published_at(alert)),
            "expires_at": _iso(alert.expires_at), "url": self.disclosure_url(alert.id), "data": dict(alert.data),
        }

    # ------------------------------------------------------------ internals

    def _locale(self, locale: str) -> str:
        if not LOCALE_RE.match(locale):
            raise ValueError(f"locale {locale!r} is not a language tag such as zh-CN or en")
        return locale if locale in LANGS else FALLBACK_LOCALE

    def _template(self, topic: Topic | TopicIn, channel: str, locale: str) -> Template:
        key = (topic.key, topic.domain, channel, self._locale(locale))
        cached = self._templates.get(key)
        if cached is not None:
            return cached
        names = self.candidates(topic, channel, locale)
        try:
            template = self.env.select_template(names)
        except TemplateError as exc:
            found = exc.name if isinstance(exc, TemplateSyntaxError) else None  # not found: no file to name
            raise RenderError(f"{topic.key}/{channel}/{locale}: {type(exc).__name__}: {exc}", topic=topic.key,
                              channel=channel, locale=locale, template=found) from exc
        problem = self._structure_problem(template, channel)
        if problem:
            raise RenderError(f"{template.name}: {problem}", topic=topic.key, channel=channel, locale=locale,
                              template=template.name)
        self._templates[key] = template
        return template

    def _structure_problem(self, template: Template, channel: str) -> str | None:
        """Why a template cannot serve `channel` (missing blocks, unescaped html), or None."""
        required = REQUIRED_BLOCKS.get(channel, ("text",))
        missing = [b for b in required if b not in template.blocks]
        if missing:
            return f"missing block(s) {', '.join(missing)} (a {channel} template needs {', '.join(required)})"
        if channel == "wechat" and not any(b.startswith(FIELD_PREFIX) for b in template.blocks):
            return f"a wechat template needs at least one {FIELD_PREFIX}<name> block"
        if "html" in template.blocks:
            source, _, _ = self._loader.get_source(self.env, template.name or "")
            for node in self.env.parse(source).find_all(nodes.Block):
                if node.name == "html" and not _escapes_html(node):
                    return "the html block must print inside {% autoescape true %} (and may not include files)"
        return None

    def _variables(self, alert: Alert, topic: Topic | TopicIn, channel: str, locale: str) -> dict[str, Any]:
        terms = Terms(locale)
        cat = self.catalogue
        english = not locale.startswith("zh")  # the catalogue's name_en where there is one

        def pick(name: str, name_en: str | None) -> str:
            return name_en if english and name_en else name

        regions = [pick(r.name, r.name_en) if (r := cat.region(c)) else c for c in alert.regions]
        groups = [pick(g.name, g.name_en) if (g := cat.group(c)) else c for c in alert.groups]
        domain = cat.domain(topic.domain)
        department = alert.department or topic.department
        level = alert.level.value if alert.level else None
        return {
            "alert": self._alert_vars(alert),
            "topic": topic.model_dump(mode="json"),
            "topic_name": pick(topic.name, topic.name_en),
            "domain_name": pick(domain.name, domain.name_en) if domain else topic.domain,
            "department": pick(department, cat.department_en(department)),
            "level_name": terms("level", level) if level else "",
            "level_colour": terms("level_colour", level) if level else "",
            "severity_name": terms("severity", alert.severity),
            "urgency_name": terms("urgency", alert.urgency),
            "msg_type_name": terms.msg_type(alert.msg_type.value, warning=alert.level is not None),
            "region_names": regions,
            "group_names": groups,
            "regions_text": terms.places(regions),
            "groups_text": terms.join(groups),
            "url": self.disclosure_url(alert.id),
            "unsubscribe_hint": _unsubscribe_hint(channel, locale, f"{self.public_url}/manage"),
            # Per-recipient links, filled in by the adapter (channels.links); only email carries them in its text.
            "manage_url": MANAGE_URL if channel in LINKED_TEXT_CHANNELS else "",
            "unsubscribe_url": UNSUBSCRIBE_URL if channel in LINKED_TEXT_CHANNELS else "",
            "supervision": topic.supervision or "",
            "sent_at_local": terms.when(published_at(alert), LOCAL_TZ),
            "expires_at_local": terms.when(alert.expires_at, LOCAL_TZ),
            "locale": locale,
            "channel": channel,
        }

    @staticmethod
    def _alert_vars(alert: Alert) -> dict[str, Any]:
        # A plain dict of plain values: templates see data, never the model's methods.
        return {
            "id": alert.id, "topic": alert.topic, "msg_type": alert.msg_type.value, "references": alert.references,
            "headline": alert.headline, "body": alert.body, "instruction": alert.instruction,
            "severity": alert.severity.value, "urgency": alert.urgency.value,
            "level": alert.level.value if alert.level else None, "regions": list(alert.regions),
            "groups": list(alert.groups), "data": dict(alert.data), "department": alert.department,
            "created_at": _iso(alert.created_at), "expires_at": _iso(alert.expires_at),
        }


def in_language(alert: Alert, locale: str) -> Alert:
    """The alert in the words of `locale`: an English message takes the English words a CAP document brought
    (`headline_en`…) where there are any; otherwise, and in Chinese, the publisher's own."""
    if locale.startswith("zh") or not alert.headline_en:
        return alert
    return alert.model_copy(update={"headline": alert.headline_en, "body": alert.body_en or "",
                                    "instruction": alert.instruction_en or ""})


def _unsubscribe_hint(channel: str, locale: str, manage_page: str) -> str:
    hint = UNSUBSCRIBE_HINTS.get(channel)
    return translator(locale).pgettext(*hint) % {"manage": manage_page} if hint else ""


def sms_length(text: str, signature: str | None = None) -> int:
    """Characters an SMS carries, counted in UTF-16 units as the providers do, 【signature】 included if given."""
    length = len(text.encode("utf-16-le")) // 2
    if signature:
        length += len(signature.strip("【】").encode("utf-16-le")) // 2 + 2
    return length


def sms_segments(text: str, signature: str | None = None) -> int:
    """SMS parts needed for `text` (plus 【signature】 when given): 70 characters fit one, 67 per part beyond."""
    length = sms_length(text, signature)
    if length == 0:
        return 0
    if length <= SMS_SINGLE:
        return 1
    return -(-length // SMS_PART)


# ---------------------------------------------------------------- templates check


@dataclass(frozen=True, slots=True)
class TemplateReport:
    """One topic × channel × locale, rendered for every message type with sample data."""

    topic: str
    channel: str
    locale: str
    template: str | None  # the file that served it
    error: str | None = None  # the first failure, naming the message type
    chars: int | None = None  # SMS and voice: the longest text (SMS: signature included)
    segments: int | None = None  # SMS only: parts of the longest text

    @property
    def ok(self) -> bool:
        return self.error is None


SAMPLE_TIME = datetime(2026, 11, 27, 8, 0, tzinfo=LOCAL_TZ)
SAMPLE_ID = "0f8c2d5e9a7b4c31a6e2d8f4b1c7e903"  # as long as a uuid4 hex, so SMS lengths are realistic
_SAMPLE_DEFAULT: dict[str, Any] = {
    "headline": "Sample disclosure headline", "body": "Sample body.", "instruction": "",
    "severity": "moderate", "urgency": "expected", "level": None, "regions": [], "groups": [], "data": {},
}


def load_samples(templates_dir: Path) -> dict[str, Any]:
    """`templates/_samples.toml`: [default], [domain.<code>], [topic."<key>"] alert fields for the check."""
    path = templates_dir / "_samples.toml"
    if not path.exists():
        return {"default": dict(_SAMPLE_DEFAULT)}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from exc


def sample_alert(topic: Topic | TopicIn, samples: Mapping[str, Any], msg_type: MsgType = MsgType.ALERT) -> Alert:
    """A realistic alert of `topic`: default sample fields, overlaid by its domain's, then its own."""
    fields = {**_SAMPLE_DEFAULT, **samples.get("default", {}), **samples.get("domain", {}).get(topic.domain, {}),
              **samples.get("topic", {}).get(topic.key, {})}
    return Alert.model_validate({
        **fields, "id": SAMPLE_ID, "topic": topic.key, "msg_type": msg_type,
        "references": None if msg_type is MsgType.ALERT else "a" * 32, "policy": Policy.ALL,
        "fallback_after": 600, "expires_at": SAMPLE_TIME + timedelta(days=2), "scheduled_at": None,
        "idempotency_key": None, "public": True, "status": AlertStatus.ACTIVE, "targeted": 0, "publisher": None,
        "department": None, "created_at": SAMPLE_TIME, "cancelled_at": None,
    })


def _check_one(renderer: Renderer, topic: TopicIn, channel: str, locale: str, samples: Mapping[str, Any],
               sms_signature: str | None) -> TemplateReport:
    try:
        name = renderer.template_name(topic, channel, locale)
    except RenderError as exc:
        return TemplateReport(topic.key, channel, locale, exc.template, error=str(exc))
    longest: str | None = None
    for msg_type in MsgType:
        try:
            message = renderer.render(sample_alert(topic, samples, msg_type), topic, channel, locale)
            json.dumps(message.payload)  # a webhook body must serialise
        except (RenderError, TypeError, ValueError) as exc:
            return TemplateReport(topic.key, channel, locale, name, error=f"{msg_type.value}: {exc}")
        if not message.text:
            return TemplateReport(topic.key, channel, locale, name, error=f"{msg_type.value}: empty text")
        if longest is None or sms_length(message.text) > sms_length(longest):
            longest = message.text
    if channel == "voice" and longest is not None:
        return TemplateReport(topic.key, channel, locale, name, chars=len(longest))
    if channel != "sms" or longest is None:
        return TemplateReport(topic.key, channel, locale, name)
    return TemplateReport(topic.key, channel, locale, name, chars=sms_length(longest, sms_signature),
                          segments=sms_segments(longest, sms_signature))


def check_templates(renderer: Renderer, catalogue: Catalogue, *, sms_signature: str | None = None,
                    channels: tuple[str, ...] = CHANNELS, locales: tuple[str, ...] = ("zh-CN", "en"),
                    ) -> list[TemplateReport]:
    """Render every topic × channel × locale (alert, update and cancel) with sample data; one report each."""
    samples = load_samples(renderer.templates_dir)
    return [_check_one(renderer, topic, channel, locale, samples, sms_signature)
            for topic in catalogue.topics for channel in channels for locale in locales]
