"""The event store on a real Postgres: idempotent appends, gap-free sequences, rebuildable read models."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import yaml

from domain.format import recommend
from schemas import events as ev
from schemas.outcomes import Outcomes
from schemas.scoping import Scoping
from schemas.status import ActionStatus
from store.events import EventWriter, append, read_log
from store.migrate import migrate
from store.projections import READ_MODELS, rebuild_projections
from tests.conftest import unique_id

EXAMPLES = Path(__file__).parent.parent / "examples"
T0 = datetime(2027, 2, 1, 9, tzinfo=UTC)


def scoping(engagement_id: str) -> Scoping:
    data = yaml.safe_load((EXAMPLES / "scoping.yaml").read_text())
    data["id"] = engagement_id
    return Scoping.model_validate(data)


def mixed_events(engagement_id: str) -> list[ev.NewEvent]:
    """A whole engagement's worth of every event type, in a plausible order."""
    s = scoping(engagement_id)
    outcomes = Outcomes.model_validate(yaml.safe_load((EXAMPLES / "outcomes.yaml").read_text()))
    a1, a2 = outcomes.actions
    items: list[tuple[str, ev.Event]] = [
        ("started", ev.EngagementStarted(scoping=s, recommendation=recommend(s))),
        ("phase/format_choice", ev.PhaseEntered(phase=ev.Phase.format_choice)),
        ("format", ev.FormatChosen(format="combined", recommended="combined")),
        ("schedule/0", ev.SessionScheduled(starts_at=T0 + timedelta(days=10), ends_at=T0 + timedelta(days=11),
                                           timezone="Europe/Berlin", days=2, sequence=0)),
        ("schedule/1", ev.SessionScheduled(starts_at=T0 + timedelta(days=12), ends_at=T0 + timedelta(days=13),
                                           timezone="Europe/Berlin", days=2, sequence=1)),
        ("preread/P1", ev.PrereadAdded(preread_id="P1", title="Market memo", url="https://x.example/m",
                                       days_before=7)),
        ("preread/P1/ack/ana", ev.PrereadAcknowledged(preread_id="P1", email="ana@acme.example")),
        ("invitation#sent", ev.MessageSent(message_id="<m1@x>", kind="invitation",
                                           recipients=["ana@acme.example"], subject="Invitation")),
        ("outcomes", ev.OutcomesRecorded(outcomes=outcomes)),
        *[(f"{a.id}/assigned", ev.ActionAssigned(action_id=a.id, title=a.title, owner=a.owner, due=a.due,
                                                 metric=a.metric, assigned_at=T0)) for a in (a1, a2)],
        ("A1/checkin/1/scheduled", ev.CheckInScheduled(action_id="A1", number=1, at=T0 + timedelta(days=14))),
        ("A2/checkin/1/scheduled", ev.CheckInScheduled(action_id="A2", number=1, at=T0 + timedelta(days=15))),
        ("A1/checkin/1/requested", ev.CheckInRequested(action_id="A1", number=1)),
        ("A1/value/1", ev.MetricReported(action_id="A1", value=40, status=ActionStatus.at_risk)),
        ("A2/checkin/1/requested", ev.CheckInRequested(action_id="A2", number=1)),
        ("A2/checkin/1/missed", ev.CheckInMissed(action_id="A2", number=1, missed_in_row=1)),
        ("A2/escalation/1", ev.ActionEscalated(action_id="A2", missed_in_row=1)),
        ("A2/snooze/1", ev.ActionSnoozed(action_id="A2", days=7, next_checkin_at=T0 + timedelta(days=22))),
        ("A1/value/2", ev.MetricReported(action_id="A1", value=210, status=ActionStatus.achieved)),
        ("A1/closed", ev.ActionClosed(action_id="A1", status=ActionStatus.achieved, reason="achieved")),
        ("A2/closed", ev.ActionClosed(action_id="A2", status=ActionStatus.no_data, reason="horizon")),
        ("closed", ev.EngagementClosed()),
    ]
    return [ev.NewEvent(key=f"{engagement_id}/{k}", occurred_at=T0 + timedelta(minutes=i), event=e)
            for i, (k, e) in enumerate(items)]


async def snapshot(pool: asyncpg.Pool) -> dict[str, list[tuple]]:
    tables = {}
    for table in READ_MODELS:
        rows = await pool.fetch(f"SELECT * FROM {table}")  # noqa: S608 - fixed names
        tables[table] = sorted(tuple(str(v) for v in r.values()) for r in rows)
    return tables


async def test_two_concurrent_identical_appends_store_once(pool: asyncpg.Pool) -> None:
    eid = unique_id("conc")
    batch = mixed_events(eid)[:6]
    first, second = await asyncio.gather(append(pool, eid, batch), append(pool, eid, batch))
    assert first == second == [1, 2, 3, 4, 5, 6]
    log = await read_log(pool, eid)
    assert [e.seq for e in log] == [1, 2, 3, 4, 5, 6]
    assert [e.key for e in log] == [e.key for e in batch]
    assert await pool.fetchval("SELECT count(*) FROM participants WHERE engagement_id = $1", eid) == 3


async def test_retry_of_a_partly_stored_batch_appends_only_the_rest(pool: asyncpg.Pool) -> None:
    eid = unique_id("part")
    events = mixed_events(eid)
    assert await append(pool, eid, events[:3]) == [1, 2, 3]
    assert await append(pool, eid, events[:5]) == [1, 2, 3, 4, 5]
    assert [e.seq for e in await read_log(pool, eid)] == [1, 2, 3, 4, 5]


async def test_sequences_stay_gap_free_under_concurrent_writers(pool: asyncpg.Pool) -> None:
    eid = unique_id("gaps")
    await append(pool, eid, mixed_events(eid)[:1])
    sent = [ev.NewEvent(key=f"{eid}/m{i}#sent", occurred_at=T0, event=ev.MessageSent(
        message_id=f"<m{i}@x>", kind="checkin_request", recipients=["ana@acme.example"], subject="s"))
        for i in range(7)]
    # Parent and children of one engagement append at the same time.
    await asyncio.gather(*(append(pool, eid, [e]) for e in sent))
    seqs = [e.seq for e in await read_log(pool, eid)]
    assert seqs == list(range(1, 9))


async def test_read_models_follow_the_log(pool: asyncpg.Pool) -> None:
    eid = unique_id("rm")
    await append(pool, eid, mixed_events(eid))
    eng = await pool.fetchrow("SELECT * FROM engagements WHERE engagement_id = $1", eid)
    assert eng["phase"] == "closed"
    assert eng["format"] == "combined"
    assert eng["session_sequence"] == 1
    assert eng["next_checkin_at"] is None
    a1 = await pool.fetchrow("SELECT * FROM actions WHERE engagement_id = $1 AND action_id = 'A1'", eid)
    assert (a1["status"], a1["last_value"], a1["closed_reason"]) == ("achieved", 210, "achieved")
    a2 = await pool.fetchrow("SELECT * FROM actions WHERE engagement_id = $1 AND action_id = 'A2'", eid)
    assert (a2["missed_in_row"], a2["escalations"], a2["checkins_sent"]) == (1, 1, 1)
    kinds = [r["kind"] for r in await pool.fetch(
        "SELECT kind FROM checkins WHERE engagement_id = $1 ORDER BY seq", eid)]
    assert kinds == ["requested", "reported", "requested", "missed", "escalated", "snoozed", "reported"]
    acks = await pool.fetchval("SELECT count(*) FROM preread_acks WHERE engagement_id = $1", eid)
    assert acks == 1


async def test_rebuild_equals_live_read_models(pool: asyncpg.Pool) -> None:
    for _ in range(2):
        eid = unique_id("rb")
        events = mixed_events(eid)
        await append(pool, eid, events[:9])
        await append(pool, eid, events[9:])
    half = unique_id("rb-half")
    await append(pool, half, mixed_events(half)[:14])
    live = await snapshot(pool)
    assert live["engagements"], "the read models should not be empty"
    replayed = await rebuild_projections(pool)
    assert replayed >= 2 * len(events) + 14
    assert await snapshot(pool) == live


async def test_group_commit_writes_many_engagements_together_and_equals_one_by_one(pool: asyncpg.Pool) -> None:
    """Concurrent appends of many engagements share transactions, and the log and read models are the same
    as when each batch is written on its own."""
    writer = EventWriter(pool)
    grouped = [unique_id("gc") for _ in range(8)]
    alone = [unique_id("gc-alone") for _ in range(8)]

    async def replay(eid: str, appender: object) -> list[list[int]]:
        events = mixed_events(eid)
        batches = [events[:2], events[2:9], events[9:14], events[14:18], events[18:]]
        return [await appender(eid, b) for b in batches]  # type: ignore[operator]

    seqs = await asyncio.gather(*(replay(eid, writer.append) for eid in grouped))
    await asyncio.gather(*(replay(eid, lambda e, b: append(pool, e, b)) for eid in alone))
    n = len(mixed_events("x"))
    assert all(sum(s, []) == list(range(1, n + 1)) for s in seqs)
    assert writer.commits < 8 * 5, "concurrent appends should have shared transactions"
    for mine, theirs in zip(grouped, alone, strict=True):
        ours = await pool.fetch("SELECT seq, key, type, payload FROM events WHERE engagement_id = $1"
                                " ORDER BY seq", mine)
        other = await pool.fetch("SELECT seq, key, type, payload FROM events WHERE engagement_id = $1"
                                 " ORDER BY seq", theirs)
        assert [(r["seq"], r["key"].replace(mine, theirs), r["type"]) for r in ours] == \
            [(r["seq"], r["key"], r["type"]) for r in other]
        for table in ("engagements", "actions", "checkins", "participants", "outbound_messages"):
            rows = {eid: sorted(tuple(str(v) for k, v in r.items() if k != "engagement_id")
                                for r in await pool.fetch(
                                    f"SELECT * FROM {table} WHERE engagement_id = $1", eid))  # noqa: S608
                    for eid in (mine, theirs)}
            assert rows[mine] == rows[theirs], table
    live = await snapshot(pool)
    await rebuild_projections(pool)
    assert await snapshot(pool) == live


async def test_a_bad_batch_in_a_group_fails_only_its_caller(pool: asyncpg.Pool) -> None:
    writer = EventWriter(pool)
    good = [unique_id("gc-good") for _ in range(5)]
    bad = unique_id("gc-bad")
    # A check-in for an action that was never assigned breaks the checkins foreign key.
    orphan = ev.NewEvent(key=f"{bad}/A9/checkin/1/requested", occurred_at=T0,
                         event=ev.CheckInRequested(action_id="A9", number=1))
    results = await asyncio.gather(*(writer.append(eid, mixed_events(eid)[:6]) for eid in good),
                                   writer.append(bad, [*mixed_events(bad)[:1], orphan]),
                                   return_exceptions=True)
    assert results[:5] == [[1, 2, 3, 4, 5, 6]] * 5
    assert isinstance(results[5], asyncpg.ForeignKeyViolationError)
    assert await read_log(pool, bad) == [], "the bad batch is not half written"
    assert [len(await read_log(pool, eid)) for eid in good] == [6] * 5


async def test_a_retried_batch_in_the_same_group_is_stored_once(pool: asyncpg.Pool) -> None:
    writer = EventWriter(pool)
    eid = unique_id("gc-twice")
    batch = mixed_events(eid)[:4]
    first, second = await asyncio.gather(writer.append(eid, batch), writer.append(eid, batch))
    assert first == second == [1, 2, 3, 4]
    assert [e.key for e in await read_log(pool, eid)] == [e.key for e in batch]


async def test_the_log_is_append_only(pool: asyncpg.Pool) -> None:
    eid = unique_id("ro")
    await append(pool, eid, mixed_events(eid)[:1])
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("DELETE FROM events WHERE engagement_id = $1", eid)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("UPDATE events SET type = 'x' WHERE engagement_id = $1", eid)


async def test_migrations_apply_once_even_when_run_concurrently(pool: asyncpg.Pool) -> None:
    assert await asyncio.gather(migrate(pool), migrate(pool)) == [[], []]
    names = [r["name"] for r in await pool.fetch("SELECT name FROM schema_migrations ORDER BY name")]
    assert names[0] == "0001_events_and_read_models.sql"
    assert len(names) == len(set(names))


def test_event_dates_round_trip() -> None:
    event = ev.ActionAssigned.model_validate({
        "action_id": "A1", "title": "t", "owner": {"name": "n", "email": "a@b.example", "timezone": "UTC"},
        "due": "2027-05-31", "metric": {"name": "m", "unit": "u", "baseline": 0, "target": 1,
                                        "direction": "increase"}, "assigned_at": T0.isoformat()})
    assert ev.EVENT_ADAPTER.validate_python(event.model_dump(mode="json")) == event
    assert event.due == date(2027, 5, 31)
