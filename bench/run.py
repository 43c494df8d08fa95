"""Benchmarks of the engine against bare Temporal on the same server, in one run (ratios, not absolutes).

    python bench/run.py [--quick] [--json] [--engagements N]

Starts its own stack on free loopback ports (an in-memory Temporal dev server, embedded Postgres, the SMTP
sink, Radicale), then measures:
- the real loop, at a pace this machine sustains: N engagements are started (set-up), then arrive one every
  `arrival_gap_s` at most, and no more under way at once than keep their walks and first check-ins on time
  (`max_under_way`, `first_checkin_late_s_*`): format, session, outcomes, and 3 actions with a check-in every 4 s
  to the horizon, at least 3 each (asserted from the outbox and the histories); the owners stay silent, so
  reminders and escalations go out too. Against bare Temporal doing the same work at the same pace on the same
  server (a parent with as many no-op activities and timers as ours averaged, one child per action with as many
  check-ins, each a timer then a no-op): overhead_ratio (engagements/s, ours over bare) and checkins_per_s against
  bare_checkins_per_s (between the first and the last tenth of the check-ins);
- events_per_s_batched, batched_vs_naive: event-store appends in the batches the activities send, through the
  worker's group-commit writer, against one event per transaction;
- cli_help_s, cli_status_s: medians of 10 runs of `engage --help` and `engage status ENG`;
- max_history_events: the largest single-run history of a 52-week weekly action and of a 20-action
  engagement (time-skipping server).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import functools
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402
import yaml  # noqa: E402
from rich.console import Console  # noqa: E402
from temporalio.client import Client, WorkflowHistory, WorkflowUpdateRPCTimeoutOrCancelledError  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from activities import build_activities  # noqa: E402
from adapters.engagement_client import EngagementHandle, walk_to_follow_through  # noqa: E402
from adapters.temporal import (  # noqa: E402
    checkin_loop_workflow_id,
    connect,
    engagement_workflow_id,
    follow_through_workflow_id,
)
from bench import print_figures, unless_cancelled  # noqa: E402
from bench.bare import BareChild, BareEngagement, Shape, bare_checkin, bare_noop, note_checkins_with  # noqa: E402
from cli.starting import start_engagement  # noqa: E402
from devstack.postgres import EmbeddedPostgres  # noqa: E402
from devstack.process import free_port, spawn, wait_for_port  # noqa: E402
from devstack.process import stop as stop_process  # noqa: E402
from devstack.radicale import RadicaleServer  # noqa: E402
from devstack.temporal import TemporalDevServer  # noqa: E402
from schemas import events as ev  # noqa: E402
from schemas.inputs import EngagementInput  # noqa: E402
from schemas.names import EngagementFormat  # noqa: E402
from schemas.outcomes import Outcomes  # noqa: E402
from schemas.scoping import Scoping  # noqa: E402
from schemas.settings import Settings  # noqa: E402
from schemas.updates import ChooseFormat, RecordOutcomes, ScheduleSession  # noqa: E402
from store.db import create_pool  # noqa: E402
from store.events import EventWriter, append  # noqa: E402
from store.migrate import migrate  # noqa: E402
from worker import cache_bytecode, worker_options  # noqa: E402
from workflows.engagement import EngagementWorkflow  # noqa: E402
from workflows.registry import WORKFLOWS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
EXAMPLES = ROOT / "examples"
ENGAGE = str(Path(sys.executable).parent / "engage")
CADENCE_S = 4
# Check-ins at 4, 8, 12, 16 and 20 s after the outcomes: the third still goes out 12 s late. (At 20 s, where it
# could be 8 s late, a default run at c728e83 left 5 of 600 actions with two.)
HORIZON_S = 24
SESSION_LEAD_S = 3  # a session is booked this far ahead
PACE_FACTOR = 16  # arrivals at least PACE_FACTOR x (set-up time per engagement) apart; Pace's window may wait longer
MIN_GAP_S = 0.5  # and never closer than this
# A first check-in later than this slows arrivals: the third may be up to 12 s late and still inside the horizon.
FIRST_CHECKIN_SLACK_S = 3.0
MAX_UNDER_WAY = 40  # engagements under way at once, at most
console = Console(stderr=True)


class MailSinkProcess:
    """The SMTP sink in its own process: in a thread of the bench it would take the worker's interpreter lock,
    which no real relay does."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.url = f"smtp://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = spawn([sys.executable, "-m", "devstack.mailsink", str(self.folder), str(self.port)],
                          log_path=self.folder.parent / "mailsink.log", env={**os.environ, "PYTHONPATH": str(ROOT)})

    def wait_ready(self) -> None:
        wait_for_port(self.port, 30, proc=self.proc, what="the SMTP sink")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


def start_postgres_and_sink(folder: Path) -> tuple[EmbeddedPostgres, MailSinkProcess]:
    """Embedded Postgres and the SMTP sink under `folder`, each in its own process on a free loopback port, started
    side by side (the mail benchmarks need no Temporal)."""
    postgres = EmbeddedPostgres(folder / "pg", free_port())
    sink = MailSinkProcess(folder / "mail", free_port())
    for part in (postgres, sink):
        part.launch()
    for part in (postgres, sink):
        part.wait_ready()
    return postgres, sink


class Stack:
    """Every real part on free loopback ports, in a temporary folder, each in its own process."""

    def __init__(self, folder: Path, *, persistent: bool = False, fast_sqlite: bool = True) -> None:
        self.folder = folder
        self.temporal = TemporalDevServer(folder / "temporal", free_port(), free_port(), persistent=persistent,
                                          fast_sqlite=fast_sqlite, ports_are_free_to_change=True)
        self.postgres = EmbeddedPostgres(folder / "pg", free_port())
        self.mail = MailSinkProcess(folder / "mail", free_port())
        self.radicale = RadicaleServer(folder / "radicale", free_port())

    def start(self) -> Settings:
        for part in (self.temporal, self.postgres, self.radicale, self.mail):
            part.launch()
        for part in (self.temporal, self.postgres, self.radicale, self.mail):
            part.wait_ready()
        return Settings(_env_file=None,  # type: ignore[call-arg]
                        temporal_address=self.temporal.address, database_url=self.postgres.url,
                        smtp_url=self.mail.url, caldav_url=self.radicale.url,
                        task_queue=f"bench-{uuid.uuid4().hex[:6]}")

    def stop(self) -> None:
        self.radicale.stop()
        self.mail.stop()
        self.temporal.stop()
        self.postgres.stop()


@functools.cache
def _example_scoping() -> dict[str, Any]:
    # Parsed once: the driver's own YAML parsing is not the engine's cost.
    return yaml.safe_load((EXAMPLES / "scoping.yaml").read_text())  # type: ignore[no-any-return]


def bench_scoping(engagement_id: str, today: date) -> Scoping:
    data = copy.deepcopy(_example_scoping())
    data.update(id=engagement_id, timezone="UTC")
    data["constraints"].update(earliest=today.isoformat(), latest=(today + timedelta(days=30)).isoformat())
    data["follow_through"] = {"cadence": f"{CADENCE_S}s", "horizon": f"{HORIZON_S}s", "escalate_after_missed": 2}
    return Scoping.model_validate(data)


def bench_outcomes(today: date) -> Outcomes:
    actions = [{"id": f"A{i}", "title": f"Initiative {i}", "due": (today + timedelta(days=30)).isoformat(),
                "owner": {"name": f"Owner {i}", "email": f"owner{i}@acme.example", "timezone": tz},
                "metric": {"name": "Metric", "unit": "units", "baseline": 0, "target": 100,
                           "direction": "increase"}}
               for i, tz in enumerate(("Europe/Berlin", "America/Sao_Paulo", "Asia/Tokyo"), start=1)]
    return Outcomes.model_validate({"decisions": ["Bench"], "actions": actions})


CHECKINS = 3  # per action, at CADENCE_S, within HORIZON_S


async def set_up(client: Client, pool: asyncpg.Pool, settings: Settings, engagement_id: str) -> EngagementHandle:
    """Started as `engage start` starts one (cli/starting.py: the id checked against the log, the engagement's
    start appended; the bench's cadence of seconds allowed by saying so)."""
    today = datetime.now(UTC).date()
    return await start_engagement(client, pool, settings.model_copy(update={"min_cadence": timedelta(
        seconds=CADENCE_S)}), engagement_id, bench_scoping(engagement_id, today))


def session_soon(attempt: int) -> ScheduleSession:
    """A session a few seconds from when it is booked (later on each attempt the workflow refused as in the past:
    a slower machine books later, it never fails)."""
    at = (datetime.now(UTC) + timedelta(seconds=SESSION_LEAD_S * (attempt + 1))).replace(microsecond=0)
    return ScheduleSession(on=at.date(), at=at.strftime("%H:%M:%S"), days=2)


async def patiently(call: Callable[[], Awaitable[T]], what: str) -> T:
    """An update whose answer did not come within the RPC's timeout (a busy machine) is asked again under its
    own id, so it is applied once: a slower machine takes longer, it does not fail."""
    while True:
        try:
            return await call()
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            unless_cancelled()


class Pace:
    """How many engagements may be under way at once (from arrival to closed): as many as this machine keeps on
    time. A walk from the format to the outcomes takes about the session's lead, and a first check-in goes out
    about CADENCE_S after the outcomes, while the worker keeps up; later means workflow tasks are queueing and
    check-ins would miss their horizon. A fixed gap between arrivals, even one that grew while walks were slow,
    left 291 of 600 actions short of CHECKINS on one core (session 10): the feedback came after many more had
    arrived. So the number under way is bounded and adapts as TCP's window does: one more per prompt engagement
    until the first late one, then a fraction of one; a late one cuts it by 30 %."""

    def __init__(self, gap: float) -> None:
        self.gap = gap  # between two arrivals, at least
        self.limit = 2.0
        self.under_way = 0
        self.seen_late = False
        self.late: list[float] = []  # how late each engagement's first check-in went out, in seconds
        self.peak = 0

    async def admit(self) -> None:
        while self.under_way >= int(self.limit):
            await asyncio.sleep(0.1)
        self.under_way += 1
        self.peak = max(self.peak, self.under_way)

    def done(self) -> None:
        self.under_way -= 1

    def observed(self, walk_s: float, first_checkin_late_s: float) -> None:
        self.late.append(first_checkin_late_s)
        if walk_s > SESSION_LEAD_S + 2.5 or first_checkin_late_s > FIRST_CHECKIN_SLACK_S:
            self.seen_late = True
            self.limit = max(1.0, self.limit * 0.7)
        else:
            self.limit = min(MAX_UNDER_WAY, self.limit + (1 / self.limit if self.seen_late else 1.0))


async def first_checkin_at(pool: asyncpg.Pool, engagement_id: str, within: float) -> datetime | None:
    """When the relay took the engagement's first check-in request (the outbox), waited for `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        at = await pool.fetchval("SELECT min(sent_at) FROM outbox WHERE engagement_id = $1 AND status = 'sent'"
                                 " AND kind = 'checkin_request'", engagement_id)
        if at is not None:
            return at  # type: ignore[no-any-return]
        await asyncio.sleep(0.5)
    return None


async def run_engagement(engagement_id: str, handle: EngagementHandle, pace: Pace, pool: asyncpg.Pool) -> None:
    """From choosing the format to closed: the session, the outcomes, then every action's check-ins to its
    horizon."""
    try:
        began = time.monotonic()
        await walk_to_follow_through(handle, bench_outcomes(datetime.now(UTC).date()), session_soon,
                                     format=EngagementFormat.combined, session_attempts=10, outcomes_attempts=60,
                                     retry_every=timedelta(seconds=0.5), update_ids=f"{handle.id}/", call=patiently)
        walked_at, walk_s = datetime.now(UTC), time.monotonic() - began
        first = await first_checkin_at(pool, engagement_id, within=HORIZON_S)
        pace.observed(walk_s, (first - walked_at).total_seconds() - CADENCE_S if first else float(HORIZON_S))
        status = await handle.result()
        assert status.phase is ev.Phase.closed, status.phase
    finally:
        pace.done()


def count(history: WorkflowHistory, field: str) -> int:
    return sum(1 for e in history.events if e.WhichOneof("attributes") == field)


def checkin_requests(history: WorkflowHistory) -> Counter[str]:
    """The check-in requests a history sent, per action: the messages of its `send_message` activities (a
    follow-through of its own) or `send_messages` activities (a check-in loop) that are check-in requests (not
    reminders or escalations)."""
    sent: Counter[str] = Counter()
    for e in history.events:
        if e.WhichOneof("attributes") != "activity_task_scheduled_event_attributes":
            continue
        a = e.activity_task_scheduled_event_attributes
        if a.activity_type.name not in ("send_message", "send_messages"):
            continue
        for payload in a.input.payloads:
            data = json.loads(payload.data)
            for message in data if isinstance(data, list) else [data]:
                if message["kind"] == ev.MessageKind.checkin_request.value:
                    sent[message["action_id"]] += 1
    return sent


async def measure_shape(client: Client, engagement_ids: list[str],
                        session_delay_s: float) -> tuple[Shape, Counter[int]]:
    """The average engagement of the run, counted from every history: the baseline must do what ours really did,
    no more and no less. Its children are each action's own workflow and the check-in loop. With it, how many
    actions got how many check-in requests, counted from the histories that sent them."""
    limit = asyncio.Semaphore(16)

    async def counts(workflow_id: str) -> tuple[int, int, int, Counter[str]]:
        async with limit:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
        return (count(history, "activity_task_scheduled_event_attributes"),
                count(history, "timer_started_event_attributes"),
                count(history, "start_child_workflow_execution_initiated_event_attributes"),
                checkin_requests(history))

    parents = await asyncio.gather(*(counts(engagement_workflow_id(e)) for e in engagement_ids))
    own = ("A1", "A2", "A3")  # each action's own workflow, then the loop
    ids = [follow_through_workflow_id(e, a) if a in own else checkin_loop_workflow_id(e)
           for e in engagement_ids for a in (*own, "loop")]
    children = await asyncio.gather(*(counts(i) for i in ids))
    n, c = len(parents), max(1, len(children))
    per_action: Counter[int] = Counter()
    for e in range(len(engagement_ids)):
        sent = sum((ch[3] for ch in children[e * 4:(e + 1) * 4]), Counter[str]())
        per_action.update(sent.get(a, 0) for a in own)
    return Shape(
        session_delay_s=session_delay_s,
        parent_activities=round(sum(p[0] for p in parents) / n),
        parent_timers=round(sum(p[1] for p in parents) / n),
        children=round(sum(p[2] for p in parents) / n),
        child_activities=round(sum(ch[0] for ch in children) / c),
        child_timers=round(sum(ch[1] for ch in children) / c),
        child_duration_s=HORIZON_S,
    ), per_action


async def checkins_sent(pool: asyncpg.Pool, engagement_ids: list[str]) -> list[tuple[str, datetime]]:
    """(engagement/action, when the relay took it) of every check-in request the run sent, from the outbox."""
    rows = await pool.fetch("SELECT key, sent_at FROM outbox WHERE status = 'sent' AND kind = 'checkin_request'"
                            " AND engagement_id = ANY($1::text[])", engagement_ids)
    return [("/".join(r["key"].split("/")[:2]), r["sent_at"]) for r in rows]


def steady_rate(times: list[float]) -> float:
    """Check-ins per second between the first and the last tenth of them: the ramp up and the drain left out."""
    times = sorted(times)
    if len(times) < 10:
        return len(times) / max(0.001, times[-1] - times[0]) if len(times) > 1 else 0.0
    low, high = times[len(times) // 10], times[-(len(times) // 10) - 1]
    return (len(times) * 0.8) / max(0.001, high - low)


async def timed_bare(client: Client, queue: str, shape: Shape, workflow_ids: list[str], *,
                     max_activities: int, offsets: list[float] | None = None) -> float:
    """Seconds for the bare baseline to run one workflow of `shape` per id, each started at its offset in seconds
    (all at once by default), on its own worker."""
    async with Worker(client, task_queue=queue, workflows=[BareEngagement, BareChild],
                      activities=[bare_noop, bare_checkin], max_concurrent_activities=max_activities,
                      **worker_options(Settings(_env_file=None))):  # type: ignore[call-arg]
        began = time.monotonic()

        async def one(i: int, workflow_id: str) -> None:
            await asyncio.sleep(offsets[i] if offsets else 0.0)
            await client.execute_workflow(BareEngagement.run, shape, id=workflow_id, task_queue=queue)

        await asyncio.gather(*(one(i, workflow_id) for i, workflow_id in enumerate(workflow_ids)))
        return time.monotonic() - began


async def throughput(n: int, settings: Settings, pool: asyncpg.Pool) -> dict[str, Any]:
    """N engagements through the real loop, arriving at a pace this machine sustains, against bare Temporal doing
    the same work at the same pace, on the same server.

    Set-up first: every engagement is started, all at once; how long that took sets the shortest gap between
    arrivals. Then, while no more are under way than this machine keeps on time (Pace: a slower machine gets fewer,
    so the run reports lower rates and never fails), one engagement at a time has its format chosen, books a session
    a few seconds ahead, records its outcomes once it has begun, and its three actions get a check-in every
    CADENCE_S seconds to the horizon: CHECKINS each, counted from the histories."""
    client = await connect(settings)
    run = uuid.uuid4().hex[:6]
    ids = [f"bench-{run}-{i}" for i in range(n)]
    # Both workers tuned as worker.py tunes a production one (sticky cache and timeout, workflow tasks at once).
    async with Worker(client, task_queue=settings.task_queue,
                      workflows=WORKFLOWS,
                      activities=build_activities(settings, pool), max_concurrent_activities=200,
                      **worker_options(settings)):
        began = time.monotonic()
        handles = await asyncio.gather(*(set_up(client, pool, settings, eid) for eid in ids))
        setup_s = time.monotonic() - began
        # An engagement's whole lifecycle costs many set-ups: one arriving every PACE_FACTOR set-up times (at
        # least MIN_GAP_S), and no more under way than stay on time (Pace), keeps the machine below saturation,
        # where a steady rate means something.
        pace = Pace(max(MIN_GAP_S, PACE_FACTOR * setup_s / n))
        began = time.monotonic()
        tasks, offsets = [], []
        for engagement_id, handle in zip(ids, handles, strict=True):
            await pace.admit()
            offsets.append(time.monotonic() - began)
            tasks.append(asyncio.create_task(run_engagement(engagement_id, handle, pace, pool)))
            await asyncio.sleep(pace.gap)
        await asyncio.gather(*tasks)
        ours_s = time.monotonic() - began
        gap = offsets[-1] / max(1, n - 1)
    shape, in_histories = await measure_shape(client, ids, SESSION_LEAD_S)
    assert sum(in_histories.values()) == 3 * n and min(in_histories) >= CHECKINS, \
        f"every follow-through's history sends {CHECKINS} check-ins; follow-throughs by check-ins: {in_histories}"
    sent = await checkins_sent(pool, ids)
    actions = Counter(action for action, _ in sent)
    assert len(actions) == 3 * n and min(actions.values()) >= CHECKINS, \
        f"every action gets {CHECKINS} check-ins; actions by check-ins sent: {Counter(actions.values())}"
    bare_times: list[float] = []
    note_checkins_with(lambda _key: bare_times.append(time.time()))
    # The bare follow-throughs send as many check-ins as ours did, at the same cadence, each after its timer.
    per_action = round(len(sent) / (3 * n))
    bare_shape = shape.model_copy(update={"child_timers": per_action, "child_duration_s": per_action * CADENCE_S,
                                          "child_activities": max(shape.child_activities, per_action)})
    bare_s = await timed_bare(client, f"{settings.task_queue}-bare", bare_shape,
                              [f"bare-{run}-{i}" for i in range(n)], max_activities=200, offsets=offsets)
    ours, bare = n / ours_s, n / bare_s
    ours_rate = steady_rate([at.timestamp() for _, at in sent])
    bare_rate = steady_rate(bare_times)
    return {"engagements": n, "engagements_per_s": round(ours, 3), "baseline_per_s": round(bare, 3),
            "overhead_ratio": round(ours / bare, 3), "engagement_wall_s": round(ours_s, 2),
            "baseline_wall_s": round(bare_s, 2), "setup_s": round(setup_s, 2), "arrival_gap_s": round(gap, 3),
            "checkins": len(sent), "min_checkins_per_action": min(actions.values()),
            "first_checkin_late_s_median": round(statistics.median(pace.late), 2),
            "first_checkin_late_s_max": round(max(pace.late), 2), "max_under_way": pace.peak,
            "min_checkins_in_a_history": min(in_histories),
            "checkins_per_s": round(ours_rate, 2), "bare_checkins_per_s": round(bare_rate, 2),
            "checkins_vs_bare": round(ours_rate / bare_rate, 3) if bare_rate else None,
            "shape": shape.model_dump(), "first_engagement": ids[0]}


def event_batches(engagement_id: str, rounds: int) -> list[list[ev.NewEvent]]:
    """An engagement's log in the batches the activities append: the start, the outcomes and assignments,
    then per check-in the request (+ next scheduled), the message, and a reported value."""
    today = date.today()
    s = bench_scoping(engagement_id, today)
    o = bench_outcomes(today)
    from domain.format import recommend

    at = datetime.now(UTC)
    def new(key: str, event: ev.Event) -> ev.NewEvent:
        return ev.NewEvent(key=f"{engagement_id}/{key}", occurred_at=at, event=event)

    batches = [[new("started", ev.EngagementStarted(scoping=s, recommendation=recommend(s))),
                new("phase/scoping", ev.PhaseEntered(phase=ev.Phase.scoping))],
               [new("outcomes", ev.OutcomesRecorded(outcomes=o)),
                *[new(f"{a.id}/assigned", ev.ActionAssigned(action_id=a.id or "", title=a.title, owner=a.owner,
                                                            due=a.due, metric=a.metric, assigned_at=at))
                  for a in o.actions]]]
    for n in range(1, rounds + 1):
        for a in o.actions:
            aid = a.id or ""
            batches.append([new(f"{aid}/checkin/{n}/requested", ev.CheckInRequested(action_id=aid, number=n)),
                            new(f"{aid}/checkin/{n + 1}/scheduled",
                                ev.CheckInScheduled(action_id=aid, number=n + 1, at=at))])
            batches.append([new(f"{aid}/checkin/{n}#sent", ev.MessageSent(
                message_id=f"<{aid}.{n}@x>", kind=ev.MessageKind.checkin_request, recipients=["o@x.example"],
                subject="Check-in"))])
            batches.append([new(f"{aid}/value/{n}", ev.MetricReported(action_id=aid, value=n, status="on_track"))])
    return batches


async def event_store(pool: asyncpg.Pool, engagements: int, rounds: int) -> dict[str, Any]:
    """The same logs written two ways, `engagements` of them appending concurrently as workflows do:
    naive, one event per transaction (`append` of a single event: its INSERT and its projection, committed);
    batched, the batches the activities send, through the worker's group-commit `EventWriter`."""
    writer = EventWriter(pool)

    async def timed(batched: bool) -> tuple[float, int, int]:
        run = uuid.uuid4().hex[:6]
        logs = [event_batches(f"ev-{run}-{i}", rounds) for i in range(engagements)]
        total = sum(len(b) for log in logs for b in log)
        batches = sum(len(log) for log in logs)

        async def one(engagement_id: str, log: list[list[ev.NewEvent]]) -> None:
            for batch in log:
                if batched:
                    await writer.append(engagement_id, batch)
                else:
                    for event in batch:
                        await append(pool, engagement_id, [event])

        began = time.monotonic()
        await asyncio.gather(*(one(f"ev-{run}-{i}", log) for i, log in enumerate(logs)))
        return time.monotonic() - began, total, batches

    naive_s, total, _ = await timed(batched=False)
    batched_s, _, batches = await timed(batched=True)
    return {"events": total, "events_per_s_batched": round(total / batched_s, 1),
            "events_per_s_naive": round(total / naive_s, 1), "batched_vs_naive": round(naive_s / batched_s, 2),
            "batches_per_commit": round(batches / max(1, writer.commits), 1)}


def median_seconds(args: list[str], env: dict[str, str], runs: int = 10) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        result = subprocess.run(args, capture_output=True, env=env, check=False)
        times.append(time.perf_counter() - began)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.decode()[-500:]}")
    return round(statistics.median(times), 3)


def cli_timings(settings: Settings, engagement_id: str, runs: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env.update(ENGAGE_TEMPORAL_ADDRESS=settings.temporal_address, ENGAGE_DATABASE_URL=settings.database_dsn())
    return {"cli_help_s": median_seconds([ENGAGE, "--help"], env, runs),
            "cli_status_s": median_seconds([ENGAGE, "status", engagement_id], env, runs)}


async def history_bounds(settings: Settings, pool: asyncpg.Pool, actions: int, weeks: int) -> dict[str, int]:
    """Largest single-run histories: one weekly action over `weeks` weeks, and an engagement of `actions`
    actions with the default cadence, on the time-skipping server."""
    from devstack.timeskipping import quiet_runtime, start_time_skipping

    env = await start_time_skipping(quiet_runtime())
    try:
        sizes: dict[str, int] = {}
        for name, n_actions, cadence, horizon in (("weekly-action", 1, "7d", f"{7 * weeks}d"),
                                                  ("many-actions", actions, "14d", "90d")):
            async with Worker(env.client, task_queue=f"h-{name}",
                              workflows=WORKFLOWS,
                              activities=build_activities(settings, pool)):
                eid = f"hist-{name}-{uuid.uuid4().hex[:6]}"
                now = await env.get_current_time()
                today = now.date()
                s = bench_scoping(eid, today)
                s.follow_through = s.follow_through.model_copy(update={
                    "cadence": timedelta(days=int(cadence[:-1])), "horizon": timedelta(days=int(horizon[:-1]))})
                handle = await env.client.start_workflow(EngagementWorkflow.run,
                                                         EngagementInput(engagement_id=eid, scoping=s),
                                                         id=engagement_workflow_id(eid), task_queue=f"h-{name}")
                await handle.execute_update(EngagementWorkflow.choose_format, ChooseFormat(format="combined"))
                plan = await handle.execute_update(EngagementWorkflow.schedule_session,
                                                   ScheduleSession(on=today + timedelta(days=2), days=2))
                await env.sleep(plan.starts_at - now + timedelta(minutes=1))
                base = bench_outcomes(today).actions[0].model_dump()
                many = [{**base, "id": f"A{i + 1}", "due": (today + timedelta(days=400)).isoformat()}
                        for i in range(n_actions)]
                await handle.execute_update(EngagementWorkflow.record_outcomes,
                                            RecordOutcomes(outcomes=Outcomes.model_validate({"actions": many})))
                await handle.result()
                largest = len((await handle.fetch_history()).events)
                from tests.lifecycle import child_histories

                for runs in (await child_histories(env.client, await handle.fetch_history())).values():
                    largest = max(largest, *(len(h.events) for h in runs))
                sizes[name] = largest
        return {"max_history_events": max(sizes.values()),
                "history_weekly_action": sizes["weekly-action"], "history_many_actions": sizes["many-actions"]}
    finally:
        await env.shutdown()


async def sqlite_pragmas(n: int) -> dict[str, Any]:
    """How fast a file-backed dev server records history, default SQLite pragmas against WAL + normal sync:
    n bare workflows of 20 no-op activities each, as fast as they go (nothing waits on a timer)."""
    shape = Shape(session_delay_s=0, parent_activities=20, parent_timers=0, children=0, child_activities=0,
                  child_timers=0, child_duration_s=0)
    rates = {}
    for label, fast in (("default", False), ("wal", True)):
        folder = Path(tempfile.mkdtemp(prefix=f"engage-sqlite-{label}-"))
        server = TemporalDevServer(folder, free_port(), free_port(), persistent=True, fast_sqlite=fast,
                                   ports_are_free_to_change=True)
        server.start()
        try:
            client = await connect(Settings(_env_file=None, temporal_address=server.address))  # type: ignore[call-arg]
            seconds = await timed_bare(client, f"sqlite-{label}", shape, [f"{label}-{i}" for i in range(n)],
                                       max_activities=100)
            rates[label] = n / seconds
        finally:
            server.stop()
    return {"sqlite_default_workflows_per_s": round(rates["default"], 2),
            "sqlite_wal_workflows_per_s": round(rates["wal"], 2),
            "sqlite_wal_vs_default": round(rates["wal"] / rates["default"], 3)}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    n = args.engagements or (10 if args.quick else 200)
    # As worker.py does: the sandbox imports the workflow modules (ours and the baseline's) for every run.
    for folder in (ROOT / "workflows", ROOT / "bench"):
        cache_bytecode(folder)
    folder = Path(tempfile.mkdtemp(prefix="engage-bench-"))
    stack = Stack(folder)
    settings = stack.start()
    pool = await create_pool(settings)
    await migrate(pool)
    results: dict[str, Any] = {"quick": args.quick, "machine": f"{len(os.sched_getaffinity(0))} cores"}
    try:
        steps: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = [
            ("throughput", lambda: throughput(n, settings, pool)),
            ("events", lambda: event_store(pool, 10 if args.quick else 50, 4 if args.quick else 20)),
            ("history", lambda: history_bounds(settings, pool, 20, 8 if args.quick else 52)),
            ("sqlite", lambda: sqlite_pragmas(10 if args.quick else 100)),
        ]
        for label, step in steps:
            if args.only and label not in args.only:
                continue
            with console.status(f"bench: {label}..."):
                results.update(await step())
            console.print(f"[green]✓[/] {label}")
        if "first_engagement" not in results:
            return results
        with console.status("bench: CLI timings..."):
            # `engage status` queries the workflow, which needs a worker even once the engagement is closed.
            async with Worker(await connect(settings), task_queue=settings.task_queue,
                              workflows=WORKFLOWS,
                              activities=build_activities(settings, pool)):
                results.update(await asyncio.to_thread(cli_timings, settings, results["first_engagement"],
                                                       3 if args.quick else 10))
        console.print("[green]✓[/] CLI timings")
    finally:
        await pool.close()
        stack.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, to prove the script works (CI)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--engagements", type=int, default=None, help="N engagements (default 200, quick 10)")
    parser.add_argument("--only", nargs="*", choices=["throughput", "events", "history", "sqlite"],
                        help="run only these parts (the CLI timings need the throughput part)")
    args = parser.parse_args()
    from adapters.logging import configure_logging

    configure_logging("console", logging.WARNING)  # the bench's own output is its figures
    results = asyncio.run(main_async(args))
    print_figures(results, args.json)


if __name__ == "__main__":
    main()
