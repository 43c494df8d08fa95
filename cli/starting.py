"""Starting an engagement: the checks every starter of a real engagement goes through (`engage start`, the demo).

Two rules, checked here and nowhere else:

- An engagement id is used once, for good. The log outlives the workflow: once Temporal's retention has deleted
  an engagement's workflow, only the log remembers its id, and a new run under that id would find its events
  and Message-IDs already written (it would send nothing and report the old client's data). So an id is refused
  when the log knows it, and Temporal refuses it too while it keeps the old run (REJECT_DUPLICATE, running or
  closed).
- A follow-through cadence is at least `Settings.min_cadence` (one hour unless ENGAGE_MIN_CADENCE lowers it for
  a demo, a test or a benchmark). Checked when an engagement starts, never in the workflow or the Scoping model:
  a worker must replay any engagement already running, whatever its cadence.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from cli.errors import BadInput
from schemas.common import format_duration
from schemas.scoping import Scoping
from schemas.settings import Settings

if TYPE_CHECKING:
    from adapters.engagement_client import EngagementHandle


def _duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    return format_duration(value) if seconds >= 1 and seconds == int(seconds) else f"{seconds:g}s"


def cadence_error(scoping: Scoping, settings: Settings) -> str | None:
    """Why this scoping's cadence is too short to start, in one line naming the field, the minimum and the
    setting; None when it is long enough."""
    cadence, minimum = scoping.follow_through.cadence, settings.min_cadence
    if cadence >= minimum:
        return None
    return (f"follow_through.cadence: {_duration(cadence)} is shorter than the minimum of {_duration(minimum)}; "
            f"choose a cadence of at least {_duration(minimum)} (demos and tests only: lower the minimum with "
            f"ENGAGE_MIN_CADENCE, e.g. ENGAGE_MIN_CADENCE=8s)")


def id_used(engagement_id: str) -> BadInput:
    return BadInput(f"id: engagement id {engagement_id!r} was used by an earlier engagement and ids are never "
                    f"reused; set another `id:` in the scoping file (or remove it to have one generated)")


async def start_engagement(client: Any, pool: Any, settings: Settings, engagement_id: str, scoping: Scoping,
                           **start_options: Any) -> EngagementHandle:
    """Start the engagement's workflow once both rules hold; returns its handle. Raises BadInput (exit 2) for a
    short cadence or a used id. `start_options` go to `start_workflow` (static_summary, static_details)."""
    from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from adapters.engagement_client import start_engagement_workflow
    from store.queries import engagement_id_logged

    if (error := cadence_error(scoping, settings)) is not None:
        raise BadInput(error)
    if await engagement_id_logged(pool, engagement_id):
        raise id_used(engagement_id)
    try:
        return await start_engagement_workflow(
            client, scoping, engagement_id=engagement_id, task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            **start_options)
    except WorkflowAlreadyStartedError as exc:
        raise id_used(engagement_id) from exc
