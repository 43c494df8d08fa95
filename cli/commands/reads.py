"""Reading an engagement: `engage status`, `engage agenda` (a run sheet, also for a scoping file), `engage list`,
`engage timeline` (the event log) and `engage report` (the follow-through report)."""

from __future__ import annotations

import sys
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from cli.app import console, query_status, run, settings, show
from cli.errors import BadInput, fail, guarded
from schemas.names import Phase

commands = typer.Typer()


@commands.command()
def status(
    engagement: str = typer.Argument(..., metavar="ENG"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Phase, format, session, pre-read acknowledgements, each action with its status and next check-in."""
    result = run(lambda: query_status(engagement))
    show(result, as_json, "print_status")


class AgendaFormat(StrEnum):
    text = "text"
    md = "md"
    html = "html"
    json = "json"


@commands.command()
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
    status_ = run(lambda: query_status(engagement))
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


@commands.command("list")
def list_(
    phase: Phase | None = typer.Option(None, "--phase", help="only engagements in this phase"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Engagements with phase, client, next check-in and actions at risk."""
    from schemas.views import EngagementList

    async def go() -> EngagementList:
        from store.db import create_pool
        from store.queries import list_engagements

        pool = await create_pool(settings())
        try:
            return EngagementList(engagements=await list_engagements(pool, phase))
        finally:
            await pool.close()

    result = run(go)
    show(result, as_json, "print_list")


@commands.command()
def timeline(
    engagement: str = typer.Argument(..., metavar="ENG"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """The engagement's event log, oldest first."""
    from schemas.views import Timeline

    async def go() -> Timeline:
        from store.db import create_pool
        from store.events import read_log
        from store.queries import engagement_exists

        pool = await create_pool(settings())
        try:
            if not await engagement_exists(pool, engagement):
                raise BadInput(f"engagement: unknown engagement {engagement!r}")
            return Timeline(engagement_id=engagement, events=await read_log(pool, engagement))
        finally:
            await pool.close()

    result = run(go)
    show(result, as_json, "print_timeline")


def _held_agenda(events: list[Any]) -> Any:
    """The agenda of the latest schedule: the session as it was held (None in logs from before it was kept)."""
    scheduled = [e.event for e in events if e.event.type == "session_scheduled"]
    return scheduled[-1].agenda if scheduled else None


class ReportFormat(StrEnum):
    md = "md"
    html = "html"
    json = "json"


@commands.command()
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

        pool = await create_pool(settings())
        try:
            result = await report_data(pool, engagement)
            if result is not None:
                result.agenda = _held_agenda(await read_log(pool, engagement))
        finally:
            await pool.close()
        if result is None:
            raise BadInput(f"engagement: unknown engagement {engagement!r}")
        return result

    result = run(go)
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
    console().print(f"{engagement}: {format.value} report written to {output}", highlight=False)
