"""Render a sample follow-through report to html and screenshot it with headless Chromium (docs/img/report.png).

No database and no Temporal: the `Report` is built here, with statuses computed by the real rule
(`domain.status.action_status`) at each check-in, so the picture shows what `engage report ENG --format html`
prints for a realistic engagement: three actions, one achieved early, one decrease metric on track, one at risk
with a missed check-in and an escalation.

    .venv/bin/python bench/screenshot_report.py [--html FILE] [--png FILE] [--chromium PATH]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.report.html import render_html  # noqa: E402
from domain.status import action_status, due_datetime  # noqa: E402
from schemas.events import Phase  # noqa: E402
from schemas.outcomes import Direction, DotVote, Metric  # noqa: E402
from schemas.recommendation import EngagementFormat  # noqa: E402
from schemas.report import ActionReport, MetricPoint, Report  # noqa: E402
from schemas.scoping import Consultant, Person  # noqa: E402
from schemas.status import ActionStatus  # noqa: E402

ASSIGNED = datetime(2027, 2, 12, 16, 30, tzinfo=UTC)
GENERATED = datetime(2027, 4, 26, 7, 0, tzinfo=UTC)


def _action(action_id: str, title: str, owner: tuple[str, str, str], due: date, metric: Metric,
            values: list[tuple[int, float, str | None]], *, missed: int = 0, escalations: int = 0,
            snoozes: int = 0) -> ActionReport:
    """`values` are (days after assignment, value, note); each gets the status the rule gave it then."""
    name, email, tz = owner
    due_at = due_datetime(due, tz)
    history: list[MetricPoint] = []
    for days, value, note in values:
        at = ASSIGNED + timedelta(days=days, hours=-7.5)  # answered at 09:00 UTC, the morning of the check-in
        history.append(MetricPoint(at=at, value=value, note=note,
                                   status=action_status(metric, value, ASSIGNED, due_at, at)))
    status = history[-1].status if history else ActionStatus.no_data
    achieved = status is ActionStatus.achieved
    return ActionReport(
        action_id=action_id, title=title, owner_name=name, owner_email=email, owner_timezone=tz, due=due,
        assigned_at=ASSIGNED, metric=metric, status=status, last_value=history[-1].value if history else None,
        next_checkin_at=None if achieved else GENERATED + timedelta(days=2, hours=5),
        closed_reason="achieved" if achieved else None,
        checkins_sent=len(history) + missed, missed=missed, escalations=escalations, snoozes=snoozes,
        history=history,
    )


def sample_report() -> Report:
    signups = Metric(name="Self-serve signups per week", unit="signups", baseline=0, target=200,
                     direction=Direction.increase)
    onboarding = Metric(name="Median onboarding time", unit="days", baseline=21, target=10,
                        direction=Direction.decrease)
    retention = Metric(name="Net revenue retention", unit="%", baseline=98, target=110,
                       direction=Direction.increase)
    return Report(
        engagement_id="acme-2027-q1",
        client="Acme Corp",
        timezone="Europe/Berlin",
        phase=Phase.follow_through,
        format=EngagementFormat.combined,
        format_confirmed=True,
        session_starts_at=datetime(2027, 2, 11, 8, 0, tzinfo=UTC),
        session_ends_at=datetime(2027, 2, 12, 16, 0, tzinfo=UTC),
        sponsor=Person(name="Sam Okafor", email="sam@acme.example", timezone="Europe/Berlin"),
        consultant=Consultant(name="Dana Reyes", email="dana@consultancy.example", timezone="Europe/Berlin"),
        generated_at=GENERATED,
        decisions=[
            "Consolidate the two sales teams under one leader by the end of Q2",
            "Launch a self-serve tier for small accounts before the summer",
            "Make onboarding time a board-level metric, reviewed monthly",
        ],
        dot_votes=[DotVote(option="Expand to the Nordics", votes=7), DotVote(option="Self-serve tier", votes=11),
                   DotVote(option="Partner channel in DACH", votes=4)],
        actions=[
            _action("A1", "Launch the self-serve tier", ("Ben Wu", "ben@acme.example", "Europe/Berlin"),
                    date(2027, 5, 31), signups,
                    [(14, 12, "Beta open to 50 accounts"), (28, 46, None), (42, 95, "Pricing page live"),
                     (56, 158, None), (70, 214, "Paid campaign started")]),
            _action("A2", "Cut onboarding time", ("Ana Lima", "ana@acme.example", "America/Sao_Paulo"),
                    date(2027, 6, 30), onboarding,
                    [(14, 20, None), (28, 18.5, "Kick-off call now in week 1"), (42, 16, None),
                     (56, 15.5, "Two specialists on leave"), (70, 14, None)]),
            _action("A3", "Raise net revenue retention", ("Chloé Martin", "chloe@acme.example", "Europe/Paris"),
                    date(2027, 6, 15), retention,
                    [(14, 98.5, None), (28, 99, "Renewal desk staffed"), (56, 98.2, "Two large churns in March"),
                     (70, 99.1, None)],
                    missed=1, escalations=1, snoozes=1),
        ],
    )


def screenshot(html: Path, png: Path, chromium: str) -> None:
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--hide-scrollbars", "--window-size=1200,1800", f"--screenshot={png}", html.resolve().as_uri()],
            check=True, capture_output=True, timeout=120,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--html", type=Path, help="where to keep the html (default: a temporary file)")
    parser.add_argument("--png", type=Path, default=ROOT / "docs" / "img" / "report.png")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser")
                        or "chromium")
    args = parser.parse_args(argv)
    page = render_html(sample_report())
    with tempfile.TemporaryDirectory() as tmp:
        html: Path = args.html or Path(tmp) / "report.html"
        html.write_text(page, encoding="utf-8")
        screenshot(html, args.png, args.chromium)
    print(f"{args.png} ({args.png.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
