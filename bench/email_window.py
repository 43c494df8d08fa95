"""The outbox's crash window: from the relay's 250 to DATA to the committed `mark_sent`.

    python bench/email_window.py [--messages N] [--concurrency C] [--json]

Embedded Postgres (durable, as the chaos run and `engage dev` run it) and the SMTP sink in a process of its own,
on loopback; N messages through `Mailer.send`, C at a time. A SIGKILL inside a message's window sends it again
on retry (docs/email.md, "The remaining window"); anywhere else it sends nothing twice. Prints, in
milliseconds, the window's median, p99 and max; the same for QUIT, which the window also held before the mark
moved ahead of it; and `exposed_share`: the sum of the windows over the wall time, i.e. (at most) the chance
that a kill at a random moment of such a burst lands in some message's window.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.email.send import Mailer  # noqa: E402
from bench import print_figures  # noqa: E402
from bench.run import MailSinkProcess  # noqa: E402
from devstack.postgres import EmbeddedPostgres  # noqa: E402
from devstack.process import free_port  # noqa: E402
from schemas.events import MessageKind  # noqa: E402
from schemas.messages import MessageContext, OutboundMessage, Recipient  # noqa: E402
from schemas.settings import Settings  # noqa: E402
from store.db import create_pool  # noqa: E402
from store.migrate import migrate  # noqa: E402


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


async def run(n: int, concurrency: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="engage-window-"))
    postgres = EmbeddedPostgres(folder / "pg", free_port())
    sink = MailSinkProcess(folder / "mail", free_port())
    for part in (postgres, sink):
        part.launch()
    for part in (postgres, sink):
        part.wait_ready()
    try:
        settings = Settings(_env_file=None, database_url=postgres.url, smtp_url=sink.url)  # type: ignore[call-arg]
        pool = await create_pool(settings)
        try:
            await migrate(pool)
            mailer = Mailer(settings, pool)
            run_id = str(time.time_ns())
            pending = iter(range(n))

            async def sender() -> None:
                for i in pending:
                    await mailer.send(message(run_id, i))

            began = time.perf_counter()
            await asyncio.gather(*(sender() for _ in range(concurrency)))
            wall = time.perf_counter() - began
        finally:
            await pool.close()
    finally:
        sink.stop()
        postgres.stop()
    windows = [w for w, _ in mailer.recent_windows]
    quits = [q for _, q in mailer.recent_windows]
    return {
        "messages": len(windows),
        "concurrency": concurrency,
        "window": ms(windows),
        "quit": ms(quits),
        "window_before": ms([w + q for w, q in mailer.recent_windows]),
        "exposed_share": round(sum(windows) / wall, 5),
        "exposed_share_before": round(sum(w + q for w, q in mailer.recent_windows) / wall, 5),
        "messages_per_s": round(len(windows) / wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if not 1 <= args.messages <= 4096:  # Mailer.recent_windows keeps the latest 4,096
        parser.error("--messages must be 1..4096")
    print_figures(asyncio.run(run(args.messages, args.concurrency)), args.json)


if __name__ == "__main__":
    main()
