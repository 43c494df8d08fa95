"""The answer ledger: one row per answer (a reply by SMTP or IMAP by its Message-ID, a check-in page submit by
its form id), reserved before the workflow update is sent and finished `applied` or `rejected` after it, so an
answer delivered twice is applied once (a once-only ledger, store/ledger.py)."""

from __future__ import annotations

from typing import Literal

import asyncpg

from schemas.messages import OutboundMessage
from store.ledger import Executor, Ledger

InboundStatus = Literal["pending", "applied", "rejected"]
Channel = Literal["smtp", "imap", "page"]

ANSWERS: Ledger[Literal["applied", "rejected"]] = Ledger(
    reserve_sql=(
        "INSERT INTO inbound_replies (message_id, engagement_id, action_id, preread_id, sender, command,"
        " channel, status, attempts)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 1)"
        " ON CONFLICT (message_id) DO UPDATE SET attempts = inbound_replies.attempts"
        "   + CASE WHEN inbound_replies.status = 'pending' THEN 1 ELSE 0 END"
        " RETURNING status"
    ),
    finish_sql=(
        "UPDATE inbound_replies SET status = $2, reason = $3, detail = $4, answer = $5, finished_at = now()"
        " WHERE message_id = $1 AND status = 'pending'"
    ),
    row_sql=(
        "SELECT message_id, engagement_id, action_id, preread_id, sender, command, channel, status, reason,"
        " detail, attempts, received_at, finished_at FROM inbound_replies WHERE message_id = $1"
    ),
    finished=("applied", "rejected"),
)


async def reserve(
    db: Executor,
    *,
    message_id: str,
    engagement_id: str,
    action_id: str | None,
    preread_id: str | None,
    sender: str,
    command: str,
    channel: Channel = "smtp",
) -> InboundStatus:
    """Record an attempt at applying a reply; returns 'applied' or 'rejected' when an earlier attempt
    already finished with it, 'pending' when this attempt should apply it."""
    return await ANSWERS.reserve(db, message_id, engagement_id, action_id, preread_id, sender, command, channel)


async def finish(db: Executor, message_id: str, status: Literal["applied", "rejected"],
                 reason: str | None = None, detail: str | None = None, answer: str | None = None) -> None:
    """Final: what became of the answer, what its sender was told (`detail`), and the answer mail (JSON of an
    OutboundMessage) so a redelivery can send it if the first attempt could not."""
    await ANSWERS.finish(db, message_id, status, reason, detail, answer)


async def answer_of(db: Executor, message_id: str) -> OutboundMessage | None:
    raw = await db.fetchval("SELECT answer FROM inbound_replies WHERE message_id = $1", message_id)
    return OutboundMessage.model_validate_json(raw) if raw else None


async def status_of(db: Executor, message_id: str) -> asyncpg.Record | None:
    """The row of a reply (status, reason, attempts, ...), or None when it never passed the checks."""
    return await ANSWERS.row(db, message_id)
