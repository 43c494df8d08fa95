"""Where the agenda shows (issue 16): `engage agenda`, the invitation of a scheduled session, the report's votes
beside their options and the agenda as held, the warning on dot votes the dots cannot carry."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import yaml
from typer.testing import CliRunner

from adapters.email.render import render
from cli.main import app
from cli.report.html import render_html
from cli.report.markdown import render_markdown
from domain.agenda import agenda_lines, held_agenda, unknown_blocks, vote_warnings
from domain.format import recommend
from schemas.messages import MessageContext, MessageKind, OutboundMessage, Recipient
from schemas.outcomes import Outcomes
from schemas.report import Report
from schemas.scoping import Consultant, Person, Scoping
from tests.test_domain_agenda import golden_agenda

SCOPING = Path("/work/shared/contract/scoping.example.yaml")
if not SCOPING.exists():  # the repository's copy of the contract
    SCOPING = Path(__file__).parent.parent / "examples" / "scoping.yaml"


def _scoping() -> Scoping:
    return Scoping.model_validate(yaml.safe_load(SCOPING.read_text()))


def test_engage_agenda_json_has_days_with_their_blocks_in_order() -> None:
    result = CliRunner().invoke(app, ["agenda", str(SCOPING), "--format", "json", "--days", "3"],
                                standalone_mode=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [d["day"] for d in data["days"]] == [1, 2, 3]
    for day in data["days"]:
        for block in day["blocks"]:
            assert {"day", "starts", "ends", "kind", "title", "technique", "steps"} <= set(block)
            assert block["day"] == day["day"]
            assert sum(s["minutes"] for s in block["steps"]) == block["minutes"]
        kinds = [b["kind"] for b in day["blocks"]]
        assert {"work", "break", "lunch", "opening", "close"} <= set(kinds)
    assert data["days"][0]["blocks"][0]["starts"] == "09:00"


def test_engage_agenda_text_and_html() -> None:
    text = CliRunner().invoke(app, ["agenda", str(SCOPING)], standalone_mode=False).stdout
    assert "09:00-09:30  Opening" in text and "Lunch" in text and "Dot vote:" in text
    html = CliRunner().invoke(app, ["agenda", str(SCOPING), "--format", "html"], standalone_mode=False).stdout
    assert html.startswith("<!DOCTYPE html>") and "break-after: page" in html


def test_the_invitation_of_a_scheduled_session_shows_the_plan_with_clock_times() -> None:
    # As the demo schedules it: today, a few minutes from now (14:23 here), for the recommended days.
    scoping = _scoping()
    rec = recommend(scoping)
    agenda = held_agenda(rec.format, rec.days, scoping.objectives, scoping.topics, group_size=len(rec.participants),
                         starts=time(14, 23), hours=scoping.constraints.day_hours)
    assert agenda is not None and agenda.items[0].starts == "14:23"
    lines = agenda_lines(agenda, date(2027, 2, 11))
    context = MessageContext(client=scoping.client, engagement_id="acme", recipient_name="Ana Lima",
                             consultant_name="Dana Reyes", format=rec.format.value, days=rec.days, agenda=lines,
                             session_label="Thu 11 Feb 2027, 14:23 Europe/Berlin")
    message = OutboundMessage(engagement_id="acme", key="acme/invitation/0/ana@acme.example",
                              kind=MessageKind.invitation, to=Recipient(name="Ana Lima", email="ana@acme.example"),
                              context=context)
    _, text, html = render(message)
    assert "Day 1, Thu 11 Feb 2027" in text and "Day 2, Fri 12 Feb 2027" in text
    assert "14:23-14:53 Opening: purpose, expectations and ground rules" in text
    assert "<strong>Day 1, Thu 11 Feb 2027</strong>" in html and "<li>14:23-14:53 Opening" in html


def test_a_tiny_session_still_gets_an_hour_rather_than_an_error() -> None:
    scoping = _scoping()
    agenda = held_agenda(recommend(scoping).format, 0.001, scoping.objectives, scoping.topics, group_size=3,
                         starts=time(9), hours=timedelta(hours=8))
    assert agenda is not None and (agenda.items[0].starts, agenda.items[-1].ends) == ("09:00", "10:00")


def test_votes_tied_to_blocks_are_checked_and_warned_about() -> None:
    agenda = golden_agenda("strategy_1d")
    vote = next(i for i in agenda.work_items if i.dots)
    assert vote.ref is not None and vote.dots == 3
    outcomes = Outcomes.model_validate({
        "decisions": ["Enter the Nordics", {"text": "Self-serve first", "block": vote.ref}],
        "dot_votes": [{"option": f"Option {n}", "votes": 2, "block": vote.ref} for n in range(10)],
        "actions": [{"title": "T", "owner": {"name": "A", "email": "a@x.example", "timezone": "UTC"},
                     "due": "2027-05-01", "metric": {"name": "m", "unit": "u", "baseline": 0, "target": 1,
                                                     "direction": "increase"}}],
    })
    assert [str(d) for d in outcomes.decisions] == ["Enter the Nordics", "Self-serve first"]
    assert unknown_blocks(agenda, [vote.ref, "9.9", None]) == ["9.9"]
    votes = [(v.option, v.votes, v.block) for v in outcomes.dot_votes]
    warnings = vote_warnings(agenda, votes, participants=8)
    assert len(warnings) == 1 and "10 options, more than the 3 dots a person can rank (at most 9" in warnings[0]
    assert vote_warnings(agenda, votes[:9], participants=8) == []
    assert "more than the 24 dots" in vote_warnings(agenda, [("a", 20, vote.ref), ("b", 5, vote.ref)], 8)[0]


def test_the_report_shows_each_vote_beside_its_options_and_the_agenda_as_held() -> None:
    agenda = golden_agenda("strategy_1d")
    votes = [i for i in agenda.work_items if i.dots]
    report = Report(
        engagement_id="acme", client="Acme", timezone="Europe/Berlin", phase="follow_through",
        sponsor=Person(name="S", email="s@x.example", timezone="UTC"),
        consultant=Consultant(name="C", email="c@x.example", timezone="UTC"),
        generated_at=datetime(2027, 3, 1, tzinfo=UTC), session_starts_at=datetime(2027, 2, 11, 8, tzinfo=UTC),
        decisions=[{"text": "Nordics first", "block": votes[0].ref}, "Hire a CFO"],
        dot_votes=[{"option": "Nordics", "votes": 7, "block": votes[0].ref},
                   {"option": "Self-serve", "votes": 9, "block": votes[0].ref},
                   {"option": "Keep pricing", "votes": 3, "block": votes[-1].ref}],
        agenda=agenda,
    )
    md = render_markdown(report)
    assert f"## Dot vote in {votes[0].ref} {votes[0].title}" in md
    first = md.split(f"## Dot vote in {votes[0].ref}")[1]
    assert first.index("| Self-serve | 9 |") < first.index("| Nordics | 7 |")
    assert f"- Nordics first _(block {votes[0].ref}" in md
    assert "## The agenda as held" in md and "**Day 1, Thu 11 Feb 2027**" in md and "- 09:00-09:30 Opening" in md
    html = render_html(report)
    assert f"Dot vote in {votes[0].ref}" in html and "3 dots a person" in html
    assert "The agenda as held" in html and "09:00-09:30" in html
