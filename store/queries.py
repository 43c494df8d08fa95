"""Reads for the CLI, from the read models."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from schemas.events import EVENT_ADAPTER, EngagementStarted, OutcomesRecorded, Phase
from schemas.outcomes import Metric
from schemas.report import ActionReport, MetricPoint, Report
from schemas.views import EngagementListItem


async def list_engagements(pool: asyncpg.Pool, phase: Phase | None = None) -> list[EngagementListItem]:
    rows = await pool.fetch(
        "SELECT engagement_id, client, phase, coalesce(format, recommended) AS format, session_starts_at,"
        " next_checkin_at, actions_at_risk, updated_at FROM engagements"
        " WHERE $1::text IS NULL OR phase = $1 ORDER BY updated_at DESC",
        phase.value if phase else None,
    )
    return [EngagementListItem(**dict(r)) for r in rows]


async def engagement_exists(pool: asyncpg.Pool, engagement_id: str) -> bool:
    return bool(await pool.fetchval("SELECT 1 FROM engagements WHERE engagement_id = $1", engagement_id))


async def engagement_id_logged(pool: asyncpg.Pool, engagement_id: str) -> bool:
    """Whether the log holds any event of this id: the log outlives the workflow (Temporal's retention deletes
    it), so this is what says an id was used, whatever became of its engagement."""
    try:
        return bool(await pool.fetchval("SELECT EXISTS (SELECT 1 FROM events WHERE engagement_id = $1)",
                                        engagement_id))
    except asyncpg.UndefinedTableError:  # a database no worker has migrated yet: no log, so no id used
        return False


async def report_data(pool: asyncpg.Pool, engagement_id: str, *, now: datetime | None = None) -> Report | None:
    """The follow-through report of an engagement, or None when there is no such engagement.

    Counts and statuses come from the read models; people, decisions and dot votes from the log (the
    `engagement_started` and `outcomes_recorded` events), which is where they live.
    """
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        # One snapshot: an append landing between two of these reads cannot make the report disagree with itself.
        eng = await conn.fetchrow(
            "SELECT engagement_id, client, timezone, phase, format, recommended, session_starts_at,"
            " session_ends_at, cancel_reason FROM engagements WHERE engagement_id = $1",
            engagement_id,
        )
        if eng is None:
            return None
        people_and_outcomes = await conn.fetch(
            "SELECT payload FROM events WHERE engagement_id = $1"
            " AND type IN ('engagement_started', 'outcomes_recorded') ORDER BY seq",
            engagement_id,
        )
        # Actions in the order they were assigned (A10 after A9, not after A1).
        actions = await conn.fetch(
            "SELECT a.action_id, a.title, a.owner_name, a.owner_email, a.owner_timezone, a.due, a.metric,"
            " a.assigned_at, a.status, a.last_value, a.next_checkin_at, a.closed_reason, a.checkins_sent,"
            " a.escalations,"
            " (SELECT count(*) FROM checkins c WHERE c.engagement_id = a.engagement_id"
            "   AND c.action_id = a.action_id AND c.kind = 'missed') AS missed,"
            " (SELECT count(*) FROM checkins c WHERE c.engagement_id = a.engagement_id"
            "   AND c.action_id = a.action_id AND c.kind = 'snoozed') AS snoozes"
            " FROM actions a"
            " LEFT JOIN events e ON e.engagement_id = a.engagement_id AND e.type = 'action_assigned'"
            "   AND e.payload->>'action_id' = a.action_id"
            " WHERE a.engagement_id = $1 ORDER BY e.seq NULLS LAST, a.action_id",
            engagement_id,
        )
        points = await conn.fetch(
            "SELECT action_id, at, value, status, note FROM checkins"
            " WHERE engagement_id = $1 AND kind = 'reported' ORDER BY seq",
            engagement_id,
        )
    started: EngagementStarted | None = None
    outcomes: OutcomesRecorded | None = None
    for row in people_and_outcomes:
        match EVENT_ADAPTER.validate_python(row["payload"]):
            case EngagementStarted() as first:
                started = first
            case OutcomesRecorded() as recorded:
                outcomes = recorded  # the latest recording wins
    if started is None:  # a read model without its first event: the log is the truth, so say so
        raise RuntimeError(f"engagement {engagement_id!r} has no engagement_started event")
    history: dict[str, list[MetricPoint]] = {}
    for p in points:
        history.setdefault(p["action_id"], []).append(
            MetricPoint(at=p["at"], value=p["value"], status=p["status"], note=p["note"]))
    return Report(
        engagement_id=eng["engagement_id"],
        client=eng["client"],
        timezone=eng["timezone"],
        phase=eng["phase"],
        format=eng["format"] or eng["recommended"],
        format_confirmed=eng["format"] is not None,
        session_starts_at=eng["session_starts_at"],
        session_ends_at=eng["session_ends_at"],
        sponsor=started.scoping.sponsor,
        consultant=started.scoping.consultant,
        cancel_reason=eng["cancel_reason"],
        generated_at=now or datetime.now(UTC),
        decisions=list(outcomes.outcomes.decisions) if outcomes else [],
        dot_votes=list(outcomes.outcomes.dot_votes) if outcomes else [],
        actions=[
            ActionReport(
                **{k: a[k] for k in ("action_id", "title", "owner_name", "owner_email", "owner_timezone", "due",
                                     "assigned_at", "status", "last_value", "next_checkin_at", "closed_reason",
                                     "checkins_sent", "escalations", "missed", "snoozes")},
                metric=Metric.model_validate(a["metric"]),
                history=history.get(a["action_id"], []),
            )
            for a in actions
        ],
    )
