"""What the dashboard shows of the alerts waiting for approval (SPEC "Departments and approval"): plain view
objects built from the store and the catalogue (no HTML, no aiohttp). The forms that decide are in
`admin.decisions`; the rules in `notifier.approval`."""

from __future__ import annotations

from dataclasses import dataclass

from notifier.catalogue import Catalogue
from notifier.store import Store
from notifier.store.records import AlertRow
from notifier.web.admin.views import department_name, names, topic_names

WAITING_SHOWN = 50


@dataclass(frozen=True, slots=True)
class WaitingLine:
    """One alert waiting for approval, with what an approver needs to decide."""

    alert: AlertRow
    topic: str
    department: str | None
    regions: list[str]
    groups: list[str]
    decide_by: float  # when the timeout rejects it


async def waiting_lines(store: Store, catalogue: Catalogue, lang: str, timeout: float) -> list[WaitingLine]:
    """Every alert waiting for approval (oldest first, so the one closest to its timeout leads)."""
    topics = topic_names(catalogue, lang)
    lines = []
    for alert in await store.pending_alerts(None, WAITING_SHOWN):
        lines.append(WaitingLine(alert=alert, topic=topics.get(alert.topic, alert.topic),
                                 department=department_name(catalogue, alert.department, lang),
                                 regions=names(catalogue.regions, alert.target_regions, lang),
                                 groups=names(catalogue.groups, alert.target_groups, lang),
                                 decide_by=alert.created_at + timeout))
    return lines
