"""Reads for the CLI, from the read models."""

from __future__ import annotations

import asyncpg

from schemas.events import Phase
from schemas.state import EngagementListItem


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
