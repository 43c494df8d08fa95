"""Read models as projections of the event log.

`statements` says, for one event, which read-model rows change; `apply_events` runs them in the transaction of
the append, so a read model never lags its log, and `rebuild_projections` replays the whole log through the
same function, so a rebuild equals the live tables.

The statements of many engagements are independent of each other, and only their order within one engagement
matters: `apply_events` sends them in rounds, one pipelined `executemany` per SQL text, instead of one round
trip per statement. A group commit of 50 engagements' batches takes a handful of round trips, not hundreds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from schemas import events as ev
from schemas.status import ActionStatus

READ_MODELS = ("checkins", "outbound_messages", "preread_acks", "prereads", "actions", "participants",
               "engagements")

Statement = tuple[str, tuple[Any, ...]]
# (seq, occurred_at, event) of one engagement, in log order.
Projected = tuple[int, datetime, ev.Event]


def _stmt(sql: str, *args: Any) -> Statement:
    return sql, args


def _each(sql: str, rows: Sequence[tuple[Any, ...]]) -> Iterator[Statement]:
    for row in rows:
        yield sql, row


# Once per batch, for all of a group's engagements in one statement: the aggregates over each engagement's
# actions, and where its log has got to.
_REFRESH_SQL = (
    "UPDATE engagements AS e SET"
    " next_checkin_at = (SELECT min(a.next_checkin_at) FROM actions AS a"
    "   WHERE a.engagement_id = e.engagement_id AND a.closed_reason IS NULL),"
    " actions_at_risk = (SELECT count(*) FROM actions AS a"
    "   WHERE a.engagement_id = e.engagement_id AND a.status = $4),"
    " updated_at = r.at, last_seq = r.last_seq"
    " FROM unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS r(engagement_id, last_seq, at)"
    " WHERE e.engagement_id = r.engagement_id"
)


async def apply_events(conn: asyncpg.Connection, batches: dict[str, list[Projected]]) -> None:
    """Project batches of events, each engagement's in its log order (the live path and the rebuild share it)."""
    queues = [deque(s for seq, at, event in events for s in statements(eid, seq, at, event))
              for eid, events in batches.items()]
    queues = [q for q in queues if q]
    while queues:
        # The SQL text at the head of most queues goes next, with every queue's leading run of it.
        heads: dict[str, int] = {}
        for queue in queues:
            heads[queue[0][0]] = heads.get(queue[0][0], 0) + 1
        sql = max(heads, key=heads.__getitem__)
        args: list[tuple[Any, ...]] = []
        for queue in queues:
            while queue and queue[0][0] == sql:
                args.append(queue.popleft()[1])
        await conn.executemany(sql, args)
        queues = [q for q in queues if q]
    last = [(eid, *events[-1][:2]) for eid, events in batches.items() if events]
    if last:
        await conn.execute(_REFRESH_SQL, [r[0] for r in last], [r[1] for r in last], [r[2] for r in last],
                           ActionStatus.at_risk.value)


def _checkin_row(engagement_id: str, seq: int, at: datetime, action_id: str, kind: str,
                 number: int | None = None, value: float | None = None, note: str | None = None,
                 status: str | None = None) -> Statement:
    return _stmt(
        "INSERT INTO checkins (engagement_id, action_id, seq, kind, number, value, note, status, at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        engagement_id, action_id, seq, kind, number, value, note, status, at,
    )


def statements(engagement_id: str, seq: int, at: datetime, event: ev.Event) -> Iterator[Statement]:
    """The read-model writes of one event, in order."""
    match event:
        case ev.EngagementStarted(scoping=s, recommendation=r):
            yield _stmt(
                "INSERT INTO engagements (engagement_id, client, timezone, consultant_email, sponsor_email,"
                " phase, recommended, started_at, updated_at, last_seq)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
                engagement_id, s.client, s.timezone, s.consultant.email, s.sponsor.email,
                ev.Phase.scoping.value, r.format.value, at, seq,
            )
            yield from _each(
                "INSERT INTO participants (engagement_id, email, name, role, timezone)"
                " VALUES ($1, $2, $3, $4, $5)",
                [(engagement_id, p.email, p.name, p.role.value, p.timezone) for p in s.participants],
            )
        case ev.PhaseEntered(phase=phase):
            yield _stmt("UPDATE engagements SET phase = $2 WHERE engagement_id = $1",
                        engagement_id, phase.value)
        case ev.FormatChosen(format=fmt):
            yield _stmt("UPDATE engagements SET format = $2 WHERE engagement_id = $1",
                        engagement_id, fmt.value)
        case ev.SessionScheduled(starts_at=starts, ends_at=ends, sequence=sequence):
            yield _stmt(
                "UPDATE engagements SET session_starts_at = $2, session_ends_at = $3, session_sequence = $4"
                " WHERE engagement_id = $1",
                engagement_id, starts, ends, sequence,
            )
        case ev.PrereadAdded(preread_id=pid, title=title, url=url, days_before=days):
            yield _stmt(
                "INSERT INTO prereads (engagement_id, preread_id, title, url, days_before, added_at)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                engagement_id, pid, title, url, days, at,
            )
        case ev.PrereadAcknowledged(preread_id=pid, email=email):
            yield _stmt(
                "INSERT INTO preread_acks (engagement_id, preread_id, email, acknowledged_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                engagement_id, pid, email, at,
            )
        case ev.MessageSent(message_id=mid, kind=kind, recipients=to, subject=subject, action_id=aid):
            yield _stmt(
                "INSERT INTO outbound_messages (engagement_id, message_id, kind, recipients, subject,"
                " action_id, sent_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                engagement_id, mid, kind.value, to, subject, aid, at,
            )
        case ev.OutcomesRecorded():
            pass  # the outcomes live in the log; actions get their rows from action_assigned
        case ev.ActionAssigned(action_id=aid, title=title, owner=owner, due=due, metric=metric,
                               assigned_at=assigned_at):
            yield _stmt(
                "INSERT INTO actions (engagement_id, action_id, title, owner_name, owner_email,"
                " owner_timezone, due, metric, assigned_at, status)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                engagement_id, aid, title, owner.name, owner.email, owner.timezone, due,
                metric.model_dump(mode="json"), assigned_at, ActionStatus.no_data.value,
            )
        case ev.CheckInScheduled(action_id=aid, at=next_at):
            yield _stmt(
                "UPDATE actions SET next_checkin_at = $3 WHERE engagement_id = $1 AND action_id = $2",
                engagement_id, aid, next_at,
            )
        case ev.CheckInRequested(action_id=aid, number=number):
            yield _stmt(
                "UPDATE actions SET checkins_sent = checkins_sent + 1"
                " WHERE engagement_id = $1 AND action_id = $2",
                engagement_id, aid,
            )
            yield _checkin_row(engagement_id, seq, at, aid, "requested", number=number)
        case ev.MetricReported(action_id=aid, value=value, note=note, status=status):
            yield _stmt(
                "UPDATE actions SET last_value = $3, status = $4, missed_in_row = 0"
                " WHERE engagement_id = $1 AND action_id = $2",
                engagement_id, aid, value, status.value,
            )
            yield _checkin_row(engagement_id, seq, at, aid, "reported", value=value, note=note,
                               status=status.value)
        case ev.CheckInMissed(action_id=aid, number=number, missed_in_row=missed):
            yield _stmt(
                "UPDATE actions SET missed_in_row = $3 WHERE engagement_id = $1 AND action_id = $2",
                engagement_id, aid, missed,
            )
            yield _checkin_row(engagement_id, seq, at, aid, "missed", number=number)
        case ev.ActionEscalated(action_id=aid):
            yield _stmt(
                "UPDATE actions SET escalations = escalations + 1 WHERE engagement_id = $1 AND action_id = $2",
                engagement_id, aid,
            )
            yield _checkin_row(engagement_id, seq, at, aid, "escalated")
        case ev.ActionSnoozed(action_id=aid, next_checkin_at=next_at):
            yield _stmt(
                "UPDATE actions SET next_checkin_at = $3 WHERE engagement_id = $1 AND action_id = $2",
                engagement_id, aid, next_at,
            )
            yield _checkin_row(engagement_id, seq, at, aid, "snoozed")
        case ev.ActionClosed(action_id=aid, status=status, reason=reason):
            yield _stmt(
                "UPDATE actions SET status = $3, closed_reason = $4, next_checkin_at = NULL"
                " WHERE engagement_id = $1 AND action_id = $2",
                engagement_id, aid, status.value, reason,
            )
        case ev.EngagementCancelled(reason=reason):
            yield _stmt(
                "UPDATE engagements SET phase = $2, cancel_reason = $3 WHERE engagement_id = $1",
                engagement_id, ev.Phase.cancelled.value, reason,
            )
            yield _stmt(
                "UPDATE actions SET next_checkin_at = NULL WHERE engagement_id = $1", engagement_id
            )
        case ev.EngagementClosed():
            yield _stmt("UPDATE engagements SET phase = $2 WHERE engagement_id = $1",
                        engagement_id, ev.Phase.closed.value)



async def rebuild_projections(pool: asyncpg.Pool, chunk: int = 200) -> int:
    """Recompute every read model from the log; returns the number of events replayed."""
    count = 0
    async with pool.acquire() as conn, conn.transaction():
        # Nobody appends while the read models are empty and half rebuilt.
        await conn.execute("LOCK TABLE events IN SHARE MODE")
        await conn.execute(f"TRUNCATE {', '.join(READ_MODELS)}")  # noqa: S608 - fixed table names
        batches: dict[str, list[Projected]] = {}
        async for row in conn.cursor(
            "SELECT engagement_id, seq, payload, occurred_at FROM events ORDER BY engagement_id, seq"
        ):
            engagement_id = row["engagement_id"]
            if engagement_id not in batches and len(batches) >= chunk:
                await apply_events(conn, batches)
                batches = {}
            batches.setdefault(engagement_id, []).append(
                (row["seq"], row["occurred_at"], ev.EVENT_ADAPTER.validate_python(row["payload"])))
            count += 1
        await apply_events(conn, batches)
    return count
