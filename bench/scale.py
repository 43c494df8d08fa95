"""How many open engagements one small machine carries, and how fast their check-ins go out when all fall due.

    python bench/scale.py [--engagements N] [--json] [--quick]

Starts its own stack as `engage dev` runs it (a file-backed Temporal dev server with WAL SQLite, embedded
Postgres, the SMTP sink and Radicale, each in its own process) and the worker as its own process
(`worker.py`, default settings; `--workers N` starts N of them on the one task queue). Then:

1. Brings N engagements (default 2,000) with 5 actions each through the real lifecycle (start, format,
   session, outcomes) into follow-through, 40 at a time: `start_s`, `open_workflows`.
2. Every owner lives in one time zone, chosen so that its next local midnight comes just after the set-up:
   with a daily cadence at 00:00 local, every first check-in then falls due at that same instant (the
   engine's own scheduling rule, nothing patched). `--quick` uses a cadence of seconds instead.
3. Measures, from the outbox, when each check-in request was handed to the SMTP sink: `checkins_per_s` and
   `max_checkin_lag_s` (how late the latest went out after its due time), and samples each worker's resident
   memory all along: `worker_rss_mb` (the peak of the largest). The CPU the workers and the Temporal server
   used through the burst, per check-in: `worker_cpu_ms_per_checkin`, `server_cpu_ms_per_checkin` (the first
   scales out with workers on more machines; the second is what a Temporal cluster carries). And what the SDK
   counted in the workers through the burst (`burst_sdk_counts`, from their Prometheus metrics): workflow tasks,
   sticky cache hits and misses, full histories fetched, activities and how many of them came eagerly.
4. Then runs the same burst on bare Temporal, on the same server, with its own worker process tuned as ours
   (bench/bare.py, bench/bare_worker.py): N parents of 5 follow-throughs whose timers fire at one instant, each
   then one no-op activity and a signal to its parent. `bare_max_checkin_lag_s` is what this machine does at
   best for that burst; `lag_vs_bare` is ours over it (with its CPU figures, `bare_...`). `--baseline-only` runs
   this step alone.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402
from rich.console import Console  # noqa: E402
from temporalio.client import Client  # noqa: E402

from adapters.engagement_client import walk_to_follow_through  # noqa: E402
from adapters.temporal import connect  # noqa: E402
from bench import print_figures  # noqa: E402
from bench.bare import BareBatchedEngagement, BareScaleEngagement, BareScaleInput  # noqa: E402
from bench.run import ROOT, Stack, bench_scoping  # noqa: E402
from cli.starting import start_engagement  # noqa: E402
from devstack.process import free_port, spawn  # noqa: E402
from devstack.process import stop as stop_process  # noqa: E402
from schemas.names import EngagementFormat  # noqa: E402
from schemas.outcomes import Outcomes  # noqa: E402
from schemas.scoping import Scoping  # noqa: E402
from schemas.settings import Settings  # noqa: E402
from schemas.updates import ScheduleSession  # noqa: E402
from store.db import create_pool  # noqa: E402
from store.migrate import migrate  # noqa: E402

ACTIONS = 5
IN_FLIGHT = 40  # engagements set up at once: their workflows (6 each) stay within the worker's sticky cache
console = Console(stderr=True)


def checkin_zone(now: datetime, setup_s: float) -> tuple[str, datetime]:
    """The zone whose next local midnight is the first one at least `setup_s` away: every action assigned
    before it, with a daily cadence at 00:00 local, has its first check-in at that midnight."""
    earliest = now + timedelta(seconds=setup_s)
    best: tuple[str, datetime] | None = None
    for name in sorted(available_timezones()):
        if "/" not in name or name.startswith(("Etc/", "posix/", "right/", "SystemV/")):
            continue
        zone = ZoneInfo(name)
        local = now.astimezone(zone)
        midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(),
                                    tzinfo=zone).astimezone(UTC)
        if midnight >= earliest and (best is None or midnight < best[1]):
            best = (name, midnight)
    assert best is not None, "some zone always has a midnight within the next day"
    return best


def scale_scoping(engagement_id: str, today: date, cadence: str) -> Scoping:
    data = bench_scoping(engagement_id, today).model_dump(mode="json")
    data["participants"] = data["participants"][:2]
    data["follow_through"] = {"cadence": cadence, "horizon": "30d", "local_time": "00:00",
                              "escalate_after_missed": 2}
    return Scoping.model_validate(data)


def scale_outcomes(today: date, zone: str) -> Outcomes:
    actions = [{"id": f"A{i}", "title": f"Initiative {i}", "due": (today + timedelta(days=60)).isoformat(),
                "owner": {"name": f"Owner {i}", "email": f"owner{i}@acme.example", "timezone": zone},
                "metric": {"name": "Metric", "unit": "units", "baseline": 0, "target": 100,
                           "direction": "increase"}}
               for i in range(1, ACTIONS + 1)]
    return Outcomes.model_validate({"decisions": ["Scale"], "actions": actions})


async def set_up(client: Client, pool: asyncpg.Pool, settings: Settings, engagement_id: str, cadence: str,
                 zone: str) -> None:
    """One engagement from start to follow-through, through the same start and updates as the CLI (the
    `--quick` cadence of seconds allowed by saying so: ENGAGE_MIN_CADENCE, cli/starting.py)."""
    today = datetime.now(UTC).date()
    scoping = scale_scoping(engagement_id, today, cadence)
    allowed = settings.model_copy(update={"min_cadence": min(settings.min_cadence, scoping.follow_through.cadence)})
    handle = await start_engagement(client, pool, allowed, engagement_id, scoping)

    def session(attempt: int) -> ScheduleSession:
        # A busy worker may see the update after a short lead has passed: it then refuses a start in the past,
        # and the next attempt books further ahead.
        starts = (datetime.now(UTC) + timedelta(seconds=(3, 10, 30, 60)[attempt])).replace(microsecond=0)
        return ScheduleSession(on=starts.date(), at=starts.strftime("%H:%M:%S"), days=2)

    await walk_to_follow_through(handle, scale_outcomes(today, zone), session, format=EngagementFormat.combined,
                                 session_attempts=4, outcomes_attempts=60)


class RssSampler:
    """The workers' resident memory, sampled every second from /proc: the largest one's."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak_kb = 0
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def _rss_kb(pid: int) -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def current_kb(self) -> int:
        return max(self._rss_kb(pid) for pid in self.pids)

    async def _run(self) -> None:
        while True:
            self.peak_kb = max(self.peak_kb, self.current_kb())
            await asyncio.sleep(1)

    def __enter__(self) -> RssSampler:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


def cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) these processes have used so far, from /proc/PID/stat."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime and stime, fields 14 and 15 of stat(5)
    return total / os.sysconf("SC_CLK_TCK")


def server_pid_of(stack: Stack) -> int:
    assert stack.temporal.proc is not None, "the Temporal dev server runs"
    return stack.temporal.proc.pid


def cpu_figures(prefix: str, worker_s: float, server_s: float, checkins: int) -> dict[str, float]:
    """Where a burst's CPU went, per check-in: the worker's share scales out with more workers on more machines;
    the server's is what a Temporal cluster (or Temporal Cloud) must carry."""
    per = max(1, checkins)
    return {f"{prefix}worker_cpu_ms_per_checkin": round(1000 * worker_s / per, 2),
            f"{prefix}server_cpu_ms_per_checkin": round(1000 * server_s / per, 2)}


def start_worker(settings: Settings, folder: Path, name: str = "worker", script: Path = ROOT / "worker.py",
                 *args: str, metrics_port: int | None = None) -> subprocess.Popen[bytes]:
    ready = folder / f"{name}.ready"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    if metrics_port is not None:
        env["ENGAGE_METRICS_PORT"] = str(metrics_port)
    env.update(ENGAGE_TEMPORAL_ADDRESS=settings.temporal_address, ENGAGE_DATABASE_URL=settings.database_dsn(),
               ENGAGE_SMTP_URL=settings.smtp_url.get_secret_value(), ENGAGE_CALDAV_URL=settings.caldav_url,
               ENGAGE_TASK_QUEUE=settings.task_queue, ENGAGE_LOG_FORMAT="json", PYTHONPATH=str(ROOT),
               ENGAGE_MAX_CACHED_WORKFLOWS=str(settings.max_cached_workflows),
               ENGAGE_WORKFLOW_SANDBOX=str(settings.workflow_sandbox).lower(), ENGAGE_DEV_STACK="1")
    proc = spawn([sys.executable, str(script), "--ready-file", str(ready), *args],
                 log_path=folder / f"{name}.log", env=env)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start; see {folder / f'{name}.log'}")
        time.sleep(0.2)
    return proc


# What the SDK counted in each worker (its Prometheus metrics, ENGAGE_METRICS_PORT): the figure, and the
# metric it sums (with a label it must carry, if any).
SDK_COUNTS = {
    "workflow_tasks": ("temporal_workflow_task_execution_latency_count", None),
    "sticky_cache_hits": ("temporal_sticky_cache_hit", None),
    "sticky_cache_misses": ("temporal_sticky_cache_miss", None),
    "history_fetches": ("temporal_request", 'operation="GetWorkflowExecutionHistory"'),
    "activities": ("temporal_activity_task_received", None),
    "eager_activities": ("temporal_activity_task_received", 'eager="true"'),
}


def sdk_counts(ports: list[int]) -> dict[str, float]:
    """The SDK_COUNTS of these workers so far, summed: how many workflow tasks found their workflow in the
    sticky cache, how many rebuilt it from its history, and so on."""
    totals = dict.fromkeys(SDK_COUNTS, 0.0)
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            lines = response.read().decode().splitlines()
        for line in lines:
            if line.startswith("#") or " " not in line:
                continue
            series, value = line.rsplit(" ", 1)
            name = series.split("{", 1)[0]
            for figure, (metric, label) in SDK_COUNTS.items():
                if name == metric and (label is None or label in series):
                    totals[figure] += float(value)
    return totals


async def due_times(pool: asyncpg.Pool, prefix: str) -> dict[tuple[str, str], datetime]:
    """When each action's first check-in falls due, as its follow-through planned it."""
    rows = await pool.fetch("SELECT engagement_id, payload->>'action_id' AS action_id, payload->>'at' AS at"
                            " FROM events WHERE type = 'checkin_scheduled' AND payload->>'number' = '1'"
                            " AND engagement_id LIKE $1 || '%'", prefix)
    return {(r["engagement_id"], r["action_id"]): datetime.fromisoformat(r["at"]) for r in rows}


async def sent_times(pool: asyncpg.Pool, prefix: str) -> dict[tuple[str, str], datetime]:
    rows = await pool.fetch("SELECT key, sent_at FROM outbox WHERE status = 'sent' AND kind = 'checkin_request'"
                            " AND engagement_id LIKE $1 || '%'", prefix)
    sent: dict[tuple[str, str], datetime] = {}
    for r in rows:
        engagement_id, action_id, _, number = r["key"].split("/")
        if number == "1":
            sent[(engagement_id, action_id)] = r["sent_at"]
    return sent


async def bare_burst(client: Client, settings: Settings, folder: Path, n: int, quick: bool,
                     timeout: float, server_pid: int, *, batched: bool = False) -> dict[str, Any]:
    """The same burst on bare Temporal, on the same server after ours, with its own worker process tuned as
    ours: n parents of 5 follow-throughs whose timers all fire at one instant, each then running one no-op
    activity and signalling its parent (bench/bare.py). What the machine can do at best for that burst.

    `batched`: one bare workflow per engagement instead, one timer and one activity for its 5 check-ins
    (`BareBatchedEngagement`); its figures are prefixed `batched_`."""
    name = "batched" if batched else "bare"
    bare = settings.model_copy(update={"task_queue": f"{settings.task_queue}-{name}"})
    log = folder / f"{name}-checkins.log"
    worker = start_worker(bare, folder, "bare-worker", ROOT / "bench" / "bare_worker.py", "--log", str(log))
    try:
        began = datetime.now(UTC)
        # Long enough for every follow-through to start its timer first: 150 workflows/s here when the server
        # is new, under 70/s with 12,000 of ours open. `bare_ready_before_due` says whether it was.
        due_at = (began + timedelta(seconds=10 if quick else 30 + n * ACTIONS * 0.03)).replace(microsecond=0)
        prefix = f"{name}-{uuid.uuid4().hex[:6]}-"
        limit = asyncio.Semaphore(100)
        run = BareBatchedEngagement.run if batched else BareScaleEngagement.run
        waiting = n if batched else n * ACTIONS  # the workflows whose timers must be started before the instant

        async def start(i: int) -> None:
            async with limit:
                await client.start_workflow(run, BareScaleInput(children=ACTIONS, due_at=due_at),
                                            id=f"{prefix}{i}", task_queue=bare.task_queue)

        with console.status(f"scale: setting up the {name} baseline..."):
            await asyncio.gather(*(start(i) for i in range(n)))
            kind = "BareBatchedEngagement" if batched else "BareFollowThrough"
            query = f'WorkflowType="{kind}" AND WorkflowId STARTS_WITH "{prefix}"'
            while (await client.count_workflows(query)).count < waiting and datetime.now(UTC) < due_at:
                await asyncio.sleep(1)
        ready_s = (datetime.now(UTC) - began).total_seconds()
        ready = (await client.count_workflows(query)).count == waiting and datetime.now(UTC) < due_at
        deadline = time.monotonic() + timeout + max(0.0, (due_at - datetime.now(UTC)).total_seconds())
        await asyncio.sleep(max(0.0, (due_at - datetime.now(UTC)).total_seconds()))
        cpu_before = cpu_s([worker.pid]), cpu_s([server_pid])
        sent: dict[str, float] = {}
        with console.status(f"scale: {name} check-ins going out...") as status:
            while len(sent) < n * ACTIONS and time.monotonic() < deadline:
                await asyncio.sleep(2)
                if log.exists():
                    sent = {key: float(at) for key, at in (line.split() for line in log.read_text().splitlines())}
                status.update(f"scale: {len(sent)}/{n * ACTIONS} {name} check-ins sent")
        cpu = cpu_s([worker.pid]) - cpu_before[0], cpu_s([server_pid]) - cpu_before[1]
    finally:
        stop_process(worker)
    lags = sorted(at - due_at.timestamp() for at in sent.values())
    last = f"the last {lags[-1]:.1f} s late" if lags else "none of them"
    console.print(f"[green]✓[/] {len(sent)} {name} check-ins sent, {last}")
    return {
        f"{name}_ready_s": round(ready_s, 1), f"{name}_ready_before_due": ready, f"{name}_checkins_sent": len(sent),
        f"{name}_checkins_per_s": round(len(sent) / max(0.001, lags[-1]), 1) if lags else None,
        f"{name}_max_checkin_lag_s": round(lags[-1], 1) if lags else None,
        f"{name}_median_checkin_lag_s": round(lags[len(lags) // 2], 1) if lags else None,
        **cpu_figures(f"{name}_", cpu[0], cpu[1], len(sent)),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    n = args.engagements or (3 if args.quick else 2000)
    folder = Path(tempfile.mkdtemp(prefix="engage-scale-"))
    stack = Stack(folder, persistent=True, fast_sqlite=True)
    settings = stack.start()
    settings = settings.model_copy(update={"metrics_port": free_port()})
    if args.max_cached_workflows is not None:
        settings = settings.model_copy(update={"max_cached_workflows": args.max_cached_workflows})
    if args.no_sandbox:
        settings = settings.model_copy(update={"workflow_sandbox": False})
    if args.baseline_only:
        try:
            return {"engagements": n, "actions": n * ACTIONS, "quick": args.quick,
                    "machine": f"{len(os.sched_getaffinity(0))} cores",
                    "max_cached_workflows": settings.max_cached_workflows,
                    "workflow_sandbox": settings.workflow_sandbox,
                    **await bare_burst(await connect(settings), settings, folder, n, args.quick, args.timeout,
                                       server_pid_of(stack))}
        finally:
            stack.stop()
    pool = await create_pool(settings)
    await migrate(pool)
    metrics_ports = [free_port() for _ in range(args.workers)]
    workers = [start_worker(settings, folder, f"worker{i}", metrics_port=port)
               for i, port in enumerate(metrics_ports)]
    run = uuid.uuid4().hex[:6]
    prefix = f"scale-{run}-"
    try:
        client = await connect(settings)
        began = datetime.now(UTC)
        if args.quick:
            zone, cadence, due_at = "UTC", "40s", None
        else:
            # Leave room for the set-up, then wait for the zone's midnight.
            zone, due_at = checkin_zone(began, setup_s=60 + n * args.setup_s_per_engagement)
            cadence = "1d"
        results: dict[str, Any] = {"engagements": n, "actions": n * ACTIONS, "quick": args.quick,
                                   "machine": f"{len(os.sched_getaffinity(0))} cores", "owner_timezone": zone,
                                   "max_cached_workflows": settings.max_cached_workflows, "workers": args.workers,
                                   "workflow_sandbox": settings.workflow_sandbox}
        with RssSampler([w.pid for w in workers]) as rss:
            limit = asyncio.Semaphore(IN_FLIGHT)
            done = 0

            async def one(i: int) -> None:
                nonlocal done
                async with limit:
                    await set_up(client, pool, settings, f"{prefix}{i}", cadence, zone)
                done += 1

            with console.status("scale: setting up engagements...") as status:
                tasks = [asyncio.create_task(one(i)) for i in range(n)]
                while not all(t.done() for t in tasks):
                    await asyncio.sleep(1)
                    status.update(f"scale: {done}/{n} engagements in follow-through, "
                                  f"worker {rss.current_kb() // 1024} MB")
                await asyncio.gather(*tasks)
                # Every follow-through has planned its first check-in.
                while len(await due_times(pool, prefix)) < n * ACTIONS:
                    await asyncio.sleep(1)
            results["start_s"] = round((datetime.now(UTC) - began).total_seconds(), 1)
            results["open_workflows"] = (await client.count_workflows(
                f'ExecutionStatus="Running" AND WorkflowId STARTS_WITH "engagement/{prefix}"')).count
            due = await due_times(pool, prefix)
            if due_at is not None:
                # An action assigned after the zone's midnight (a set-up slower than planned) is due a day
                # later: counted, and left out of the burst.
                results["late_assignments"] = sum(1 for d in due.values() if d != due_at)
                due = {k: d for k, d in due.items() if d == due_at}
            first_due = min(due.values())
            console.print(f"[green]✓[/] {n} engagements open in {results['start_s']} s; "
                          f"{len(due)} check-ins due from {first_due:%H:%M:%S} UTC"
                          + (f" (midnight in {zone})" if due_at is not None else ""))
            with console.status("scale: waiting for the check-ins to fall due...") as status:
                while datetime.now(UTC) < first_due:
                    status.update(f"scale: check-ins fall due in {(first_due - datetime.now(UTC)).seconds} s, "
                                  f"worker {rss.current_kb() // 1024} MB")
                    await asyncio.sleep(1)
            results["worker_rss_mb_idle"] = round(rss.current_kb() / 1024, 1)
            server_pid = server_pid_of(stack)
            cpu_before = cpu_s([w.pid for w in workers]), cpu_s([server_pid])
            counts_before = sdk_counts(metrics_ports)
            deadline = time.monotonic() + args.timeout
            with console.status("scale: check-ins going out...") as status:
                while True:
                    sent = await sent_times(pool, prefix)
                    status.update(f"scale: {len(sent)}/{len(due)} check-ins sent, "
                                  f"worker {rss.current_kb() // 1024} MB")
                    if len(sent) >= len(due) or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(2)
            results["worker_rss_mb"] = round(rss.peak_kb / 1024, 1)
            cpu = cpu_s([w.pid for w in workers]) - cpu_before[0], cpu_s([server_pid]) - cpu_before[1]
            counts = sdk_counts(metrics_ports)
            results["burst_sdk_counts"] = {k: round(counts[k] - counts_before[k]) for k in counts}
        lags = sorted((sent[k] - due[k]).total_seconds() for k in sent)
        last = max(sent.values()) if sent else first_due
        results.update({
            "checkins_sent": len(sent), "checkins_due": len(due),
            "checkins_per_s": round(len(sent) / max(0.001, (last - first_due).total_seconds()), 1),
            "max_checkin_lag_s": round(lags[-1], 1) if lags else None,
            "median_checkin_lag_s": round(lags[len(lags) // 2], 1) if lags else None,
            **cpu_figures("", cpu[0], cpu[1], len(sent)),
        })
        console.print(f"[green]✓[/] {len(sent)} check-ins sent, the last {results['max_checkin_lag_s']} s late")
        if not args.no_baseline:
            results.update(await bare_burst(client, settings, folder, n, args.quick, args.timeout, server_pid))
            if results["bare_max_checkin_lag_s"] and results["max_checkin_lag_s"] is not None:
                results["lag_vs_bare"] = round(results["max_checkin_lag_s"] / results["bare_max_checkin_lag_s"], 2)
        if args.batched_baseline:
            results.update(await bare_burst(client, settings, folder, n, args.quick, args.timeout, server_pid,
                                            batched=True))
            if results.get("bare_max_checkin_lag_s") and results["batched_max_checkin_lag_s"]:
                results["batched_vs_bare"] = round(
                    results["batched_max_checkin_lag_s"] / results["bare_max_checkin_lag_s"], 2)
        return results
    finally:
        for worker in workers:
            stop_process(worker)
        await pool.close()
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engagements", type=int, default=None, help="open engagements (default 2000)")
    parser.add_argument("--quick", action="store_true",
                        help="3 engagements and a cadence of seconds, to prove the script works (CI)")
    parser.add_argument("--setup-s-per-engagement", type=float, default=0.6,
                        help="planned set-up time per engagement, to pick the zone whose midnight comes after it")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the check-ins")
    parser.add_argument("--workers", type=int, default=1, help="worker processes on the one task queue")
    parser.add_argument("--max-cached-workflows", type=int, default=None,
                        help="the workers' sticky cache (default: the setting, ENGAGE_MAX_CACHED_WORKFLOWS)")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run the workers without the workflow sandbox (ENGAGE_WORKFLOW_SANDBOX=false)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the bare-Temporal burst that follows ours (bench/bare.py)")
    parser.add_argument("--baseline-only", action="store_true",
                        help="only the bare-Temporal burst: what this machine does at best, in minutes")
    parser.add_argument("--batched-baseline", action="store_true",
                        help="after the bare burst, the same burst with one bare workflow per engagement (one timer "
                             "and one activity for its 5 check-ins): what that design could gain at best")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    from adapters.logging import configure_logging

    configure_logging("console", logging.WARNING)
    results = asyncio.run(main_async(args))
    print_figures(results, args.json)


if __name__ == "__main__":
    main()
