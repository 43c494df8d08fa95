"""What people read on the terminal: rich tables, status in colour, times in each person's zone.

Nearly everything printed here is text people typed (a client named `Acme [/bold] Corp`, a unit `[red]x[/]`), so
the console never reads markup: styles are given as `Text` spans or `style=`, never as `[tags]` in a string.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from domain.schedule import local_label
from schemas.recommendation import Agenda, Recommendation
from schemas.views import EngagementList, EngagementStatus, Preview, Timeline

STATUS_STYLE = {"on_track": "green", "achieved": "bold green", "behind": "yellow", "at_risk": "bold red",
                "no_data": "dim"}


def terminal() -> Console:
    """The CLI's one console: strings are printed as they are (no markup, no :emoji: codes, no highlighting)."""
    return Console(markup=False, emoji=False, highlight=False)


def styled(*parts: str | tuple[str, str]) -> Text:
    """`styled(("Started", "bold"), " ", user_text)`: our styles as spans, user text never parsed."""
    return Text.assemble(*parts)


def print_recommendation(console: Console, rec: Recommendation) -> None:
    console.print(styled((rec.format.value, "bold"), f": {rec.days:g} days (range {rec.min_days:g}-"
                         f"{rec.max_days:g}), {rec.location.value} venue, {len(rec.participants)} participants"))
    why = Table("aspect", "why", show_header=False, box=None)
    for entry in rec.rationale:
        why.add_row(Text(entry.aspect.value, style="cyan"), entry.reason)
    console.print(why)
    console.print(agenda_table(rec.agenda, "Agenda (engage agenda shows the steps)"))


def agenda_table(agenda: Agenda, title: str) -> Table:
    table = Table("block", "time", "title", "technique", title=title)
    for item in agenda.items:
        when = f"{item.starts}-{item.ends}" if item.starts else f"{item.minutes} min"
        technique = item.technique.value.replace("_", " ") if item.technique else "-"
        table.add_row(item.ref or str(item.day), when, item.title, technique)
    return table


def print_status(console: Console, s: EngagementStatus) -> None:
    fmt = s.format.value if s.format else f"{s.recommendation.format.value} (recommended)"
    console.print(styled((s.engagement_id, "bold"), f" {s.client}: phase ", (s.phase.value, "bold"),
                         f", format {fmt}"))
    if s.session:
        console.print(f"Session: {local_label(s.session.starts_at, s.session.timezone)}, {s.session.days:g} days")
        if s.session.agenda:
            console.print(agenda_table(s.session.agenda, "Agenda as held"))
    if s.session and s.attendance:
        print_attendance(console, s)
    for p in s.prereads:
        missing = ", ".join(p.missing) if p.missing else "everyone has read it"
        console.print(f"Pre-read {p.preread_id} '{p.title}': not acknowledged by {missing}")
    if s.cancel_reason:
        console.print(styled(("Cancelled:", "red"), f" {s.cancel_reason}"))
    if not s.actions:
        return
    table = Table("action", "owner", "last value", "target", "status", "next check-in (owner's time)")
    for a in s.actions:
        last = "-" if a.last_value is None else f"{a.last_value:g} {a.metric.unit}"
        nxt = local_label(a.next_checkin_at, a.owner.timezone) if a.next_checkin_at else (a.closed_reason or "-")
        table.add_row(f"{a.action_id} {a.title}", a.owner.name, last, f"{a.metric.target:g} {a.metric.unit}",
                      Text(a.status.value, style=STATUS_STYLE.get(a.status.value, "")), nxt)
    console.print(table)


def print_attendance(console: Console, s: EngagementStatus) -> None:
    """Who accepted, declined, or has not answered the invitation (their calendars' RSVPs)."""
    groups: dict[str, list[str]] = {"accepted": [], "tentative": [], "declined": [], "not answered": []}
    for a in s.attendance:
        groups[a.attendance or "not answered"].append(a.email)
    line = [("Invitation: ", "bold")]
    for label, style in (("accepted", "green"), ("tentative", "yellow"), ("declined", "red"),
                         ("not answered", "dim")):
        if groups[label]:
            line.append((f"{label} {len(groups[label])} ", style))
            line.append(("(" + ", ".join(groups[label]) + ")  ", ""))
    console.print(styled(*line))
    for a in s.attendance:
        if a.proposed_starts_at is not None and s.session is not None:
            console.print(f"  {a.email} proposed {local_label(a.proposed_starts_at, s.session.timezone)}"
                          + (f": {a.comment}" if a.comment else ""))


def print_list(console: Console, result: EngagementList) -> None:
    table = Table("engagement", "client", "phase", "format", "next check-in (UTC)", "at risk")
    for e in result.engagements:
        nxt = e.next_checkin_at.strftime("%Y-%m-%d %H:%M") if e.next_checkin_at else "-"
        table.add_row(e.engagement_id, e.client, e.phase.value, e.format or "-", nxt,
                      Text(str(e.actions_at_risk), style="bold red" if e.actions_at_risk else ""))
    console.print(table)


def print_timeline(console: Console, result: Timeline) -> None:
    table = Table("#", "when (UTC)", "event", "key")
    for e in result.events:
        table.add_row(str(e.seq), e.occurred_at.strftime("%Y-%m-%d %H:%M:%S"), e.event.type,
                      e.key.removeprefix(f"{result.engagement_id}/"))
    console.print(table)


def print_preview(console: Console, preview: Preview) -> None:
    console.print(styled((preview.engagement_id, "bold"), f": {preview.format}, session "
                         f"{preview.session_starts_at:%Y-%m-%d %H:%M} UTC; {len(preview.items)} steps"))
    table = Table("when (recipient's time)", "what", "to", "subject")
    for item in preview.items:
        table.add_row(item.local_time, item.kind.replace("_", " "), item.recipient or "-", item.subject)
    console.print(table)
