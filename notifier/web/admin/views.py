"""What the admin pages show, gathered from the store into plain view objects (no HTML here, no aiohttp).

Every figure comes from the coverage object (`notifier.coverage.alert_coverage`), with viewers' small cells
suppressed exactly as the API suppresses them; every contact goes through the API's own `delivery_view` (masked,
errors scrubbed). The reach curve, the failure texts and the list's quick figures come from the store's admin
queries (`store/admin.py`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from notifier.catalogue import Catalogue
from notifier.causes import CauseCount, alert_causes
from notifier.coverage import alert_coverage
from notifier.disclosure_control import alert_withheld
from notifier.i18n import translator
from notifier.models import Coverage, Delivery, DeliveryStatus, Group, Region, Role
from notifier.store import Store
from notifier.store.records import AlertRow
from notifier.terms import CAUSE, Terms
from notifier.web.admin.charts import Bar, BarChart, BarTexts, Curve, bar_chart, reach_curve
from notifier.web.api.alerts import delivery_view
from subscriptions.masking import mask_contact, mask_label

LIST_PAGE = 20
DELIVERY_PAGE = 25


def suppress_below(role: Role, viewer_min_cell: int) -> int | None:
    """k for the viewer role (cells under k people are hidden), None for admins: as in the API."""
    return viewer_min_cell if role is Role.VIEWER else None


def names(items: Sequence[Region | Group], codes: Sequence[str], lang: str) -> list[str]:
    """Catalogue names of `codes` in the page's language (a code the catalogue lacks shows as itself)."""
    known = {i.code: ((i.name_en or i.name) if lang == "en" else i.name) for i in items}
    return [known.get(code, code) for code in codes]


def department_name(catalogue: Catalogue, name: str | None, lang: str) -> str | None:
    """A department as the page's language names it (the catalogue's English name, else as written)."""
    if name and lang == "en":
        return catalogue.department_en(name) or name
    return name


def topic_names(catalogue: Catalogue, lang: str) -> dict[str, str]:
    return {t.key: ((t.name_en or t.name) if lang == "en" else t.name) for t in catalogue.topics}


# ---------------------------------------------------------------- the alert list


@dataclass(frozen=True, slots=True)
class AlertLine:
    """One alert in the list with its live figures (`suppressed`: a viewer may see none of them)."""

    alert: AlertRow
    targeted: int
    reached: int
    accepted: int
    pending: int
    awaiting: int
    suppressed: bool = False

    @property
    def rate(self) -> float | None:
        return None if self.targeted == 0 else self.reached / self.targeted

    @property
    def live(self) -> bool:
        """Still moving: deliveries to make, or receipts to wait for."""
        return self.alert.status in ("active", "scheduled") and (self.pending > 0 or self.awaiting > 0)


async def alert_lines(store: Store, alerts: list[AlertRow], k: int | None) -> list[AlertLine]:
    """The list's lines; for a viewer (k), alerts of fewer than k targeted show no figure."""
    figures = await store.alert_figures([a.id for a in alerts])
    return [AlertLine(a, *figures[a.id], suppressed=alert_withheld(a.targeted, k)) for a in alerts]


# ---------------------------------------------------------------- one alert


@dataclass(frozen=True, slots=True)
class CountLine:
    code: str
    label: str
    count: int


@dataclass(frozen=True, slots=True)
class AlertFigures:
    """The part of the alert page that refreshes while the alert goes out."""

    coverage: Coverage
    region_bars: list[Bar]
    group_bars: list[Bar]
    region_chart: BarChart
    group_chart: BarChart
    curve: Curve | None  # None on back-ends without the curve query
    unreachable: list[CountLine]
    errors: list[CauseCount] | None  # failed deliveries by channel and cause (words, raw code masked)
    suppressed_k: int | None
    hidden_mark: str  # what a hidden figure shows
    to_come: int = 0  # people whose rows a large publish is still adding (`fan_out_later`): no channel's yet

    @property
    def pending(self) -> int:
        return sum(c.pending for c in self.coverage.by_channel.values()) + self.to_come

    @property
    def live(self) -> bool:
        """Still moving — before a large publish's first rows too: the page said "Sending has finished" and
        stopped refreshing in the seconds they were being added."""
        return self.to_come > 0 or any(c.pending or c.awaiting_receipt for c in self.coverage.by_channel.values())


def region_bars(catalogue: Catalogue, alert: AlertRow, coverage: Coverage, lang: str) -> list[Bar]:
    """One bar per district of the catalogue, in catalogue order (all 13 in the default catalogue)."""
    bars = []
    for region in catalogue.regions:
        cell = coverage.by_region.get(region.code)
        label = (region.name_en or region.name) if lang == "en" else region.name
        aimed = not alert.target_regions or region.code in alert.target_regions
        if cell is None:
            bars.append(Bar(region.code, label, 0, 0, None, in_target=aimed))
        else:
            bars.append(Bar(region.code, label, cell.targeted, cell.reached, cell.coverage_rate,
                            suppressed=bool(cell.suppressed), population=cell.population,
                            population_rate=cell.population_rate))
    return bars


def group_bars(catalogue: Catalogue, alert: AlertRow, coverage: Coverage, lang: str) -> list[Bar]:
    """One bar per population group of the catalogue; groups the alert did not aim at but whose members were
    targeted (a targeted elderly person may also be a student) show their figures too."""
    bars = []
    for group in catalogue.groups:
        cell = coverage.by_group.get(group.code)
        label = (group.name_en or group.name) if lang == "en" else group.name
        aimed = not alert.target_groups or group.code in alert.target_groups
        if cell is None:
            bars.append(Bar(group.code, label, 0, 0, None, in_target=aimed))
        else:
            bars.append(Bar(group.code, label, cell.targeted, cell.reached, cell.coverage_rate,
                            suppressed=bool(cell.suppressed), population=cell.population,
                            population_rate=cell.population_rate))
    return bars




async def alert_figures(store: Store, catalogue: Catalogue, alert: AlertRow, *, role: Role, viewer_min_cell: int,
                        lang: str) -> AlertFigures:
    k = suppress_below(role, viewer_min_cell)
    # Read before the coverage: a large publish's rows added in between are then counted twice, never not at all.
    to_come = (await store.people_to_come([alert.id])).get(alert.id, 0)
    coverage = await alert_coverage(store, alert.id, suppress_below=k)
    regions = region_bars(catalogue, alert, coverage, lang)
    groups = group_bars(catalogue, alert, coverage, lang)
    tr, terms = translator(lang), Terms(lang)
    texts = BarTexts(suppressed=tr.gettext("hidden"), not_targeted=tr.gettext("not targeted"),
                     nobody=tr.gettext("nobody targeted"))
    region_chart = bar_chart(
        "chart-regions", tr.gettext("Coverage by district"),
        tr.ngettext("Bar chart of coverage in %(num)d district: each bar's length is the share of targeted people "
                    "reached; the text beside it gives reached/targeted and the rate.",
                    "Bar chart of coverage in %(num)d districts: each bar's length is the share of targeted people "
                    "reached; the text beside it gives reached/targeted and the rate.", len(regions))
        % {"num": len(regions)}, regions, texts)
    group_chart = bar_chart(
        "chart-groups", tr.gettext("Coverage by population group"),
        tr.gettext("Bar chart of coverage per group: each bar's length is the share of targeted people reached; the "
                   "text beside it gives reached/targeted and the rate."), groups, texts)
    unreachable = [CountLine(cause, terms("cause", cause), coverage.unreachable.get(cause, 0))
                   for cause in CAUSE if coverage.unreachable.get(cause)]
    if coverage.suppressed:  # a viewer's alert of fewer than k: no figure, no chart, no curve
        return AlertFigures(coverage=coverage, region_bars=[], group_bars=[], region_chart=region_chart,
                            group_chart=group_chart, curve=None, unreachable=[], errors=None, suppressed_k=k,
                            hidden_mark=texts.suppressed, to_come=to_come)
    bucket, points = await store.reach_curve(alert.id)
    desc = tr.gettext("Step curve of the cumulative number of people reached since publishing; the dashed line "
                      "is the %(targeted)s targeted; %(reached)s reached so far.")
    curve = reach_curve("chart-curve", points, bucket, coverage.targeted or 0,
                        title=tr.gettext("People reached over time"),
                        desc=desc % {"targeted": coverage.targeted, "reached": coverage.reached}, tr=tr)
    errors = await alert_causes(store, alert.id)
    return AlertFigures(coverage=coverage, region_bars=regions, group_bars=groups, region_chart=region_chart,
                        group_chart=group_chart, curve=curve, unreachable=unreachable, errors=errors,
                        suppressed_k=k, hidden_mark=texts.suppressed, to_come=to_come)


# ---------------------------------------------------------------- deliveries


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    status: DeliveryStatus | None = None
    channel: str | None = None
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    items: list[Delivery]  # contacts masked by the API's delivery_view
    next_after: str | None
    total: int


UNTOLD_SHOWN = 500  # people listed as not yet told on an alert's page (per proxy, masked)
CHANNEL_KIND = re.compile(r"[a-z][a-z0-9_-]{0,31}")


def delivery_filter(query: dict[str, str]) -> DeliveryFilter:
    """The table's filters from a plain GET form; a value that cannot be a choice means "all"."""
    status = query.get("status") or None
    channel = query.get("channel") or None
    cursor = query.get("after") or None
    return DeliveryFilter(
        status=DeliveryStatus(status) if status in {s.value for s in DeliveryStatus} else None,
        channel=channel if channel and CHANNEL_KIND.fullmatch(channel) else None,
        cursor=cursor if cursor and len(cursor) <= 64 and cursor.isalnum() else None)


async def delivery_page(store: Store, alert_id: str, chosen: DeliveryFilter,
                        limit: int = DELIVERY_PAGE) -> DeliveryPage:
    rows, total = await store.list_deliveries(alert_id, limit + 1, chosen.cursor,
                                              chosen.status.value if chosen.status else None, chosen.channel)
    shown = rows[:limit]
    return DeliveryPage(items=[delivery_view(r) for r in shown],
                        next_after=shown[-1].id if len(rows) > limit else None, total=total)


# ---------------------------------------------------------------- assisted reach


@dataclass(frozen=True, slots=True)
class Untold:
    """One proxy and the people it has not yet confirmed told about an alert (labels masked)."""

    proxy: str  # the proxy's first contact, masked
    people: list[str]  # "(number) label", masked


async def not_yet_told(store: Store, alert_id: str, limit: int = UNTOLD_SHOWN) -> list[Untold]:
    """Per proxy, who is "not yet told" about the alert (at most `limit` people in all)."""
    rows = await store.not_yet_told(alert_id, limit)
    people: dict[str, list[str]] = {}
    for proxy_id, number, label, _ in rows:
        people.setdefault(proxy_id, []).append(f"({number}) {mask_label(label)}")
    out = []
    for proxy_id, listed in people.items():
        record = await store.get_subscriber(proxy_id)
        contacts = record.contacts if record is not None else {}
        shown = next((mask_contact(kind, address) for kind, address in contacts.items()), None)
        out.append(Untold(proxy=shown or proxy_id[:8], people=listed))
    return out
