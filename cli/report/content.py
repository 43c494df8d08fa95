"""What the report says about an engagement and its actions, in words and colours: shared by its markdown, its
html page and chart, and the check-in page (adapters/web.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from domain.schedule import local_label
from domain.status import actual_progress
from schemas.outcomes import DotVote
from schemas.report import ActionReport, Report
from schemas.status import ActionStatus

STATUS_COLOURS: dict[ActionStatus, str] = {
    ActionStatus.on_track: "#15803d",
    ActionStatus.behind: "#b45309",
    ActionStatus.at_risk: "#b91c1c",
    ActionStatus.achieved: "#14532d",
    ActionStatus.no_data: "#6b7280",
}
# Light backgrounds for the status pills, same hue as the text colour above.
STATUS_BACKGROUNDS: dict[ActionStatus, str] = {
    ActionStatus.on_track: "#dcfce7",
    ActionStatus.behind: "#fef3c7",
    ActionStatus.at_risk: "#fee2e2",
    ActionStatus.achieved: "#bbf7d0",
    ActionStatus.no_data: "#f3f4f6",
}
STATUS_ORDER = [ActionStatus.at_risk, ActionStatus.behind, ActionStatus.on_track, ActionStatus.achieved,
                ActionStatus.no_data]
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def status_label(status: ActionStatus) -> str:
    return status.value.replace("_", " ")


def short_date(day: date, *, with_year: bool = False) -> str:
    # Fixed English month names: strftime("%b") follows the process locale.
    label = f"{day.day} {_MONTHS[day.month - 1]}"
    return f"{label} {day.year}" if with_year else label


def local_time(at: datetime, tz: str) -> str:
    """`2027-03-04 09:00` on the wall clock of `tz`."""
    return f"{at.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M}"


def progress(action: ActionReport) -> float | None:
    """How far the last value has moved from baseline to target (1 = target reached), per the status rule."""
    if action.last_value is None:
        return None
    return actual_progress(action.metric, action.last_value)


def percent(value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value) or abs(value) >= 1000:  # a target a hair from its baseline: no 20-digit percentage
        return "over 99,999%" if value > 0 else "below -99,999%"
    return f"{value * 100:,.0f}%"


def format_label(report: Report) -> str:
    if report.format is None:
        return "not chosen"
    label = report.format.value.replace("_", " ")
    return label if report.format_confirmed else f"{label} (recommended)"


def session_label(report: Report) -> str:
    if report.session_starts_at is None:
        return "not scheduled"
    return local_label(report.session_starts_at, report.timezone)


def status_counts(report: Report) -> list[tuple[ActionStatus, int]]:
    counts = {s: sum(1 for a in report.actions if a.status is s) for s in STATUS_ORDER}
    return [(s, n) for s, n in counts.items() if n]


@dataclass(frozen=True)
class VoteGroup:
    """One dot vote: the options of one agenda block (or of none), most votes first."""

    heading: str
    options: list[DotVote]
    most: int
    dots: int | None


def block_label(report: Report, ref: str) -> str:
    item = report.agenda.block(ref) if report.agenda else None
    return f"{ref} {item.title}" if item else ref


def vote_groups(report: Report) -> list[VoteGroup]:
    blocks = list(dict.fromkeys(v.block for v in report.dot_votes))
    groups = []
    for ref in blocks:
        options = sorted((v for v in report.dot_votes if v.block == ref), key=lambda v: -v.votes)
        item = report.agenda.block(ref) if report.agenda and ref else None
        heading = f"Dot vote in {block_label(report, ref)}" if ref else "Dot votes"
        groups.append(VoteGroup(heading, options, max(v.votes for v in options), item.dots if item else None))
    return groups

