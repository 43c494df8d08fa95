"""Chaos: engagements run while the worker is killed, Temporal restarts, Postgres and SMTP go away.

    python bench/chaos.py [--engagements N] [--outage-s S] [--kill-group] [--json]

On a file-backed dev server (as `engage dev` runs it), N engagements (3 actions x 3 check-ins, cadence of
seconds; one owner of each answers every check-in through the same update the CLI sends) run while:
- the worker process is SIGKILLed 5-10 s after it began to poll its task queue, and restarted, again and again
  (its mail sender process finishes the conversations it has in hand; with `--kill-group` the kill takes the
  worker's whole process group at once, sender included, as a crash of its machine or container would);
- the Temporal dev server is restarted once;
- Postgres is stopped for S seconds (default 20);
- the SMTP server is stopped for S seconds.
Then it checks: every engagement closed; every message the workflows sent is at the SMTP sink exactly once
(by Message-ID; a copy of one decision sent twice by a SIGKILL inside the crash window is counted apart, as
`duplicates_per_1000`, which must stay <= 1); each engagement's log has exactly the expected events,
numbered 1..n with no gap and no duplicate; the read models equal a rebuild from the log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402
from rich.console import Console  # noqa: E402
from temporalio.client import (  # noqa: E402
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError  # noqa: E402
from temporalio.service import RPCError, RPCStatusCode  # noqa: E402

from adapters.engagement_client import (  # noqa: E402
    EngagementHandle,
    engagement_handle,
    start_engagement_workflow,
    walk_to_follow_through,
)
from adapters.temporal import checkin_loop_workflow_id, connect  # noqa: E402
from bench import print_figures, unless_cancelled  # noqa: E402
from bench.run import Stack, bench_outcomes, bench_scoping  # noqa: E402
from devstack.process import spawn, stop  # noqa: E402
from schemas.events import Phase  # noqa: E402
from schemas.names import EngagementFormat  # noqa: E402
from schemas.settings import Settings  # noqa: E402
from schemas.updates import ReportMetric, ScheduleSession  # noqa: E402
from schemas.views import ActionView, EngagementStatus  # noqa: E402
from store.db import create_pool  # noqa: E402
from store.events import read_log  # noqa: E402
from store.migrate import migrate  # noqa: E402
from store.projections import READ_MODELS, rebuild_projections  # noqa: E402
from workflows.checkin_loop import CheckInLoopWorkflow  # noqa: E402
from workflows.engagement import EngagementWorkflow  # noqa: E402

T = TypeVar("T")
console = Console(stderr=True)
CADENCE_S = 6
HORIZON_S = 60  # check-ins every 6 s up to 54 s: room for follow-throughs the faults start late
ANSWERING = "A1"  # this owner answers every check-in; the others stay silent (reminders, escalations)


class Chaos:
    def __init__(self, folder: Path, outage_s: float, kill_group: bool = False) -> None:
        self.stack = Stack(folder, persistent=True)
        self.folder = folder
        self.outage_s = outage_s
        self.kill_group = kill_group
        self.worker: subprocess.Popen | None = None
        self.faults: Counter[str] = Counter()
        self.settings: Settings | None = None
        self.done = asyncio.Event()
        self.ready = folder / "logs" / "worker.ready"

    # --- the worker, in its own process so it can be killed outright -----------------------------------

    def start_worker(self) -> None:
        assert self.settings is not None
        env = {
            "ENGAGE_TEMPORAL_ADDRESS": self.settings.temporal_address,
            "ENGAGE_DATABASE_URL": self.settings.database_dsn(),
            "ENGAGE_SMTP_URL": self.settings.smtp_url.get_secret_value(),
            "ENGAGE_CALDAV_URL": self.settings.caldav_url,
            "ENGAGE_TASK_QUEUE": self.settings.task_queue,
            "ENGAGE_LOG_FORMAT": "json",
            "ENGAGE_DEV_STACK": "1",  # the development reply secret is fine here
        }
        self.ready = self.folder / "logs" / f"worker-{self.faults['worker_killed']}.ready"
        self.worker = spawn([sys.executable, "-m", "worker", "--ready-file", str(self.ready)],
                            log_path=self.folder / "logs" / "worker.log", env=env,
                            cwd=Path(__file__).resolve().parent.parent)

    async def worker_ready(self, timeout: float = 120) -> None:
        """Until the worker polls. One that exited meanwhile (it cannot start while Postgres is down) is started
        again at once, as a supervisor (compose's restart policy, systemd) would."""
        deadline = time.monotonic() + timeout
        while not self.ready.exists() and time.monotonic() < deadline and not self.done.is_set():
            assert self.worker is not None
            if self.worker.poll() is not None:
                await asyncio.sleep(1)
                self.start_worker()
            await asyncio.sleep(0.1)

    async def kill_worker_every(self, low: float, high: float) -> None:
        """SIGKILL the worker LOW..HIGH seconds after it began to poll: a worker still importing its modules (several
        seconds on a loaded 2-core machine) would otherwise be killed before it ever ran, and the run would test
        only how fast Python starts."""
        while not self.done.is_set():
            await self.worker_ready()
            await asyncio.sleep(random.uniform(low, high))
            if self.done.is_set():
                return
            assert self.worker is not None
            if self.kill_group:  # the worker leads its own session (devstack.process.spawn): its group is its own
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.worker.pid, signal.SIGKILL)
            else:
                self.worker.send_signal(signal.SIGKILL)
            self.worker.wait()
            self.faults["worker_killed"] += 1
            self.start_worker()

    async def restart_temporal(self, at: float) -> None:
        await asyncio.sleep(at)
        try:
            await asyncio.to_thread(self.stack.temporal.stop)
        except Exception as exc:  # noqa: BLE001 - whatever the stop did, the server must come back
            print(f"chaos: stopping Temporal failed ({exc!r}); starting it anyway", file=sys.stderr)
        # A fault the harness injects must end: a start that fails (its port not yet free after the stop, on a
        # loaded machine) is tried again, else every engagement would wait for a server that never returns.
        for attempt in range(1, 11):
            try:
                await asyncio.to_thread(self.stack.temporal.start)
                break
            except Exception as exc:  # noqa: BLE001
                print(f"chaos: starting Temporal failed (attempt {attempt}: {exc!r})", file=sys.stderr)
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.stack.temporal.stop)
                await asyncio.sleep(2)
        self.faults["temporal_restarted"] += 1

    async def _outage(self, fault: str, at: float, stop: Callable[[], object], *start: Callable[[], object]) -> None:
        """At `at` seconds `stop`, and `outage_s` later each of `start` in turn, each in a worker thread."""
        await asyncio.sleep(at)
        await asyncio.to_thread(stop)
        await asyncio.sleep(self.outage_s)
        for step in start:
            await asyncio.to_thread(step)
        self.faults[fault] += 1

    async def postgres_outage(self, at: float) -> None:
        await self._outage("postgres_outage", at, self.stack.postgres.stop, self.stack.postgres.start)

    async def smtp_outage(self, at: float) -> None:
        # Relaunched from the thread that launched the Postgres restarts: it lives for the whole run, and a
        # child dies with the thread that spawned it.
        await self._outage("smtp_outage", at, self.stack.mail.stop, self.stack.mail.launch, self.stack.mail.wait_ready)


async def persist(call: Callable[[], Awaitable[T]], what: str, timeout: float = 300) -> T:
    """Client calls go on through restarts: retry connection-level failures until they get through."""
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        try:
            return await call()
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                raise  # not a fault: the workflow is gone or the request is wrong; retrying changes nothing
            unless_cancelled()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: still failing after {timeout:.0f} s: {exc}") from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3)
        except (RuntimeError, OSError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
            unless_cancelled()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: still failing after {timeout:.0f} s: {exc}") from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3)


async def drive(client: Client, task_queue: str, engagement_id: str, session_at: datetime,
                answers: Counter[str]) -> EngagementStatus:
    today = session_at.date()
    scoping = bench_scoping(engagement_id, today)
    scoping.follow_through = scoping.follow_through.model_copy(update={
        "cadence": timedelta(seconds=CADENCE_S), "horizon": timedelta(seconds=HORIZON_S)})

    async def start() -> EngagementHandle:
        try:
            return await start_engagement_workflow(client, scoping, task_queue=task_queue)
        except WorkflowAlreadyStartedError:
            return engagement_handle(client, engagement_id)

    handle = await persist(start, f"{engagement_id} start")

    def session(attempt: int) -> ScheduleSession:
        # The faults may hold an update up until its session time has passed, and the workflow rightly refuses a
        # session in the past: the consultant then picks a later time.
        at = session_at if attempt == 0 else (datetime.now(UTC) + timedelta(seconds=20)).replace(microsecond=0)
        return ScheduleSession(on=at.date(), at=at.strftime("%H:%M:%S"), days=2)

    # Every update with its id, so a call retried through a restart counts once.
    await walk_to_follow_through(handle, bench_outcomes(today), session, format=EngagementFormat.combined,
                                 after_start=timedelta(seconds=0.5), session_attempts=5, outcomes_attempts=120,
                                 retry_every=timedelta(seconds=2), update_ids="", call=persist)
    answered = 0
    # The answering owner's check-ins are watched in the engagement's check-in loop (the engagement is not told
    # of every check-in); the engagement is asked only once that action is closed or not yet started.
    loop = client.get_workflow_handle_for(CheckInLoopWorkflow.run, checkin_loop_workflow_id(engagement_id))
    while True:
        view: ActionView | None = None
        with contextlib.suppress(RPCError):  # NOT_FOUND: not started yet (persist retries every other failure)
            views = await persist(lambda: loop.query(CheckInLoopWorkflow.views), f"{engagement_id} A1")
            view = next((v for v in views if v.action_id == ANSWERING), None)
        if view is None or view.closed_reason is not None:
            status = await persist(lambda: handle.query(EngagementWorkflow.status), f"{engagement_id} status")
            if status.phase in (Phase.closed, Phase.cancelled):
                return status
        elif view.checkins_sent > answered:
            answered = view.checkins_sent
            # The update id makes a retried answer count once, as the CLI's would.
            try:
                await persist(lambda n=answered: handle.execute_update(  # type: ignore[misc]
                    EngagementWorkflow.report_metric, ReportMetric(action_id=ANSWERING, value=10.0 * n),
                    id=f"answer-{n}"), f"{engagement_id} answer")
                answers[engagement_id] += 1
            except WorkflowUpdateFailedError:
                pass  # too late: the action reached its horizon meanwhile, and the workflow said so
            except RPCError as exc:
                if exc.status is not RPCStatusCode.NOT_FOUND:
                    raise  # NOT_FOUND: the engagement closed meanwhile; the next status says so
        await asyncio.sleep(1.0)


def sink_message_ids(folder: Path) -> Counter[str]:
    ids: Counter[str] = Counter()
    for path in folder.glob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes())
        ids[msg["Message-ID"]] += 1
    return ids


async def snapshot(pool: asyncpg.Pool) -> dict[str, list[tuple[str, ...]]]:
    tables = {}
    for table in READ_MODELS:
        rows = await pool.fetch(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
        tables[table] = sorted(tuple(str(v) for v in r.values()) for r in rows)
    return tables


async def check(pool: asyncpg.Pool, folder: Path, statuses: dict[str, EngagementStatus],
                answers: Counter[str]) -> dict[str, Any]:
    at_sink = sink_message_ids(folder)
    expected_ids: set[str] = set()
    event_gaps = 0
    wrong_events = 0
    for eid, status in statuses.items():
        log = await read_log(pool, eid)
        seqs = [e.seq for e in log]
        if seqs != list(range(1, len(seqs) + 1)):
            event_gaps += 1
        types: Counter[str] = Counter(e.event.type for e in log)
        sent = [e.event for e in log if e.event.type == "message_sent"]
        expected_ids |= {m.message_id for m in sent}  # type: ignore[union-attr]
        checkins = sum(a.checkins_sent for a in status.actions)
        escalations = sum(a.escalations for a in status.actions)
        expected = {
            "engagement_started": 1, "phase_entered": 7, "format_chosen": 1, "session_scheduled": 1,
            "outcomes_recorded": 1, "action_assigned": 3, "action_closed": 3, "engagement_closed": 1,
            "checkin_requested": checkins, "action_escalated": escalations, "metric_reported": answers[eid],
        }
        kinds = Counter(m.kind.value for m in sent)  # type: ignore[union-attr]
        # Invitations: the 3 participants and the consultant's copy (issue 17).
        expected_kinds = {"invitation": 4, "action_assignment": 3, "report": 2, "checkin_request": checkins,
                          "escalation": escalations}
        if any(types[k] != v for k, v in expected.items()) or any(kinds[k] != v for k, v in expected_kinds.items()):
            wrong_events += 1
            console.print(f"[red]{eid}[/]: events {dict(types)}, messages {dict(kinds)}, expected {expected}")
    duplicated = [m for m, n in at_sink.items() if n > 1]
    attempts = {r["message_id"]: r["attempts"] for r in await pool.fetch(
        "SELECT message_id, attempts FROM outbox WHERE message_id = ANY($1::text[])", duplicated)}
    duplicates = sum(n - 1 for n in at_sink.values() if n > 1)
    delivered = sum(1 for m in expected_ids if at_sink[m] >= 1)
    live = await snapshot(pool)
    await rebuild_projections(pool)
    rebuilt = await snapshot(pool)
    return {
        "messages_expected": len(expected_ids),
        "messages_delivered": delivered,
        "duplicates": duplicates,
        # The crash window's rate: copies beyond the first per 1,000 distinct messages delivered.
        "duplicates_per_1000": round(1000 * duplicates / delivered, 2) if delivered else 0.0,
        # A copy sent twice must be a retried attempt of one decision (the documented crash window between
        # the relay's acceptance and the outbox commit), never two decisions: its outbox row shows >= 2 tries.
        "duplicates_outside_crash_window": sum(1 for m in duplicated if attempts.get(m, 0) < 2),
        "lost": sum(1 for m in expected_ids if at_sink[m] == 0),
        "unrecorded": sum(1 for m in at_sink if m not in expected_ids),
        "event_gaps": event_gaps,
        "engagements_with_unexpected_events": wrong_events,
        "read_models_equal_rebuild": live == rebuilt,
    }


async def run(n: int, outage_s: float, kill_every: tuple[float, float], kill_group: bool = False) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="engage-chaos-"))
    chaos = Chaos(folder, outage_s, kill_group)
    settings = chaos.stack.start()
    chaos.settings = settings
    pool = await create_pool(settings)
    await migrate(pool)
    await pool.close()
    chaos.start_worker()
    client = await connect(settings)
    began = time.monotonic()
    lead = 10 + n * 0.4
    session_at = (datetime.now(UTC) + timedelta(seconds=lead)).replace(microsecond=0)
    answers: Counter[str] = Counter()
    run_id = uuid.uuid4().hex[:6]
    ids = [f"chaos-{run_id}-{i}" for i in range(n)]
    faults = [
        asyncio.create_task(chaos.kill_worker_every(*kill_every)),
        asyncio.create_task(chaos.smtp_outage(at=2)),
        asyncio.create_task(chaos.postgres_outage(at=lead + 1)),
        asyncio.create_task(chaos.restart_temporal(at=lead + 1 + outage_s + 4)),
    ]
    try:
        with console.status(f"chaos: {n} engagements under faults..."):
            outcomes = await asyncio.gather(*(drive(client, settings.task_queue, eid, session_at, answers)
                                              for eid in ids), return_exceptions=True)
        failed = {eid: out for eid, out in zip(ids, outcomes, strict=True) if isinstance(out, BaseException)}
        for eid, exc in failed.items():
            console.print(f"[red]{eid}[/]: the driver gave up: {exc!r}", markup=True)
        results = [out for out in outcomes if not isinstance(out, BaseException)]
        ids = [eid for eid in ids if eid not in failed]
        chaos.done.set()
        for task in faults[1:]:
            await task  # every planned fault has happened before the checks
        faults[0].cancel()
        wall = time.monotonic() - began
        statuses = dict(zip(ids, results, strict=True))
        pool = await create_pool(settings)
        try:
            checked = await check(pool, chaos.stack.mail.folder, statuses, answers)
        finally:
            await pool.close()
    finally:
        for task in faults:
            task.cancel()
        await asyncio.gather(*faults, return_exceptions=True)
        if chaos.worker is not None:
            stop(chaos.worker)
        chaos.stack.stop()
    return {
        "engagements": n,
        "closed": sum(1 for s in results if s.phase is Phase.closed),
        "faults_injected": sum(chaos.faults.values()),
        "faults": dict(chaos.faults),
        "drivers_failed": len(failed),
        **checked,
        "answers_applied": sum(answers.values()),
        "wall_s": round(wall, 1),
        "outage_s": outage_s,
        "kill": "process group" if kill_group else "worker process",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engagements", type=int, default=100)
    parser.add_argument("--outage-s", type=float, default=20, help="how long Postgres and SMTP stay down")
    parser.add_argument("--kill-every", type=float, nargs=2, default=(5, 10), metavar=("LOW", "HIGH"),
                        help="SIGKILL the worker LOW..HIGH seconds after it begins to poll, again and again")
    parser.add_argument("--kill-group", action="store_true",
                        help="kill the worker's whole process group (its mail sender too), as a machine crash would")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    from adapters.logging import configure_logging

    configure_logging("console", logging.WARNING)
    results = asyncio.run(run(args.engagements, args.outage_s, tuple(args.kill_every), args.kill_group))
    print_figures(results, args.json)
    # A duplicate inside the crash window (a SIGKILL between the relay's 250 and the outbox commit) is possible
    # but must stay under 1 per 1,000 messages; one outside it is a bug.
    ok = (results["duplicates_outside_crash_window"] == 0 and results["duplicates_per_1000"] <= 1
          and results["lost"] == 0 and results["event_gaps"] == 0
          and results["closed"] == results["engagements"] and results["read_models_equal_rebuild"]
          and results["engagements_with_unexpected_events"] == 0)
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
