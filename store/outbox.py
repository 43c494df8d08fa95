"""The outbox: one row per email (by Message-ID), reserved before sending and finished `sent` after (a once-only
ledger, store/ledger.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import asyncpg

from store.ledger import Executor, Ledger
from store.locks import session_lock

OutboxStatus = Literal["pending", "sent"]

OUTBOX: Ledger[Literal["sent"]] = Ledger(
    reserve_sql=(
        "INSERT INTO outbox (message_id, engagement_id, key, kind, recipients, subject, status, attempts)"
        " VALUES ($1, $2, $3, $4, $5, $6, 'pending', 1)"
        " ON CONFLICT (message_id) DO UPDATE SET attempts = outbox.attempts"
        "   + CASE WHEN outbox.status = 'sent' THEN 0 ELSE 1 END"
        " RETURNING status"
    ),
    finish_sql="UPDATE outbox SET status = $2, sent_at = now() WHERE message_id = $1 AND status <> 'sent'",
    row_sql=(
        "SELECT message_id, engagement_id, key, kind, recipients, subject, status, created_at, sent_at,"
        " attempts FROM outbox WHERE message_id = $1"
    ),
    finished=("sent",),
)


# Two attempts at the same message (a retry racing an attempt that timed out but is still talking to the
# relay) take turns: the second waits, then finds the row sent.
@asynccontextmanager
async def sending(pool: asyncpg.Pool, message_id: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection holding this message's lock for the whole reserve, send, mark_sent sequence."""
    async with session_lock(pool, message_id, 43) as conn:
        yield conn


async def reserve(
    db: Executor,
    *,
    message_id: str,
    engagement_id: str,
    key: str,
    kind: str,
    recipients: list[str],
    subject: str,
) -> OutboxStatus:
    """Record an attempt at sending; returns 'sent' when an earlier attempt already delivered it."""
    return await OUTBOX.reserve(db, message_id, engagement_id, key, kind, recipients, subject)


async def mark_sent(db: Executor, message_id: str) -> None:
    await OUTBOX.finish(db, message_id, "sent")


async def status_of(db: Executor, message_id: str) -> asyncpg.Record | None:
    """The outbox row of a message (status, attempts, sent_at, ...), or None."""
    return await OUTBOX.row(db, message_id)
