"""The `engage` command (its contract: docs/architecture.md, "The `engage` command"). Heavy modules are
imported inside commands, so `--help` is fast."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from typer.core import TyperGroup

from cli.errors import BadInput, fail, guarded
from schemas.names import EngagementFormat, Phase

if TYPE_CHECKING:
    from pydantic import BaseModel

    from adapters.engagement_client import EngagementHandle, Update

T = TypeVar("T")


class _EngageGroup(TyperGroup):
    """How `engage` ends.

    A usage error (an unknown --format, a missing argument, a value that is not a number) is bad input like any
    other: one line on stderr and exit 2 (cli/errors.py), not click's multi-line usage box.

    Once the Temporal SDK is loaded, the process ends with `os._exit` after flushing stdout and stderr: at
    interpreter finalization the SDK's Rust threads can still touch the GIL and CPython then aborts ("Fatal
    Python error: PyGILState_Release", SIGABRT, temporalio/sdk-python#300), turning an `engage start` that
    succeeded into exit -6 about once in 40 runs.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, windows_expand_args: bool = True,
             **extra: Any) -> Any:
        kwargs: dict[str, Any] = {"windows_expand_args": windows_expand_args, **extra}
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **kwargs)
        try:
            code = self._main_one_line_errors(args, prog_name, complete_var, kwargs)
        except SystemExit as exc:
            code = exc.code
        _exit(code)

    def _main_one_line_errors(self, args: Sequence[str] | None, prog_name: str | None, complete_var: str | None,
                              kwargs: dict[str, Any]) -> Any:
        # Recent typer vendors click (typer._click); the public BadParameter leads to the ClickException in use.
        click_exception: type[Exception] = next(
            c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **kwargs)
        except click_exception as exc:
            error: Any = exc
            if type(error).__name__ == "NoArgsIsHelpError":
                return error.exit_code  # the help is already printed
            ctx = getattr(error, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            fail(error.exit_code, error.format_message().replace("Value error, ", "") + hint)
        except typer.Abort:
            fail(1, "aborted")


def _exit(code: object) -> NoReturn:
    if "temporalio" not in sys.modules:
        raise SystemExit(code)
    import os

    if isinstance(code, str):  # what SystemExit does with a message
        sys.stderr.write(code + "\n")
    status = code if isinstance(code, int) else 0 if code is None else 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (engage list | head) or a closed stream
            pass
    os._exit(status)


app = typer.Typer(
    cls=_EngageGroup,
    help="Run executive engagements (offsites, strategy sessions) from scoping to the last check-in.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
preread_app = typer.Typer(help="Pre-reads: add one, record that a participant has read it.", no_args_is_help=True)
session_app = typer.Typer(help="The session: record its outcomes.", no_args_is_help=True)
app.add_typer(preread_app, name="preread")
app.add_typer(session_app, name="session")
# `engage inbox` runs the inbound server; `engage inbox explain` shows how a reply is read.
inbox_app = typer.Typer()
app.add_typer(inbox_app, name="inbox")


def _run(fn: Callable[[], Awaitable[T]]) -> T:
    import asyncio  # here, not at the top: a quarter second that bad input and --help need not wait for

    return guarded(lambda: asyncio.run(fn()))  # type: ignore[arg-type, return-value]


def _emit_json(model: BaseModel) -> None:
    sys.stdout.write(model.model_dump_json() + "\n")


def _show(result: BaseModel, as_json: bool, printer: str) -> None:
    """One JSON object on stdout with --json, else the human view `cli.views.<printer>` (imported only then)."""
    if as_json:
        _emit_json(result)
        return
    from cli import views

    getattr(views, printer)(_console(), result)


def _settings() -> Any:
    from schemas.settings import get_settings

    return get_settings()


async def _client() -> Any:
    from adapters.temporal import connect

    return await connect(_settings())


async def _handle(engagement_id: str) -> EngagementHandle:
    from adapters.engagement_client import engagement_handle

    return engagement_handle(await _client(), engagement_id)


async def _update(engagement_id: str, update: Update[T], payload: Any) -> T:
    from temporalio.service import RPCError, RPCStatusCode

    handle = await _handle(engagement_id)
    try:
        return await handle.execute_update(update, payload)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise await _not_found(handle, engagement_id) from exc
        raise


async def _not_found(handle: Any, engagement_id: str) -> BadInput:
    """An update finds no running workflow both when there is no such engagement and when it has ended
    (closed or cancelled): only the first is "unknown"."""
    from temporalio.service import RPCError

    from workflows.search_attributes import ENGAGEMENT_PHASE

    try:
        description = await handle.describe()
    except RPCError:
        return BadInput(f"engagement: unknown engagement {engagement_id!r}")
    phase = description.typed_search_attributes.get(ENGAGEMENT_PHASE) or "ended"
    return BadInput(f"engagement: {engagement_id} is {phase}; it takes no more input")


def _console() -> Any:
    """The one console (cli.views.terminal): what it prints is never read as markup; styles go as `Text`."""
    from cli.views import terminal

    return terminal()


# --- the stack --------------------------------------------------------------------------------------------


# The embedded stack's options, shared by `dev` and `demo`.
DATA_DIR = typer.Option(Path("var"), "--data-dir", help="where every part keeps its data")
TEMPORAL_PORT = typer.Option(7233, "--temporal-port", help="Temporal gRPC port")
UI_PORT = typer.Option(8233, "--ui-port", help="Temporal UI port")
POSTGRES_PORT = typer.Option(55432, "--postgres-port", help="embedded Postgres port")
SMTP_PORT = typer.Option(8025, "--smtp-port", help="SMTP sink port")
CALDAV_PORT = typer.Option(5232, "--caldav-port", help="Radicale (CalDAV) port")
INBOUND_PORT = typer.Option(8026, "--inbound-port", help="inbound mail (replies) port")
WEB_PORT = typer.Option(8027, "--web-port", help="check-in page (engage web) port")


@app.command()
def dev(
    data_dir: Path = DATA_DIR,
    temporal_port: int = TEMPORAL_PORT,
    ui_port: int = UI_PORT,
    postgres_port: int = POSTGRES_PORT,
    smtp_port: int = SMTP_PORT,
    caldav_port: int = CALDAV_PORT,
    inbound_port: int = INBOUND_PORT,
    web_port: int = WEB_PORT,
) -> None:
    """Run the embedded stack in the foreground: Temporal + UI, Postgres, SMTP sink, CalDAV, the worker, the
    inbound mail server for replies, and the check-in page."""
    from devstack.stack import DevStack, Ports, run_foreground

    ports = Ports(temporal=temporal_port, ui=ui_port, postgres=postgres_port, smtp=smtp_port, caldav=caldav_port,
                  inbound=inbound_port, web=web_port)
    console = _console()

    def echo(part: str, address: str) -> None:
        from cli.views import styled

        console.print(styled(("✓", "bold green"), f" {part:<12} {address}"))

    guarded(lambda: run_foreground(DevStack(data_dir, ports, echo=echo)))


@app.command()
def web() -> None:
    """Run the check-in page alone: owners open the signed link in a check-in mail and answer there
    (ENGAGE_WEB_HOST, ENGAGE_WEB_PORT; links point at ENGAGE_PUBLIC_URL)."""
    from adapters.web import main as web_main

    guarded(web_main)


@app.command()
def worker() -> None:
    """Run the worker alone (same as `python worker.py`)."""
    import worker as worker_module

    guarded(lambda: worker_module.main([]))


@inbox_app.callback(invoke_without_command=True)
def inbox(
    ctx: typer.Context,
    imap: str | None = typer.Option(
        None, "--imap", metavar="URL",
        help="read replies from an IMAP mailbox instead of running the SMTP server (no MX needed): "
             "imaps://user:password@host:993/INBOX (TLS), or imap://... (plain, STARTTLS when the server "
             "offers it). Handled mail moves to ?processed=FOLDER (default engage-processed); IDLE when "
             "offered, else a look every ?poll=SECONDS (30). Default: ENGAGE_INBOUND_IMAP_URL, which keeps "
             "the password off the command line"),
) -> None:
    """Run the inbound mail server alone: replies to check-in and pre-read mails become workflow updates."""
    if ctx.invoked_subcommand is not None:
        return  # a subcommand (explain) runs instead of the server
    def run() -> None:
        from adapters.imap_inbox import configured_url
        from adapters.imap_inbox import main as imap_main
        from adapters.inbound_server import main as inbox_main

        url = configured_url(imap)
        imap_main(url) if url is not None else inbox_main()

    guarded(run)


@inbox_app.command("explain")
def inbox_explain(
    eml: Path = typer.Argument(..., metavar="FILE.eml", help="one reply as the raw message (e.g. saved as .eml)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object: own_text and reading"),
) -> None:
    """How a reply would be read, for support: the owner's own text (quotes, forwarded mail and signature
    removed) and the reading, or why there is none. Nothing is sent or changed."""

    def load() -> bytes:
        if not eml.exists():
            raise BadInput(f"{eml}: no such file")
        if not eml.is_file():
            raise BadInput(f"{eml}: not a regular file")
        if eml.stat().st_size > 25 * 1024 * 1024:
            raise BadInput(f"{eml}: larger than 25 MiB, not a reply")
        try:
            return eml.read_bytes()
        except OSError as exc:
            raise BadInput(f"{eml}: cannot read it ({exc.strerror or exc})") from exc

    raw = guarded(load)
    from adapters.reply_reading import explain

    explained = guarded(lambda: explain(raw))
    if as_json:
        _emit_json(explained)
        return
    reading = explained.reading
    shown = {"value": f"value {reading.value:g}" if reading.value is not None else "",
             "snooze": f"snooze {reading.days} days", "blocked": f"blocked: {reading.reason}",
             "ack": "read/done (acknowledged)", "none": f"nothing read: {reading.why}"}[reading.kind]
    own = explained.own_text
    sys.stdout.write("Own text:\n" + ("\n".join("  " + line for line in own.split("\n")) if own else "  (none)")
                     + f"\nReading: {shown}\n" + (f"Note: {reading.note}\n" if reading.note else ""))


# --- engagements ---------------------------------------------------------------------------------------


@app.command()
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
    _show(recommendation, as_json, "print_recommendation")
    _warn_short_cadence(scoping)


@app.command()
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
        from schemas.state import StartResult
        from store.db import create_pool

        engagement_id = scoping.id or f"{_slug(scoping.client)}-{uuid.uuid4().hex[:6]}"
        client = await _client()
        recommendation = recommend_format(scoping)
        summary = (f"{scoping.client}: {recommendation.format.value.replace('_', ' ')} "
                   f"({scoping.constraints.earliest} .. {scoping.constraints.latest})")
        details = (f"**Client:** {scoping.client}\n\n**Format:** {recommendation.format.value} (recommended)\n\n"
                   f"**Session window:** {scoping.constraints.earliest} .. {scoping.constraints.latest}\n\n"
                   f"**Sponsor:** {scoping.sponsor.name} <{scoping.sponsor.email}>\n\n"
                   f"**Consultant:** {scoping.consultant.name} <{scoping.consultant.email}>")
        pool = await create_pool(_settings())
        try:
            await start_engagement(client, pool, _settings(), engagement_id, scoping,
                                   static_summary=summary, static_details=details)
        finally:
            await pool.close()
        return StartResult(engagement_id=engagement_id, workflow_id=engagement_workflow_id(engagement_id),
                           recommendation=recommendation)

    result = _run(go)
    if as_json:
        _emit_json(result)
        return
    from cli.views import print_recommendation, styled

    console = _console()
    console.print(styled("Started engagement ", (result.engagement_id, "bold")))
    print_recommendation(console, result.recommendation)
    console.print(f"Next: engage choose {result.engagement_id} --format {result.recommendation.format.value}")


def _refuse_short_cadence(scoping: Any) -> None:
    """Exit 2 before any service is contacted when the cadence is under the minimum (cli/starting.py)."""
    from cli.starting import cadence_error

    error = guarded(lambda: cadence_error(scoping, _settings()))
    if error is not None:
        fail(2, error)


def _warn_short_cadence(scoping: Any) -> None:
    """`recommend` starts nothing, so a short cadence is a warning there: the line `engage start` would exit with."""
    from cli.starting import cadence_error

    error = guarded(lambda: cadence_error(scoping, _settings()))
    if error is not None:
        sys.stderr.write(f"warning: {error}; `engage start` refuses it\n")


def _slug(text: str) -> str:
    import re

    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (slug or "engagement")[:40].strip("-")


@app.command()
def choose(
    engagement: str = typer.Argument(..., metavar="ENG"),
    format: EngagementFormat = typer.Option(..., "--format", help="offsite, strategy_session or combined"),
    reason: str | None = typer.Option(None, "--reason", help="why, when overriding the recommendation"),
) -> None:
    """Confirm or override the recommended format."""
    from schemas.state import ChooseFormat

    payload = guarded(lambda: ChooseFormat(format=format.value, reason=reason))
    from workflows.engagement import EngagementWorkflow

    result = _run(lambda: _update(engagement, EngagementWorkflow.choose_format, payload))
    _console().print(f"{engagement}: format {result.format.value}, {result.min_days:g}-{result.max_days:g} days, "
                     f"{result.location.value}. Next: engage schedule {engagement} --on YYYY-MM-DD")


@app.command()
def schedule(
    engagement: str = typer.Argument(..., metavar="ENG"),
    on: str = typer.Option(..., "--on", help="session date, YYYY-MM-DD, in the client's time zone"),
    at: str | None = typer.Option(None, "--at", help="start time HH:MM, local to the client (default: the "
                                                     "scoping's day_starts, 09:00)"),
    days: float | None = typer.Option(None, "--days", help="duration in days (default: the recommendation)"),
) -> None:
    """Set the session date and send the invitations."""
    from schemas.state import ScheduleSession

    def parse() -> ScheduleSession:
        try:
            day = date.fromisoformat(on)
        except ValueError as exc:
            raise BadInput(f"--on: {on!r} is not a date YYYY-MM-DD") from exc
        return ScheduleSession(on=day, at=at, days=days)

    payload = guarded(parse)
    from workflows.engagement import EngagementWorkflow

    plan = _run(lambda: _update(engagement, EngagementWorkflow.schedule_session, payload))
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
    from schemas.state import AddPreread

    payload = guarded(lambda: AddPreread(title=title, url=url, days_before=days_before))
    from workflows.engagement import EngagementWorkflow

    view = _run(lambda: _update(engagement, EngagementWorkflow.add_preread, payload))
    _console().print(f"{engagement}: pre-read {view.preread_id} '{view.title}', sent {view.days_before} days before")


@preread_app.command("ack")
def preread_ack(
    engagement: str = typer.Argument(..., metavar="ENG"),
    participant: str = typer.Option(..., "--participant", help="the participant's email"),
    preread: str | None = typer.Option(None, "--preread", help="pre-read id (default: all of them)"),
) -> None:
    """Record that a participant has read a pre-read."""
    from schemas.state import AcknowledgePreread

    payload = guarded(lambda: AcknowledgePreread(participant=participant, preread_id=preread))
    from workflows.engagement import EngagementWorkflow

    views = _run(lambda: _update(engagement, EngagementWorkflow.acknowledge_preread, payload))
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

    outcomes = guarded(lambda: load_model(outcomes_file, Outcomes))
    from schemas.state import RecordOutcomes  # after the file: bad input is refused sooner

    payload = guarded(lambda: RecordOutcomes(outcomes=outcomes))
    _check_votes(engagement, outcomes)
    from workflows.engagement import EngagementWorkflow

    ids = _run(lambda: _update(engagement, EngagementWorkflow.record_outcomes, payload))
    _console().print(f"{engagement}: outcomes recorded; actions {', '.join(ids)}")


def _check_votes(engagement: str, outcomes: Any) -> None:
    """Blocks the outcomes name must be on the agenda as held (exit 2); dot votes that the dots cannot carry get a
    warning on stderr, and are recorded all the same: they are what the room did."""
    from domain.agenda import unknown_blocks, vote_warnings

    status_ = _run(lambda: _query_status(engagement))
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


async def _query_status(engagement: str) -> Any:
    from temporalio.service import RPCError, RPCStatusCode

    from adapters.engagement_client import engagement_status

    try:
        return await engagement_status(await _client(), engagement)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise BadInput(f"engagement: unknown engagement {engagement!r}") from exc
        raise


@app.command()
def checkin(
    engagement: str = typer.Argument(..., metavar="ENG"),
    action: str = typer.Option(..., "--action", help="action id, e.g. A1"),
    value: float = typer.Option(..., "--value", help="the metric's current value"),
    note: str | None = typer.Option(None, "--note"),
) -> None:
    """Report a metric value for an action."""
    from schemas.state import ReportMetric

    payload = guarded(lambda: ReportMetric(action_id=action, value=value, note=note))
    from workflows.engagement import EngagementWorkflow

    view = _run(lambda: _update(engagement, EngagementWorkflow.report_metric, payload))
    _console().print(f"{engagement}/{view.action_id}: {view.last_value:g} {view.metric.unit} -> {view.status.value}")


@app.command()
def snooze(
    engagement: str = typer.Argument(..., metavar="ENG"),
    action: str = typer.Option(..., "--action"),
    days: int = typer.Option(..., "--days", help="postpone the next check-in by N days"),
) -> None:
    """Postpone an action's next check-in."""
    from schemas.state import SnoozeAction

    payload = guarded(lambda: SnoozeAction(action_id=action, days=days))
    from workflows.engagement import EngagementWorkflow

    view = _run(lambda: _update(engagement, EngagementWorkflow.snooze_action, payload))
    from domain.schedule import local_label

    nxt = local_label(view.next_checkin_at, view.owner.timezone) if view.next_checkin_at else "none"
    _console().print(f"{engagement}/{view.action_id}: next check-in {nxt}")


@app.command()
def block(
    engagement: str = typer.Argument(..., metavar="ENG"),
    action: str = typer.Option(..., "--action"),
    reason: str = typer.Option(..., "--reason", help="what stands in the way, in a line"),
) -> None:
    """Report an action blocked, with the reason: the consultant is told at once (as from the check-in page)."""
    from rich.text import Text

    from schemas.state import BlockAction

    payload = guarded(lambda: BlockAction(action_id=action, reason=reason))
    from workflows.engagement import EngagementWorkflow

    view = _run(lambda: _update(engagement, EngagementWorkflow.block_action, payload))
    _console().print(Text(f"{engagement}/{view.action_id}: blocked ({view.blocked_reason}); the consultant is told"))


@app.command()
def cancel(
    engagement: str = typer.Argument(..., metavar="ENG"),
    reason: str = typer.Option(..., "--reason"),
) -> None:
    """Cancel an engagement: follow-through stops, invitations are withdrawn."""
    from schemas.state import CancelEngagement

    payload = guarded(lambda: CancelEngagement(reason=reason))
    from workflows.engagement import EngagementWorkflow

    _run(lambda: _update(engagement, EngagementWorkflow.cancel, payload))
    _console().print(f"{engagement}: cancelled")


# --- reads ---------------------------------------------------------------------------------------------


@app.command()
def status(
    engagement: str = typer.Argument(..., metavar="ENG"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Phase, format, session, pre-read acknowledgements, each action with its status and next check-in."""
    result = _run(lambda: _query_status(engagement))
    _show(result, as_json, "print_status")


class AgendaFormat(StrEnum):
    text = "text"
    md = "md"
    html = "html"
    json = "json"


@app.command()
def agenda(
    source: str = typer.Argument(..., metavar="SCOPING.yaml|ENG"),
    days: float | None = typer.Option(None, "--days", help="lay it out for N days (default: as scheduled, else "
                                                            "as recommended)"),
    format: AgendaFormat = typer.Option(AgendaFormat.text, "--format", help="text, md, html (a printable run "
                                                                            "sheet) or json"),
) -> None:
    """The session's agenda with clock times, blocks, techniques and their steps."""
    if days is not None and not 0.125 <= days <= 14:
        fail(2, f"--days: a session lasts 0.125 to 14 days, not {days:g}")
    path = Path(source)
    if path.suffix in (".yaml", ".yml", ".json") or path.is_file():
        agenda_, first_day, title = _scoping_agenda(path, days)
    else:
        agenda_, first_day, title = _engagement_agenda(source, days)
    from cli.agenda import render

    sys.stdout.write(render(agenda_, format.value, first_day=first_day, title=title))


def _scoping_agenda(path: Path, days: float | None) -> tuple[Any, date | None, str]:
    from cli.inputs import load_model
    from schemas.scoping import Scoping

    scoping = guarded(lambda: load_model(path, Scoping))
    from domain.agenda import build_agenda
    from domain.format import recommend as recommend_format

    rec = guarded(lambda: recommend_format(scoping))
    title = f"{scoping.client}: {rec.format.value.replace('_', ' ')}"
    if days is None:
        return rec.agenda, None, title
    c = scoping.constraints
    built = guarded(lambda: build_agenda(rec.format, days, scoping.objectives, scoping.topics,
                                         group_size=len(rec.participants), day_starts=c.day_starts,
                                         day_ends=c.day_ends))
    return built, None, title


def _engagement_agenda(engagement: str, days: float | None) -> tuple[Any, date | None, str]:
    """The agenda as held (scheduled) or as recommended; `--days` lays the same modules out anew."""
    status_ = _run(lambda: _query_status(engagement))
    from domain.schedule import local_date

    fmt = status_.format or status_.recommendation.format
    held = status_.session.agenda if status_.session else None
    current = held or status_.recommendation.agenda
    first_day = local_date(status_.session.starts_at, status_.session.timezone) if held and status_.session else None
    title = f"{status_.client}: {fmt.value.replace('_', ' ')}" + (" (as held)" if held else " (as recommended)")
    if days is None:
        return current, first_day, title
    from datetime import time

    from domain.agenda import agenda_of_modules, modules_of

    def clock(text: str) -> time:
        hours, minutes = text.split(":")
        return time(int(hours), int(minutes))

    built = guarded(lambda: agenda_of_modules(
        fmt, days, modules_of(current), group_size=current.group_size or len(status_.recommendation.participants),
        day_starts=clock(current.day_starts), day_ends=clock(current.day_ends)))
    return built, first_day, title


@app.command("list")
def list_(
    phase: Phase | None = typer.Option(None, "--phase", help="only engagements in this phase"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Engagements with phase, client, next check-in and actions at risk."""
    from schemas.state import EngagementList

    async def go() -> EngagementList:
        from store.db import create_pool
        from store.queries import list_engagements

        pool = await create_pool(_settings())
        try:
            return EngagementList(engagements=await list_engagements(pool, phase))
        finally:
            await pool.close()

    result = _run(go)
    _show(result, as_json, "print_list")


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
    _show(result, as_json, "print_timeline")


def _held_agenda(events: list[Any]) -> Any:
    """The agenda of the latest schedule: the session as it was held (None in logs from before it was kept)."""
    scheduled = [e.event for e in events if e.event.type == "session_scheduled"]
    return scheduled[-1].agenda if scheduled else None


class ReportFormat(StrEnum):
    md = "md"
    html = "html"
    json = "json"


@app.command()
def report(
    engagement: str = typer.Argument(..., metavar="ENG"),
    format: ReportFormat = typer.Option(ReportFormat.md, "--format", help="md, html (a chart per metric) or json"),
    output: Path | None = typer.Option(None, "-o", "--output", help="write to FILE instead of stdout",
                                       metavar="FILE"),
) -> None:
    """The follow-through report: each action with its status and metric history (a chart in html)."""
    from schemas.report import Report

    async def go() -> Report:
        from store.db import create_pool
        from store.events import read_log
        from store.queries import report_data

        pool = await create_pool(_settings())
        try:
            result = await report_data(pool, engagement)
            if result is not None:
                result.agenda = _held_agenda(await read_log(pool, engagement))
        finally:
            await pool.close()
        if result is None:
            raise BadInput(f"engagement: unknown engagement {engagement!r}")
        return result

    result = _run(go)
    from cli.report.html import render_html
    from cli.report.markdown import render_markdown

    if format is ReportFormat.json:
        text = result.model_dump_json() + "\n"
    else:
        text = render_html(result) if format is ReportFormat.html else render_markdown(result)
    if output is None:
        sys.stdout.write(text)
        return

    def write() -> None:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise BadInput(f"--output: cannot write {output}: {exc.strerror or exc}") from exc

    guarded(write)
    _console().print(f"{engagement}: {format.value} report written to {output}", highlight=False)


@app.command()
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

    console = _console()
    if as_json:
        _emit_json(_run(go))
        return
    with console.status("Running the engagement on the time-skipping server..."):
        result = _run(go)
    from cli.views import print_preview

    print_preview(console, result)


@app.command()
def demo(
    data_dir: Path = DATA_DIR,
    temporal_port: int = TEMPORAL_PORT,
    ui_port: int = UI_PORT,
    postgres_port: int = POSTGRES_PORT,
    smtp_port: int = SMTP_PORT,
    caldav_port: int = CALDAV_PORT,
    inbound_port: int = INBOUND_PORT,
    web_port: int = WEB_PORT,
    keep_running: bool = typer.Option(True, "--keep-running/--no-keep-running",
                                      help="after the demo, keep the stack up for the UI until Ctrl-C"),
) -> None:
    """Run one complete sample engagement (about 90 seconds) and print its report. Starts the embedded stack
    (the options of `engage dev`) when nothing answers at ENGAGE_TEMPORAL_ADDRESS."""
    from cli.demo import run_demo
    from devstack.stack import Ports

    ports = Ports(temporal=temporal_port, ui=ui_port, postgres=postgres_port, smtp=smtp_port, caldav=caldav_port,
                  inbound=inbound_port, web=web_port)
    guarded(lambda: run_demo(_settings(), data_dir, ports, keep_running))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
