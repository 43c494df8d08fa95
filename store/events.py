"""Append to the event log (idempotent, gap-free per engagement) and read it back."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

import asyncpg
import structlog

from schemas.events import EVENT_ADAPTER, NewEvent, StoredEvent
from store.projections import apply_events

log = structlog.get_logger(__name__)

# One writer per engagement at a time: sequence numbers stay gap-free, and two retries of the same batch
# racing each other see each other's rows instead of both inserting. A group takes its engagements' locks in
# one order, so two groups sharing engagements wait for each other instead of deadlocking.
_LOCK_SQL = (
    "SELECT pg_advisory_xact_lock(hashtextextended(id, 42))"
    " FROM (SELECT DISTINCT unnest($1::text[]) AS id ORDER BY 1) AS ids"
)
# In one round trip: the keys already stored (a retry), and each engagement's last sequence number (key NULL).
_KNOWN_SQL = (
    "SELECT e.engagement_id, e.key, e.seq FROM events AS e"
    " JOIN unnest($1::text[], $2::text[]) AS k(engagement_id, key)"
    "   ON e.engagement_id = k.engagement_id AND e.key = k.key"
    " UNION ALL SELECT id, NULL, (SELECT coalesce(max(seq), 0) FROM events WHERE engagement_id = id)"
    " FROM unnest($3::text[]) AS id"
)
# All of a group's rows in one statement (one executor start instead of one per row).
_INSERT_SQL = (
    "INSERT INTO events (engagement_id, seq, key, type, payload, occurred_at)"
    " SELECT engagement_id, seq, key, type, payload::jsonb, occurred_at"
    " FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])"
    "   AS r(engagement_id, seq, key, type, payload, occurred_at)"
)

Batch = tuple[str, list[NewEvent]]

# The partial unique index of migration 0005: one `engagement_started` per log.
ONE_START_INDEX = "events_one_engagement_started"


class EngagementAlreadyStarted(ValueError):
    """A second `engagement_started` under a new key: the id belongs to an earlier engagement, and ids are used
    once. (The same key again is a retry, and a no-op.)"""

    def __init__(self, engagement_ids: list[str]) -> None:
        self.engagement_ids = engagement_ids
        named = ", ".join(repr(e) for e in engagement_ids) or "one of this batch's engagements"
        super().__init__(f"engagement {named} already has an engagement_started event in the log: an engagement "
                         f"id is used once, for good; start the new engagement under another id")


async def append(pool: asyncpg.Pool, engagement_id: str, events: list[NewEvent]) -> list[int]:
    """Append a batch in its own transaction; returns the sequence number of each event, in order.

    Keys already in the log are not written again: the same batch appended twice (or by two concurrent
    retries) is stored once, and both calls return the same numbers.
    """
    if not events:
        return []
    async with pool.acquire() as conn, conn.transaction():
        return (await _write(conn, [(engagement_id, events)]))[0]


async def _write(conn: asyncpg.Connection, batches: list[Batch]) -> list[list[int]]:
    """Write batches (of one or many engagements) in the caller's transaction, with their projections."""
    engagement_ids = list(dict.fromkeys(eid for eid, _ in batches))
    await conn.execute(_LOCK_SQL, engagement_ids)
    pairs = [(eid, e.key) for eid, events in batches for e in events]
    rows = await conn.fetch(_KNOWN_SQL, [eid for eid, _ in pairs], [key for _, key in pairs], engagement_ids)
    seq_of: dict[tuple[str, str], int] = {}
    last: dict[str, int] = {}
    for row in rows:
        if row["key"] is None:
            last[row["engagement_id"]] = row["seq"]
        else:
            seq_of[(row["engagement_id"], row["key"])] = row["seq"]
    fresh: dict[str, list[tuple[int, NewEvent]]] = {}
    for eid, events in batches:
        for event in events:
            if (eid, event.key) in seq_of:
                continue
            last[eid] += 1
            seq_of[(eid, event.key)] = last[eid]
            fresh.setdefault(eid, []).append((last[eid], event))
    if fresh:
        rows = [(eid, seq, e.key, e.event.type, e.event.model_dump_json(), e.occurred_at)
                for eid, written in fresh.items() for seq, e in written]
        try:
            await conn.execute(_INSERT_SQL, *(list(column) for column in zip(*rows, strict=True)))
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != ONE_START_INDEX:
                raise
            raise EngagementAlreadyStarted(
                [eid for eid, written in fresh.items()
                 if any(e.event.type == "engagement_started" for _, e in written)]) from exc
        await apply_events(conn, {eid: [(seq, e.occurred_at, e.event) for seq, e in written]
                                  for eid, written in fresh.items()})
    return [[seq_of[(eid, e.key)] for e in events] for eid, events in batches]


@dataclass
class _Pending:
    batch: Batch
    done: asyncio.Future[list[int]]


class EventWriter:
    """Group commit: appends that arrive while a transaction is being written go together into the next one.

    Under load (many activities appending at once) one transaction carries many batches, and its statements
    are pipelined, so the cost of a commit and of a round trip is shared. Alone, an append is written at once.
    A group that fails (one bad batch, a lost connection) is retried batch by batch, so one bad batch fails
    only its own caller.
    """

    def __init__(self, pool: asyncpg.Pool, *, max_events: int = 2000, flushers: int = 2) -> None:
        self._pool = pool
        self._max_events = max_events
        self._queue: deque[_Pending] = deque()
        # Two transactions in flight: one is prepared in Python while the other is in Postgres.
        self._flushers: set[asyncio.Task[None]] = set()
        self._max_flushers = flushers
        self.commits = 0  # transactions written, for the benchmark's batches-per-commit figure

    async def append(self, engagement_id: str, events: list[NewEvent]) -> list[int]:
        """Like `append`: the sequence number of each event, once the batch is committed."""
        if not events:
            return []
        pending = _Pending((engagement_id, events), asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        if len(self._flushers) < self._max_flushers:
            task = asyncio.create_task(self._flush())
            self._flushers.add(task)
            task.add_done_callback(self._flushers.discard)
        return await pending.done

    def _next_group(self) -> list[_Pending]:
        group: list[_Pending] = []
        size = 0
        while self._queue and (not group or size + len(self._queue[0].batch[1]) <= self._max_events):
            pending = self._queue.popleft()
            size += len(pending.batch[1])
            group.append(pending)
        return group

    async def _flush(self) -> None:
        while self._queue:
            group = self._next_group()
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    results = await _write(conn, [p.batch for p in group])
                self.commits += 1
            except Exception as exc:  # noqa: BLE001 - handed to the callers, one by one
                if len(group) == 1:
                    _settle(group[0], exc)
                    continue
                log.warning("group append failed, writing its batches one by one", batches=len(group),
                            error=f"{type(exc).__name__}: {exc}")
                for pending in group:
                    try:
                        _settle(pending, await append(self._pool, *pending.batch))
                    except Exception as one:  # noqa: BLE001
                        _settle(pending, one)
                continue
            for pending, seqs in zip(group, results, strict=True):
                _settle(pending, seqs)


def _settle(pending: _Pending, outcome: list[int] | BaseException) -> None:
    if pending.done.done():
        return  # the caller was cancelled; the batch is written all the same, and a retry finds its keys
    if isinstance(outcome, BaseException):
        pending.done.set_exception(outcome)
    else:
        pending.done.set_result(outcome)


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
