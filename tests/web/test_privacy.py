"""Privacy of figures (SPEC): everything a viewer can fetch about an alert and a period — the coverage object, its
CSV, the breakdown, the dashboard's charts and exports, the period aggregates over any window — handed to an
attacker's integer program (tests/figure_solver.py), on data where hiding only the small figures gives them away.
And viewers get aggregates only: deliveries and subscribers answer 403 in every format."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp

from notifier.fakes.webhook_receiver import Reply, RunningReceiver
from notifier.models import Role
from tests.figure_solver import Attacker
from tests.web.conftest import CSRF_FIELD, EMAIL, MOBILE_DIGITS, Api

pytestmark = pytest.mark.both_backends

K = 5  # [auth] viewer_min_cell's default
CHENGQU, JIAOQU, LUCHENG = "140402", "140411", "140481"
# 城区: 16 people, all reached, one of them the only elderly person; 郊区: 15, nobody reached; 潞城市: 11, mixed.
TOWN = [(CHENGQU, "elderly", 1, 1), (CHENGQU, "child", 8, 8), (CHENGQU, None, 7, 7),
        (JIAOQU, "elderly", 9, 0), (JIAOQU, "child", 6, 0), (LUCHENG, "elderly", 6, 3), (LUCHENG, None, 5, 2)]


async def _people(api: Api, receiver: RunningReceiver, region: str, group: str | None, targeted: int,
                  reached: int, topic: str = "env.heavy-pollution") -> None:
    """`targeted` webhook subscribers of one cell; those beyond `reached` have endpoints that answer 410."""
    for i in range(targeted):
        path = f"/{topic}/{region}/{group}/{i}"
        if i >= reached:
            receiver.script(path, [Reply(status=410)])
        await api.subscriber(contacts={"webhook": receiver.url_for(path)}, region=region,
                             groups=[group] if group else [], subscriptions=[{"topic": topic, "channels": ["webhook"]}])


async def _delivered(api: Api, **body: Any) -> str:
    status, accepted = await api.publish(**body)
    assert status == 202, accepted
    await api.service.dispatcher.drain(timeout=20)
    return str(accepted["id"])


async def _json(api: Api, path: str, role: Role = Role.VIEWER) -> Any:
    response = await api.client.get(path, headers=api.auth(role))
    assert response.status == 200, await response.text()
    return await response.json()


def _rows(text: str) -> list[dict[str, str]]:
    """CSV rows keyed by field name (the text before the first space of a bilingual header)."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    keys = [cell.split(" ", 1)[0] for cell in next(reader)]
    return [dict(zip(keys, row, strict=True)) for row in reader]


async def _csv(api: Api, path: str) -> list[dict[str, str]]:
    response = await api.client.get(path, headers=api.auth(Role.VIEWER))
    assert response.status == 200, await response.text()
    return _rows((await response.read()).decode())


async def _dashboard(api: Api, path: str) -> str:
    """A dashboard page (or export) as the viewer, signed in through the real form."""
    form = await api.client.get("/admin/login", allow_redirects=False)
    if form.status == 200:
        token = CSRF_FIELD.search(await form.text())
        assert token is not None
        await api.client.post("/admin/login", data={"csrf": token.group(1), "key": api.keys[Role.VIEWER]},
                              allow_redirects=False)
    response = await api.client.get(path, allow_redirects=False)
    assert response.status == 200, await response.text()
    return await response.text()


def _figure(value: str) -> int | None:
    return int(value) if value else None


# ---------------------------------------------------------------- one alert


async def test_no_hidden_count_of_an_alert_can_be_worked_out(api: Api, receiver: RunningReceiver) -> None:
    """The one elderly person of 城区 and every other small count: never a single value, and always possibly k or
    more; their reached and not-reached counts neither — except where a shown district says it of everyone."""
    for cell in TOWN:
        await _people(api, receiver, *cell)
    alert_id = await _delivered(api, regions=[CHENGQU, JIAOQU, LUCHENG])
    truth = await _json(api, f"/v1/alerts/{alert_id}/coverage", Role.ADMIN)
    seen = await _json(api, f"/v1/alerts/{alert_id}/coverage")
    attacker = Attacker(seen)
    small = [k for k in attacker.hidden if _true(truth, k)["targeted"] < K]
    assert ("cell", CHENGQU, "elderly") in small
    for key in small:
        size = attacker.range(key, "targeted")
        assert not size.single and size.high >= K, (key, size)
        for measure in ("reached", "unreached"):
            assert not attacker.range(key, measure).single or _said_for_everyone(seen, key, measure), (key, measure)


async def test_every_form_shows_a_viewer_the_same_figures(api: Api, receiver: RunningReceiver) -> None:
    """The coverage CSV, the dashboard's bars and its CSV exports show exactly the JSON's figures — nothing a
    hidden entry could be recovered from — and the breakdown is withheld as a whole."""
    for cell in TOWN:
        await _people(api, receiver, *cell)
    alert_id = await _delivered(api, regions=[CHENGQU, JIAOQU, LUCHENG])
    seen = await _json(api, f"/v1/alerts/{alert_id}/coverage")
    cells = {(c["region"], c["group"] or ""): (c["targeted"], c["reached"]) for c in seen["cells"]}
    exported = await _csv(api, f"/v1/alerts/{alert_id}/coverage?format=csv")
    assert {(r["region"], r["group"]): (_figure(r["targeted"]), _figure(r["reached"])) for r in exported} == cells
    html = await _dashboard(api, f"/admin/alerts/{alert_id}")
    bars = {m[0]: (_figure(m[1]), _figure(m[2])) for m in re.findall(
        r'data-code="(\w+)"\s+data-targeted="(\d*)"\s+data-reached="(\d*)"', html)}
    for part in ("by_region", "by_group"):
        for code, entry in seen[part].items():
            assert bars[code] == (entry["targeted"], entry["reached"]), code
    for table, part in (("regions", "by_region"), ("groups", "by_group")):
        rows = _rows(await _dashboard(api, f"/admin/alerts/{alert_id}/export.csv?table={table}"))
        key = "region" if part == "by_region" else "group"
        assert {r[key]: (_figure(r["targeted"]), _figure(r["reached"])) for r in rows} == {
            c: (e["targeted"], e["reached"]) for c, e in seen[part].items()}
    breakdown = await _json(api, f"/v1/alerts/{alert_id}/coverage/breakdown")
    assert (breakdown["rows"], breakdown["suppressed"]) == ([], True)
    assert await _csv(api, f"/v1/alerts/{alert_id}/coverage/breakdown?format=csv") == []


def _true(truth: dict[str, Any], key: tuple[str, ...]) -> dict[str, Any]:
    if key[0] == "cell":
        return next(c for c in truth["cells"] if c["region"] == key[1] and (c["group"] or "") == key[2])
    entry: dict[str, Any] = truth["by_region" if key[0] == "region" else "by_group"][key[1]]
    return entry


def _said_for_everyone(seen: dict[str, Any], key: tuple[str, ...], measure: str) -> bool:
    """A shown district, group or total containing the entry with nobody reached (or nobody unreached)."""
    outer = [seen]
    if key[0] == "cell":
        outer += [seen["by_region"][key[1]], *([seen["by_group"][key[2]]] if key[2] else [])]
    return any(not o.get("suppressed") and (o["reached"] if measure == "reached" else o["targeted"] - o["reached"])
               == 0 for o in outer)


# ---------------------------------------------------------------- periods


async def test_no_small_alert_can_be_worked_out_of_period_aggregates(api: Api, receiver: RunningReceiver) -> None:
    """A department's total minus its visible topic, a period minus a shorter one, the total minus the
    departments: solved together over every window a viewer could ask for, none gives back the figures of the
    air-forecast alert of 2 people (a naive sum would: 12 − 10)."""
    await _people(api, receiver, CHENGQU, "elderly", 10, 7)
    await _people(api, receiver, JIAOQU, "elderly", 2, 1, topic="env.air-forecast")
    await _people(api, receiver, LUCHENG, "child", 6, 6, topic="transit.fare-change")
    ids = [await _delivered(api, topic=topic) for topic in ("env.heavy-pollution", "env.air-forecast",
                                                            "transit.fare-change")]
    alerts = [await _json(api, f"/v1/alerts/{i}") for i in ids]
    assert alerts[1]["suppressed"] is True and alerts[1]["targeted"] is None
    answers = []
    for query in _windows(alerts):
        answers.append((query, await _json(api, "/v1/coverage?" + query)))
    truth = [(a["topic"], await _json(api, f"/v1/alerts/{a['id']}/coverage", Role.ADMIN)) for a in alerts]
    for measure in ("targeted", "reached"):
        for i, (_, coverage) in enumerate(truth):
            if alerts[i].get("suppressed"):
                low, high = _solve(alerts, answers, truth, i, measure)
                assert not low == high == coverage[measure], (measure, low, high)


def _windows(alerts: list[dict[str, Any]]) -> list[str]:
    """Every period query a curious viewer would try: all, each topic, each department, and a window around
    each alert alone and from each alert on."""
    queries = ["", "department=市环保局", "department=市交通局"]
    queries += [f"topic={a['topic']}" for a in alerts]
    for a in alerts:
        at = datetime.fromisoformat(a["created_at"])
        since = (at - timedelta(microseconds=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        until = (at + timedelta(milliseconds=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        queries += [f"since={since}&until={until}", f"since={since}"]
    return queries


def _in(query: str, alert: dict[str, Any], scope: str, key: str) -> bool:
    """Whether the alert counts in one entry (scope total/topic/department, key) of a query's answer."""
    params = dict(p.split("=", 1) for p in query.split("&") if p)
    at = datetime.fromisoformat(alert["created_at"])
    since, until = params.get("since"), params.get("until")
    in_time = ((since is None or at >= datetime.fromisoformat(since))
               and (until is None or at < datetime.fromisoformat(until)))
    selected = (in_time and params.get("topic", alert["topic"]) == alert["topic"]
                and params.get("department", alert["department"]) == alert["department"])
    return selected and (scope == "total" or alert[scope] == key)


def _solve(alerts: list[dict[str, Any]], answers: list[tuple[str, Any]], truth: list[tuple[str, Any]],
           unknown: int, measure: str) -> tuple[int, int]:
    """The lowest and highest figure of alert `unknown` consistent with every shown aggregate, each being the sum
    of the figures of the alerts it covers (those the viewer sees the figures of are known)."""
    hidden = [i for i, a in enumerate(alerts) if a.get("suppressed")]
    rows, rhs = [], []
    for query, answer in answers:
        entries = [("total", "", answer["total"]), *(("topic", k, v) for k, v in answer["by_topic"].items()),
                   *(("department", k, v) for k, v in answer["by_department"].items())]
        for scope, key, aggregate in entries:
            if aggregate.get("suppressed"):
                continue
            members = [i for i, a in enumerate(alerts) if _in(query, a, scope, key)]
            known = sum(truth[i][1][measure] for i in members if i not in hidden)
            rows.append([1.0 if i in members else 0.0 for i in hidden])
            rhs.append(aggregate[measure] - known)
    objective = np.zeros(len(hidden))
    objective[hidden.index(unknown)] = 1
    found = []
    for sign in (1, -1):
        result = milp(sign * objective, constraints=LinearConstraint(np.array(rows), rhs, rhs),
                      integrality=np.ones(len(hidden)), bounds=Bounds(np.zeros(len(hidden)), np.full(len(hidden), 1e6)))
        assert result.status == 0, result.message
        found.append(round(sign * result.fun))
    return found[0], found[1]


# ---------------------------------------------------------------- aggregates only


async def test_viewers_get_no_deliveries_in_any_format(api: Api) -> None:
    """The deliveries of an alert answer 403 to a viewer, as JSON and as CSV."""
    await api.subscriber()
    _, accepted = await api.publish()
    for query in ("", "?format=csv"):
        response = await api.client.get(f"/v1/alerts/{accepted['id']}/deliveries{query}",
                                        headers={**api.auth(Role.VIEWER), "Accept": "text/csv"})
        assert response.status == 403


async def test_viewers_get_no_subscribers_in_any_format(api: Api) -> None:
    """Listing, reading, creating, changing, deleting, subscribing and importing subscribers: 403 to a viewer."""
    created = await api.subscriber()
    viewer = api.auth(Role.VIEWER)
    base = f"/v1/subscribers/{created['id']}"
    calls = [api.client.get("/v1/subscribers", headers=viewer),
             api.client.get("/v1/subscribers?format=csv", headers={**viewer, "Accept": "text/csv"}),
             api.client.get(base, headers=viewer), api.client.patch(base, json={"groups": []}, headers=viewer),
             api.client.delete(base, headers=viewer),
             api.client.post(f"{base}/subscriptions", json={"topic": "env.air-forecast", "channels": ["sms"]},
                             headers=viewer),
             api.client.post("/v1/subscribers", json={"region": CHENGQU}, headers=viewer),
             api.client.post("/v1/subscribers/import", data=b"region\n140402\n",
                             headers={**viewer, "Content-Type": "text/csv"})]
    for call in calls:
        assert (await call).status == 403


async def test_the_dashboard_shows_viewers_no_deliveries(api: Api) -> None:
    """A viewer's alert page has no deliveries table nor its CSV link, the live fragment neither, and the
    deliveries export is refused; an admin's has them."""
    await api.subscriber()
    _, accepted = await api.publish(policy="all")
    page = await _dashboard(api, f"/admin/alerts/{accepted['id']}")
    live = await _dashboard(api, f"/admin/alerts/{accepted['id']}/live")
    for html in (page, live):
        assert 'id="table-deliveries"' not in html and "table=deliveries" not in html and "138****5678" not in html
    response = await api.client.get(f"/admin/alerts/{accepted['id']}/export.csv?table=deliveries")
    assert response.status == 403
    refused = await response.text()  # no contact, raw or masked (not "138": a random alert id may hold it)
    assert MOBILE_DIGITS not in refused and "138****5678" not in refused and EMAIL not in refused


async def test_viewers_see_no_figure_of_a_small_alert_in_lists(api: Api) -> None:
    """An alert of one person: no `targeted` in the API's list and alert, and "已隐藏" in the dashboard's list."""
    await api.subscriber()
    _, accepted = await api.publish()
    listed = await _json(api, "/v1/alerts")
    assert [(a["targeted"], a["suppressed"]) for a in listed["items"]] == [(None, True)]
    assert (await _json(api, "/v1/alerts", Role.ADMIN))["items"][0]["targeted"] == 1
    html = await _dashboard(api, "/admin")
    row = re.search(rf'<tr data-alert="{accepted["id"]}">.*?</tr>', html, re.S)
    assert row and row.group(0).count('data-suppressed="true">已隐藏') == 4
