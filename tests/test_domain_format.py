"""The format rules (domain/format.py) as properties over generated scopings, plus the example scoping."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.agenda import MINUTES_PER_DAY
from domain.format import (
    OFFSITE_KINDS,
    STRATEGY_KINDS,
    duration_range,
    format_fit_error,
    recommend,
    recommend_as,
    recommended_format,
)
from schemas.recommendation import Aspect, EngagementFormat, Recommendation, Venue
from schemas.scoping import Constraints, Location, Objective, ObjectiveKind, Role, Scoping
from tests.strategies import constraints, examples, scopings

EXAMPLE = Path("/work/shared/contract/scoping.example.yaml")
# Generating a whole scoping costs hypothesis a few milliseconds: 100 examples per property keeps the file
# within a few seconds while still hitting every rule's edges (the strategies favour them).
PROPERTY = settings(max_examples=examples(100), deadline=None)
LEADERS = {Role.executive, Role.senior_leader}

offsite_kinds = st.sampled_from(sorted(OFFSITE_KINDS))
strategy_kinds = st.sampled_from(sorted(STRATEGY_KINDS))
not_onsite = st.sampled_from([Location.offsite, Location.either])
under_a_day = st.one_of(st.sampled_from([0.125, 0.5, 0.99]), st.floats(0.125, 1, exclude_max=True))
one_to_two = st.one_of(st.sampled_from([1.0, 1.5, 1.99]), st.floats(1, 2, exclude_max=True))
two_or_more = st.one_of(st.sampled_from([2.0, 3.0, 14.0]), st.floats(2, 14))
no_leaders = st.sampled_from([Role.department_head, Role.manager, Role.facilitator])
leaders = st.sampled_from([Role.executive, Role.senior_leader])


@st.composite
def both_sides(draw: st.DrawFn, tie: bool = False) -> list[Objective]:
    """Objectives with at least one of each side, shuffled; small counts so that ties are frequent."""
    n_offsite = draw(st.integers(1, 4))
    n_strategy = n_offsite if tie else draw(st.integers(1, 4))
    offsite = draw(
        st.lists(
            st.builds(Objective, text=st.just("Leadership"), kind=offsite_kinds),
            min_size=n_offsite,
            max_size=n_offsite,
        )
    )
    strategy = draw(
        st.lists(
            st.builds(Objective, text=st.just("Strategy"), kind=strategy_kinds),
            min_size=n_strategy,
            max_size=n_strategy,
        )
    )
    return draw(st.permutations(offsite + strategy))


def _sides(scoping: Scoping) -> tuple[int, int]:
    return (
        sum(o.kind in OFFSITE_KINDS for o in scoping.objectives),
        sum(o.kind in STRATEGY_KINDS for o in scoping.objectives),
    )


# --------------------------------------------------- the table


def test_kinds_split_into_two_sides() -> None:
    assert OFFSITE_KINDS | STRATEGY_KINDS == set(ObjectiveKind)
    assert not OFFSITE_KINDS & STRATEGY_KINDS
    assert OFFSITE_KINDS == {
        ObjectiveKind.cohesion,
        ObjectiveKind.trust,
        ObjectiveKind.culture,
        ObjectiveKind.vision,
    }


def test_duration_ranges_follow_the_seed() -> None:
    assert duration_range(EngagementFormat.offsite) == (1, 3)
    assert duration_range(EngagementFormat.strategy_session) == (0.125, 2)
    assert duration_range(EngagementFormat.combined) == (2, 3)


def test_example_scoping_is_combined() -> None:
    scoping = Scoping.model_validate(yaml.safe_load(EXAMPLE.read_text()))
    rec = recommend(scoping)
    assert rec.format is EngagementFormat.combined
    assert (rec.min_days, rec.max_days, rec.days) == (2, 2, 2)
    assert rec.location is Venue.offsite
    assert rec.participants == ["ana@acme.example", "ben@acme.example", "chloe@acme.example"]
    assert "Acme Corp" in rec.rationale[0].reason
    last = rec.agenda.work_items[-1]
    assert "action_planning" in [last.module, *last.also]


# -------------------------------------------------- fit errors


@pytest.mark.parametrize(
    ("fmt", "max_days", "location", "expected"),
    [
        (
            EngagementFormat.offsite,
            0.5,
            Location.either,
            "offsite needs at least 1 day but constraints.max_days is 0.5",
        ),
        (
            EngagementFormat.offsite,
            2,
            Location.onsite,
            "offsite needs an offsite venue but constraints.location is onsite",
        ),
        (
            EngagementFormat.combined,
            1.5,
            Location.offsite,
            "combined needs at least 2 days but constraints.max_days is 1.5",
        ),
        (
            EngagementFormat.combined,
            3,
            Location.onsite,
            "combined needs an offsite venue but constraints.location is onsite",
        ),
        (EngagementFormat.offsite, 1, Location.offsite, None),
        (EngagementFormat.combined, 2, Location.either, None),
        (EngagementFormat.strategy_session, 0.125, Location.onsite, None),
    ],
)
def test_format_fit_error_names_the_field(
    fmt: EngagementFormat, max_days: float, location: Location, expected: str | None
) -> None:
    c = Constraints(earliest=date(2027, 2, 1), latest=date(2027, 3, 1), max_days=max_days, location=location)
    assert format_fit_error(fmt, c) == expected


@PROPERTY
@given(st.sampled_from(list(EngagementFormat)), constraints())
def test_format_fit_error_iff_the_format_cannot_be_held(fmt: EngagementFormat, c: Constraints) -> None:
    shortest, _ = duration_range(fmt)
    needs_venue = fmt is not EngagementFormat.strategy_session
    fits = c.max_days >= shortest and not (needs_venue and c.location is Location.onsite)
    error = format_fit_error(fmt, c)
    assert (error is None) == fits
    if error is not None:
        assert error.startswith(fmt.value)
        assert "constraints.max_days" in error or "constraints.location" in error


# --------------------------------------------------- the rules


@PROPERTY
@given(scopings(location=st.just(Location.onsite)))
def test_onsite_is_always_a_strategy_session(scoping: Scoping) -> None:
    rec = recommend(scoping)
    assert rec.format is EngagementFormat.strategy_session
    assert rec.location is Venue.onsite


@PROPERTY
@given(scopings(days=under_a_day))
def test_under_a_day_is_a_strategy_session_of_hours(scoping: Scoping) -> None:
    rec = recommend(scoping)
    assert rec.format is EngagementFormat.strategy_session
    assert rec.days <= scoping.constraints.max_days < 1


@PROPERTY
@given(scopings(kinds=offsite_kinds, days=st.one_of(one_to_two, two_or_more), location=not_onsite))
def test_only_leadership_objectives_give_an_offsite(scoping: Scoping) -> None:
    rec = recommend(scoping)
    assert rec.format is EngagementFormat.offsite
    assert rec.location is Venue.offsite
    assert 1 <= rec.min_days <= rec.days <= rec.max_days <= 3


@PROPERTY
@given(scopings(kinds=strategy_kinds))
def test_only_strategy_objectives_give_a_strategy_session(scoping: Scoping) -> None:
    rec = recommend(scoping)
    assert rec.format is EngagementFormat.strategy_session
    assert rec.max_days <= 2


@PROPERTY
@given(scopings(objective_lists=both_sides(), days=two_or_more, location=not_onsite))
def test_both_sides_with_two_days_give_combined(scoping: Scoping) -> None:
    rec = recommend(scoping)
    assert rec.format is EngagementFormat.combined
    assert rec.location is Venue.offsite
    assert 2 <= rec.min_days <= rec.days <= rec.max_days <= 3


@PROPERTY
@given(scopings(objective_lists=both_sides(), days=one_to_two, location=not_onsite))
def test_both_sides_with_less_than_two_days_the_larger_side_wins(scoping: Scoping) -> None:
    offsite, strategy = _sides(scoping)
    leaders = any(p.role in LEADERS for p in scoping.participants)
    if offsite != strategy:
        expected = EngagementFormat.offsite if offsite > strategy else EngagementFormat.strategy_session
    else:
        expected = EngagementFormat.offsite if leaders else EngagementFormat.strategy_session
    assert recommend(scoping).format is expected


@PROPERTY
@given(scopings(objective_lists=both_sides(), days=one_to_two, location=not_onsite, roles=st.just(Role.manager)))
def test_a_tie_without_leaders_is_a_strategy_session(scoping: Scoping) -> None:
    offsite, strategy = _sides(scoping)
    if offsite == strategy:
        assert recommend(scoping).format is EngagementFormat.strategy_session


# ----------------------------------------------- every scoping


@PROPERTY
@given(scopings())
def test_days_are_the_seed_range_clipped_to_the_constraints(scoping: Scoping) -> None:
    rec = recommend(scoping)
    shortest, longest = duration_range(rec.format)
    limit = scoping.constraints.max_days
    assert rec.max_days == min(longest, limit)
    assert rec.min_days == min(shortest, rec.max_days)
    assert 0 < rec.min_days <= rec.days <= rec.max_days <= limit
    assert format_fit_error(rec.format, scoping.constraints) is None
    assert recommended_format(scoping) is rec.format


@PROPERTY
@given(scopings())
def test_suggested_days_are_sensible(scoping: Scoping) -> None:
    rec = recommend(scoping)
    preferred = {
        EngagementFormat.offsite: 2,
        EngagementFormat.strategy_session: 1,
        EngagementFormat.combined: 3,
    }
    assert rec.days == min(preferred[rec.format], rec.max_days)


@PROPERTY
@given(scopings())
def test_venue_follows_format_and_location(scoping: Scoping) -> None:
    rec = recommend(scoping)
    if rec.format is EngagementFormat.strategy_session:
        wanted = Venue.offsite if scoping.constraints.location is Location.offsite else Venue.onsite
        assert rec.location is wanted
    else:
        assert rec.location is Venue.offsite


@PROPERTY
@given(scopings())
def test_participants_follow_the_format_and_are_never_empty(scoping: Scoping) -> None:
    rec = recommend(scoping)
    everyone = [p.email for p in scoping.participants]
    assert rec.participants
    leaders = any(p.role in LEADERS for p in scoping.participants)
    if rec.format is EngagementFormat.offsite and leaders:
        offsite_roles = LEADERS | {Role.facilitator}
        assert rec.participants == [p.email for p in scoping.participants if p.role in offsite_roles]
    else:
        assert rec.participants == everyone


@PROPERTY
@given(scopings(kinds=offsite_kinds, days=st.one_of(one_to_two, two_or_more), location=not_onsite))
def test_an_offsite_invites_only_leaders_and_facilitators(scoping: Scoping) -> None:
    rec = recommend(scoping)
    roles = {p.email: p.role for p in scoping.participants}
    invited = {roles[e] for e in rec.participants}
    if invited & LEADERS:
        assert invited <= LEADERS | {Role.facilitator}
    else:
        assert rec.participants == list(roles)


@PROPERTY
@given(scopings())
def test_rationale_has_one_reason_per_aspect_about_this_scoping(scoping: Scoping) -> None:
    rec = recommend(scoping)
    assert [r.aspect for r in rec.rationale] == list(Aspect)
    reasons = {r.aspect: r.reason for r in rec.rationale}
    for reason in reasons.values():
        assert reason and reason.endswith(".")
    c = scoping.constraints
    assert scoping.client in reasons[Aspect.purpose]
    assert scoping.client in reasons[Aspect.duration]
    assert f"constraints.max_days is {c.max_days:g}" in reasons[Aspect.duration]
    assert f"{len(scoping.participants)} participants" in reasons[Aspect.participants]
    assert f"constraints.location is {c.location.value}" in reasons[Aspect.location]
    for objective in scoping.objectives:
        assert objective.kind.value.replace("_", " ") in reasons[Aspect.focus]
    # The seed table's wording, row by row.
    if rec.format is not EngagementFormat.strategy_session:
        assert "team building, leadership alignment and culture development" in reasons[Aspect.purpose]
        assert "stronger leadership cohesion" in reasons[Aspect.outcome]
    if rec.format is not EngagementFormat.offsite:
        assert "strategic planning, goal setting and problem solving" in reasons[Aspect.purpose]
        assert "defined strategies and clear roadmaps" in reasons[Aspect.outcome]


@PROPERTY
@given(scopings())
def test_agenda_matches_the_recommended_days(scoping: Scoping) -> None:
    rec = recommend(scoping)
    assert rec.agenda.days == rec.days
    assert rec.agenda.total_minutes <= rec.days * MINUTES_PER_DAY
    last = rec.agenda.work_items[-1]
    assert "action_planning" in [last.module, *last.also]


@settings(max_examples=examples(50), deadline=None)
@given(scopings())
def test_recommend_is_deterministic_and_survives_serialisation(scoping: Scoping) -> None:
    rec = recommend(scoping)
    again = recommend(Scoping.model_validate_json(scoping.model_dump_json()))
    assert rec == again
    assert Recommendation.model_validate_json(rec.model_dump_json()) == rec


# --------------------------------------------------- overrides


@PROPERTY
@given(scopings(), st.sampled_from(list(EngagementFormat)))
def test_recommend_as_holds_a_chosen_format_or_says_why_not(scoping: Scoping, fmt: EngagementFormat) -> None:
    error = format_fit_error(fmt, scoping.constraints)
    if error is not None:
        with pytest.raises(ValueError, match="constraints"):
            recommend_as(scoping, fmt)
        return
    rec = recommend_as(scoping, fmt)
    assert rec.format is fmt
    assert rec.days <= scoping.constraints.max_days
    if fmt is recommended_format(scoping):
        assert rec == recommend(scoping)
    else:
        assert "consultant chose" in rec.rationale[0].reason
