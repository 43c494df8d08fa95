"""The `engage` command (contract: CLI.md). Heavy modules are imported inside commands, so `--help` is fast."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from cli.errors import BadInput, guarded

if TYPE_CHECKING:
    from pydantic import BaseModel

T = TypeVar("T")

app = typer.Typer(
    help="Run executive engagements (offsites, strategy sessions) from scoping to the last check-in.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
preread_app = typer.Typer(help="Pre-reads: add one, record that a participant has read it.", no_args_is_help=True)
session_app = typer.Typer(help="The session: record its outcomes.", no_args_is_help=True)
app.add_typer(preread_app, name="preread")
app.add_typer(session_app, name="session")


class FormatName(StrEnum):
    offsite = "offsite"
    strategy_session = "strategy_session"
    combined = "combined"


class PhaseName(StrEnum):
    scoping = "scoping"
    format_choice = "format_choice"
    scheduling = "scheduling"
    pre_reads = "pre_reads"
    session = "session"
    action_assignment = "action_assignment"
    follow_through = "follow_through"
    closed = "closed"
    cancelled = "cancelled"


def _run(fn: Callable[[], Awaitable[T]]) -> T:
    return guarded(lambda: asyncio.run(fn()))  # type: ignore[arg-type, return-value]


def _emit_json(model: BaseModel) -> None:
    sys.stdout.write(model.model_dump_json() + "\n")


def _settings() -> Any:
    from schemas.settings import get_settings

    return get_settings()


async def _client() -> Any:
    from adapters.temporal import connect

    return await connect(_settings())


async def _handle(engagement_id: str) -> Any:
    from adapters.temporal import engagement_workflow_id

    client = await _client()
    return client.get_workflow_handle(engagement_workflow_id(engagement_id))


async def _update(engagement_id: str, update: str, payload: Any, result_type: type | None = None) -> Any:
    from temporalio.service import RPCError, RPCStatusCode

    handle = await _handle(engagement_id)
    try:
        return await handle.execute_update(update, payload, result_type=result_type)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise BadInput(f"engagement: unknown engagement {engagement_id!r}") from exc
        raise


def _console() -> Any:
    from rich.console import Console

    return Console()


# --- the stack --------------------------------------------------------------------------------------------


@app.command()
def dev(
    data_dir: Path = typer.Option(Path("var"), "--data-dir", help="where every part keeps its data"),
    temporal_port: int = typer.Option(7233, "--temporal-port", help="Temporal gRPC port"),
    ui_port: int = typer.Option(8233, "--ui-port", help="Temporal UI port"),
    postgres_port: int = typer.Option(55432, "--postgres-port", help="embedded Postgres port"),
    smtp_port: int = typer.Option(8025, "--smtp-port", help="SMTP sink port"),
    caldav_port: int = typer.Option(5232, "--caldav-port", help="Radicale (CalDAV) port"),
) -> None:
    """Run the embedded stack in the foreground: Temporal + UI, Postgres, SMTP sink, CalDAV, the worker."""
    from devstack.stack import DevStack, Ports, run_foreground

    ports = Ports(temporal=temporal_port, ui=ui_port, postgres=postgres_port, smtp=smtp_port, caldav=caldav_port)
    console = _console()

    def echo(part: str, address: str) -> None:
        console.print(f"[bold green]✓[/] {part:<12} {address}", highlight=False)

    guarded(lambda: run_foreground(DevStack(data_dir, ports, echo=echo)))


@app.command()
def worker() -> None:
    """Run the worker alone (same as `python worker.py`)."""
    import worker as worker_module

    guarded(lambda: worker_module.main([]))


# --- engagements ---------------------------------------------------------------------------------------


@app.command()
def recommend(
    scoping_file: Path = typer.Argument(..., metavar="SCOPING.yaml"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Recommend a format (no workflow): format, duration, location, participants, agenda, rationale."""
    from cli.inputs import load_model
    from domain.format import recommend as recommend_format
    from schemas.scoping import Scoping

    recommendation = guarded(lambda: recommend_format(load_model(scoping_file, Scoping)))
    if as_json:
        _emit_json(recommendation)
        return
    from cli.views import print_recommendation

    print_recommendation(_console(), recommendation)


@app.command()
def start(
    scoping_file: Path = typer.Argument(..., metavar="SCOPING.yaml"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Start an engagement from a scoping file; prints its id and the recommendation."""
    from cli.inputs import load_model
    from schemas.scoping import Scoping

    scoping = guarded(lambda: load_model(scoping_file, Scoping))

    async def go() -> Any:
        import uuid

        from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
        from temporalio.exceptions import WorkflowAlreadyStartedError

        from adapters.temporal import engagement_workflow_id
        from domain.format import recommend as recommend_format
        from schemas.state import EngagementInput, StartResult

        engagement_id = scoping.id or f"{_slug(scoping.client)}-{uuid.uuid4().hex[:6]}"
        client = await _client()
        recommendation = recommend_format(scoping)
        summary = (f"{scoping.client}: {recommendation.format.value.replace('_', ' ')} "
                   f"({scoping.constraints.earliest} .. {scoping.constraints.latest})")
        details = (f"**Client:** {scoping.client}\n\n**Format:** {recommendation.format.value} (recommended)\n\n"
                   f"**Session window:** {scoping.constraints.earliest} .. {scoping.constraints.latest}\n\n"
                   f"**Sponsor:** {scoping.sponsor.name} <{scoping.sponsor.email}>\n\n"
                   f"**Consultant:** {scoping.consultant.name} <{scoping.consultant.email}>")
        try:
            await client.start_workflow(
                "EngagementWorkflow",
                EngagementInput(engagement_id=engagement_id, scoping=scoping),
                id=engagement_workflow_id(engagement_id),
                task_queue=_settings().task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                static_summary=summary,
                static_details=details,
            )
        except WorkflowAlreadyStartedError as exc:
            raise BadInput(f"id: engagement {engagement_id!r} already exists") from exc
        return StartResult(engagement_id=engagement_id, workflow_id=engagement_workflow_id(engagement_id),
                           recommendation=recommendation)

    result = _run(go)
    if as_json:
        _emit_json(result)
        return
    from cli.views import print_recommendation

    console = _console()
    console.print(f"Started engagement [bold]{result.engagement_id}[/]")
    print_recommendation(console, result.recommendation)
    console.print(f"Next: engage choose {result.engagement_id} --format {result.recommendation.format.value}")


def _slug(text: str) -> str:
    import re

    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (slug or "engagement")[:40].strip("-")


@app.command()
def choose(
    engagement: str = typer.Argument(..., metavar="ENG"),
    format: FormatName = typer.Option(..., "--format", help="offsite, strategy_session or combined"),
    reason: str | None = typer.Option(None, "--reason", help="why, when overriding the recommendation"),
) -> None:
    """Confirm or override the recommended format."""
    from schemas.recommendation import Recommendation
    from schemas.state import ChooseFormat

    payload = guarded(lambda: ChooseFormat(format=format.value, reason=reason))
    result = _run(lambda: _update(engagement, "choose_format", payload, Recommendation))
    _console().print(f"{engagement}: format {result.format.value}, {result.min_days:g}-{result.max_days:g} days, "
                     f"{result.location.value}. Next: engage schedule {engagement} --on YYYY-MM-DD")


@app.command()
def schedule(
    engagement: str = typer.Argument(..., metavar="ENG"),
    on: str = typer.Option(..., "--on", help="session date, YYYY-MM-DD, in the client's time zone"),
    at: str = typer.Option("09:00", "--at", help="start time HH:MM, local to the client"),
    days: float | None = typer.Option(None, "--days", help="duration in days (default: the recommendation)"),
) -> None:
    """Set the session date and send the invitations."""
    from schemas.state import ScheduleSession, SessionPlan

    def parse() -> ScheduleSession:
        try:
            day = date.fromisoformat(on)
        except ValueError as exc:
            raise BadInput(f"--on: {on!r} is not a date YYYY-MM-DD") from exc
        return ScheduleSession(on=day, at=at, days=days)

    payload = guarded(parse)
    plan = _run(lambda: _update(engagement, "schedule_session", payload, SessionPlan))
    from domain.schedule import local_label

    _console().print(f"{engagement}: session {local_label(plan.starts_at, plan.timezone)} for {plan.days:g} days "
                     f"(invitation sequence {plan.sequence})")


@preread_app.command("add")
def preread_add(
    engagement: str = typer.Argument(..., metavar="ENG"),
    title: str = typer.Option(..., "--title"),
    url: str = typer.Option(..., "--url"),
    days_before: int = typer.Option(7, "--days-before", help="days before the session it is sent"),
) -> None:
    """Add a pre-read, emailed to the participants N days before the session."""
    from schemas.state import AddPreread, PrereadView

    payload = guarded(lambda: AddPreread(title=title, url=url, days_before=days_before))
    view = _run(lambda: _update(engagement, "add_preread", payload, PrereadView))
    _console().print(f"{engagement}: pre-read {view.preread_id} '{view.title}', sent {view.days_before} days before")


@preread_app.command("ack")
def preread_ack(
    engagement: str = typer.Argument(..., metavar="ENG"),
    participant: str = typer.Option(..., "--participant", help="the participant's email"),
    preread: str | None = typer.Option(None, "--preread", help="pre-read id (default: all of them)"),
) -> None:
    """Record that a participant has read a pre-read."""
    from schemas.state import AcknowledgePreread, PrereadView

    payload = guarded(lambda: AcknowledgePreread(participant=participant, preread_id=preread))
    views = _run(lambda: _update(engagement, "acknowledge_preread", payload, list[PrereadView]))
    missing = {v.preread_id: v.missing for v in views}
    _console().print(f"{engagement}: {participant} acknowledged; still missing: {missing}")


@session_app.command("record")
def session_record(
    engagement: str = typer.Argument(..., metavar="ENG"),
    outcomes_file: Path = typer.Argument(..., metavar="OUTCOMES.yaml"),
) -> None:
    """Record the session's decisions, dot votes and actions; follow-through starts."""
    from cli.inputs import load_model
    from schemas.outcomes import Outcomes
    from schemas.state import RecordOutcomes

    payload = guarded(lambda: RecordOutcomes(outcomes=load_model(outcomes_file, Outcomes)))
    ids = _run(lambda: _update(engagement, "record_outcomes", payload, list[str]))
    _console().print(f"{engagement}: outcomes recorded; actions {', '.join(ids)}")


@app.command()
def checkin(
    engagement: str = typer.Argument(..., metavar="ENG"),
    action: str = typer.Option(..., "--action", help="action id, e.g. A1"),
    value: float = typer.Option(..., "--value", help="the metric's current value"),
    note: str | None = typer.Option(None, "--note"),
) -> None:
    """Report a metric value for an action."""
    from schemas.state import ActionView, ReportMetric

    payload = guarded(lambda: ReportMetric(action_id=action, value=value, note=note))
    view = _run(lambda: _update(engagement, "report_metric", payload, ActionView))
    _console().print(f"{engagement}/{view.action_id}: {view.last_value:g} {view.metric.unit} -> {view.status.value}")


@app.command()
def snooze(
    engagement: str = typer.Argument(..., metavar="ENG"),
    action: str = typer.Option(..., "--action"),
    days: int = typer.Option(..., "--days", help="postpone the next check-in by N days"),
) -> None:
    """Postpone an action's next check-in."""
    from schemas.state import ActionView, SnoozeAction

    payload = guarded(lambda: SnoozeAction(action_id=action, days=days))
    view = _run(lambda: _update(engagement, "snooze_action", payload, ActionView))
    from domain.schedule import local_label

    nxt = local_label(view.next_checkin_at, view.owner.timezone) if view.next_checkin_at else "none"
    _console().print(f"{engagement}/{view.action_id}: next check-in {nxt}")


@app.command()
def cancel(
    engagement: str = typer.Argument(..., metavar="ENG"),
    reason: str = typer.Option(..., "--reason"),
) -> None:
    """Cancel an engagement: follow-through stops, invitations are withdrawn."""
    from schemas.state import CancelEngagement

    payload = guarded(lambda: CancelEngagement(reason=reason))
    _run(lambda: _update(engagement, "cancel", payload))
    _console().print(f"{engagement}: cancelled")


# --- reads ---------------------------------------------------------------------------------------------


@app.command()
def status(
    engagement: str = typer.Argument(..., metavar="ENG"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Phase, format, session, pre-read acknowledgements, each action with its status and next check-in."""
    from schemas.state import EngagementStatus

    async def go() -> EngagementStatus:
        from temporalio.service import RPCError, RPCStatusCode

        handle = await _handle(engagement)
        try:
            return await handle.query("status", result_type=EngagementStatus)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise BadInput(f"engagement: unknown engagement {engagement!r}") from exc
            raise

    result = _run(go)
    if as_json:
        _emit_json(result)
        return
    from cli.views import print_status

    print_status(_console(), result)


@app.command("list")
def list_(
    phase: PhaseName | None = typer.Option(None, "--phase", help="only engagements in this phase"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Engagements with phase, client, next check-in and actions at risk."""
    from schemas.events import Phase
    from schemas.state import EngagementList

    async def go() -> EngagementList:
        from store.db import create_pool
        from store.queries import list_engagements

        pool = await create_pool(_settings())
        try:
            return EngagementList(engagements=await list_engagements(pool, Phase(phase.value) if phase else None))
        finally:
            await pool.close()

    result = _run(go)
    if as_json:
        _emit_json(result)
        return
    from cli.views import print_list

    print_list(_console(), result)


@app.command()
def timeline(
    engagement: str = typer.Argument(..., metavar="ENG"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """The engagement's event log, oldest first."""
    from schemas.state import Timeline

    async def go() -> Timeline:
        from store.db import create_pool
        from store.events import read_log
        from store.queries import engagement_exists

        pool = await create_pool(_settings())
        try:
            if not await engagement_exists(pool, engagement):
                raise BadInput(f"engagement: unknown engagement {engagement!r}")
            return Timeline(engagement_id=engagement, events=await read_log(pool, engagement))
        finally:
            await pool.close()

    result = _run(go)
    if as_json:
        _emit_json(result)
        return
    from cli.views import print_timeline

    print_timeline(_console(), result)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
