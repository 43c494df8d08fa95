"""The agenda as people read it (`engage agenda`): plain text, markdown, a printable html run sheet, or JSON.

The run sheet is one page a day (CSS `break-after: page`) with each block's time, aim, technique steps and
materials, self-contained (inline CSS, system fonts, nothing from the network) and sized to print on A4 and
Letter alike: the page box is the narrower of the two (Letter's width, A4's height) less the margins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from cli.documents import environment
from domain.agenda import day_label
from schemas.recommendation import Agenda, AgendaItem, BlockKind


@dataclass(frozen=True)
class AgendaDay:
    number: int
    date: date | None
    blocks: list[AgendaItem]

    @property
    def label(self) -> str:
        return day_label(self.number, self.date)

    @property
    def hours(self) -> str:
        inside = [b for b in self.blocks if b.kind is not BlockKind.social]
        return f"{inside[0].starts}-{inside[-1].ends}" if inside else ""


def by_day(agenda: Agenda, first_day: date | None = None) -> list[AgendaDay]:
    numbers = sorted({i.day for i in agenda.items})
    return [AgendaDay(n, first_day + timedelta(days=n - 1) if first_day else None,
                      [i for i in agenda.items if i.day == n]) for n in numbers]


def technique_label(item: AgendaItem) -> str:
    return item.technique.value.replace("_", " ") if item.technique else ""


def _when(item: AgendaItem) -> str:
    return f"{item.starts}-{item.ends}" if item.starts else f"{item.minutes} min"


def heading(agenda: Agenda, title: str | None) -> str:
    people = f", {agenda.group_size} people" if agenda.group_size else ""
    days = f"{agenda.days:g} day" + ("" if agenda.days <= 1 else "s")
    return f"{title or 'Agenda'}: {days}{people}, {agenda.day_starts}-{agenda.day_ends}"


# --- text and markdown ---------------------------------------------------------------------------------


def render_text(agenda: Agenda, *, first_day: date | None = None, title: str | None = None) -> str:
    """The golden-file format: every block with its time, title, technique, steps and materials."""
    lines = [heading(agenda, title)]
    for day in by_day(agenda, first_day):
        lines += ["", f"{day.label} ({day.hours})"]
        for b in day.blocks:
            extra = f"  [{technique_label(b)}, {b.minutes} min]" if b.technique else f"  [{b.minutes} min]"
            lines.append(f"  {b.ref or '':<5} {_when(b):<11}  {b.title}{extra}")
            if b.kind in (BlockKind.break_, BlockKind.lunch):
                continue
            lines += [f"{'':20}- {s.name} ({s.minutes})" for s in b.steps]
            if b.materials:
                lines.append(f"{'':20}materials: {'; '.join(b.materials)}")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    # Titles are ours, but a scoping's words may reach them one day: keep markdown from reading them.
    return "".join("\\" + c if c in "\\`*_[]<>#|" else c for c in text)


def render_markdown(agenda: Agenda, *, first_day: date | None = None, title: str | None = None) -> str:
    lines = [f"# {_md(heading(agenda, title))}"]
    for day in by_day(agenda, first_day):
        lines += ["", f"## {day.label} ({day.hours})", "", "| # | Time | Block | Technique | Steps | Materials |",
                  "|---|---|---|---|---|---|"]
        for b in day.blocks:
            steps = "<br>".join(_md(f"{s.name} ({s.minutes} min)") for s in b.steps) if b.kind not in (
                BlockKind.break_, BlockKind.lunch) else ""
            lines.append(f"| {b.ref or ''} | {_when(b)} | {_md(b.title)} | {technique_label(b)} | {steps} | "
                         f"{_md('; '.join(b.materials))} |")
    return "\n".join(lines) + "\n"


# --- json ----------------------------------------------------------------------------------------------


def agenda_json(agenda: Agenda, *, first_day: date | None = None) -> dict[str, Any]:
    """`days`, each with its `blocks` in order (docs/architecture.md, "The `engage` command"); every block as
    the model has it."""
    return {
        "days_count": agenda.days,
        "group_size": agenda.group_size,
        "day_starts": agenda.day_starts,
        "day_ends": agenda.day_ends,
        "days": [{"day": d.number, "date": d.date.isoformat() if d.date else None, "label": d.label,
                  "blocks": [b.model_dump(mode="json") for b in d.blocks]} for d in by_day(agenda, first_day)],
    }


# --- html run sheet --------------------------------------------------------------------------------------


def render_html(agenda: Agenda, *, first_day: date | None = None, title: str | None = None) -> str:
    return environment().get_template("agenda.html.j2").render(
        heading=heading(agenda, title), days=by_day(agenda, first_day), technique_label=technique_label,
        work=BlockKind.work, pauses=(BlockKind.break_, BlockKind.lunch), social=BlockKind.social)


def render(agenda: Agenda, fmt: str, *, first_day: date | None = None, title: str | None = None) -> str:
    if fmt == "json":
        import json

        return json.dumps(agenda_json(agenda, first_day=first_day), ensure_ascii=False) + "\n"
    renderer = {"text": render_text, "md": render_markdown, "html": render_html}[fmt]
    return renderer(agenda, first_day=first_day, title=title)
