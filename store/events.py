"""Append to the event log (idempotent, gap-free per engagement) and read it back."""

from __future__ import annotations

import asyncpg

from schemas.events import EVENT_ADAPTER, NewEvent, StoredEvent
from store.projections import apply_events

# One writer per engagement at a time: sequence numbers stay gap-free, and two retries of the same batch
# racing each other see each other's rows instead of both inserting.
_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended($1, 42))"


async def append(pool: asyncpg.Pool, engagement_id: str, events: list[NewEvent]) -> list[int]:
    """Append a batch; returns the sequence number of each event, in order.

    Keys already in the log are not written again: the same batch appended twice (or by two concurrent
    retries) is stored once, and both calls return the same numbers.
    """
    if not events:
        return []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_LOCK_SQL, engagement_id)
        keys = [e.key for e in events]
        # One round trip for both: the keys already stored (a retry) and the last sequence number (key NULL).
        rows = await conn.fetch(
            "SELECT key, seq FROM events WHERE engagement_id = $1 AND key = ANY($2::text[])"
            " UNION ALL SELECT NULL, coalesce(max(seq), 0) FROM events WHERE engagement_id = $1",
            engagement_id,
            keys,
        )
        seq_of: dict[str, int] = {r["key"]: r["seq"] for r in rows if r["key"] is not None}
        last = next(r["seq"] for r in rows if r["key"] is None)
        fresh: list[tuple[int, NewEvent]] = []
        for event in events:
            if event.key in seq_of:
                continue
            last += 1
            seq_of[event.key] = last
            fresh.append((last, event))
        if fresh:
            await conn.executemany(
                "INSERT INTO events (engagement_id, seq, key, type, payload, occurred_at)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                [
                    (engagement_id, seq, e.key, e.event.type, e.event.model_dump(mode="json"), e.occurred_at)
                    for seq, e in fresh
                ],
            )
            await apply_events(conn, engagement_id, [(seq, e.occurred_at, e.event) for seq, e in fresh])
        return [seq_of[k] for k in keys]


def _stored(row: asyncpg.Record) -> StoredEvent:
    return StoredEvent(
        engagement_id=row["engagement_id"],
        seq=row["seq"],
        key=row["key"],
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        event=EVENT_ADAPTER.validate_python(row["payload"]),
    )


async def read_log(pool: asyncpg.Pool | asyncpg.Connection, engagement_id: str) -> list[StoredEvent]:
    rows = await pool.fetch(
        "SELECT engagement_id, seq, key, payload, occurred_at, recorded_at FROM events"
        " WHERE engagement_id = $1 ORDER BY seq",
        engagement_id,
    )
    return [_stored(r) for r in rows]
