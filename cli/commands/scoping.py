"""Scoping: `engage recommend` (a format for a scoping file, no workflow) and `engage start` (the engagement's
workflow, through the checks of cli/starting.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from cli.app import console, emit_json, run, settings, show, temporal_client
from cli.errors import fail, guarded

commands = typer.Typer()


@commands.command()
def recommend(
    scoping_file: Path = typer.Argument(..., metavar="SCOPING.yaml"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Recommend a format (no workflow): format, duration, location, participants, agenda, rationale."""
    from cli.inputs import load_model
    from schemas.scoping import Scoping

    scoping = guarded(lambda: load_model(scoping_file, Scoping))
    from domain.format import recommend as recommend_format  # after the file: bad input is refused sooner

    recommendation = guarded(lambda: recommend_format(scoping))
    show(recommendation, as_json, "print_recommendation")
    _warn_short_cadence(scoping)


@commands.command()
def start(
    scoping_file: Path = typer.Argument(..., metavar="SCOPING.yaml"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Start an engagement from a scoping file; prints its id and the recommendation."""
    from cli.inputs import load_model
    from schemas.scoping import Scoping

    scoping = guarded(lambda: load_model(scoping_file, Scoping))
    _refuse_short_cadence(scoping)

    async def go() -> Any:
        import uuid

        from adapters.temporal import engagement_workflow_id
        from cli.starting import start_engagement
        from domain.format import recommend as recommend_format
        from schemas.views import StartResult
        from store.db import create_pool

        engagement_id = scoping.id or f"{_slug(scoping.client)}-{uuid.uuid4().hex[:6]}"
        client = await temporal_client()
        recommendation = recommend_format(scoping)
        summary = (f"{scoping.client}: {recommendation.format.value.replace('_', ' ')} "
                   f"({scoping.constraints.earliest} .. {scoping.constraints.latest})")
        details = (f"**Client:** {scoping.client}\n\n**Format:** {recommendation.format.value} (recommended)\n\n"
                   f"**Session window:** {scoping.constraints.earliest} .. {scoping.constraints.latest}\n\n"
                   f"**Sponsor:** {scoping.sponsor.name} <{scoping.sponsor.email}>\n\n"
                   f"**Consultant:** {scoping.consultant.name} <{scoping.consultant.email}>")
        pool = await create_pool(settings())
        try:
            await start_engagement(client, pool, settings(), engagement_id, scoping,
                                   static_summary=summary, static_details=details)
        finally:
            await pool.close()
        return StartResult(engagement_id=engagement_id, workflow_id=engagement_workflow_id(engagement_id),
                           recommendation=recommendation)

    result = run(go)
    if as_json:
        emit_json(result)
        return
    from cli.views import print_recommendation, styled

    terminal = console()
    terminal.print(styled("Started engagement ", (result.engagement_id, "bold")))
    print_recommendation(terminal, result.recommendation)
    terminal.print(f"Next: engage choose {result.engagement_id} --format {result.recommendation.format.value}")


def _refuse_short_cadence(scoping: Any) -> None:
    """Exit 2 before any service is contacted when the cadence is under the minimum (cli/starting.py)."""
    from cli.starting import cadence_error

    error = guarded(lambda: cadence_error(scoping, settings()))
    if error is not None:
        fail(2, error)


def _warn_short_cadence(scoping: Any) -> None:
    """`recommend` starts nothing, so a short cadence is a warning there: the line `engage start` would exit with."""
    from cli.starting import cadence_error

    error = guarded(lambda: cadence_error(scoping, settings()))
    if error is not None:
        sys.stderr.write(f"warning: {error}; `engage start` refuses it\n")


def _slug(text: str) -> str:
    import re

    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (slug or "engagement")[:40].strip("-")
