"""Inbound replies: one row per reply (by its Message-ID), written before the workflow update is sent and
marked applied or rejected after it, so a reply delivered twice is applied once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal, TypeAlias

import asyncpg

from store.locks import session_lock

InboundStatus = Literal["pending", "applied", "rejected"]
Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection

# Two deliveries of one reply at the same time (a relay retrying while the first attempt still talks to
# Temporal) take turns: the second waits, then finds the row final.
@asynccontextmanager
async def handling(pool: asyncpg.Pool, message_id: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection holding this reply's lock for the whole reserve, apply, finish sequence."""
    async with session_lock(pool, message_id, 44) as conn:
        yield conn


async def reserve(
    db: Executor,
    *,
    message_id: str,
    engagement_id: str,
    action_id: str | None,
    preread_id: str | None,
    sender: str,
    command: str,
) -> InboundStatus:
    """Record an attempt at applying a reply; returns 'applied' or 'rejected' when an earlier attempt
    already finished with it, 'pending' when this attempt should apply it."""
    status = await db.fetchval(
        "INSERT INTO inbound_replies (message_id, engagement_id, action_id, preread_id, sender, command,"
        " status, attempts)"
        " VALUES ($1, $2, $3, $4, $5, $6, 'pending', 1)"
        " ON CONFLICT (message_id) DO UPDATE SET attempts = inbound_replies.attempts"
        "   + CASE WHEN inbound_replies.status = 'pending' THEN 1 ELSE 0 END"
        " RETURNING status",
        message_id,
        engagement_id,
        action_id,
        preread_id,
        sender,
        command,
    )
    return status if status in ("applied", "rejected") else "pending"


async def finish(db: Executor, message_id: str, status: Literal["applied", "rejected"],
                 reason: str | None = None) -> None:
    await db.execute(
        "UPDATE inbound_replies SET status = $2, reason = $3, finished_at = now()"
        " WHERE message_id = $1 AND status = 'pending'",
        message_id,
        status,
        reason,
    )


async def status_of(db: Executor, message_id: str) -> asyncpg.Record | None:
    """The row of a reply (status, reason, attempts, ...), or None when it never passed the checks."""
    return await db.fetchrow(
        "SELECT message_id, engagement_id, action_id, preread_id, sender, command, status, reason, attempts,"
        " received_at, finished_at FROM inbound_replies WHERE message_id = $1",
        message_id,
    )
