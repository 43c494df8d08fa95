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
    from adapters.email import Mailer

    store = StoreActivities(pool)
    notify = NotifyActivities(pool, Mailer(settings, pool))
    calendar = CalendarActivities(CalendarStore(settings))
    return [
        store.append_events,
        notify.send_message,
        calendar.upsert_calendar_entry,
        calendar.remove_calendar_entry,
    ]
