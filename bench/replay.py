"""What a cold workflow task costs the worker: replaying recorded histories, with and without the sandbox.

    python bench/replay.py [--rounds N] [--json]

A workflow that is not in the worker's sticky cache is rebuilt from its whole history on its next task. In a
burst of check-ins (bench/scale.py) most tasks are such cold ones, so this is the worker's unit cost there.
Replays tests/histories/ (an engagement from start to closed, and one of its follow-throughs) with the SDK's
Replayer and the data converter the worker uses, in the sandbox (the default) and without it
(ENGAGE_WORKFLOW_SANDBOX=false), in one process. No server is involved.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.client import WorkflowHistory  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.worker import Replayer  # noqa: E402

from bench import print_figures  # noqa: E402
from tests.lifecycle import load_history  # noqa: E402
from worker import workflow_runner  # noqa: E402
from workflows.registry import WORKFLOWS  # noqa: E402

HISTORIES = Path(__file__).resolve().parent.parent / "tests" / "histories"
CASES = {"engagement": "lifecycle_closed.json", "follow_through": "lifecycle_closed.A1.run1.json"}


async def replay_ms(history: WorkflowHistory, rounds: int, sandbox: bool) -> float:
    """Mean milliseconds per replay over `rounds`, after one warm-up (imports, type adapters)."""
    replayer = Replayer(workflows=WORKFLOWS,
                        data_converter=pydantic_data_converter, workflow_runner=workflow_runner(sandbox))
    await replayer.replay_workflow(history)
    began = time.perf_counter()
    for _ in range(rounds):
        await replayer.replay_workflow(history)
    return (time.perf_counter() - began) * 1000 / rounds


async def main_async(rounds: int) -> dict[str, Any]:
    results: dict[str, Any] = {"rounds": rounds}
    for label, name in CASES.items():
        history = load_history(HISTORIES / name)
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
