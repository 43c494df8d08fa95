"""What a cold workflow task costs the worker: replaying recorded histories, with and without the sandbox.

    python bench/replay.py [--rounds N] [--json]

A workflow that is not in the worker's sticky cache is rebuilt from its whole history on its next task. In a
burst of check-ins (bench/scale.py) most tasks are such cold ones, so this is the worker's unit cost there.
Replays tests/histories/ with the SDK's Replayer and the data converter the worker uses, in the sandbox (the
default) and without it (ENGAGE_WORKFLOW_SANDBOX=false), in one process; no server is involved:

- `engagement`: an engagement from its start to closed;
- `action`: an action's own workflow (workflows/action.py), from its start to closed;
- `checkin_loop_first_round`: an engagement's check-in loop rebuilt when its first check-ins fall due (its first
  16 events: started, the first check-ins planned, the timer, the timer fired and the task that sends them).
  This is the cold task of every engagement in bench/scale.py's burst.

Each figure is the median time of one replay, timed between the histories one Replayer takes in turn, as a
worker rebuilds workflow after workflow: the Replayer's own start (which prepares every workflow type once) is
not in it. The workflows' bytecode is cached first, as the worker does at start (worker.py `cache_bytecode`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio.client import WorkflowHistory  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.worker import Replayer  # noqa: E402

from bench import print_figures  # noqa: E402
from tests.lifecycle import load_history  # noqa: E402
from worker import cache_bytecode, workflow_runner  # noqa: E402
from workflows.registry import WORKFLOWS  # noqa: E402

HISTORIES = ROOT / "tests" / "histories"
# label: (history file, how many of its first events; None: all)
CASES: dict[str, tuple[str, int | None]] = {
    "engagement": ("lifecycle_closed.json", None),
    "action": ("lifecycle_closed.A1.run1.json", None),
    "checkin_loop_first_round": ("lifecycle_closed.checkins.run1.json", 16),
}
WARM_UP = 3  # replays left out of the figure: the first instance of a type imports and builds its adapters


async def replay_ms(history: WorkflowHistory, rounds: int, sandbox: bool) -> float:
    """Median milliseconds per replay over `rounds`, each timed from when the Replayer asked for the history to
    when it asked for the next one (it replays them one after the other)."""
    asked: list[float] = []

    async def copies() -> AsyncIterator[WorkflowHistory]:
        for _ in range(WARM_UP + rounds):
            asked.append(time.perf_counter())
            yield history  # one after the other, so the same workflow id (the engagement derives its children's)
        asked.append(time.perf_counter())

    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter,
                        workflow_runner=workflow_runner(sandbox))
    await replayer.replay_workflows(copies(), raise_on_replay_failure=True)  # a failed replay raises
    times = [(b - a) * 1000 for a, b in itertools.pairwise(asked)][WARM_UP:]
    return statistics.median(times)


async def main_async(rounds: int) -> dict[str, Any]:
    cache_bytecode(ROOT / "workflows")
    results: dict[str, Any] = {"rounds": rounds}
    for label, (name, first) in CASES.items():
        history = load_history(HISTORIES / name)
        if first is not None:
            history = WorkflowHistory(history.workflow_id, history.events[:first])
        results[f"{label}_events"] = len(history.events)
        sandboxed = await replay_ms(history, rounds, sandbox=True)
        bare = await replay_ms(history, rounds, sandbox=False)
        results[f"{label}_replay_ms_sandboxed"] = round(sandboxed, 1)
        results[f"{label}_replay_ms_unsandboxed"] = round(bare, 1)
        results[f"{label}_sandbox_cost"] = round(sandboxed / bare, 2)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=50, help="replays of each history in each mode")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    results = asyncio.run(main_async(args.rounds))
    print_figures(results, args.json)


if __name__ == "__main__":
    main()
