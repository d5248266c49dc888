"""Stored rows into records and back (sqlite3.Row and asyncpg.Record both read by column name)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from notifier.schedule import Schedule, to_stored
from notifier.store.db import Row
from notifier.store.records import AlertRow, KeyRecord


def topic_record(row: Row | Mapping[str, Any]) -> dict[str, Any]:
    """A topic as the service reads it; its schedule in the one text form of `notifier.schedule.to_stored`
    (canonical JSON of a structured schedule, or free text), wherever the store keeps it, and when it was set."""
    data = {k: row[k] for k in row.keys() if k != "created_at" and not k.startswith("schedule_")}
    data["channels"] = json.loads(row["channels"])
    if row["schedule_every"] is not None:
        data["schedule"] = to_stored(Schedule.model_validate(
            {name: row[f"schedule_{name}"] for name in SCHEDULE_FIELDS if row[f"schedule_{name}"] is not None}))
    data["schedule_set_at"] = row["schedule_set_at"]
    return data


# A structured schedule's fields, each in its column `schedule_<field>` (migration 0008).
SCHEDULE_FIELDS = ("every", "by_day", "by_weekday", "by_time", "since")


def key_record(row: Row) -> KeyRecord:
    return KeyRecord(id=row["id"], prefix=row["prefix"], role=row["role"], topics=json.loads(row["topics"]),
                     label=row["label"], created_at=row["created_at"], revoked_at=row["revoked_at"],
                     department=row["department"])


def alert_record(row: Row) -> AlertRow:
    return AlertRow(
        id=row["id"], topic=row["topic"], msg_type=row["msg_type"], references_id=row["references_id"],
        headline=row["headline"], body=row["body"], instruction=row["instruction"], severity=row["severity"],
        urgency=row["urgency"], level=row["level"], target_regions=json.loads(row["target_regions"]),
        target_groups=json.loads(row["target_groups"]), policy=row["policy"], fallback_after=row["fallback_after"],
        data=json.loads(row["data"]), expires_at=row["expires_at"], scheduled_at=row["scheduled_at"],
        idempotency_key=row["idempotency_key"], request_hash=row["request_hash"], public=bool(row["public"]),
        status=row["status"], targeted=row["targeted"], publisher=row["publisher"], department=row["department"],
        created_at=row["created_at"], cancelled_at=row["cancelled_at"], cancel_notice_id=row["cancel_notice_id"],
        approval=row["approval"], decided_by=row["decided_by"], decided_at=row["decided_at"],
        decision_reason=row["decision_reason"], **{name: row[name] for name in CAP_COLUMNS})


# Migration 0008: an alert's CAP identity, origin and English words (AlertRow fields of the same names).
CAP_COLUMNS = ("cap_sender", "cap_identifier", "cap_sent", "cap_origin", "headline_en", "body_en", "instruction_en")

ALERT_COLUMNS = ("id, topic, msg_type, references_id, headline, body, instruction, severity, urgency, level, "
                 "target_regions, target_groups, policy, fallback_after, data, expires_at, scheduled_at, "
                 "idempotency_key, request_hash, public, status, targeted, publisher, department, created_at, "
                 "cancelled_at, cancel_notice_id, approval, " + ", ".join(CAP_COLUMNS))


def alert_params(a: AlertRow) -> tuple[Any, ...]:
    """The values of ALERT_COLUMNS, in order."""
    return (a.id, a.topic, a.msg_type, a.references_id, a.headline, a.body, a.instruction, a.severity, a.urgency,
            a.level, json.dumps(a.target_regions), json.dumps(a.target_groups), a.policy, a.fallback_after,
            json.dumps(a.data, ensure_ascii=False), a.expires_at, a.scheduled_at, a.idempotency_key, a.request_hash,
            int(a.public), a.status, a.targeted, a.publisher, a.department, a.created_at, a.cancelled_at,
            a.cancel_notice_id, a.approval, *(getattr(a, name) for name in CAP_COLUMNS))
