"""When an activity finished: the time it hands back to its workflow.

A workflow may trust a time that is in its history (an activity's result, a timer's deadline) to have passed.
`workflow.now()` it cannot always trust: on a fresh worker, the task that followed a long activity was seen to get
the time of the task before, so the live task and its replay decided differently (docs/architecture.md,
"Time in workflows")."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity


def finished_at() -> datetime:
    """Now, by this host's clock, and never before the server scheduled this attempt (on the time-skipping
    server, the tests' and `engage preview`'s, the server's clock runs ahead of the host's)."""
    return max(datetime.now(UTC), activity.info().current_attempt_scheduled_time)
