"""Thin activities: notify (SMTP), calendar (CalDAV), store (Postgres). The workflows decide; these act."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

from schemas.settings import Settings


def build_activities(settings: Settings, pool: asyncpg.Pool) -> list[Callable[..., Any]]:
    from activities.calendar import CalendarActivities
    from activities.notify import NotifyActivities
    from activities.store import StoreActivities
    from adapters.calendar import CalendarStore
    from adapters.email.send import Mailer
    from store.events import EventWriter

    # One writer per worker: appends from all its activities share group commits.
    writer = EventWriter(pool)
    store = StoreActivities(writer)
    notify = NotifyActivities(writer, Mailer(settings, pool))
    calendar = CalendarActivities(CalendarStore(settings))
    return [
        store.append_events,
        notify.send_message,
        notify.send_messages,
        calendar.upsert_calendar_entry,
        calendar.remove_calendar_entry,
    ]
