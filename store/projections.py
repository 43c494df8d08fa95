"""Read models as projections of the event log.

`apply_event` runs in the transaction of the append, so a read model never lags its log;
`rebuild_projections` replays the whole log through the same function, so a rebuild equals the live tables.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from schemas import events as ev
from schemas.status import ActionStatus

READ_MODELS = ("checkins", "outbound_messages", "preread_acks", "prereads", "actions", "participants",
               "engagements")


async def _refresh_engagement(conn: asyncpg.Connection, engagement_id: str, last_seq: int,
                              at: datetime) -> None:
    """Once per batch: the aggregates over the engagement's actions, and where its log has got to."""
    await conn.execute(
        "UPDATE engagements SET"
        " next_checkin_at = (SELECT min(next_checkin_at) FROM actions"
        "   WHERE engagement_id = $1 AND closed_reason IS NULL),"
        " actions_at_risk = (SELECT count(*) FROM actions WHERE engagement_id = $1 AND status = $2),"
        " updated_at = $3, last_seq = $4"
        " WHERE engagement_id = $1",
        engagement_id,
        ActionStatus.at_risk.value,
        at,
        last_seq,
    )


async def apply_events(conn: asyncpg.Connection, engagement_id: str,
                       events: list[tuple[int, datetime, ev.Event]]) -> None:
    """Project a batch of one engagement's events, in order (the live path and the rebuild share it)."""
    for seq, at, event in events:
        await apply_event(conn, engagement_id, seq, at, event)
    if events:
        seq, at, _ = events[-1]
        await _refresh_engagement(conn, engagement_id, seq, at)


async def _checkin_row(conn: asyncpg.Connection, engagement_id: str, seq: int, at: datetime,
                       action_id: str, kind: str, number: int | None = None, value: float | None = None,
                       note: str | None = None, status: str | None = None) -> None:
    await conn.execute(
        "INSERT INTO checkins (engagement_id, action_id, seq, kind, number, value, note, status, at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        engagement_id, action_id, seq, kind, number, value, note, status, at,
    )


async def apply_event(conn: asyncpg.Connection, engagement_id: str, seq: int, at: datetime,
                      event: ev.Event) -> None:
    match event:
        case ev.EngagementStarted(scoping=s, recommendation=r):
            await conn.execute(
                "INSERT INTO engagements (engagement_id, client, timezone, consultant_email, sponsor_email,"
                " phase, recommended, started_at, updated_at, last_seq)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
                engagement_id, s.client, s.timezone, s.consultant.email, s.sponsor.email,
                ev.Phase.scoping.value, r.format.value, at, seq,
            )
            await conn.executemany(
                "INSERT INTO participants (engagement_id, email, name, role, timezone)"
                " VALUES ($1, $2, $3, $4, $5)",
                [(engagement_id, p.email, p.name, p.role.value, p.timezone) for p in s.participants],
            )
        case ev.PhaseEntered(phase=phase):
            await conn.execute("UPDATE engagements SET phase = $2 WHERE engagement_id = $1",
                               engagement_id, phase.value)
        case ev.FormatChosen(format=fmt):
            await conn.execute("UPDATE engagements SET format = $2 WHERE engagement_id = $1",
                               engagement_id, fmt.value)
        case ev.SessionScheduled(starts_at=starts, ends_at=ends, sequence=sequence):
            await conn.execute(
                "UPDATE engagements SET session_starts_at = $2, session_ends_at = $3, session_sequence = $4"
                " WHERE engagement_id = $1",
                engagement_id, starts, ends, sequence,
            )
        case ev.PrereadAdded(preread_id=pid, title=title, url=url, days_before=days):
            await conn.execute(
                "INSERT INTO prereads (engagement_id, preread_id, title, url, days_before, added_at)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                engagement_id, pid, title, url, days, at,
            )
        case ev.PrereadAcknowledged(preread_id=pid, email=email):
            await conn.execute(
                "INSERT INTO preread_acks (engagement_id, preread_id, email, acknowledged_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                engagement_id, pid, email, at,
            )
        case ev.MessageSent(message_id=mid, kind=kind, recipients=to, subject=subject, action_id=aid):
            await conn.execute(
                "INSERT INTO outbound_messages (engagement_id, message_id, kind, recipients, subject,"
                " action_id, sent_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                engagement_id, mid, kind.value, to, subject, aid, at,
            )
        case ev.OutcomesRecorded():
            pass  # the outcomes live in the log; actions get their rows from action_assigned
        case ev.ActionAssigned(action_id=aid, title=title, owner=owner, due=due, metric=metric,
                               assigned_at=assigned_at):
            await conn.execute(
                "INSERT INTO actions (engagement_id, action_id, title, owner_name, owner_email,"
                " owner_timezone, due, metric, assigned_at, status)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                engagement_id, aid, title, owner.name, owner.email, owner.timezone, due,
                metric.model_dump(mode="json"), assigned_at, ActionStatus.no_data.value,
            )
        case ev.CheckInScheduled(action_id=aid, at=next_at):
            await conn.execute(
                "UPDATE actions SET next_checkin_at = $3 WHERE engagement_id = $1 AND action_id = $2",
                engagement_id, aid, next_at,
            )
        case ev.CheckInRequested(action_id=aid, number=number):
            await conn.execute(
                "UPDATE actions SET checkins_sent = checkins_sent + 1"
                " WHERE engagement_id = $1 AND action_id = $2",
                engagement_id, aid,
            )
            await _checkin_row(conn, engagement_id, seq, at, aid, "requested", number=number)
        case ev.MetricReported(action_id=aid, value=value, note=note, status=status):
            await conn.execute(
                "UPDATE actions SET last_value = $3, status = $4, missed_in_row = 0"
                " WHERE engagement_id = $1 AND action_id = $2",
                engagement_id, aid, value, status.value,
            )
            await _checkin_row(conn, engagement_id, seq, at, aid, "reported", value=value, note=note,
                               status=status.value)
        case ev.CheckInMissed(action_id=aid, number=number, missed_in_row=missed):
            await conn.execute(
                "UPDATE actions SET missed_in_row = $3 WHERE engagement_id = $1 AND action_id = $2",
                engagement_id, aid, missed,
            )
            await _checkin_row(conn, engagement_id, seq, at, aid, "missed", number=number)
        case ev.ActionEscalated(action_id=aid):
            await conn.execute(
                "UPDATE actions SET escalations = escalations + 1 WHERE engagement_id = $1 AND action_id = $2",
                engagement_id, aid,
            )
            await _checkin_row(conn, engagement_id, seq, at, aid, "escalated")
        case ev.ActionSnoozed(action_id=aid, next_checkin_at=next_at):
            await conn.execute(
                "UPDATE actions SET next_checkin_at = $3 WHERE engagement_id = $1 AND action_id = $2",
                engagement_id, aid, next_at,
            )
            await _checkin_row(conn, engagement_id, seq, at, aid, "snoozed")
        case ev.ActionClosed(action_id=aid, status=status, reason=reason):
            await conn.execute(
                "UPDATE actions SET status = $3, closed_reason = $4, next_checkin_at = NULL"
                " WHERE engagement_id = $1 AND action_id = $2",
                engagement_id, aid, status.value, reason,
            )
        case ev.EngagementCancelled(reason=reason):
            await conn.execute(
                "UPDATE engagements SET phase = $2, cancel_reason = $3 WHERE engagement_id = $1",
                engagement_id, ev.Phase.cancelled.value, reason,
            )
            await conn.execute(
                "UPDATE actions SET next_checkin_at = NULL WHERE engagement_id = $1", engagement_id
            )
        case ev.EngagementClosed():
            await conn.execute("UPDATE engagements SET phase = $2 WHERE engagement_id = $1",
                               engagement_id, ev.Phase.closed.value)


async def rebuild_projections(pool: asyncpg.Pool) -> int:
    """Recompute every read model from the log; returns the number of events replayed."""
    count = 0
    async with pool.acquire() as conn, conn.transaction():
        # Nobody appends while the read models are empty and half rebuilt.
        await conn.execute("LOCK TABLE events IN SHARE MODE")
        await conn.execute(f"TRUNCATE {', '.join(READ_MODELS)}")  # noqa: S608 - fixed table names
        batch: list[tuple[int, datetime, ev.Event]] = []
        current: str | None = None
        async for row in conn.cursor(
            "SELECT engagement_id, seq, payload, occurred_at FROM events ORDER BY engagement_id, seq"
        ):
            if row["engagement_id"] != current:
                if current is not None:
                    await apply_events(conn, current, batch)
                current, batch = row["engagement_id"], []
            batch.append((row["seq"], row["occurred_at"], ev.EVENT_ADAPTER.validate_python(row["payload"])))
            count += 1
        if current is not None:
            await apply_events(conn, current, batch)
    return count
