"""What people read on the terminal: rich tables, status in colour, times in each person's zone."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from domain.schedule import local_label
from schemas.recommendation import Recommendation
from schemas.state import EngagementList, EngagementStatus, Preview, Timeline

STATUS_STYLE = {"on_track": "green", "achieved": "bold green", "behind": "yellow", "at_risk": "bold red",
                "no_data": "dim"}


def print_recommendation(console: Console, rec: Recommendation) -> None:
    console.print(f"[bold]{rec.format.value}[/]: {rec.days:g} days (range {rec.min_days:g}-{rec.max_days:g}), "
                  f"{rec.location.value} venue, {len(rec.participants)} participants")
    why = Table("aspect", "why", show_header=False, box=None)
    for entry in rec.rationale:
        why.add_row(f"[cyan]{entry.aspect.value}[/]", entry.reason)
    console.print(why)
    agenda = Table("day", "module", "technique", "min", title="Agenda")
    for item in rec.agenda.items:
        agenda.add_row(str(item.day), item.title, item.technique.value.replace("_", " "), str(item.minutes))
    console.print(agenda)


def print_status(console: Console, s: EngagementStatus) -> None:
    fmt = s.format.value if s.format else f"{s.recommendation.format.value} (recommended)"
    console.print(f"[bold]{s.engagement_id}[/] {s.client}: phase [bold]{s.phase.value}[/], format {fmt}")
    if s.session:
        console.print(f"Session: {local_label(s.session.starts_at, s.session.timezone)}, {s.session.days:g} days")
    for p in s.prereads:
        missing = ", ".join(p.missing) if p.missing else "everyone has read it"
        console.print(f"Pre-read {p.preread_id} '{p.title}': not acknowledged by {missing}")
    if s.cancel_reason:
        console.print(f"[red]Cancelled:[/] {s.cancel_reason}")
    if not s.actions:
        return
    table = Table("action", "owner", "last value", "target", "status", "next check-in (owner's time)")
    for a in s.actions:
        last = "-" if a.last_value is None else f"{a.last_value:g} {a.metric.unit}"
        nxt = local_label(a.next_checkin_at, a.owner.timezone) if a.next_checkin_at else (a.closed_reason or "-")
        style = STATUS_STYLE.get(a.status.value, "")
        table.add_row(f"{a.action_id} {a.title}", a.owner.name, last, f"{a.metric.target:g} {a.metric.unit}",
                      f"[{style}]{a.status.value}[/]", nxt)
    console.print(table)


def print_list(console: Console, result: EngagementList) -> None:
    table = Table("engagement", "client", "phase", "format", "next check-in (UTC)", "at risk")
    for e in result.engagements:
        nxt = e.next_checkin_at.strftime("%Y-%m-%d %H:%M") if e.next_checkin_at else "-"
        table.add_row(e.engagement_id, e.client, e.phase.value, e.format or "-", nxt,
                      f"[bold red]{e.actions_at_risk}[/]" if e.actions_at_risk else "0")
    console.print(table)


def print_timeline(console: Console, result: Timeline) -> None:
    table = Table("#", "when (UTC)", "event", "key")
    for e in result.events:
        table.add_row(str(e.seq), e.occurred_at.strftime("%Y-%m-%d %H:%M:%S"), e.event.type,
                      e.key.removeprefix(f"{result.engagement_id}/"))
    console.print(table)


def print_preview(console: Console, preview: Preview) -> None:
    console.print(f"[bold]{preview.engagement_id}[/]: {preview.format}, session "
                  f"{preview.session_starts_at:%Y-%m-%d %H:%M} UTC; {len(preview.items)} steps")
    table = Table("when (recipient's time)", "what", "to", "subject")
    for item in preview.items:
        table.add_row(item.local_time, item.kind.replace("_", " "), item.recipient or "-", item.subject)
    console.print(table)
