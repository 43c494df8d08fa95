"""`engage report`: the report's data from a real log in Postgres, its markdown, its self-contained html with one
SVG chart per action, and the real CLI command in a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import asyncpg
import pytest
import yaml

from cli.report.chart import date_ticks, metric_chart_svg, value_ticks
from cli.report.html import render_html
from cli.report.markdown import render_markdown
from domain.format import recommend
from domain.status import action_status, due_datetime
from schemas import events as ev
from schemas.outcomes import ActionInput, Direction, Metric, Outcomes, Owner
from schemas.report import ActionReport, MetricPoint, Report
from schemas.settings import Settings
from schemas.status import ActionStatus
from store.events import append
from store.queries import report_data
from tests.conftest import unique_id
from tests.test_store import EXAMPLES, scoping

ENGAGE = Path(sys.executable).parent / "engage"
SVG = "{http://www.w3.org/2000/svg}"
ASSIGNED = datetime(2027, 2, 12, 16, 0, tzinfo=UTC)
GENERATED = datetime(2027, 4, 20, 8, 0, tzinfo=UTC)
RETENTION = Metric(name="Net revenue retention", unit="%", baseline=98, target=110, direction=Direction.increase)

# (action, days after assignment, value, note): A1 climbs past its target, A2 (a decrease) falls, A3 is silent.
VALUES = [
    ("A1", 14, 40, None),
    ("A2", 15, 19, "Kick-off call in week 1 <now> & forever"),
    ("A1", 28, 120, None),
    ("A2", 29, 15, None),
    ("A1", 42, 210, "Paid campaign started"),
]


def _outcomes() -> Outcomes:
    outcomes = Outcomes.model_validate(yaml.safe_load((EXAMPLES / "outcomes.yaml").read_text()))
    outcomes.actions.append(ActionInput(
        id="A3", title="Raise net revenue retention",
        owner=Owner(name="Chloé Martin", email="chloe@acme.example", timezone="Europe/Paris"),
        due=date(2027, 6, 15), metric=RETENTION))
    return outcomes


def report_events(engagement_id: str) -> list[ev.NewEvent]:
    """A whole engagement up to follow-through: three actions, values, a miss, an escalation, a snooze."""
    s = scoping(engagement_id)
    outcomes = _outcomes()
    actions = {a.id: a for a in outcomes.actions}
    items: list[tuple[str, datetime, ev.Event]] = [
        ("started", ASSIGNED - timedelta(days=40), ev.EngagementStarted(scoping=s, recommendation=recommend(s))),
        ("format", ASSIGNED - timedelta(days=39), ev.FormatChosen(format="combined", recommended="combined")),
        ("schedule/0", ASSIGNED - timedelta(days=38), ev.SessionScheduled(
            starts_at=ASSIGNED - timedelta(days=1, hours=8), ends_at=ASSIGNED, timezone="Europe/Berlin", days=2,
            sequence=0)),
        ("outcomes", ASSIGNED, ev.OutcomesRecorded(outcomes=outcomes)),
        *[(f"{a.id}/assigned", ASSIGNED, ev.ActionAssigned(action_id=a.id, title=a.title, owner=a.owner, due=a.due,
                                                           metric=a.metric, assigned_at=ASSIGNED))
          for a in outcomes.actions],
        ("phase/follow_through", ASSIGNED, ev.PhaseEntered(phase=ev.Phase.follow_through)),
    ]
    numbers: dict[str, int] = {}
    for aid, days, value, note in VALUES:
        at = ASSIGNED + timedelta(days=days)
        a = actions[aid]
        assert a.id is not None
        numbers[aid] = numbers.get(aid, 0) + 1
        n = numbers[aid]
        status = action_status(a.metric, value, ASSIGNED, due_datetime(a.due, a.owner.timezone), at)
        items += [
            (f"{aid}/checkin/{n}/requested", at - timedelta(hours=2), ev.CheckInRequested(action_id=aid, number=n)),
            (f"{aid}/value/{n}", at, ev.MetricReported(action_id=aid, value=value, note=note, status=status)),
        ]
    miss = ASSIGNED + timedelta(days=14)
    items += [
        ("A3/checkin/1/requested", miss, ev.CheckInRequested(action_id="A3", number=1)),
        ("A3/checkin/1/missed", miss + timedelta(days=3), ev.CheckInMissed(action_id="A3", number=1, missed_in_row=1)),
        ("A3/escalation/1", miss + timedelta(days=3), ev.ActionEscalated(action_id="A3", missed_in_row=1)),
        ("A3/snooze/1", miss + timedelta(days=4), ev.ActionSnoozed(
            action_id="A3", days=7, next_checkin_at=miss + timedelta(days=21))),
        ("A1/closed", ASSIGNED + timedelta(days=42), ev.ActionClosed(
            action_id="A1", status=ActionStatus.achieved, reason="achieved")),
    ]
    return [ev.NewEvent(key=f"{engagement_id}/{k}", occurred_at=at, event=e) for k, at, e in items]


@pytest.fixture(scope="module")
async def engagement(pool: asyncpg.Pool) -> str:
    eid = unique_id("report")
    await append(pool, eid, report_events(eid))
    return eid


@pytest.fixture(scope="module")
async def report(pool: asyncpg.Pool, engagement: str) -> Report:
    result = await report_data(pool, engagement, now=GENERATED)
    assert result is not None
    return result


# --- the data ------------------------------------------------------------------------------------------


async def test_report_data_has_each_actions_history(report: Report, engagement: str) -> None:
    assert report.engagement_id == engagement
    assert (report.client, report.phase, report.timezone) == ("Acme Corp", ev.Phase.follow_through, "Europe/Berlin")
    assert report.format is not None and report.format.value == "combined" and report.format_confirmed
    assert report.session_starts_at == ASSIGNED - timedelta(days=1, hours=8)
    assert (report.sponsor.email, report.consultant.email) == ("sam@acme.example", "dana@consultancy.example")
    assert [d.text for d in report.decisions] == ["Consolidate the two sales teams by Q2"]
    assert [(v.option, v.votes) for v in report.dot_votes] == [("Expand to the Nordics", 7), ("Self-serve tier", 5)]
    assert report.generated_at == GENERATED
    assert [a.action_id for a in report.actions] == ["A1", "A2", "A3"]
    a1, a2, a3 = report.actions

    assert [(p.at, p.value) for p in a1.history] == [
        (ASSIGNED + timedelta(days=d), v) for aid, d, v, _ in VALUES if aid == "A1"]
    assert [p.status for p in a1.history][-1] is ActionStatus.achieved
    assert a1.history[-1].note == "Paid campaign started"
    assert (a1.status, a1.closed_reason, a1.last_value, a1.checkins_sent) == (ActionStatus.achieved, "achieved", 210, 3)

    assert [p.value for p in a2.history] == [19, 15]
    assert a2.history[0].note == "Kick-off call in week 1 <now> & forever"
    assert a2.metric.direction is Direction.decrease
    assert (a2.owner_name, a2.owner_timezone, a2.due) == ("Ana Lima", "America/Sao_Paulo", date(2027, 4, 30))
    assert a2.status is a2.history[-1].status
    assert a2.closed_reason is None

    assert a3.history == [] and a3.status is ActionStatus.no_data and a3.last_value is None
    assert (a3.checkins_sent, a3.missed, a3.escalations, a3.snoozes) == (1, 1, 1, 1)
    assert a3.next_checkin_at == ASSIGNED + timedelta(days=35)
    assert a3.metric == RETENTION
    assert a3.assigned_at == ASSIGNED


async def test_report_data_of_an_unknown_engagement_is_none(pool: asyncpg.Pool) -> None:
    assert await report_data(pool, unique_id("nobody")) is None


async def test_report_data_before_the_session_has_no_actions(pool: asyncpg.Pool) -> None:
    eid = unique_id("early")
    await append(pool, eid, report_events(eid)[:2])
    early = await report_data(pool, eid)
    assert early is not None
    assert (early.actions, early.decisions, early.dot_votes, early.session_starts_at) == ([], [], [], None)
    assert "No actions were recorded." in render_markdown(early)
    assert "<svg" not in render_html(early)


# --- markdown ------------------------------------------------------------------------------------------


def test_markdown_has_each_action_and_its_values(report: Report) -> None:
    text = render_markdown(report)
    assert text.startswith("# Follow-through report: Acme Corp\n")
    for a in report.actions:
        assert f"### {a.action_id}: {a.title}" in text
        section = text.split(f"### {a.action_id}: ")[1].split("\n### ")[0]
        for p in a.history:
            assert re.search(rf"\| {re.escape(f'{p.value:g}')} \| {p.status.value.replace('_', ' ')} \|", section)
    assert "| Kick-off call in week 1 \\<now> & forever |" in text, "a note cannot open raw html"
    assert "No values reported yet." in text.split("### A3: ")[1]
    assert "1 missed, 1 escalated, 1 snoozed" in text
    assert "- Consolidate the two sales teams by Q2" in text
    assert "| Expand to the Nordics | 7 |" in text


# --- html ----------------------------------------------------------------------------------------------


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def _svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(s) for s in re.findall(r"<svg\b.*?</svg>", html, flags=re.DOTALL)]


def test_html_is_self_contained_with_one_chart_per_action(report: Report) -> None:
    html = render_html(report)
    page = _Page()
    page.feed(html)
    page.close()
    names = [t for t, _ in page.tags]
    assert names.count("svg") == len(report.actions) == 3
    assert "script" not in names and "img" not in names and "iframe" not in names
    for tag, attrs in page.tags:
        for attr in ("src", "href", "srcset", "data", "poster", "action"):
            value = attrs.get(attr) or ""
            assert not re.match(r"\s*(https?:)?//", value, re.IGNORECASE), f"<{tag} {attr}={value!r}> loads from afar"
        assert not (tag == "link" and attrs.get("rel") == "stylesheet"), "styles must be inline"
    css = "".join(page.styles)
    assert css and "@import" not in css and "url(" not in css and "@font-face" not in css
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*https?:", html, re.IGNORECASE)

    charts = {svg.get("data-action"): svg for svg in _svgs(html)}
    assert list(charts) == ["A1", "A2", "A3"]
    for action_id, svg in charts.items():
        assert svg.find(f".//{SVG}line[@class='target']") is not None, action_id
        assert svg.find(f".//{SVG}line[@class='expected']") is not None, action_id
        assert svg.find(f".//{SVG}g[@class='legend']") is not None, action_id
        assert svg.findall(f".//{SVG}text[@class='x-tick']") and svg.findall(f".//{SVG}text[@class='y-tick']")
    for action_id in ("A1", "A2"):
        values = charts[action_id].find(f".//{SVG}polyline[@class='values']")
        assert values is not None and len(values.get("points", "").split()) == 2 + (action_id == "A1")
    assert charts["A3"].find(f".//{SVG}polyline[@class='values']") is None
    assert "No values reported yet" in "".join(charts["A3"].itertext())


def test_html_escapes_what_people_typed(report: Report) -> None:
    hostile = report.model_copy(deep=True)
    hostile.client = "Acme <script>alert(1)</script>"
    hostile.actions[0].title = 'Launch "<img src=x onerror=alert(1)>"'
    hostile.actions[0].metric.unit = "<b>signups</b>"
    html = render_html(hostile)
    assert "<script>" not in html and "<img" not in html and "<b>signups" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Kick-off call in week 1 &lt;now&gt; &amp; forever" in html
    assert len(_svgs(html)) == 3  # the charts stay well-formed XML


# --- the chart -----------------------------------------------------------------------------------------


def _points(svg: ET.Element) -> list[tuple[float, float]]:
    """(value, y) of each drawn point."""
    return [(float(c.get("data-value", "nan")), float(c.get("cy", "nan")))
            for c in svg.iter(f"{SVG}circle") if "point" in (c.get("class") or "").split()]


def _y(svg: ET.Element, cls: str, attr: str = "y1") -> float:
    line = svg.find(f".//{SVG}line[@class='{cls}']")
    assert line is not None
    return float(line.get(attr, "nan"))


def _action(metric: Metric, values: list[float], *, due: date = date(2027, 5, 31)) -> ActionReport:
    history = [MetricPoint(at=ASSIGNED + timedelta(days=10 * (i + 1)), value=v,
                           status=action_status(metric, v, ASSIGNED, due_datetime(due, "Europe/Berlin"),
                                                ASSIGNED + timedelta(days=10 * (i + 1))))
               for i, v in enumerate(values)]
    return ActionReport(action_id="A9", title="t", owner_name="Ben", owner_email="ben@acme.example",
                        owner_timezone="Europe/Berlin", due=due, assigned_at=ASSIGNED, metric=metric,
                        status=history[-1].status if history else ActionStatus.no_data,
                        last_value=values[-1] if values else None, history=history)


SIGNUPS = Metric(name="Signups", unit="signups", baseline=0, target=200, direction=Direction.increase)
ONBOARDING = Metric(name="Onboarding", unit="days", baseline=21, target=10, direction=Direction.decrease)


def test_a_higher_value_is_drawn_higher(report: Report) -> None:
    svg = ET.fromstring(metric_chart_svg(report.actions[0]))
    points = _points(svg)
    assert [v for v, _ in points] == [40, 120, 210]
    assert [y for _, y in sorted(points)] == sorted((y for _, y in points), reverse=True)
    target = _y(svg, "target")
    assert points[-1][1] < target < points[0][1], "210 is above the target line, 40 below it"
    # The expected line runs from the baseline (low) up to the target at the due date.
    assert _y(svg, "expected", "y1") > _y(svg, "expected", "y2") == pytest.approx(target)


def test_a_decrease_metric_slopes_down_on_the_same_axis() -> None:
    svg = ET.fromstring(metric_chart_svg(_action(ONBOARDING, [20, 16, 8])))
    points = _points(svg)
    assert [y for _, y in sorted(points)] == sorted((y for _, y in points), reverse=True)
    target = _y(svg, "target")
    assert _y(svg, "expected", "y1") < _y(svg, "expected", "y2") == pytest.approx(target)
    assert points[-1][1] > target, "8 days, beyond the target of 10, is drawn below it"
    assert svg.get("data-direction") == "decrease"


@pytest.mark.parametrize("values", [[], [55.5], [0, 260, 410], [-30, 5]])
def test_charts_of_edge_cases_are_well_formed_and_in_frame(values: list[float]) -> None:
    svg = ET.fromstring(metric_chart_svg(_action(SIGNUPS, values)))
    view = [float(v) for v in svg.get("viewBox", "").split()]
    assert len(_points(svg)) == len(values)
    for _, y in _points(svg):
        assert view[1] < y < view[3]
    for c in svg.iter(f"{SVG}circle"):
        assert view[0] <= float(c.get("cx", "-1")) <= view[2]
    polyline = svg.find(f".//{SVG}polyline[@class='values']")
    assert (polyline is None) == (not values)
    if not values:
        assert "No values reported yet" in "".join(svg.itertext())
    labels = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "y-tick"]
    assert labels and all(label for label in labels)
    unit = svg.find(f".//{SVG}text[@class='y-unit']")
    assert unit is not None and unit.text == "signups"


def test_a_due_date_before_the_assignment_stays_in_frame() -> None:
    svg = ET.fromstring(metric_chart_svg(_action(SIGNUPS, [10, 20], due=ASSIGNED.date() - timedelta(days=3))))
    due = svg.find(f".//{SVG}line[@class='due']")
    axis = svg.find(f".//{SVG}line[@class='axis']")
    assert due is not None and axis is not None
    assert float(axis.get("x1", "nan")) <= float(due.get("x1", "nan")) <= float(axis.get("x2", "nan"))
    assert svg.findall(f".//{SVG}text[@class='x-tick']")


def test_value_ticks_are_round_and_cover_the_range() -> None:
    lo, hi, ticks = value_ticks(97.4, 111.2)
    assert lo <= 97.4 and hi >= 111.2 and ticks[0] == lo and ticks[-1] == hi
    assert 3 <= len(ticks) <= 8
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1


def test_date_ticks_are_few_and_inside_the_range() -> None:
    for days in (1, 5, 20, 60, 110, 400, 1500):
        end = ASSIGNED + timedelta(days=days)
        ticks = date_ticks(ASSIGNED, end, "Europe/Berlin")
        assert 0 < len(ticks) <= 7 or days < 1, days
        assert all(ASSIGNED.date() <= t <= end.date() for t in ticks), days
        assert ticks == sorted(set(ticks))


# --- the command -------------------------------------------------------------------------------------


def _engage(settings: Settings, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env["ENGAGE_DATABASE_URL"] = settings.database_url.get_secret_value()
    return subprocess.run([str(ENGAGE), "report", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=60)


def test_the_command_prints_the_report_as_json(settings: Settings, engagement: str, report: Report,
                                               tmp_path: Path) -> None:
    done = _engage(settings, tmp_path, engagement, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1
    printed = Report.model_validate_json(done.stdout)
    assert printed.model_copy(update={"generated_at": GENERATED}) == report


def test_the_command_writes_html_and_markdown(settings: Settings, engagement: str, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    done = _engage(settings, tmp_path, engagement, "--format", "html", "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert target.read_text(encoding="utf-8").count("<svg") == 3
    md = _engage(settings, tmp_path, engagement)
    assert md.returncode == 0, md.stderr
    assert md.stdout.startswith("# Follow-through report: Acme Corp")


@pytest.mark.parametrize("args", [["nobody-here"], ["nobody-here", "--format", "html", "-o", "x.html"]])
def test_an_unknown_engagement_is_bad_input(settings: Settings, tmp_path: Path, args: list[str]) -> None:
    done = _engage(settings, tmp_path, *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "unknown engagement 'nobody-here'" in done.stderr
    assert not (tmp_path / "x.html").exists()


def test_an_unwritable_output_is_bad_input(settings: Settings, engagement: str, tmp_path: Path) -> None:
    done = _engage(settings, tmp_path, engagement, "-o", str(tmp_path / "missing" / "report.md"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: --output:") and "Traceback" not in done.stderr
