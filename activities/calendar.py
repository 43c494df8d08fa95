"""The calendar activities: the session and each action's due date on the CalDAV server, by UID."""

from __future__ import annotations

import structlog
from temporalio import activity

from adapters.calendar import CalendarStore
from schemas.messages import CalendarRemoval, CalendarUpsert

log = structlog.get_logger(__name__)


class CalendarActivities:
    def __init__(self, calendar: CalendarStore) -> None:
        self.calendar = calendar

    @activity.defn(name="upsert_calendar_entry")
    async def upsert_calendar_entry(self, request: CalendarUpsert) -> None:
        await self.calendar.upsert(request.engagement_id, request.entry)
        log.info("calendar entry stored", engagement_id=request.engagement_id, uid=request.entry.uid,
                 sequence=request.entry.sequence)

    @activity.defn(name="remove_calendar_entry")
    async def remove_calendar_entry(self, request: CalendarRemoval) -> None:
        await self.calendar.remove(request.engagement_id, request.uid)
        log.info("calendar entry removed", engagement_id=request.engagement_id, uid=request.uid)
