"""The store activity: every state change of a workflow goes to the Postgres log through here."""

from __future__ import annotations

import asyncpg
import structlog
from temporalio import activity

from schemas.events import AppendBatch
from store import events

log = structlog.get_logger(__name__)


class StoreActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @activity.defn(name="append_events")
    async def append_events(self, batch: AppendBatch) -> list[int]:
        seqs = await events.append(self.pool, batch.engagement_id, batch.events)
        log.debug("events appended", engagement_id=batch.engagement_id, count=len(seqs),
                  workflow_id=activity.info().workflow_id)
        return seqs
