"""The store activity: every state change of a workflow goes to the Postgres log through here."""

from __future__ import annotations

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.clock import finished_at
from schemas.events import AppendBatch, Appended
from store.events import EngagementAlreadyStarted, EventWriter

log = structlog.get_logger(__name__)


class StoreActivities:
    def __init__(self, writer: EventWriter) -> None:
        self.writer = writer

    @activity.defn(name="append_events")
    async def append_events(self, batch: AppendBatch) -> Appended:
        try:
            seqs = await self.writer.append(batch.engagement_id, batch.events)
        except EngagementAlreadyStarted as exc:
            # A reused id: no retry can make the log take a second start.
            raise ApplicationError(str(exc), type="EngagementAlreadyStarted", non_retryable=True) from exc
        log.debug("events appended", engagement_id=batch.engagement_id, count=len(seqs),
                  workflow_id=activity.info().workflow_id)
        return Appended(seqs=seqs, at=finished_at())
