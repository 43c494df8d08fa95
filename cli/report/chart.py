"""The metric chart: an inline SVG line chart of one action's values, built here with no charting library. Its
expected-progress line follows the status rule (`domain/status.py`, docs/architecture.md), so what the chart
shows and the status it explains never disagree."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from html import escape
from zoneinfo import ZoneInfo

from cli.report.content import STATUS_COLOURS, local_time, short_date, status_label
from domain.numbers import number, scientific
from domain.schedule import local_to_utc
from domain.status import due_datetime, expected_progress
from schemas.common import MAX_VALUE
from schemas.report import ActionReport

WIDTH, HEIGHT = 600, 244
# The plot area; tick labels, the unit, the due label and the legend sit outside it. The left edge moves
# right when the value labels are long (see `metric_chart_svg`).
LEFT, RIGHT, TOP, BOTTOM = 48, WIDTH - 32, 34, HEIGHT - 56
CHAR_WIDTH = 7.0  # a generous average advance of a 12px sans-serif digit or letter
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
VALUE_COLOUR = "#1e3a8a"
EXPECTED_COLOUR = "#94a3b8"
TARGET_COLOUR = "#15803d"
AXIS_COLOUR = "#9ca3af"
GRID_COLOUR = "#e5e7eb"
TEXT_COLOUR = "#4b5563"


def tick_label(value: float, step: float) -> str:
    """An axis label, as precise as the step between ticks needs and no more, so neighbouring labels differ:
    `0.05`, `1,250`, `999,999,999,999,800`; scientific only where fixed decimals would not be readable."""
    value = round(value / step) * step  # ticks are multiples of the step; drop the drift of adding it up
    if abs(value) < step / 2:
        return "0"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if decimals <= 6:
        return f"{value:,.{decimals}f}"
    digits = max(1, min(17, math.floor(math.log10(abs(value))) - math.floor(math.log10(step) + 1e-9) + 1))
    return scientific(value, digits)


@dataclass(frozen=True)
class _Scale:
    lo: float
    hi: float
    out_lo: float
    out_hi: float

    def __call__(self, value: float) -> float:
        return self.out_lo + (value - self.lo) / (self.hi - self.lo) * (self.out_hi - self.out_lo)


def _nice_step(span: float, ticks: int) -> float:
    raw = span / max(1, ticks)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


# The narrowest value range a chart spans, relative to the size of its values: ticks a float cannot tell apart
# (a baseline of 1e15 and a target one float step above it) would repeat one label and divide by zero.
MIN_RELATIVE_SPAN = 1e-12
MIN_SPAN = 1e-300  # and in absolute terms, above the subnormal floats where log10 and division lose their footing


def value_ticks(lo: float, hi: float, ticks: int = 5) -> tuple[float, float, list[float]]:
    """A domain covering lo..hi with round bounds, and the round values to label on it."""
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    min_span = max(MIN_SPAN, MIN_RELATIVE_SPAN * max(abs(lo), abs(hi)))
    if hi - lo < min_span:
        middle = lo / 2 + hi / 2
        lo, hi = middle - min_span / 2, middle + min_span / 2
    step = _nice_step(hi - lo, ticks)
    start = math.floor(lo / step + 1e-9) * step
    end = math.ceil(hi / step - 1e-9) * step
    count = round((end - start) / step)
    return start, end, [start + i * step for i in range(count + 1)]


def _drawn(value: float) -> float:
    """The value where the chart draws it: an older log's value beyond the bounds (or not finite) at the bound,
    so one absurd value cannot flatten the rest into a line or throw the chart off its frame."""
    if math.isnan(value):
        return 0.0
    return max(-MAX_VALUE, min(MAX_VALUE, value))


def _value_domain(action: ActionReport) -> tuple[float, float, list[float]]:
    m = action.metric
    values = [_drawn(v) for v in (m.baseline, m.target, *(p.value for p in action.history))]
    lo, hi = min(values), max(values)
    # Room around the data so no point sits on the frame, without inventing negative counts.
    pad = (hi - lo) * 0.06
    padded_lo = 0.0 if lo >= 0 > lo - pad else lo - pad
    return value_ticks(padded_lo, hi + pad)


def date_ticks(start: datetime, end: datetime, tz: str, most: int = 7) -> list[date]:
    """Round local dates between start and end: days, weeks (Mondays) or month starts, at most `most`."""
    first, last = start.astimezone(ZoneInfo(tz)).date(), end.astimezone(ZoneInfo(tz)).date()
    days = (last - first).days
    for step in (1, 2, 7, 14):
        if days / step < most:
            day = first if step < 7 else first + timedelta(days=(7 - first.weekday()) % 7)
            if local_to_utc(day, time(0), tz) < start:
                day += timedelta(days=step)
            ticks = []
            while day <= last:
                ticks.append(day)
                day += timedelta(days=step)
            return ticks
    for months in (1, 2, 3, 6, 12, 24):
        if days / (months * 30.4) < most - 1:
            break
    index = first.year * 12 + first.month - 1 + 1  # the first month start after `first`
    index += (-index) % months
    ticks = []
    while True:
        day = date(index // 12, index % 12 + 1, 1)
        if day > last:
            return ticks
        ticks.append(day)
        index += months


def _text(x: float, y: float, content: str, *, anchor: str = "start", size: int = 12, colour: str = TEXT_COLOUR,
          weight: str = "normal", cls: str = "", halo: bool = False) -> str:
    css = f' class="{cls}"' if cls else ""
    # A white halo keeps a label readable where it crosses a line or the grid.
    outline = ' stroke="#ffffff" stroke-width="4" stroke-linejoin="round" paint-order="stroke"' if halo else ""
    return (f'<text{css} x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{colour}"'
            f' font-weight="{weight}"{outline}>{escape(content)}</text>')


def metric_chart_svg(action: ActionReport) -> str:
    """An inline SVG line chart of one action's metric: reported values (colour = status at that check-in),
    the target (dashed), the expected progress from baseline at assignment to target at the due date, the
    due date, date ticks on x, value ticks on y (unit in the axis title), and a legend."""
    m = action.metric
    tz = action.owner_timezone
    due_at = due_datetime(action.due, tz)
    points = sorted(action.history, key=lambda p: p.at)
    # A due date before the assignment (or values before it) must not fall off the left of the frame.
    start = min([action.assigned_at, due_at, *(p.at for p in points)])
    end = max([due_at, *(p.at for p in points)])
    if end <= start:
        end = start + timedelta(days=1)
    end += (end - start) * 0.04  # the last point and the due line stay off the frame
    lo, hi, ticks = _value_domain(action)
    tick_labels = [tick_label(t, ticks[1] - ticks[0]) for t in ticks]
    # Room for the longest value label (22 characters at 1e15), never more than half the chart.
    left = min(WIDTH / 2, max(LEFT, 14 + CHAR_WIDTH * max(len(t) for t in tick_labels)))
    x = _Scale(start.timestamp(), end.timestamp(), left, RIGHT)
    value_scale = _Scale(lo, hi, BOTTOM, TOP)

    def px(at: datetime) -> float:
        return x(at.timestamp())

    def y(value: float) -> float:
        return value_scale(_drawn(value))

    label = f"{m.name}: {len(points)} value{'s' if len(points) != 1 else ''}, target {number(m.target)} {m.unit}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="metric-chart" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' width="100%" role="img" aria-label="{escape(label)}" font-family="{escape(FONT)}"'
        f' data-action="{escape(action.action_id)}" data-direction="{m.direction.value}">',
        f"<title>{escape(label)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
    ]
    # Grid and y axis: round values; the unit once, as the axis title.
    for tick, tick_text in zip(ticks, tick_labels, strict=True):
        ty = value_scale(tick)
        out.append(f'<line class="grid" x1="{left:.1f}" y1="{ty:.1f}" x2="{RIGHT}" y2="{ty:.1f}"'
                   f' stroke="{GRID_COLOUR}" stroke-width="1"/>')
        out.append(_text(left - 8, ty + 4, tick_text, anchor="end", cls="y-tick"))
    unit = m.unit if len(m.unit) <= 40 else m.unit[:39] + "\u2026"
    out.append(_text(4, TOP - 14, unit, weight="600", cls="y-unit"))
    # X axis: round local dates of the owner (the year once, on the first tick and on each January).
    out.append(f'<line class="axis" x1="{left:.1f}" y1="{BOTTOM}" x2="{RIGHT}" y2="{BOTTOM}"'
               f' stroke="{AXIS_COLOUR}"/>')
    for i, day in enumerate(date_ticks(start, end, tz, most=6)):
        tx = px(local_to_utc(day, time(0), tz))
        out.append(f'<line x1="{tx:.1f}" y1="{BOTTOM}" x2="{tx:.1f}" y2="{BOTTOM + 5}" stroke="{AXIS_COLOUR}"/>')
        out.append(_text(tx, BOTTOM + 19, short_date(day, with_year=i == 0 or day.month == 1), anchor="middle",
                         cls="x-tick"))
    # The due date: a vertical rule, labelled above the plot where no data can be.
    dx = px(due_at)
    out.append(f'<line class="due" x1="{dx:.1f}" y1="{TOP - 6}" x2="{dx:.1f}" y2="{BOTTOM}" stroke="{TEXT_COLOUR}"'
               ' stroke-width="1" stroke-dasharray="2 3"/>')
    out.append(_text(dx, TOP - 12, f"due {short_date(action.due)}", anchor="end" if dx > RIGHT - 40 else "middle",
                     cls="due-label"))
    # Expected progress (the status rule): baseline at assignment, straight to the target at the due date.
    out.append(f'<line class="expected" x1="{px(action.assigned_at):.1f}" y1="{y(m.baseline):.1f}"'
               f' x2="{dx:.1f}" y2="{y(m.target):.1f}" stroke="{EXPECTED_COLOUR}" stroke-width="2"/>')
    # The target, across the whole plot, labelled at the left where early values (near baseline) are not.
    ty = y(m.target)
    out.append(f'<line class="target" x1="{left:.1f}" y1="{ty:.1f}" x2="{RIGHT}" y2="{ty:.1f}"'
               f' stroke="{TARGET_COLOUR}" stroke-width="1.5" stroke-dasharray="6 4"/>')
    above = ty - 16 > TOP or ty + 18 > BOTTOM
    out.append(_text(left + 6, ty - 6 if above else ty + 16, f"target {number(m.target)} {unit}",
                     colour=TARGET_COLOUR, weight="600", cls="target-label", halo=True))
    # The reported values.
    if points:
        coords = " ".join(f"{px(p.at):.1f},{y(p.value):.1f}" for p in points)
        out.append(f'<polyline class="values" points="{coords}" fill="none" stroke="{VALUE_COLOUR}"'
                   ' stroke-width="2.25" stroke-linejoin="round" stroke-linecap="round"/>')
        for p in points:
            out.append(
                f'<circle class="point status-{p.status.value}" cx="{px(p.at):.1f}" cy="{y(p.value):.1f}" r="5"'
                f' fill="{STATUS_COLOURS[p.status]}" stroke="#ffffff" stroke-width="1.5" data-value="{p.value!r}">'
                f"<title>{escape(local_time(p.at, tz))}: {escape(number(p.value))} {escape(m.unit)}"
                f" ({escape(status_label(p.status))})</title></circle>")
        last = points[-1]
        lx, ly = px(last.at), y(last.value)
        anchor = "end" if lx > RIGHT - 40 else "start"
        # The label goes on the side of the point away from the expected line, so the two never cross.
        expected_y = y(m.baseline + expected_progress(action.assigned_at, due_at, last.at) * (m.target - m.baseline))
        above = (ly <= expected_y or ly + 20 > BOTTOM) and ly - 9 > TOP + 4
        out.append(_text(lx + (-9 if anchor == "end" else 9), ly - 9 if above else ly + 18,
                         number(last.value), anchor=anchor, size=13, colour=VALUE_COLOUR, weight="700",
                         cls="last-value", halo=True))
    else:
        out.append(_text((left + RIGHT) / 2, (TOP + BOTTOM) / 2, "No values reported yet", anchor="middle",
                         size=13, cls="no-data"))
    out.extend(_legend(left))
    out.append("</svg>")
    return "".join(out)


def _legend(left: float) -> Iterable[str]:
    yield f'<g class="legend" transform="translate({left:.1f},{HEIGHT - 16})">'
    yield (f'<line x1="0" y1="0" x2="22" y2="0" stroke="{VALUE_COLOUR}" stroke-width="2.25"/>'
           f'<circle cx="11" cy="0" r="4" fill="{VALUE_COLOUR}"/>')
    yield _text(28, 4, "reported (dot: status then)", size=12)
    yield f'<line x1="200" y1="0" x2="222" y2="0" stroke="{EXPECTED_COLOUR}" stroke-width="2"/>'
    yield _text(228, 4, "expected", size=12)
    yield (f'<line x1="300" y1="0" x2="322" y2="0" stroke="{TARGET_COLOUR}" stroke-width="1.5"'
           ' stroke-dasharray="6 4"/>')
    yield _text(328, 4, "target", size=12)
    yield f'<line x1="390" y1="-7" x2="390" y2="7" stroke="{TEXT_COLOUR}" stroke-dasharray="2 3"/>'
    yield _text(398, 4, "due date", size=12)
    yield "</g>"
