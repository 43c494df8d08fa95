"""The outbox's crash window: from the relay's 250 to DATA to the moment the mark's UPDATE leaves the worker.

    python bench/email_window.py [--messages N] [--concurrency C] [--busy T] [--json]

A SIGKILL inside a message's window sends it again on retry (docs/email.md, "The remaining window"); anywhere
else it sends nothing twice. Embedded Postgres (durable, as the chaos run and `engage dev` run it) and the SMTP
sink in a process of its own, on loopback. N messages, C at a time, twice in the same run, on the same stack
and under the same load:

- `sender_process`: `Mailer.send` as the worker sends, the conversation and its mark in the mail sender
  process (adapters/email/sender.py);
- `in_process`, the baseline: the conversation and the mark on the caller's loop, in the worker's process, as
  before the sender process, built from the same parts (`converse` with the mark as `accepted`).

`--busy T` keeps T threads and the bench's own loop busy with pure-Python work in 2 ms slices, as a worker's
workflow activations (threads, holding the interpreter lock) and its other activities (its loop) do; 0 is an
idle worker. For each way, in milliseconds (median, p99, max):

- `exposure`: from the relay's 250 (the sink names each .eml by `time.time_ns()` just before it answers) to the
  mark's UPDATE going out (`SendTiming.marking_at_ns`; one machine, one clock). Once the UPDATE has left,
  Postgres commits it whatever becomes of the worker, so this is the window a SIGKILL must hit;
- `commit`: from the 250 heard to the mark committed (the figure docs/email.md gave before: an upper bound);
- `exposed_share`: the sum of the exposures over the wall time, i.e. (at most) the chance that a kill at a
  random moment of such a burst sends some message twice.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402

from adapters.email.headers import sender_parts  # noqa: E402
from adapters.email.mime import build_email  # noqa: E402
from adapters.email.send import Mailer  # noqa: E402
from adapters.email.smtp import converse  # noqa: E402
from bench import print_figures  # noqa: E402
from bench.run import start_postgres_and_sink  # noqa: E402
from schemas.events import MessageKind  # noqa: E402
from schemas.messages import MessageContext, OutboundMessage, Recipient  # noqa: E402
from schemas.settings import Settings  # noqa: E402
from store import outbox  # noqa: E402
from store.db import create_pool  # noqa: E402
from store.migrate import migrate  # noqa: E402

SLICE_S = 0.002


def message(run: str, n: int) -> OutboundMessage:
    return OutboundMessage(
        engagement_id=f"window-{run}", key=f"window-{run}/report/{n}", kind=MessageKind.report,
        to=Recipient(name="Ana Silva", email="ana@acme.example", timezone="Europe/Berlin"),
        context=MessageContext(client="Acme", engagement_id=f"window-{run}", recipient_name="Ana Silva",
                               consultant_name="Cora Consultant"),
    )


def ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50_ms": round(1000 * statistics.median(ordered), 3),
            "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
            "max_ms": round(1000 * ordered[-1], 3)}


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def in_the_callers_process(mailer: Mailer, pool: asyncpg.Pool, msg: OutboundMessage) -> None:
    """The baseline: reserve, conversation and mark on the caller's loop, as Mailer.send did before the sender
    process."""
    message_id = mailer.message_id(msg)
    mime = build_email(msg, mailer.settings, message_id)
    async with outbox.sending(pool, message_id) as conn:
        await outbox.reserve(conn, message_id=message_id, engagement_id=msg.engagement_id, key=msg.key,
                             kind=msg.kind.value, recipients=[msg.to.email], subject=str(mime["Subject"]))
        _, timing = await converse(mailer.target, mime, sender_parts(mailer.settings)[1], [msg.to.email],
                                   accepted=lambda: outbox.mark_sent(conn, message_id))
        mailer.recent_timings.append(timing)


def relay_answered_ns(folder: Path) -> dict[str, int]:
    """Message-ID -> when the sink answered 250 (the time_ns its file is named by)."""
    answered = {}
    for path in folder.glob("*.eml"):
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        answered[str(parsed["Message-ID"])] = int(path.name.split("-", 1)[0])
    return answered


async def measure(way: str, send: Callable[[OutboundMessage], Awaitable[None]], mailer: Mailer, n: int,
                  concurrency: int, busy: int, sink_folder: Path) -> dict[str, Any]:
    run_id = f"{way}-{time.time_ns()}"
    pending = iter(range(n))
    stop = threading.Event()

    async def sender() -> None:
        for i in pending:
            await send(message(run_id, i))

    async def busy_loop() -> None:
        while not stop.is_set():
            spin(SLICE_S)
            await asyncio.sleep(0)

    def busy_thread() -> None:
        while not stop.is_set():
            spin(SLICE_S)

    threads = [threading.Thread(target=busy_thread, daemon=True) for _ in range(busy)]
    for t in threads:
        t.start()
    loop_load = asyncio.create_task(busy_loop()) if busy else None
    began = time.perf_counter()
    try:
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        wall = time.perf_counter() - began
    finally:
        stop.set()
        if loop_load is not None:
            await loop_load
        for t in threads:
            t.join()
    ours = {mailer.message_id(message(run_id, i)) for i in range(n)}
    timings = [t for t in mailer.recent_timings if t.message_id in ours]
    answered = relay_answered_ns(sink_folder)
    exposures = [max(0, t.marking_at_ns - answered[t.message_id]) / 1e9 for t in timings]
    return {
        "messages": len(timings),
        "exposure": ms(exposures),
        "commit": ms([t.window_s for t in timings]),
        "exposed_share": round(sum(exposures) / wall, 5),
        "messages_per_s": round(len(timings) / wall, 1),
    }


async def run(n: int, concurrency: int, busy: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="engage-window-"))
    postgres, sink = start_postgres_and_sink(folder)
    results: dict[str, Any] = {"messages": n, "concurrency": concurrency, "busy_threads": busy}
    try:
        settings = Settings(_env_file=None, database_url=postgres.url, smtp_url=sink.url)  # type: ignore[call-arg]
        pool = await create_pool(settings)
        try:
            await migrate(pool)
            mailer = Mailer(settings, pool)

            async def via_mailer(msg: OutboundMessage) -> None:
                await mailer.send(msg)

            async def via_callers_process(msg: OutboundMessage) -> None:
                await in_the_callers_process(mailer, pool, msg)

            results["in_process"] = await measure("in_process", via_callers_process, mailer, n, concurrency, busy,
                                                   sink.folder)
            results["sender_process"] = await measure("sender_process", via_mailer, mailer, n, concurrency, busy,
                                                      sink.folder)
        finally:
            await pool.close()
    finally:
        sink.stop()
        postgres.stop()
    results["exposure_p50_vs_in_process"] = round(
        results["sender_process"]["exposure"]["p50_ms"] / max(results["in_process"]["exposure"]["p50_ms"], 1e-6), 3)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=500, help="per way (default 500)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--busy", type=int, default=1, help="busy threads beside the sends (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if not 1 <= args.messages <= 2048:  # Mailer.recent_timings keeps the latest 4,096, both ways together
        parser.error("--messages must be 1..2048")
    if args.busy < 0:
        parser.error("--busy must be 0 or more")
    print_figures(asyncio.run(run(args.messages, args.concurrency, args.busy)), args.json)


if __name__ == "__main__":
    main()
