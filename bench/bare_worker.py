"""The worker of the burst baseline (bench/scale.py): bare workflows, configured as worker.py configures ours.

    python bench/bare_worker.py --ready-file PATH --log PATH

Settings come from the same ENGAGE_* variables as worker.py (Temporal address, task queue, sticky cache).
Each bare check-in appends "key unix-time" to the log, the baseline's equivalent of the outbox's `sent_at`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.temporal import connect  # noqa: E402
from bench.bare import (  # noqa: E402
    BareBatchedEngagement,
    BareFollowThrough,
    BareScaleEngagement,
    bare_checkin,
    bare_checkins,
    note_checkins_with,
)
from schemas.settings import get_settings  # noqa: E402
from worker import cache_bytecode, worker_options  # noqa: E402


async def run(ready_file: Path, log_path: Path) -> None:
    from temporalio.worker import Worker

    settings = get_settings()
    client = await connect(settings)
    cache_bytecode(Path(__file__).parent)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with log_path.open("a", buffering=1) as log:
        note_checkins_with(lambda key: log.write(f"{key} {time.time()}\n"))
        async with Worker(client, task_queue=settings.task_queue,
                          workflows=[BareScaleEngagement, BareFollowThrough, BareBatchedEngagement],
                          activities=[bare_checkin, bare_checkins], **worker_options(settings)):
            ready_file.write_text("ready\n")
            await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ready-file", type=Path, required=True, help="touched once the worker polls")
    parser.add_argument("--log", type=Path, required=True, help="where each bare check-in notes its time")
    args = parser.parse_args()
    asyncio.run(run(args.ready_file, args.log))


if __name__ == "__main__":
    main()
