"""The agenda (domain/agenda.py): days that tile their hours, blocks of 30-90 minutes, lunch in its window,
techniques with steps that sum to the block; golden run sheets for the formats and group sizes.

Golden files are the text format of `engage agenda` (tests/golden/agenda/*.txt). After a deliberate change,
regenerate them with `ENGAGE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_domain_agenda.py` and read
the diff.
"""

from __future__ import annotations

import itertools
import os
from datetime import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.agenda import render_text
from domain.agenda import (
    LUNCH_EARLIEST,
    LUNCH_LATEST_END,
    MAX_BLOCK,
    MIN_BLOCK,
    RUNNING_ORDER,
    build_agenda,
    day_spans,
    dots_per_person,
    technique_steps,
)
from schemas.recommendation import Agenda, BlockKind, EngagementFormat, Module, Technique
from schemas.scoping import Objective, ObjectiveKind, Topic
from tests.strategies import examples, objectives

GOLDEN = Path(__file__).parent / "golden" / "agenda"
PROPERTY = settings(max_examples=examples(150), deadline=None)

formats = st.sampled_from(list(EngagementFormat))
session_days = st.one_of(
    st.sampled_from([0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0]),
    st.floats(min_value=0.25, max_value=3, allow_nan=False, allow_infinity=False),
)
group_sizes = st.integers(min_value=2, max_value=40)
topic_lists = st.lists(st.sampled_from(list(Topic)), unique=True, max_size=len(Topic))
# Day hours: mostly 9-to-5, also early and late starts and long or short days (4 to 12 hours).
day_hours = st.one_of(
    st.just((time(9, 0), time(17, 0))),
    st.tuples(st.integers(6 * 12, 12 * 12), st.integers(4 * 12, 12 * 12)).map(
        lambda t: (time(t[0] * 5 // 60, t[0] * 5 % 60), time((t[0] + t[1]) * 5 // 60 % 24, (t[0] + t[1]) * 5 % 60))),
)


def _objectives(*kinds: ObjectiveKind) -> list[Objective]:
    return [Objective(text=f"About {k.value}", kind=k) for k in kinds]


def _minutes(clock: str) -> int:
    hours, minutes = (int(p) for p in clock.split(":"))
    return hours * 60 + minutes


def _timeline(agenda: Agenda, day: int, start: int) -> list[tuple[int, int, BlockKind]]:
    """(start, end, kind) of the day's blocks in minutes from midnight, unwrapped past midnight."""
    out: list[tuple[int, int, BlockKind]] = []
    for item in agenda.items:
        if item.day != day or item.kind is BlockKind.social:
            continue
        assert item.starts is not None and item.ends is not None
        s = start + (_minutes(item.starts) - start) % 1440
        out.append((s, s + item.minutes, item.kind))
        assert (_minutes(item.ends) - _minutes(item.starts)) % 1440 == item.minutes % 1440
    return out


@PROPERTY
@given(formats, session_days, objectives(), topic_lists, group_sizes, day_hours)
def test_every_day_tiles_its_hours_in_blocks_of_30_to_90_minutes(
    fmt: EngagementFormat, days: float, objs: list[Objective], topics: list[Topic], group: int,
    hours: tuple[time, time],
) -> None:
    starts, ends = hours
    agenda = build_agenda(fmt, days, objs, topics, group_size=group, day_starts=starts, day_ends=ends)
    start = starts.hour * 60 + starts.minute
    end = ends.hour * 60 + ends.minute + (1440 if ends <= starts else 0)
    spans = day_spans(days, start, end)
    assert sorted({i.day for i in agenda.items}) == list(range(1, len(spans) + 1))
    for day, (day_start, day_end) in enumerate(spans, start=1):
        blocks = _timeline(agenda, day, start)
        # Tiled exactly: the first block starts the day, each starts where the last ended, the last ends it.
        assert blocks[0][0] == day_start and blocks[-1][1] == day_end
        assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:], strict=False))
        assert blocks[0][2] is BlockKind.opening and blocks[-1][2] is BlockKind.close
        for s, e, kind in blocks:
            if kind is BlockKind.work:
                assert MIN_BLOCK <= e - s <= MAX_BLOCK, (day, s, e)
        lunches = [(s, e) for s, e, kind in blocks if kind is BlockKind.lunch]
        if day_start <= LUNCH_EARLIEST and day_end >= LUNCH_LATEST_END:
            assert len(lunches) == 1
        assert all(LUNCH_EARLIEST <= s and e <= LUNCH_LATEST_END for s, e in lunches)
    for item in agenda.items:
        assert sum(s.minutes for s in item.steps) == item.minutes, item.title
        assert all(s.minutes > 0 for s in item.steps)
        assert (item.technique is not None) == (item.kind is BlockKind.work)


@PROPERTY
@given(formats, session_days, objectives(), topic_lists, group_sizes)
def test_modules_run_in_order_and_action_planning_ends_the_session(
    fmt: EngagementFormat, days: float, objs: list[Objective], topics: list[Topic], group: int
) -> None:
    agenda = build_agenda(fmt, days, objs, topics, group_size=group)
    order = [m for item in agenda.work_items for m in [item.module, *item.also]]
    runs = [m for m, _ in itertools.groupby(order)]
    assert len(runs) == len(set(runs)), "a module's blocks are consecutive"
    assert runs == sorted(runs, key=RUNNING_ORDER.index)
    assert order[-1] is Module.action_planning
    assert agenda.items[0].module is Module.opening
    social = [i for i in agenda.items if i.kind is BlockKind.social]
    relationship = fmt in (EngagementFormat.offsite, EngagementFormat.combined)
    assert len(social) == (max(i.day for i in agenda.items) - 1 if relationship else 0)
    assert all(i.optional for i in social)


@settings(max_examples=examples(300), deadline=None)
@given(st.sampled_from(list(Technique)), st.integers(MIN_BLOCK, MAX_BLOCK), group_sizes)
def test_technique_steps_sum_to_the_block(technique: Technique, minutes: int, group: int) -> None:
    steps, materials = technique_steps(technique, minutes, group, "the aim")
    assert sum(s.minutes for s in steps) == minutes
    assert all(s.minutes > 0 for s in steps) and materials


def test_turn_taking_gives_each_person_2_to_3_minutes_and_large_groups_split_up() -> None:
    small = build_agenda(EngagementFormat.offsite, 1, _objectives(ObjectiveKind.trust), [], group_size=6)
    vision = next(i for i in small.work_items if i.module is Module.vision_alignment)
    assert vision.technique is Technique.turn_taking
    assert any(s.name.startswith("Round: 3 min a person, 6 people") and s.minutes == 18 for s in vision.steps)
    large = build_agenda(EngagementFormat.offsite, 1, _objectives(ObjectiveKind.trust), [], group_size=24)
    vision = next(i for i in large.work_items if i.module is Module.vision_alignment)
    assert vision.technique is Technique.small_groups
    assert any(s.name == "Discuss in 5 groups of about 5" for s in vision.steps)


def test_dot_voting_hands_out_a_third_of_the_options_as_dots() -> None:
    agenda = build_agenda(EngagementFormat.strategy_session, 1, _objectives(ObjectiveKind.goals), [], group_size=10)
    vote = next(i for i in agenda.work_items if i.technique is Technique.dot_voting)
    assert (vote.options, vote.dots) == (8, 3)
    assert any(s.name == "Dot vote: 3 dots a person" for s in vote.steps)
    assert "3 dots a person (30 in all)" in vote.materials
    assert [dots_per_person(n) for n in (3, 6, 7, 12)] == [1, 2, 3, 4]


def test_a_long_module_becomes_blocks_with_their_own_aims_and_stays_in_its_day() -> None:
    agenda = build_agenda(EngagementFormat.offsite, 2, _objectives(ObjectiveKind.trust), [])
    vision = [i for i in agenda.work_items if i.module is Module.vision_alignment]
    assert len(vision) > 1 and {i.day for i in vision} == {1}
    assert vision[0].title.startswith(f"Vision alignment 1/{len(vision)}: where we are")
    assert len({i.aim for i in vision}) == len(vision)


def test_day_hours_come_from_the_scoping_and_late_days_wrap_past_midnight() -> None:
    early = build_agenda(EngagementFormat.strategy_session, 1, _objectives(ObjectiveKind.goals), [],
                         day_starts=time(8, 0), day_ends=time(16, 30))
    assert (early.items[0].starts, early.items[-1].ends) == ("08:00", "16:30")
    late = build_agenda(EngagementFormat.strategy_session, 0.5, _objectives(ObjectiveKind.goals), [],
                        day_starts=time(21, 0), day_ends=time(5, 0))
    assert (late.items[0].starts, late.items[-1].ends) == ("21:00", "01:00")


def test_too_few_days_is_refused() -> None:
    with pytest.raises(ValueError):
        build_agenda(EngagementFormat.strategy_session, 0, _objectives(ObjectiveKind.goals), [])


# --- golden run sheets ------------------------------------------------------------------------------------

_TRUST = (ObjectiveKind.trust, ObjectiveKind.vision)
_STRATEGY = (ObjectiveKind.goals, ObjectiveKind.market)
GOLDEN_CASES: dict[str, tuple[EngagementFormat, float, tuple[ObjectiveKind, ...], int]] = {
    "offsite_1d": (EngagementFormat.offsite, 1, _TRUST, 8),
    "offsite_2d": (EngagementFormat.offsite, 2, _TRUST, 8),
    "offsite_3d": (EngagementFormat.offsite, 3, _TRUST, 8),
    "strategy_0.25d": (EngagementFormat.strategy_session, 0.25, _STRATEGY, 8),
    "strategy_0.5d": (EngagementFormat.strategy_session, 0.5, _STRATEGY, 8),
    "strategy_1d": (EngagementFormat.strategy_session, 1, _STRATEGY, 8),
    "strategy_2d": (EngagementFormat.strategy_session, 2, (*_STRATEGY, ObjectiveKind.problem_solving), 8),
    "combined_3d": (EngagementFormat.combined, 3, (*_TRUST, *_STRATEGY), 8),
    "group_4": (EngagementFormat.strategy_session, 1, (*_STRATEGY, ObjectiveKind.problem_solving), 4),
    "group_24": (EngagementFormat.offsite, 2, (*_TRUST, ObjectiveKind.planning), 24),
}


def golden_agenda(name: str) -> Agenda:
    fmt, days, kinds, group = GOLDEN_CASES[name]
    return build_agenda(fmt, days, _objectives(*kinds), [], group_size=group)


@pytest.mark.parametrize("name", list(GOLDEN_CASES))
def test_golden_run_sheet(name: str) -> None:
    fmt = GOLDEN_CASES[name][0]
    text = render_text(golden_agenda(name), title=fmt.value.replace("_", " ").capitalize())
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("ENGAGE_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run with ENGAGE_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} changed: ENGAGE_UPDATE_GOLDEN=1 regenerates it; read the diff"
