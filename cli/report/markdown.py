"""The follow-through report as markdown: people's text stays text wherever the markdown is rendered."""

from __future__ import annotations

from cli.report.content import (
    block_label,
    format_label,
    local_time,
    percent,
    progress,
    session_label,
    status_counts,
    status_label,
    vote_groups,
)
from domain.agenda import agenda_lines
from domain.numbers import number
from domain.schedule import local_date, local_label
from schemas.outcomes import Direction
from schemas.report import ActionReport, Report


def _md(text: str) -> str:
    # People's text stays text: a `<` would open raw html wherever the markdown is rendered (notes come from
    # email replies). Names and notes are single-line already (schemas.common.Text).
    return text.replace("\\", "\\\\").replace("<", "\\<")


def _cell(text: str) -> str:
    # A pipe would end the cell.
    return _md(text).replace("|", "\\|")


def render_markdown(report: Report) -> str:
    lines: list[str] = [
        f"# Follow-through report: {_md(report.client)}",
        "",
        f"- Engagement: `{report.engagement_id}`, phase **{report.phase.value.replace('_', ' ')}**",
        f"- Format: {format_label(report)}",
        f"- Session: {session_label(report)}",
        f"- Sponsor: {_md(report.sponsor.name)} <{report.sponsor.email}>",
        f"- Consultant: {_md(report.consultant.name)} <{report.consultant.email}>",
        f"- Generated: {local_label(report.generated_at, report.timezone)}",
    ]
    if report.cancel_reason:
        lines.append(f"- Cancelled: {_md(report.cancel_reason)}")
    lines += ["", "## Actions", ""]
    if report.actions:
        counts = ", ".join(f"{n} {status_label(s)}" for s, n in status_counts(report))
        lines += [f"{len(report.actions)} action{'s' if len(report.actions) != 1 else ''}: {counts}", "",
                  "| Action | Owner | Metric | Baseline | Target | Latest | Progress | Status | Due |",
                  "|---|---|---|---:|---:|---:|---:|---|---|"]
        for a in report.actions:
            m = a.metric
            lines.append(
                f"| {_cell(a.action_id)} {_cell(a.title)} | {_cell(a.owner_name)} | {_cell(m.name)} ({_cell(m.unit)})"
                f" | {number(m.baseline)} | {number(m.target)} | {number(a.last_value)} | {percent(progress(a))}"
                f" | {status_label(a.status)} | {a.due.isoformat()} |")
    else:
        lines.append("No actions were recorded.")
    if report.decisions:
        lines += ["", "## Decisions", ""] + [f"- {_md(d.text)}" + (f" _(block {_md(block_label(report, d.block))})_"
                                                                   if d.block else "") for d in report.decisions]
    for vote in vote_groups(report):
        lines += ["", f"## {_md(vote.heading)}", "", "| Option | Votes |", "|---|---:|"]
        lines += [f"| {_cell(v.option)} | {v.votes} |" for v in vote.options]
    if report.agenda is not None:
        first_day = local_date(report.session_starts_at, report.timezone) if report.session_starts_at else None
        lines += ["", "## The agenda as held", ""]
        lines += [f"**{_md(line)}**" if line.startswith("Day ") else f"- {_md(line)}"
                  for line in agenda_lines(report.agenda, first_day)]
    for a in report.actions:
        lines += ["", *_action_markdown(a)]
    return "\n".join(lines) + "\n"


def _action_markdown(a: ActionReport) -> list[str]:
    m = a.metric
    arrow = "up" if m.direction is Direction.increase else "down"
    lines = [
        f"### {a.action_id}: {_md(a.title)} ({status_label(a.status)})",
        "",
        f"- Owner: {_md(a.owner_name)} <{a.owner_email}> ({a.owner_timezone})",
        f"- Due: {a.due.isoformat()}",
        f"- Metric: {_md(m.name)}, from {number(m.baseline)} to {number(m.target)} {_md(m.unit)} ({arrow})",
        f"- Latest: {number(a.last_value)} {_md(m.unit)}, progress {percent(progress(a))}",
        f"- Check-ins: {a.checkins_sent} requested, {len(a.history)} values, {a.missed} missed, "
        f"{a.escalations} escalated, {a.snoozes} snoozed",
    ]
    if a.closed_reason:
        lines.append(f"- Closed: {a.closed_reason}")
    elif a.next_checkin_at:
        lines.append(f"- Next check-in: {local_label(a.next_checkin_at, a.owner_timezone)}")
    lines.append("")
    if not a.history:
        lines.append("No values reported yet.")
        return lines
    lines += [f"| When ({a.owner_timezone}) | Value ({_cell(m.unit)}) | Status | Note |", "|---|---:|---|---|"]
    lines += [f"| {local_time(p.at, a.owner_timezone)} | {number(p.value)} | {status_label(p.status)}"
              f" | {_cell(p.note or '')} |" for p in a.history]
    return lines

