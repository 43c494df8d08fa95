"""The engage worker: every workflow and activity on one task queue. `python worker.py` or `engage worker`."""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from schemas.settings import Settings, get_settings

log = structlog.get_logger("worker")


def cache_bytecode(folder: Path) -> None:
    """Write the bytecode caches of a folder of workflow modules, when missing or stale.

    The workflow sandbox imports the workflow modules afresh for every workflow run it starts. Without
    caches (PYTHONDONTWRITEBYTECODE=1, common in containers and set on our dev machines) every one of those
    imports compiles the source again: a fifth of a busy worker's time, measured with py-spy. Best effort: a
    read-only install keeps the caches pip wrote when it installed the package."""
    import compileall

    compileall.compile_dir(folder, quiet=2)


def build_worker(client: Client, settings: Settings, activities: list) -> Worker:
    from workflows.registry import WORKFLOWS

    cache_bytecode(Path(__file__).parent / "workflows")
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=activities,
        **worker_options(settings),
    )


def workflow_runner(sandbox: bool) -> WorkflowRunner:
    """The SDK's sandbox (its default), or none (ENGAGE_WORKFLOW_SANDBOX=false; the cost is in docs/BENCHMARKS.md)."""
    return SandboxedWorkflowRunner() if sandbox else UnsandboxedWorkflowRunner()


def worker_options(settings: Settings) -> dict[str, Any]:
    """How every engage worker is tuned (bench/bare_worker.py runs its baseline with the same)."""
    return {
        "workflow_runner": workflow_runner(settings.workflow_sandbox),
        # A restarted worker should pick up cached workflows within seconds, not after the default 10 s.
        "sticky_queue_schedule_to_start_timeout": timedelta(seconds=3),
        "max_cached_workflows": settings.max_cached_workflows,
        "max_concurrent_workflow_tasks": settings.max_concurrent_workflow_tasks,
        "graceful_shutdown_timeout": timedelta(seconds=10),
    }


async def run(settings: Settings, ready_file: Path | None = None) -> None:
    from activities import build_activities
    from adapters.temporal import connect
    from store.db import create_pool
    from store.migrate import migrate

    client = await connect(settings)
    pool = await create_pool(settings)
    await migrate(pool)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = build_worker(client, settings, build_activities(settings, pool))
    try:
        async with worker:
            log.info("worker ready", task_queue=settings.task_queue, temporal=settings.temporal_address,
                     metrics_port=settings.metrics_port)
            if ready_file is not None:
                ready_file.write_text("ready\n")
            await stop.wait()
            log.info("worker stopping")
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> None:
    from adapters.logging import configure_logging

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ready-file", type=Path, help="touched once the worker polls its task queue")
    args = parser.parse_args(argv)
    settings = get_settings()
    settings.refuse_production_secret("engage worker")
    configure_logging(settings.log_format)
    asyncio.run(run(settings, args.ready_file))


if __name__ == "__main__":
    main()
