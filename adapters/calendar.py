"""The engagement's calendar on a CalDAV server: one calendar per engagement, one event per UID.

The event's resource name is derived from its UID, so storing an entry again replaces it (a reschedule, a
retried activity) and removing it twice is harmless. caldav's client is synchronous: calls run in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import re
import threading
from collections import OrderedDict
from collections.abc import Coroutine
from typing import Any, TypeVar, cast
from urllib.parse import quote

import structlog
from caldav.calendarobjectresource import Event
from caldav.collection import Calendar, Principal
from caldav.davclient import DAVClient
from caldav.elements import dav
from caldav.lib import error

from adapters.ics import build_ics, mail_domain, sender_address
from schemas.messages import CalendarEntry
from schemas.settings import Settings

log = structlog.get_logger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
T = TypeVar("T")
# Calendars kept found, the most recently used: an engagement's calendar work comes in short runs (invitations,
# due dates, a cancel), and a worker that kept every calendar it had found grew by the engagement, for good.
CALENDARS_KEPT = 128


def _sync(value: T | Coroutine[Any, Any, T]) -> T:
    # caldav's hints cover its async client too; the sync DAVClient never hands back a coroutine.
    if inspect.iscoroutine(value):
        value.close()
        raise TypeError("caldav returned a coroutine from the synchronous client")
    return cast(T, value)


def resource_name(uid: str) -> str:
    """A URL-safe, deterministic file name for an event: readable, and unique through a digest of the UID."""
    readable = "-".join(p for p in _UNSAFE.split(uid) if p)[:60] or "event"
    return f"{readable}-{hashlib.sha256(uid.encode('utf-8')).hexdigest()[:16]}.ics"


def calendar_id(engagement_id: str) -> str:
    return quote(engagement_id, safe="-_.")


class CalendarStore:
    def __init__(self, settings: Settings, timeout: int = 30) -> None:
        self.settings = settings
        self.timeout = timeout
        self._client: DAVClient | None = None
        self._principal: Principal | None = None
        self._calendars: OrderedDict[str, Calendar] = OrderedDict()  # at most CALENDARS_KEPT, least recent first
        # The HTTP session underneath is not meant for concurrent use from several threads.
        self._lock = threading.Lock()

    # -- async API ------------------------------------------------------------------------------------------

    async def upsert(self, engagement_id: str, entry: CalendarEntry) -> None:
        """Store the entry as the event with its UID, replacing an earlier version."""
        await asyncio.to_thread(self._upsert, engagement_id, entry)

    async def remove(self, engagement_id: str, uid: str) -> None:
        """Delete the event; an event (or calendar) that is not there is already removed."""
        await asyncio.to_thread(self._remove, engagement_id, uid)

    async def get(self, engagement_id: str, uid: str) -> bytes | None:
        """The stored ICS of the event, or None."""
        return await asyncio.to_thread(self._get, engagement_id, uid)

    async def list_uids(self, engagement_id: str) -> list[str]:
        """The UIDs of every event in the engagement's calendar, as the workflow names them (without the
        `@domain` the ICS UID carries)."""
        return await asyncio.to_thread(self._list_uids, engagement_id)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client, self._principal = None, None
            self._calendars.clear()

    # -- sync internals (run in a worker thread, one at a time) ---------------------------------------------

    def _dav(self) -> DAVClient:
        if self._client is None:
            self._client = DAVClient(
                url=self.settings.caldav_url,
                username=self.settings.caldav_user,
                password=self.settings.caldav_password.get_secret_value(),
                # Send credentials up front rather than after a 401; no DNS discovery for an explicit URL.
                auth_type="basic",
                enable_rfc6764=False,
                timeout=self.timeout,
            )
        return self._client

    def _principal_of(self) -> Principal:
        if self._principal is None:
            self._principal = self._dav().principal()
        return self._principal

    def _find_calendar(self, engagement_id: str) -> Calendar | None:
        """The engagement's calendar, or None when the server has none. Asked by its own URL (one PROPFIND of
        that collection alone), not by listing every calendar: the list grows with the engagements."""
        if engagement_id in self._calendars:
            self._calendars.move_to_end(engagement_id)
            return self._calendars[engagement_id]
        cal = _sync(self._principal_of().calendar(cal_id=calendar_id(engagement_id)))
        try:
            cal.get_properties([dav.ResourceType()])
        except error.NotFoundError:
            return None
        self._keep(engagement_id, cal)
        return cal

    def _keep(self, engagement_id: str, cal: Calendar) -> None:
        self._calendars[engagement_id] = cal
        self._calendars.move_to_end(engagement_id)
        while len(self._calendars) > CALENDARS_KEPT:
            self._calendars.popitem(last=False)

    def _calendar(self, engagement_id: str) -> Calendar:
        found = self._find_calendar(engagement_id)
        if found is not None:
            return found
        try:
            cal = _sync(self._principal_of().make_calendar(name=engagement_id, cal_id=calendar_id(engagement_id)))
        except error.DAVError:
            # Another worker created it between our look and our MKCALENDAR.
            found = self._find_calendar(engagement_id)
            if found is None:
                raise
            return found
        log.info("calendar created", engagement_id=engagement_id, url=str(cal.url))
        self._keep(engagement_id, cal)
        return cal

    def _event(self, cal: Calendar, uid: str) -> Event:
        assert cal.url is not None
        return Event(client=self._dav(), url=cal.url.join(resource_name(uid)), parent=cal)

    def _upsert(self, engagement_id: str, entry: CalendarEntry) -> None:
        # No METHOD, and SCHEDULE-AGENT=CLIENT on every ORGANIZER and ATTENDEE: engage mails the invitations
        # itself, so a server that schedules on its own (RFC 6638: Nextcloud, iCloud) must send none.
        ics = build_ics(entry, method=False, stored=True, domain=mail_domain(self.settings.mail_from),
                        organizer_address=sender_address(self.settings.mail_from))
        with self._lock:
            # raw_data: stored as built (no SEQUENCE bump by the library, which would break the
            # SEQUENCE the attendees' invitations carry).
            try:
                self._event(self._calendar(engagement_id), entry.uid).save(raw_data=ics)
            except error.DAVError:
                if engagement_id not in self._calendars:
                    raise
                # The cached calendar may have been deleted on the server: look again, once.
                del self._calendars[engagement_id]
                self._event(self._calendar(engagement_id), entry.uid).save(raw_data=ics)

    def _remove(self, engagement_id: str, uid: str) -> None:
        with self._lock:
            cal = self._find_calendar(engagement_id)
            if cal is None:
                return
            try:
                self._event(cal, uid).delete()
            except error.NotFoundError:
                pass

    def _get(self, engagement_id: str, uid: str) -> bytes | None:
        with self._lock:
            cal = self._find_calendar(engagement_id)
            if cal is None:
                return None
            try:
                event = _sync(self._event(cal, uid).load(multiget_fallback=False))
            except error.NotFoundError:
                return None
            data = event.data
            return data.encode("utf-8") if isinstance(data, str) else data

    def _list_uids(self, engagement_id: str) -> list[str]:
        with self._lock:
            cal = self._find_calendar(engagement_id)
            if cal is None:
                return []
            suffix = "@" + mail_domain(self.settings.mail_from)
            return sorted(str(e.id).removesuffix(suffix) for e in _sync(cal.events()))
