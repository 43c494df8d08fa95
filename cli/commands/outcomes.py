"""After the session: `engage session record` (its decisions, dot votes and actions; follow-through starts)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from cli.app import console, query_status, run, send_update
from cli.errors import fail, guarded

session_app = typer.Typer(help="The session: record its outcomes.", no_args_is_help=True)


@session_app.command("record")
def session_record(
    engagement: str = typer.Argument(..., metavar="ENG"),
    outcomes_file: Path = typer.Argument(..., metavar="OUTCOMES.yaml"),
) -> None:
    """Record the session's decisions, dot votes and actions; follow-through starts."""
    from cli.inputs import load_model
    from schemas.outcomes import Outcomes

    outcomes = guarded(lambda: load_model(outcomes_file, Outcomes))
    from schemas.updates import RecordOutcomes  # after the file: bad input is refused sooner

    payload = guarded(lambda: RecordOutcomes(outcomes=outcomes))
    _check_votes(engagement, outcomes)
    from workflows.engagement import EngagementWorkflow

    ids = run(lambda: send_update(engagement, EngagementWorkflow.record_outcomes, payload))
    console().print(f"{engagement}: outcomes recorded; actions {', '.join(ids)}")


def _check_votes(engagement: str, outcomes: Any) -> None:
    """Blocks the outcomes name must be on the agenda as held (exit 2); dot votes that the dots cannot carry get a
    warning on stderr, and are recorded all the same: they are what the room did."""
    from domain.agenda import unknown_blocks, vote_warnings

    status_ = run(lambda: query_status(engagement))
    agenda_ = (status_.session.agenda if status_.session else None) or status_.recommendation.agenda
    refs = [v.block for v in outcomes.dot_votes] + [d.block for d in outcomes.decisions]
    unknown = unknown_blocks(agenda_, refs)
    if unknown:
        known = ", ".join(i.ref for i in agenda_.items if i.ref) or "none"
        fail(2, f"block: {', '.join(unknown)} is not a block of the agenda (blocks: {known}; see engage agenda "
                f"{engagement})")
    votes = [(v.option, v.votes, v.block) for v in outcomes.dot_votes]
    for warning in vote_warnings(agenda_, votes, agenda_.group_size or len(status_.recommendation.participants)):
        sys.stderr.write(f"warning: {warning}\n")
