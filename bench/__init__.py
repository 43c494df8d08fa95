"""Benchmarks and the chaos run: scripts that print their figures (docs/BENCHMARKS.md, docs/RELIABILITY.md)."""

from __future__ import annotations

import json
from typing import Any


def print_figures(results: dict[str, Any], as_json: bool) -> None:
    """One JSON object (`--json`, what the docs quote), or one aligned line per figure for a reader."""
    if as_json:
        print(json.dumps(results, default=str))
        return
    width = max(map(len, results), default=0)
    for key, value in results.items():
        print(f"{key:>{width}}: {value}")
