"""What one check-in request costs outside Temporal: the send activity's CPU, by process, per message.

    python bench/send_path.py [--rounds N] [--at-once C] [--json]

In the burst of bench/scale.py every process on the machine shares two cores, and Temporal's share alone is
known (its `batched` baseline). This measures the rest, the work each check-in does whatever the workflow
design: embedded Postgres (durable, as the worker's) and the SMTP sink in processes of their own, on loopback,
and the worker's own `send_messages` activity (activities/notify.py, built as activities/__init__.py builds
it), run by the SDK's activity environment (temporalio.testing.ActivityEnvironment) outside any workflow. Each
round is one engagement's five check-in requests due together, as a check-in loop sends them; C rounds at
once. CPU (user + system, from /proc) per message, in milliseconds:

- `worker`: the activity in the worker's process: rendering, the MIME message, the outbox's reservation and
  locks, the reply scope, the `message_sent` and check-in events (store/events.py);
- `sender`: the mail sender process (adapters/email/sender.py): the SMTP conversation and the outbox's mark;
- `sink`: the SMTP sink receiving the message (devstack/mailsink.py, as in bench/scale.py);
- `postgres`: every Postgres process;
- `total`, and `messages_per_s` (wall time).

The baseline in the same run, on the same sink: `bare_smtp`, each of the same messages, built beforehand,
sent in one plain SMTP conversation from one process (adapters/email/smtp.py `converse`), C conversations at
once (as many as ours has under way: its rounds send their messages one after the other), with no outbox, no
events and no sender process: what sending costs at the least. `total_vs_bare_smtp` is ours over it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog  # noqa: E402
from temporalio.testing import ActivityEnvironment  # noqa: E402

from activities import build_activities  # noqa: E402
from adapters.email.headers import sender_parts  # noqa: E402
from adapters.email.mime import build_email  # noqa: E402
from adapters.email.send import Mailer  # noqa: E402
from adapters.email.smtp import converse  # noqa: E402
from adapters.logging import configure_logging  # noqa: E402
from bench import print_figures  # noqa: E402
from bench.run import bench_scoping, start_postgres_and_sink  # noqa: E402
from domain.format import recommend  # noqa: E402
from schemas import events as ev  # noqa: E402
from schemas.messages import MessageContext, OutboundMessage, Recipient, ReplyScope  # noqa: E402
from schemas.outcomes import Metric, Owner  # noqa: E402
from schemas.settings import Settings  # noqa: E402
from store.db import create_pool  # noqa: E402
from store.events import append  # noqa: E402
from store.migrate import migrate  # noqa: E402

ACTIONS = 5
WARM_UP = 3  # rounds left out of the figures: the sender process starts, the pools fill
NOW = datetime.now(UTC)
TICK = os.sysconf("SC_CLK_TCK")


def owner(i: int) -> Owner:
    return Owner(name=f"Owner {i}", email=f"owner{i}@acme.example", timezone="Asia/Rangoon")


def checkin_request(engagement_id: str, i: int) -> OutboundMessage:
    """The first check-in request of action A`i`, as the loop builds it (workflows/follow_through.py `_message`)."""
    action_id, o = f"A{i}", owner(i)
    key = f"{engagement_id}/{action_id}/checkin/1"
    return OutboundMessage(
        engagement_id=engagement_id, key=key, kind=ev.MessageKind.checkin_request, action_id=action_id,
        to=Recipient(name=o.name, email=o.email, timezone=o.timezone), summary=f"Check-in 1 to {o.email}",
        reply=ReplyScope(action_id=action_id, number=1, expires_at=NOW + timedelta(days=37)),
        events=[ev.NewEvent(key=f"{key}/requested", occurred_at=NOW,
                            event=ev.CheckInRequested(action_id=action_id, number=1))],
        context=MessageContext(client="Acme Corp", engagement_id=engagement_id, recipient_name=o.name,
                               consultant_name="Dana Reyes", action_id=action_id, action_title=f"Initiative {i}",
                               owner_name=o.name, due=(NOW + timedelta(days=60)).date(), metric_name="Metric",
                               unit="units", baseline=0, target=100, status="on_track", checkin_number=1,
                               checkin_label="Tue 2026-12-01 00:00 Asia/Rangoon"))


async def open_engagement(pool: Any, engagement_id: str) -> None:
    """The read model a check-in's events and reply scope refer to: the engagement and its five actions."""
    scoping = bench_scoping(engagement_id, NOW.date())
    await append(pool, engagement_id, [
        ev.NewEvent(key=f"{engagement_id}/started", occurred_at=NOW,
                    event=ev.EngagementStarted(scoping=scoping, recommendation=recommend(scoping))),
        *(ev.NewEvent(key=f"{engagement_id}/A{i}/assigned", occurred_at=NOW, event=ev.ActionAssigned(
            action_id=f"A{i}", title=f"Initiative {i}", owner=owner(i), due=(NOW + timedelta(days=60)).date(),
            metric=Metric(name="Metric", unit="units", baseline=0, target=100, direction="increase"),
            assigned_at=NOW)) for i in range(1, ACTIONS + 1)),
    ])


def cpu_s(pid: int, *, children: bool = False) -> float:
    """CPU seconds of a process (and of its exited children it has waited for), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / TICK


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue  # gone meanwhile
    return found


class Meter:
    """CPU by process between `start` and `stop`: ms per message."""

    def __init__(self, postgres_pid: int, sink_pid: int) -> None:
        self.postgres_pid, self.sink_pid = postgres_pid, sink_pid

    def read(self) -> dict[str, float]:
        me = os.getpid()
        return {
            "worker": cpu_s(me),
            "sender": sum(cpu_s(p) for p in children_of(me) if p not in (self.postgres_pid, self.sink_pid)),
            "sink": cpu_s(self.sink_pid),
            # The postmaster's own, its backends' and those of backends that ended meanwhile.
            "postgres": cpu_s(self.postgres_pid, children=True)
                        + sum(cpu_s(p) for p in children_of(self.postgres_pid)),
        }

    async def measure(self, messages: int, run: Callable[[], Awaitable[None]]) -> dict[str, float]:
        before, began = self.read(), time.perf_counter()
        await run()
        wall, after = time.perf_counter() - began, self.read()
        figures = {k: round(1000 * (after[k] - before[k]) / messages, 2) for k in before}
        figures["total"] = round(sum(figures.values()), 2)
        figures["messages_per_s"] = round(messages / wall, 1)
        return figures


async def at_most(limit: int, jobs: list[Callable[[], Awaitable[None]]]) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(one(j) for j in jobs))


async def run(rounds: int, at_once: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="engage-send-path-"))
    # The worker's log lines, as it writes them (JSON, one per message), into a file of the run's.
    configure_logging("json")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=(folder / "worker.log").open("w")))
    postgres, sink = start_postgres_and_sink(folder)
    assert postgres.proc is not None and sink.proc is not None
    meter = Meter(postgres.proc.pid, sink.proc.pid)
    results: dict[str, Any] = {"rounds": rounds, "messages": rounds * ACTIONS, "at_once": at_once,
                               "machine": f"{len(os.sched_getaffinity(0))} cores"}
    try:
        settings = Settings(_env_file=None, database_url=postgres.url, smtp_url=sink.url)  # type: ignore[call-arg]
        pool = await create_pool(settings)
        try:
            await migrate(pool)
            send_messages = next(a for a in build_activities(settings, pool)
                                 if getattr(a, "__name__", "") == "send_messages")
            engagements = [f"send-path-{time.time_ns()}-{n}" for n in range(WARM_UP + rounds)]
            for engagement_id in engagements:
                await open_engagement(pool, engagement_id)

            def one_round(engagement_id: str) -> Callable[[], Awaitable[None]]:
                async def job() -> None:
                    env = ActivityEnvironment()
                    env.info = dataclasses.replace(env.info, activity_type="send_messages",
                                                   workflow_id=f"engagement/{engagement_id}/checkins",
                                                   current_attempt_scheduled_time=NOW)
                    results = await env.run(send_messages, [checkin_request(engagement_id, i)
                                                            for i in range(1, ACTIONS + 1)])
                    assert all(r.delivered_now for r in results), "every message of a fresh round goes out"
                return job

            await at_most(at_once, [one_round(e) for e in engagements[:WARM_UP]])
            results["ours"] = await meter.measure(
                rounds * ACTIONS, lambda: at_most(at_once, [one_round(e) for e in engagements[WARM_UP:]]))

            mailer = Mailer(settings, pool)
            sender = sender_parts(settings)[1]
            built = [(build_email(m, settings, mailer.message_id(m)), m.to.email)
                     for e in engagements[WARM_UP:] for m in (checkin_request(f"{e}-bare", i)
                                                             for i in range(1, ACTIONS + 1))]

            def bare(mime: Any, to: str) -> Callable[[], Awaitable[None]]:
                async def job() -> None:
                    await converse(mailer.target, mime, sender, [to])
                return job

            results["bare_smtp"] = await meter.measure(
                len(built), lambda: at_most(at_once, [bare(m, to) for m, to in built]))
        finally:
            await pool.close()
    finally:
        sink.stop()
        postgres.stop()
    results["total_vs_bare_smtp"] = round(results["ours"]["total"] / max(results["bare_smtp"]["total"], 0.01), 2)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=400, help="rounds of five check-ins (default 400)")
    parser.add_argument("--at-once", type=int, default=20, help="rounds under way at once (default 20)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.rounds < 1 or args.at_once < 1:
        parser.error("--rounds and --at-once must be 1 or more")
    print_figures(asyncio.run(run(args.rounds, args.at_once)), args.json)


if __name__ == "__main__":
    main()
