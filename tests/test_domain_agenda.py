"""The time-boxed agenda (domain/agenda.py): fits the session, follows the module rules, ends in actions."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.agenda import MINUTES_PER_DAY, RUNNING_ORDER, build_agenda
from schemas.recommendation import Agenda, EngagementFormat, Module, Technique
from schemas.scoping import Objective, ObjectiveKind, Topic
from tests.strategies import objectives

PROPERTY = settings(max_examples=200, deadline=None)

formats = st.sampled_from(list(EngagementFormat))
session_days = st.one_of(
    st.sampled_from([0.125, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 14.0]),
    st.floats(min_value=0.125, max_value=14, allow_nan=False, allow_infinity=False),
)
topic_lists = st.lists(st.sampled_from(list(Topic)), unique=True, max_size=len(Topic))
TECHNIQUES = {
    Module.strategic_priorities: Technique.dot_voting,
    Module.problem_solving: Technique.design_thinking,
    Module.market_positioning: Technique.design_thinking,
    Module.vision_alignment: Technique.turn_taking,
    Module.team_building: Technique.turn_taking,
}


def _objectives(*kinds: ObjectiveKind) -> list[Objective]:
    return [Objective(text=f"About {k.value}", kind=k) for k in kinds]


def _modules(agenda: Agenda) -> set[Module]:
    return {item.module for item in agenda.items}


def _expected_modules(fmt: EngagementFormat, objs: list[Objective], topics: list[Topic]) -> set[Module]:
    """The module rules, restated independently of the implementation."""
    kinds = {o.kind for o in objs}
    relationship = fmt in (EngagementFormat.offsite, EngagementFormat.combined)
    market = bool(kinds & {ObjectiveKind.market, ObjectiveKind.competition})
    expected = {Module.opening, Module.action_planning}
    if market or Topic.competitive_analysis in topics:
        expected.add(Module.competitive_analysis)
    if market or Topic.market_positioning in topics:
        expected.add(Module.market_positioning)
    if relationship or Topic.vision_alignment in topics:
        expected.add(Module.vision_alignment)
    if relationship or Topic.team_building in topics:
        expected.add(Module.team_building)
    if kinds & {
        ObjectiveKind.planning,
        ObjectiveKind.goals,
        ObjectiveKind.performance,
        ObjectiveKind.market,
        ObjectiveKind.competition,
    }:
        expected.add(Module.strategic_priorities)
    if ObjectiveKind.problem_solving in kinds:
        expected.add(Module.problem_solving)
    strategy_format = fmt in (EngagementFormat.strategy_session, EngagementFormat.combined)
    if strategy_format and not expected & {Module.strategic_priorities, Module.problem_solving}:
        expected.add(Module.strategic_priorities)
    return expected


@PROPERTY
@given(formats, session_days, objectives(), topic_lists)
def test_agenda_fits_the_session_and_each_day(
    fmt: EngagementFormat, days: float, objs: list[Objective], topics: list[Topic]
) -> None:
    agenda = build_agenda(fmt, days, objs, topics)
    assert agenda.days == days
    assert agenda.total_minutes <= days * MINUTES_PER_DAY
    per_day: dict[int, int] = defaultdict(int)
    for item in agenda.items:
        assert isinstance(item.minutes, int) and item.minutes > 0
        per_day[item.day] += item.minutes
    assert all(total <= MINUTES_PER_DAY for total in per_day.values())
    assert sorted(per_day) == list(range(1, len(per_day) + 1))
    assert len(per_day) <= math.ceil(days)
    assert [i.day for i in agenda.items] == sorted(i.day for i in agenda.items)


@PROPERTY
@given(formats, session_days, objectives(), topic_lists)
def test_agenda_uses_the_session(
    fmt: EngagementFormat, days: float, objs: list[Objective], topics: list[Topic]
) -> None:
    # Scaled to the session, not a fixed plan: at most a 5-minute rounding step is left unused.
    agenda = build_agenda(fmt, days, objs, topics)
    assert agenda.total_minutes > math.floor(days * MINUTES_PER_DAY) - 5


@PROPERTY
@given(formats, session_days, objectives(), topic_lists)
def test_opening_first_action_planning_last(
    fmt: EngagementFormat, days: float, objs: list[Objective], topics: list[Topic]
) -> None:
    items = build_agenda(fmt, days, objs, topics).items
    assert items[0].module is Module.opening
    assert items[-1].module is Module.action_planning
    assert "owners, timelines and success metrics" in items[-1].title
    # A module split over two days stays in one piece of the running order.
    order = [RUNNING_ORDER.index(i.module) for i in items]
    assert order == sorted(order)


@PROPERTY
@given(formats, session_days, objectives(), topic_lists)
def test_modules_follow_the_rules(
    fmt: EngagementFormat, days: float, objs: list[Objective], topics: list[Topic]
) -> None:
    agenda = build_agenda(fmt, days, objs, topics)
    assert _modules(agenda) == _expected_modules(fmt, objs, topics)


@PROPERTY
@given(formats, session_days, objectives(), topic_lists)
def test_every_item_has_a_facilitation_technique(
    fmt: EngagementFormat, days: float, objs: list[Objective], topics: list[Topic]
) -> None:
    for item in build_agenda(fmt, days, objs, topics).items:
        assert isinstance(item.technique, Technique)
        assert item.technique is TECHNIQUES.get(item.module, item.technique)
        assert item.title


def test_example_combined_agenda_spreads_over_days() -> None:
    objs = _objectives(ObjectiveKind.trust, ObjectiveKind.planning)
    topics = [Topic.competitive_analysis, Topic.market_positioning]
    agenda = build_agenda(EngagementFormat.combined, 3, objs, topics)
    assert list(dict.fromkeys(i.module for i in agenda.items)) == [
        Module.opening,
        Module.vision_alignment,
        Module.team_building,
        Module.competitive_analysis,
        Module.market_positioning,
        Module.strategic_priorities,
        Module.action_planning,
    ]
    assert {i.day for i in agenda.items} == {1, 2, 3}
    assert agenda.total_minutes == 3 * MINUTES_PER_DAY


def test_market_objectives_bring_market_modules() -> None:
    agenda = build_agenda(EngagementFormat.strategy_session, 1, _objectives(ObjectiveKind.competition), [])
    assert {Module.competitive_analysis, Module.market_positioning} <= _modules(agenda)
    assert Module.team_building not in _modules(agenda)


def test_problem_solving_uses_design_thinking() -> None:
    agenda = build_agenda(EngagementFormat.strategy_session, 0.5, _objectives(ObjectiveKind.problem_solving), [])
    item = next(i for i in agenda.items if i.module is Module.problem_solving)
    assert item.technique is Technique.design_thinking
    assert Module.strategic_priorities not in _modules(agenda)


def test_a_few_hours_still_hold_every_module() -> None:
    objs = _objectives(*ObjectiveKind)
    agenda = build_agenda(EngagementFormat.combined, 0.125, objs, list(Topic))
    assert len(_modules(agenda)) == len(Module)
    assert agenda.total_minutes <= 0.125 * MINUTES_PER_DAY


def test_a_long_session_does_not_leave_scraps_at_day_ends() -> None:
    agenda = build_agenda(EngagementFormat.offsite, 2, _objectives(ObjectiveKind.trust, ObjectiveKind.goals), [])
    assert min(i.minutes for i in agenda.items) >= 30


@pytest.mark.parametrize("days", [0, -1, 0.001])
def test_too_short_a_session_is_refused(days: float) -> None:
    with pytest.raises(ValueError):
        build_agenda(EngagementFormat.strategy_session, days, _objectives(ObjectiveKind.goals), [])
