"""The follow-through report as a self-contained html page (`templates/report.html.j2`): a chart per metric,
inline CSS, nothing loaded from the network."""

from __future__ import annotations

from markupsafe import Markup

from cli.agenda import by_day as agenda_days
from cli.documents import environment
from cli.report.chart import metric_chart_svg
from cli.report.content import (
    STATUS_BACKGROUNDS,
    STATUS_COLOURS,
    block_label,
    format_label,
    progress,
    session_label,
    status_counts,
    vote_groups,
)
from domain.schedule import local_date, local_label
from schemas.report import Report


def render_html(report: Report) -> str:
    actions = [
        {
            "a": a,
            "chart": Markup(metric_chart_svg(a)),  # safe: every text in it is escaped
            "progress": progress(a),
            "bar": round(100 * min(1.0, max(0.0, progress(a) or 0.0)), 1),
            "colour": STATUS_COLOURS[a.status],
            "background": STATUS_BACKGROUNDS[a.status],
        }
        for a in report.actions
    ]
    first_day = local_date(report.session_starts_at, report.timezone) if report.session_starts_at else None
    return environment().get_template("report.html.j2").render(
        r=report,
        actions=actions,
        counts=[(s, n, STATUS_COLOURS[s], STATUS_BACKGROUNDS[s]) for s, n in status_counts(report)],
        format_label=format_label(report),
        session_label=session_label(report),
        generated_label=local_label(report.generated_at, report.timezone),
        votes=vote_groups(report),
        block_label=lambda ref: block_label(report, ref),
        agenda_days=agenda_days(report.agenda, first_day) if report.agenda else [],
        status_colours={s.value: c for s, c in STATUS_COLOURS.items()},
        status_backgrounds={s.value: c for s, c in STATUS_BACKGROUNDS.items()},
    )
