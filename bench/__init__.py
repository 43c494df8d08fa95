"""Benchmarks and the chaos run: scripts that print their figures (docs/BENCHMARKS.md, docs/RELIABILITY.md)."""

from __future__ import annotations

import asyncio
import json
from typing import Any


def unless_cancelled() -> None:
    """Call where a retry loop caught a failed client call: a cancel surfaces as an RPC error (the SDK turns it
    into one), and retrying it would keep a run that is ending alive for ever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def print_figures(results: dict[str, Any], as_json: bool) -> None:
    """One JSON object (`--json`, what the docs quote), or one aligned line per figure for a reader."""
    if as_json:
        print(json.dumps(results, default=str))
        return
    width = max(map(len, results), default=0)
    for key, value in results.items():
        print(f"{key:>{width}}: {value}")
