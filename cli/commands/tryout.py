"""Trying the engine before anything is real: `engage preview` (what-if: the real workflows on the time-skipping
server) and `engage demo` (one sample engagement on the embedded stack)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cli.app import console, emit_json, run, settings
from cli.commands.stack import stack_options
from cli.errors import BadInput, guarded

if TYPE_CHECKING:
    from devstack.stack import Ports

commands = typer.Typer()


@commands.command()
def preview(
    scoping_file: Path = typer.Argument(..., metavar="SCOPING.yaml"),
    outcomes_file: Path | None = typer.Option(None, "--outcomes", metavar="OUTCOMES.yaml",
                                              help="the session's outcomes, to preview the follow-through too"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """What-if: every email, invitation, check-in, reminder and escalation, with its time, before anything
    is real (the real workflows on the time-skipping server; owners who never answer)."""
    from cli.inputs import load_model
    from schemas.outcomes import Outcomes
    from schemas.scoping import Scoping

    scoping = guarded(lambda: load_model(scoping_file, Scoping))
    outcomes = guarded(lambda: load_model(outcomes_file, Outcomes)) if outcomes_file else None

    async def go() -> Any:
        from cli.preview import preview as run_preview

        try:
            return await run_preview(scoping, outcomes)
        except ValueError as exc:
            raise BadInput(str(exc)) from exc

    terminal = console()
    if as_json:
        emit_json(run(go))
        return
    with terminal.status("Running the engagement on the time-skipping server..."):
        result = run(go)
    from cli.views import print_preview

    print_preview(terminal, result)


@commands.command()
@stack_options
def demo(
    data_dir: Path,
    ports: Ports,
    keep_running: bool = typer.Option(True, "--keep-running/--no-keep-running",
                                      help="after the demo, keep the stack up for the UI until Ctrl-C"),
) -> None:
    """Run one complete sample engagement (about 90 seconds) and print its report. Starts the embedded stack
    (the options of `engage dev`) when nothing answers at ENGAGE_TEMPORAL_ADDRESS."""
    from cli.demo import run_demo

    guarded(lambda: run_demo(settings(), data_dir, ports, keep_running))
