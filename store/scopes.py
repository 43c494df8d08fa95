"""Answer scopes: the server-side half of a signed link or Reply-To token (adapters/tokens.py)."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg

from schemas.answers import AnswerScope

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection


async def save(db: Executor, scope_id: bytes, scope: AnswerScope) -> None:
    """Idempotent: a retried send writes the same row again, or nothing."""
    await db.execute(
        "INSERT INTO answer_scopes (scope_id, engagement_id, action_id, preread_id, number, recipient, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (scope_id) DO NOTHING",
        scope_id, scope.engagement_id, scope.action_id, scope.preread_id, scope.number, scope.recipient,
        scope.expires_at,
    )


async def lookup(db: Executor, scope_id: bytes) -> AnswerScope | None:
    row = await db.fetchrow(
        "SELECT engagement_id, action_id, preread_id, number, recipient, expires_at FROM answer_scopes"
        " WHERE scope_id = $1",
        scope_id,
    )
    return AnswerScope(**dict(row)) if row is not None else None
