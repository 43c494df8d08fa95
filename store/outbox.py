"""The outbox: one row per email (by Message-ID), reserved before sending and finished `sent` after (a once-only
ledger, store/ledger.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import asyncpg

from store.ledger import Executor, Ledger
from store.locks import session_lock, wait_for_lock

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


_SENDING, _CONVERSING = 43, 44  # lock spaces (store/locks.py)


# Two attempts at the same message (a retry racing an attempt that timed out but is still talking to the
# relay) take turns: the second waits, then finds the row sent.
@asynccontextmanager
async def sending(pool: asyncpg.Pool, message_id: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection holding this message's lock for the whole reserve, send, mark_sent sequence.

    It also waits for a conversation about this message still going on in a mail sender process whose worker
    died (`conversing`): that conversation ends with the row marked, and this attempt then finds it sent."""
    async with session_lock(pool, message_id, _SENDING) as conn:
        await wait_for_lock(conn, message_id, _CONVERSING)
        yield conn


@asynccontextmanager
async def conversing(pool: asyncpg.Pool, message_id: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection holding this message's conversation lock, for the mail sender process: the SMTP
    conversation and its mark happen inside it, and `sending` waits for it to end."""
    async with session_lock(pool, message_id, _CONVERSING) as conn:
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
